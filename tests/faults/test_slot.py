"""The request slot through a real mount (docs/abi-slot.md): what the daemon refuses, a request run
once, large payloads that cross no FUSE request, and the daemon's fds back where they were.

tests/faults/test_chained.py counts the requests of small calls through the slot, and
tests/faults/test_signals.py interrupts and kills callers whose requests go by the slot.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.driver.harness import Client, FdFile
from tests.faults.support import FaultDaemon, assert_gone, kill_all, read_line, wait_debugfs_proc_gone
from tests.faults.test_chained import ask, peer, requests
from tests.faults.test_fds import Channel, _kmsg, daemon_fds, fd_server, files_handle, held, wait_for  # noqa: F401 - fd_server: a fixture
from tests.support import fuse_usable
from vbinder import abi, fdabi, uapi

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

REGION = 65536


def memfd(size: int, seal: bool = True) -> int:
    fd = os.memfd_create("test-slot", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if seal:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fdabi.SLOT_SEALS)
    return fd


def register(ch: Channel, fd: int, region: int = REGION, flags: int = 0) -> int:
    """Send a SLOT record with ``fd``; VBINDER_SLOT's answer (the region, or -errno)."""
    ch.sock.sendmsg([fdabi.SLOT.pack(fdabi.SLOT_MAGIC, flags, region)],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    return answer(ch.c)


def answer(c: Client) -> int:
    f = c.ioctl(fdabi.VBINDER_SLOT, bytes(fdabi.SLOT_ARG.size))
    return f.code if f.code < 0 else int(fdabi.SLOT_ARG.unpack(f.arg)[0])


class SlotFile(FdFile):
    """A device file whose requests, once ``slot`` is set, go by the slot's region ``start``."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.slot = -1
        self.start = 0
        self.seq = 0
        self.frame: tuple[int, bytes] | None = None
        self.stubs = 0

    def write(self, offset: int, data: bytes) -> int:
        if self.slot < 0:
            return super().write(offset, data)
        self.frame = (offset, data)
        return len(data)

    def read(self, offset: int, size: int) -> bytes:
        if self.frame is None:
            return super().read(offset, size)
        key, frame = self.frame
        self.frame = None
        self.seq += 1
        os.pwrite(self.slot, fdabi.SLOT_SEQ.pack(self.seq) + frame, self.start)
        head = os.pread(self.fd, 16384, fdabi.slot_offset(key, self.start))
        if head[:4] == fdabi.STUB_MAGIC:
            self.stubs += 1
            total = abi.REPLY_HEADER.unpack_from(head)[4]
            return os.pread(self.slot, total, self.start + 8)
        total = abi.reply_total(head)
        while len(head) < total:
            head += os.pread(self.fd, total - len(head), key + len(head))
        return head


def slot_pread(c: Client, start: int, size: int = 16384) -> bytes:
    return os.pread(c.file.fd, size, fdabi.slot_offset(abi.key(c.pid), start))  # type: ignore[union-attr]


@pytest.mark.usefixtures("fd_server")
def test_files_the_daemon_refuses(fault_daemon: FaultDaemon) -> None:
    """Only a sealed shared-memory file of whole regions, within the bounds, becomes a slot; a
    refusal is logged, costs the daemon no fd, and a good file is still taken after it."""
    base = daemon_fds(fault_daemon)
    c = Client(None, threading.get_native_id(), file=FdFile(fault_daemon.device))
    opened: list[int] = []
    try:
        features = fdabi.FEATURES.unpack(c.ioctl(fdabi.VBINDER_FEATURES, bytes(8)).arg)[0]
        assert features & fdabi.FEATURE_SLOT and features & fdabi.FEATURE_FDS
        assert answer(c) == -errno.EOPNOTSUPP  # no fd channel yet
        ch = Channel(fault_daemon.device, c)
        assert answer(c) == -errno.ENOENT  # no SLOT record yet
        r, w = os.pipe()
        opened += [r, w]
        tmp = os.open(fault_daemon.mountpoint.parent, os.O_TMPFILE | os.O_RDWR, 0o600)
        opened.append(tmp)
        os.ftruncate(tmp, 4 * REGION)
        for fd, region, flags in [
            (r, REGION, 0),  # a pipe: reading it could block the daemon
            (tmp, REGION, 0),  # a file opened on a file system (not sealed)
            (memfd(4 * REGION, seal=False), REGION, 0),  # may shrink under the daemon
            (memfd(4 * REGION), 1000, 0),  # a region that is not whole pages
            (memfd(4 * REGION + 4096), REGION, 0),  # not whole regions
            (memfd(4 * REGION), 16 << 20, 0),  # a region past 8 MiB
            (memfd(fdabi.SLOT_MAX_SIZE + REGION), REGION, 0),  # past 64 MiB
            (memfd(4 * REGION), REGION, 1),  # unknown flags
        ]:
            if fd not in opened:
                opened.append(fd)
            assert register(ch, fd, region, flags) == -errno.EINVAL, (fd, region, flags)
        assert daemon_fds(fault_daemon) == base + 1  # the channel; nothing of the refused files
        good = memfd(4 * REGION)
        opened.append(good)
        assert register(ch, good, REGION) == REGION
        assert register(ch, memfd(4 * REGION), REGION) == -errno.EBUSY  # one slot per open file
        assert daemon_fds(fault_daemon) == base + 2
        assert "request slot refused" in _kmsg(fault_daemon.mountpoint)
        ch.close()
    finally:
        c.file.release()
        for fd in opened:
            os.close(fd)
    assert wait_for(lambda: daemon_fds(fault_daemon) == base), (base, daemon_fds(fault_daemon))


@pytest.mark.usefixtures("fd_server")
def test_a_slot_request_runs_once_and_a_refused_one_not_at_all(fault_daemon: FaultDaemon) -> None:
    """A slot pread runs its region's request; the same number again only reads (the retry after
    EINTR); a bad offset or frame fails the pread with EINVAL and runs nothing; real calls (a
    transaction and its reply) go through the slot as through pwrite."""
    base = daemon_fds(fault_daemon)
    file = SlotFile(fault_daemon.device)
    c = Client(None, threading.get_native_id(), file=file)
    slot = memfd(2 * REGION)
    try:
        c.mmap()
        ch = Channel(fault_daemon.device, c)
        assert register(ch, slot) == REGION

        def put(seq: int, frame: bytes, start: int = 0) -> None:
            os.pwrite(slot, fdabi.SLOT_SEQ.pack(seq) + frame, start)

        put(1, abi.encode_request(uapi.BINDER_VERSION, bytes(4)))
        f = abi.decode_reply(slot_pread(c, 0))
        assert (f.code, uapi.VERSION.unpack(f.arg)[0]) == (0, 8)
        with pytest.raises(OSError) as e:  # number 1 ran: this is a read at pos 0, with nothing to read
            slot_pread(c, 0)
        assert e.value.errno == errno.ENOMSG
        put(2, abi.encode_request(uapi.BINDER_VERSION, bytes(4)), REGION)
        for start in (8, REGION + 4096, 2 * REGION, 1 << 30):  # not a region of the slot
            with pytest.raises(OSError) as e:
                slot_pread(c, start)
            assert e.value.errno == errno.EINVAL, start
        head = abi.HEADER.pack(abi.REQUEST_MAGIC, uapi.BINDER_VERSION, 4, 0, REGION)  # longer than a region
        for seq, frame in [(3, b"garbage" * 10), (4, head), (5, b"")]:
            put(seq, frame)
            with pytest.raises(OSError) as e:
                slot_pread(c, 0)
            assert e.value.errno == errno.EINVAL, frame[:8]
        f = abi.decode_reply(slot_pread(c, REGION))  # region 1 was not touched by the refusals
        assert f.code == 0
        kmsg = _kmsg(fault_daemon.mountpoint)
        assert "is not a region of the slot" in kmsg and "malformed frame in the slot" in kmsg
        # Real calls, each request by the slot (SlotFile), the thread state unharmed by the above.
        file.slot = slot
        assert files_handle(c) > 0  # a call, its reply, BC_ACQUIRE and BC_FREE_BUFFER
        assert files_handle(c) > 0
        assert file.seq == 4 and file.stubs == 0
        ch.close()
    finally:
        c.file.release()
        os.close(slot)
    assert wait_for(lambda: daemon_fds(fault_daemon) == base and held(fault_daemon) == (0, 0))


@pytest.mark.parametrize("length", [32 * 1024, (1 << 20) // 2 - 40 * 1024], ids=["64KiB", "944KiB"])
def test_large_payloads_cross_no_fuse_request(fault_daemon: FaultDaemon, tmp_path: Path, length: int) -> None:
    """Echoes of 64 KiB and about 1 MiB: by the slot (the default for them) each side takes one
    FUSE request a call, the payload and the reply going by the slot's file; by pwrite and pread
    (VBINDER_SLOT=0) several. The echoed text is checked by the client."""
    counts = {}
    faults = {}
    for slot in (True, False):
        server = peer("server", fault_daemon.device, slot=None if slot else False)
        client = None
        try:
            assert read_line(server).startswith("ready")
            client = peer("client", fault_daemon.device, slot=None if slot else False)
            assert read_line(client).startswith("ready")
            assert ask(client, f"calls 2 {length}").split() == ["done", "2"]  # warm
            s0, c0 = requests(fault_daemon, server.pid), requests(fault_daemon, client.pid)
            f0 = minor_faults(fault_daemon.pid)
            assert ask(client, f"calls 10 {length}").split() == ["done", "10"]
            s1, c1 = requests(fault_daemon, server.pid), requests(fault_daemon, client.pid)
            counts[slot] = ((s1 - s0) / 10, (c1 - c0) / 10)
            faults[slot] = (minor_faults(fault_daemon.pid) - f0) / 10
            ask(client, "exit")
            assert_gone(client)
        finally:
            kill_all(server, *([client] if client else []))
        wait_debugfs_proc_gone(fault_daemon.mountpoint, server.pid)  # the next server may be the manager
    srv, cli = counts[True]
    assert cli == pytest.approx(1.0, abs=0.05), counts
    assert srv <= 1.2, counts  # (the server's next read: its wait for the first call is a plain pread)
    assert counts[False][1] >= 3 and counts[False][0] >= 3, counts
    # The daemon keeps its large buffers in the heap (vbinder/malloc.py): a call's copies of the
    # payload (2 length bytes a character, there and back) take no fresh pages, one fault each.
    assert faults[True] < length * 4 / 4096 / 4, faults


def minor_faults(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[7])  # field 10, minflt


FORKER = """
import os, sys
sys.path.insert(0, {peers!r})
from chain_peers import ECHO, EchoProxy
from vbinder_client import ProcessState
ps = ProcessState.init(sys.argv[1])
proxy = EchoProxy(ps.context_proxy())
text = "x" * 32768  # 64 KiB: by the slot
def once():
    assert proxy.call(ECHO, lambda p: p.write_string16(text)).read_string16() == text
once()
print("parent", os.getpid(), flush=True)
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    print("child", os.getpid(), flush=True)
    sys.stdin.readline()
    once()
    print("child done", flush=True)
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
once()  # (the child's close flushed the proc, as 6.1's binder_flush: this call's read returns once early)
print("parent again", flush=True)
sys.stdin.readline()
once()
print("parent done", flush=True)
"""


def test_a_forked_child_leaves_the_parents_slot_alone(fault_daemon: FaultDaemon) -> None:
    """A child forked from a process with a slot shares its file: its calls go by pwrite, as
    version 1 (3 or more requests for a 64 KiB echo), and the parent's by the slot (1)."""
    server = peer("server", fault_daemon.device, slot=None)
    p = None
    try:
        assert read_line(server).startswith("ready")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        env.pop("VBINDER_SLOT", None)
        p = subprocess.Popen([sys.executable, "-c", FORKER.format(peers=str(Path(__file__).resolve().parent)),
                              fault_daemon.device], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        parent = int(read_line(p).split()[1])
        assert p.stdin is not None
        p.stdin.write("\n")
        p.stdin.flush()
        assert read_line(p).startswith("child")
        c0 = requests(fault_daemon, parent)  # (counted by the file's opener: the child's go there too)
        p.stdin.write("\n")
        p.stdin.flush()
        assert read_line(p) == "child done\n"
        assert requests(fault_daemon, parent) - c0 >= 3
        assert read_line(p) == "parent again\n"
        r0 = requests(fault_daemon, parent)
        p.stdin.write("\n")
        p.stdin.flush()
        assert read_line(p) == "parent done\n"
        assert requests(fault_daemon, parent) - r0 == 1
        assert p.wait(10) == 0
    finally:
        kill_all(server, *([p] if p is not None else []))
