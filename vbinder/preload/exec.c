/* exec: the kernel closes a process's mappings when it execs, binder's area among them
 * (binder_vma_close: transactions to that proc then fail, "no vma"). The daemon cannot see an
 * exec, and the new image has no memory of the old one's areas: so an exec in place hands them
 * over in the environment (VBINDER_PRELOAD_AREAS=token:addr:size,...), and the new image's
 * library, before the program runs, ends each one whose device file is still open (it crossed
 * the exec: not close-on-exec) with VBINDER_MUNMAP. A failed exec changes nothing.
 *
 * Only an exec in place counts: the child of vfork or posix_spawn shares the parent's memory
 * until its exec, which leaves the parent's areas alone; the new image knows it is not the
 * areas' process by its pid. Every exec function glibc exports is wrapped, since glibc's own
 * (execl, execvp, ...) call the system call without going through execve.
 */
#include "vbpreload.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ENV_NAME "VBINDER_PRELOAD_AREAS"

extern char **environ;

/* envp with our variable set to the live areas, or NULL when there are none (use envp). */
static char **with_areas(char *const envp[])
{
    char areas[4096];
    if (!vb_area_describe(areas, sizeof areas))
        return NULL;
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **out = malloc((n + 2) * sizeof *out);
    char *var = malloc(strlen(ENV_NAME) + 1 + strlen(areas) + 1);
    if (!out || !var) {
        free(out);
        free(var);
        return NULL;
    }
    sprintf(var, "%s=%s", ENV_NAME, areas);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(envp[i], ENV_NAME "=", sizeof ENV_NAME))
            out[k++] = envp[i];
    out[k++] = var;
    out[k] = NULL;
    return out;
}

static void free_env(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++)
        if (!strncmp(env[i], ENV_NAME "=", sizeof ENV_NAME))
            free(env[i]);
    free(env);
}

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);

VB_API int execve(const char *path, char *const argv[], char *const envp[])
{
    execve_fn next = (execve_fn)dlsym(RTLD_NEXT, "execve");
    char **env = with_areas(envp);
    int ret = next(path, argv, env ? env : envp);
    int saved = errno;
    free_env(env);
    errno = saved;
    return ret;
}

VB_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    execve_fn next = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    char **env = with_areas(envp);
    int ret = next(file, argv, env ? env : envp);
    int saved = errno;
    free_env(env);
    errno = saved;
    return ret;
}

VB_API int fexecve(int fd, char *const argv[], char *const envp[])
{
    fexecve_fn next = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
    char **env = with_areas(envp);
    int ret = next(fd, argv, env ? env : envp);
    int saved = errno;
    free_env(env);
    errno = saved;
    return ret;
}

VB_API int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
    execveat_fn next = (execveat_fn)dlsym(RTLD_NEXT, "execveat");
    char **env = with_areas(envp);
    int ret = next(dirfd, path, argv, env ? env : envp, flags);
    int saved = errno;
    free_env(env);
    errno = saved;
    return ret;
}

VB_API int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

VB_API int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* The execl forms: their arguments as an argv (and, for execle, the envp after the NULL). */
#define COLLECT_ARGS(arg0, last, extra_env)                         \
    size_t n = 1;                                                   \
    va_list ap;                                                     \
    va_start(ap, last);                                             \
    while (va_arg(ap, char *))                                      \
        n++;                                                        \
    va_end(ap);                                                     \
    char **argv = alloca((n + 1) * sizeof *argv);                   \
    argv[0] = (char *)(arg0);                                       \
    va_start(ap, last);                                             \
    for (size_t i = 1; i <= n; i++)                                 \
        argv[i] = va_arg(ap, char *);                               \
    extra_env;                                                      \
    va_end(ap);

VB_API int execl(const char *path, const char *arg, ...)
{
    COLLECT_ARGS(arg, arg, (void)0);
    return execve(path, argv, environ);
}

VB_API int execlp(const char *file, const char *arg, ...)
{
    COLLECT_ARGS(arg, arg, (void)0);
    return execvpe(file, argv, environ);
}

VB_API int execle(const char *path, const char *arg, ...)
{
    char **envp;
    COLLECT_ARGS(arg, arg, envp = va_arg(ap, char **));
    return execve(path, argv, envp);
}

/* -- the new image ------------------------------------------------------------------------------- */

/* The open fd whose token is `token`, or -1. */
static int fd_of(uint64_t token)
{
    int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    char buf[4096];
    long n;
    int found = -1;
    while (found < 0 && (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n && found < 0;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            int fd = atoi(d->d_name);
            if (d->d_name[0] < '0' || d->d_name[0] > '9' || fd == dir)
                continue;
            long long pos = syscall(SYS_lseek, fd, 0, SEEK_CUR);
            if (pos > 0 && (uint64_t)pos == token)
                found = fd;
        }
    }
    close(dir);
    return found;
}

__attribute__((constructor)) static void exec_init(void)
{
    const char *areas = getenv(ENV_NAME);
    if (!areas)
        return;
    char *copy = strdup(areas);
    unsetenv(ENV_NAME);  /* the program never sees it */
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        unsigned long long token, addr, size;
        if (sscanf(item, "%llx:%llx:%llx", &token, &addr, &size) != 3 || vb_token_pid(token) != (getpid() & 0x3fffff))
            continue;  /* not this process's: the exec of a vfork child */
        int fd = fd_of(token);
        if (fd < 0)
            continue;  /* closed at the exec: the daemon released it */
        struct vb_munmap_arg un = {addr, size};
        struct vb_reply reply;
        vb_simple_ioctl(fd, VB_IOC_MUNMAP, &un, sizeof un, &reply);
        vb_debug("exec: area %#llx of fd %d ended", addr, fd);
    }
    free(copy);
}
