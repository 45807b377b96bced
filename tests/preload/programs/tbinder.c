/* tbinder: see tbinder.h. */
#include "tbinder.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

const char *tb_role = "?";
int tb_exit_after_reply;
void (*tb_after_reply)(void);
__thread int tb_poll_first;  /* this thread polls the fd before each read (a poll looper) */

static __thread uint8_t out[4096];
static __thread size_t out_len;

void say(const char *fmt, ...)
{
    char line[4096];
    int n = snprintf(line, sizeof line, "%s: ", tb_role);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    (void)!write(1, line, (size_t)n);  /* one write per line: whole lines even from threads */
}

void die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say("error: %s", msg);
    fprintf(stderr, "%s: %s\n", tb_role, msg);
    exit(3);
}

const char *br_name(uint32_t cmd)
{
    switch (cmd) {
#define N(x) case x: return #x;
    N(BR_ERROR) N(BR_OK) N(BR_TRANSACTION) N(BR_REPLY) N(BR_ACQUIRE_RESULT) N(BR_DEAD_REPLY)
    N(BR_TRANSACTION_COMPLETE) N(BR_INCREFS) N(BR_ACQUIRE) N(BR_RELEASE) N(BR_DECREFS)
    N(BR_ATTEMPT_ACQUIRE) N(BR_NOOP) N(BR_SPAWN_LOOPER) N(BR_FINISHED) N(BR_DEAD_BINDER)
    N(BR_CLEAR_DEATH_NOTIFICATION_DONE) N(BR_FAILED_REPLY) N(BR_FROZEN_REPLY) N(BR_ONEWAY_SPAM_SUSPECT)
    N(BR_TRANSACTION_SEC_CTX)
#undef N
    }
    return "BR_?";
}

void tb_open(struct tb *b, const char *dev, size_t map_size)
{
    b->fd = open(dev, O_RDWR | O_CLOEXEC);
    if (b->fd < 0)
        die("open %s: %s", dev, strerror(errno));
    struct binder_version v;
    if (ioctl(b->fd, BINDER_VERSION, &v) < 0 || v.protocol_version != BINDER_CURRENT_PROTOCOL_VERSION)
        die("BINDER_VERSION: %s (%d)", strerror(errno), v.protocol_version);
    b->map_size = map_size;
    b->map = mmap(NULL, map_size, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, b->fd, 0);
    if (b->map == MAP_FAILED)
        die("mmap: %s", strerror(errno));
}

int tb_ioctl_wr(struct tb *b, struct binder_write_read *bwr)
{
    int ret;
    do
        ret = ioctl(b->fd, BINDER_WRITE_READ, bwr);
    while (ret < 0 && errno == EINTR);  /* as libbinder: the struct says what was done */
    return ret < 0 ? -errno : 0;
}

/* -- the command queue ---------------------------------------------------------------------------- */

void tb_queue(const void *cmd, size_t len)
{
    if (out_len + len > sizeof out)
        die("command queue full");
    memcpy(out + out_len, cmd, len);
    out_len += len;
}

void tb_queue_cmd(uint32_t code)
{
    tb_queue(&code, 4);
}

void tb_queue_u32(uint32_t code, uint32_t value)
{
    uint32_t c[2] = {code, value};
    tb_queue(c, sizeof c);
}

void tb_queue_ptr(uint32_t code, binder_uintptr_t ptr)
{
    tb_queue(&code, 4);
    tb_queue(&ptr, sizeof ptr);
}

void tb_queue_ptr_cookie(uint32_t code, binder_uintptr_t ptr, binder_uintptr_t cookie)
{
    struct binder_ptr_cookie pc = {ptr, cookie};
    tb_queue(&code, 4);
    tb_queue(&pc, sizeof pc);
}

void tb_queue_handle_cookie(uint32_t code, uint32_t handle, binder_uintptr_t cookie)
{
    struct binder_handle_cookie hc = {handle, cookie};
    tb_queue(&code, 4);
    tb_queue(&hc, sizeof hc);
}

/* One BINDER_WRITE_READ: the queued commands, and (read_size > 0) what the driver returns. */
static size_t exchange(struct tb *b, uint8_t *rbuf, size_t read_size)
{
    if (read_size && tb_poll_first && out_len == 0) {
        struct pollfd pfd = {b->fd, POLLIN, 0};
        while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {}
    }
    struct binder_write_read bwr = {
        .write_size = out_len, .write_buffer = (binder_uintptr_t)out,
        .read_size = read_size, .read_buffer = (binder_uintptr_t)rbuf,
    };
    int err = tb_ioctl_wr(b, &bwr);
    if (err)
        die("BINDER_WRITE_READ: %s", strerror(-err));
    if (bwr.write_consumed != out_len)
        die("BINDER_WRITE_READ wrote %llu of %zu", (unsigned long long)bwr.write_consumed, out_len);
    out_len = 0;
    return bwr.read_consumed;
}

void tb_flush(struct tb *b)
{
    if (out_len)
        exchange(b, NULL, 0);
}

/* -- parcels -------------------------------------------------------------------------------------- */

void p_init(struct parcel *p)
{
    memset(p, 0, sizeof *p);
}

void p_free(struct parcel *p)
{
    free(p->data);
    p_init(p);
}

static void *p_grow(struct parcel *p, size_t n)
{
    size_t pad = (n + 3) & ~(size_t)3;
    if (p->len + pad > p->cap) {
        p->cap = (p->len + pad) * 2 + 64;
        p->data = realloc(p->data, p->cap);
        if (!p->data)
            die("out of memory");
    }
    void *at = p->data + p->len;
    memset(at, 0, pad);
    p->len += pad;
    return at;
}

void p_i32(struct parcel *p, int32_t v)
{
    memcpy(p_grow(p, 4), &v, 4);
}

void p_str16(struct parcel *p, const char *s)
{
    if (!s) {
        p_i32(p, -1);
        return;
    }
    size_t n = strlen(s);
    p_i32(p, (int32_t)n);
    uint16_t *u = p_grow(p, (n + 1) * 2);
    for (size_t i = 0; i < n; i++)
        u[i] = (uint8_t)s[i];  /* ASCII is all the tests send */
}

void p_token(struct parcel *p, const char *descriptor)
{
    p_i32(p, (int32_t)0x80000000u);  /* strict mode policy | STRICT_MODE_PENALTY_GATHER */
    p_i32(p, -1);                    /* work source: unset */
    p_i32(p, 0x53595354);            /* 'SYST' */
    p_str16(p, descriptor);
}

static void p_object(struct parcel *p, uint32_t type, uint32_t flags, uint64_t value, binder_uintptr_t cookie)
{
    if (p->noffsets == sizeof p->offsets / sizeof *p->offsets)
        die("too many objects");
    struct flat_binder_object o = {.hdr.type = type, .flags = flags, .binder = value, .cookie = cookie};
    if (value)
        p->offsets[p->noffsets++] = p->len;
    memcpy(p_grow(p, sizeof o), &o, sizeof o);
    p_i32(p, value ? STABILITY_SYSTEM : 0);
}

void p_binder(struct parcel *p, binder_uintptr_t ptr, binder_uintptr_t cookie)
{
    p_object(p, BINDER_TYPE_BINDER, 0x13 | FLAT_BINDER_FLAG_ACCEPTS_FDS, ptr, cookie);
}

void p_handle(struct parcel *p, uint32_t handle)
{
    p_object(p, BINDER_TYPE_HANDLE, 0x13 | FLAT_BINDER_FLAG_ACCEPTS_FDS, handle, 0);
}

void p_null_binder(struct parcel *p)
{
    p_object(p, BINDER_TYPE_BINDER, 0x13, 0, 0);
}

void p_binder_no_fds(struct parcel *p, binder_uintptr_t ptr, binder_uintptr_t cookie)
{
    p_object(p, BINDER_TYPE_BINDER, 0x13, ptr, cookie);
}

static void p_offset(struct parcel *p)
{
    if (p->noffsets == sizeof p->offsets / sizeof *p->offsets)
        die("too many objects");
    p->offsets[p->noffsets++] = p->len;
}

void p_fd(struct parcel *p, int fd, int take_ownership)
{
    struct binder_fd_object o = {.hdr.type = BINDER_TYPE_FD, .fd = (__u32)fd, .cookie = take_ownership ? 1 : 0};
    p_offset(p);
    memcpy(p_grow(p, sizeof o), &o, sizeof o);
}

void p_ptr(struct parcel *p, const void *buffer, size_t length)
{
    struct binder_buffer_object o = {.hdr.type = BINDER_TYPE_PTR, .buffer = (binder_uintptr_t)buffer,
                                     .length = length};
    p_offset(p);
    memcpy(p_grow(p, sizeof o), &o, sizeof o);
}

void p_fda(struct parcel *p, size_t num_fds, size_t parent, size_t parent_offset)
{
    struct binder_fd_array_object o = {.hdr.type = BINDER_TYPE_FDA, .num_fds = num_fds, .parent = parent,
                                       .parent_offset = parent_offset};
    p_offset(p);
    memcpy(p_grow(p, sizeof o), &o, sizeof o);
}

void r_init(struct rparcel *r, const void *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
}

static const void *r_take(struct rparcel *r, size_t n)
{
    size_t pad = (n + 3) & ~(size_t)3;
    if (r->pos + pad > r->len)
        return NULL;
    const void *at = r->data + r->pos;
    r->pos += pad;
    return at;
}

int32_t r_i32(struct rparcel *r)
{
    const void *at = r_take(r, 4);
    int32_t v = 0;
    if (at)
        memcpy(&v, at, 4);
    return v;
}

int r_str16(struct rparcel *r, char *out, size_t size)
{
    int32_t n = r_i32(r);
    if (n < 0 || (size_t)n >= size)
        return -1;
    const uint16_t *u = r_take(r, ((size_t)n + 1) * 2);
    if (!u)
        return -1;
    for (int32_t i = 0; i < n; i++)
        out[i] = (char)u[i];
    out[n] = 0;
    return n;
}

int r_token(struct rparcel *r, char *descriptor, size_t size)
{
    r_i32(r);
    r_i32(r);
    if ((uint32_t)r_i32(r) != 0x53595354u)
        return -1;
    return r_str16(r, descriptor, size);
}

const void *r_raw(struct rparcel *r, size_t n)
{
    return r_take(r, n);
}

const struct flat_binder_object *r_object(struct rparcel *r)
{
    const struct flat_binder_object *o = r_take(r, sizeof *o);
    r_i32(r);  /* stability */
    return o;
}

/* -- transactions --------------------------------------------------------------------------------- */

static void send_transaction_sg(uint32_t cmd, uint32_t handle, uint32_t code, struct parcel *data, uint32_t flags,
                                size_t buffers_size)
{
    struct binder_transaction_data tr = {
        .target.handle = handle, .code = code, .flags = flags, .data_size = data->len,
        .offsets_size = data->noffsets * sizeof(binder_size_t),
        .data.ptr.buffer = (binder_uintptr_t)data->data, .data.ptr.offsets = (binder_uintptr_t)data->offsets,
    };
    if (cmd == BC_TRANSACTION_SG || cmd == BC_REPLY_SG) {
        struct binder_transaction_data_sg sg = {.transaction_data = tr, .buffers_size = buffers_size};
        tb_queue(&cmd, 4);
        tb_queue(&sg, sizeof sg);
        return;
    }
    tb_queue(&cmd, 4);
    tb_queue(&tr, sizeof tr);
}

static void send_transaction(uint32_t cmd, uint32_t handle, uint32_t code, struct parcel *data, uint32_t flags)
{
    send_transaction_sg(cmd, handle, code, data, flags, 0);
}

/* A BR_TRANSACTION: the handler's reply (now: its memory lives until the write is done). */
static void serve(struct tb *b, const struct binder_transaction_data *tr, tb_handler handler)
{
    struct rparcel in;
    r_init(&in, (const void *)(uintptr_t)tr->data.ptr.buffer, tr->data_size);
    struct parcel reply;
    p_init(&reply);
    int r = handler ? handler(b, tr, &in, &reply) : -1;
    if (r != 1) {  /* 1: the handler replied itself (tb_reply_and_read) */
        tb_queue_ptr(BC_FREE_BUFFER, tr->data.ptr.buffer);
        if (!(tr->flags & TF_ONE_WAY)) {
            if (r != 0)
                p_i32(&reply, -1);
            send_transaction(BC_REPLY, 0, 0, &reply, 0);
        }
    }
    tb_flush(b);
    p_free(&reply);
    if (tb_after_reply)
        tb_after_reply();
    if (tb_exit_after_reply)
        exit(0);
}

size_t tb_reply_and_read(struct tb *b, const struct binder_transaction_data *tr, struct parcel *reply,
                         uint32_t *brs, size_t max)
{
    tb_queue_ptr(BC_FREE_BUFFER, tr->data.ptr.buffer);
    send_transaction(BC_REPLY, 0, 0, reply, 0);
    uint8_t rbuf[256];
    size_t n = exchange(b, rbuf, sizeof rbuf), count = 0;
    for (size_t pos = 0; pos + 4 <= n && count < max;) {
        memcpy(&brs[count++], rbuf + pos, 4);
        pos += 4 + _IOC_SIZE(brs[count - 1]);
    }
    return count;
}

/* The BRs every loop answers the same way: references and death. 1 if handled. */
static int housekeeping(const uint8_t *payload, uint32_t cmd)
{
    struct binder_ptr_cookie pc;
    switch (cmd) {
    case BR_NOOP: case BR_SPAWN_LOOPER: case BR_RELEASE: case BR_DECREFS: case BR_OK:
        return 1;
    case BR_INCREFS: case BR_ACQUIRE:
        memcpy(&pc, payload, sizeof pc);
        tb_queue_ptr_cookie(cmd == BR_INCREFS ? BC_INCREFS_DONE : BC_ACQUIRE_DONE, pc.ptr, pc.cookie);
        return 1;
    }
    return 0;
}

void tb_call(struct tb *b, uint32_t handle, uint32_t code, struct parcel *data, uint32_t flags, tb_handler handler,
             struct result *res)
{
    tb_call_sg(b, handle, code, data, flags, (size_t)-1, handler, res);
}

void tb_call_sg(struct tb *b, uint32_t handle, uint32_t code, struct parcel *data, uint32_t flags,
                size_t buffers_size, tb_handler handler, struct result *res)
{
    memset(res, 0, sizeof *res);
    if (buffers_size == (size_t)-1)
        send_transaction(BC_TRANSACTION, handle, code, data, flags);
    else
        send_transaction_sg(BC_TRANSACTION_SG, handle, code, data, flags, buffers_size);
    uint8_t rbuf[1024];
    while (!res->br) {
        size_t n = exchange(b, rbuf, sizeof rbuf);
        for (size_t pos = 0; pos + 4 <= n;) {
            uint32_t cmd;
            memcpy(&cmd, rbuf + pos, 4);
            const uint8_t *payload = rbuf + pos + 4;
            pos += 4 + _IOC_SIZE(cmd);
            if (res->nbrs < sizeof res->brs / sizeof *res->brs)
                res->brs[res->nbrs++] = cmd;
            if (housekeeping(payload, cmd))
                continue;
            struct binder_transaction_data tr;
            switch (cmd) {
            case BR_TRANSACTION_COMPLETE:
                if (flags & TF_ONE_WAY)
                    res->br = cmd;
                break;
            case BR_REPLY:
                memcpy(&tr, payload, sizeof tr);
                res->br = cmd;
                res->flags = tr.flags;
                res->len = tr.data_size;
                res->data = malloc(tr.data_size + 1);
                memcpy(res->data, (const void *)(uintptr_t)tr.data.ptr.buffer, tr.data_size);
                res->noffsets = tr.offsets_size / sizeof(binder_size_t);
                if (res->noffsets > 16)
                    res->noffsets = 16;
                memcpy(res->offsets, (const void *)(uintptr_t)tr.data.ptr.offsets, res->noffsets * sizeof(binder_size_t));
                res->buffer = tr.data.ptr.buffer;
                break;
            case BR_DEAD_REPLY: case BR_FAILED_REPLY: case BR_FROZEN_REPLY:
                res->br = cmd;
                break;
            case BR_TRANSACTION:
                memcpy(&tr, payload, sizeof tr);
                serve(b, &tr, handler);
                break;
            default:
                die("unexpected %s during a call", br_name(cmd));
            }
        }
    }
    tb_flush(b);
}

void tb_release(struct result *res)
{
    if (res->buffer)
        tb_queue_ptr(BC_FREE_BUFFER, res->buffer);
    res->buffer = 0;
    free(res->data);
    res->data = NULL;
}

void tb_loop(struct tb *b, tb_handler handler, tb_event event)
{
    uint8_t rbuf[1024];
    for (;;) {
        size_t n = exchange(b, rbuf, sizeof rbuf);
        for (size_t pos = 0; pos + 4 <= n;) {
            uint32_t cmd;
            memcpy(&cmd, rbuf + pos, 4);
            const uint8_t *payload = rbuf + pos + 4;
            pos += 4 + _IOC_SIZE(cmd);
            if (housekeeping(payload, cmd) || cmd == BR_TRANSACTION_COMPLETE)
                continue;
            if (cmd == BR_TRANSACTION) {
                struct binder_transaction_data tr;
                memcpy(&tr, payload, sizeof tr);
                serve(b, &tr, handler);
                continue;
            }
            if (event && event(b, cmd, payload))
                return;
        }
    }
}
