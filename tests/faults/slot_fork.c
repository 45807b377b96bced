/* slot_fork: the preload library's request slot across fork and exec (test_preload_slot.py).
 *
 * Opens /dev/binder, maps it and makes a BINDER_WRITE_READ (which binds the fd channel and
 * registers the slot), then prints how many fds of this process are the slot's memfd: in the
 * parent, in a forked child (which then makes a call of its own on the shared file) and in an
 * exec'd image that inherited the device fd. Lines: "parent N", "child N", "child call R",
 * "exec N". Run with VBINDER_SLOT=1 so that every call would go by the slot if it could.
 *
 * `slot_fork threads N`: after its first call it prints "ready" and waits for a line on stdin,
 * then N threads one after the other make one call each ("done"), then it waits for a line again
 * (a thread's region must be free again when it ends: the test counts their requests).
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/android/binder.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int slot_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = 0;
            n += !strncmp(target, "/memfd:vbinder-slot", 19);
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* A write-only BINDER_WRITE_READ: BC_ENTER_LOOPER (the result: 0 or -errno). */
static int call(int fd)
{
    uint32_t cmd = BC_ENTER_LOOPER;
    struct binder_write_read bwr = {sizeof cmd, 0, (binder_uintptr_t)&cmd, 0, 0, 0};
    return ioctl(fd, BINDER_WRITE_READ, &bwr) < 0 ? -errno : (int)bwr.write_consumed;
}

static int device;

static void *one_call(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)call(device);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "exec")) {
        printf("exec %d\n", slot_fds());
        return 0;
    }
    int fd = open("/dev/binder", O_RDWR);  /* not close-on-exec: the exec'd image inherits it */
    if (fd < 0 || mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
        perror("slot_fork: /dev/binder");
        return 1;
    }
    int r = call(fd);
    if (argc == 3 && !strcmp(argv[1], "threads")) {
        char line[16];
        device = fd;
        printf("ready\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            return 1;
        for (int i = 0; i < atoi(argv[2]); i++) {
            pthread_t t;
            void *ret;
            if (pthread_create(&t, NULL, one_call, NULL) || pthread_join(t, &ret) || (intptr_t)ret != 4)
                return 1;
        }
        printf("done\n");
        fflush(stdout);
        return fgets(line, sizeof line, stdin) ? 0 : 1;
    }
    printf("parent call %d\nparent %d\n", r, slot_fds());
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child %d\n", slot_fds());
        printf("child call %d\n", call(fd));
        printf("child %d\n", slot_fds());
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("parent %d\n", slot_fds());
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
    perror("slot_fork: exec");
    return 1;
}
