/* ioctl on a vbinder device file: every ioctl of 6.1's binder, with the kernel's results.
 *
 * The request is compared as 32 bits (the kernel's ioctl takes an unsigned int: a caller that
 * passes an int gets it sign-extended). The VFS's own ioctls (FIOCLEX, FIONCLEX, FIONBIO,
 * FIOASYNC) act on the real fd; FIOQSIZE is ENOTTY, as on a character device. Everything else
 * goes to the daemon as one request: unknown numbers come back EINVAL from the driver, with its
 * log line. The argument is read where binder_ioctl reads it (copy_from_user) and written back
 * where it writes it, each with the kernel's errno when the memory is not there (6.1 answers
 * EINVAL for some of those, EFAULT for the others; the oracle agrees).
 */
#include "vbpreload.h"

#include <errno.h>
#include <linux/android/binder.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What binder_ioctl does with the argument of each ioctl: read it first, write it back after
 * success, and which errno a fault gives (0: it does not). */
struct arg_use {
    uint32_t cmd;
    int read_fault, write_fault;
};

static const struct arg_use USES[] = {
    {BINDER_SET_MAX_THREADS, EINVAL, 0},
    {BINDER_SET_CONTEXT_MGR_EXT, EINVAL, 0},
    {BINDER_VERSION, 0, EINVAL},  /* put_user, answered EINVAL */
    {BINDER_GET_NODE_INFO_FOR_REF, EFAULT, EFAULT},
    {BINDER_GET_NODE_DEBUG_INFO, EFAULT, EFAULT},
    {BINDER_FREEZE, EFAULT, 0},
    {BINDER_GET_FROZEN_INFO, EFAULT, EFAULT},
    {BINDER_ENABLE_ONEWAY_SPAM_DETECTION, EFAULT, 0},
    {BINDER_GET_EXTENDED_ERROR, 0, EFAULT},
};

static const struct arg_use *arg_use(uint32_t cmd)
{
    for (size_t i = 0; i < sizeof USES / sizeof *USES; i++)
        if (USES[i].cmd == cmd)
            return &USES[i];
    return NULL;
}

/* Any ioctl but BINDER_WRITE_READ: the ioctl's result, 0 or more, or -errno. */
static int other_ioctl(int fd, uint32_t cmd, uint64_t argp)
{
    if (_IOC_TYPE(cmd) == 'v')
        return -EINVAL;  /* vbinder's own ioctls are the library's business, not the program's */
    const struct arg_use *use = arg_use(cmd);
    size_t size = _IOC_SIZE(cmd);
    uint8_t small[64];
    uint8_t *arg = size <= sizeof small ? small : calloc(1, size);
    if (!arg)
        return -ENOMEM;
    memset(arg, 0, size);
    int ret;
    if (use && use->read_fault && vb_mem_read(arg, argp, size) != size) {
        ret = -use->read_fault;
        goto out;
    }
    struct vb_reply reply;
    ret = vb_simple_ioctl(fd, cmd, arg, (uint32_t)size, &reply);
    if (ret)
        goto out;
    ret = reply.ret;
    if (cmd == BINDER_THREAD_EXIT && ret == 0)
        vb_thread_forget_fast_path();  /* the daemon forgot this thread's read buffer */
    if (ret >= 0 && reply.arg_len && use && use->write_fault
        && vb_mem_write(argp, reply.arg, reply.arg_len) != reply.arg_len)
        ret = -use->write_fault;
out:
    if (arg != small)
        free(arg);
    return ret;
}

static int device_ioctl(int fd, uint64_t token, uint32_t cmd, uint64_t argp)
{
    switch (cmd) {
    case FIOCLEX: case FIONCLEX: case FIONBIO: case FIOASYNC: {
        long r = syscall(SYS_ioctl, fd, (unsigned long)cmd, (unsigned long)argp);
        return r < 0 ? -errno : (int)r;
    }
    case FIOQSIZE:
        return -ENOTTY;
    case BINDER_WRITE_READ:
        return vb_write_read(fd, token, argp);
    default:
        return other_ioctl(fd, cmd, argp);
    }
}

VB_API int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    uint64_t token;
    if (!vb_device_fd(fd, &token)) {
        if (vb_real.ioctl)
            return vb_real.ioctl(fd, request, arg);
        return (int)syscall(SYS_ioctl, fd, request, arg);
    }
    int saved = errno;
    int ret = device_ioctl(fd, token, (uint32_t)request, (uint64_t)(uintptr_t)arg);
    if (ret < 0) {
        errno = -ret;
        return -1;
    }
    errno = saved;
    return ret;
}
