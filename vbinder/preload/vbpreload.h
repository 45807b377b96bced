/* The vbinder preload library: what its parts share (internal; nothing here is exported).
 *
 * An unmodified program that loads this library (LD_PRELOAD, set by `vbinder run`) sees the
 * vbinder mount's device files as the kernel's binder devices: paths.c redirects /dev/binder
 * and friends, ioctl.c turns every ioctl into a request frame of the device ABI (version 1,
 * DESIGN.md) and applies the reply, write_read.c gathers the memory a BINDER_WRITE_READ points
 * to, area.c gives mmap a real read-only mapped area, device.c knows which fds are vbinder
 * devices. docs/preload.md describes the design.
 */
#ifndef VBPRELOAD_H
#define VBPRELOAD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#define VB_API __attribute__((visibility("default")))  /* the interposed libc functions */

/* -- the device ABI, version 1 (frame.c is the only place that knows the frame layout) ---------- */

#define VB_HEADER_SIZE 24
#define VB_MAX_FRAME (8u << 20)
#define VB_MAX_SEGMENTS 1024
#define VB_KEY_SHIFT 40
#define VB_PAGE 4096ull
#define VB_MMAP_BASE 0x700000000000ull  /* the range the driver accepts for mapped areas */
#define VB_MMAP_END 0x7fff00000000ull
#define VB_MMAP_MAX_USED (4u << 20)     /* SZ_4M: the driver uses at most this much of an area */

struct vb_mmap_arg { uint64_t addr, size; uint32_t prot, flags; };
struct vb_munmap_arg { uint64_t addr, size; };
#define VB_IOC_ABI_VERSION _IOR('v', 0, uint32_t)
#define VB_IOC_MMAP _IOWR('v', 1, struct vb_mmap_arg)
#define VB_IOC_MUNMAP _IOW('v', 2, struct vb_munmap_arg)
/* Extensions (docs/abi-chained.md): VBINDER_FEATURES, and the chained BINDER_WRITE_READ (its
 * argument is struct binder_write_read's 48 bytes). */
#define VB_IOC_FEATURES _IOR('v', 4, uint64_t)
#define VB_FEATURE_CHAINED (1ull << 1)
#define VB_IOC_WRITE_READ_CHAINED _IOC(_IOC_READ | _IOC_WRITE, 'v', 7, 48)
/* The request slot (docs/abi-slot.md): VBINDER_FEATURES bit 2, VBINDER_SLOT, a pread's slot bit. */
#define VB_FEATURE_SLOT (1ull << 2)
#define VB_IOC_SLOT _IOR('v', 8, uint64_t)
#define VB_SLOT_BIT (1ull << 39)

/* A growable byte buffer (a thread's request or reply frame). */
struct vb_buf {
    uint8_t *data;
    size_t len, cap;
};
int vb_buf_reserve(struct vb_buf *b, size_t extra);  /* room for `extra` more bytes: 0 or -ENOMEM */
void vb_buf_free(struct vb_buf *b);

/* A request frame being built in a buffer. */
struct vb_frame {
    struct vb_buf *buf;
    uint32_t nseg;
};
int vb_frame_begin(struct vb_frame *f, struct vb_buf *buf, uint32_t cmd, const void *arg, uint32_t arg_len);
/* Room for a segment of `len` bytes at `addr`: where its data goes (NULL: -ENOMEM or too big,
 * see vb_frame_fits); vb_frame_close_segment keeps its first `used` bytes (0 drops it). */
uint8_t *vb_frame_open_segment(struct vb_frame *f, uint64_t addr, uint64_t len);
void vb_frame_close_segment(struct vb_frame *f, uint8_t *data, uint64_t used);
int vb_frame_fits(const struct vb_frame *f, uint64_t more_bytes, uint32_t more_segments);
void vb_frame_end(struct vb_frame *f);

/* A reply frame, parsed in place. */
struct vb_reply {
    int32_t ret;              /* the ioctl's result: >= 0, or -errno */
    const uint8_t *arg;       /* what the ioctl copies back */
    uint32_t arg_len;
    uint32_t nseg;
    const uint8_t *pos, *end; /* the segments not yet visited */
};
uint64_t vb_reply_total(const uint8_t *header);  /* from its first 24 bytes; 0: not a reply */
int vb_reply_chained(const uint8_t *header);      /* 1: a chained reply's first frame (another follows) */
/* A slot pread's stub (docs/abi-slot.md): the length of the reply it put in the slot; 0: no stub. */
uint64_t vb_stub_total(const uint8_t *header);
int vb_reply_parse(struct vb_reply *r, const uint8_t *buf, size_t len);  /* 0 or -EPROTO */
/* The next copy-to-user segment: 1, 0 at the end, -EPROTO. */
int vb_reply_segment(struct vb_reply *r, uint64_t *addr, const uint8_t **data, uint64_t *len);

/* -- the calling thread and its exchanges with the daemon (transport.c) ---------------------- */

struct vb_thread {
    struct vb_buf req, rep;
    /* The last BINDER_WRITE_READ of this thread whose read phase the daemon ran: a read-only one
     * with the same read buffer on the same open file may use the ABI's read-only fast path. */
    uint64_t fast_token, fast_buffer, fast_size;
    /* docs/abi-chained.md: where the last reply's second frame starts in `rep` (0: none); whether
     * the daemon of the open file `chain_token` offers the chained wait (1 yes, -1 no); the read
     * a chained request ran for the thread's next BINDER_WRITE_READ on `stash_token` (its BR
     * commands in `stash`, its result `stash_ret`). */
    size_t second_at;
    uint64_t chain_token;
    int chain_ok;
    struct vb_buf stash;
    uint64_t stash_token;
    int32_t stash_ret;
    /* Its region of a request slot (slot.c), with a reference to the slot; NULL: none. */
    struct vb_slot *slot;
    uint32_t region;
};
struct vb_thread *vb_thread(void);  /* NULL when out of memory */
void vb_thread_forget_fast_path(void);
/* pwrite the request in t->req, pread its reply into t->rep: 0 or -errno (-EINTR: a signal
 * ended the wait of its read phase, which stays in flight in the daemon). With `slot` (NULL:
 * none), a request the slot carries goes there and one pread runs it (slot.c). */
int vb_exchange(int fd, struct vb_thread *t, struct vb_slot *slot, struct vb_reply *reply);
/* Whether the daemon of this open file offers the chained wait (asked once per thread and file). */
int vb_chain_ok(int fd, struct vb_thread *t, uint64_t token);
/* Only the pread: the read phase in flight, else the ABI's read-only fast path (-ENOMSG: none). */
int vb_read_only(int fd, struct vb_thread *t, struct vb_reply *reply);
/* A request with no user memory (every ioctl but BINDER_WRITE_READ, and vbinder's own). */
int vb_simple_ioctl(int fd, uint32_t cmd, const void *arg, uint32_t arg_len, struct vb_reply *reply);

/* -- the caller's memory, read and written without ever faulting (memory.c) ----------------- */

size_t vb_mem_read(void *dst, uint64_t addr, size_t len);         /* the readable prefix, copied */
size_t vb_mem_write(uint64_t addr, const void *src, size_t len);  /* the writable prefix, written */
size_t vb_mem_writable(uint64_t addr, size_t len);                /* how much of it is writable */
void vb_memory_after_fork(void);

/* -- which fds and paths are vbinder devices (device.c) ---------------------------------------- */

/* An open device file carries a token in its file position (pread/pwrite ignore it): the opener
 * process image and a serial number. It names the open file across dup, fork and exec. */
#define VB_TOKEN_MARK (1ull << 62)
int vb_device_fd(int fd, uint64_t *token);  /* 1: a vbinder device file (its token), 0: not */
void vb_device_opened(int fd);              /* an open that may be a device: give it a token */
int vb_token_ours(uint64_t token);          /* opened by this process image (the kernel's mm check) */
int vb_token_pid(uint64_t token);
const char *vb_mount(void);                 /* the mount that /dev/binder goes to; NULL: none */
int vb_mount_has_device(const char *name);
/* stat results: a vbinder device file reads as the kernel's character device. */
void vb_fake_stat(struct stat *st);
void vb_fake_statx(void *statxbuf);
int vb_stat_is_device(dev_t dev, ino_t ino, mode_t mode);
void vb_device_after_fork(void);

/* -- mapped areas (area.c) ---------------------------------------------------------------------- */

void *vb_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, uint64_t token);
void vb_munmap_done(uint64_t addr, size_t len);  /* after a successful munmap: end areas it touched */
/* Copy a transaction buffer the driver delivered into the area of open file `token` (under the
 * areas' lock, taken by vb_area_lock): 1 done, 0 not inside that area. */
void vb_area_lock(void);
void vb_area_unlock(void);
int vb_area_put(uint64_t token, uint64_t addr, const uint8_t *data, uint64_t len);
void vb_area_after_fork(void);
/* The live areas as "token:addr:size,..." (hex) for an exec: 0 if there are none. */
int vb_area_describe(char *out, size_t size);

/* -- the fd channel: file descriptors in transactions (fds.c, docs/abi-fds.md) ----------------- */

/* VBINDER_WRITE_READ_FDS: a BINDER_WRITE_READ whose transactions take the fds staged as `seq`. */
struct vb_write_read_fds { uint64_t bwr[6]; uint32_t seq, reserved; };
#define VB_IOC_WRITE_READ_FDS _IOWR('v', 6, struct vb_write_read_fds)
#define VB_WR_CHAIN 1u  /* its `reserved`, now flags: chained (docs/abi-chained.md) */
#define VB_FD_FIXUPS 0xffffffff00000000ull  /* the address of a reply's fixup segment */

struct vb_channel;
/* The channel of open file `token` (bound at the first call by its opener), with a reference;
 * NULL: none (the daemon has no fd channel, this process is not the opener, it ended). */
struct vb_channel *vb_channel_get(int fd, uint64_t token);
void vb_channel_put(struct vb_channel *ch);
uint32_t vb_channel_seq(void);  /* the number of a request that stages fds */
/* Stage `fds` (sorted and filtered in place: each open one once) for thread `tid`'s request `seq`:
 * how many were sent, or -errno (the channel ended: the driver will not find them). */
int vb_channel_stage(struct vb_channel *ch, uint32_t tid, uint32_t seq, int *fds, size_t n);
/* The reply's fixup segment, if any: its fds received and their numbers written into the reply's
 * buffer segments (before they are copied to the area). 0 or -EPROTO. */
int vb_channel_fixups(struct vb_channel *ch, const struct vb_reply *reply);
int vb_channel_has_fdas(struct vb_channel *ch);
void vb_channel_freed(struct vb_channel *ch, uint64_t buffer);  /* BC_FREE_BUFFER: close its FDA fds */
void vb_channel_after_fork(void);
struct vb_slot *vb_channel_slot(struct vb_channel *ch);  /* its request slot, NULL: none */

/* -- the request slot (slot.c, docs/abi-slot.md) ------------------------------------------------ */

struct vb_slot;
/* Register a slot for open file `fd` on its channel's socket `sock` if the daemon offers it
 * (`features`) and VBINDER_SLOT is not 0; NULL: none (a notice says why, if it failed). */
struct vb_slot *vb_slot_open(int fd, int sock, uint64_t features);
void vb_slot_close(struct vb_slot *s);       /* the channel's reference: the memfd goes */
void vb_slot_after_fork(struct vb_slot *s);  /* a child never uses its parent's slot */
void vb_slot_leave(struct vb_thread *t);     /* the thread's region is free again */
/* Put t->req in the thread's region as a new request: the region's start, or -1 (by pwrite). */
int64_t vb_slot_put(struct vb_slot *s, struct vb_thread *t);
void vb_slot_gone(struct vb_slot *s);        /* the daemon has no slot any more (ENXIO) */
/* The reply of `total` bytes in the region at `start`, into `b`: 0 or -errno. */
int vb_slot_reply(struct vb_slot *s, int64_t start, struct vb_buf *b, uint64_t total);

/* -- BINDER_WRITE_READ (write_read.c) and the other ioctls (ioctl.c) ---------------------------- */

int vb_write_read(int fd, uint64_t token, uint64_t argp);  /* the ioctl's result: 0 or -errno */

/* -- the next definitions of what we interpose (interpose.c) ----------------------------------- */

struct vb_real {
    int (*ioctl)(int, unsigned long, ...);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*stat)(const char *, struct stat *);
    int (*lstat)(const char *, struct stat *);
    int (*fstat)(int, struct stat *);
    int (*fstatat)(int, const char *, struct stat *, int);
    int (*statx)(int, const char *, int, unsigned int, void *);
    int (*access)(const char *, int);
    int (*faccessat)(int, const char *, int, int);
    int (*euidaccess)(const char *, int);
};
extern struct vb_real vb_real;
void vb_init(void);  /* resolve the next definitions (idempotent, cheap after the first call) */
void vb_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* $VBINDER_PRELOAD_DEBUG */

#endif
