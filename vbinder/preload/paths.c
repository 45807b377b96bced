/* Paths: /dev/binder, /dev/hwbinder, /dev/vndbinder and /dev/binderfs/<name> are the vbinder
 * mount's device files (M/dev/<name>), for open, stat, access (and the extended attributes that
 * `ls -l` asks for) in every form a program may call
 * (glibc 2.36 exports each under several names: stat and stat64, __xstat for old binaries, the
 * fortified __open_2, ...). Nothing else is touched, except that a vbinder device file, however
 * it is reached (the /dev path, the mount's own path, an fd), stats as the kernel's character
 * device. A name in /dev/ that the mount serves besides those three (`vbinder mount --devices`)
 * is redirected too, as the kernel module's `devices=` parameter would create it.
 */
#include "vbpreload.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *const STANDARD[] = {"binder", "hwbinder", "vndbinder"};

/* `path` with //, /./ and /../ resolved lexically (into out); 0, or -1 if too long. */
static int normalize(const char *path, char *out, size_t size)
{
    size_t n = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
        } else {
            if (n + 1 + len + 1 > size)
                return -1;
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p = end;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = 0;
    return 0;
}

/* The directory an *at() call resolves a relative path against, as an absolute path. */
static int dir_path(int dirfd, char *out, size_t size)
{
    if (dirfd == AT_FDCWD)
        return getcwd(out, size) ? 0 : -1;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, out, size - 1);
    if (n < 0)
        return -1;
    out[n] = 0;
    return 0;
}

static int is_standard(const char *name)
{
    for (size_t i = 0; i < sizeof STANDARD / sizeof *STANDARD; i++)
        if (!strcmp(name, STANDARD[i]))
            return 1;
    return 0;
}

static int device_name_ok(const char *name)
{
    return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

/* The mount's path for `path` (relative to `dirfd`) if it names a binder device, else NULL. */
static const char *redirect(int dirfd, const char *path, char *out, size_t size)
{
    if (!path)
        return NULL;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (path[0] != '/') {
        /* Relative: only worth a look when the last component is a binder device's name. */
        if (!is_standard(base) && !strstr(path, "binderfs"))
            return NULL;
        char dir[PATH_MAX], full[PATH_MAX * 2];
        if (dir_path(dirfd, dir, sizeof dir))
            return NULL;
        snprintf(full, sizeof full, "%s/%s", dir, path);
        if (strncmp(full, "/dev/", 5))
            return NULL;
        return redirect(AT_FDCWD, full, out, size);
    }
    if (strncmp(path, "/dev", 4) && strncmp(path, "//", 2) && strncmp(path, "/.", 2))
        return NULL;  /* the usual case: one comparison */
    char norm[PATH_MAX];
    if (normalize(path, norm, sizeof norm))
        return NULL;
    const char *name;
    if (!strncmp(norm, "/dev/binderfs/", 14))
        name = norm + 14;
    else if (!strncmp(norm, "/dev/", 5))
        name = norm + 5;
    else
        return NULL;
    if (!device_name_ok(name))
        return NULL;
    if (name == norm + 5 && !is_standard(name) && !vb_mount_has_device(name))
        return NULL;  /* /dev/null and the like */
    const char *mount = vb_mount();
    if (!mount)
        return NULL;
    if ((size_t)snprintf(out, size, "%s/dev/%s", mount, name) >= size)
        return NULL;
    vb_debug("%s -> %s", path, out);
    return out;
}

/* -- open ----------------------------------------------------------------------------------------- */

static int has_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    vb_init();
    char buf[PATH_MAX];
    const char *to = redirect(dirfd, path, buf, sizeof buf);
    int fd;
    if (dirfd == AT_FDCWD || (to && to[0] == '/'))
        fd = vb_real.open(to ? to : path, flags, mode);
    else
        fd = vb_real.openat(dirfd, path, flags, mode);
    if (fd >= 0 && to)
        vb_device_opened(fd);
    return fd;
}

#define MODE_ARG(flags, mode)                  \
    mode_t mode = 0;                           \
    if (has_mode(flags)) {                     \
        va_list ap;                            \
        va_start(ap, flags);                   \
        mode = (mode_t)va_arg(ap, int);        \
        va_end(ap);                            \
    }

VB_API int open(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(AT_FDCWD, path, flags, mode);
}

VB_API int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

VB_API int __open(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(AT_FDCWD, path, flags, mode);
}

VB_API int __open64(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

VB_API int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(dirfd, path, flags, mode);
}

VB_API int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(dirfd, path, flags | O_LARGEFILE, mode);
}

/* The fortified forms (_FORTIFY_SOURCE): no mode argument (O_CREAT without one is an abort). */
VB_API int __open_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags, 0);
}

VB_API int __open64_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

VB_API int __openat_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags, 0);
}

VB_API int __openat64_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags | O_LARGEFILE, 0);
}

VB_API int creat(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

VB_API int creat64(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC | O_LARGEFILE, mode);
}

/* -- stat ----------------------------------------------------------------------------------------- */

static int fix_stat(int ret, struct stat *st, int redirected)
{
    if (ret == 0 && (redirected || vb_stat_is_device(st->st_dev, st->st_ino, st->st_mode)))
        vb_fake_stat(st);
    return ret;
}

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    vb_init();
    if ((flags & AT_EMPTY_PATH) && path && !*path)
        return fix_stat(vb_real.fstatat(dirfd, path, st, flags), st, 0);
    char buf[PATH_MAX];
    const char *to = redirect(dirfd, path, buf, sizeof buf);
    return fix_stat(vb_real.fstatat(to ? AT_FDCWD : dirfd, to ? to : path, st, flags), st, to != NULL);
}

VB_API int stat(const char *path, struct stat *st)
{
    return do_fstatat(AT_FDCWD, path, st, 0);
}

VB_API int stat64(const char *path, struct stat64 *st)
{
    return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0);
}

VB_API int lstat(const char *path, struct stat *st)
{
    return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

VB_API int lstat64(const char *path, struct stat64 *st)
{
    return do_fstatat(AT_FDCWD, path, (struct stat *)st, AT_SYMLINK_NOFOLLOW);
}

VB_API int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return do_fstatat(dirfd, path, st, flags);
}

VB_API int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    return do_fstatat(dirfd, path, (struct stat *)st, flags);
}

VB_API int fstat(int fd, struct stat *st)
{
    vb_init();
    return fix_stat(vb_real.fstat(fd, st), st, 0);
}

VB_API int fstat64(int fd, struct stat64 *st)
{
    return fstat(fd, (struct stat *)st);
}

/* The stat functions of glibc before 2.33, which older binaries still call (x86-64: the version
 * argument is always the kernel's struct stat). */
VB_API int __xstat(int ver, const char *path, struct stat *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, st, 0);
}

VB_API int __xstat64(int ver, const char *path, struct stat64 *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0);
}

VB_API int __lxstat(int ver, const char *path, struct stat *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

VB_API int __lxstat64(int ver, const char *path, struct stat64 *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, (struct stat *)st, AT_SYMLINK_NOFOLLOW);
}

VB_API int __fxstat(int ver, int fd, struct stat *st)
{
    (void)ver;
    return fstat(fd, st);
}

VB_API int __fxstat64(int ver, int fd, struct stat64 *st)
{
    (void)ver;
    return fstat(fd, (struct stat *)st);
}

VB_API int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
    (void)ver;
    return do_fstatat(dirfd, path, st, flags);
}

VB_API int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
    (void)ver;
    return do_fstatat(dirfd, path, (struct stat *)st, flags);
}

VB_API int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *sx)
{
    vb_init();
    char buf[PATH_MAX];
    const char *to = NULL;
    if (!(flags & AT_EMPTY_PATH) || *path)
        to = redirect(dirfd, path, buf, sizeof buf);
    int ret = vb_real.statx(to ? AT_FDCWD : dirfd, to ? to : path, flags, mask | STATX_TYPE | STATX_INO, sx);
    if (ret == 0 && (to || (sx->stx_mask & (STATX_TYPE | STATX_INO)) == (STATX_TYPE | STATX_INO))) {
        dev_t dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
        if (to || vb_stat_is_device(dev, sx->stx_ino, sx->stx_mode))
            vb_fake_statx(sx);
    }
    return ret;
}

/* -- access ---------------------------------------------------------------------------------------- */

VB_API int access(const char *path, int mode)
{
    vb_init();
    char buf[PATH_MAX];
    const char *to = redirect(AT_FDCWD, path, buf, sizeof buf);
    return vb_real.access(to ? to : path, mode);
}

VB_API int faccessat(int dirfd, const char *path, int mode, int flags)
{
    vb_init();
    char buf[PATH_MAX];
    const char *to = redirect(dirfd, path, buf, sizeof buf);
    return vb_real.faccessat(to ? AT_FDCWD : dirfd, to ? to : path, mode, flags);
}

VB_API int euidaccess(const char *path, int mode)
{
    vb_init();
    char buf[PATH_MAX];
    const char *to = redirect(AT_FDCWD, path, buf, sizeof buf);
    return vb_real.euidaccess(to ? to : path, mode);
}

VB_API int eaccess(const char *path, int mode)
{
    return euidaccess(path, mode);
}

/* -- extended attributes (ls -l asks for ACLs) ---------------------------------------------------- */

typedef ssize_t (*getxattr_fn)(const char *, const char *, void *, size_t);
typedef ssize_t (*listxattr_fn)(const char *, char *, size_t);

static ssize_t get_xattr(const char *which, const char *path, const char *name, void *value, size_t size)
{
    getxattr_fn next = (getxattr_fn)dlsym(RTLD_NEXT, which);
    char buf[PATH_MAX];
    const char *to = redirect(AT_FDCWD, path, buf, sizeof buf);
    return next(to ? to : path, name, value, size);
}

static ssize_t list_xattr(const char *which, const char *path, char *list, size_t size)
{
    listxattr_fn next = (listxattr_fn)dlsym(RTLD_NEXT, which);
    char buf[PATH_MAX];
    const char *to = redirect(AT_FDCWD, path, buf, sizeof buf);
    return next(to ? to : path, list, size);
}

VB_API ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
    return get_xattr("getxattr", path, name, value, size);
}

VB_API ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
    return get_xattr("lgetxattr", path, name, value, size);
}

VB_API ssize_t listxattr(const char *path, char *list, size_t size)
{
    return list_xattr("listxattr", path, list, size);
}

VB_API ssize_t llistxattr(const char *path, char *list, size_t size)
{
    return list_xattr("llistxattr", path, list, size);
}
