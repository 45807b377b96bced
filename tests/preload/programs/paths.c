/* paths: every way a program may name, open and stat a binder device, one line each.
 *
 *   paths MOUNT       prints "<call> <path>: <result>"; the test checks each line
 *
 * Built twice: plainly, and with _FORTIFY_SOURCE (open becomes __open_2 where the flags are not
 * known at compile time).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <linux/android/binder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int __xstat(int, const char *, struct stat *);
int __lxstat(int, const char *, struct stat *);
int __fxstat(int, int, struct stat *);

static const char *kind(int ret, const struct stat *st)
{
    static char out[64];
    if (ret < 0)
        snprintf(out, sizeof out, "%s", errno == ENOENT ? "ENOENT" : strerror(errno));
    else if (S_ISCHR(st->st_mode))
        snprintf(out, sizeof out, "chr %u:%u %o", major(st->st_rdev), minor(st->st_rdev), st->st_mode & 07777);
    else
        snprintf(out, sizeof out, "%s", S_ISREG(st->st_mode) ? "reg" : S_ISDIR(st->st_mode) ? "dir" : "other");
    return out;
}

/* An fd: what fstat says, and whether it answers BINDER_VERSION. */
static const char *fd_kind(int fd)
{
    static char out[96];
    if (fd < 0)
        return errno == ENOENT ? "ENOENT" : strerror(errno);
    struct stat st;
    struct binder_version v = {0};
    int r = ioctl(fd, BINDER_VERSION, &v);
    snprintf(out, sizeof out, "fstat %s, version %d", kind(fstat(fd, &st), &st), r < 0 ? -errno : v.protocol_version);
    close(fd);
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char mounted[4096];
    snprintf(mounted, sizeof mounted, "%s/dev/binder", argv[1]);
    const char *paths[] = {"/dev/binder", "/dev/hwbinder", "/dev/vndbinder", "/dev/binderfs/binder",
                           "//dev/./binder", "/dev/../dev/binder", "/dev/null", "/dev/nosuchbinder",
                           "/dev/binderfs/nosuch", mounted};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        const char *p = paths[i] == mounted ? "MOUNT/dev/binder" : paths[i];
        struct stat st;
        struct statx sx;
        printf("stat %s: %s\n", p, kind(stat(paths[i], &st), &st));
        printf("lstat %s: %s\n", p, kind(lstat(paths[i], &st), &st));
        printf("fstatat %s: %s\n", p, kind(fstatat(AT_FDCWD, paths[i], &st, 0), &st));
        printf("__xstat %s: %s\n", p, kind(__xstat(1, paths[i], &st), &st));
        printf("__lxstat %s: %s\n", p, kind(__lxstat(1, paths[i], &st), &st));
        int r = statx(AT_FDCWD, paths[i], 0, STATX_BASIC_STATS, &sx);
        st.st_mode = sx.stx_mode;
        st.st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
        printf("statx %s: %s\n", p, kind(r, &st));
        printf("access %s: %s\n", p, access(paths[i], R_OK | W_OK) ? strerror(errno) : "ok");
        printf("faccessat %s: %s\n", p, faccessat(AT_FDCWD, paths[i], R_OK, 0) ? strerror(errno) : "ok");
        printf("open %s: %s\n", p, fd_kind(open(paths[i], O_RDWR | O_CLOEXEC)));
        printf("open64 %s: %s\n", p, fd_kind(open64(paths[i], O_RDWR)));
        printf("openat %s: %s\n", p, fd_kind(openat(AT_FDCWD, paths[i], O_RDWR)));
        int flags = argc > 2 ? O_RDWR | O_CLOEXEC : O_RDWR;  /* not constant: fortified open is __open_2 */
        printf("open(flags) %s: %s\n", p, fd_kind(open(paths[i], flags)));
    }
    /* relative to /dev, by the working directory or a directory fd */
    int dev = open("/dev", O_RDONLY | O_DIRECTORY);
    printf("openat(/dev fd) binder: %s\n", fd_kind(openat(dev, "binder", O_RDWR)));
    struct stat st;
    printf("fstatat(/dev fd) binder: %s\n", kind(fstatat(dev, "binder", &st, 0), &st));
    if (chdir("/dev") == 0) {
        printf("open binder in /dev: %s\n", fd_kind(open("binder", O_RDWR)));
        printf("stat binder in /dev: %s\n", kind(stat("binder", &st), &st));
    }
    int fd = open("/dev/binder", O_RDWR);
    printf("__fxstat: %s\n", kind(__fxstat(1, fd, &st), &st));
    return 0;
}
