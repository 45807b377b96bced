/* The request slot (docs/abi-slot.md, an extension of the device ABI version 1): one FUSE request
 * per ioctl.
 *
 * When the daemon offers it (VBINDER_FEATURES bit 2) and the open file has an fd channel, the
 * opener makes a sealed memfd of REGIONS regions, sends it on the channel (a SLOT record) and asks
 * VBINDER_SLOT whether the daemon took it. A thread takes a free region at its first large
 * request (its own until it ends); the request goes into its region after a sequence number new
 * for every request, and one pread at tid << 40 | 1 << 39 | region_start runs it, write phase and
 * read phase. A reply longer than that pread comes back in the region, announced by a stub.
 *
 * Requests shorter than SLOT_MIN go by pwrite (measured faster for them on 2 cores,
 * docs/abi-slot.md); VBINDER_SLOT=1 sends every BINDER_WRITE_READ by the slot, VBINDER_SLOT=0
 * registers none: the variables and sizes of vbinder_client (client/request_slot.py).
 *
 * The slot follows the fd channel: only the process that bound the channel uses it (a forked
 * child closes its copy of the memfd, an exec's close-on-exec does), and it goes when the
 * channel goes. A thread holding a region holds a reference, so the struct outlives the channel
 * until its threads let go.
 */
#include "vbpreload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define REGION (2u << 20)  /* a thread's region: requests and replies up to 2 MiB - 8 */
#define REGIONS 16         /* threads with a region at once (more use pwrite) */
#define SLOT_MIN 16384     /* the shortest request sent by the slot (VBINDER_SLOT=1: 0) */
#define SEQ_SIZE 8         /* a region starts with its request's number, then the frame */
#define SLOT_MAGIC ((uint32_t)'V' | (uint32_t)'B' << 8 | (uint32_t)'F' << 16 | (uint32_t)'R' << 24)

struct slot_record { uint32_t magic, flags; uint64_t region; };
_Static_assert(sizeof(struct slot_record) == 16, "the SLOT record");
_Static_assert(REGIONS <= 32, "the free regions are a 32-bit mask");

struct vb_slot {
    int fd;            /* the memfd; -1 once the slot is gone (or in a forked child) */
    pid_t owner;       /* the process that registered it: the only one that uses it */
    uint32_t min;      /* the shortest request it carries */
    uint32_t used;     /* bit i: region i belongs to a thread (atomic) */
    int refs;          /* the channel's, and one per thread holding a region (atomic) */
    int gone;          /* the daemon no longer has it (atomic) */
};

static uint64_t seq_counter;  /* every slot request's number, process-wide */

/* -- registration ------------------------------------------------------------------------------ */

static int send_record(int sock, int memfd)
{
    struct slot_record r = {SLOT_MAGIC, 0, REGION};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {&r, sizeof r};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &memfd, sizeof memfd);
    long n;
    do
        n = syscall(SYS_sendmsg, sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == (long)sizeof r ? 0 : -EIO;
}

static int make_memfd(void)
{
    int fd = (int)syscall(SYS_memfd_create, "vbinder-slot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    /* F_SEAL_SHRINK only: F_SEAL_GROW makes a pwrite into the file fail with EPERM on some
     * kernels, and the daemon writes only below the size it registered anyway. */
    if (syscall(SYS_ftruncate, fd, (long)REGION * REGIONS) < 0
        || syscall(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
        int err = -errno;
        syscall(SYS_close, fd);
        return err;
    }
    return fd;
}

struct vb_slot *vb_slot_open(int fd, int sock, uint64_t features)
{
    const char *env = getenv("VBINDER_SLOT");
    if (!(features & VB_FEATURE_SLOT) || (env && !strcmp(env, "0")))
        return NULL;
    int memfd = make_memfd(), err = memfd < 0 ? memfd : send_record(sock, memfd);
    uint64_t region = 0;
    struct vb_reply reply;
    if (!err) {
        err = vb_simple_ioctl(fd, VB_IOC_SLOT, &region, sizeof region, &reply);
        if (!err && reply.ret < 0)
            err = reply.ret;
        else if (!err && reply.arg_len != sizeof region)
            err = -EPROTO;
        if (!err) {
            memcpy(&region, reply.arg, sizeof region);
            if (region != REGION)
                err = -EPROTO;  /* the daemon took another region size */
        }
    }
    struct vb_slot *s = err ? NULL : calloc(1, sizeof *s);
    if (!s) {
        if (memfd >= 0)
            syscall(SYS_close, memfd);
        fprintf(stderr, "vbinder preload: request slot: %s: requests go by pwrite\n", strerror(err ? -err : ENOMEM));
        return NULL;
    }
    s->fd = memfd;
    s->owner = getpid();
    s->min = env && !strcmp(env, "1") ? 0 : SLOT_MIN;
    s->refs = 1;
    vb_debug("request slot: %d regions of %u bytes", REGIONS, REGION);
    return s;
}

static void slot_unref(struct vb_slot *s)
{
    if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(s);
}

void vb_slot_close(struct vb_slot *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->gone, 1, __ATOMIC_RELEASE);
    int fd = __atomic_exchange_n(&s->fd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0 && s->owner == getpid())
        syscall(SYS_close, fd);
    slot_unref(s);
}

void vb_slot_after_fork(struct vb_slot *s)
{
    /* The child's copy of the memfd: its parent's threads write their requests there, so the
     * child never uses it, and the number is still the one we made (nothing ran since fork). */
    if (s && s->fd >= 0) {
        __atomic_store_n(&s->gone, 1, __ATOMIC_RELAXED);
        syscall(SYS_close, s->fd);
        s->fd = -1;
    }
}

/* -- a thread's region ------------------------------------------------------------------------- */

void vb_slot_leave(struct vb_thread *t)
{
    struct vb_slot *s = t->slot;
    if (!s)
        return;
    t->slot = NULL;
    if (s->owner == getpid())  /* a forked child's copy of the mask is nobody's */
        __atomic_and_fetch(&s->used, ~(1u << t->region), __ATOMIC_RELEASE);
    slot_unref(s);
}

/* The thread's region of slot `s`: taken if it holds none there (-1: every region is taken). A
 * thread holds one region at a time: one that calls through another open file's slot moves. */
static int region_of(struct vb_slot *s, struct vb_thread *t)
{
    if (t->slot == s)
        return (int)t->region;
    vb_slot_leave(t);
    uint32_t used = __atomic_load_n(&s->used, __ATOMIC_ACQUIRE);
    for (;;) {
        if (used == (REGIONS == 32 ? ~0u : (1u << REGIONS) - 1))
            return -1;
        int i = __builtin_ctz(~used);
        if (__atomic_compare_exchange_n(&s->used, &used, used | 1u << i, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
            t->slot = s;
            t->region = (uint32_t)i;
            return i;
        }
    }
}

int64_t vb_slot_put(struct vb_slot *s, struct vb_thread *t)
{
    if (!s || s->owner != getpid() || __atomic_load_n(&s->gone, __ATOMIC_ACQUIRE))
        return -1;
    size_t len = t->req.len;
    if (len < s->min || len > REGION - SEQ_SIZE)
        return -1;
    int i = region_of(s, t);
    if (i < 0)
        return -1;
    int64_t start = (int64_t)i * REGION;
    uint64_t seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
    struct iovec iov[2] = {{&seq, SEQ_SIZE}, {t->req.data, len}};
    int fd = __atomic_load_n(&s->fd, __ATOMIC_ACQUIRE);
    long n = syscall(SYS_pwritev, fd, iov, 2, (long)start, 0l);
    if (n != (long)(SEQ_SIZE + len))
        return -1;  /* nothing ran: the request goes by pwrite */
    return start;
}

void vb_slot_gone(struct vb_slot *s)
{
    /* The daemon answered ENXIO: it has no slot for this file any more (the channel ended). */
    if (!__atomic_exchange_n(&s->gone, 1, __ATOMIC_ACQ_REL))
        fprintf(stderr, "vbinder preload: request slot: the daemon dropped it: requests go by pwrite\n");
}

int vb_slot_reply(struct vb_slot *s, int64_t start, struct vb_buf *b, uint64_t total)
{
    if (total > REGION - SEQ_SIZE || total < VB_HEADER_SIZE)  /* never longer than its region */
        return -EPROTO;
    b->len = 0;
    if (vb_buf_reserve(b, total))
        return -ENOMEM;
    int fd = __atomic_load_n(&s->fd, __ATOMIC_ACQUIRE);
    while (b->len < total) {
        ssize_t n = syscall(SYS_pread64, fd, b->data + b->len, total - b->len, (long)start + SEQ_SIZE + (long)b->len);
        if (n <= 0)
            return n < 0 ? -errno : -EIO;  /* the slot's reply is cut short */
        b->len += (size_t)n;
    }
    return 0;
}
