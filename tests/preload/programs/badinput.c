/* badinput: what a program gets for bad arguments, bad pointers, a fork that uses the parent's
 * fd, a thread killed in the middle of a call, and the mapped area's protection. Every result is
 * printed (errno names), so that the kernel's and vbinder's can be compared; the service manager
 * must be running (it is the target of the transactions), and answers a good call at the end.
 *
 *   badinput [DEVICE]              everything that returns
 *   badinput write-area [DEVICE]   writes to the mapped area: killed by SIGSEGV, as on the kernel
 *
 * At its end it execs itself with a mapped device fd left open (no close-on-exec): the new image
 * ("after-exec FD") uses that fd, whose area the exec closed.
 */
#include "tbinder.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNMAPPED ((void *)0x10)

static struct tb b;
static const char *dev = "/dev/binder";
static const char read_only[4096] __attribute__((aligned(4096))) = "read-only";

static const char *err(int ret)
{
    if (ret >= 0)
        return "ok";
    switch (errno) {
#define E(x) case x: return #x;
    E(EFAULT) E(EINVAL) E(EPERM) E(EBUSY) E(EACCES) E(ENOTTY) E(EAGAIN) E(ENOMEM) E(ESRCH) E(EINTR)
#undef E
    }
    return strerror(errno);
}

static void bad_pointers(void)
{
    static const struct {
        const char *name;
        unsigned long cmd;
    } cmds[] = {
        {"WRITE_READ", BINDER_WRITE_READ}, {"SET_MAX_THREADS", BINDER_SET_MAX_THREADS},
        {"SET_CONTEXT_MGR_EXT", BINDER_SET_CONTEXT_MGR_EXT}, {"VERSION", BINDER_VERSION},
        {"GET_NODE_INFO_FOR_REF", BINDER_GET_NODE_INFO_FOR_REF},
        {"GET_NODE_DEBUG_INFO", BINDER_GET_NODE_DEBUG_INFO}, {"FREEZE", BINDER_FREEZE},
        {"GET_FROZEN_INFO", BINDER_GET_FROZEN_INFO},
        {"ENABLE_ONEWAY_SPAM_DETECTION", BINDER_ENABLE_ONEWAY_SPAM_DETECTION},
        {"GET_EXTENDED_ERROR", BINDER_GET_EXTENDED_ERROR},
    };
    void *const ptrs[] = {NULL, UNMAPPED, (void *)read_only, (void *)0xffff800000000000ul};
    const char *const pnames[] = {"NULL", "unmapped", "read-only", "kernel"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        for (size_t j = 0; j < 4; j++) {
            if (cmds[i].cmd == BINDER_FREEZE && j == 2)
                continue;  /* pid 0x6461... of the text: not a process, but depends on the pids */
            say("ioctl %s with a %s pointer: %s", cmds[i].name, pnames[j], err(ioctl(b.fd, cmds[i].cmd, ptrs[j])));
        }
    struct binder_version v = {0};
    int request = (int)BINDER_VERSION;  /* a caller that passes an int: sign-extended */
    const char *res = err(ioctl(b.fd, request, &v));
    say("ioctl VERSION as an int: %s, version %d", res, v.protocol_version);
    say("ioctl unknown number 0x1234: %s", err(ioctl(b.fd, 0x1234, 0)));
    say("ioctl TCGETS: %s", err(ioctl(b.fd, 0x5401, &v)));
    say("ioctl FIOQSIZE: %s", err(ioctl(b.fd, 0x5460, &v)));
    int zero = 0;
    say("ioctl FIONBIO 0: %s", err(ioctl(b.fd, FIONBIO, &zero)));
}

static void write_reads(void)
{
    struct binder_write_read bwr = {0};
    uint32_t cmds[4] = {BC_INCREFS, 0, BC_ACQUIRE, 0};
    int r;

    bwr.write_size = 8;
    bwr.write_buffer = (binder_uintptr_t)UNMAPPED;
    r = ioctl(b.fd, BINDER_WRITE_READ, &bwr);
    say("write buffer unmapped: %s, write_consumed %llu", err(r), bwr.write_consumed);

    /* a command that runs into an unmapped page: consumed up to it */
    uint8_t *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(page + 4096, 4096);
    uint32_t *edge = (uint32_t *)(page + 4096 - 12);
    edge[0] = BC_INCREFS;
    edge[1] = 0;
    edge[2] = BC_ACQUIRE;  /* its handle would be in the unmapped page */
    bwr = (struct binder_write_read){.write_size = 16, .write_buffer = (binder_uintptr_t)edge};
    r = ioctl(b.fd, BINDER_WRITE_READ, &bwr);
    say("command across an unmapped page: %s, write_consumed %llu", err(r), bwr.write_consumed);

    bwr = (struct binder_write_read){.write_size = 16, .write_buffer = (binder_uintptr_t)cmds,
                                     .read_size = 64, .read_buffer = (binder_uintptr_t)read_only};
    r = ioctl(b.fd, BINDER_WRITE_READ, &bwr);
    say("read buffer read-only: %s, write_consumed %llu, read_consumed %llu", err(r), bwr.write_consumed,
        bwr.read_consumed);

    bwr = (struct binder_write_read){.read_size = 64, .read_buffer = 0};
    r = ioctl(b.fd, BINDER_WRITE_READ, &bwr);
    say("read buffer NULL: %s, read_consumed %llu", err(r), bwr.read_consumed);

    bwr = (struct binder_write_read){0};
    r = ioctl(b.fd, BINDER_WRITE_READ, (void *)read_only);
    say("struct read-only, nothing to do: %s", err(r));

    uint32_t unknown[2] = {0x12345678, 0};
    bwr = (struct binder_write_read){.write_size = 8, .write_buffer = (binder_uintptr_t)unknown};
    r = ioctl(b.fd, BINDER_WRITE_READ, &bwr);
    say("unknown command: %s, write_consumed %llu", err(r), bwr.write_consumed);
    tb_queue_u32(BC_RELEASE, 0);
    tb_queue_u32(BC_DECREFS, 0);
    tb_flush(&b);
}

static void extended_error(const char *what)
{
    struct binder_extended_error ee;
    int r = ioctl(b.fd, BINDER_GET_EXTENDED_ERROR, &ee);
    say("%s: extended error %s, command %s, param %d", what, err(r), br_name(ee.command), ee.param);
}

/* A transaction to the service manager whose data or objects point to bad memory. */
static void bad_transaction(const char *what, binder_uintptr_t data, binder_size_t data_size,
                            binder_uintptr_t offsets, binder_size_t offsets_size, binder_size_t sg)
{
    struct {
        uint32_t cmd;
        struct binder_transaction_data_sg tr;
    } __attribute__((packed)) w = {sg ? BC_TRANSACTION_SG : BC_TRANSACTION, {.buffers_size = sg}};
    w.tr.transaction_data = (struct binder_transaction_data){
        .target.handle = 0, .code = SM_LIST_SERVICES, .data_size = data_size, .offsets_size = offsets_size,
        .data.ptr.buffer = data, .data.ptr.offsets = offsets,
    };
    uint8_t rbuf[256];
    struct binder_write_read bwr = {.write_size = sg ? sizeof w : 4 + sizeof w.tr.transaction_data,
                                    .write_buffer = (binder_uintptr_t)&w,
                                    .read_size = sizeof rbuf, .read_buffer = (binder_uintptr_t)rbuf};
    int r = tb_ioctl_wr(&b, &bwr);
    char list[256] = "";
    for (size_t pos = 0; pos + 4 <= bwr.read_consumed;) {
        uint32_t cmd;
        memcpy(&cmd, rbuf + pos, 4);
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", pos ? "," : "", br_name(cmd));
        if (cmd == BR_REPLY) {
            struct binder_transaction_data tr;
            memcpy(&tr, rbuf + pos + 4, sizeof tr);
            tb_queue_ptr(BC_FREE_BUFFER, tr.data.ptr.buffer);
            tb_flush(&b);
        }
        pos += 4 + _IOC_SIZE(cmd);
    }
    say("%s: %s, write_consumed %llu, [%s]", what, r ? strerror(-r) : "ok", bwr.write_consumed, list);
    extended_error(what);
}

static void bad_transactions(void)
{
    uint8_t data[64] = {0};
    binder_size_t offsets[1] = {0};
    bad_transaction("data unmapped", (binder_uintptr_t)UNMAPPED, 64, 0, 0, 0);
    bad_transaction("offsets unmapped", (binder_uintptr_t)data, 64, (binder_uintptr_t)UNMAPPED, 8, 0);
    bad_transaction("data in the kernel's half", 0xffff800000000000ul, 64, 0, 0, 0);
    bad_transaction("data too big", (binder_uintptr_t)data, 8u << 20, 0, 0, 0);
    /* a scatter-gather buffer object whose buffer is unmapped */
    struct binder_buffer_object bo = {.hdr.type = BINDER_TYPE_PTR, .buffer = (binder_uintptr_t)UNMAPPED, .length = 16};
    memcpy(data, &bo, sizeof bo);
    bad_transaction("scatter-gather buffer unmapped", (binder_uintptr_t)data, sizeof bo, (binder_uintptr_t)offsets,
                    8, 16);
    /* and one that is fine but for its interface token: the service manager answers it */
    memset(data, 0, sizeof data);
    bad_transaction("harmless garbage", (binder_uintptr_t)data, 16, 0, 0, 0);
}

static void mappings(void)
{
    void *again = mmap(NULL, MAP_SIZE, PROT_READ, MAP_PRIVATE, b.fd, 0);
    say("second mmap: %s", err(again == MAP_FAILED ? -1 : 0));
    say("mprotect PROT_WRITE: %s", err(mprotect((void *)b.map, 4096, PROT_READ | PROT_WRITE)));
    say("mprotect PROT_READ: %s", err(mprotect((void *)b.map, 4096, PROT_READ)));
    struct tb other;
    other.fd = open(dev, O_RDWR | O_CLOEXEC);
    void *w = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, other.fd, 0);
    say("writable mmap: %s", err(w == MAP_FAILED ? -1 : 0));
    void *r = mmap(NULL, MAP_SIZE, PROT_READ, MAP_PRIVATE, other.fd, 0);
    say("then a read-only one: %s", err(r == MAP_FAILED ? -1 : 0));
    say("munmap: %s", err(munmap(r, MAP_SIZE)));
    r = mmap(NULL, MAP_SIZE, PROT_READ, MAP_PRIVATE, other.fd, 0);
    say("mmap after munmap: %s", err(r == MAP_FAILED ? -1 : 0));
    close(other.fd);
}

static void forked_child(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        tb_role = "badinput child";
        void *p = mmap(NULL, MAP_SIZE, PROT_READ, MAP_PRIVATE, b.fd, 0);
        say("mmap of the parent's fd: %s", err(p == MAP_FAILED ? -1 : 0));
        struct binder_version v = {0};
        say("VERSION on the parent's fd: %s", err(ioctl(b.fd, BINDER_VERSION, &v)));
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    say("child exited %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void quit(int sig)
{
    (void)sig;
    pthread_exit(NULL);
}

static volatile int looping;

static void *blocked_looper(void *arg)
{
    (void)arg;
    uint32_t enter = BC_ENTER_LOOPER;
    uint8_t rbuf[256];
    struct binder_write_read bwr = {.write_size = 4, .write_buffer = (binder_uintptr_t)&enter,
                                    .read_size = sizeof rbuf, .read_buffer = (binder_uintptr_t)rbuf};
    ioctl(b.fd, BINDER_WRITE_READ, &bwr);  /* a new thread's first read returns at once */
    looping = 1;
    for (;;) {
        bwr = (struct binder_write_read){.read_size = sizeof rbuf, .read_buffer = (binder_uintptr_t)rbuf};
        ioctl(b.fd, BINDER_WRITE_READ, &bwr);  /* waits for work until SIGUSR1 ends the thread */
    }
    return NULL;
}

static void thread_killed_mid_call(void)
{
    struct sigaction sa = {.sa_handler = quit};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, blocked_looper, NULL);
    while (!looping)
        usleep(1000);
    usleep(200000);  /* it is in its read by now */
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    say("a thread ended by a signal in the middle of its read: joined");
}

static void on_usr2(int sig)
{
    (void)sig;
}

static volatile int interrupted;

static void *interrupted_reader(void *arg)
{
    (void)arg;
    uint8_t rbuf[256];
    uint32_t enter = BC_ENTER_LOOPER;
    struct binder_write_read bwr = {.write_size = 4, .write_buffer = (binder_uintptr_t)&enter,
                                    .read_size = sizeof rbuf, .read_buffer = (binder_uintptr_t)rbuf};
    ioctl(b.fd, BINDER_WRITE_READ, &bwr);  /* a new thread's first read returns at once */
    uint32_t refs[4] = {BC_INCREFS, 0, BC_DECREFS, 0};
    int r;
    do {
        bwr = (struct binder_write_read){.write_size = sizeof refs, .write_buffer = (binder_uintptr_t)refs,
                                         .read_size = sizeof rbuf, .read_buffer = (binder_uintptr_t)rbuf};
        r = ioctl(b.fd, BINDER_WRITE_READ, &bwr);  /* waits: nothing comes but the signal */
    } while (r == 0);
    say("a read interrupted by a signal (SA_RESTART): %s, write_consumed %llu, read_consumed %llu", err(r),
        bwr.write_consumed, bwr.read_consumed);
    interrupted = 1;
    return NULL;
}

/* EINTR, as libbinder and libgbinder expect it: the struct says what the ioctl did. */
static void signal_during_read(void)
{
    struct sigaction sa = {.sa_handler = on_usr2, .sa_flags = SA_RESTART};
    sigaction(SIGUSR2, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, interrupted_reader, NULL);
    while (!interrupted) {
        usleep(100000);
        pthread_kill(t, SIGUSR2);  /* again until one lands while it waits */
    }
    pthread_join(t, NULL);
}

/* O_NONBLOCK at open: a read with nothing to do is EAGAIN (the struct says nothing was read). */
static void nonblocking(void)
{
    int fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    uint8_t rbuf[64];
    struct binder_write_read bwr = {.read_size = sizeof rbuf, .read_buffer = (binder_uintptr_t)rbuf};
    ioctl(fd, BINDER_WRITE_READ, &bwr);  /* a new thread's first read returns at once */
    bwr = (struct binder_write_read){.read_size = sizeof rbuf, .read_buffer = (binder_uintptr_t)rbuf};
    int r = ioctl(fd, BINDER_WRITE_READ, &bwr);
    say("O_NONBLOCK, nothing to read: %s, read_consumed %llu", err(r), bwr.read_consumed);
    close(fd);
}

/* A call through a dup of the fd: the same binder proc, its reply in the same mapped area. */
static void through_a_dup(void)
{
    int fd = b.fd;
    b.fd = dup(fd);
    struct parcel data;
    p_init(&data);
    p_token(&data, SM_DESCRIPTOR);
    p_i32(&data, 0xf);
    struct result res;
    tb_call(&b, 0, SM_LIST_SERVICES, &data, 0, NULL, &res);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    int32_t status = r_i32(&rr);
    say("a call through a dup of the fd: %s, status %d", br_name(res.br), status);
    tb_release(&res);
    tb_flush(&b);
    p_free(&data);
    close(b.fd);
    b.fd = fd;
}

static void good_call(void)
{
    struct parcel data;
    p_init(&data);
    p_token(&data, SM_DESCRIPTOR);
    p_i32(&data, 0xf);
    struct result res;
    tb_call(&b, 0, SM_LIST_SERVICES, &data, 0, NULL, &res);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    say("a good call afterwards: %s, status %d", br_name(res.br), r_i32(&rr));
    tb_release(&res);
    p_free(&data);
}

/* The new image after the exec: the inherited fd works, its area is gone. */
static int after_exec(int fd)
{
    b.fd = fd;
    struct binder_version v = {0};
    const char *r = err(ioctl(fd, BINDER_VERSION, &v));
    say("after exec: VERSION on the inherited fd: %s, version %d", r, v.protocol_version);
    void *p = mmap(NULL, MAP_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    say("after exec: mmap of the inherited fd: %s", err(p == MAP_FAILED ? -1 : 0));
    struct parcel data;
    p_init(&data);
    p_token(&data, SM_DESCRIPTOR);
    p_i32(&data, 0xf);
    struct result res;
    tb_call(&b, 0, SM_LIST_SERVICES, &data, 0, NULL, &res);
    say("after exec: a call: %s", br_name(res.br));
    say("done");
    return 0;
}

static void exec_with_open_fd(void)
{
    int fd = open(dev, O_RDWR);  /* no O_CLOEXEC */
    void *p = mmap(NULL, MAP_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    say("exec with a mapped fd open (mmap %s)", err(p == MAP_FAILED ? -1 : 0));
    char arg[16];
    snprintf(arg, sizeof arg, "%d", fd);
    execl("/proc/self/exe", "badinput", "after-exec", arg, dev, (char *)NULL);
    die("exec: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    tb_role = "badinput";
    if (argc > 2 && !strcmp(argv[1], "after-exec")) {
        if (argc > 3)
            dev = argv[3];
        return after_exec(atoi(argv[2]));
    }
    int write_area = argc > 1 && !strcmp(argv[1], "write-area");
    if (argc > 1 + write_area)
        dev = argv[1 + write_area];
    tb_open(&b, dev, MAP_SIZE);
    if (write_area) {
        say("writing to the mapped area");
        *(volatile uint8_t *)b.map = 1;
        say("the write went through");
        return 1;
    }
    bad_pointers();
    write_reads();
    bad_transactions();
    mappings();
    forked_child();
    thread_killed_mid_call();
    signal_during_read();
    nonblocking();
    through_a_dup();
    good_call();
    exec_with_open_fd();
    return 1;
}
