/* tbinder: the little binder library of the test programs, on <linux/android/binder.h> alone.
 *
 * The programs are written as a binder user writes them for the kernel: open /dev/binder, mmap
 * it, BINDER_WRITE_READ with BC commands, parse the BR commands. Parcels follow AOSP's format
 * (interface tokens, String16, binder objects with their stability word), so that they speak
 * Android's IServiceManager protocol. Each program prints its transcript, one event per line,
 * prefixed with its role; the test compares the kernel's transcript with vbinder's.
 */
#ifndef TBINDER_H
#define TBINDER_H

#define _GNU_SOURCE 1
#include <linux/android/binder.h>
#include <stddef.h>
#include <stdint.h>

#define SM_DESCRIPTOR "android.os.IServiceManager"
#define SM_GET_SERVICE 1
#define SM_CHECK_SERVICE 2
#define SM_ADD_SERVICE 3
#define SM_LIST_SERVICES 4
#define STABILITY_SYSTEM 0x0c
#define MAP_SIZE ((1 << 20) - 2 * 4096)  /* libbinder's BINDER_VM_SIZE */

/* The device, mapped. */
struct tb {
    int fd;
    const uint8_t *map;
    size_t map_size;
};

/* A parcel being written. */
struct parcel {
    uint8_t *data;
    size_t len, cap;
    binder_size_t offsets[64];
    size_t noffsets;
};

/* A parcel being read: a received transaction's data (in the mapped area). */
struct rparcel {
    const uint8_t *data;
    size_t len, pos;
};

/* What a call returned: BR_REPLY's data (copied), or the failure's BR code. */
struct result {
    uint32_t br;        /* BR_REPLY, BR_DEAD_REPLY, BR_FAILED_REPLY, BR_TRANSACTION_COMPLETE (oneway) */
    uint32_t flags;     /* of the reply */
    binder_uintptr_t buffer;  /* the reply's buffer, freed by tb_release (after taking references) */
    uint8_t *data;      /* a copy of the reply's data (malloc) */
    size_t len;
    binder_size_t offsets[16];
    size_t noffsets;
    uint32_t brs[32];   /* the BR codes this call read, in order */
    size_t nbrs;
};

/* A transaction handler: fill `reply` (return 0), -1 for an error reply, 1 if it replied itself. */
typedef int (*tb_handler)(struct tb *b, const struct binder_transaction_data *tr, struct rparcel *in,
                          struct parcel *reply);

extern const char *tb_role;
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
const char *br_name(uint32_t cmd);

void tb_open(struct tb *b, const char *dev, size_t map_size);
int tb_ioctl_wr(struct tb *b, struct binder_write_read *bwr);  /* 0 or -errno, retried on EINTR */

/* Commands queued for this thread's next write. */
void tb_queue(const void *cmd, size_t len);
void tb_queue_cmd(uint32_t code);
void tb_queue_u32(uint32_t code, uint32_t value);
void tb_queue_ptr(uint32_t code, binder_uintptr_t ptr);
void tb_queue_ptr_cookie(uint32_t code, binder_uintptr_t ptr, binder_uintptr_t cookie);
void tb_queue_handle_cookie(uint32_t code, uint32_t handle, binder_uintptr_t cookie);
void tb_flush(struct tb *b);  /* write what is queued, read nothing */

/* Reply to `tr` now and read once: the BR codes that read returned (for a reply that may fail). */
size_t tb_reply_and_read(struct tb *b, const struct binder_transaction_data *tr, struct parcel *reply,
                         uint32_t *brs, size_t max);
extern int tb_exit_after_reply;  /* set by a handler: the process exits once its reply is written */
extern void (*tb_after_reply)(void);  /* called once a transaction's reply is written */

/* A call: waits for the reply, serving nested calls with `handler` meanwhile. */
void tb_call(struct tb *b, uint32_t handle, uint32_t code, struct parcel *data, uint32_t flags, tb_handler handler,
             struct result *out);
/* The same as BC_TRANSACTION_SG, with `buffers_size` bytes of scatter-gather buffers. */
void tb_call_sg(struct tb *b, uint32_t handle, uint32_t code, struct parcel *data, uint32_t flags,
                size_t buffers_size, tb_handler handler, struct result *out);
/* Queue BC_FREE_BUFFER for a call's reply, and free its copy: after taking the references of the
 * handles it carries (as libbinder: the buffer's own references go with it). */
void tb_release(struct result *res);
/* The looper: read and dispatch until `stop` returns non-zero (death notifications come here). */
typedef int (*tb_event)(struct tb *b, uint32_t cmd, const uint8_t *payload);
void tb_loop(struct tb *b, tb_handler handler, tb_event event);

void p_init(struct parcel *p);
void p_free(struct parcel *p);
void p_i32(struct parcel *p, int32_t v);
void p_str16(struct parcel *p, const char *s);
void p_token(struct parcel *p, const char *descriptor);
void p_binder(struct parcel *p, binder_uintptr_t ptr, binder_uintptr_t cookie);
void p_handle(struct parcel *p, uint32_t handle);
void p_null_binder(struct parcel *p);
void p_binder_no_fds(struct parcel *p, binder_uintptr_t ptr, binder_uintptr_t cookie);  /* refuses fds */
/* File descriptors: as libbinder's writeFileDescriptor (flags 0, cookie: take ownership), and a
 * BINDER_TYPE_PTR buffer with a BINDER_TYPE_FDA array in it (calls with tb_call_sg). */
void p_fd(struct parcel *p, int fd, int take_ownership);
void p_ptr(struct parcel *p, const void *buffer, size_t length);
void p_fda(struct parcel *p, size_t num_fds, size_t parent, size_t parent_offset);

void r_init(struct rparcel *r, const void *data, size_t len);
int32_t r_i32(struct rparcel *r);
int r_str16(struct rparcel *r, char *out, size_t size);  /* -1: null or malformed */
int r_token(struct rparcel *r, char *descriptor, size_t size);
const struct flat_binder_object *r_object(struct rparcel *r);  /* and its stability word */
const void *r_raw(struct rparcel *r, size_t n);  /* n bytes (NULL: not there) */

#endif
