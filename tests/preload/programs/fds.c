/* fds: file descriptors through binder, as a C program passes them on the kernel: BINDER_TYPE_FD
 * objects in calls and replies, a BINDER_TYPE_FDA array in a scatter-gather buffer
 * (BC_TRANSACTION_SG), the refusals, and a caller killed while the service holds its fd.
 *
 *   fds server [DEVICE [THREADS]]   registers "vbinder.test.fds", served by THREADS looper threads
 *                          (1), prints "ready", an event per call
 *   fds client [DEVICE]    the whole sequence, an event per step
 *   fds stress DEVICE N    N rounds of an fd in a call, one in a reply and an array, checking what
 *                          comes through (several of these at once, on a server of several threads)
 *   fds finish [DEVICE]    asks the server whether it has the fds it started with, then to exit
 *   fds hold [DEVICE]      passes an fd in a call the server answers only when a byte comes on
 *                          its stdin (the test kills this caller meanwhile)
 *
 * Server codes: 1 write into the fd passed; 2 reply with an fd (a pipe's read end, data in it);
 * 3 write into each fd of the FDA passed; 4 report whether the FDA's fds were closed when the
 * call's buffer was freed; 5 exit; 6 return an object that does not accept fds; 7 hold the fd
 * passed until a byte comes on stdin, then reply with an fd; 8 no event per call from now on; 9 report whether this process has the
 * fds it started with. Fd numbers are never printed (the kernel's and vbinder's may differ where
 * a program's own fds differ); what is printed is what 6.1 decides: which calls fail, with which
 * error, and that the receiver's fd is the sender's open file, close-on-exec.
 */
#include "tbinder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SERVICE "vbinder.test.fds"
#define DESCRIPTOR "vbinder.test.IFds"
#define NODE_PTR 0x3000
#define NOFDS_PTR 0x4000

static struct tb b;
static int start_fds;
static __thread int pending_close = -1;  /* an fd this thread's reply carries: closed once it went */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int quiet;  /* code 8: no event per call from now on */
static int fda_fds[4];
static size_t nfda;

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        die("opendir /proc/self/fd: %s", strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;  /* the directory's own fd */
}

static const char *cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags < 0 ? "not open" : flags & FD_CLOEXEC ? "close-on-exec" : "inherited across exec";
}

static void write_text(int fd, const char *text)
{
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        say("write: %s", strerror(errno));
}

/* What is in a pipe whose write ends are all closed. */
static void read_all(int fd, char *out, size_t size)
{
    size_t len = 0;
    ssize_t n;
    while (len + 1 < size && (n = read(fd, out + len, size - len - 1)) > 0)
        len += (size_t)n;
    out[len] = 0;
}

static void close_pending(void)
{
    if (pending_close >= 0)
        close(pending_close);
    pending_close = -1;
}

static int reply_with_pipe(struct parcel *reply, const char *text)
{
    int p[2];
    if (pipe(p) < 0)
        die("pipe: %s", strerror(errno));
    write_text(p[1], text);
    close(p[1]);
    p_i32(reply, 0);
    p_fd(reply, p[0], 1);
    pending_close = p[0];  /* the driver took its file with the reply; ours goes after it */
    return 0;
}

static int handle(struct tb *bp, const struct binder_transaction_data *tr, struct rparcel *in, struct parcel *reply)
{
    char desc[128];
    if (r_token(in, desc, sizeof desc) < 0 || strcmp(desc, DESCRIPTOR)) {
        say("bad interface token");
        return -1;
    }
    if (tr->code != 4)
        close_pending();
    switch (tr->code) {
    case 1: case 7: {
        const struct binder_fd_object *o = r_raw(in, sizeof *o);
        if (!o || o->hdr.type != BINDER_TYPE_FD)
            return -1;
        if (!quiet)
            say("got an fd (cookie %llu, %s)", (unsigned long long)o->cookie, cloexec((int)o->fd));
        if (tr->code == 1) {
            write_text((int)o->fd, "written by the server");
            close((int)o->fd);
            p_i32(reply, 0);
            return 0;
        }
        say("hold");
        char byte;
        while (read(0, &byte, 1) < 0 && errno == EINTR) {}
        close((int)o->fd);
        reply_with_pipe(reply, "for a caller that is gone");
        uint32_t brs[8];
        size_t n = tb_reply_and_read(bp, tr, reply, brs, 8);
        char list[256] = "";
        for (size_t i = 0; i < n; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "", br_name(brs[i]));
        say("replied to the killed caller: [%s]", list);
        close_pending();
        return 1;
    }
    case 2:
        if (!quiet)
            say("reply with an fd");
        return reply_with_pipe(reply, "written by the server into its pipe");
    case 3: {
        const struct binder_buffer_object *ptr = r_raw(in, sizeof *ptr);
        const struct binder_fd_array_object *fda = r_raw(in, sizeof *fda);
        if (!ptr || !fda || ptr->hdr.type != BINDER_TYPE_PTR || fda->hdr.type != BINDER_TYPE_FDA || fda->num_fds > 4)
            return -1;
        const uint32_t *fds = (const uint32_t *)(uintptr_t)(ptr->buffer + fda->parent_offset);
        if (!quiet)
            nfda = fda->num_fds;  /* for code 4 (one caller at a time) */
        for (size_t i = 0; i < fda->num_fds; i++) {
            char text[32];
            if (!quiet) {
                fda_fds[i] = (int)fds[i];
                say("fda fd %zu: %s", i, cloexec((int)fds[i]));
            }
            snprintf(text, sizeof text, "array entry %zu", i);
            write_text((int)fds[i], text);
        }
        p_i32(reply, 0);
        return 0;
    }
    case 4: {
        size_t open_ones = 0;
        for (size_t i = 0; i < nfda; i++)
            open_ones += fcntl(fda_fds[i], F_GETFD) >= 0;
        say("after BC_FREE_BUFFER, %zu of the array's %zu fds are open", open_ones, nfda);
        close_pending();
        p_i32(reply, 0);
        return 0;
    }
    case 5:
        say("exit");
        p_i32(reply, 0);
        tb_exit_after_reply = 1;
        return 0;
    case 6:
        say("an object without fds");
        p_i32(reply, 0);
        p_binder_no_fds(reply, NOFDS_PTR, NOFDS_PTR + 1);
        return 0;
    case 8:
        pthread_mutex_lock(&lock);
        if (!quiet)
            say("quiet from now on");
        quiet = 1;
        pthread_mutex_unlock(&lock);
        p_i32(reply, 0);
        return 0;
    case 9: {
        /* Another thread may be between its reply and the close of the fd it carried. */
        struct timespec pause = {0, 10 * 1000 * 1000};
        int n = count_fds();
        for (int i = 0; i < 200 && n != start_fds; i++, n = count_fds())
            nanosleep(&pause, NULL);
        say("fds back where they started: %s", n == start_fds ? "yes" : "no");
        p_i32(reply, 0);
        return 0;
    }
    }
    say("unknown code %u", tr->code);
    return -1;
}

static int on_event(struct tb *bp, uint32_t cmd, const uint8_t *payload)
{
    (void)bp;
    (void)payload;
    if (cmd == BR_FAILED_REPLY)
        close_pending();  /* the reply that carried it failed */
    say("%s", br_name(cmd));
    return 0;
}

static void *looper(void *arg)
{
    (void)arg;
    tb_queue_cmd(BC_ENTER_LOOPER);
    tb_loop(&b, handle, on_event);
    return NULL;
}

static int server(int threads)
{
    uint32_t max = 0;  /* a fixed pool: the driver never asks for more threads */
    if (ioctl(b.fd, BINDER_SET_MAX_THREADS, &max) < 0)
        die("BINDER_SET_MAX_THREADS: %s", strerror(errno));
    tb_after_reply = close_pending;
    start_fds = count_fds();
    struct parcel data;
    p_init(&data);
    p_token(&data, SM_DESCRIPTOR);
    p_str16(&data, SERVICE);
    p_binder(&data, NODE_PTR, NODE_PTR + 1);
    p_i32(&data, 0);  /* allowIsolated */
    p_i32(&data, 8);  /* dumpPriority: DEFAULT */
    struct result res;
    tb_call(&b, 0, SM_ADD_SERVICE, &data, 0, handle, &res);
    p_free(&data);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    say("addService: %s, status %d", br_name(res.br), r_i32(&rr));
    tb_release(&res);
    tb_flush(&b);
    start_fds = count_fds();  /* with the fd channel vbinder's library opens at the first call */
    for (int i = 1; i < threads; i++) {
        pthread_t t;
        pthread_create(&t, NULL, looper, NULL);
    }
    say("ready");
    looper(NULL);
    return 0;
}

/* -- the client ------------------------------------------------------------------------------------ */

static uint32_t get_service(const char *name)
{
    struct parcel data;
    p_init(&data);
    p_token(&data, SM_DESCRIPTOR);
    p_str16(&data, name);
    struct result res;
    tb_call(&b, 0, SM_GET_SERVICE, &data, 0, NULL, &res);
    p_free(&data);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    r_i32(&rr);
    const struct flat_binder_object *o = r_object(&rr);
    uint32_t handle = o && o->hdr.type == BINDER_TYPE_HANDLE ? o->handle : 0;
    if (!handle)
        die("no service %s", name);
    tb_queue_u32(BC_INCREFS, handle);
    tb_queue_u32(BC_ACQUIRE, handle);
    tb_release(&res);
    tb_flush(&b);
    return handle;
}

/* A call's outcome: its BR code, and for a failure the extended error's errno. */
static const char *outcome(const struct result *res)
{
    static char text[96];
    if (res->br == BR_REPLY) {
        struct rparcel rr;
        r_init(&rr, res->data, res->len);
        snprintf(text, sizeof text, "BR_REPLY, status %d", r_i32(&rr));
        return text;
    }
    struct binder_extended_error ee = {0};
    if (ioctl(b.fd, BINDER_GET_EXTENDED_ERROR, &ee) < 0)
        snprintf(text, sizeof text, "%s (BINDER_GET_EXTENDED_ERROR: %s)", br_name(res->br), strerror(errno));
    else
        snprintf(text, sizeof text, "%s, %s, errno %d", br_name(res->br), br_name(ee.command), ee.param);
    return text;
}

static void simple(uint32_t handle, uint32_t code, const char *what)
{
    struct parcel data;
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    struct result res;
    tb_call(&b, handle, code, &data, 0, NULL, &res);
    p_free(&data);
    if (what)
        say("%s: %s", what, outcome(&res));
    tb_release(&res);
    tb_flush(&b);
}

/* Code 1 with `fd`: the call's outcome, and what the server wrote into the pipe. */
static void pass_fd(uint32_t handle, int fd, int take_ownership, const char *what, int silent)
{
    struct parcel data;
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    p_fd(&data, fd, take_ownership);
    struct result res;
    tb_call(&b, handle, 1, &data, TF_ACCEPT_FDS, NULL, &res);
    p_free(&data);
    if (!silent)
        say("%s: %s", what, outcome(&res));
    tb_release(&res);
    tb_flush(&b);
}

/* Each of these: 1 if what came through is what the server wrote. */
static int fd_in_call(uint32_t handle, int silent)
{
    int p[2];
    if (pipe(p) < 0)
        die("pipe: %s", strerror(errno));
    pass_fd(handle, p[1], 0, "a pipe's write end in a call", silent);
    close(p[1]);
    char text[128];
    read_all(p[0], text, sizeof text);
    close(p[0]);
    if (!silent)
        say("read from the pipe: '%s'", text);
    return !strcmp(text, "written by the server");
}

static int fd_in_reply(uint32_t handle, uint32_t flags, const char *what, int silent)
{
    struct parcel data;
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    struct result res;
    tb_call(&b, handle, 2, &data, flags, NULL, &res);
    p_free(&data);
    if (!silent)
        say("%s: %s", what, outcome(&res));
    int right = 0;
    if (res.br == BR_REPLY) {
        struct rparcel rr;
        r_init(&rr, res.data, res.len);
        r_i32(&rr);
        const struct binder_fd_object *o = r_raw(&rr, sizeof *o);
        if (!o || o->hdr.type != BINDER_TYPE_FD)
            die("no fd in the reply");
        int fd = (int)o->fd;
        char text[128];
        const char *how = cloexec(fd);
        read_all(fd, text, sizeof text);
        close(fd);  /* ours (libbinder's Parcel closes it unless the program took it) */
        if (!silent)
            say("the reply's fd (cookie %llu, %s): '%s'", (unsigned long long)o->cookie, how, text);
        right = !strcmp(text, "written by the server into its pipe");
    }
    tb_release(&res);
    tb_flush(&b);
    return right;
}

/* Code 3: an FDA of `n` pipes' write ends in a `size`-byte buffer (n > size / 4: refused). */
static int fda_call(uint32_t handle, size_t n, size_t size, const char *what, int silent)
{
    int pipes[4][2];
    uint32_t array[4] = {0};
    for (size_t i = 0; i < n && i < 4; i++) {
        if (pipe(pipes[i]) < 0)
            die("pipe: %s", strerror(errno));
        array[i] = (uint32_t)pipes[i][1];
    }
    struct parcel data;
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    p_ptr(&data, array, size);
    p_fda(&data, n, 0, 0);
    struct result res;
    tb_call_sg(&b, handle, 3, &data, TF_ACCEPT_FDS, (size + 7) & ~(size_t)7, NULL, &res);
    p_free(&data);
    if (!silent)
        say("%s: %s", what, outcome(&res));
    tb_release(&res);
    tb_flush(&b);
    int right = res.br == BR_REPLY;
    for (size_t i = 0; i < n && i < 4; i++) {
        close(pipes[i][1]);
        char text[64], expected[64];
        read_all(pipes[i][0], text, sizeof text);
        close(pipes[i][0]);
        snprintf(expected, sizeof expected, "array entry %zu", i);
        right &= !strcmp(text, expected);
        if (res.br == BR_REPLY && !silent)
            say("array entry %zu's pipe: '%s'", i, text);
    }
    return right;
}

static int client(void)
{
    uint32_t h = get_service(SERVICE);
    int after_open = count_fds();  /* with vbinder's fd channel, bound at the first call */
    fd_in_call(h, 0);
    fd_in_reply(h, TF_ACCEPT_FDS, "a call whose reply has an fd", 0);
    fda_call(h, 2, 8, "two fds in an array", 0);
    simple(h, 4, NULL);
    /* The refusals. */
    fd_in_reply(h, 0, "a reply with an fd to a call without TF_ACCEPT_FDS", 0);
    int closed = open("/dev/null", O_RDONLY);
    close(closed);
    pass_fd(h, closed, 0, "an fd that is not open", 0);
    fda_call(h, 3, 8, "three fds in an 8-byte buffer", 0);
    struct parcel data;
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    struct result res;
    tb_call(&b, h, 6, &data, 0, NULL, &res);
    p_free(&data);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    r_i32(&rr);
    const struct flat_binder_object *o = r_object(&rr);
    if (!o || o->hdr.type != BINDER_TYPE_HANDLE)
        die("no object");
    uint32_t nofds = o->handle;
    tb_queue_u32(BC_INCREFS, nofds);
    tb_queue_u32(BC_ACQUIRE, nofds);
    tb_release(&res);
    tb_flush(&b);
    int p[2];
    if (pipe(p) < 0)
        die("pipe: %s", strerror(errno));
    pass_fd(nofds, p[1], 0, "an fd to an object that does not accept fds", 0);
    close(p[0]);
    close(p[1]);
    /* Many more: nothing stays open, here or in the server. */
    simple(h, 8, NULL);
    for (int i = 0; i < 200; i++) {
        fd_in_call(h, 1);
        fd_in_reply(h, TF_ACCEPT_FDS, "", 1);
    }
    say("after 400 more calls, this process's fds are back where they were: %s",
        count_fds() == after_open ? "yes" : "no");
    simple(h, 9, NULL);
    simple(h, 5, "exit");
    return 0;
}

static int stress(int rounds)
{
    uint32_t h = get_service(SERVICE);
    int after_open = count_fds();
    simple(h, 8, NULL);
    int wrong = 0;
    for (int i = 0; i < rounds; i++) {
        wrong += !fd_in_call(h, 1);
        wrong += !fd_in_reply(h, TF_ACCEPT_FDS, "", 1);
        wrong += !fda_call(h, 2, 8, "", 1);
    }
    say("%d rounds: %d wrong, fds back where they were: %s", rounds, wrong,
        count_fds() == after_open ? "yes" : "no");
    return 0;
}

static int finish(void)
{
    uint32_t h = get_service(SERVICE);
    simple(h, 9, NULL);
    simple(h, 5, "exit");
    return 0;
}

static int hold(void)
{
    uint32_t h = get_service(SERVICE);
    int p[2];
    if (pipe(p) < 0)
        die("pipe: %s", strerror(errno));
    struct parcel data;
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    p_fd(&data, p[1], 0);
    struct result res;
    tb_call(&b, h, 7, &data, TF_ACCEPT_FDS, NULL, &res);  /* killed in it */
    say("the held call returned: %s", br_name(res.br));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: fds server|client|stress|finish|hold [DEVICE [N]]");
    tb_role = argv[1];
    tb_open(&b, argc > 2 ? argv[2] : "/dev/binder", MAP_SIZE);
    if (!strcmp(argv[1], "server"))
        return server(argc > 3 ? atoi(argv[3]) : 1);
    if (!strcmp(argv[1], "stress"))
        return stress(argc > 3 ? atoi(argv[3]) : 100);
    if (!strcmp(argv[1], "finish"))
        return finish();
    if (!strcmp(argv[1], "client"))
        return client();
    if (!strcmp(argv[1], "hold"))
        return hold();
    die("unknown mode %s", argv[1]);
}
