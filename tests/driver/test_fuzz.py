"""Fuzzing the device ABI on the core: random and mutated frames from several threads.

Whatever arrives, the core answers with a BinderError (an errno for that caller), a reply or a
wait, never another exception; afterwards the driver is consistent and a normal call works
(issue "Nothing stuck, nothing lost": hostile input). A longer run: VBINDER_FUZZ_EXAMPLES=5000.
"""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbinder import abi, uapi
from vbinder.driver import BinderError, WouldBlock
from vbinder.driver.stats import OBJ_NAMES

from .harness import Client, cmd, make_driver

EXAMPLES = int(os.environ.get("VBINDER_FUZZ_EXAMPLES", "150"))

BC = sorted(uapi.BC_CODES.values())
IOCTLS = sorted([*uapi.IOCTLS.values(), abi.VBINDER_MMAP, abi.VBINDER_MUNMAP, abi.VBINDER_ABI_VERSION])


@st.composite
def bc_stream(draw: st.DrawFn) -> bytes:
    """A write buffer of mostly well-formed BC commands with random arguments."""
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        code = draw(st.sampled_from(BC) | st.integers(0, 2**32 - 1))
        n = uapi.ioc_size(code) if code in uapi.BC_NAMES else draw(st.integers(0, 16))
        out += struct.pack("<I", code) + draw(st.binary(min_size=n, max_size=n))
    return out


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        # a BINDER_WRITE_READ whose write buffer is in a segment, the rest random
        write = draw(bc_stream())
        waddr = draw(st.sampled_from([0x1000, 0x7000_0000_0000, 0]))
        read_size = draw(st.sampled_from([0, 8, 64, 256, 1 << 20]))
        arg = uapi.WRITE_READ.pack(len(write) + draw(st.integers(0, 8)), draw(st.integers(0, 4)), waddr,
                                   read_size, draw(st.integers(0, 4)), 0x2000)
        segs = [(waddr, write)] if draw(st.booleans()) else []
        segs += [(0x9000_0000 + 0x1000 * i, draw(st.binary(max_size=64))) for i in range(draw(st.integers(0, 2)))]
        return abi.encode_request(uapi.BINDER_WRITE_READ, arg, segs)
    cmd_no = draw(st.sampled_from(IOCTLS) | st.integers(0, 2**32 - 1))
    size = uapi.ioc_size(cmd_no) if draw(st.booleans()) else draw(st.integers(0, 64))
    frame = bytearray(abi.encode_request(cmd_no, draw(st.binary(min_size=size, max_size=size))))
    if kind == 3 and frame:
        # mutate a byte of a well-formed frame
        i = draw(st.integers(0, len(frame) - 1))
        frame[i] = draw(st.integers(0, 255))
    return bytes(frame)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 64), frames(), st.booleans()), max_size=12))
def test_random_frames_never_break_the_driver(ops: list[tuple[int, int, bytes, bool]]) -> None:
    d = make_driver()
    procs = [Client(d, 100), Client(d, 200)]
    assert procs[0].ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == 0
    for c in procs:
        c.mmap()
    for who, split, frame, read_after in ops:
        c = procs[who % 2]
        tid = c.pid + who  # several threads per process
        key = abi.key(tid)
        try:
            if 0 < split < len(frame):
                c.file.write(key, frame[:split])
                c.file.write(key + split, frame[split:])
            else:
                c.file.write(key, frame)
        except BinderError:
            pass
        if read_after:
            try:
                c.file.read(key, 1 << 16)
            except (BinderError, WouldBlock):
                pass
    # the driver still serves a normal sync call between fresh threads
    srv, cli = procs
    srv.write_read(cmd(uapi.BC_ENTER_LOOPER), 0, tid=150)
    try:
        with_wait = None
        cli.write_read(cli.bc_transaction(0, 7, b"ping"), 256, tid=250)
    except WouldBlock as wb:
        with_wait = wb
    if with_wait is not None:
        r = srv.write_read(b"", 256, tid=150)
        while "BR_TRANSACTION" not in r.names:
            r = srv.write_read(b"", 256, tid=150)
        tr = next(b for b in r.brs if b.name == "BR_TRANSACTION").tr
        if tr[2] == 7:
            srv.write_read(cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + srv.bc_transaction(0, 0, b"pong", reply=True),
                           256, tid=150)
            r = cli.finish(with_wait, tid=250)
            assert r.names[-1] == "BR_REPLY" and cli.payload(r.brs[-1]) == b"pong"
    for c in procs:
        c.file.release()
    for kind in range(len(OBJ_NAMES)):
        assert d.stats.active(kind) == 0, kind.name
