/* Which fds are vbinder device files, and the token that names each open one.
 *
 * A device file is a regular file directly in the dev/ directory of a vbinder mount (fsname
 * "vbinder" in /proc/self/mountinfo). The program holds the real fd of that file, so poll,
 * close, dup, fork and exec need nothing from this library; what it must recognise is the fd
 * when an ioctl or mmap comes, also an fd it never saw opened (inherited across exec, received
 * from another process): statx(AT_STATX_DONT_SYNC) against the mounts, without a FUSE request.
 *
 * The token: this library never reads or writes a device fd with read(2)/write(2) (only
 * pread/pwrite, whose offsets are explicit), so the file position of an open device file is
 * free. At the first sight of one, the library sets it to a token: a mark bit, the pid and a
 * per-image nonce of the process that opened it, and a serial number. Every fd of that open
 * file (dup, fork, SCM_RIGHTS, exec) then reads the same token with one lseek, which names the
 * open file (its mapped area) and tells whether this process image opened it, as the kernel's
 * binder_mmap asks (the opener's task, then its mm).
 */
#include "vbpreload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define MAX_MOUNTS 16
#define MAX_DEVICES 32
#define RESCAN_NS 1000000000ll  /* an unknown file system is looked up in mountinfo once a second */

struct mount {
    unsigned major, minor;
    char path[4096];
    int ndev;
    uint64_t ino[MAX_DEVICES];
    char name[MAX_DEVICES][64];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mount mounts[MAX_MOUNTS];
static int nmounts;
static long long last_scan_ns = -RESCAN_NS;
static char redirect_mount[4096];  /* where /dev/binder goes: $VBINDER_MOUNT or the one mount */
static int redirect_state;         /* 0 not looked up, 1 found, -1 none */
static uint32_t image_nonce;
static uint32_t serial;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* mountinfo escapes spaces and the like as \ooo */
static void unescape(char *s)
{
    char *out = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = 0;
}

/* The device files of a mount: the regular files in its dev/ directory. */
static void list_devices(struct mount *m)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/dev", m->path);
    int dfd = (int)syscall(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    m->ndev = 0;
    if (dfd < 0)
        return;
    char buf[8192];
    long n;
    while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_type != DT_REG || m->ndev >= MAX_DEVICES || strlen(d->d_name) >= sizeof m->name[0])
                continue;
            m->ino[m->ndev] = d->d_ino;
            strcpy(m->name[m->ndev], d->d_name);
            m->ndev++;
        }
    }
    close(dfd);
}

/* Read /proc/self/mountinfo for vbinder mounts (under `lock`). */
static void scan_mounts(void)
{
    last_scan_ns = now_ns();
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    char line[8192];
    int n = 0;
    static struct mount found[MAX_MOUNTS];  /* under `lock`; too big for a thread's stack */
    while (n < MAX_MOUNTS && fgets(line, sizeof line, f)) {
        /* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char fstype[256], source[256];
        if (sscanf(sep + 3, "%255s %255s", fstype, source) != 2)
            continue;
        if (strcmp(source, "vbinder") || strncmp(fstype, "fuse", 4))
            continue;
        unsigned major, minor;
        char root[4096], path[4096];
        if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &major, &minor, root, path) != 4 || strcmp(root, "/"))
            continue;
        unescape(path);
        struct mount *m = &found[n];
        m->major = major;
        m->minor = minor;
        snprintf(m->path, sizeof m->path, "%s", path);
        m->ndev = -1;  /* listed when first needed */
        for (int i = 0; i < nmounts; i++)
            if (mounts[i].major == major && mounts[i].minor == minor && !strcmp(mounts[i].path, path))
                *m = mounts[i];  /* keep what we know */
        n++;
    }
    fclose(f);
    memcpy(mounts, found, sizeof(struct mount) * (size_t)n);
    nmounts = n;
}

static struct mount *find_mount(unsigned major, unsigned minor, int rescan)
{
    for (int i = 0; i < nmounts; i++)
        if (mounts[i].major == major && mounts[i].minor == minor)
            return &mounts[i];
    if (rescan && now_ns() - last_scan_ns >= RESCAN_NS) {
        scan_mounts();
        return find_mount(major, minor, 0);
    }
    return NULL;
}

static int device_index(struct mount *m, uint64_t ino)
{
    if (m->ndev < 0)
        list_devices(m);
    for (int i = 0; i < m->ndev; i++)
        if (m->ino[i] == ino)
            return i;
    return -1;
}

/* A file on a vbinder mount's dev/: its index there, or -1. Cheap for everything else. (Its
 * size says nothing: the kernel grows a FUSE file's cached size with every pwrite.) */
static int lookup(unsigned major, unsigned minor, uint64_t ino, int is_reg)
{
    if (!is_reg || major != 0)  /* FUSE file systems have major 0 */
        return -1;
    pthread_mutex_lock(&lock);
    struct mount *m = find_mount(major, minor, 1);
    int i = m ? device_index(m, ino) : -1;
    pthread_mutex_unlock(&lock);
    return i;
}

int vb_stat_is_device(dev_t dev, ino_t ino, mode_t mode)
{
    return lookup(major(dev), minor(dev), ino, S_ISREG(mode)) >= 0;
}

/* -- tokens -------------------------------------------------------------------------------------- */

static void new_image(void)
{
    uint32_t r = 0;
    if (syscall(SYS_getrandom, &r, sizeof r, 0) != sizeof r)
        r = (uint32_t)now_ns() ^ (uint32_t)getpid();
    image_nonce = r & 0xffffff;
    serial = 0;
}

static uint64_t make_token(void)
{
    uint32_t s = __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED) & 0xffff;
    return VB_TOKEN_MARK | ((uint64_t)(getpid() & 0x3fffff) << 40) | ((uint64_t)image_nonce << 16) | s;
}

int vb_token_pid(uint64_t token)
{
    return (int)((token >> 40) & 0x3fffff);
}

int vb_token_ours(uint64_t token)
{
    return vb_token_pid(token) == (getpid() & 0x3fffff) && ((token >> 16) & 0xffffff) == image_nonce;
}

static int is_token(long long pos)
{
    return pos > 0 && ((uint64_t)pos & VB_TOKEN_MARK);
}

int vb_device_fd(int fd, uint64_t *token)
{
    int saved = errno;
    long long pos = syscall(SYS_lseek, fd, 0, SEEK_CUR);
    if (is_token(pos)) {
        *token = (uint64_t)pos;
        return 1;
    }
    struct statx sx;
    if (pos < 0 || syscall(SYS_statx, fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx)
        || lookup(sx.stx_dev_major, sx.stx_dev_minor, sx.stx_ino, S_ISREG(sx.stx_mode)) < 0) {
        errno = saved;
        return 0;
    }
    /* A device file this library has not seen yet (opened without it): ours from now on. */
    uint64_t t = make_token();
    syscall(SYS_lseek, fd, (long long)t, SEEK_SET);
    *token = t;
    errno = saved;
    return 1;
}

void vb_device_opened(int fd)
{
    uint64_t token;
    if (fd >= 0)
        vb_device_fd(fd, &token);
}

/* -- where /dev/binder goes ---------------------------------------------------------------------- */

static unsigned redirect_major, redirect_minor;

const char *vb_mount(void)
{
    pthread_mutex_lock(&lock);
    if (!redirect_state) {
        const char *env = getenv("VBINDER_MOUNT");
        redirect_state = -1;
        if (env && *env) {
            snprintf(redirect_mount, sizeof redirect_mount, "%s", env);
            redirect_state = 1;
        } else {
            scan_mounts();
            if (nmounts == 1) {
                snprintf(redirect_mount, sizeof redirect_mount, "%s", mounts[0].path);
                redirect_state = 1;
            }
        }
        struct stat st;
        if (redirect_state > 0 && syscall(SYS_newfstatat, AT_FDCWD, redirect_mount, &st, 0) == 0) {
            redirect_major = major(st.st_dev);
            redirect_minor = minor(st.st_dev);
        }
    }
    pthread_mutex_unlock(&lock);
    return redirect_state > 0 ? redirect_mount : NULL;
}

int vb_mount_has_device(const char *name)
{
    if (!vb_mount())
        return 0;
    pthread_mutex_lock(&lock);
    struct mount *m = find_mount(redirect_major, redirect_minor, 1);
    int found = 0;
    if (m) {
        if (m->ndev < 0)
            list_devices(m);
        for (int i = 0; i < m->ndev && !found; i++)
            found = !strcmp(m->name[i], name);
    }
    pthread_mutex_unlock(&lock);
    return found;
}

/* -- stat results ------------------------------------------------------------------------------- */

/* The kernel's binder devices are misc character devices (10, dynamic minor: 124 for binder on
 * the oracle's 6.1); vbinder's device files read as such, with their permissions. */
static unsigned fake_minor(unsigned major, unsigned minor, uint64_t ino)
{
    pthread_mutex_lock(&lock);
    struct mount *m = find_mount(major, minor, 1);
    int i = m ? device_index(m, ino) : 0;
    pthread_mutex_unlock(&lock);
    return 124u - (unsigned)(i < 0 ? 0 : i);
}

void vb_fake_stat(struct stat *st)
{
    st->st_rdev = makedev(10, fake_minor(major(st->st_dev), minor(st->st_dev), st->st_ino));
    st->st_mode = S_IFCHR | (st->st_mode & 07777);
    st->st_size = 0;
    st->st_blocks = 0;
}

void vb_fake_statx(void *p)
{
    struct statx *sx = p;
    if (!(sx->stx_mask & STATX_TYPE))
        return;
    sx->stx_rdev_major = 10;
    sx->stx_rdev_minor = fake_minor(sx->stx_dev_major, sx->stx_dev_minor, sx->stx_ino);
    sx->stx_mode = (uint16_t)(S_IFCHR | (sx->stx_mode & 07777));
    sx->stx_size = 0;
    sx->stx_blocks = 0;
}

void vb_device_after_fork(void)
{
    pthread_mutex_init(&lock, NULL);
}

__attribute__((constructor)) static void device_init(void)
{
    new_image();
}
