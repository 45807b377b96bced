/* The mapped area: mmap of a device file gives the program real, read-only memory at the address
 * it gets back, which the transaction buffers the driver delivers appear in.
 *
 * The area is a memfd mapped twice: the program's view, shared and read-only, and the library's
 * writable view, where it copies each buffer a reply delivers. The memfd is sealed with
 * F_SEAL_FUTURE_WRITE once the writable view exists, so the program's view cannot become
 * writable (mprotect(PROT_WRITE) fails with EACCES, as on the kernel's area, whose binder_mmap
 * clears VM_MAYWRITE); a write to it is a SIGSEGV. Both views are MADV_DONTFORK (the kernel's
 * VM_DONTCOPY): a child has no area. The file is as long as the part the driver uses (at most
 * 4 MiB), so a read beyond it is a SIGBUS, as beyond the kernel's. The daemon learns the area
 * with VBINDER_MMAP (binder_mmap's checks and log lines) and VBINDER_MUNMAP ends it
 * (binder_vma_close) when the program unmaps any part of it.
 *
 * While an area is mapped the library holds a duplicate of the device fd (close-on-exec, closed
 * in a forked child): the kernel's mapping holds the open file the same way, so a close of the
 * program's fd does not release the binder proc before the munmap.
 */
#include "vbpreload.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define ANCHOR_MIN_FD 100  /* the duplicate fd goes above the fds a program usually counts on */

struct area {
    uint64_t token;      /* the open file */
    uint64_t addr, len;  /* the program's view, as mapped (what the daemon knows) */
    uint8_t *rw;         /* the library's view */
    size_t used;         /* the part the driver uses (its length) */
    int anchor;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct area *areas;
static size_t nareas, cap;

/* The system calls themselves (MAP_FAILED or -1 with errno), never an interposed mmap. */
static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int sys_munmap(void *addr, size_t len)
{
    return (int)syscall(SYS_munmap, addr, len);
}

static int in_range(uint64_t addr, uint64_t len)
{
    return addr >= VB_MMAP_BASE && addr <= VB_MMAP_END && len <= VB_MMAP_END - addr;
}

/* Map the program's view where the daemon accepts areas: where the kernel puts it if that is
 * inside the range (it nearly always is), else at the first free place found below the range's
 * top (an address space without randomization, for example). */
static void *map_view(void *want, size_t len, int prot, int flags, int memfd)
{
    int fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
    if (fixed && !in_range((uint64_t)(uintptr_t)want, len)) {
        errno = EINVAL;  /* the driver accepts areas only in its range (docs/preload.md) */
        return MAP_FAILED;
    }
    void *p = sys_mmap(want, len, prot, flags, memfd, 0);
    if (p == MAP_FAILED)
        return MAP_FAILED;
    if (fixed || in_range((uint64_t)(uintptr_t)p, len))
        return p;
    sys_munmap(p, len);
    uint64_t step = 1ull << 30;
    for (uint64_t at = (VB_MMAP_END - len - step) & ~(VB_PAGE - 1); at > VB_MMAP_BASE + step; at -= step) {
        p = sys_mmap((void *)(uintptr_t)at, len, prot, flags | MAP_FIXED_NOREPLACE, memfd, 0);
        if (p == MAP_FAILED)
            continue;
        if ((uint64_t)(uintptr_t)p == at)
            return p;
        sys_munmap(p, len);  /* a kernel before 4.17 took it as a hint */
    }
    errno = ENOMEM;
    return MAP_FAILED;
}

static int add_area(struct area a)
{
    if (nareas == cap) {
        size_t ncap = cap ? cap * 2 : 4;
        struct area *n = realloc(areas, ncap * sizeof *n);
        if (!n)
            return -1;
        areas = n;
        cap = ncap;
    }
    areas[nareas++] = a;
    return 0;
}

/* The duplicate fd still names the open file (the token in its file position). */
static int anchor_ok(const struct area *a)
{
    int saved = errno;
    long long pos = a->anchor >= 0 ? syscall(SYS_lseek, a->anchor, 0, SEEK_CUR) : -1;
    errno = saved;
    return pos > 0 && (uint64_t)pos == a->token;
}

static void free_area(struct area *a)
{
    sys_munmap(a->rw, a->used);
    if (a->anchor >= 0)
        close(a->anchor);
}

void *vb_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, uint64_t token)
{
    int accmode = fcntl(fd, F_GETFL) & O_ACCMODE;
    if (len == 0 || (off & (off_t)(VB_PAGE - 1)) || !(flags & (MAP_SHARED | MAP_PRIVATE))) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    if (accmode == O_WRONLY || ((prot & PROT_WRITE) && (flags & MAP_SHARED) && accmode != O_RDWR)) {
        errno = EACCES;  /* the VFS's checks of the open mode */
        return MAP_FAILED;
    }
    size_t vlen = (len + VB_PAGE - 1) & ~(VB_PAGE - 1);
    struct vb_reply reply;
    if (prot & PROT_WRITE) {
        /* binder_mmap refuses a writable area (EPERM, and a log line): the daemon says so. */
        struct vb_mmap_arg arg = {0, vlen, (uint32_t)prot, (uint32_t)flags};
        int err = vb_simple_ioctl(fd, VB_IOC_MMAP, &arg, sizeof arg, &reply);
        errno = err ? -err : reply.ret < 0 ? -reply.ret : EPERM;
        return MAP_FAILED;
    }
    if (vb_token_pid(token) == (getpid() & 0x3fffff) && !vb_token_ours(token)) {
        errno = EINVAL;  /* opened before an exec: another mm (binder_alloc_mmap_handler) */
        return MAP_FAILED;
    }
    size_t used = vlen < VB_MMAP_MAX_USED ? vlen : VB_MMAP_MAX_USED;
    int memfd = (int)syscall(SYS_memfd_create, "vbinder-area", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memfd < 0)
        return MAP_FAILED;
    void *view = MAP_FAILED;
    uint8_t *rw = MAP_FAILED;
    int anchor = -1, err = ENOMEM;
    if (ftruncate(memfd, (off_t)used))
        goto fail;
    rw = sys_mmap(NULL, used, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (rw == MAP_FAILED)
        goto fail;
    madvise(rw, used, MADV_DONTFORK);
    if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)) {
        err = errno;
        goto fail;
    }
    int vflags = (flags & ~(MAP_PRIVATE | MAP_SHARED | MAP_SHARED_VALIDATE | MAP_ANONYMOUS)) | MAP_SHARED;
    view = map_view(addr, len, prot, vflags, memfd);
    if (view == MAP_FAILED) {
        err = errno;
        goto fail;
    }
    madvise(view, vlen, MADV_DONTFORK);
    struct vb_mmap_arg arg = {(uint64_t)(uintptr_t)view, vlen, (uint32_t)prot, (uint32_t)flags};
    int e = vb_simple_ioctl(fd, VB_IOC_MMAP, &arg, sizeof arg, &reply);
    if (e || reply.ret < 0) {
        err = e ? -e : -reply.ret;
        goto fail;
    }
    anchor = fcntl(fd, F_DUPFD_CLOEXEC, ANCHOR_MIN_FD);
    if (anchor < 0)
        anchor = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_lock(&lock);
    int added = add_area((struct area){token, (uint64_t)(uintptr_t)view, vlen, rw, used, anchor});
    pthread_mutex_unlock(&lock);
    if (added) {
        struct vb_munmap_arg un = {(uint64_t)(uintptr_t)view, vlen};
        vb_simple_ioctl(fd, VB_IOC_MUNMAP, &un, sizeof un, &reply);
        goto fail;
    }
    close(memfd);
    vb_debug("mmap fd %d: area %p-%p (%zu used)", fd, view, (char *)view + vlen, used);
    return view;
fail:
    if (anchor >= 0)
        close(anchor);
    if (view != MAP_FAILED)
        sys_munmap(view, len);
    if (rw != MAP_FAILED)
        sys_munmap(rw, used);
    close(memfd);
    errno = err;
    return MAP_FAILED;
}

void vb_munmap_done(uint64_t addr, size_t len)
{
    uint64_t end = addr + ((len + VB_PAGE - 1) & ~(VB_PAGE - 1));
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nareas;) {
        struct area *a = &areas[i];
        if (addr < a->addr + a->len && a->addr < end) {
            /* Any part unmapped closes the kernel's vma: the area ends (binder_vma_close). */
            struct vb_munmap_arg un = {a->addr, a->len};
            struct vb_reply reply;
            if (!anchor_ok(a)) {
                a->anchor = -1;  /* the program closed it (closefrom, say): its number is not ours */
            } else {
                vb_simple_ioctl(a->anchor, VB_IOC_MUNMAP, &un, sizeof un, &reply);
            }
            vb_debug("munmap: area %p ended", (void *)(uintptr_t)a->addr);
            free_area(a);
            areas[i] = areas[--nareas];
            continue;
        }
        i++;
    }
    pthread_mutex_unlock(&lock);
}

void vb_area_lock(void)
{
    pthread_mutex_lock(&lock);
}

void vb_area_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

int vb_area_put(uint64_t token, uint64_t addr, const uint8_t *data, uint64_t len)
{
    for (size_t i = 0; i < nareas; i++) {
        struct area *a = &areas[i];
        if (a->token != token)
            continue;
        if (addr < a->addr || addr - a->addr > a->used || len > a->used - (addr - a->addr))
            return 0;
        memcpy(a->rw + (addr - a->addr), data, len);
        return 1;
    }
    return 0;
}

int vb_area_describe(char *out, size_t size)
{
    size_t used = 0;
    out[0] = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nareas; i++) {
        int n = snprintf(out + used, size - used, "%s%llx:%llx:%llx", used ? "," : "",
                         (unsigned long long)areas[i].token, (unsigned long long)areas[i].addr,
                         (unsigned long long)areas[i].len);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    pthread_mutex_unlock(&lock);
    return used > 0;
}

void vb_area_after_fork(void)
{
    /* The child has none of the views (MADV_DONTFORK) and holds no area: forget them. */
    pthread_mutex_init(&lock, NULL);
    for (size_t i = 0; i < nareas; i++)
        if (areas[i].anchor >= 0)
            close(areas[i].anchor);
    nareas = 0;
}

/* -- the interposed functions ------------------------------------------------------------------ */

static void *pass_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (vb_real.mmap)
        return vb_real.mmap(addr, len, prot, flags, fd, off);
    return sys_mmap(addr, len, prot, flags, fd, off);
}

VB_API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    uint64_t token;
    if ((flags & MAP_ANONYMOUS) || fd < 0 || !vb_device_fd(fd, &token))
        return pass_mmap(addr, len, prot, flags, fd, off);
    return vb_mmap(addr, len, prot, flags, fd, off, token);
}

VB_API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

VB_API int munmap(void *addr, size_t len)
{
    int ret = vb_real.munmap ? vb_real.munmap(addr, len) : sys_munmap(addr, len);
    if (ret == 0 && __atomic_load_n(&nareas, __ATOMIC_RELAXED))
        vb_munmap_done((uint64_t)(uintptr_t)addr, len);
    return ret;
}
