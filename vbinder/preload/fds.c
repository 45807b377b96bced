/* File descriptors in transactions: the fd channel (docs/abi-fds.md, an extension of the device
 * ABI version 1).
 *
 * A device file cannot carry fds, so each open file gets a Unix socket to the daemon, bound at
 * the first BINDER_WRITE_READ of the process that opened it (VBINDER_FEATURES, then
 * VBINDER_FD_CHANNEL, connect, HELLO, ACK; the daemon checks the token and, with SO_PEERCRED,
 * that we are the opener). Before a request whose transactions name fds, the thread *stages* them
 * (STAGE records with SCM_RIGHTS, numbered by a counter the process's threads share) and the
 * request goes as VBINDER_WRITE_READ_FDS with that number. Fds delivered to this process come on
 * the socket (DELIVER records, tagged), and the reply's fixup segment says where each number goes
 * in the delivered buffers: they are written into the reply's buffer segments before those are
 * copied to the mapped area, so the program never sees a buffer without them. Several threads
 * share the socket: one that reads a delivery of another tag keeps it for its owner.
 *
 * 6.1 closes the fds of a BINDER_TYPE_FDA array when its buffer is freed; the daemon cannot close
 * an fd in this process, so this file does, for each BC_FREE_BUFFER the driver consumed.
 *
 * A process that cannot bind a channel (a daemon without the extension, another network
 * namespace) is a client of version 1: its transactions with fds fail, as the ABI says. The
 * socket is close-on-exec and kept at fd 100 or above, like the mapped area's duplicate; a
 * forked child may stage on its parent's channel but never reads it (the deliveries on it are
 * its parent's; a child's buffers are in its parent's area anyway).
 */
#include "vbpreload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAGIC(s) ((uint32_t)(s)[0] | (uint32_t)(s)[1] << 8 | (uint32_t)(s)[2] << 16 | (uint32_t)(s)[3] << 24)
#define HELLO_MAGIC MAGIC("VBFH")
#define ACK_MAGIC MAGIC("VBFA")
#define STAGE_MAGIC MAGIC("VBFS")
#define DELIVER_MAGIC MAGIC("VBFD")
#define INSTALLED_MAGIC MAGIC("VBFI")
#define CHANNEL_VERSION 1
#define FEATURE_FDS 1ull
#define STAGE_FIRST 1u
#define DELIVER_LAST 1u
#define DELIVER_REPORT 2u
#define KIND_FDA 1u
#define MAX_FDS 253        /* SCM_MAX_FD: fds one record carries */
#define TOKEN_SIZE 32
#define TIMEOUT_MS 5000    /* the daemon answers HELLO at once, and sends fds before their reply */
#define CHANNEL_MIN_FD 100 /* above the fds a program usually counts on (as the area's duplicate) */

struct fd_channel_arg {
    uint8_t token[TOKEN_SIZE];
    char name[64];
};
#define VB_IOC_FEATURES _IOR('v', 4, uint64_t)
#define VB_IOC_FD_CHANNEL _IOR('v', 5, struct fd_channel_arg)

struct hello { uint32_t magic, version; uint8_t token[TOKEN_SIZE]; };
struct ack { uint32_t magic; int32_t status; };
struct stage { uint32_t magic, flags, tid, seq, count; };
struct deliver { uint32_t magic, flags; uint64_t tag; uint32_t index, count; };
struct installed { uint32_t magic, count; uint64_t tag; };
_Static_assert(sizeof(struct hello) == 40 && sizeof(struct ack) == 8 && sizeof(struct stage) == 20, "records");
_Static_assert(sizeof(struct deliver) == 24 && sizeof(struct installed) == 16, "records");

/* A list of fds. */
struct fds {
    int *v;
    uint32_t n, cap;
};

static int fds_add(struct fds *f, int fd)
{
    if (f->n == f->cap) {
        uint32_t cap = f->cap ? f->cap * 2 : 8;
        int *v = realloc(f->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = fd;
    return 0;
}

static void close_all(struct fds *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (f->v[i] >= 0)
            syscall(SYS_close, f->v[i]);
    free(f->v);
    *f = (struct fds){0};
}

/* Fds received for a delivery (by tag), and the FDA fds of a delivered buffer (by address). */
struct entry {
    uint64_t key;
    uint64_t tag;    /* an FDA record's: the delivery it came with */
    struct fds fds;
    int complete, report;
    struct entry *next;
};

struct vb_channel {
    uint64_t token;
    int bound;        /* 1: a channel; 0: none (version 1), or it ended */
    int sock;
    dev_t dev;
    ino_t ino;
    pid_t owner;      /* the process that bound it: only it reads the socket */
    int refs;
    pthread_mutex_t lock;      /* the reads of the socket, the lists below */
    struct entry *deliveries;  /* received, not yet taken by their thread */
    struct entry *fdas;        /* FDA fds of the buffers not yet freed */
    int nfdas;
    uint64_t features;         /* VBINDER_FEATURES of its daemon */
    struct vb_slot *slot;      /* its request slot (slot.c), NULL: none */
    struct vb_channel *next;
};

static pthread_mutex_t channels_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vb_channel *channels;
static uint32_t seq_counter;

/* -- binding ------------------------------------------------------------------------------------ */

static int wait_readable(int sock, int timeout_ms)
{
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (timeout_ms % 1000) * 1000000l;
    if (end.tv_nsec >= 1000000000l) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000l;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = (end.tv_sec - now.tv_sec) * 1000000000ll + (end.tv_nsec - now.tv_nsec);
        if (left <= 0)
            return -ETIMEDOUT;
        struct timespec ts = {left / 1000000000ll, left % 1000000000ll};
        struct pollfd p = {sock, POLLIN, 0};
        long r = syscall(SYS_ppoll, &p, 1ul, &ts, NULL, 0ul);  /* not a cancellation point */
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

static int ioctl_arg(int fd, uint32_t cmd, void *arg, uint32_t len)
{
    struct vb_reply reply;
    memset(arg, 0, len);
    int err = vb_simple_ioctl(fd, cmd, arg, len, &reply);
    if (err)
        return err;
    if (reply.ret < 0)
        return reply.ret;
    if (reply.arg_len != len)
        return -EPROTO;
    memcpy(arg, reply.arg, len);
    return 0;
}

/* Bind a channel to the open file `fd`: 0 (ch->sock set), 1 (the daemon has no fd channel) or
 * -errno. */
static int bind_channel(struct vb_channel *ch, int fd)
{
    uint64_t features;
    int err = ioctl_arg(fd, VB_IOC_FEATURES, &features, sizeof features);
    if (err == -EINVAL || (!err && !(features & FEATURE_FDS)))
        return 1;  /* a daemon of version 1 only */
    if (err)
        return err;
    struct fd_channel_arg arg;
    err = ioctl_arg(fd, VB_IOC_FD_CHANNEL, &arg, sizeof arg);
    if (err)
        return err;
    int sock = (int)syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -errno;
    int high = fcntl(sock, F_DUPFD_CLOEXEC, CHANNEL_MIN_FD);
    if (high >= 0) {
        syscall(SYS_close, sock);
        sock = high;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t name_len = strnlen(arg.name, sizeof arg.name);
    if (name_len >= sizeof addr.sun_path) {
        err = -EPROTO;
        goto fail;
    }
    memcpy(addr.sun_path + 1, arg.name, name_len);  /* the abstract namespace: a leading NUL */
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + name_len);
    if (syscall(SYS_connect, sock, &addr, addr_len) < 0) {
        err = -errno;
        goto fail;
    }
    struct hello h = {HELLO_MAGIC, CHANNEL_VERSION, {0}};
    memcpy(h.token, arg.token, TOKEN_SIZE);
    if (syscall(SYS_sendto, sock, &h, sizeof h, MSG_NOSIGNAL, NULL, 0) != (long)sizeof h) {
        err = -errno;
        goto fail;
    }
    struct ack a;
    err = wait_readable(sock, TIMEOUT_MS);
    if (err)
        goto fail;
    long n = syscall(SYS_recvfrom, sock, &a, sizeof a, MSG_DONTWAIT, NULL, NULL);
    if (n != (long)sizeof a || a.magic != ACK_MAGIC) {
        err = n < 0 ? -errno : -EPROTO;
        goto fail;
    }
    if (a.status < 0) {
        err = a.status;
        goto fail;
    }
    struct stat st;
    if (syscall(SYS_fstat, sock, &st) < 0) {
        err = -errno;
        goto fail;
    }
    ch->sock = sock;
    ch->features = features;
    ch->dev = st.st_dev;
    ch->ino = st.st_ino;
    return 0;
fail:
    syscall(SYS_close, sock);
    return err;
}

static void destroy(struct vb_channel *ch)
{
    vb_slot_close(ch->slot);
    if (ch->sock >= 0 && ch->owner == getpid())
        syscall(SYS_close, ch->sock);
    for (struct entry *e = ch->deliveries, *next; e; e = next) {
        next = e->next;
        close_all(&e->fds);  /* received, never taken: nobody will close them */
        free(e);
    }
    for (struct entry *e = ch->fdas, *next; e; e = next) {
        next = e->next;
        free(e->fds.v);  /* the program's, as in 6.1: releasing the file does not close them */
        free(e);
    }
    free(ch);
}

/* The channels of open files that were released (the daemon closed their sockets): gone. Under
 * channels_lock. */
static int sock_ok(struct vb_channel *ch);

static void sweep(void)
{
    for (struct vb_channel **p = &channels; *p;) {
        struct vb_channel *ch = *p;
        struct pollfd pfd = {ch->sock, POLLIN, 0};
        struct timespec zero = {0, 0};
        if (ch->refs || ch->owner != getpid() || ch->sock < 0) {
            p = &ch->next;
            continue;
        }
        if (!ch->bound) {  /* ended: its socket goes, its record stays (no channel for that file) */
            if (sock_ok(ch))
                syscall(SYS_close, ch->sock);  /* else its number is no longer ours to close */
            ch->sock = -1;
            vb_slot_close(ch->slot);  /* the daemon dropped it with the channel */
            ch->slot = NULL;
        } else if (syscall(SYS_ppoll, &pfd, 1ul, &zero, NULL, 0ul) == 1 && (pfd.revents & (POLLHUP | POLLERR))) {
            *p = ch->next;
            vb_debug("fd channel of %#llx: its file was released", (unsigned long long)ch->token);
            destroy(ch);
            continue;
        }
        p = &ch->next;
    }
}

struct vb_channel *vb_channel_get(int fd, uint64_t token)
{
    pthread_mutex_lock(&channels_lock);
    struct vb_channel *ch = channels;
    while (ch && ch->token != token)
        ch = ch->next;
    if (!ch) {
        sweep();
        ch = calloc(1, sizeof *ch);
        if (!ch) {
            pthread_mutex_unlock(&channels_lock);
            return NULL;
        }
        ch->token = token;
        ch->sock = -1;
        ch->owner = getpid();
        pthread_mutex_init(&ch->lock, NULL);
        /* Only the opener can bind (the daemon checks its pid): an fd received from another
         * process, or inherited from a parent, stays a version 1 client's. */
        if (vb_token_pid(token) == (getpid() & 0x3fffff)) {
            int err = bind_channel(ch, fd);
            ch->bound = err == 0;
            if (err < 0)
                fprintf(stderr, "vbinder preload: fd channel: %s: file descriptors cannot be passed\n",
                        strerror(-err));
            if (ch->bound)  /* the slot's file goes on the channel (docs/abi-slot.md) */
                ch->slot = vb_slot_open(fd, ch->sock, ch->features);
        }
        vb_debug("fd channel of %#llx: %s", (unsigned long long)token, ch->bound ? "bound" : "none");
        ch->next = channels;
        channels = ch;
    }
    if (!ch->bound) {
        pthread_mutex_unlock(&channels_lock);
        return NULL;
    }
    ch->refs++;
    pthread_mutex_unlock(&channels_lock);
    return ch;
}

void vb_channel_put(struct vb_channel *ch)
{
    if (!ch)
        return;
    pthread_mutex_lock(&channels_lock);
    ch->refs--;
    pthread_mutex_unlock(&channels_lock);
}

/* The socket is still ours (a program may close any fd, and its number be reused). */
static int sock_ok(struct vb_channel *ch)
{
    struct stat st;
    return syscall(SYS_fstat, ch->sock, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == ch->dev
        && st.st_ino == ch->ino;
}

/* The channel ended (the daemon closed it, or the program closed our socket): from now on this
 * open file is a version 1 client's. Under ch->lock. */
static void end_channel(struct vb_channel *ch, const char *why)
{
    if (!ch->bound)
        return;
    fprintf(stderr, "vbinder preload: fd channel: %s: file descriptors cannot be passed any more\n", why);
    for (struct entry *e = ch->deliveries, *next; e; e = next) {
        next = e->next;
        close_all(&e->fds);
        free(e);
    }
    ch->deliveries = NULL;
    __atomic_store_n(&ch->bound, 0, __ATOMIC_RELEASE);  /* its socket is closed by sweep(), unused */
}

/* -- sending ------------------------------------------------------------------------------------ */

uint32_t vb_channel_seq(void)
{
    uint32_t s = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
    return s ? s : __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
}

static int by_value(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

int vb_channel_stage(struct vb_channel *ch, uint32_t tid, uint32_t seq, int *fds, size_t n)
{
    /* Each open fd once (sendmsg would fail with EBADF for one that is not: the driver's fget
     * fails instead, as on the kernel). */
    qsort(fds, n, sizeof *fds, by_value);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0 && (k == 0 || fds[k - 1] != fds[i]) && syscall(SYS_fcntl, fds[i], F_GETFD) >= 0)
            fds[k++] = fds[i];
    if (!k)
        return 0;
    if (!__atomic_load_n(&ch->bound, __ATOMIC_ACQUIRE))
        return -EPIPE;
    if (!sock_ok(ch)) {
        pthread_mutex_lock(&ch->lock);
        end_channel(ch, "the program closed its socket");
        pthread_mutex_unlock(&ch->lock);
        return -EBADF;
    }
    uint8_t record[sizeof(struct stage) + 4 * MAX_FDS];
    union {
        char buf[CMSG_SPACE(4 * MAX_FDS)];
        struct cmsghdr align;
    } control;
    for (size_t at = 0; at < k; at += MAX_FDS) {
        uint32_t count = k - at > MAX_FDS ? MAX_FDS : (uint32_t)(k - at);
        struct stage s = {STAGE_MAGIC, at == 0 ? STAGE_FIRST : 0, tid, seq, count};
        memcpy(record, &s, sizeof s);
        memcpy(record + sizeof s, fds + at, 4 * count);
        struct iovec iov = {record, sizeof s + 4 * count};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = CMSG_SPACE(4 * count)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(4 * count);
        memcpy(CMSG_DATA(c), fds + at, 4 * count);
        long r;
        do
            r = syscall(SYS_sendmsg, ch->sock, &msg, MSG_NOSIGNAL);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            int err = errno;
            pthread_mutex_lock(&ch->lock);
            end_channel(ch, strerror(err));
            pthread_mutex_unlock(&ch->lock);
            return -err;
        }
    }
    return (int)k;
}

/* -- receiving ---------------------------------------------------------------------------------- */

static struct entry *find(struct entry **list, uint64_t key, int unlink)
{
    for (struct entry **p = list; *p; p = &(*p)->next)
        if ((*p)->key == key) {
            struct entry *e = *p;
            if (unlink)
                *p = e->next;
            return e;
        }
    return NULL;
}

/* Read one record from the daemon (under ch->lock): 0, or -errno when the channel ended. */
static int read_one(struct vb_channel *ch)
{
    int err = wait_readable(ch->sock, TIMEOUT_MS);
    if (err)
        return err;
    struct deliver d;
    union {
        char buf[CMSG_SPACE(4 * MAX_FDS)];
        struct cmsghdr align;
    } control;
    uint8_t data[64];
    struct iovec iov = {data, sizeof data};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    long n;
    do
        n = syscall(SYS_recvmsg, ch->sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    struct fds got = {0};
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / 4;
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + 4 * i, 4);
            if (fds_add(&got, fd))
                syscall(SYS_close, fd);
        }
    }
    if (n != (long)sizeof d) {
        close_all(&got);
        return n == 0 ? -ECONNRESET : -EPROTO;
    }
    memcpy(&d, data, sizeof d);
    if (d.magic != DELIVER_MAGIC || d.count > MAX_FDS) {
        close_all(&got);
        return -EPROTO;
    }
    while (got.n < d.count && !fds_add(&got, -1)) {}  /* MSG_CTRUNC: this process's fd table is full */
    struct entry *e = find(&ch->deliveries, d.tag, 0);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            close_all(&got);
            return -ENOMEM;
        }
        e->key = d.tag;
        e->next = ch->deliveries;
        ch->deliveries = e;
    }
    for (uint32_t i = 0; i < got.n; i++)
        if (fds_add(&e->fds, got.v[i]) && got.v[i] >= 0)
            syscall(SYS_close, got.v[i]);
    free(got.v);
    e->report = !!(d.flags & DELIVER_REPORT);
    e->complete = !!(d.flags & DELIVER_LAST);
    return 0;
}

/* The fds of delivery `tag` (sent before its reply: they are on the socket already). */
static struct entry *take(struct vb_channel *ch, uint64_t tag)
{
    pthread_mutex_lock(&ch->lock);
    for (;;) {
        struct entry *e = find(&ch->deliveries, tag, 0);
        if (e && e->complete)
            break;
        if (!ch->bound)
            break;
        int err = read_one(ch);
        if (err)
            end_channel(ch, strerror(-err));
    }
    struct entry *e = find(&ch->deliveries, tag, 1);
    pthread_mutex_unlock(&ch->lock);
    return e;
}

/* The buffer segment of the reply that holds [addr, addr + 4). */
static uint8_t *segment_at(const struct vb_reply *reply, uint64_t addr, uint64_t *start)
{
    struct vb_reply r = *reply;
    uint64_t a, len;
    const uint8_t *data;
    while (vb_reply_segment(&r, &a, &data, &len) > 0)
        if (a != VB_FD_FIXUPS && addr >= a && len >= 4 && addr - a <= len - 4) {
            *start = a;
            return (uint8_t *)(uintptr_t)data;  /* the thread's own reply buffer */
        }
    return NULL;
}

/* An FDA fd of delivery `tag` in `buffer`. Each delivery has a record of its own: another thread
 * may get a new buffer at the address the driver just freed before the freeing thread has closed
 * the old one's fds (vb_channel_freed takes the oldest record at an address). */
static void add_fda(struct vb_channel *ch, uint64_t buffer, uint64_t tag, int fd)
{
    struct entry *e = ch->fdas;
    while (e && (e->key != buffer || e->tag != tag))
        e = e->next;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            syscall(SYS_close, fd);
            return;
        }
        e->key = buffer;
        e->tag = tag;
        e->next = ch->fdas;
        ch->fdas = e;
        __atomic_add_fetch(&ch->nfdas, 1, __ATOMIC_RELAXED);
    }
    if (fds_add(&e->fds, fd))
        syscall(SYS_close, fd);
}

int vb_channel_fixups(struct vb_channel *ch, const struct vb_reply *reply)
{
    struct vb_reply r = *reply;
    uint64_t addr, len;
    const uint8_t *fix = NULL, *data;
    while (vb_reply_segment(&r, &addr, &data, &len) > 0)
        if (addr == VB_FD_FIXUPS) {
            fix = data;
            break;
        }
    if (!fix)
        return 0;
    uint64_t tag;
    uint32_t count;
    memcpy(&tag, fix, 8);
    memcpy(&count, fix + 8, 4);
    if (len < 16 || (len - 16) / 16 < count)
        return -EPROTO;
    if (ch->owner != getpid())
        return 0;  /* a forked child: the deliveries on its parent's socket are its parent's */
    struct entry *d = take(ch, tag);
    struct fds none = {0};
    struct fds *fds = d ? &d->fds : &none;
    if (fds->n < count)
        fprintf(stderr, "vbinder preload: %u of %u fds delivered to this process were lost (its fd table is "
                        "full?): they read as -1\n", count - fds->n, count);
    pthread_mutex_lock(&ch->lock);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t at;
        uint32_t kind;
        memcpy(&at, fix + 16 + 16 * i, 8);
        memcpy(&kind, fix + 24 + 16 * i, 4);
        int fd = i < fds->n ? fds->v[i] : -1;
        uint64_t start;
        uint8_t *seg = segment_at(reply, at, &start);
        if (!seg) {
            if (fd >= 0)
                syscall(SYS_close, fd);  /* nowhere to put it (a malformed reply): nobody would close it */
            continue;
        }
        memcpy(seg + (at - start), &fd, 4);
        if (kind == KIND_FDA && fd >= 0)
            add_fda(ch, start, tag, fd);
    }
    pthread_mutex_unlock(&ch->lock);
    for (uint32_t i = count; i < fds->n; i++)
        if (fds->v[i] >= 0)
            syscall(SYS_close, fds->v[i]);
    if (d && d->report) {
        /* The numbers installed, for the daemon's "fd fixup" log lines; never waited for. */
        size_t rec_len = sizeof(struct installed) + 4ull * count;
        uint8_t *rec = malloc(rec_len);
        if (rec) {
            struct installed h = {INSTALLED_MAGIC, count, tag};
            memcpy(rec, &h, sizeof h);
            for (uint32_t i = 0; i < count; i++) {
                int fd = i < fds->n ? fds->v[i] : -1;
                memcpy(rec + sizeof h + 4 * i, &fd, 4);
            }
            syscall(SYS_sendto, ch->sock, rec, rec_len, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
            free(rec);
        }
    }
    if (d) {
        free(d->fds.v);
        free(d);
    }
    return 0;
}

/* -- BC_FREE_BUFFER ----------------------------------------------------------------------------- */

int vb_channel_has_fdas(struct vb_channel *ch)
{
    return __atomic_load_n(&ch->nfdas, __ATOMIC_RELAXED) > 0;
}

void vb_channel_freed(struct vb_channel *ch, uint64_t buffer)
{
    pthread_mutex_lock(&ch->lock);
    struct entry **oldest = NULL;  /* records are added at the head: the last match is the oldest */
    for (struct entry **p = &ch->fdas; *p; p = &(*p)->next)
        if ((*p)->key == buffer)
            oldest = p;
    struct entry *e = oldest ? *oldest : NULL;
    if (e) {
        *oldest = e->next;
        __atomic_sub_fetch(&ch->nfdas, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&ch->lock);
    if (!e)
        return;
    close_all(&e->fds);  /* binder_deferred_fd_close: whatever they refer to by now */
    free(e);
}

/* -- fork ----------------------------------------------------------------------------------------- */

void vb_channel_after_fork(void)
{
    /* The child holds none of the locks; its channels stay its parent's (owner). */
    pthread_mutex_init(&channels_lock, NULL);
    for (struct vb_channel *ch = channels; ch; ch = ch->next) {
        pthread_mutex_init(&ch->lock, NULL);
        vb_slot_after_fork(ch->slot);
    }
}

struct vb_slot *vb_channel_slot(struct vb_channel *ch)
{
    return ch && ch->owner == getpid() ? ch->slot : NULL;
}
