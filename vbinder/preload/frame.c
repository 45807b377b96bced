/* The device ABI, version 1: request and reply frames (DESIGN.md "The device ABI, version 1").
 *
 *   request: "VBQ1" u32 cmd, u32 arg_len, u32 nseg, u64 total, arg (padded to 8),
 *            nseg x { u64 addr, u64 len, data (padded to 8) }
 *   reply:   "VBR1" s32 ret, then the same layout
 *
 * Little-endian, like the machines this library runs on. This file is the only one that knows
 * the layout; vbinder/abi.py is its Python twin.
 */
#include "vbpreload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAD8(n) (((n) + 7) & ~(uint64_t)7)

static const char REQUEST_MAGIC[4] = {'V', 'B', 'Q', '1'};
static const char REPLY_MAGIC[4] = {'V', 'B', 'R', '1'};
static const char CHAINED_MAGIC[4] = {'V', 'B', 'R', 'C'};  /* docs/abi-chained.md */
static const char STUB_MAGIC[4] = {'V', 'B', 'R', 'S'};     /* docs/abi-slot.md */

struct header {
    char magic[4];
    uint32_t code;  /* cmd (request) or ret (reply) */
    uint32_t arg_len;
    uint32_t nseg;
    uint64_t total;
};
_Static_assert(sizeof(struct header) == VB_HEADER_SIZE, "frame header");

int vb_buf_reserve(struct vb_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *data = realloc(b->data, cap);
    if (!data)
        return -ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

void vb_buf_free(struct vb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int vb_frame_begin(struct vb_frame *f, struct vb_buf *buf, uint32_t cmd, const void *arg, uint32_t arg_len)
{
    f->buf = buf;
    f->nseg = 0;
    buf->len = 0;
    if (vb_buf_reserve(buf, VB_HEADER_SIZE + PAD8(arg_len)))
        return -ENOMEM;
    struct header h = {.code = cmd, .arg_len = arg_len};
    memcpy(h.magic, REQUEST_MAGIC, 4);
    memcpy(buf->data, &h, sizeof h);
    if (arg_len)
        memcpy(buf->data + VB_HEADER_SIZE, arg, arg_len);
    memset(buf->data + VB_HEADER_SIZE + arg_len, 0, PAD8(arg_len) - arg_len);
    buf->len = VB_HEADER_SIZE + PAD8(arg_len);
    return 0;
}

int vb_frame_fits(const struct vb_frame *f, uint64_t more_bytes, uint32_t more_segments)
{
    /* each segment: a 16-byte header, its data, up to 7 bytes of padding */
    return f->nseg + more_segments <= VB_MAX_SEGMENTS && more_bytes <= VB_MAX_FRAME
        && f->buf->len + 23ull * more_segments + more_bytes <= VB_MAX_FRAME;
}

uint8_t *vb_frame_open_segment(struct vb_frame *f, uint64_t addr, uint64_t len)
{
    if (!vb_frame_fits(f, len, 1) || vb_buf_reserve(f->buf, 16 + PAD8(len)))
        return NULL;
    uint8_t *p = f->buf->data + f->buf->len;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 8);
    return p + 16;
}

void vb_frame_close_segment(struct vb_frame *f, uint8_t *data, uint64_t used)
{
    if (!used)
        return;  /* dropped: the buffer's length never moved past it */
    memcpy(data - 8, &used, 8);
    memset(data + used, 0, PAD8(used) - used);
    f->buf->len = (size_t)(data - f->buf->data) + PAD8(used);
    f->nseg++;
}

void vb_frame_end(struct vb_frame *f)
{
    struct header *h = (struct header *)f->buf->data;
    h->nseg = f->nseg;
    h->total = f->buf->len;
}

uint64_t vb_reply_total(const uint8_t *header)
{
    struct header h;
    memcpy(&h, header, sizeof h);
    if ((memcmp(h.magic, REPLY_MAGIC, 4) && memcmp(h.magic, CHAINED_MAGIC, 4)) || h.total < VB_HEADER_SIZE
        || h.total > VB_MAX_FRAME)
        return 0;
    return h.total;
}

uint64_t vb_stub_total(const uint8_t *header)
{
    struct header h;
    memcpy(&h, header, sizeof h);
    return memcmp(h.magic, STUB_MAGIC, 4) ? 0 : h.total;
}

int vb_reply_chained(const uint8_t *header)
{
    return memcmp(header, CHAINED_MAGIC, 4) == 0;
}

int vb_reply_parse(struct vb_reply *r, const uint8_t *buf, size_t len)
{
    struct header h;
    if (len < VB_HEADER_SIZE)
        return -EPROTO;
    memcpy(&h, buf, sizeof h);
    if ((memcmp(h.magic, REPLY_MAGIC, 4) && memcmp(h.magic, CHAINED_MAGIC, 4)) || h.total != len
        || PAD8(h.arg_len) > len - VB_HEADER_SIZE)
        return -EPROTO;
    r->ret = (int32_t)h.code;
    r->arg = buf + VB_HEADER_SIZE;
    r->arg_len = h.arg_len;
    r->nseg = h.nseg;
    r->pos = buf + VB_HEADER_SIZE + PAD8(h.arg_len);
    r->end = buf + len;
    return 0;
}

int vb_reply_segment(struct vb_reply *r, uint64_t *addr, const uint8_t **data, uint64_t *len)
{
    if (r->nseg == 0)
        return r->pos == r->end ? 0 : -EPROTO;
    if ((size_t)(r->end - r->pos) < 16)
        return -EPROTO;
    memcpy(addr, r->pos, 8);
    memcpy(len, r->pos + 8, 8);
    if (*len > (uint64_t)(r->end - r->pos) - 16 || PAD8(*len) > (uint64_t)(r->end - r->pos) - 16)
        return -EPROTO;
    *data = r->pos + 16;
    r->pos += 16 + PAD8(*len);
    r->nseg--;
    return 1;
}
