/* The caller's memory, as the kernel's copy_from_user / copy_to_user see it.
 *
 * A program may hand the driver any pointer; the kernel never faults on a bad one, it returns
 * EFAULT. So this library never dereferences a pointer the program gave it: it copies through
 * process_vm_readv / process_vm_writev on its own process, which respect the page protections
 * (a read-only page cannot be written, a PROT_NONE page cannot be read) and stop at the first
 * page that fails. Where those calls are refused (a seccomp filter), a pipe does the same job:
 * write(2) from the memory reads it, read(2) into the memory writes it, each with EFAULT.
 */
#include "vbpreload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define USER_TOP 0x800000000000ull  /* above the x86-64 user address space everything faults */

static int use_pipe;  /* process_vm_* refused here: the pipe fallback */
static pid_t self;    /* this process (a forked child sets it again) */
static int pipe_fds[2] = {-1, -1};
static pthread_mutex_t pipe_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t clamp(uint64_t addr, size_t len)
{
    if (addr >= USER_TOP)
        return 0;
    return len > USER_TOP - addr ? (size_t)(USER_TOP - addr) : len;
}

static ssize_t vm_rw(int write, uint64_t addr, void *local, size_t len)
{
    struct iovec l = {local, len}, r = {(void *)(uintptr_t)addr, len};
    if (!self)
        self = getpid();
    long n = syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, self, &l, 1ul, &r, 1ul, 0ul);
    if (n < 0 && (errno == ENOSYS || errno == EPERM))
        return -2;
    return n < 0 ? 0 : n;
}

/* The fallback: one chunk through a pipe (under pipe_lock); returns bytes moved. */
static size_t pipe_rw(int write, uint64_t addr, void *local, size_t len)
{
    if (pipe_fds[0] < 0 && pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK))
        return 0;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done > 65536 ? 65536 : len - done;
        const void *from = write ? (const uint8_t *)local + done : (const void *)(uintptr_t)(addr + done);
        void *to = write ? (void *)(uintptr_t)(addr + done) : (uint8_t *)local + done;
        ssize_t in = syscall(SYS_write, pipe_fds[1], from, n);
        if (in <= 0)
            break;
        ssize_t out = syscall(SYS_read, pipe_fds[0], to, (size_t)in);
        if (out < in) {  /* the destination faulted: drain what is left */
            char sink[4096];
            while (syscall(SYS_read, pipe_fds[0], sink, sizeof sink) > 0) {}
            if (out > 0)
                done += (size_t)out;
            break;
        }
        done += (size_t)in;
        if ((size_t)in < n)
            break;
    }
    return done;
}

static size_t copy(int write, uint64_t addr, void *local, size_t len)
{
    len = clamp(addr, len);
    if (!len)
        return 0;
    int saved = errno;
    if (!use_pipe) {
        ssize_t n = vm_rw(write, addr, local, len);
        if (n != -2) {
            errno = saved;
            return (size_t)n;
        }
        use_pipe = 1;
    }
    pthread_mutex_lock(&pipe_lock);
    size_t n = pipe_rw(write, addr, local, len);
    pthread_mutex_unlock(&pipe_lock);
    errno = saved;
    return n;
}

void vb_memory_after_fork(void)
{
    pthread_mutex_init(&pipe_lock, NULL);
    self = getpid();
}

size_t vb_mem_read(void *dst, uint64_t addr, size_t len)
{
    return copy(0, addr, dst, len);
}

size_t vb_mem_write(uint64_t addr, const void *src, size_t len)
{
    return copy(1, addr, (void *)src, len);
}

size_t vb_mem_writable(uint64_t addr, size_t len)
{
    /* Read each page's first byte and write it back: the prefix where both work. */
    size_t ok = 0;
    while (ok < len) {
        uint64_t at = addr + ok;
        size_t in_page = (size_t)(VB_PAGE - (at & (VB_PAGE - 1)));
        uint8_t byte;
        if (vb_mem_read(&byte, at, 1) != 1 || vb_mem_write(at, &byte, 1) != 1)
            break;
        ok += in_page;
    }
    return ok < len ? ok : len;
}
