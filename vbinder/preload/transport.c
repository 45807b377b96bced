/* A thread's exchanges with the daemon: one request frame, one reply frame (DESIGN.md, "Phases"
 * and "One request per thread").
 *
 * Every thread writes its requests and reads its replies at the file offset tid << 40, with
 * pwrite/pread (which neither move nor take the file position, so threads never block each
 * other), made as system calls: libc's are cancellation points, and binder's ioctl is none.
 * A reply is read to its end before the next request. A read phase that waits is a pread the
 * daemon answers when there is work; a signal for the thread makes the daemon answer EINTR
 * while the read phase stays in flight: the caller returns EINTR, as the kernel's ioctl does,
 * and the program's next request replaces it (nothing was taken off any queue).
 */
#include "vbpreload.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FIRST_READ 16384  /* one pread usually fetches the whole reply */

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static __thread struct vb_thread *current;

static void thread_free(void *p)
{
    struct vb_thread *t = p;
    if (current == t)
        current = NULL;
    vb_slot_leave(t);  /* its region is free for another thread */
    vb_buf_free(&t->req);
    vb_buf_free(&t->rep);
    vb_buf_free(&t->stash);
    free(t);
}

static void thread_key_init(void)
{
    pthread_key_create(&thread_key, thread_free);
}

struct vb_thread *vb_thread(void)
{
    if (current)
        return current;
    pthread_once(&thread_once, thread_key_init);
    struct vb_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    current = t;
    pthread_setspecific(thread_key, t);
    return t;
}

void vb_thread_forget_fast_path(void)
{
    if (current) {
        current->fast_token = 0;
        current->stash.len = 0;  /* the daemon forgot the thread (or this is a forked child) */
        current->stash_token = 0;
        current->chain_token = 0;
    }
}

/* Keys are large file offsets: the soft RLIMIT_FSIZE must allow them (DESIGN.md, Identity). */
static int fsize_checked;

static int check_fsize(void)
{
    if (__atomic_load_n(&fsize_checked, __ATOMIC_ACQUIRE))
        return 0;
    struct rlimit r;
    if (getrlimit(RLIMIT_FSIZE, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
        if (r.rlim_max != RLIM_INFINITY) {
            fprintf(stderr, "vbinder preload: binder calls need an unlimited RLIMIT_FSIZE (the device's file "
                            "offsets carry thread ids), but the hard limit is %llu\n",
                    (unsigned long long)r.rlim_max);
            return -EFBIG;
        }
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_FSIZE, &r);
    }
    __atomic_store_n(&fsize_checked, 1, __ATOMIC_RELEASE);
    return 0;
}

static off_t thread_key_offset(void)
{
    return (off_t)((uint64_t)gettid() << VB_KEY_SHIFT);
}

static ssize_t sys_pread(int fd, void *buf, size_t n, off_t at)
{
    return syscall(SYS_pread64, fd, buf, n, at);
}

/* pread reply bytes at `key` into t->rep until it holds `total`. */
static int fill(int fd, struct vb_buf *b, off_t key, uint64_t total)
{
    if (total > b->len && vb_buf_reserve(b, total - b->len))
        return -ENOMEM;
    while (b->len < total) {
        ssize_t n = sys_pread(fd, b->data + b->len, total - b->len, key + (off_t)b->len);
        if (n <= 0)
            return n < 0 ? -errno : -EPROTO;
        b->len += (size_t)n;
    }
    return 0;
}

/* pread the whole reply at `key` into t->rep; `reply` is its (first) frame. A chained reply
 * (docs/abi-chained.md) has a second frame, at t->second_at. The first pread is at `first_at`:
 * `key`, or a slot offset (docs/abi-slot.md), whose answer may be a stub: the reply is then in
 * the slot's region at `start`. */
static int receive(int fd, struct vb_thread *t, off_t key, off_t first_at, struct vb_slot *slot, int64_t start,
                   struct vb_reply *reply)
{
    struct vb_buf *b = &t->rep;
    b->len = 0;
    t->second_at = 0;
    if (vb_buf_reserve(b, FIRST_READ))
        return -ENOMEM;
    ssize_t n = sys_pread(fd, b->data, FIRST_READ, first_at);
    if (n < 0)
        return -errno;
    if (n < VB_HEADER_SIZE)
        return -EPROTO;
    b->len = (size_t)n;
    int err;
    uint64_t in_slot = slot ? vb_stub_total(b->data) : 0;
    if (in_slot && (err = vb_slot_reply(slot, start, b, in_slot)))
        return err;
    uint64_t first = vb_reply_total(b->data), total = first;
    if (!first)
        return -EPROTO;
    if (vb_reply_chained(b->data)) {
        if ((err = fill(fd, b, key, first + VB_HEADER_SIZE)))
            return err;
        uint64_t second = vb_reply_total(b->data + first);
        if (!second || vb_reply_chained(b->data + first))
            return -EPROTO;
        total += second;
    }
    if (total < b->len)
        return -EPROTO;
    if ((err = fill(fd, b, key, total)))
        return err;
    if (first < total)
        t->second_at = (size_t)first;
    return vb_reply_parse(reply, b->data, (size_t)first);
}

int vb_exchange(int fd, struct vb_thread *t, struct vb_slot *slot, struct vb_reply *reply)
{
    int err = check_fsize();
    if (err)
        return err;
    off_t key = thread_key_offset();
    int64_t start = slot ? vb_slot_put(slot, t) : -1;
    if (start >= 0) {
        /* One pread runs it (docs/abi-slot.md). EINTR: its write phase ran and its read phase
         * stays in flight, as after a pwrite; ENXIO: the daemon has no slot, nothing ran. */
        err = receive(fd, t, key, (off_t)((uint64_t)key | VB_SLOT_BIT | (uint64_t)start), slot, start, reply);
        if (err != -ENXIO || t->rep.len)
            return err;
        vb_slot_gone(slot);
    }
    ssize_t n = syscall(SYS_pwrite64, fd, t->req.data, t->req.len, key);
    if (n < 0)
        return -errno;
    if ((size_t)n != t->req.len)
        return -EIO;  /* a chunk of a split request failed: the daemon dropped the frame */
    return receive(fd, t, key, key, NULL, 0, reply);
}

int vb_read_only(int fd, struct vb_thread *t, struct vb_reply *reply)
{
    int err = check_fsize();
    if (err)
        return err;
    off_t key = thread_key_offset();
    return receive(fd, t, key, key, NULL, 0, reply);
}

int vb_chain_ok(int fd, struct vb_thread *t, uint64_t token)
{
    if (t->chain_token == token)
        return t->chain_ok > 0;
    /* Off unless asked for (docs/abi-chained.md): a program may work between a reply and its
     * next read (print, release objects, poll other fds), which a chained read would delay. */
    const char *env = getenv("VBINDER_CHAINED");
    int ok = -1;
    if (env && !strcmp(env, "1")) {
        uint64_t features = 0;
        struct vb_reply reply;
        if (vb_simple_ioctl(fd, VB_IOC_FEATURES, &features, sizeof features, &reply) == 0 && reply.ret == 0
            && reply.arg_len == sizeof features) {
            memcpy(&features, reply.arg, sizeof features);
            ok = features & VB_FEATURE_CHAINED ? 1 : -1;
        }
    }
    t->chain_token = token;
    t->chain_ok = ok;
    return ok > 0;
}

int vb_simple_ioctl(int fd, uint32_t cmd, const void *arg, uint32_t arg_len, struct vb_reply *reply)
{
    struct vb_thread *t = vb_thread();
    struct vb_frame f;
    if (!t || vb_frame_begin(&f, &t->req, cmd, arg, arg_len))
        return -ENOMEM;
    vb_frame_end(&f);
    return vb_exchange(fd, t, NULL, reply);
}
