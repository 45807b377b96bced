/* servicemanager: the context manager, speaking Android's IServiceManager (getService,
 * checkService, addService, listServices), forgetting a service when its process dies (it asks
 * for a death notification on every service it holds, as Android's does).
 *
 *   servicemanager [DEVICE]       prints "ready" once it is the context manager, then an event
 *                                 per request; runs until killed
 */
#include "tbinder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MAX_SERVICES 16

static struct {
    char name[128];
    uint32_t handle;
} services[MAX_SERVICES];
static int nservices;

static int find(const char *name)
{
    for (int i = 0; i < nservices; i++)
        if (!strcmp(services[i].name, name))
            return i;
    return -1;
}

static int handle_request(struct tb *b, const struct binder_transaction_data *tr, struct rparcel *in,
                          struct parcel *reply)
{
    (void)b;
    char desc[128], name[128];
    if (r_token(in, desc, sizeof desc) < 0 || strcmp(desc, SM_DESCRIPTOR)) {
        say("bad interface token for code %u", tr->code);
        return -1;
    }
    switch (tr->code) {
    case SM_GET_SERVICE:
    case SM_CHECK_SERVICE: {
        r_str16(in, name, sizeof name);
        int i = find(name);
        p_i32(reply, 0);  /* no exception */
        if (i < 0) {
            p_null_binder(reply);
            say("%s %s -> null", tr->code == SM_GET_SERVICE ? "get" : "check", name);
        } else {
            p_handle(reply, services[i].handle);
            say("%s %s -> handle %u", tr->code == SM_GET_SERVICE ? "get" : "check", name, services[i].handle);
        }
        return 0;
    }
    case SM_ADD_SERVICE: {
        r_str16(in, name, sizeof name);
        const struct flat_binder_object *o = r_object(in);
        if (!o || o->hdr.type != BINDER_TYPE_HANDLE || nservices == MAX_SERVICES) {
            say("add %s: bad binder", name);
            p_i32(reply, -3);  /* EX_ILLEGAL_ARGUMENT */
            return 0;
        }
        int i = find(name);
        if (i < 0)
            i = nservices++;
        snprintf(services[i].name, sizeof services[i].name, "%s", name);
        services[i].handle = o->handle;
        /* keep the service: our own references, and its death */
        tb_queue_u32(BC_INCREFS, o->handle);
        tb_queue_u32(BC_ACQUIRE, o->handle);
        tb_queue_handle_cookie(BC_REQUEST_DEATH_NOTIFICATION, o->handle, o->handle);
        say("add %s -> handle %u (sender %s)", name, o->handle, tr->sender_pid ? "known" : "none");
        p_i32(reply, 0);
        return 0;
    }
    case SM_LIST_SERVICES: {
        char list[1024] = "";
        p_i32(reply, 0);
        p_i32(reply, nservices);
        for (int i = 0; i < nservices; i++) {
            p_str16(reply, services[i].name);
            strncat(list, i ? "," : "", sizeof list - strlen(list) - 1);
            strncat(list, services[i].name, sizeof list - strlen(list) - 1);
        }
        say("list -> [%s]", list);
        return 0;
    }
    }
    say("unknown code %u", tr->code);
    p_i32(reply, -6);  /* EX_UNSUPPORTED_OPERATION */
    return 0;
}

static int on_event(struct tb *b, uint32_t cmd, const uint8_t *payload)
{
    (void)b;
    if (cmd == BR_DEAD_BINDER) {
        binder_uintptr_t cookie;
        memcpy(&cookie, payload, sizeof cookie);
        for (int i = 0; i < nservices; i++) {
            if (services[i].handle != cookie)
                continue;
            say("died %s", services[i].name);
            tb_queue_handle_cookie(BC_CLEAR_DEATH_NOTIFICATION, services[i].handle, cookie);
            tb_queue_u32(BC_RELEASE, services[i].handle);
            tb_queue_u32(BC_DECREFS, services[i].handle);
            services[i] = services[--nservices];
            break;
        }
        tb_queue_ptr(BC_DEAD_BINDER_DONE, cookie);
    } else if (cmd == BR_CLEAR_DEATH_NOTIFICATION_DONE) {
        say("death notification cleared");
    } else {
        say("unexpected %s", br_name(cmd));
    }
    return 0;
}

int main(int argc, char **argv)
{
    tb_role = "servicemanager";
    struct tb b;
    tb_open(&b, argc > 1 ? argv[1] : "/dev/binder", 128 * 1024);
    struct flat_binder_object obj = {.hdr.type = BINDER_TYPE_BINDER, .flags = FLAT_BINDER_FLAG_ACCEPTS_FDS};
    if (ioctl(b.fd, BINDER_SET_CONTEXT_MGR_EXT, &obj) < 0)
        die("BINDER_SET_CONTEXT_MGR_EXT: %s", strerror(errno));
    tb_queue_cmd(BC_ENTER_LOOPER);
    say("ready");
    tb_loop(&b, handle_request, on_event);
    return 0;
}
