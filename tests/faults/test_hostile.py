"""Hostile or broken input through a real mount (issue "Nothing stuck, nothing lost").

Each case gets a clear error for its caller only: EINVAL for a malformed frame (in any split),
EFAULT where the kernel's copy_from_user would fault (a pointer outside the request's
segments), the kernel's BR_FAILED_REPLY and errno for protocol misuse; refusals are logged when
the debug mask asks (USER_ERROR); and the daemon goes on serving everyone else. (The random
version is tests/faults/test_fuzz_mount.py.)
"""

from __future__ import annotations

import errno
import os
import struct
import threading
from pathlib import Path

import pytest

from tests.driver.harness import Client, FdFile, cmd
from tests.faults.conftest import Server
from tests.faults.support import FaultDaemon, kill_all, read_line, spawn_peer, wait_for_baseline
from tests.fs.fsutil import ioctl, key
from tests.support import fuse_usable
from vbinder import abi, uapi

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

MASK = "sys/module/binder/parameters/debug_mask"
NO_TID = 1 << 22  # above pid_max: no thread has it


def _kmsg(mnt: Path) -> str:
    fd = os.open(mnt / "proc" / "kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, 1 << 20).decode()
    except BlockingIOError:
        return ""
    finally:
        os.close(fd)


def _client(daemon: FaultDaemon) -> Client:
    c = Client(None, threading.get_native_id(), file=FdFile(daemon.device))
    c.mmap()
    return c


def test_pointers_outside_the_segments_fault(fault_daemon: FaultDaemon, fault_server: Server) -> None:
    c = _client(fault_daemon)
    try:
        # the write buffer itself is not in any segment: the ioctl fails with EFAULT
        arg = uapi.WRITE_READ.pack(8, 0, 0x5555_0000, 0, 0, 0)
        f = c.ioctl(uapi.BINDER_WRITE_READ, arg)
        assert f.code == -errno.EFAULT and uapi.WRITE_READ.unpack(f.arg)[1] == 0
        # a transaction whose data, then offsets, lie outside the segments: BR_FAILED_REPLY, -EFAULT
        for data_ptr, offsets_size, offsets_ptr in ((0x6666_0000, 0, 0), (None, 8, 0x6666_0000)):
            dptr = c.put(b"x" * 16) if data_ptr is None else data_ptr
            tr = uapi.TRANSACTION_DATA.pack(0, 0, 1, 0, 0, 0, 16, offsets_size, dptr, offsets_ptr)
            r = c.write_read(struct.pack("<I", uapi.BC_TRANSACTION) + tr, 256)
            assert r.names == ["BR_NOOP", "BR_FAILED_REPLY"], r.names
            ee = uapi.EXTENDED_ERROR.unpack(c.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, bytes(12)).arg)
            assert ee[1:] == (uapi.BR_FAILED_REPLY, -errno.EFAULT)
    finally:
        c.file.release()
    log = _kmsg(fault_daemon.mountpoint)
    assert "got transaction with invalid data ptr" in log and "got transaction with invalid offsets ptr" in log


def test_protocol_misuse_gets_the_kernels_answers(fault_daemon: FaultDaemon, fault_server: Server) -> None:
    c = _client(fault_daemon)
    try:
        # a reply with no transaction to answer: BR_FAILED_REPLY, -EPROTO
        r = c.write_read(c.bc_transaction(0, 0, b"", reply=True), 256)
        assert r.names == ["BR_NOOP", "BR_FAILED_REPLY"], r.names
        ee = uapi.EXTENDED_ERROR.unpack(c.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, bytes(12)).arg)
        assert ee[1:] == (uapi.BR_FAILED_REPLY, -errno.EPROTO)
        # an unknown command, BC_ATTEMPT_ACQUIRE: the ioctl fails with EINVAL
        for bad in (cmd(0x7FFF_0001), cmd(uapi.BC_ATTEMPT_ACQUIRE, 0, 0)):
            r = c.write_read(bad, 0)
            assert r.ret == -errno.EINVAL
        # freeing a buffer that is not ours, refcounts on a handle we do not have: logged, ignored
        r = c.write_read(cmd(uapi.BC_FREE_BUFFER, 0x7000_1234_0000, fmt="Q") + cmd(uapi.BC_ACQUIRE, 42), 0)
        assert r.ret == 0 and r.bwr[1] == 20
        # context manager twice: EBUSY
        assert c.ioctl(uapi.BINDER_SET_CONTEXT_MGR, bytes(4)).code == -errno.EBUSY
        # the same thread still works
        assert c.ioctl(uapi.BINDER_VERSION, bytes(4)).code == 0
    finally:
        c.file.release()
    log = _kmsg(fault_daemon.mountpoint)
    for line in ("got reply transaction with no transaction stack", "unknown command",
                 "BC_FREE_BUFFER u0000700012340000 no match",
                 "refcount change on invalid ref 42"):
        assert line in log, line


def test_malformed_frames_in_any_split(fault_daemon: FaultDaemon) -> None:
    fd = os.open(fault_daemon.device, os.O_RDWR)
    k = key()
    try:
        good = abi.encode_request(uapi.BINDER_VERSION, bytes(4))
        # a good frame, one byte at a time, works
        for i in range(len(good)):
            assert os.pwrite(fd, good[i:i + 1], k + i) == 1
        assert abi.decode_reply(os.pread(fd, 4096, k)).code == 0
        # a bad magic, split anywhere: the chunk that completes the header fails (a frame
        # whose header came whole fails at once)
        junk = b"JUNK" + good[4:]
        for split in (1, 5, 23):
            assert os.pwrite(fd, junk[:split], k) == split
            with pytest.raises(OSError) as e:
                os.pwrite(fd, junk[split:], k + split)
            assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:
            os.pwrite(fd, junk, k)
        assert e.value.errno == errno.EINVAL
        # a chunk out of order fails, and drops the partial frame
        os.pwrite(fd, good[:10], k)
        with pytest.raises(OSError) as e:
            os.pwrite(fd, good[12:], k + 12)
        assert e.value.errno == errno.EINVAL
        # a pread while a frame is half-written fails, and drops it
        os.pwrite(fd, good[:24], k)
        with pytest.raises(OSError) as e:
            os.pread(fd, 4096, k)
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:  # a read at pos > 0 with no reply
            os.pread(fd, 4096, k + 8)
        assert e.value.errno == errno.EINVAL
        assert ioctl(fd, uapi.BINDER_VERSION, bytes(4)).code == 0
    finally:
        os.close(fd)
    assert "vbinder: malformed frame: bad magic" in _kmsg(fault_daemon.mountpoint)
    wait_for_baseline(fault_daemon.mountpoint)


def test_refusals_are_logged_as_the_debug_mask_asks(tmp_path: Path) -> None:
    mnt = tmp_path / "m"
    mnt.mkdir()
    d = FaultDaemon(mnt, tmp_path / "log", "--debug-mask", "0")
    try:
        def garbage() -> None:
            fd = os.open(d.device, os.O_RDWR)
            try:
                with pytest.raises(OSError):
                    os.pwrite(fd, b"garbage, not a frame at all", key())
            finally:
                os.close(fd)

        garbage()
        assert "malformed frame" not in _kmsg(mnt)
        (mnt / MASK).write_text("1\n")  # BINDER_DEBUG_USER_ERROR
        garbage()
        assert "malformed frame" in _kmsg(mnt)
    finally:
        d.stop()


def test_garbage_does_not_disturb_a_call_in_progress(fault_daemon: FaultDaemon, fault_server: Server,
                                                     tmp_path: Path) -> None:
    """One process writes garbage at every key it can think of while another is in a call."""
    caller = spawn_peer("blocked", fault_daemon.device, "500", log=tmp_path / "caller.err")
    try:
        assert read_line(caller) == "calling\n"
        fd = os.open(fault_daemon.device, os.O_RDWR | os.O_NONBLOCK)
        try:
            for tid in (caller.pid, fault_server.pid, threading.get_native_id(), 1):
                for junk in (b"\xff" * 40, abi.encode_request(uapi.BINDER_WRITE_READ, bytes(48))[:30]):
                    try:
                        os.pwrite(fd, junk, abi.key(tid))
                    except OSError as e:
                        assert e.errno in (errno.EINVAL, errno.EBUSY)
        finally:
            os.close(fd)
        assert read_line(caller) == "answered\n", (tmp_path / "caller.err").read_text()
        assert read_line(caller) == "retried 2\n"
        assert caller.wait(10) == 0
    finally:
        kill_all(caller)


def test_a_process_cannot_make_the_daemon_hold_unbounded_memory(fault_daemon: FaultDaemon) -> None:
    """Half-written frames at many keys: at most 64 MiB held per process (then ENOMEM), at most
    1024 keys (then EAGAIN); the process's next complete request still works, others' too."""
    fd = os.open(fault_daemon.device, os.O_RDWR)
    other = os.open(fault_daemon.device, os.O_RDWR)
    big = abi.encode_request(uapi.BINDER_VERSION, bytes(4), [(0x1000, bytes(7 << 20))])
    refused = None
    try:
        for i in range(12):  # 12 x 7 MiB > 64 MiB
            try:
                n = os.pwrite(fd, big[:-8], abi.key(NO_TID + i))
            except OSError as e:
                refused = (i, e.errno)
                break
            if n < len(big) - 8:  # the kernel split the write: the refused chunk makes it short
                refused = (i, errno.ENOMEM)
                break
        assert refused == (9, errno.ENOMEM), refused  # 9 x 7 MiB fit in 64 MiB
        assert ioctl(other, uapi.BINDER_VERSION, bytes(4)).code == 0  # another process's file: fine
        errors = set()
        for i in range(1100):  # a key per (made-up) thread, each with a byte of a frame
            try:
                os.pwrite(fd, b"V", abi.key(NO_TID + 100 + i))
            except OSError as e:
                errors.add(e.errno)
        assert errors == {errno.EAGAIN}, errors
    finally:
        os.close(fd)
        os.close(other)
    log = _kmsg(fault_daemon.mountpoint)
    assert "too many bytes held in frames" in log and "too many threads on one file" in log
