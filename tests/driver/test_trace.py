"""The tracepoints of the core against the real 6.1 driver's (tests/oracle/samples/stock).

``trace_binder_event_formats.txt`` is every binder event's format file as the oracle's tracefs
printed it; ``trace_binder_events.txt`` is the trace of shared/oracle/smoke.py's scenario F (a
sync call and a one-way call, every binder event enabled). The scenario is replayed here on the
core with fake processes, and each thread's lines are compared with the kernel's, normalized for
pids, times and user pointers (which the daemon never sees: ``arg=0x0``).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from tests.driver.harness import Client as Proc
from tests.driver.harness import cmd, make_driver
from vbinder import uapi
from vbinder.driver import BinderError, WouldBlock
from vbinder.driver import trace as tr

SAMPLES = Path(__file__).resolve().parents[1] / "oracle" / "samples" / "stock"
LINE = re.compile(r"^\s*(.+)-(\d+)\s+\[(\d+)\] (.{5}) +(\d+)\.(\d{6}): (\w+): (.*)$")


def test_every_format_file_is_the_kernels() -> None:
    text = (SAMPLES / "trace_binder_event_formats.txt").read_text()
    blocks = {b.split("/", 1)[0]: b.split("\n", 1)[1] for b in text.split("===== ")[1:]}
    assert sorted(blocks) == sorted(e.name for e in tr.EVENTS)  # the 33 binder events of 6.1
    for i, e in enumerate(tr.EVENTS):
        assert tr.format_file(i) == blocks[e.name], e.name


def _kernel_lines(roles: dict[int, str]) -> dict[str, list[str]]:
    """The oracle's trace, per thread, with pids as role names and pointers as 0."""
    out: dict[str, list[str]] = {}
    for line in (SAMPLES / "trace_binder_events.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, line
        out.setdefault(roles[int(m.group(2))], []).append(_normal(f"{m.group(7)}: {m.group(8)}", roles))
    return out


def _normal(text: str, roles: dict[int, str]) -> str:
    text = re.sub(r"arg=0x[0-9a-f]+", "arg=PTR", text)
    for pid, role in roles.items():
        text = re.sub(rf"\b{pid}\b", role, text)
    return text


def test_scenario_f_traces_as_the_kernel() -> None:
    d = make_driver()
    server = Proc(d, 147)
    server.mmap()
    server.ioctl(uapi.BINDER_SET_MAX_THREADS, struct.pack("<I", 0))
    assert server.ioctl(uapi.BINDER_SET_CONTEXT_MGR, struct.pack("<i", 0)).code == 0
    server.write_read(cmd(uapi.BC_ENTER_LOOPER), 0)
    # The oracle's earlier scenarios had used the server's first page: it is on the lru.
    warm = Proc(d, 140)
    warm.mmap()
    warm.write_read(warm.bc_transaction(0, 1, b"warm", uapi.TF_ONE_WAY), 256)
    got = server.write_read(b"", 256)
    server.write_read(cmd(uapi.BC_FREE_BUFFER, got.brs[1].tr[8], fmt="Q"), 0)
    # The sample starts here: tracing on with every binder event, then the client appears.
    d.trace.top.set_events(tr.ALL_BINDER)
    client = Proc(d, 155)
    client.mmap()
    client.ioctl(uapi.BINDER_SET_MAX_THREADS, struct.pack("<I", 0))
    with pytest.raises(WouldBlock) as swait:
        server.write_read(b"", 256)
    with pytest.raises(WouldBlock) as cwait:
        client.write_read(client.bc_transaction(0, 5, b"sync-payload", uapi.TF_ACCEPT_FDS), 256)
    got = server.finish(swait.value)
    assert got.names == ["BR_NOOP", "BR_TRANSACTION"]
    buf = got.brs[1].tr[8]
    server.write_read(cmd(uapi.BC_FREE_BUFFER, buf, fmt="Q")
                      + server.bc_transaction(0, 0, b"reply!\0\0\0\0\0\0", reply=True), 256)
    got = client.finish(cwait.value)
    assert got.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_REPLY"]
    client.write_read(cmd(uapi.BC_FREE_BUFFER, got.brs[2].tr[8], fmt="Q"), 0)
    got = client.write_read(client.bc_transaction(0, 6, b"oneway-payload!!", uapi.TF_ONE_WAY), 256)
    assert got.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
    got = server.write_read(b"", 256)
    assert got.names == ["BR_NOOP", "BR_TRANSACTION"]
    server.write_read(cmd(uapi.BC_FREE_BUFFER, got.brs[1].tr[8], fmt="Q"), 0)

    roles = {147: "S", 155: "C"}
    mine: dict[str, list[str]] = {}
    for rec in d.trace.top.records():
        m = LINE.match(tr.format_line(rec, d.trace.comms))
        assert m
        mine.setdefault(roles[int(m.group(2))], []).append(_normal(f"{m.group(7)}: {m.group(8)}", roles))
    kernel = _kernel_lines(roles)
    # The kernel's debug ids count from wherever its earlier scenarios left them.
    offset = 15 - int(re.search(r"transaction=(\d+)", "\n".join(mine["C"])).group(1))  # type: ignore[union-attr]
    for role in ("S", "C"):
        shifted = [re.sub(r"transaction=(\d+)", lambda m: f"transaction={int(m.group(1)) + offset}", x)
                   for x in mine[role]]
        shifted = [re.sub(r"dest_node=(\d+)", lambda m: "dest_node=1" if m.group(1) != "0" else m.group(0), x)
                   for x in shifted]
        assert shifted == kernel[role], role


def test_lines_look_like_ftrace() -> None:
    d = make_driver()
    d.trace.top.set_events(tr.ALL_BINDER)
    d.trace.comms[155] = "python3"
    Proc(d, 155)
    lines = [tr.format_line(r, d.trace.comms) for r in d.trace.top.records()]
    assert lines[0].startswith("         python3-155     [000] .....  1000.")
    assert lines[0].endswith(": binder_ioctl: cmd=0xc0046209 arg=0x0")
    assert lines[1].endswith(": binder_ioctl_done: ret=0")
    tgid = tr.format_line(d.trace.top.records()[0], d.trace.comms, tgid=True)
    assert "python3-155     (    155) [000] ....." in tgid
    head = tr.render_trace(d.trace.top)
    assert head.startswith("# tracer: nop\n#\n# entries-in-buffer/entries-written: 2/2   #P:")


def test_off_records_nothing_and_buffers_are_separate() -> None:
    d = make_driver()
    Proc(d, 155)
    assert d.trace.mask & tr.ALL_BINDER == 0 and d.trace.top.records() == []
    inst = d.trace.new_buffer("x")
    tr.write_enable(inst, 1 << tr.TP_IOCTL, b"1\n")
    Proc(d, 156)
    assert [r[3] for r in inst.records()] == [tr.TP_IOCTL]
    assert d.trace.top.records() == []
    tr.write_tracing_on(inst, b"0")
    Proc(d, 157)
    assert len(inst.records()) == 1
    assert tr.enable_text(inst, tr.ALL_BINDER) == b"X\n"


def test_control_files_parse_as_ftrace() -> None:
    d = make_driver()
    buf = d.trace.top
    for bad in (b"2", b"x", b"-1", b""):
        with pytest.raises(BinderError):
            tr.write_enable(buf, tr.ALL_BINDER, bad)
    with pytest.raises(BinderError):
        tr.write_buffer_size_kb(buf, b"0")
    tr.write_buffer_size_kb(buf, b"1\n")
    tr.write_enable(buf, tr.ALL_BINDER, b"1\n")
    assert tr.enable_text(buf, tr.ALL_BINDER) == b"1\n"
    for i in range(50):
        Proc(d, 1000 + i)
    # A small buffer keeps only its newest records; entries-written counts them all.
    assert buf.used <= buf.capacity
    assert f"/{buf.written}   #P" in tr.render_trace(buf)
    assert len(buf.records()) < buf.written
