/* client: finds the echo service through the service manager and exercises it: calls, a large
 * payload, one-way calls, a binder object of its own passed to the server (which calls it back,
 * nested), a binder object received (and called), a death notification when the server exits,
 * and what calls to the dead service and the service manager return afterwards.
 *
 *   client [DEVICE]          the whole sequence, an event per step
 *   client hang [DEVICE]     one call that the server never answers (the test kills the client)
 */
#include "tbinder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVICE "vbinder.test.echo"
#define DESCRIPTOR "vbinder.test.IEcho"
#define CALLBACK_PTR 0x5000
#define DEATH_COOKIE 0xdead

static struct tb b;

/* The BR codes a call read; without BR_NOOP where the number of reads depends on timing. */
static char *brs_of(const struct result *r, int noops)
{
    static char list[512];
    list[0] = 0;
    for (size_t i = 0; i < r->nbrs; i++)
        if (noops || r->brs[i] != BR_NOOP)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "", br_name(r->brs[i]));
    return list;
}

static char *brs(const struct result *r)
{
    return brs_of(r, 1);
}

/* getService: the handle (taken with our own references), or 0. */
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
    int32_t status = r_i32(&rr);
    const struct flat_binder_object *o = r_object(&rr);
    uint32_t handle = o && o->hdr.type == BINDER_TYPE_HANDLE ? o->handle : 0;
    say("getService %s: %s, status %d, %s", name, br_name(res.br), status,
        handle ? "a handle" : "null");
    if (handle) {
        tb_queue_u32(BC_INCREFS, handle);
        tb_queue_u32(BC_ACQUIRE, handle);
        tb_flush(&b);
    }
    tb_release(&res);
    return handle;
}

static void echo(uint32_t handle, const char *text)
{
    struct parcel data;
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    p_str16(&data, text);
    struct result res;
    tb_call(&b, handle, 1, &data, 0, NULL, &res);
    p_free(&data);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    int32_t status = r_i32(&rr);
    static char got[200000];
    if (res.br != BR_REPLY || r_str16(&rr, got, sizeof got) < 0)
        strcpy(got, "-");
    if (strlen(text) > 64)
        say("echo %zu characters: %s, %s", strlen(text), !strcmp(got, text) ? "the same back" : "DIFFERENT", brs(&res));
    else
        say("echo '%s': '%s', status %d, [%s]", text, got, status, brs(&res));
    tb_release(&res);
}

/* The callback object's method: answers the server's nested call. */
static int callback(struct tb *bp, const struct binder_transaction_data *tr, struct rparcel *in, struct parcel *reply)
{
    (void)bp;
    char desc[128], text[128];
    r_token(in, desc, sizeof desc);
    r_str16(in, text, sizeof text);
    say("callback got '%s' code %u on %#llx, sender_pid %s", text, tr->code, (unsigned long long)tr->target.ptr,
        tr->sender_pid ? "set" : "0");
    p_i32(reply, 0);
    p_str16(reply, "pong");
    return 0;
}

static int death_done;

static int on_event(struct tb *bp, uint32_t cmd, const uint8_t *payload)
{
    (void)bp;
    binder_uintptr_t cookie;
    memcpy(&cookie, payload, sizeof cookie);
    if (cmd == BR_DEAD_BINDER) {
        say("BR_DEAD_BINDER cookie %#llx", (unsigned long long)cookie);
        tb_queue_ptr(BC_DEAD_BINDER_DONE, cookie);
        return 0;
    }
    if (cmd == BR_CLEAR_DEATH_NOTIFICATION_DONE) {
        say("BR_CLEAR_DEATH_NOTIFICATION_DONE cookie %#llx", (unsigned long long)cookie);
        return 1;
    }
    say("unexpected %s", br_name(cmd));
    return 0;
}

static int after_death(struct tb *bp, uint32_t cmd, const uint8_t *payload)
{
    if (cmd == BR_DEAD_BINDER) {
        on_event(bp, cmd, payload);
        death_done = 1;
        return 1;
    }
    return on_event(bp, cmd, payload);
}

int main(int argc, char **argv)
{
    tb_role = "client";
    int hang = argc > 1 && !strcmp(argv[1], "hang");
    const char *dev = argc > 1 + hang ? argv[1 + hang] : "/dev/binder";
    tb_open(&b, dev, MAP_SIZE);
    uint32_t h = get_service(SERVICE);
    if (!h)
        die("no service");
    if (hang) {
        struct parcel data;
        p_init(&data);
        p_token(&data, DESCRIPTOR);
        struct result res;
        say("calling hang");
        tb_call(&b, h, 6, &data, 0, NULL, &res);
        die("hang returned %s", br_name(res.br));
    }

    struct parcel data;
    struct result res;
    p_init(&data);
    p_token(&data, SM_DESCRIPTOR);
    p_i32(&data, 0xf);
    tb_call(&b, 0, SM_LIST_SERVICES, &data, 0, NULL, &res);
    p_free(&data);
    struct rparcel rr;
    r_init(&rr, res.data, res.len);
    int32_t status = r_i32(&rr), count = r_i32(&rr);
    say("listServices: status %d, %d service(s)", status, count);
    tb_release(&res);

    echo(h, "hello");
    char *big = malloc(100001);
    for (int i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 26);
    big[100000] = 0;
    echo(h, big);
    free(big);

    const char *words[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        p_init(&data);
        p_token(&data, DESCRIPTOR);
        p_str16(&data, words[i]);
        tb_call(&b, h, 4, &data, TF_ONE_WAY, NULL, &res);
        p_free(&data);
        say("one-way '%s': [%s]", words[i], brs(&res));
    }

    /* our own binder object, which the server calls back while we wait for its reply */
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    p_binder(&data, CALLBACK_PTR, CALLBACK_PTR + 1);
    tb_call(&b, h, 2, &data, 0, callback, &res);
    p_free(&data);
    r_init(&rr, res.data, res.len);
    status = r_i32(&rr);
    char text[128] = "-";
    r_str16(&rr, text, sizeof text);
    /* our reply's BR_TRANSACTION_COMPLETE and the server's BR_REPLY come in one read or two */
    say("callback call: '%s', status %d, [%s]", text, status, brs_of(&res, 0));
    tb_release(&res);

    /* a binder object the server creates: a handle of ours now */
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    tb_call(&b, h, 3, &data, 0, NULL, &res);
    p_free(&data);
    r_init(&rr, res.data, res.len);
    status = r_i32(&rr);
    const struct flat_binder_object *o = r_object(&rr);
    uint32_t obj = o && o->hdr.type == BINDER_TYPE_HANDLE ? o->handle : 0;
    say("new object: status %d, %s, handle %s the service's", status, obj ? "a handle" : "no handle",
        obj == h ? "same as" : "other than");
    tb_queue_u32(BC_INCREFS, obj);
    tb_queue_u32(BC_ACQUIRE, obj);
    tb_flush(&b);
    tb_release(&res);
    echo(obj, "to the object");

    /* the one-way calls, as the server received them (by now: it waits for them) */
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    tb_call(&b, h, 7, &data, 0, NULL, &res);
    p_free(&data);
    say("one-way report: %s", br_name(res.br));
    tb_release(&res);

    /* the server's death */
    tb_queue_handle_cookie(BC_REQUEST_DEATH_NOTIFICATION, h, DEATH_COOKIE);
    tb_flush(&b);
    p_init(&data);
    p_token(&data, DESCRIPTOR);
    tb_call(&b, h, 5, &data, 0, NULL, &res);
    p_free(&data);
    say("exit call: %s", br_name(res.br));
    tb_release(&res);
    tb_queue_cmd(BC_ENTER_LOOPER);
    tb_loop(&b, NULL, after_death);
    tb_queue_handle_cookie(BC_CLEAR_DEATH_NOTIFICATION, h, DEATH_COOKIE);
    tb_loop(&b, NULL, on_event);
    echo(h, "anyone there?");
    echo(obj, "the object?");
    get_service(SERVICE);
    (void)death_done;
    say("done");
    return 0;
}
