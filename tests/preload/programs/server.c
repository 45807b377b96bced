/* server: the echo service, served by a pool of three looper threads that poll(2) the binder fd
 * before each read (as libgbinder's event loop does), registered with the service manager.
 *
 *   server [DEVICE]      prints "ready" once registered; an event per call; exits when told to
 *
 * Codes: 1 echo a string; 2 call back the binder passed (a nested call); 3 return a new binder
 * object; 4 one-way message; 5 exit after replying; 6 hang until a byte comes on stdin, then
 * reply (to a caller that was killed meanwhile) and report what the reply got; 7 report the
 * one-way messages received (they may be served while later calls are: printed in their order
 * here, once all three came).
 */
#include "tbinder.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SERVICE "vbinder.test.echo"
#define DESCRIPTOR "vbinder.test.IEcho"
#define NODE_PTR 0x1000
#define OBJECT_PTR 0x2000
#define THREADS 3

extern __thread int tb_poll_first;
static struct tb b;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static char oneways[3][96];
static int noneways;

static unsigned checksum(const char *s)
{
    unsigned h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static int handle(struct tb *bp, const struct binder_transaction_data *tr, struct rparcel *in, struct parcel *reply)
{
    static __thread char text[200000];  /* the pool's threads serve calls at once */
    char desc[128];
    if (r_token(in, desc, sizeof desc) < 0 || strcmp(desc, DESCRIPTOR)) {
        say("bad interface token");
        return -1;
    }
    const char *on = tr->target.ptr == OBJECT_PTR ? " (on the returned object)" : "";
    switch (tr->code) {
    case 1:
        if (r_str16(in, text, sizeof text) < 0)
            return -1;
        if (strlen(text) > 64)
            say("echo %zu characters, checksum %08x%s", strlen(text), checksum(text), on);
        else
            say("echo '%s'%s", text, on);
        p_i32(reply, 0);
        p_str16(reply, text);
        return 0;
    case 2: {
        const struct flat_binder_object *o = r_object(in);
        if (!o || o->hdr.type != BINDER_TYPE_HANDLE)
            return -1;
        struct parcel data;
        p_init(&data);
        p_token(&data, DESCRIPTOR);
        p_str16(&data, "ping");
        struct result res;
        tb_call(bp, o->handle, 1, &data, 0, handle, &res);
        p_free(&data);
        struct rparcel rr;
        r_init(&rr, res.data, res.len);
        int32_t status = r_i32(&rr);
        if (res.br != BR_REPLY || status != 0 || r_str16(&rr, text, sizeof text) < 0)
            strcpy(text, "?");
        say("callback to handle %u answered '%s' (%s)", o->handle, text, br_name(res.br));
        tb_release(&res);
        p_i32(reply, 0);
        p_str16(reply, text);
        return 0;
    }
    case 3:
        say("new object");
        p_i32(reply, 0);
        p_binder(reply, OBJECT_PTR, OBJECT_PTR + 1);
        return 0;
    case 4:
        r_str16(in, text, sizeof text);
        pthread_mutex_lock(&lock);
        if (noneways < 3)
            snprintf(oneways[noneways++], sizeof oneways[0], "'%.40s' flags %#x sender_pid %s", text, tr->flags,
                     tr->sender_pid ? "set" : "0");
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return -1;
    case 7: {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 30;
        pthread_mutex_lock(&lock);
        while (noneways < 3 && pthread_cond_timedwait(&cond, &lock, &until) == 0) {}
        for (int i = 0; i < noneways; i++)
            say("one-way %s", oneways[i]);
        pthread_mutex_unlock(&lock);
        p_i32(reply, 0);
        return 0;
    }
    case 5:
        say("exit");
        p_i32(reply, 0);
        tb_exit_after_reply = 1;
        return 0;
    case 6: {
        say("hang");
        char byte;
        while (read(0, &byte, 1) < 0 && errno == EINTR) {}
        p_i32(reply, 0);
        uint32_t brs[8];
        size_t n = tb_reply_and_read(bp, tr, reply, brs, 8);
        char list[256] = "";
        for (size_t i = 0; i < n; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "", br_name(brs[i]));
        say("replied to the killed caller: [%s]", list);
        return 1;
    }
    }
    say("unknown code %u", tr->code);
    return -1;
}

static int on_event(struct tb *bp, uint32_t cmd, const uint8_t *payload)
{
    (void)bp;
    (void)payload;
    say("unexpected %s", br_name(cmd));
    return 0;
}

static void *looper(void *arg)
{
    (void)arg;
    tb_poll_first = 1;
    tb_queue_cmd(BC_ENTER_LOOPER);
    tb_loop(&b, handle, on_event);
    return NULL;
}

int main(int argc, char **argv)
{
    tb_role = "server";
    tb_open(&b, argc > 1 ? argv[1] : "/dev/binder", MAP_SIZE);
    uint32_t max = 0;  /* a fixed pool: the driver never asks for more threads */
    if (ioctl(b.fd, BINDER_SET_MAX_THREADS, &max) < 0)
        die("BINDER_SET_MAX_THREADS: %s", strerror(errno));
    struct parcel data;
    p_init(&data);
    p_token(&data, SM_DESCRIPTOR);
    p_str16(&data, SERVICE);
    p_binder(&data, NODE_PTR, NODE_PTR + 1);
    p_i32(&data, 0);  /* allowIsolated */
    p_i32(&data, 8);  /* dumpPriority: DEFAULT */
    struct result res;
    tb_call(&b, 0, SM_ADD_SERVICE, &data, 0, handle, &res);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    say("addService: %s, status %d", br_name(res.br), r_i32(&rr));
    tb_release(&res);
    tb_flush(&b);
    pthread_t t[THREADS - 1];
    for (int i = 0; i < THREADS - 1; i++)
        pthread_create(&t[i], NULL, looper, NULL);
    say("ready");
    looper(NULL);
    return 0;
}
