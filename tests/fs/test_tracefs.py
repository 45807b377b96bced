"""sys/kernel/tracing through a real mount: the files 6.1 has for the binder events."""

from __future__ import annotations

import errno
import os
import select
import stat
import threading
from pathlib import Path

import pytest

from tests.fs.fsutil import ioctl
from tests.support import fuse_usable
from vbinder import uapi
from vbinder.driver import trace as tr

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))
SAMPLES = Path(__file__).resolve().parents[1] / "oracle" / "samples" / "stock"


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _version(m: Path) -> None:
    fd = os.open(m / "dev" / "binder", os.O_RDWR)
    try:
        assert ioctl(fd, uapi.BINDER_VERSION, uapi.VERSION.pack(0)).code == 0
    finally:
        os.close(fd)


def test_the_tree_of_tracefs(vbinder_mount: Path) -> None:
    t = vbinder_mount / "sys/kernel/tracing"
    names = sorted(os.listdir(t / "events/binder"))
    assert names == sorted(["enable", *(e.name for e in tr.EVENTS)])
    assert len(names) == 34  # the oracle's 33 events, and the system's enable
    fmt = (SAMPLES / "trace_binder_event_formats.txt").read_text()
    for e in tr.EVENTS:
        d = t / "events/binder" / e.name
        assert sorted(os.listdir(d)) == ["enable", "format", "id"]
        assert f"===== {e.name}/format =====\n{(d / 'format').read_text()}" in fmt
        assert (d / "enable").read_text() == "0\n"
        assert stat.S_IMODE(os.stat(d / "enable").st_mode) == 0o644
    assert (t / "tracing_on").read_text() == "1\n"
    assert (t / "buffer_size_kb").read_text() == "1408\n"
    assert (t / "events/binder/enable").read_text() == "0\n"
    assert (t / "trace").read_text().startswith("# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0")


def test_enable_record_read_clear(vbinder_mount: Path) -> None:
    t = vbinder_mount / "sys/kernel/tracing"
    _version(vbinder_mount)
    assert "binder_ioctl" not in (t / "trace").read_text()  # off records nothing
    _write(t / "events/binder/binder_ioctl/enable", "1")
    assert (t / "events/binder/enable").read_text() == "X\n"
    _version(vbinder_mount)
    text = (t / "trace").read_text()
    lines = [x for x in text.splitlines() if not x.startswith("#")]
    assert len(lines) == 1 and lines[0].endswith(f"binder_ioctl: cmd=0x{uapi.BINDER_VERSION:x} arg=0x0")
    assert f"-{threading.get_native_id()} " in lines[0]
    with pytest.raises(OSError) as e:
        _write(t / "events/binder/binder_ioctl/enable", "2")
    assert e.value.errno == errno.EINVAL
    _write(t / "trace", "")  # echo > trace: O_TRUNC clears
    assert "binder_ioctl:" not in (t / "trace").read_text()
    _write(t / "tracing_on", "0")
    _version(vbinder_mount)
    assert "binder_ioctl:" not in (t / "trace").read_text()
    _write(t / "tracing_on", "1")
    _write(t / "events/binder/enable", "1")
    _version(vbinder_mount)
    assert "binder_ioctl_done: ret=0" in (t / "trace").read_text()


def test_trace_pipe_blocks_and_feeds_every_reader(vbinder_mount: Path) -> None:
    t = vbinder_mount / "sys/kernel/tracing"
    _write(t / "events/binder/binder_ioctl/enable", "1")
    fds = [os.open(t / "trace_pipe", os.O_RDONLY) for _ in range(2)]
    try:
        got: list[bytes] = []

        def reader(fd: int) -> None:
            got.append(os.read(fd, 65536))

        threads = [threading.Thread(target=reader, args=(fd,)) for fd in fds]
        for th in threads:
            th.start()
        assert select.select([], [], [], 0.3) == ([], [], [])  # give the readers time to block
        assert not got
        _version(vbinder_mount)
        for th in threads:
            th.join(10)
        assert len(got) == 2 and all(b"binder_ioctl: cmd=" in g for g in got)
        # What trace_pipe read is consumed: trace no longer shows it.
        assert "binder_ioctl:" not in (t / "trace").read_text()
    finally:
        for fd in fds:
            os.close(fd)


def test_instances_marker_and_tgid(vbinder_mount: Path) -> None:
    t = vbinder_mount / "sys/kernel/tracing"
    inst = t / "instances" / "mine"
    os.mkdir(inst)
    try:
        with pytest.raises(FileExistsError):
            os.mkdir(inst)
        _write(inst / "events/binder/binder_ioctl_done/enable", "1")
        _write(inst / "options/record-tgid", "1")
        _write(inst / "trace_marker", "hello")
        _version(vbinder_mount)
        text = (inst / "trace").read_text()
        assert f"({os.getpid():7d}) [000] ....." in text
        assert "tracing_mark_write: hello\n" in text and "binder_ioctl_done: ret=0" in text
        assert "binder_ioctl_done" not in (t / "trace").read_text()  # the top buffer is separate
        # A reader blocked on the instance's trace_pipe gets end-of-file when the instance goes.
        fd = os.open(inst / "trace_pipe", os.O_RDONLY)
        assert b"tracing_mark_write: hello" in os.read(fd, 65536)  # what is there, first
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(os.read(fd, 4096)))
        reader.start()
        assert select.select([], [], [], 0.3) == ([], [], [])
    finally:
        os.rmdir(inst)
    reader.join(10)
    os.close(fd)
    assert got == [b""]
    assert not inst.exists()


def test_trace_pipe_raw_is_ring_buffer_pages(vbinder_mount: Path) -> None:
    """per_cpu/cpu0/trace_pipe_raw: the same records as pages; saved_cmdlines/saved_tgids name them."""
    t = vbinder_mount / "sys/kernel/tracing"
    _write(t / "events/binder/enable", "1")
    _version(vbinder_mount)
    text = [x for x in (t / "trace").read_text().splitlines() if not x.startswith("#")]
    fd = os.open(t / "per_cpu/cpu0/trace_pipe_raw", os.O_RDONLY | os.O_NONBLOCK)
    try:
        pages = os.read(fd, 65536)
        with pytest.raises(BlockingIOError):
            os.read(fd, 65536)  # consumed
    finally:
        os.close(fd)
    assert len(pages) % tr.RAW_PAGE == 0 and pages
    comms = {int(a): b for a, b in (x.split(" ", 1) for x in (t / "saved_cmdlines").read_text().splitlines())}
    tgids = {int(a): int(b) for a, b in (x.split() for x in (t / "saved_tgids").read_text().splitlines())}
    me = threading.get_native_id()
    assert tgids[me] == os.getpid() and comms[me]
    recs = tr.parse_raw(pages, tgids)
    assert [tr.format_line(r, comms) for r in recs] == text  # the text, to the microsecond
    assert sorted(os.listdir(t / "per_cpu")) == sorted(f"cpu{i}" for i in range(os.cpu_count() or 1))
