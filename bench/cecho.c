/* cecho: the benchmark's echo call made by C programs on the kernel's binder ABI, which run on a
 * vbinder mount through the preload library (`vbinder run`, or LD_PRELOAD + VBINDER_MOUNT).
 *
 *   cecho server NAME   registers NAME with the service manager (Android's addService) and echoes
 *                       on two looper threads; prints "ready"
 *   cecho client NAME   gets NAME from the service manager; prints "ready", then answers commands
 *                       on stdin, one line each: "warmup SIZE N" -> "ok";
 *                       "sync SIZE N REPS" -> "samples NS ... walls NS ..." (each call's and each
 *                       repetition's time); "check SIZE N" -> "ok" when N calls with a patterned
 *                       payload came back byte for byte (tests)
 *
 * The call is the Python benchmark's: an AIDL-style call of vbinder.bench.IBench's code 1 with a
 * byte array, echoed back. Both processes die with their parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <linux/android/binder.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define DESCRIPTOR "vbinder.bench.IBench"
#define SM "android.os.IServiceManager"
#define MAP_SIZE ((1 << 20) - 2 * 4096)

static int fd;

static void die(const char *what)
{
    fprintf(stderr, "cecho: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* -- a parcel: interface token, strings, byte arrays, one binder object ------------------------- */

struct parcel {
    uint8_t data[1 << 20];
    size_t len;
    binder_size_t offsets[1];
    size_t noffsets;
};

static void put(struct parcel *p, const void *v, size_t n)
{
    memcpy(p->data + p->len, v, n);
    memset(p->data + p->len + n, 0, (4 - n % 4) % 4);
    p->len += (n + 3) & ~(size_t)3;
}

static void put_i32(struct parcel *p, int32_t v)
{
    put(p, &v, 4);
}

static void put_str16(struct parcel *p, const char *s)
{
    uint16_t u[128];
    size_t n = strlen(s);
    for (size_t i = 0; i <= n; i++)
        u[i] = (uint8_t)s[i];
    put_i32(p, (int32_t)n);
    put(p, u, (n + 1) * 2);
}

static void put_token(struct parcel *p, const char *descriptor)
{
    put_i32(p, (int32_t)0x80000000u);
    put_i32(p, -1);
    put_i32(p, 0x53595354);  /* 'SYST' */
    put_str16(p, descriptor);
}

/* -- calls --------------------------------------------------------------------------------------- */

static __thread uint8_t out[512];
static __thread size_t out_len;

static void queue(uint32_t cmd, const void *arg, size_t n)
{
    memcpy(out + out_len, &cmd, 4);
    memcpy(out + out_len + 4, arg, n);
    out_len += 4 + n;
}

/* One BINDER_WRITE_READ: what is queued, then a read into `rbuf`; the bytes read. */
static size_t write_read(uint8_t *rbuf, size_t size)
{
    struct binder_write_read bwr = {out_len, 0, (binder_uintptr_t)out, size, 0, (binder_uintptr_t)rbuf};
    while (ioctl(fd, BINDER_WRITE_READ, &bwr) < 0)
        if (errno != EINTR)
            die("BINDER_WRITE_READ");
    out_len = 0;
    return bwr.read_consumed;
}

static void transaction(uint32_t cmd, uint32_t handle, uint32_t code, const struct parcel *p)
{
    struct binder_transaction_data tr = {
        .target.handle = handle, .code = code, .flags = TF_ACCEPT_FDS, .data_size = p->len,
        .offsets_size = p->noffsets * sizeof(binder_size_t), .data.ptr.buffer = (binder_uintptr_t)p->data,
        .data.ptr.offsets = (binder_uintptr_t)p->offsets,
    };
    queue(cmd, &tr, sizeof tr);
}

static __thread binder_uintptr_t to_free;  /* the last reply's buffer */

/* A call: its reply's data, valid until the next call, which frees its buffer (after what was
 * queued meanwhile: the references to the handles the reply carried, as libbinder orders them). */
static const uint8_t *call(uint32_t handle, uint32_t code, const struct parcel *p, size_t *len)
{
    if (to_free)
        queue(BC_FREE_BUFFER, &to_free, sizeof to_free);
    to_free = 0;
    transaction(BC_TRANSACTION, handle, code, p);
    uint8_t rbuf[256];
    for (;;) {
        size_t n = write_read(rbuf, sizeof rbuf);
        for (size_t pos = 0; pos + 4 <= n;) {
            uint32_t cmd;
            memcpy(&cmd, rbuf + pos, 4);
            if (cmd == BR_REPLY) {
                struct binder_transaction_data tr;
                memcpy(&tr, rbuf + pos + 4, sizeof tr);
                to_free = tr.data.ptr.buffer;
                *len = tr.data_size;
                return (const uint8_t *)(uintptr_t)tr.data.ptr.buffer;
            }
            if (cmd == BR_DEAD_REPLY || cmd == BR_FAILED_REPLY) {
                errno = EPIPE;
                die("call");
            }
            pos += 4 + _IOC_SIZE(cmd);
        }
    }
}

/* -- the server ----------------------------------------------------------------------------------- */

static void reply_refs(uint32_t cmd, const uint8_t *payload)
{
    struct binder_ptr_cookie pc;
    memcpy(&pc, payload, sizeof pc);
    queue(cmd == BR_INCREFS ? BC_INCREFS_DONE : BC_ACQUIRE_DONE, &pc, sizeof pc);
}

static void *looper(void *arg)
{
    (void)arg;
    static __thread struct parcel reply;
    if (to_free)
        queue(BC_FREE_BUFFER, &to_free, sizeof to_free);
    to_free = 0;
    queue(BC_ENTER_LOOPER, NULL, 0);
    uint8_t rbuf[256];
    for (;;) {
        size_t n = write_read(rbuf, sizeof rbuf);
        for (size_t pos = 0; pos + 4 <= n;) {
            uint32_t cmd;
            memcpy(&cmd, rbuf + pos, 4);
            const uint8_t *payload = rbuf + pos + 4;
            pos += 4 + _IOC_SIZE(cmd);
            if (cmd == BR_INCREFS || cmd == BR_ACQUIRE)
                reply_refs(cmd, payload);
            if (cmd != BR_TRANSACTION)
                continue;
            struct binder_transaction_data tr;
            memcpy(&tr, payload, sizeof tr);
            /* skip the interface token: policy, work source, header, String16 descriptor */
            const uint8_t *d = (const uint8_t *)(uintptr_t)tr.data.ptr.buffer;
            int32_t slen;
            memcpy(&slen, d + 12, 4);
            size_t at = 16 + (((size_t)slen + 1) * 2 + 3) / 4 * 4;
            int32_t len = -1;
            if (at + 4 <= tr.data_size)
                memcpy(&len, d + at, 4);
            reply.len = 0;
            reply.noffsets = 0;
            put_i32(&reply, 0);  /* no exception */
            put_i32(&reply, len);
            if (len > 0)
                put(&reply, d + at + 4, (size_t)len);
            /* the reply goes with the next read, as libbinder's sendReply does (its memory is
             * this thread's until then); that read returns its BR_TRANSACTION_COMPLETE */
            queue(BC_FREE_BUFFER, &tr.data.ptr.buffer, sizeof tr.data.ptr.buffer);
            transaction(BC_REPLY, 0, 0, &reply);
        }
    }
    return NULL;
}

static int server(const char *name)
{
    static struct parcel p;
    put_token(&p, SM);
    put_str16(&p, name);
    struct flat_binder_object obj = {.hdr.type = BINDER_TYPE_BINDER, .flags = 0x13 | FLAT_BINDER_FLAG_ACCEPTS_FDS,
                                     .binder = 0x1000, .cookie = 0x1001};
    p.offsets[p.noffsets++] = p.len;
    put(&p, &obj, sizeof obj);
    put_i32(&p, 0x0c);  /* stability: system */
    put_i32(&p, 0);     /* allowIsolated */
    put_i32(&p, 8);     /* dumpPriority */
    size_t len;
    call(0, 3, &p, &len);  /* addService, Android 11 to 14's code (the benchmark's service manager
                            * speaks 14); refs of the new node come with the reply */
    uint32_t max = 0;
    ioctl(fd, BINDER_SET_MAX_THREADS, &max);
    pthread_t t;
    pthread_create(&t, NULL, looper, NULL);
    printf("ready\n");
    fflush(stdout);
    looper(NULL);
    return 0;
}

/* -- the client ----------------------------------------------------------------------------------- */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int client(const char *name)
{
    static struct parcel p;
    put_token(&p, SM);
    put_str16(&p, name);
    uint32_t handle = 0;
    for (int tries = 0; tries < 200 && !handle; tries++) {
        size_t len;
        const uint8_t *r = call(0, 1, &p, &len);  /* getService */
        struct flat_binder_object obj;
        if (len >= 4 + sizeof obj) {
            memcpy(&obj, r + 4, sizeof obj);
            if (obj.hdr.type == BINDER_TYPE_HANDLE)
                handle = obj.handle;
        }
        if (!handle)
            usleep(50000);
    }
    if (!handle) {
        errno = ENOENT;
        die(name);
    }
    queue(BC_INCREFS, &handle, 4);
    queue(BC_ACQUIRE, &handle, 4);
    printf("ready\n");
    fflush(stdout);
    char line[256];
    long long *samples = NULL;
    while (fgets(line, sizeof line, stdin)) {
        int size = 0, n = 0, reps = 1;
        int check = sscanf(line, "check %d %d", &size, &n) == 2;
        int warm = check || sscanf(line, "warmup %d %d", &size, &n) == 2;
        if (!warm && sscanf(line, "sync %d %d %d", &size, &n, &reps) != 3)
            continue;
        if (size < 0 || (size_t)size > sizeof p.data - 256)
            continue;
        p.len = 0;
        put_token(&p, DESCRIPTOR);
        put_i32(&p, size);
        uint8_t *payload = p.data + p.len;
        for (int i = 0; i < size; i++)
            payload[i] = check ? (uint8_t)(i * 131 + i / 4099 + size) : 0xa5;
        p.len += ((size_t)size + 3) & ~(size_t)3;
        samples = realloc(samples, sizeof *samples * (size_t)(n * reps + reps));
        long long *walls = samples + n * reps;
        for (int r = 0; r < reps; r++) {
            long long t_rep = now_ns();
            for (int i = 0; i < n; i++) {
                long long t0 = now_ns();
                size_t len;
                const uint8_t *echo = call(handle, 1, &p, &len);
                samples[r * n + i] = now_ns() - t0;
                if (len != 8 + (((size_t)size + 3) & ~(size_t)3)) {
                    errno = EPROTO;
                    die("echo returned a different size");
                }
                if (check && memcmp(echo + 8, payload, (size_t)size)) {
                    errno = EPROTO;
                    die("echo returned different bytes");
                }
            }
            walls[r] = now_ns() - t_rep;
        }
        if (warm) {
            printf("ok\n");
        } else {
            printf("samples");
            for (int i = 0; i < n * reps; i++)
                printf(" %lld", samples[i]);
            printf(" walls");
            for (int r = 0; r < reps; r++)
                printf(" %lld", walls[r]);
            printf("\n");
        }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc != 3 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: cecho server|client NAME\n");
        return 2;
    }
    fd = open("/dev/binder", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die("/dev/binder");
    if (mmap(NULL, MAP_SIZE, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
        die("mmap");
    return !strcmp(argv[1], "server") ? server(argv[2]) : client(argv[2]);
}
