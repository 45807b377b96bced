/* BINDER_WRITE_READ: the request carries the memory the driver will read, the reply the memory
 * it wrote.
 *
 * The kernel reads the caller's memory where the commands point: the write buffer, and for each
 * BC_TRANSACTION / BC_REPLY its data and offsets, for the _SG forms also the buffer of every
 * BINDER_TYPE_PTR object. This file walks the write buffer as binder_thread_write would, collects
 * those ranges, merges them, and sends what is readable of each at its real address (a page that
 * cannot be read is left out, so the driver fails with EFAULT exactly where copy_from_user
 * would). Transactions whose sizes the driver refuses before copying anything (more than the 4
 * MiB an area can hold) add nothing. A write buffer whose memory would not fit in one frame (8
 * MiB) goes in several requests, each continuing where the last stopped (write_consumed).
 *
 * The read buffer is probed first: the driver may write only where the program's memory is
 * writable. If not even its first word is (read_consumed 0), the kernel fails with EFAULT right
 * after the write phase: so does this. The reply's segments land in the read buffer and in the
 * open file's mapped area; the struct is copied back as the kernel does, also on errors and on
 * EINTR (write_consumed then counts the whole write phase, which ran; the read phase stays in
 * flight in the daemon until the program's next request replaces it, as DESIGN.md says).
 */
#include "vbpreload.h"

#include <errno.h>
#include <linux/android/binder.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SZ_4M (4ull << 20)
#define MAX_WRITE_SNAPSHOT (64ull << 20)  /* more commands than this in one ioctl: not read */

struct range {
    uint64_t addr, len;
};

struct ranges {
    struct range *v;
    size_t n, cap;
};

static int add(struct ranges *r, uint64_t addr, uint64_t len)
{
    if (!len)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct range *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = (struct range){addr, len};
    return 0;
}

/* One command: where it ends in the write buffer, and its ranges (in the shared list). */
struct command {
    uint32_t code;
    size_t end;           /* offset after it, from where the write starts */
    size_t first, count;  /* its ranges */
    uint64_t bytes;       /* their total length */
    size_t fds_first, fds_count;  /* the fd numbers its objects name (in the shared list) */
};

struct numbers {
    int *v;
    size_t n, cap;
};

static int add_number(struct numbers *l, uint32_t fd)
{
    if (fd >= 0x80000000u)
        return 0;  /* no fd has such a number: the driver's fget fails, nothing to stage */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        int *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (int)fd;
    return 0;
}

static int known_command(uint32_t cmd)
{
    switch (cmd) {
    case BC_TRANSACTION: case BC_REPLY: case BC_ACQUIRE_RESULT: case BC_FREE_BUFFER:
    case BC_INCREFS: case BC_ACQUIRE: case BC_RELEASE: case BC_DECREFS: case BC_INCREFS_DONE:
    case BC_ACQUIRE_DONE: case BC_ATTEMPT_ACQUIRE: case BC_REGISTER_LOOPER: case BC_ENTER_LOOPER:
    case BC_EXIT_LOOPER: case BC_REQUEST_DEATH_NOTIFICATION: case BC_CLEAR_DEATH_NOTIFICATION:
    case BC_DEAD_BINDER_DONE: case BC_TRANSACTION_SG: case BC_REPLY_SG:
        return 1;
    }
    return 0;
}

/* The memory a transaction command points to (binder_transaction's copies). */
static int transaction_ranges(struct ranges *r, const uint8_t *payload, int sg)
{
    struct binder_transaction_data tr;
    uint64_t extra = 0;
    memcpy(&tr, payload, sizeof tr);
    if (sg)
        memcpy(&extra, payload + sizeof tr, sizeof extra);
    if (tr.data_size > SZ_4M || tr.offsets_size > SZ_4M || extra > SZ_4M
        || tr.data_size + tr.offsets_size + extra > SZ_4M)
        return 0;  /* binder_alloc_new_buf refuses it before any copy */
    int err = add(r, tr.data.ptr.buffer, tr.data_size);
    if (!err)
        err = add(r, tr.data.ptr.offsets, tr.offsets_size);
    if (err || !sg || !extra || tr.offsets_size < 8)
        return err;
    /* The scatter-gather buffers: each BINDER_TYPE_PTR object's, as the objects are now. */
    size_t n = tr.offsets_size / 8;
    uint64_t *offsets = malloc(n * 8);
    if (!offsets)
        return -ENOMEM;
    n = vb_mem_read(offsets, tr.data.ptr.offsets, n * 8) / 8;
    for (size_t i = 0; i < n && !err; i++) {
        uint64_t off = offsets[i];
        struct binder_buffer_object bo;
        if (off > tr.data_size || tr.data_size - off < sizeof bo)
            continue;
        if (vb_mem_read(&bo, tr.data.ptr.buffer + off, sizeof bo) != sizeof bo || bo.hdr.type != BINDER_TYPE_PTR)
            continue;
        err = add(r, bo.buffer, bo.length < extra ? bo.length : extra);
    }
    free(offsets);
    return err;
}

/* The fds a transaction's BINDER_TYPE_FD and _FDA objects name, as the objects are now (read as
 * the driver will read them, without its checks: a malformed object only stages an fd nothing
 * takes, or misses one the driver refuses anyway). What the thread stages before the request. */
#define MAX_FDA (1u << 16)  /* an array this long is refused by the driver anyway */

static int transaction_fds(struct numbers *out, const uint8_t *payload)
{
    struct binder_transaction_data tr;
    memcpy(&tr, payload, sizeof tr);
    if (tr.offsets_size < 8 || tr.data_size > SZ_4M || tr.offsets_size > SZ_4M)
        return 0;
    size_t n = tr.offsets_size / 8;
    uint64_t *offsets = malloc(n * 8);
    if (!offsets)
        return -ENOMEM;
    n = vb_mem_read(offsets, tr.data.ptr.offsets, n * 8) / 8;
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        uint64_t off = offsets[i];
        uint32_t type;
        if (off > tr.data_size || tr.data_size - off < 4 || vb_mem_read(&type, tr.data.ptr.buffer + off, 4) != 4)
            continue;
        if (type == BINDER_TYPE_FD) {
            struct binder_fd_object fo;
            if (vb_mem_read(&fo, tr.data.ptr.buffer + off, sizeof fo) == sizeof fo)
                err = add_number(out, fo.fd);
        } else if (type == BINDER_TYPE_FDA) {
            struct binder_fd_array_object fa;
            struct binder_buffer_object parent;
            if (vb_mem_read(&fa, tr.data.ptr.buffer + off, sizeof fa) != sizeof fa || fa.parent >= n
                || fa.num_fds == 0 || fa.num_fds > MAX_FDA
                || vb_mem_read(&parent, tr.data.ptr.buffer + offsets[fa.parent], sizeof parent) != sizeof parent
                || parent.hdr.type != BINDER_TYPE_PTR)
                continue;
            uint32_t *fds = malloc(fa.num_fds * 4);
            if (!fds) {
                err = -ENOMEM;
                break;
            }
            if (vb_mem_read(fds, parent.buffer + fa.parent_offset, fa.num_fds * 4) == fa.num_fds * 4)
                for (size_t k = 0; k < fa.num_fds && !err; k++)
                    err = add_number(out, fds[k]);
            free(fds);
        }
    }
    free(offsets);
    return err;
}

static int by_address(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Sort and merge (in place) ranges that overlap or touch: segments must not overlap. */
static size_t merge(struct range *v, size_t n)
{
    if (n < 2)
        return n;
    qsort(v, n, sizeof *v, by_address);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t end = v[out].addr + v[out].len;
        if (end < v[out].addr)
            end = UINT64_MAX;
        if (v[i].addr <= end) {
            uint64_t e = v[i].addr + v[i].len < v[i].addr ? UINT64_MAX : v[i].addr + v[i].len;
            if (e > end)
                v[out].len = e - v[out].addr;
        } else {
            v[++out] = v[i];
        }
    }
    return out + 1;
}

/* Append the readable runs of [addr, addr + len) to the frame as segments. */
static int add_user_memory(struct vb_frame *f, uint64_t addr, uint64_t len)
{
    while (len) {
        uint8_t *data = vb_frame_open_segment(f, addr, len);
        if (!data)
            return -ENOMEM;
        size_t got = vb_mem_read(data, addr, len);
        vb_frame_close_segment(f, data, got);
        if (got == len)
            return 0;
        /* skip the page that failed; the driver faults there, maybe reads on after it */
        uint64_t next = ((addr + got) | (VB_PAGE - 1)) + 1;
        if (next <= addr || next - addr >= len)
            return 0;
        len -= next - addr;
        addr = next;
    }
    return 0;
}

/* Everything one BINDER_WRITE_READ needs while it is built and sent. */
struct job {
    int fd;
    uint64_t token, argp;
    struct vb_channel *ch;         /* the open file's fd channel, or NULL */
    struct numbers fds;            /* the fd numbers the commands' objects name */
    struct binder_write_read bwr;  /* as the program passed it */
    uint64_t read_size;            /* what the driver may fill: the writable part of the read buffer */
    int read_fault;                /* not even BR_NOOP fits: EFAULT after the write phase */
    uint8_t *snapshot;             /* the readable part of the write buffer, from write_consumed */
    size_t snapshot_len;
    struct command *cmds;
    size_t ncmds;
    struct ranges ranges;
    uint32_t last_cmd;             /* the last command of the write buffer (0: none) */
    int chain;                     /* ask for the chained wait (docs/abi-chained.md) */
};

/* Walk the write buffer as binder_thread_write would, noting what each command points to. A
 * command starts before write_size, but the driver reads all of it, also past write_size. */
static int walk(struct job *j)
{
    uint64_t start = j->bwr.write_consumed, size = j->bwr.write_size;
    if (start >= size)
        return 0;
    uint64_t limit = size - start;
    uint64_t len = limit + sizeof(struct binder_transaction_data_sg);
    if (len > MAX_WRITE_SNAPSHOT || len < limit)
        len = MAX_WRITE_SNAPSHOT;
    j->snapshot = malloc(len);
    if (!j->snapshot)
        return -ENOMEM;
    j->snapshot_len = vb_mem_read(j->snapshot, j->bwr.write_buffer + start, len);
    size_t cap = 0;
    for (size_t pos = 0; pos < limit && pos + 4 <= j->snapshot_len;) {
        uint32_t cmd;
        memcpy(&cmd, j->snapshot + pos, 4);
        size_t end = pos + 4 + _IOC_SIZE(cmd);
        if (!known_command(cmd) || end > j->snapshot_len)
            break;  /* the driver stops here (EINVAL, or EFAULT past the readable part) */
        if (j->ncmds == cap) {
            cap = cap ? cap * 2 : 16;
            struct command *c = realloc(j->cmds, cap * sizeof *c);
            if (!c)
                return -ENOMEM;
            j->cmds = c;
        }
        size_t first = j->ranges.n;
        int err = 0;
        size_t fds_first = j->fds.n;
        int transaction = cmd == BC_TRANSACTION || cmd == BC_REPLY || cmd == BC_TRANSACTION_SG || cmd == BC_REPLY_SG;
        if (transaction)
            err = transaction_ranges(&j->ranges, j->snapshot + pos + 4, cmd == BC_TRANSACTION_SG || cmd == BC_REPLY_SG);
        if (transaction && j->ch && !err)
            err = transaction_fds(&j->fds, j->snapshot + pos + 4);
        if (err)
            return err;
        uint64_t bytes = 0;
        for (size_t i = first; i < j->ranges.n; i++)
            bytes += j->ranges.v[i].len;
        j->cmds[j->ncmds++] = (struct command){cmd, end, first, j->ranges.n - first, bytes, fds_first,
                                               j->fds.n - fds_first};
        j->last_cmd = end >= limit ? cmd : 0;
        pos = end;
    }
    return 0;
}

/* Build the request for commands [c0, c1) (the rest of the write buffer too when `last`), as
 * VBINDER_WRITE_READ_FDS taking the fds staged as `seq` when it is not 0. */
static int build(struct job *j, struct vb_thread *t, size_t c0, size_t c1, int last, uint32_t seq)
{
    size_t from = c0 ? j->cmds[c0 - 1].end : 0;
    size_t to = last ? j->snapshot_len : j->cmds[c1 - 1].end;
    struct binder_write_read arg = j->bwr;
    arg.write_consumed = j->bwr.write_consumed + from;
    if (!last)
        arg.write_size = j->bwr.write_consumed + to;
    arg.read_size = last && !j->read_fault ? j->read_size : 0;
    struct vb_frame f;
    int chain = last && j->chain && arg.read_size;  /* docs/abi-chained.md */
    struct vb_write_read_fds with_fds = {.seq = seq, .reserved = chain ? VB_WR_CHAIN : 0};
    memcpy(with_fds.bwr, &arg, sizeof arg);
    if (seq ? vb_frame_begin(&f, &t->req, VB_IOC_WRITE_READ_FDS, &with_fds, sizeof with_fds)
            : vb_frame_begin(&f, &t->req, chain ? VB_IOC_WRITE_READ_CHAINED : BINDER_WRITE_READ, &arg, sizeof arg))
        return -ENOMEM;
    struct ranges mem = {0};
    int err = add(&mem, j->bwr.write_buffer + arg.write_consumed, to - from);
    for (size_t c = c0; c < c1 && !err; c++)
        for (size_t i = 0; i < j->cmds[c].count && !err; i++)
            err = add(&mem, j->ranges.v[j->cmds[c].first + i].addr, j->ranges.v[j->cmds[c].first + i].len);
    size_t n = merge(mem.v, mem.n);
    for (size_t i = 0; i < n && !err; i++)
        err = add_user_memory(&f, mem.v[i].addr, mem.v[i].len);
    free(mem.v);
    if (err)
        return err;
    vb_frame_end(&f);
    return 0;
}

/* How many commands from c0 go in one request (at least one). */
static size_t batch(const struct job *j, size_t c0)
{
    uint64_t budget = VB_MAX_FRAME - VB_HEADER_SIZE - 64 - 64 * 23, bytes = 0, segs = 1;
    size_t c = c0;
    size_t from = c0 ? j->cmds[c0 - 1].end : 0;
    for (; c < j->ncmds; c++) {
        bytes += j->cmds[c].bytes;
        segs += j->cmds[c].count;
        uint64_t wbytes = j->cmds[c].end - from;
        if (c > c0 && (bytes + wbytes + 23 * segs > budget || segs > VB_MAX_SEGMENTS - 64))
            break;
    }
    return c - c0 ? c - c0 : 1;
}

/* Stage the fds that commands [c0, c1) name: the number of the set (0: none to stage). */
static uint32_t stage(struct job *j, size_t c0, size_t c1)
{
    if (!j->ch)
        return 0;
    size_t first = j->cmds[c0].fds_first, n = 0;
    for (size_t c = c0; c < c1; c++)
        n += j->cmds[c].fds_count;
    if (!n)
        return 0;
    uint32_t seq = vb_channel_seq();
    int err = vb_channel_stage(j->ch, (uint32_t)gettid(), seq, j->fds.v + first, n);
    if (err < 0)
        vb_debug("staging %zu fds: %s", n, strerror(-err));  /* the driver finds none: EBADF */
    return seq;
}

/* The driver consumed commands of [c0, c1) up to `consumed`: close the FDA fds of the buffers
 * their BC_FREE_BUFFERs freed, as 6.1's binder_deferred_fd_close (before the reply's new buffers,
 * which may be at the freed addresses). */
static void freed(struct job *j, size_t c0, size_t c1, uint64_t consumed)
{
    if (!j->ch || !vb_channel_has_fdas(j->ch))
        return;
    for (size_t c = c0; c < c1 && j->bwr.write_consumed + j->cmds[c].end <= consumed; c++) {
        if (j->cmds[c].code != BC_FREE_BUFFER)
            continue;
        uint64_t buffer;
        memcpy(&buffer, j->snapshot + j->cmds[c].end - sizeof buffer, sizeof buffer);
        vb_channel_freed(j->ch, buffer);
    }
}

/* Apply the reply's segments: the fds of its fixup segment, the read buffer, the mapped area. 0
 * or -EFAULT. */
static int apply(struct job *j, struct vb_reply *reply)
{
    uint64_t rstart = j->bwr.read_buffer + j->bwr.read_consumed;
    uint64_t rend = j->bwr.read_buffer + j->read_size;
    int ret = 0, err;
    uint64_t addr, len;
    const uint8_t *data;
    if (j->ch && (err = vb_channel_fixups(j->ch, reply)) < 0)
        return err;
    vb_area_lock();
    while ((err = vb_reply_segment(reply, &addr, &data, &len)) > 0) {
        if (addr == VB_FD_FIXUPS)
            continue;
        if (addr >= rstart && addr <= rend && len <= rend - addr) {
            if (vb_mem_write(addr, data, len) != len)
                ret = -EFAULT;
        } else if (!vb_area_put(j->token, addr, data, len)) {
            vb_debug("dropped %llu bytes for %#llx: not in this process's area", (unsigned long long)len,
                     (unsigned long long)addr);
        }
    }
    vb_area_unlock();
    return err < 0 ? err : ret;
}

/* The second frame of a chained reply (docs/abi-chained.md): the read the thread's next
 * BINDER_WRITE_READ would run, already run. Its transaction buffers go to the area now; its BR
 * commands wait in t->stash for that ioctl. */
static int take_second(struct job *j, struct vb_thread *t)
{
    struct vb_reply second;
    int err = vb_reply_parse(&second, t->rep.data + t->second_at, t->rep.len - t->second_at);
    t->second_at = 0;
    if (err)
        return err;
    t->stash.len = 0;
    t->stash_token = j->token;
    t->stash_ret = second.ret;
    if (j->ch && (err = vb_channel_fixups(j->ch, &second)) < 0)
        return err;
    uint64_t addr, len;
    const uint8_t *data;
    vb_area_lock();
    while ((err = vb_reply_segment(&second, &addr, &data, &len)) > 0) {
        if (addr == VB_FD_FIXUPS)
            continue;
        if (addr == j->bwr.read_buffer) {
            if (vb_buf_reserve(&t->stash, len)) {
                err = -ENOMEM;
                break;
            }
            memcpy(t->stash.data, data, len);
            t->stash.len = len;
        } else {
            vb_area_put(j->token, addr, data, len);
        }
    }
    vb_area_unlock();
    if (t->stash.len == 0 && t->stash_ret >= 0)
        t->stash_token = 0;
    return err < 0 ? err : 0;
}

/* Send the (walked) BINDER_WRITE_READ and apply its reply. */
static int run(struct job *j, struct vb_thread *t)
{
    int err;
    struct vb_reply reply;
    struct binder_write_read out = j->bwr;
    size_t c0 = 0;
    for (;;) {
        size_t c1 = c0 + (j->ncmds ? batch(j, c0) : 0);
        int last = c1 >= j->ncmds;
        if (last)
            c1 = j->ncmds;
        err = build(j, t, c0, c1, last, c1 > c0 ? stage(j, c0, c1) : 0);
        if (err)
            return err;
        err = vb_exchange(j->fd, t, vb_channel_slot(j->ch), &reply);
        if (err == -EINTR && last && j->read_size && !j->read_fault) {
            /* The read phase waited and a signal came: the write phase ran whole. */
            out.write_consumed = out.write_size > out.write_consumed ? out.write_size : out.write_consumed;
            freed(j, c0, c1, out.write_consumed);
            t->fast_token = j->token;
            t->fast_buffer = j->bwr.read_buffer;
            t->fast_size = j->read_size;
            return vb_mem_write(j->argp, &out, sizeof out) == sizeof out ? -EINTR : -EFAULT;
        }
        if (err)
            return err;
        struct binder_write_read got;
        if (reply.arg_len != sizeof got && reply.arg_len != sizeof(struct vb_write_read_fds))
            return -EPROTO;
        memcpy(&got, reply.arg, sizeof got);
        out.write_consumed = got.write_consumed;
        out.read_consumed = got.read_consumed;
        freed(j, c0, c1, got.write_consumed);
        if (!last && reply.ret >= 0 && got.write_consumed >= j->bwr.write_consumed + j->cmds[c1 - 1].end) {
            c0 = c1;
            continue;
        }
        int ret = reply.ret;
        if (last && j->read_size && !j->read_fault && ret >= 0) {
            t->fast_token = j->token;
            t->fast_buffer = j->bwr.read_buffer;
            t->fast_size = j->read_size;
        }
        err = apply(j, &reply);
        if (err && ret >= 0)
            ret = err;
        if (last && t->second_at && (err = take_second(j, t)) && ret >= 0)
            ret = err;
        if (last && j->read_fault && ret >= 0)
            ret = -EFAULT;  /* binder_thread_read's first put_user failed */
        if (vb_mem_write(j->argp, &out, sizeof out) != sizeof out)
            ret = -EFAULT;
        return ret;
    }
}

/* The program's BINDER_WRITE_READ after a chained one: its write phase alone (if any), then the
 * stashed read as its read phase: as many whole BR commands as its read buffer holds (the rest
 * waits for the next one, as work stays queued in the kernel). */
static int from_stash(struct job *j, struct vb_thread *t)
{
    int ret = 0;
    if (j->bwr.write_size > j->bwr.write_consumed) {
        j->read_size = 0;
        j->read_fault = 0;
        ret = walk(j);
        if (!ret)
            ret = run(j, t);
        if (ret < 0)
            return ret;  /* the kernel would not have read: the stash waits */
        if (vb_mem_read(&j->bwr, j->argp, sizeof j->bwr) != sizeof j->bwr)
            return -EFAULT;
    }
    if (t->stash_ret < 0) {
        ret = t->stash_ret;
        t->stash_token = 0;
        return ret;
    }
    struct binder_write_read out = j->bwr;
    uint64_t room = vb_mem_writable(out.read_buffer + out.read_consumed, out.read_size - out.read_consumed);
    size_t n = 0;
    while (n + 4 <= t->stash.len) {
        uint32_t cmd;
        memcpy(&cmd, t->stash.data + n, 4);
        size_t next = n + 4 + _IOC_SIZE(cmd);
        if (next > t->stash.len || next > room)
            break;
        n = next;
    }
    if (n && vb_mem_write(out.read_buffer + out.read_consumed, t->stash.data, n) != n)
        return -EFAULT;
    out.read_consumed += n;
    memmove(t->stash.data, t->stash.data + n, t->stash.len - n);
    t->stash.len -= n;
    if (t->stash.len == 0)
        t->stash_token = 0;
    if (vb_mem_write(j->argp, &out, sizeof out) != sizeof out)
        return -EFAULT;
    return ret;
}

/* The read-only fast path: a pread continues the read phase in flight or starts one (-ENOMSG: the
 * daemon has no read buffer on record for this thread, use a full request). */
static int fast(struct job *j, struct vb_thread *t)
{
    struct vb_reply reply;
    int err = vb_read_only(j->fd, t, &reply);
    if (err == -EINTR)
        return -EINTR;  /* nothing written, nothing read: the struct stays as it is */
    if (err)
        return err;
    struct binder_write_read got, out = j->bwr;
    if (reply.arg_len != sizeof got && reply.arg_len != sizeof(struct vb_write_read_fds))
        return -EPROTO;
    memcpy(&got, reply.arg, sizeof got);
    out.read_consumed = got.read_consumed;
    int ret = reply.ret;
    err = apply(j, &reply);
    if (err && ret >= 0)
        ret = err;
    if (vb_mem_write(j->argp, &out, sizeof out) != sizeof out)
        ret = -EFAULT;
    return ret;
}

/* What a job holds, let go at its end whatever way it ends; returns ret. */
static int job_end(struct job *j, int ret)
{
    vb_channel_put(j->ch);
    free(j->snapshot);
    free(j->cmds);
    free(j->ranges.v);
    free(j->fds.v);
    return ret;
}

int vb_write_read(int fd, uint64_t token, uint64_t argp)
{
    struct job j = {.fd = fd, .token = token, .argp = argp};
    if (vb_mem_read(&j.bwr, argp, sizeof j.bwr) != sizeof j.bwr)
        return -EFAULT;
    struct vb_thread *t = vb_thread();
    if (!t)
        return -ENOMEM;
    j.ch = vb_channel_get(fd, token);
    j.read_size = j.bwr.read_size;
    if (j.bwr.read_size > j.bwr.read_consumed) {
        uint64_t room = vb_mem_writable(j.bwr.read_buffer + j.bwr.read_consumed, j.bwr.read_size - j.bwr.read_consumed);
        j.read_size = j.bwr.read_consumed + room;
        j.read_fault = j.bwr.read_consumed == 0 && room < 4;
    }
    int ret;
    if (t->stash_token && t->stash_token == token && j.bwr.read_size > j.bwr.read_consumed)
        return job_end(&j, from_stash(&j, t));
    if (j.bwr.write_size == 0 && j.bwr.read_size && !j.bwr.read_consumed && j.read_size == j.bwr.read_size
        && t->fast_token == token && t->fast_buffer == j.bwr.read_buffer && t->fast_size == j.bwr.read_size) {
        ret = fast(&j, t);
        if (ret != -ENOMSG)
            return job_end(&j, ret);
    }
    if (j.bwr.read_size)
        t->fast_token = 0;  /* this request's read phase replaces the daemon's record (or fails) */
    ret = walk(&j);
    if (!ret && (j.last_cmd == BC_REPLY || j.last_cmd == BC_REPLY_SG) && j.read_size && !j.read_fault
        && !j.bwr.read_consumed)
        j.chain = vb_chain_ok(fd, t, token);
    if (!ret)
        ret = run(&j, t);
    return job_end(&j, ret);
}
