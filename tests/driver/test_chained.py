"""The chained wait (docs/abi-chained.md) on the sans-IO core: one pread returns a reply's lone
BR_TRANSACTION_COMPLETE and the thread's next read; the BR sequences are version 1's, byte for
byte; an interrupted chained read leaves the first ioctl done and the second not started."""

from __future__ import annotations

import errno
import struct

import pytest

from vbinder import abi, fdabi, uapi
from vbinder.driver import WouldBlock

from .harness import Client, FakeHost, WriteRead, cmd, flat_binder, make_driver, parse_brs

KEY_READ = 1 << 16  # pread size of these tests (a whole reply)


def setup(looper: int = uapi.BC_ENTER_LOOPER) -> tuple[Client, Client, WouldBlock]:
    """A context manager (pid 1) whose looper waits, and a caller (pid 2)."""
    d = make_driver()
    server, caller = Client(d, 1), Client(d, 2)
    server.mmap()
    caller.mmap()
    assert server.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == 0
    with pytest.raises(WouldBlock) as wb:
        server.write_read(cmd(looper) if looper else b"")
    return server, caller, wb.value


def call(caller: Client, data: bytes = b"ping") -> WouldBlock:
    """A sync call to handle 0; its read phase waits for the reply."""
    with pytest.raises(WouldBlock) as wb:
        caller.write_read(caller.bc_transaction(0, 1, data))
    return wb.value


def reply_request(server: Client, tr: tuple[int, ...], chained: bool, fds: bool = False) -> None:
    """BC_FREE_BUFFER + BC_REPLY, as libbinder's sendReply, with a read (chained or not)."""
    write = cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + server.bc_transaction(0, 0, b"pong", reply=True)
    waddr = server.put(write)
    arg = uapi.WRITE_READ.pack(len(write), 0, waddr, 256, 0, 0x0F00_0000 + server.pid * 0x1000)
    if fds:
        flags = fdabi.WR_CHAIN if chained else 0
        server.request(fdabi.VBINDER_WRITE_READ_FDS, arg + struct.pack("<II", 0, flags))
    else:
        server.request(abi.VBINDER_WRITE_READ_CHAINED if chained else uapi.BINDER_WRITE_READ, arg)


def frames(data: bytes) -> list[tuple[bytes, abi.Frame]]:
    """A reply's frames with their magic (two when chained)."""
    first, second = abi.decode_chained(data)
    out = [(data[:4], first)]
    if second is not None:
        out.append((data[abi.reply_total(data):][:4], second))
    return out


def brs(f: abi.Frame) -> list[str]:
    """The BR names a frame wrote into its read buffer."""
    read = [d for a, d in f.segments if 0x0F00_0000 <= a < 0x1000_0000]
    return [b.name for b in parse_brs(read[0])] if read else []


def serve_once(server: Client, caller: Client, wb: WouldBlock) -> tuple[WriteRead, WouldBlock]:
    """The caller calls; the waiting looper gets the call."""
    cwb = call(caller)
    got = server.finish(wb)
    assert got.names == ["BR_NOOP", "BR_TRANSACTION"]
    return got, cwb


def chained_wait(server: Client, caller: Client, wb: WouldBlock) -> tuple[int, WouldBlock, WouldBlock]:
    """One call served; the looper's chained reply, whose chained read waits: (the looper's key,
    its waiting read, the caller's wait for the reply)."""
    got, cwb = serve_once(server, caller, wb)
    reply_request(server, got.brs[1].tr, True)
    key = abi.key(server.pid)
    out = server.file.read(key, KEY_READ)
    assert isinstance(out, WouldBlock)
    return key, out, cwb


def test_features_offer_the_chained_wait_with_or_without_fds() -> None:
    for fds in (True, False):
        d = make_driver()
        assert isinstance(d.host, FakeHost)
        d.host.fds = fds
        c = Client(d, 1)
        f = c.ioctl(fdabi.VBINDER_FEATURES, bytes(8))
        assert f.code == 0
        assert fdabi.FEATURES.unpack(f.arg)[0] == fdabi.FEATURE_CHAINED | (fdabi.FEATURE_FDS if fds else 0)


@pytest.mark.parametrize("fds", [False, True])
def test_a_chained_reply_returns_both_reads_in_one_pread_as_v1_reads_them(fds: bool) -> None:
    sequences = {}
    for chained in (False, True):
        server, caller, wb = setup()
        got, cwb = serve_once(server, caller, wb)
        reply_request(server, got.brs[1].tr, chained, fds)
        key = abi.key(server.pid)
        out = server.file.read(key, KEY_READ)
        seen: list[tuple[bytes, list[str]]] = []
        if chained:
            assert isinstance(out, WouldBlock)  # the chained read waits for the next call
        else:
            assert isinstance(out, bytes)
            seen += [(m, brs(f)) for m, f in frames(out)]
            out = server.file.read(key, KEY_READ)  # v1: the looper's next read (the fast path)
            assert isinstance(out, WouldBlock)
        done = caller.finish(cwb)
        assert done.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_REPLY"]
        call(caller, b"again")
        back = server.file.resume(key, KEY_READ, out.waiter)
        assert isinstance(back, bytes)
        seen += [(m, brs(f)) for m, f in frames(back)]
        sequences[chained] = seen
    assert sequences[False] == [(b"VBR1", ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]),
                                (b"VBR1", ["BR_NOOP", "BR_TRANSACTION"])]
    assert sequences[True] == [(b"VBRC", ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]),
                               (b"VBR1", ["BR_NOOP", "BR_TRANSACTION"])]


def test_the_chained_frames_are_the_v1_frames_byte_for_byte() -> None:
    replies = {}
    for chained in (False, True):
        server, caller, wb = setup()
        got, cwb = serve_once(server, caller, wb)
        reply_request(server, got.brs[1].tr, chained)
        key = abi.key(server.pid)
        out = server.file.read(key, KEY_READ)
        parts = []
        if not chained:
            assert isinstance(out, bytes)
            parts.append(out)
            out = server.file.read(key, KEY_READ)
        assert isinstance(out, WouldBlock)
        caller.finish(cwb)
        call(caller, b"again")
        back = server.file.resume(key, KEY_READ, out.waiter)
        assert isinstance(back, bytes)
        parts.append(back)
        replies[chained] = b"".join(parts)
    assert replies[True][:4] == b"VBRC"
    assert replies[True][4:] == replies[False][4:]  # only the first frame's magic differs


def test_a_call_already_queued_comes_with_the_chained_read_at_once() -> None:
    """6.1's read after a reply returns only its BR_TRANSACTION_COMPLETE even with a call queued
    for the proc (it decided at its start not to take proc work): the chained read takes it."""
    server, caller, wb = setup()
    got, _cwb = serve_once(server, caller, wb)
    other = Client(server.driver, 3)
    other.mmap()
    call(other, b"queued")  # waits in the proc's todo
    reply_request(server, got.brs[1].tr, True)
    out = server.file.read(abi.key(server.pid), KEY_READ)
    assert isinstance(out, bytes)
    assert [(m, brs(f)) for m, f in frames(out)] == [(b"VBRC", ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]),
                                                    (b"VBR1", ["BR_NOOP", "BR_TRANSACTION"])]


def test_no_chain_when_the_read_returns_more_than_the_acknowledgement() -> None:
    server, caller, wb = setup()
    got, _cwb = serve_once(server, caller, wb)
    write = cmd(uapi.BC_FREE_BUFFER, got.brs[1].tr[8], fmt="Q") + server.bc_transaction(0, 0, b"pong", reply=True)
    waddr = server.put(write)
    server.request(abi.VBINDER_WRITE_READ_CHAINED,
                   uapi.WRITE_READ.pack(len(write), 0, waddr, 4, 0, 0x0F00_0000 + server.pid * 0x1000))
    out = server.file.read(abi.key(server.pid), KEY_READ)
    assert isinstance(out, bytes)  # a read buffer of 4 bytes holds BR_NOOP only: not the acknowledgement
    assert [(m, brs(f)) for m, f in frames(out)] == [(b"VBR1", ["BR_NOOP"])]


@pytest.mark.parametrize("why", ["not a looper", "polls", "exited", "v1 ioctl", "nonblock"])
def test_no_chain_unless_the_thread_surely_reads_next(why: str) -> None:
    server, caller, wb = setup(looper=0 if why == "not a looper" else uapi.BC_ENTER_LOOPER)
    if why == "nonblock":
        server.file.nonblock = True
    if why == "polls":
        server.file.poll(server.pid)
    got, _cwb = serve_once(server, caller, wb)
    if why == "exited":
        server.write_read(cmd(uapi.BC_EXIT_LOOPER), read_size=0)
    reply_request(server, got.brs[1].tr, why != "v1 ioctl")
    out = server.file.read(abi.key(server.pid), KEY_READ)
    assert isinstance(out, bytes)
    assert [(m, brs(f)) for m, f in frames(out)] == [(b"VBR1", ["BR_NOOP", "BR_TRANSACTION_COMPLETE"])]


def test_an_interrupted_chained_read_returns_the_first_reply_and_takes_nothing() -> None:
    server, caller, wb = setup()
    key, out, cwb = chained_wait(server, caller, wb)
    # A signal for the waiting thread: the pread gets the chained request's reply, alone.
    first = server.file.abandon(key, out.waiter, KEY_READ)
    assert first is not None and first[:4] == b"VBR1"
    assert [(m, brs(f)) for m, f in frames(first)] == [(b"VBR1", ["BR_NOOP", "BR_TRANSACTION_COMPLETE"])]
    assert caller.finish(cwb).names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_REPLY"]
    # The chained read was not started: a call now goes to a thread that reads, or waits in the
    # proc's todo; a new request of the server's thread (here: a write-only one) cancels it.
    call(caller, b"again")
    server.write_read(cmd(uapi.BC_ENTER_LOOPER), read_size=0)
    proc = server.driver.procs[0] if server.driver.procs[0].pid == 1 else server.driver.procs[1]
    assert len(proc.todo) == 1  # nothing taken off the queue
    # The looper's next read takes it, as a v1 client's would.
    assert server.write_read().names == ["BR_NOOP", "BR_TRANSACTION"]


def test_an_interrupted_chained_read_continues_at_the_next_read_only_pread() -> None:
    server, caller, wb = setup()
    key, out, cwb = chained_wait(server, caller, wb)
    assert server.file.abandon(key, out.waiter, KEY_READ) is not None
    caller.finish(cwb)
    out = server.file.read(key, KEY_READ)  # the read phase in flight continues (DESIGN.md)
    assert isinstance(out, WouldBlock)
    call(caller, b"again")
    back = server.file.resume(key, KEY_READ, out.waiter)
    assert isinstance(back, bytes)
    assert [(m, brs(f)) for m, f in frames(back)] == [(b"VBR1", ["BR_NOOP", "BR_TRANSACTION"])]


def test_a_new_request_while_the_chained_read_waits_is_ebusy() -> None:
    server, caller, wb = setup()
    key, out, _cwb = chained_wait(server, caller, wb)
    frame = abi.encode_request(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
    with pytest.raises(Exception) as e:
        server.file.write(key, frame)
    assert getattr(e.value, "errno", None) == errno.EBUSY
    server.file.release()


@pytest.mark.parametrize("chained", [False, True], ids=["v1", "chained"])
def test_node_work_queued_while_the_chained_read_waits_wakes_it(chained: bool) -> None:
    """A looper in a chained read waits for proc work like any reader (6.1's waiting_threads):
    the BR_RELEASE/BR_DECREFS of its node, queued when the last remote ref goes, wake it and
    come in its second frame, as v1's next read gets them."""
    server, caller, wb = setup()
    key = abi.key(server.pid)
    # The server hands a node of its own to the caller in a reply (v1), and acknowledges its refs.
    got, cwb = serve_once(server, caller, wb)
    write = cmd(uapi.BC_FREE_BUFFER, got.brs[1].tr[8], fmt="Q") + \
        server.bc_transaction(0, 0, flat_binder(0xB0, 0xC0), objects=(0,), reply=True)
    acked = server.write_read(write)
    assert acked.names == ["BR_NOOP", "BR_INCREFS", "BR_ACQUIRE", "BR_TRANSACTION_COMPLETE"]
    with pytest.raises(WouldBlock) as wb2:
        server.write_read(cmd(uapi.BC_INCREFS_DONE, 0xB0, 0xC0, fmt="QQ") +
                          cmd(uapi.BC_ACQUIRE_DONE, 0xB0, 0xC0, fmt="QQ"))
    done = caller.finish(cwb)
    handle = uapi.FLAT_BINDER_OBJECT.unpack(caller.payload(done.brs[-1]))[2]
    caller.write_read(cmd(uapi.BC_INCREFS, handle) + cmd(uapi.BC_ACQUIRE, handle) +
                      cmd(uapi.BC_FREE_BUFFER, done.brs[-1].tr[8], fmt="Q"), read_size=0)  # its own refs
    # A second call, whose reply chains (or not) the looper's next read, which waits.
    got, cwb = serve_once(server, caller, wb2.value)
    reply_request(server, got.brs[1].tr, chained)
    out = server.file.read(key, KEY_READ)
    seen: list[tuple[bytes, list[str]]] = []
    if not chained:
        assert isinstance(out, bytes)
        seen += [(m, brs(f)) for m, f in frames(out)]
        out = server.file.read(key, KEY_READ)
    assert isinstance(out, WouldBlock)
    woken: list[bool] = []
    out.waiter.wake_cb = lambda: woken.append(True)
    caller.finish(cwb)
    # The caller drops the node: its owner's read is woken with the node's work.
    caller.write_read(cmd(uapi.BC_RELEASE, handle) + cmd(uapi.BC_DECREFS, handle), read_size=0)
    assert woken == [True]
    back = server.file.resume(key, KEY_READ, out.waiter)
    assert isinstance(back, bytes)
    seen += [(m, brs(f)) for m, f in frames(back)]
    assert seen == [(b"VBRC" if chained else b"VBR1", ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]),
                    (b"VBR1", ["BR_NOOP", "BR_RELEASE", "BR_DECREFS"])]
