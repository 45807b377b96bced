"""Conformance scenarios of file descriptors in transactions (BINDER_TYPE_FD, BINDER_TYPE_FDA).

On the kernel the fds travel inside the driver; on vbinder through the fd channel
(docs/abi-fds.md): the transcripts must agree. What a receiver's fd is, is compared by what can
be seen of it: open, close-on-exec (6.1 installs it with O_CLOEXEC), the same file as the
sender's (device and inode), the same open file (status flags set on one show on the other),
and what goes through it. Fd numbers themselves differ between runs and are left out.
"""

from __future__ import annotations

import fcntl
import os
import resource
import struct
from typing import Any

from vbinder_client import (
    FIRST_CALL_TRANSACTION,
    BBinder,
    Parcel,
    ParcelFileDescriptor,
    Proxy,
    Service,
    method,
)

from vbinder import uapi

from .framework import (
    Ctx,
    DriverLog,
    Raw,
    Transcript,
    bc,
    collect_garbage,
    outcome,
    run_roles,
    scenario,
)
from .scenarios_raw import BUF, FBO, br_detail, free, last_tr, wr_event

FD = uapi.FD_OBJECT
FDA = uapi.FD_ARRAY_OBJECT
ACCEPTS_FDS = uapi.FLAT_BINDER_FLAG_ACCEPTS_FDS
NOT_AN_FD = 1000  # a number no role has open


def fd_info(fd: int, ref: list[int] | None = None) -> dict[str, Any]:
    """What can be seen of ``fd``: open, close-on-exec, the same file as ``ref`` (dev, ino)."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        st = os.fstat(fd)
    except OSError:
        return {"open": False}
    out: dict[str, Any] = {"open": True, "cloexec": bool(flags & fcntl.FD_CLOEXEC)}
    if ref is not None:
        out["same_file"] = [st.st_dev, st.st_ino] == ref
    return out


def ident(fd: int) -> list[int]:
    st = os.fstat(fd)
    return [st.st_dev, st.st_ino]


def fd_object(buf: bytes, off: int) -> dict[str, Any]:
    """A delivered BINDER_TYPE_FD object: its fields, the fd it holds (as the receiver's fd)."""
    otype, flags, value, cookie = FBO.unpack_from(buf, off)
    return {"type": "FD" if otype == uapi.BINDER_TYPE_FD else hex(otype), "flags": flags, "cookie": cookie,
            "high_bits": value >> 32}


def manager_accepting_fds(ctx: Ctx) -> Raw:
    """The context manager, its node made with FLAT_BINDER_FLAG_ACCEPTS_FDS (SET_CONTEXT_MGR_EXT)."""
    r = ctx.raw()
    ret, _ = r.ioctl(uapi.BINDER_SET_CONTEXT_MGR_EXT, FBO.pack(uapi.BINDER_TYPE_BINDER, ACCEPTS_FDS, 0, 0))
    assert ret == 0, ret
    r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
    return r


def read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 4096):
        out += chunk
    return out


def answer(r: Raw, write: bytes) -> list[str]:
    """The BRs that ``write`` (a call) reads until its answer (BR_REPLY or an error)."""
    names: list[str] = []
    w = r.wr(write)
    while True:
        names += w.names
        if {"BR_REPLY", "BR_FAILED_REPLY", "BR_DEAD_REPLY"} & set(w.names):
            return names
        w = r.wr()


class NoRoom:
    """This process cannot open one more fd (RLIMIT_NOFILE at its open fds, every lower number
    taken), until the block ends."""

    def __enter__(self) -> NoRoom:
        self.saved = resource.getrlimit(resource.RLIMIT_NOFILE)
        top = max(int(n) for n in os.listdir("/proc/self/fd")) + 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, self.saved[1]))
        self.fillers: list[int] = []
        while True:
            try:
                self.fillers.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, self.saved)


# -- raw: single fds and their failures ------------------------------------------------------------


@scenario()
def raw_fds(dev: str) -> Transcript:
    """BINDER_TYPE_FD in a call and in a reply: the receiver gets a new fd (O_CLOEXEC) for the
    same open file, in the object; and every way 6.1 refuses one: a node without ACCEPTS_FDS
    (-EPERM), an fd the sender does not have (-EBADF), a reply to a call without TF_ACCEPT_FDS
    (-EPERM), a receiver that has no room for the fd (fd fixups failed): with their extended
    errors, failed_transaction_log entries and log lines."""

    def mgr(ctx: Ctx) -> None:
        r = manager_accepting_fds(ctx)
        ctx.send("client", "ready")
        # a call with the client's pipe, written to here
        ref = ctx.expect("ident")["ident"]
        w = r.wr()
        tr = last_tr(w)
        buf = r.buffer(tr)
        off = uapi.U64.unpack_from(buf, (tr.tr[6] + 7) & ~7)[0]
        fd = FD.unpack_from(buf, off)[2] & 0xFFFFFFFF
        ctx.emit("call_with_fd", **wr_event(w), tr=br_detail(r, tr, ctx), obj=fd_object(buf, off),
                 fd=fd_info(fd, ref), nonblock=bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK))
        os.write(fd, b"written by the manager")
        os.close(fd)
        # the reply carries the manager's own pipe
        pr, pw = os.pipe()
        ctx.send("client", "ident", ident=ident(pw))
        obj = FD.pack(uapi.BINDER_TYPE_FD, 0, pw, 1)
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, b"REPLY!!!" + obj, offsets=(8,), reply=True), 256)
        ctx.emit("reply_with_fd", **wr_event(w))
        os.close(pw)
        ctx.emit("read_from_client", data=read_all(pr).decode())
        os.close(pr)
        # a reply with an fd, to a call sent without TF_ACCEPT_FDS
        tr = last_tr(r.wr())
        pr, pw = os.pipe()
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, FD.pack(uapi.BINDER_TYPE_FD, 0, pw, 0), offsets=(0,), reply=True), 256)
        ctx.emit("reply_with_fd_not_accepted", **wr_event(w))
        os.close(pr)
        os.close(pw)
        # the client's own node takes no fds: a one-way call to it with an fd
        w = r.wr()
        tr = last_tr(w)
        handle = FBO.unpack_from(r.buffer(tr), 0)[2]
        pr, pw = os.pipe()
        # (before the free: the buffer holds the only reference to the handle)
        w = r.wr(r.tx(handle, 5, FD.pack(uapi.BINDER_TYPE_FD, 0, pw, 0), offsets=(0,),
                      flags=uapi.TF_ONE_WAY | uapi.TF_ACCEPT_FDS) + free(tr.tr[8]))
        ctx.emit("fd_to_node_without_accepts_fds", **wr_event(w), ee=r.ee())
        os.close(pr)
        os.close(pw)
        ctx.send("client", "sent")
        # a reply with an fd to a client that has no room for it
        tr = last_tr(r.wr())
        pr, pw = os.pipe()
        w = r.wr(free(tr.tr[8]) + r.tx(0, 0, FD.pack(uapi.BINDER_TYPE_FD, 0, pw, 0), offsets=(0,), reply=True), 256)
        ctx.emit("reply_to_a_full_fd_table", **wr_event(w))
        os.close(pr)
        os.close(pw)
        ctx.expect("done")
        r.t.close()

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        pr, pw = os.pipe()
        fcntl.fcntl(pw, fcntl.F_SETFL, os.O_NONBLOCK)  # a status flag of the open file: the manager sees it
        ctx.send("mgr", "ident", ident=ident(pw))
        obj = FD.pack(uapi.BINDER_TYPE_FD, 0x7F, pw, 1)
        w = r.wr(r.tx(0, 1, b"CALL" + obj, offsets=(4,), flags=uapi.TF_ACCEPT_FDS))
        os.close(pw)
        ctx.emit("call_returned", **wr_event(w))
        ctx.emit("read_from_manager", data=read_all(pr).decode())
        os.close(pr)
        reply = last_tr(w)
        buf = r.buffer(reply)
        ref = ctx.expect("ident")["ident"]
        fd = FD.unpack_from(buf, 8)[2] & 0xFFFFFFFF
        ctx.emit("reply_fd", tr=br_detail(r, reply, ctx), obj=fd_object(buf, 8), fd=fd_info(fd, ref))
        os.write(fd, b"written by the client")
        os.close(fd)
        r.wr(free(reply.tr[8]), 0)
        # the refusals, one by one with what the driver logged (one reader: this role)
        log = DriverLog(ctx)
        w = r.wr(r.tx(0, 2, FD.pack(uapi.BINDER_TYPE_FD, 0, NOT_AN_FD, 0), offsets=(0,),
                      flags=uapi.TF_ACCEPT_FDS))
        ctx.emit("fd_not_open", **wr_event(w), ee=r.ee(), failed=log.failed(), lines=log.lines())
        w = r.wr(r.tx(0, 3, b"call"))  # no TF_ACCEPT_FDS: the manager answers with an fd
        ctx.emit("reply_not_accepted", **wr_event(w), ee=r.ee(), failed=log.failed(), lines=log.lines())
        node = FBO.pack(uapi.BINDER_TYPE_BINDER, 0, 0x1000, 0x2000)  # this process's node: no ACCEPTS_FDS
        r.wr(r.tx(0, 4, node, offsets=(0,), flags=uapi.TF_ONE_WAY))
        ctx.expect("sent")
        ctx.emit("fd_to_my_node", failed=log.failed(), lines=log.lines())
        with NoRoom():
            names = answer(r, r.tx(0, 6, b"call", flags=uapi.TF_ACCEPT_FDS))
        ctx.emit("reply_fd_without_room", brs=names, ee=r.ee(), failed=log.failed(), lines=log.lines())
        ctx.send("mgr", "done")

    return run_roles(dev, mgr=mgr, client=client)


# -- raw: fd arrays --------------------------------------------------------------------------------


def fda_call(r: Raw, fds: list[int], *, fd_obj: int | None = None, parent_index: int = 0,
             parent_offset: int = 8, num_fds: int | None = None, second_ptr: bool = False) -> bytes:
    """A BC_TRANSACTION_SG: a PTR buffer holding [8 bytes, the fds], a BINDER_TYPE_FDA naming them
    (as libhwbinder sends a native handle), and maybe a BINDER_TYPE_FD object after it
    (``second_ptr``: another buffer between the array's parent and the array)."""
    body = b"HIDLHDR!" + struct.pack(f"<{len(fds)}i", *fds)
    body += b"\0" * (-len(body) % 8)
    data = b"HEADHEAD" + BUF.pack(uapi.BINDER_TYPE_PTR, 0, r.put(body), len(body), 0, 0)
    offsets = [8]
    sg = len(body)
    if second_ptr:
        offsets.append(len(data))
        data += BUF.pack(uapi.BINDER_TYPE_PTR, 0, r.put(b"B" * 8), 8, 0, 0)
        sg += 8
    offsets.append(len(data))
    data += FDA.pack(uapi.BINDER_TYPE_FDA, 0, len(fds) if num_fds is None else num_fds, parent_index, parent_offset)
    if fd_obj is not None:
        offsets.append(len(data))
        data += FD.pack(uapi.BINDER_TYPE_FD, 0, fd_obj, 0)
    return r.tx(0, 1, data, offsets=tuple(offsets), flags=uapi.TF_ACCEPT_FDS, sg=sg)


@scenario()
def raw_fd_arrays(dev: str) -> Transcript:
    """BINDER_TYPE_FDA in a scatter-gather buffer: each fd of the array becomes the receiver's,
    written into its copy of the buffer; BC_FREE_BUFFER closes them (not a BINDER_TYPE_FD's) and
    the freeing read returns at once; an array whose parent, size, alignment, order or number of
    fds is wrong fails with 6.1's error, log lines and failed_transaction_log entry."""

    def mgr(ctx: Ctx) -> None:
        r = manager_accepting_fds(ctx)
        ctx.send("client", "ready")
        refs = ctx.expect("idents")["idents"]
        w = r.wr()
        tr = last_tr(w)
        buf = r.buffer(tr)
        start = (tr.tr[6] + 7) & ~7
        offs = [uapi.U64.unpack_from(buf, start + 8 * i)[0] for i in range(tr.tr[7] // 8)]
        ptr = BUF.unpack_from(buf, offs[0])
        fda = FDA.unpack_from(buf, offs[1])
        at = ptr[2] - tr.tr[8] + fda[4]
        fds = list(struct.unpack_from(f"<{fda[2]}i", buf, at))
        single = FD.unpack_from(buf, offs[2])[2] & 0xFFFFFFFF
        ctx.emit("call_with_fd_array", **wr_event(w), tr=br_detail(r, tr, ctx),
                 fda={"num_fds": fda[2], "parent": fda[3], "parent_offset": fda[4]},
                 parent_head=buf[ptr[2] - tr.tr[8]:ptr[2] - tr.tr[8] + 8].decode(),
                 fds=[fd_info(fd, ref) for fd, ref in zip(fds, refs[:3], strict=True)],
                 single=fd_info(single, refs[-1]))
        for i, fd in enumerate(fds):
            os.write(fd, f"array fd {i}".encode())
        ctx.emit("reply", **wr_event(r.wr(r.tx(0, 0, b"ok", reply=True), 256)))
        # freeing the buffer closes the array's fds (6.1: binder_deferred_fd_close), not the
        # BINDER_TYPE_FD object's (its owner's to close); the read returns at once
        # (looper_need_return, for the deferred close) where it would wait for work
        w = r.wr(free(tr.tr[8]), 256)
        ctx.emit("free", **wr_event(w), fds=[fd_info(fd) for fd in fds], single=fd_info(single, refs[-1]))
        os.close(single)
        ctx.send("client", "checked")
        ctx.expect("done")
        r.t.close()

    def client(ctx: Ctx) -> None:
        r = ctx.raw()
        ctx.expect("ready")
        pipes = [os.pipe() for _ in range(4)]
        ctx.send("mgr", "idents", idents=[ident(w) for _r, w in pipes])
        call = fda_call(r, [w for _r, w in pipes[:3]], fd_obj=pipes[3][1])
        w = r.wr(call)
        ctx.emit("call_returned", **wr_event(w))
        for _r, wfd in pipes:
            os.close(wfd)
        ctx.expect("checked")
        ctx.emit("read", data=[read_all(rfd).decode() for rfd, _w in pipes[:3]])
        for rfd, _w in pipes:
            os.close(rfd)
        # malformed arrays: each fails before any fd reaches the manager
        log = DriverLog(ctx)
        pr, pw = os.pipe()
        for name, kw in (("parent_not_a_ptr", {"parent_index": 1}), ("too_many_fds", {"num_fds": 3}),
                         ("misaligned", {"parent_offset": 6}), ("out_of_order", {"second_ptr": True}),
                         ("absurd_number_of_fds", {"num_fds": 1 << 62})):
            w = r.wr(fda_call(r, [pw, pw], **kw))
            ctx.emit(name, **wr_event(w), ee=r.ee(), failed=log.failed(), lines=log.lines())
        os.close(pr)
        os.close(pw)
        ctx.send("mgr", "done")

    return run_roles(dev, mgr=mgr, client=client)


# -- the client library: Parcel, ParcelFileDescriptor, dump ---------------------------------------


DESC = "conformance.IFiles"


class Files(Service):
    """Writes to fds it is given, hands out pipes, keeps nothing it did not dup."""

    descriptor = DESC

    def __init__(self) -> None:
        super().__init__()
        self.lent: list[tuple[int, list[int]]] = []  # (fd number, what it was) of fds the parcel owned

    @method(FIRST_CALL_TRANSACTION)
    def write(self, data: Parcel, reply: Parcel) -> None:
        """write(FileDescriptor fd, String text): what the fd looks like here; writes the text."""
        fd = data.read_file_descriptor()
        ref = [data.read_int64(), data.read_int64()]
        text = data.read_string16() or ""
        info = fd_info(fd, ref)
        reply.write_bool(info["cloexec"])
        reply.write_bool(info["same_file"])
        reply.write_bool(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK))
        os.write(fd, text.encode())
        self.lent.append((fd, ident(fd)))

    @method(FIRST_CALL_TRANSACTION + 1)
    def pipe(self, data: Parcel, reply: Parcel) -> None:
        """ParcelFileDescriptor pipe(String text): a pipe's read end, the text already in it."""
        text = data.read_string16() or ""
        r, w = ParcelFileDescriptor.create_pipe()
        with r, w:
            os.write(w.fileno(), text.encode())
            reply.write_int32(1)  # AIDL's non-null ParcelFileDescriptor
            reply.write_parcel_file_descriptor(r)

    @method(FIRST_CALL_TRANSACTION + 2)
    def take(self, data: Parcel, reply: Parcel) -> None:
        """void take(in ParcelFileDescriptor pfd): read it to its end, return what it held."""
        assert data.read_int32() == 1
        with data.read_parcel_file_descriptor() as pfd:
            reply.write_string16(read_all(pfd.fileno()).decode())

    @method(FIRST_CALL_TRANSACTION + 3)
    def lent_closed(self, data: Parcel, reply: Parcel) -> None:
        """Whether every fd lent to write() for a call is gone with the call (not the same file
        any more): the received parcel closed it."""
        ok = True
        for fd, was in self.lent:
            try:
                ok &= ident(fd) != was
            except OSError:
                pass
        self.lent.clear()
        reply.write_bool(ok)

    @method(FIRST_CALL_TRANSACTION + 4)
    def count_fds(self, data: Parcel, reply: Parcel) -> None:
        collect_garbage()
        reply.write_int32(len(os.listdir("/proc/self/fd")))

    def dump(self, fd: Any, args: Any) -> int:
        os.write(fd, ("dump: " + " ".join(args) + "\n").encode())
        return 0


class Hub(BBinder):
    """The context manager's object (its node takes no fds, as servicemanager's): hands out Files."""

    def __init__(self, files: Files) -> None:
        super().__init__()
        self.files = files

    def on_transact(self, code: int, data: Parcel, reply: Parcel, flags: int) -> None:
        reply.write_strong_binder(self.files)


class FilesProxy(Proxy):
    descriptor = DESC

    def write(self, fd: int, text: str) -> list[bool]:
        st = os.fstat(fd)

        def args(p: Parcel) -> None:
            p.write_file_descriptor(fd)
            p.write_int64(st.st_dev)
            p.write_int64(st.st_ino)
            p.write_string16(text)

        r = self.call(FIRST_CALL_TRANSACTION, args)
        return [r.read_bool(), r.read_bool(), r.read_bool()]

    def pipe(self, text: str) -> Any:
        r = self.call(FIRST_CALL_TRANSACTION + 1, lambda p: p.write_string16(text))
        return r.read_parcel_file_descriptor() if r.read_int32() else None

    def take(self, pfd: Any) -> str:
        return self.call(FIRST_CALL_TRANSACTION + 2, lambda p: (p.write_int32(1),
                                                             p.write_parcel_file_descriptor(pfd))).read_string16()

    def lent_closed(self) -> bool:
        return self.call(FIRST_CALL_TRANSACTION + 3).read_bool()

    def count_fds(self) -> int:
        return self.call(FIRST_CALL_TRANSACTION + 4).read_int32()


@scenario()
def fds_client(dev: str) -> Transcript:
    """The client library's fds: Parcel.write_file_descriptor to a service (the same open file,
    close-on-exec), a ParcelFileDescriptor back in a reply and one sent in a call, dump through
    IBinder.dump, a service's received fds closed with its call, none left behind by 50 calls."""

    def server(ctx: Ctx) -> None:
        ps = ctx.process()
        files = Files()
        ps.become_context_manager(Hub(files))
        ps.start_thread_pool()
        ctx.send("client", "ready")
        ctx.expect("done")

    def client(ctx: Ctx) -> None:
        ps = ctx.process()
        ctx.expect("ready")
        hub = ps.context_proxy()
        reply = hub.transact(1, Parcel())
        files = FilesProxy(reply.read_strong_binder())
        r, w = os.pipe()
        fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
        seen = files.write(w, "through a BINDER_TYPE_FD")
        os.close(w)
        ctx.emit("write", cloexec=seen[0], same_file=seen[1], nonblock_shared=seen[2], data=read_all(r).decode())
        os.close(r)
        ctx.emit("lent_fds_closed_with_the_call", result=files.lent_closed())
        pfd = files.pipe("from the service's pipe")
        ctx.emit("pipe", type=type(pfd).__name__, fd=fd_info(pfd.fileno()), data=read_all(pfd.fileno()).decode())
        pfd.close()
        r2, w2 = ParcelFileDescriptor.create_pipe()
        os.write(w2.fileno(), b"a pipe sent as a ParcelFileDescriptor")
        w2.close()
        ctx.emit("take", result=files.take(r2))
        r2.close()
        rd, wd = os.pipe()
        ctx.emit("dump", status=outcome(lambda: files.dump(wd, ["--all", "-v"])))
        os.close(wd)
        ctx.emit("dump_output", data=read_all(rd).decode())
        os.close(rd)
        mine = len(os.listdir("/proc/self/fd"))
        before = files.count_fds()
        for i in range(50):
            pr, pw = os.pipe()
            files.write(pw, str(i))
            os.close(pw)
            os.read(pr, 10)
            os.close(pr)
            with files.pipe("x") as p:
                os.read(p.fileno(), 1)
        collect_garbage()
        ctx.emit("fds_after_50_calls", service=files.count_fds() - before,
                 client=len(os.listdir("/proc/self/fd")) - mine)
        ctx.send("server", "done")

    return run_roles(dev, server=server, client=client)


@scenario()
def fds_nested(dev: str) -> Transcript:
    """An fd across a nested call: A sends its pipe to B, B forwards the fd it received to C inside
    that call, C writes to it; C answers B with a pipe of its own, which B returns to A. (A
    registry, the context manager, passes B's and C's objects around.)"""

    class Registry(BBinder):
        """A's object: "put" stores a binder, "get" returns it, by the code's low bits."""

        def __init__(self) -> None:
            super().__init__()
            self.slots: dict[int, Any] = {}

        def on_transact(self, code: int, data: Parcel, reply: Parcel, flags: int) -> None:
            if code >= 100:
                self.slots[code - 100] = data.read_strong_binder()
            else:
                reply.write_strong_binder(self.slots.get(code))

    class Forwarder(Service):
        descriptor = DESC

        def __init__(self) -> None:
            super().__init__()
            self.target: Any = None

        @method(FIRST_CALL_TRANSACTION)
        def write(self, data: Parcel, reply: Parcel) -> None:
            fd = data.read_file_descriptor()
            ref = [data.read_int64(), data.read_int64()]
            text = data.read_string16() or ""
            seen = FilesProxy(self.target).write(fd, text + " (via B)")  # the fd B received, forwarded
            reply.write_bool(seen[0])
            reply.write_bool(fd_info(fd, ref)["same_file"] and seen[1])
            reply.write_bool(seen[2])

        @method(FIRST_CALL_TRANSACTION + 1)
        def pipe(self, data: Parcel, reply: Parcel) -> None:
            pfd = FilesProxy(self.target).pipe((data.read_string16() or "") + " (from C)")
            reply.write_int32(1)
            reply.write_parcel_file_descriptor(pfd)
            pfd.close()

    def registry(ctx: Ctx) -> None:
        ps = ctx.process()
        ps.become_context_manager(Registry())
        ps.start_thread_pool()
        ctx.send("c", "ready")
        ctx.send("b", "ready")
        ctx.send("a", "ready")
        ctx.expect("done")

    def put(ps: Any, slot: int, obj: Any) -> None:
        p = Parcel()
        p.write_strong_binder(obj)
        ps.context_proxy().transact(100 + slot, p)

    def get(ps: Any, slot: int) -> Any:
        from .framework import WAIT, wait_until

        got: list[Any] = []
        wait_until(lambda: bool(got.append(ps.context_proxy().transact(slot, Parcel()).read_strong_binder())
                                or got[-1] is not None), WAIT)
        return got[-1]

    def c(ctx: Ctx) -> None:
        ps = ctx.process()
        ctx.expect("ready")
        files = Files()
        put(ps, 1, files)
        ps.start_thread_pool()
        ctx.expect("done")

    def b(ctx: Ctx) -> None:
        ps = ctx.process()
        ctx.expect("ready")
        fwd = Forwarder()
        fwd.target = get(ps, 1)
        put(ps, 2, fwd)
        ps.start_thread_pool()
        ctx.expect("done")

    def a(ctx: Ctx) -> None:
        ps = ctx.process()
        ctx.expect("ready")
        svc = FilesProxy(get(ps, 2))
        r, w = os.pipe()
        seen = svc.write(w, "from A")
        os.close(w)
        ctx.emit("forwarded_fd", cloexec=seen[0], same_file=seen[1], nonblock=seen[2], data=read_all(r).decode())
        os.close(r)
        pfd = svc.pipe("a pipe")
        ctx.emit("returned_pipe", fd=fd_info(pfd.fileno()), data=read_all(pfd.fileno()).decode())
        pfd.close()
        for role in ("registry", "b", "c"):
            ctx.send(role, "done")

    return run_roles(dev, registry=registry, c=c, b=b, a=a)
