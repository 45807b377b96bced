"""Conformance scenarios at the raw level: BC commands in, BR lists and ioctl results out.

They use :class:`~tests.conformance.framework.Raw` over the client's transport
(``open_transport``: the vbinder transport on a mount, the kernel transport on ``/dev/binder``),
so the same code drives both drivers.
"""

from __future__ import annotations

import mmap
import threading
from typing import Any

from vbinder import uapi

from .framework import (
    BR,
    TR,
    Ctx,
    Raw,
    Transcript,
    bc,
    errno_name,
    run_roles,
    scenario,
)

MAP_SIZE = (1 << 20) - 2 * 4096
FBO = uapi.FLAT_BINDER_OBJECT
BUF = uapi.BUFFER_OBJECT
TYPE_NAMES = {v: k.removeprefix("BINDER_TYPE_") for k, v in uapi.OBJECT_TYPES.items()}


def free(buffer: int) -> bytes:
    return bc(uapi.BC_FREE_BUFFER, buffer, fmt="Q")


def handle_cookie(code: int, handle: int, cookie: int) -> bytes:
    return bc(code) + uapi.HANDLE_COOKIE.pack(handle, cookie)


def ptr_cookie(code: int, ptr: int, cookie: int) -> bytes:
    return bc(code) + uapi.PTR_COOKIE.pack(ptr, cookie)


def wr_event(w: Any) -> dict[str, Any]:
    return {"ret": errno_name(w.ret), "write_consumed": w.write_consumed, "read_consumed": w.read_consumed,
            "brs": w.names}


def br_detail(r: Raw, br: BR, ctx: Ctx) -> dict[str, Any]:
    """A BR with its payload, normalized."""
    out: dict[str, Any] = {"br": br.name}
    if br.cmd in (uapi.BR_TRANSACTION, uapi.BR_REPLY):
        out.update(r.tr_fields(br, ctx))
    elif br.cmd in (uapi.BR_INCREFS, uapi.BR_ACQUIRE, uapi.BR_RELEASE, uapi.BR_DECREFS):
        out["ptr"], out["cookie"] = br.ptr_cookie
    elif br.cmd in (uapi.BR_DEAD_BINDER, uapi.BR_CLEAR_DEATH_NOTIFICATION_DONE):
        out["cookie"] = br.cookie
    elif br.cmd == uapi.BR_ERROR:
        out["value"] = uapi.S32.unpack(br.payload)[0]
    return out


def last_tr(w: Any) -> BR:
    return next(b for b in reversed(w.brs) if b.cmd in (uapi.BR_TRANSACTION, uapi.BR_REPLY))


def become_manager(ctx: Ctx, looper: bool = True) -> Raw:
    r = ctx.raw()
    ret, _ = r.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))
    assert ret == 0, ret
    if looper:
        r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
    return r


def node_info(r: Raw, handle: int) -> Any:
    ret, arg = r.ioctl(uapi.BINDER_GET_NODE_INFO_FOR_REF, uapi.NODE_INFO_FOR_REF.pack(handle, 0, 0, 0, 0, 0))
    if ret < 0:
        return errno_name(ret)
    _h, strong, weak = uapi.NODE_INFO_FOR_REF.unpack(arg)[:3]
    return {"strong": strong, "weak": weak}


def objects(r: Raw, br: BR) -> list[dict[str, Any]]:
    """The objects of a delivered transaction, normalized (buffer pointers as offsets in it)."""
    tr = br.tr
    buf = r.buffer(br)
    start = (tr[6] + 7) & ~7
    out: list[dict[str, Any]] = []
    for i in range(tr[7] // 8):
        off = uapi.U64.unpack_from(buf, start + 8 * i)[0]
        t = uapi.U32.unpack_from(buf, off)[0]
        if t == uapi.BINDER_TYPE_PTR:
            _t, flags, ptr, length, parent, parent_off = BUF.unpack_from(buf, off)
            rel = ptr - tr[8]
            out.append({"type": "PTR", "flags": flags, "buffer": rel, "length": length, "parent": parent,
                        "parent_offset": parent_off, "bytes": bytearray(buf[rel:rel + length])})
        else:
            _t, flags, value, cookie = FBO.unpack_from(buf, off)
            out.append({"type": TYPE_NAMES.get(t, hex(t)), "flags": flags, "value": value, "cookie": cookie})
    # the pointers the driver fixed up in parent buffers, as offsets in the transaction's buffer
    for o in out:
        if o["type"] == "PTR" and o["flags"] & uapi.BINDER_BUFFER_FLAG_HAS_PARENT and o["parent"] < len(out):
            p = out[o["parent"]]
            at = o["parent_offset"]
            if p["type"] == "PTR" and at + 8 <= len(p["bytes"]):
                value = int.from_bytes(p["bytes"][at:at + 8], "little") - tr[8]
                p["bytes"][at:at + 8] = (value & (1 << 64) - 1).to_bytes(8, "little")
    for o in out:
        if o["type"] == "PTR":
            o["bytes"] = bytes(o["bytes"]).hex()
    return out


# -- scenarios -----------------------------------------------------------------------------------------


@scenario()
def raw_sync_call(dev: str) -> Transcript:
    """The smoke test's exchange, raw: a sync call and its reply, a one-way call, a bad handle;
    then where the allocator places one-way buffers (queued, freed, best fit)."""

    def server(ctx: Ctx) -> None:
        r = become_manager(ctx)
        ctx.send("client", "ready")
        w = r.wr()
        tr = last_tr(w)
        ctx.emit("read_call", **wr_event(w), tr=br_detail(r, tr, ctx), data=r.data(tr).hex())
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, b"reply!\0\0\0\0\0\0", reply=True))
        ctx.emit("reply", **wr_event(w))
        w = r.wr()
        tr = last_tr(w)
        ctx.emit("read_oneway", **wr_event(w), tr=br_detail(r, tr, ctx), data=r.data(tr).hex())
        w = r.wr(free(tr.tr[8]), 0)
        ctx.emit("free_oneway", **wr_event(w))
        ctx.send("client", "freed_oneway")
        # three one-way calls sent at once: delivered one at a time, each after the previous is freed
        ctx.expect("three_sent")  # all three buffers allocated before the first is read and freed
        held = []
        w = r.wr()
        held.append(last_tr(w))
        for _ in range(2):
            w = r.wr(free(held[-1].tr[8]))
            held.append(last_tr(w))
        ctx.emit("queued_oneways", buffers=[br_detail(r, b, ctx)["buffer"] for b in held],
                 sizes=[b.tr[6] for b in held])
        ctx.send("client", "freed")
        ctx.expect("sent")  # the fourth one-way's buffer is allocated, while the third is held
        w = r.wr(free(held[-1].tr[8]))
        d = last_tr(w)
        ctx.emit("best_fit", buffer=br_detail(r, d, ctx)["buffer"], size=d.tr[6])
        w = r.wr(free(d.tr[8]), 0)
        ctx.emit("free_all", **wr_event(w))
        ctx.expect("done")

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        w = r.wr(r.tx(0, 1, b"hello binder\0\0\0\0", flags=uapi.TF_ACCEPT_FDS))
        tr = last_tr(w)
        ctx.emit("call", **wr_event(w), reply=br_detail(r, tr, ctx), data=r.data(tr).hex())
        w = r.wr(free(tr.tr[8]), 0)
        ctx.emit("free_reply", **wr_event(w))
        w = r.wr(r.tx(0, 2, b"oneway!!", flags=uapi.TF_ONE_WAY))
        ctx.emit("oneway", **wr_event(w))
        ctx.expect("freed_oneway")  # the area is empty again
        w = r.wr(r.tx(0, 3, b"a" * 100, flags=uapi.TF_ONE_WAY) + r.tx(0, 3, b"b" * 200, flags=uapi.TF_ONE_WAY)
                 + r.tx(0, 3, b"c" * 50, flags=uapi.TF_ONE_WAY))
        ctx.emit("three_oneways", **wr_event(w))
        ctx.send("server", "three_sent")
        ctx.expect("freed")
        w = r.wr(r.tx(0, 4, b"d" * 40, flags=uapi.TF_ONE_WAY))
        ctx.emit("fourth_oneway", **wr_event(w))
        ctx.send("server", "sent")
        w = r.wr(r.tx(7, 1, b"12345678"))
        ctx.emit("bad_handle", **wr_event(w), ee=r.ee())
        ctx.emit("ee_cleared", ee=r.ee())
        ctx.send("server", "done")

    return run_roles(dev, server=server, client=client)


@scenario()
def raw_refs_and_death(dev: str) -> Transcript:
    """Two objects sent to the context manager: the owner's BR_INCREFS/BR_ACQUIRE come with the
    call; BR_RELEASE when the manager drops its strong ref to the first; node info at each step;
    death notifications on the second (cleared while alive; fired when the owner exits; cleared
    after); a call to the dead object is a dead reply; one with only a weak ref fails."""
    objs = ((0xA000, 0xA008), (0xC000, 0xC008))

    def mgr(ctx: Ctx) -> None:
        r = become_manager(ctx)
        ctx.send("owner", "ready")
        w = r.wr()
        tr = last_tr(w)
        got = objects(r, tr)
        ctx.emit("read_call", **wr_event(w), tr=br_detail(r, tr, ctx), objects=got)
        h1, h2 = got[0]["value"], got[1]["value"]
        ctx.emit("node_info_received", info=[node_info(r, h1), node_info(r, h2)], bad_handle=node_info(r, 99))
        w = r.wr(bc(uapi.BC_INCREFS, h1) + bc(uapi.BC_ACQUIRE, h1) + bc(uapi.BC_INCREFS, h2)
                 + bc(uapi.BC_ACQUIRE, h2), 0)
        ctx.emit("acquire", **wr_event(w), info=[node_info(r, h1), node_info(r, h2)])
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, reply=True))
        ctx.emit("reply", **wr_event(w))
        ctx.expect("acked")  # the owner read BR_INCREFS/BR_ACQUIRE and answered them
        ctx.emit("after_acks", info=[node_info(r, h1), node_info(r, h2)])
        w = r.wr(handle_cookie(uapi.BC_REQUEST_DEATH_NOTIFICATION, h2, 0xB1)
                 + handle_cookie(uapi.BC_CLEAR_DEATH_NOTIFICATION, h2, 0xB1))
        ctx.emit("death_cleared_while_alive", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs])
        w = r.wr(handle_cookie(uapi.BC_REQUEST_DEATH_NOTIFICATION, h2, 0xB0), 0)
        ctx.emit("death_requested", **wr_event(w))
        w = r.wr(bc(uapi.BC_RELEASE, h1), 0)
        ctx.emit("release_first", **wr_event(w), info=[node_info(r, h1), node_info(r, h2)])
        ctx.send("owner", "released")
        ctx.expect("exiting")
        w = r.wr()
        ctx.emit("owner_died", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs])
        w = r.wr(r.tx(h2, 5, b"x" * 8))
        ctx.emit("call_dead", **wr_event(w), ee=r.ee())
        w = r.wr(r.tx(h1, 5, b"x" * 8))
        ctx.emit("call_weak_only", **wr_event(w), ee=r.ee())
        w = r.wr(handle_cookie(uapi.BC_CLEAR_DEATH_NOTIFICATION, h2, 0xB0) + bc(uapi.BC_DEAD_BINDER_DONE, 0xB0,
                                                                                 fmt="Q"))
        ctx.emit("death_cleared_after", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs],
                 info=[node_info(r, h1), node_info(r, h2)])
        w = r.wr(handle_cookie(uapi.BC_REQUEST_DEATH_NOTIFICATION, h2, 0xB2))
        ctx.emit("death_requested_after_death", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs])
        w = r.wr(bc(uapi.BC_DEAD_BINDER_DONE, 0xB2, fmt="Q") + bc(uapi.BC_DECREFS, h1) + bc(uapi.BC_RELEASE, h2)
                 + bc(uapi.BC_DECREFS, h2), 0)
        ctx.emit("drop_all", **wr_event(w), info=[node_info(r, h1), node_info(r, h2)])
        w = r.wr(bc(uapi.BC_ACQUIRE, 42) + free(0x1234), 0)
        ctx.emit("bogus_commands", **wr_event(w))

    def owner(ctx: Ctx) -> None:
        r = ctx.raw()
        r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
        ctx.expect("ready")
        flags = uapi.FLAT_BINDER_FLAG_ACCEPTS_FDS | 0x7F
        data = b"".join(FBO.pack(uapi.BINDER_TYPE_BINDER, flags, p, c) for p, c in objs)
        w = r.wr(r.tx(0, 1, data, offsets=(0, FBO.size), flags=uapi.TF_ACCEPT_FDS))
        ctx.emit("call", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs])
        acks = b"".join(ptr_cookie(uapi.BC_INCREFS_DONE, p, c) + ptr_cookie(uapi.BC_ACQUIRE_DONE, p, c)
                        for p, c in objs)
        w = r.wr(acks + free(last_tr(w).tr[8]), 0)
        ctx.emit("done_acks", **wr_event(w))
        ctx.send("mgr", "acked")
        ctx.expect("released")
        w = r.wr()
        ctx.emit("released", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs])
        ctx.send("mgr", "exiting")

    return run_roles(dev, mgr=mgr, owner=owner)

@scenario()
def raw_spawn_looper(dev: str) -> Transcript:
    """BR_SPAWN_LOOPER replaces the leading BR_NOOP of a looper's read when max_threads allows
    another thread and none waits; a registered thread uses up the request."""

    def server(ctx: Ctx) -> None:
        r = become_manager(ctx)
        ctx.send("client", "ready")
        w = r.wr()
        ctx.emit("max0_read", **wr_event(w))
        w = r.wr(free(last_tr(w).tr[8]) + r.tx(0, 0, reply=True))
        ctx.emit("max0_reply", **wr_event(w))
        ret, _ = r.ioctl(uapi.BINDER_SET_MAX_THREADS, uapi.U32.pack(1))
        ctx.emit("set_max_threads", ret=errno_name(ret))
        ctx.send("client", "next")
        w = r.wr()
        ctx.emit("max1_read", **wr_event(w))
        w = r.wr(free(last_tr(w).tr[8]) + r.tx(0, 0, reply=True))
        ctx.emit("max1_reply", **wr_event(w))
        out: dict[str, Any] = {}

        def spawned() -> None:
            w = r.wr(bc(uapi.BC_REGISTER_LOOPER), 0)
            out["register"] = wr_event(w)
            out["exit"] = errno_name(r.ioctl(uapi.BINDER_THREAD_EXIT, uapi.S32.pack(0))[0])

        t = threading.Thread(target=spawned)
        t.start()
        t.join()
        ctx.emit("registered_thread", **out)
        ctx.send("client", "next")
        w = r.wr()
        ctx.emit("after_register_read", **wr_event(w))
        w = r.wr(free(last_tr(w).tr[8]) + r.tx(0, 0, reply=True))
        ctx.emit("after_register_reply", **wr_event(w))
        ctx.expect("done")

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        for i in range(3):
            if i:
                ctx.expect("next")
            w = r.wr(r.tx(0, 1 + i, b"ping!!!!"))
            ctx.emit("call", **wr_event(w))
            r.wr(free(last_tr(w).tr[8]), 0)
        ctx.send("server", "done")

    return run_roles(dev, server=server, client=client)


def second_mmap(t: Any, prot: int) -> Any:
    """Map the device again (the kernel's mmap; vbinder's VBINDER_MMAP): 0 or the errno's name."""
    if type(t).__name__ == "KernelTransport":
        try:
            mmap.mmap(t.fd, MAP_SIZE, mmap.MAP_PRIVATE, prot).close()
            return 0
        except OSError as e:
            return errno_name(-(e.errno or 0))
    from vbinder import abi

    ret, _ = t.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0, MAP_SIZE, prot, 2))
    return errno_name(ret)


@scenario()
def ioctl_errors(dev: str) -> Transcript:
    """Every ioctl's errors: unknown numbers, a second context manager, node info from a
    non-manager, bad arguments, faults, an unknown BC command, a second mapping."""

    def mgr(ctx: Ctx) -> None:
        r = become_manager(ctx, looper=False)
        res: dict[str, Any] = {}
        res["set_context_mgr_again"] = errno_name(r.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))[0])
        res["set_context_mgr_ext_again"] = errno_name(
            r.ioctl(uapi.BINDER_SET_CONTEXT_MGR_EXT, FBO.pack(uapi.BINDER_TYPE_BINDER, 0, 0, 0))[0])
        res["node_info_no_ref"] = node_info(r, 1)
        ret, _ = r.ioctl(uapi.BINDER_GET_NODE_INFO_FOR_REF, uapi.NODE_INFO_FOR_REF.pack(0, 1, 0, 0, 0, 0))
        res["node_info_nonzero_fields"] = errno_name(ret)
        ret, arg = r.ioctl(uapi.BINDER_GET_NODE_DEBUG_INFO, uapi.NODE_DEBUG_INFO.pack(0, 0, 0, 0))
        res["node_debug_info"] = [errno_name(ret), *uapi.NODE_DEBUG_INFO.unpack(arg)] if ret == 0 else errno_name(ret)
        ctx.emit("manager", **res)
        ctx.send("other", "ready")
        ctx.expect("done")

    def other(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        res: dict[str, Any] = {}
        ret, arg = r.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
        res["version"] = [errno_name(ret), uapi.VERSION.unpack(arg)[0]]
        res["set_context_mgr"] = errno_name(r.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))[0])
        res["node_info_not_manager"] = node_info(r, 0)
        res["bad_number"] = errno_name(r.ioctl(uapi.IOW("b", 99, 4), b"\0" * 4)[0])
        res["bad_type"] = errno_name(r.ioctl(uapi.IOWR("x", 1, 8), b"\0" * 8)[0])
        res["write_read_wrong_size"] = errno_name(r.ioctl(uapi.IOWR("b", 1, 40), b"\0" * 40)[0])
        res["set_idle_timeout"] = errno_name(r.ioctl(uapi.BINDER_SET_IDLE_TIMEOUT, b"\0" * 8)[0])
        res["set_idle_priority"] = errno_name(r.ioctl(uapi.BINDER_SET_IDLE_PRIORITY, b"\0" * 4)[0])
        res["set_max_threads"] = errno_name(r.ioctl(uapi.BINDER_SET_MAX_THREADS, uapi.U32.pack(4))[0])
        res["oneway_spam_detection"] = errno_name(r.ioctl(uapi.BINDER_ENABLE_ONEWAY_SPAM_DETECTION,
                                                          uapi.U32.pack(1))[0])
        ret, arg = r.ioctl(uapi.BINDER_GET_NODE_DEBUG_INFO, uapi.NODE_DEBUG_INFO.pack(0, 0, 0, 0))
        res["node_debug_info_no_nodes"] = [errno_name(ret), *uapi.NODE_DEBUG_INFO.unpack(arg)]
        res["thread_exit"] = errno_name(r.ioctl(uapi.BINDER_THREAD_EXIT, uapi.S32.pack(0))[0])
        res["freeze_no_such_pid"] = errno_name(r.ioctl(uapi.BINDER_FREEZE, uapi.FREEZE_INFO.pack(1, 1, 0))[0])
        res["frozen_info_no_such_pid"] = errno_name(
            r.ioctl(uapi.BINDER_GET_FROZEN_INFO, uapi.FROZEN_STATUS_INFO.pack(1, 0, 0))[0])
        # BINDER_WRITE_READ whose write buffer is not mapped: EFAULT, the struct copied back
        ret, arg = r.ioctl(uapi.BINDER_WRITE_READ, uapi.WRITE_READ.pack(8, 0, 0x10, 0, 0, 0))
        res["write_fault"] = [errno_name(ret), *uapi.WRITE_READ.unpack(arg)]
        ctx.emit("other", **res)
        # an unknown BC command stops the write where it starts: EINVAL, write_consumed before it
        w = r.wr(bc(uapi.BC_DECREFS, 99) + bc(uapi.IOW("c", 60, 4), 0) + bc(uapi.BC_DECREFS, 98), 0)
        ctx.emit("unknown_bc", **wr_event(w))
        w = r.wr(bc(uapi.BC_DECREFS, 99) + bc(uapi.BC_ACQUIRE_RESULT, 0) + bc(uapi.BC_DECREFS, 98), 0)
        ctx.emit("acquire_result_bc", **wr_event(w))
        w = r.wr(bc(uapi.BC_ATTEMPT_ACQUIRE, 0, 0), 0)
        ctx.emit("attempt_acquire_bc", **wr_event(w))
        ctx.emit("mmap_again", write=second_mmap(r.t, mmap.PROT_READ | mmap.PROT_WRITE),
                 read=second_mmap(r.t, mmap.PROT_READ))
        ctx.send("mgr", "done")

    return run_roles(dev, mgr=mgr, other=other)


@scenario()
def raw_errors(dev: str) -> Transcript:
    """Transactions the driver refuses (BR_FAILED_REPLY) and their extended errors: unreadable
    data, bad offsets, bad objects, a reply with no call, a call to oneself; extended errors are
    per thread."""

    def mgr(ctx: Ctx) -> None:
        r = become_manager(ctx)
        w = r.wr(r.tx(0, 1, b"to myself"))
        ctx.emit("call_to_own_context", **wr_event(w), ee=r.ee())
        ctx.send("client", "ready")
        ctx.expect("done")

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")

        def attempt(name: str, cmds: bytes) -> None:
            w = r.wr(cmds)
            ctx.emit(name, **wr_event(w), ee=r.ee())

        attempt("unreadable_data", r.tx(0, 1, b"12345678", data_ptr=0x10))
        attempt("offset_outside_data", r.tx(0, 1, b"\0" * 24, offsets=(100,)))
        attempt("offset_misaligned", r.tx(0, 1, b"\0" * 32, offsets=(2,)))
        bad_size = bytearray(r.tx(0, 1, FBO.pack(uapi.BINDER_TYPE_BINDER, 0, 1, 2), offsets=(0,)))
        bad_size[4 + 40:4 + 48] = (4).to_bytes(8, "little")  # offsets_size 4: not a multiple of 8
        attempt("offsets_size_not_8", bytes(bad_size))
        attempt("unknown_object_type", r.tx(0, 1, FBO.pack(0x12345678, 0, 0, 0), offsets=(0,)))
        attempt("invalid_handle_object", r.tx(0, 1, FBO.pack(uapi.BINDER_TYPE_HANDLE, 0, 99, 0), offsets=(0,)))
        attempt("reply_without_call", r.tx(0, 0, b"lonely!!", reply=True))
        out: dict[str, Any] = {}

        def other_thread() -> None:
            out["ee_before"] = r.ee()  # the main thread's failure is not this thread's
            w = r.wr(r.tx(7, 1, b"12345678"))
            out["failed"] = wr_event(w)
            out["ee"] = r.ee()

        r.wr(r.tx(0, 1, b"12345678", data_ptr=0x10))
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        ctx.emit("per_thread", other=out, main_ee=r.ee())
        ctx.send("mgr", "done")

    return run_roles(dev, mgr=mgr, client=client)


@scenario()
def sg_buffers(dev: str) -> Transcript:
    """BC_TRANSACTION_SG with BINDER_TYPE_PTR objects: the buffers are copied after the offsets,
    a child's pointer in its parent is fixed up; a reply carries one too; malformed ones fail."""

    def server(ctx: Ctx) -> None:
        r = become_manager(ctx)
        ctx.send("client", "ready")
        w = r.wr()
        tr = last_tr(w)
        ctx.emit("read_sg", **wr_event(w), tr=br_detail(r, tr, ctx), objects=objects(r, tr))
        parent = objects(r, tr)[0]
        fixed = int.from_bytes(bytes.fromhex(parent["bytes"])[8:16], "little")  # objects() made it relative
        ctx.emit("fixed_up_pointer", offset_in_buffer=fixed, child_at=objects(r, tr)[1]["buffer"])
        payload = b"reply sg buffer!" * 2
        obj = BUF.pack(uapi.BINDER_TYPE_PTR, 0, r.put(payload), len(payload), 0, 0)
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, obj, offsets=(0,), reply=True, sg=len(payload)))
        ctx.emit("reply_sg", **wr_event(w))
        ctx.expect("done")

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")

        def sg_call(child_parent: int = 0, child_offset: int = 8, extra: int = 48, sg: bool = True,
                    head: bytes = b"HEADER!!") -> bytes:
            """A parent buffer holding a pointer to a child buffer (as libhwbinder sends them)."""
            child = r.put(b"child buffer 16b")
            parent = r.put(b"PARENT!!" + child.to_bytes(8, "little") + b"p" * 16)
            data = (head + BUF.pack(uapi.BINDER_TYPE_PTR, 0, parent, 32, 0, 0)
                    + BUF.pack(uapi.BINDER_TYPE_PTR, uapi.BINDER_BUFFER_FLAG_HAS_PARENT, child, 16, child_parent,
                               child_offset))
            return r.tx(0, 1, data, offsets=(len(head), len(head) + 40), sg=extra if sg else None)

        w = r.wr(sg_call())
        replies = [b for b in w.brs if b.cmd == uapi.BR_REPLY]
        ctx.emit("call", **wr_event(w), ee=r.ee(), reply=[br_detail(r, b, ctx) for b in replies],
                 objects=[objects(r, b) for b in replies])
        for b in replies:
            r.wr(free(b.tr[8]), 0)

        def failing(name: str, cmds: bytes) -> None:
            w = r.wr(cmds)
            ctx.emit(name, **wr_event(w), ee=r.ee())

        # 6.1's binder_validate_fixup takes a parent at offset 0 for "nothing to fix up in"
        failing("parent_at_offset_0", sg_call(head=b""))
        failing("extra_too_small", sg_call(extra=40))
        failing("extra_unaligned", sg_call(extra=52))
        failing("ptr_without_sg", sg_call(sg=False))
        failing("parent_is_itself", sg_call(child_parent=1))
        failing("parent_offset_outside", sg_call(child_offset=28))
        ctx.send("server", "done")

    return run_roles(dev, server=server, client=client)


@scenario()
def raw_weak_refs(dev: str) -> Transcript:
    """A weak object: the owner gets BR_INCREFS only; sent back to its owner it arrives as the
    owner's own WEAK_BINDER; BC_ACQUIRE on a weak-only handle is refused (6.1: "tried to use weak
    ref as strong ref"); dropping the weak ref brings BR_DECREFS; the owner's node list
    (GET_NODE_DEBUG_INFO) at each step."""
    ptr, cookie = 0xD000, 0xD008

    def mgr(ctx: Ctx) -> None:
        r = become_manager(ctx)
        ctx.send("owner", "ready")
        w = r.wr()
        tr = last_tr(w)
        got = objects(r, tr)
        ctx.emit("read_call", **wr_event(w), objects=got)
        h = got[0]["value"]
        ctx.emit("node_info_weak", info=node_info(r, h))
        back = FBO.pack(uapi.BINDER_TYPE_WEAK_HANDLE, 0, h, 0)
        w = r.wr(bc(uapi.BC_INCREFS, h) + free(tr.tr[8]) + r.tx(0, 0, back, offsets=(0,), reply=True))
        ctx.emit("reply_with_handle", **wr_event(w))
        ctx.expect("acked")
        w = r.wr(bc(uapi.BC_ACQUIRE, h), 0)
        ctx.emit("acquire_weak_only", **wr_event(w), info=node_info(r, h))
        w = r.wr(bc(uapi.BC_DECREFS, h), 0)
        ctx.emit("drop", **wr_event(w), info=node_info(r, h))
        ctx.send("owner", "dropped")
        ctx.expect("done")

    def owner(ctx: Ctx) -> None:
        r = ctx.raw()
        r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
        ctx.expect("ready")

        def nodes() -> list[list[int]]:
            out, at = [], 0
            while True:
                ret, arg = r.ioctl(uapi.BINDER_GET_NODE_DEBUG_INFO, uapi.NODE_DEBUG_INFO.pack(at, 0, 0, 0))
                p, c, strong, weak = uapi.NODE_DEBUG_INFO.unpack(arg) if ret == 0 else (0, 0, 0, 0)
                if not p:
                    return out
                out.append([p, c, strong, weak])
                at = p

        obj = FBO.pack(uapi.BINDER_TYPE_WEAK_BINDER, 0x7F, ptr, cookie)
        w = r.wr(r.tx(0, 1, obj, offsets=(0,)))
        tr = last_tr(w)
        ctx.emit("call", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs], reply_objects=objects(r, tr),
                 nodes=nodes())
        w = r.wr(ptr_cookie(uapi.BC_INCREFS_DONE, ptr, cookie) + free(tr.tr[8]), 0)
        ctx.emit("acked", **wr_event(w), nodes=nodes())
        ctx.send("mgr", "acked")
        ctx.expect("dropped")
        w = r.wr()
        ctx.emit("dropped", **wr_event(w), detail=[br_detail(r, b, ctx) for b in w.brs], nodes=nodes())
        ctx.send("mgr", "done")

    return run_roles(dev, mgr=mgr, owner=owner)


@scenario()
def raw_thread_exit(dev: str) -> Transcript:
    """BINDER_THREAD_EXIT by a thread holding a sync call: the caller gets a dead reply; the
    thread's reply afterwards has no call to answer; the thread starts over and serves again."""

    def server(ctx: Ctx) -> None:
        r = become_manager(ctx)
        ctx.send("client", "ready")
        w = r.wr()
        tr = last_tr(w)
        ctx.emit("read_call", **wr_event(w))
        ret, _ = r.ioctl(uapi.BINDER_THREAD_EXIT, uapi.S32.pack(0))
        ctx.emit("thread_exit", ret=errno_name(ret))
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, b"too late", reply=True))
        ctx.emit("late_reply", **wr_event(w), ee=r.ee())
        w = r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
        ctx.emit("enter_looper_again", **wr_event(w))
        ctx.send("client", "again")
        w = r.wr()
        tr = last_tr(w)
        ctx.emit("read_call_again", **wr_event(w))
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, b"in time!", reply=True))
        ctx.emit("reply", **wr_event(w))
        ctx.expect("done")

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        w = r.wr(r.tx(0, 1, b"call one"))
        ctx.emit("call", **wr_event(w), ee=r.ee())
        ctx.expect("again")
        w = r.wr(r.tx(0, 2, b"call two"))
        tr = last_tr(w)
        ctx.emit("call_again", **wr_event(w), data=r.data(tr).decode())
        r.wr(free(tr.tr[8]), 0)
        ctx.send("server", "done")

    return run_roles(dev, server=server, client=client)


@scenario()
def raw_flush(dev: str) -> Transcript:
    """Closing a duplicate of the binder fd is binder_flush: every thread of the process that
    reads next (waiting already or not) returns at once with just BR_NOOP; the read after that
    waits again."""

    def proc(ctx: Ctx) -> None:
        import os

        r = ctx.raw()
        out: dict[str, Any] = {}
        ready = threading.Barrier(3)

        def looper() -> None:
            r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
            ready.wait()
            out["looper"] = wr_event(r.wr())
            out["looper_nonblocking_after"] = wr_event(r.wr(bc(uapi.BC_DECREFS, 99), 0))

        def plain() -> None:
            r.wr(b"", 0)  # the driver knows this thread now
            ready.wait()
            out["plain"] = wr_event(r.wr())

        threads = [threading.Thread(target=looper), threading.Thread(target=plain)]
        for t in threads:
            t.start()
        ready.wait()
        os.close(os.dup(r.t.fd))
        for t in threads:
            t.join()
        ctx.emit("after_flush", **out)

    return run_roles(dev, proc=proc)


@scenario()
def raw_secctx(dev: str) -> Transcript:
    """A context manager set with BINDER_SET_CONTEXT_MGR_EXT and FLAT_BINDER_FLAG_TXN_SECURITY_CTX
    receives BR_TRANSACTION_SEC_CTX (or the caller a failed reply, if the kernel has no context)."""

    def mgr(ctx: Ctx) -> None:
        r = ctx.raw()
        obj = FBO.pack(uapi.BINDER_TYPE_BINDER, uapi.FLAT_BINDER_FLAG_TXN_SECURITY_CTX, 0, 0)
        ret, _ = r.ioctl(uapi.BINDER_SET_CONTEXT_MGR_EXT, obj)
        ctx.emit("set_context_mgr_ext", ret=errno_name(ret))
        r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
        ctx.send("client", "ready")
        msg = ctx.recv()
        if msg["msg"] != "sent":
            return
        w = r.wr()
        ev: dict[str, Any] = {"brs": w.names}
        sec = next((b for b in w.brs if b.cmd == uapi.BR_TRANSACTION_SEC_CTX), None)
        if sec is not None:
            tr = TR.unpack_from(sec.payload)
            secctx = uapi.U64.unpack_from(sec.payload, TR.size)[0]
            buf = r.buffers.get(tr[8], b"")
            at = secctx - tr[8]
            ev.update(data=buf[:tr[6]].hex(), secctx_offset=at,
                      secctx_is_string=0 <= at < len(buf) and buf.find(b"\0", at) > at)
            r.wr(free(tr[8]) + r.tx(0, 0, b"ok!!", reply=True))
        ctx.emit("read", **ev)

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        w = r.wr(r.tx(0, 1, b"who am i"), 256)
        ctx.send("mgr", "sent" if "BR_REPLY" in w.names else "failed")
        ctx.emit("call", **wr_event(w), ee=r.ee())

    return run_roles(dev, mgr=mgr, client=client)


@scenario()
def raw_oneway_spam(dev: str) -> Transcript:
    """One-way calls that fill the target's async space: with BINDER_ENABLE_ONEWAY_SPAM_DETECTION
    on the sender, the call that leaves less than 10% of the area gets BR_ONEWAY_SPAM_SUSPECT
    instead of BR_TRANSACTION_COMPLETE, once; without it, BR_TRANSACTION_COMPLETE."""
    size = 80_000

    def mgr(ctx: Ctx) -> None:
        r = become_manager(ctx)
        ctx.send("client", "ready")
        for _phase in range(2):
            ctx.expect("sent")
            buffers = []
            for _ in range(7 if _phase else 6):
                w = r.wr()
                tr = last_tr(w)
                buffers.append(br_detail(r, tr, ctx)["buffer"])
                r.wr(free(tr.tr[8]), 0)
            ctx.emit("drained", buffers=buffers)
            ctx.send("client", "drained")

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        for phase, sizes in enumerate(([size] * 6, [size] * 6 + [30_000])):
            if phase:
                ret, _ = r.ioctl(uapi.BINDER_ENABLE_ONEWAY_SPAM_DETECTION, uapi.U32.pack(1))
                ctx.emit("enable_detection", ret=errno_name(ret))
            answers = []
            for n in sizes:
                w = r.wr(r.tx(0, 1, b"s" * n, flags=uapi.TF_ONE_WAY))
                answers.append(w.names)
            ctx.emit("sent", phase=phase, answers=answers)
            ctx.send("mgr", "sent")
            ctx.expect("drained")

    return run_roles(dev, mgr=mgr, client=client)
