"""File descriptors through a real mount: nothing leaks, kills mid-call, hostile fd-channel peers.

The fd channel (docs/abi-fds.md) is a socket beside each open device file; whatever its peers
do, the daemon's open fds come back to where they were once they are gone, the files it holds
(the counting daemon's ``fd_files``, ``fd_staged``) go back to none, and every other client is
served. The conformance scenarios (tests/conformance/scenarios_fds.py) check the behaviour
against the kernel; these check what only vbinder has: its fds, its socket, its bounds.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.driver.harness import Client, FdFile, cmd
from tests.faults.support import HERE, FaultDaemon, assert_gone, kill_all, read_line
from tests.support import daemon_env, fuse_usable
from vbinder import fdabi, uapi
from vbinder.fs import fd_channel

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

FD_PEERS = HERE / "fd_peers.py"
FD = uapi.FD_OBJECT
CALLS = int(os.environ.get("VBINDER_FD_CALLS", "10000"))


def spawn(role: str, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    err = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - given to Popen
    try:
        return subprocess.Popen([sys.executable, str(FD_PEERS), role, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True, env=daemon_env())
    finally:
        if log is not None:
            err.close()  # type: ignore[union-attr]


@pytest.fixture
def fd_server(fault_daemon: FaultDaemon, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    p = spawn("server", fault_daemon.device, log=tmp_path / "fdserver.err")
    try:
        line = read_line(p)
        assert line.startswith("ready"), (tmp_path / "fdserver.err").read_text()
        yield p
    finally:
        kill_all(p)


def held(daemon: FaultDaemon) -> tuple[int, int]:
    c = daemon.counts()
    return c["fd_files"], c["fd_staged"]


def daemon_fds(daemon: FaultDaemon) -> int:
    return int(daemon.counts()["daemon_fds"])


def wait_for(pred: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- nothing leaks ---------------------------------------------------------------------------------


def test_fd_calls_leave_no_fd_anywhere(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str],
                                       tmp_path: Path) -> None:
    """CALLS (10,000) calls that each pass an fd, every tenth also getting one back: the client's,
    the service's and the daemon's open fds are where they were."""
    base = daemon_fds(fault_daemon)
    c = spawn("client", fault_daemon.device, str(CALLS), log=tmp_path / "client.err")
    try:
        first = read_line(c, 60).split()
        assert first[0] == "fds", (tmp_path / "client.err").read_text()
        last = read_line(c, 1200).split()
        assert last == first, f"client and service fds before and after {CALLS} calls: {first} {last}"
        assert read_line(c) == "done\n"
        assert daemon_fds(fault_daemon) == base + 2  # the client's fd channel and request slot, nothing else
        assert held(fault_daemon) == (0, 0)
        c.stdin.close()  # type: ignore[union-attr]
        assert_gone(c)
    finally:
        kill_all(c)
    assert wait_for(lambda: daemon_fds(fault_daemon) == base), (base, daemon_fds(fault_daemon))


# -- kills in the middle of an fd-carrying call --------------------------------------------------


def test_caller_killed_while_the_service_holds_its_fd(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str],
                                                      tmp_path: Path) -> None:
    base = daemon_fds(fault_daemon)
    counter = spawn("counter", fault_daemon.device, log=tmp_path / "counter.err")
    try:
        service_fds = int(read_line(counter).split()[1])
        holder = spawn("holder", fault_daemon.device, log=tmp_path / "holder.err")
        assert read_line(holder) == "holding\n", (tmp_path / "holder.err").read_text()
        holder.kill()
        assert_gone(holder)
        rel = spawn("release", fault_daemon.device, log=tmp_path / "release.err")
        assert read_line(rel) == "released\n"  # HOLD replies with an fd to a caller that is gone
        assert_gone(rel)
        counter.stdin.write("\n")  # type: ignore[union-attr]
        counter.stdin.flush()  # type: ignore[union-attr]
        assert wait_for(lambda: held(fault_daemon) == (0, 0))
        assert int(read_line(counter)) == service_fds  # the service kept none of the dead caller's fds
    finally:
        kill_all(counter)
    assert wait_for(lambda: daemon_fds(fault_daemon) == base), (base, daemon_fds(fault_daemon))


def test_ctrl_c_in_an_fd_call_then_its_late_reply(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str],
                                                   tmp_path: Path) -> None:
    """Ctrl-C ends a call that passed an fd (done or not started: the service has it); its reply,
    with an fd, comes later and is dropped by the client's next call, fd and all."""
    import signal

    c = spawn("interrupted", fault_daemon.device, log=tmp_path / "interrupted.err")
    try:
        assert read_line(c) == "holding\n", (tmp_path / "interrupted.err").read_text()
        c.send_signal(signal.SIGINT)
        assert read_line(c) == "interrupted\n"
        rel = spawn("release", fault_daemon.device, log=tmp_path / "release.err")
        assert read_line(rel) == "released\n"
        assert_gone(rel)
        c.stdin.write("\n")  # type: ignore[union-attr]
        c.stdin.flush()  # type: ignore[union-attr]
        assert read_line(c) == "fds 0\n"
        assert held(fault_daemon) == (0, 0)
    finally:
        kill_all(c)


def test_service_killed_with_fd_calls_queued(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str],
                                             tmp_path: Path) -> None:
    """One-way calls with fds queued behind a one-way call the service is busy with, then the
    service is killed: the files the queued transactions held are closed with them."""
    from vbinder_client import Parcel

    c = Client(None, threading.get_native_id(), file=FdFile(fault_daemon.device))
    ch = Channel(fault_daemon.device, c)
    try:
        c.mmap()
        handle = files_handle(c)
        r, w = os.pipe()
        for code in (3, 1, 1, 1, 1):  # HOLD (busy until released), then WRITEs: queued on the node
            p = Parcel()
            p.write_interface_token("vbinder.test.IFiles")
            p.write_file_descriptor(w)
            p.write_string16("x")
            call = c.bc_transaction(handle, code, p.data(), objects=tuple(p.objects()),
                                    flags=uapi.TF_ONE_WAY | uapi.TF_ACCEPT_FDS)
            got = ch.call(call, [w])
            assert got.names == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"], got.names
        assert os.read(r, 8) == b"holding\n"
        assert held(fault_daemon) == (4, 0)
        fd_server.kill()
        assert_gone(fd_server)
        assert wait_for(lambda: held(fault_daemon) == (0, 0))
        os.close(w)
        assert os.read(r, 10) == b""  # nobody holds the write end any more: end of file
        os.close(r)
    finally:
        ch.close()
        c.file.release()


def files_handle(c: Client) -> int:
    """The handle of fd_peers' Files object (whose node accepts fds), from the hub at handle 0."""
    hub = c.write_read(c.bc_transaction(0, 1, b"", flags=uapi.TF_ACCEPT_FDS), 256)
    reply = next(b for b in hub.brs if b.cmd == uapi.BR_REPLY)
    handle = int(uapi.FLAT_BINDER_OBJECT.unpack(c.read_mem(reply.tr[8], 24))[2])
    c.write_read(cmd(uapi.BC_ACQUIRE, handle) + cmd(uapi.BC_FREE_BUFFER, reply.tr[8], fmt="Q"), 0)
    return handle


# -- hostile peers of the fd channel -------------------------------------------------------------


class Channel:
    """This process's fd channel for a raw Client, spoken by hand (as a hostile client would)."""

    def __init__(self, device: str, c: Client, hello: bool = True) -> None:
        self.c = c
        f = c.ioctl(fdabi.VBINDER_FD_CHANNEL, bytes(fdabi.CHANNEL.size))
        assert f.code == 0, f.code
        self.token, name = fdabi.CHANNEL.unpack(f.arg)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(10)
        self.sock.connect(b"\0" + name.rstrip(b"\0"))
        self.seq = 0
        if hello:
            assert self.hello(self.token) == 0

    def hello(self, token: bytes) -> int:
        self.sock.send(fdabi.HELLO.pack(fdabi.HELLO_MAGIC, fdabi.VERSION, token))
        return int(fdabi.ACK.unpack(self.sock.recv(64))[1])

    def stage(self, fds: list[int], tid: int | None = None, seq: int | None = None, first: bool = True) -> None:
        import array

        record = fdabi.STAGE.pack(fdabi.STAGE_MAGIC, fdabi.STAGE_FIRST if first else 0,
                                  self.c.pid if tid is None else tid, self.seq if seq is None else seq,
                                  len(fds)) + fdabi.encode_numbers(fds)
        self.sock.sendmsg([record], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])

    def call(self, write: bytes, fds: list[int], read_size: int = 256) -> Any:
        """``write`` as VBINDER_WRITE_READ_FDS, its fds staged first (if any)."""
        self.seq += 1
        if fds:
            self.stage(fds)
        c = self.c
        waddr = c.put(write)
        raddr = 0x0F00_0000 + c.pid * 0x1000
        arg = uapi.WRITE_READ.pack(len(write), 0, waddr, read_size, 0, raddr) + struct.pack("<II", self.seq, 0)
        c.request(fdabi.VBINDER_WRITE_READ_FDS, arg)
        return c._wr(c.reply(), raddr, 0)

    def close(self) -> None:
        self.sock.close()


def test_bad_hellos_are_refused_and_cost_nothing(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str],
                                                 tmp_path: Path) -> None:
    base = daemon_fds(fault_daemon)
    c = Client(None, threading.get_native_id(), file=FdFile(fault_daemon.device))
    try:
        name = fdabi.CHANNEL.unpack(c.ioctl(fdabi.VBINDER_FD_CHANNEL, bytes(fdabi.CHANNEL.size)).arg)[1]
        addr = b"\0" + name.rstrip(b"\0")

        def attempt(payload: bytes, fds: list[int] | None = None) -> int | None:
            import array

            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(10)
            s.connect(addr)
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            s.sendmsg([payload], anc)
            ack = s.recv(64)
            s.close()
            return fdabi.ACK.unpack(ack)[1] if len(ack) == fdabi.ACK.size else None

        good = fdabi.HELLO.pack(fdabi.HELLO_MAGIC, fdabi.VERSION, b"x" * fdabi.TOKEN_SIZE)
        assert attempt(b"garbage") == -errno.EINVAL
        assert attempt(good) == -errno.EINVAL  # no such token
        assert attempt(good[:-1]) == -errno.EINVAL
        r, w = os.pipe()
        assert attempt(good, [r, w, r]) == -errno.EINVAL  # its fds are closed too
        os.close(r)
        os.close(w)
        # a token this file got, presented by another process (a child sharing the open file)
        token = fdabi.CHANNEL.unpack(c.ioctl(fdabi.VBINDER_FD_CHANNEL, bytes(fdabi.CHANNEL.size)).arg)[0]
        child = subprocess.run([sys.executable, "-c", CHILD_HELLO, addr.hex(), token.hex()], capture_output=True,
                               text=True, timeout=30)
        assert child.stdout.strip() == str(-errno.EPERM), child.stderr
        # connections that never say HELLO: at most 64 wait, for 5 s each
        silent = []
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(addr)
            silent.append(s)
        assert wait_for(lambda: fault_daemon.counts()["fd_waiting_hello"] <= fd_channel.MAX_WAITING_HELLO)
        assert wait_for(lambda: fault_daemon.counts()["fd_waiting_hello"] == 0, fd_channel.HELLO_TIMEOUT + 5)
        for s in silent:
            s.close()
        # the real owner still gets its channel, once
        ch = Channel(fault_daemon.device, c)
        assert c.ioctl(fdabi.VBINDER_FD_CHANNEL, bytes(fdabi.CHANNEL.size)).code == -errno.EBUSY
        ch.close()
    finally:
        c.file.release()
    assert wait_for(lambda: daemon_fds(fault_daemon) == base), (base, daemon_fds(fault_daemon))


CHILD_HELLO = """
import socket, struct, sys
from vbinder import fdabi
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(10)
s.connect(bytes.fromhex(sys.argv[1]))
s.send(fdabi.HELLO.pack(fdabi.HELLO_MAGIC, fdabi.VERSION, bytes.fromhex(sys.argv[2])))
print(fdabi.ACK.unpack(s.recv(64))[1])
"""


def test_malformed_records_close_the_channel_and_its_fds(fault_daemon: FaultDaemon,
                                                         fd_server: subprocess.Popen[str]) -> None:
    base = daemon_fds(fault_daemon)
    c = Client(None, threading.get_native_id(), file=FdFile(fault_daemon.device))
    try:
        c.mmap()
        handle = files_handle(c)
        for bad in (b"x", struct.pack("<I", 0x12345678) + b"\0" * 20,
                    fdabi.STAGE.pack(fdabi.STAGE_MAGIC, 1, c.pid, 1, 2) + fdabi.encode_numbers([5, 6])):
            ch = Channel(fault_daemon.device, c)
            r, w = os.pipe()
            import array

            ch.sock.sendmsg([bad], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))])
            assert ch.sock.recv(64) == b""  # the daemon closed it
            assert held(fault_daemon) == (0, 0)
            # an fd call without a usable channel fails as an fd the sender does not have
            obj = FD.pack(uapi.BINDER_TYPE_FD, 0, w, 0)
            got = ch.call(c.bc_transaction(handle, 1, obj, objects=(0,), flags=uapi.TF_ACCEPT_FDS), [])
            assert got.names == ["BR_NOOP", "BR_FAILED_REPLY"]
            ee = uapi.EXTENDED_ERROR.unpack(c.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, bytes(12)).arg)
            assert ee[1:] == (uapi.BR_FAILED_REPLY, -errno.EBADF)
            os.close(r)
            os.close(w)
            ch.close()
            c.file.release()
            c = Client(None, threading.get_native_id(), file=FdFile(fault_daemon.device))
            c.mmap()
            handle = files_handle(c)
        assert "fd channel closed" in _kmsg(fault_daemon.mountpoint)
    finally:
        c.file.release()
    assert wait_for(lambda: daemon_fds(fault_daemon) == base and held(fault_daemon) == (0, 0))


def test_staging_without_calls_is_bounded(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str]) -> None:
    """Sets staged for requests that never come (many threads' worth): held up to the bound per
    process, then refused; all closed with the channel."""
    base = daemon_fds(fault_daemon)
    c = Client(None, threading.get_native_id(), file=FdFile(fault_daemon.device))
    ch = Channel(fault_daemon.device, c)
    try:
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(fdabi.MAX_FDS)]
        for tid in range(1, 30):
            ch.stage(fds, tid=tid, seq=1)
        assert wait_for(lambda: held(fault_daemon)[1] > 0)
        assert held(fault_daemon)[1] <= fd_channel.MAX_HELD_PER_PROC
        for fd in fds:
            os.close(fd)
        # a staged set is only taken by its own request: a plain BINDER_WRITE_READ takes none
        r, w = os.pipe()
        obj = FD.pack(uapi.BINDER_TYPE_FD, 0, w, 0)
        ch.stage([w], seq=99)
        got = c.write_read(c.bc_transaction(0, 1, obj, objects=(0,), flags=uapi.TF_ACCEPT_FDS), 256)
        assert got.names == ["BR_NOOP", "BR_FAILED_REPLY"]
        os.close(r)
        os.close(w)
        assert fault_daemon.counts()["daemon_fds"] > base
    finally:
        ch.close()
        c.file.release()
    assert wait_for(lambda: daemon_fds(fault_daemon) == base and held(fault_daemon) == (0, 0))


def test_a_receiver_that_never_collects_its_fds(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str],
                                                tmp_path: Path) -> None:
    """A process whose channel is bound but never read: fds sent to it pile up in its socket (not
    in the daemon) until it is full; then deliveries fail as a full fd table fails them in 6.1
    (the sender gets BR_FAILED_REPLY), and the daemon holds nothing."""
    from vbinder_client import Parcel

    base = daemon_fds(fault_daemon)
    sink = Client(None, threading.get_native_id(), file=FdFile(fault_daemon.device))
    ch = Channel(fault_daemon.device, sink)
    try:
        sink.mmap()
        # it calls PIPE again and again: each reply carries an fd it never takes off its socket
        handle = files_handle(sink)
        p = Parcel()
        p.write_interface_token("vbinder.test.IFiles")
        p.write_string16("x")
        answers = []
        for _ in range(3000):
            got = sink.write_read(sink.bc_transaction(handle, 2, p.data(), flags=uapi.TF_ACCEPT_FDS), 256)
            for b in got.brs:
                if b.cmd == uapi.BR_REPLY:
                    sink.write_read(cmd(uapi.BC_FREE_BUFFER, b.tr[8], fmt="Q"), 0)
            answers += [b.name for b in got.brs if b.cmd in (uapi.BR_REPLY, uapi.BR_FAILED_REPLY)]
            if answers[-1] == "BR_FAILED_REPLY":
                break
        assert answers[-1] == "BR_FAILED_REPLY" and answers.count("BR_REPLY") >= 100, answers[-3:]
        assert held(fault_daemon) == (0, 0)
        assert daemon_fds(fault_daemon) <= base + 2  # its channel and slot; none of the fds it did not take
        assert "reply transaction" in _kmsg(fault_daemon.mountpoint)
        # and a service that other clients call goes on as before
        ok = spawn("client", fault_daemon.device, "20", log=tmp_path / "client.err")
        try:
            assert read_line(ok, 60).startswith("fds")
            assert read_line(ok, 60).startswith("fds")
        finally:
            kill_all(ok)
    finally:
        ch.close()
        sink.file.release()
    assert wait_for(lambda: daemon_fds(fault_daemon) == base)


def _kmsg(mnt: Path) -> str:
    fd = os.open(mnt / "proc" / "kmsg", os.O_RDONLY | os.O_NONBLOCK)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(fd)
    return out.decode(errors="replace")


def test_a_client_that_cannot_reach_the_channel_goes_on_without_it(fault_daemon: FaultDaemon,
                                                                    fd_server: subprocess.Popen[str]) -> None:
    """A process in another network namespace cannot reach the daemon's abstract socket: it says
    so and goes on as a client of ABI version 1 (calls work; an fd it sends is refused)."""
    import shutil

    if shutil.which("unshare") is None or subprocess.run(["unshare", "--net", "true"]).returncode != 0:
        pytest.skip("cannot make a network namespace here (unshare --net needs root)")
    code = f"""
import os, sys
sys.path.insert(0, {str(FD_PEERS.parent)!r})
import fd_peers
from vbinder_client import FailedTransactionError
svc = fd_peers.files({fault_daemon.device!r})
print("channel", svc.binder.process.transport.fds)
print("count", svc.count() > 0)
r, w = os.pipe()
try:
    svc.write(w, "x")
except FailedTransactionError:
    print("fd refused")
"""
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", code], capture_output=True, text=True,
                       env=daemon_env(), timeout=60)
    assert r.stdout.splitlines() == ["channel None", "count True", "fd refused"], r.stderr
    assert "file descriptors cannot be passed" in r.stderr


@pytest.mark.mount_options("--no-ratelimit")  # every line (6.1 would keep 10 per 5 s)
def test_fd_fixup_lines_name_the_receivers_fds(fault_daemon: FaultDaemon, fd_server: subprocess.Popen[str],
                                               tmp_path: Path) -> None:
    """With debug_mask TRANSACTION, 6.1 prints "fd fixup txn ID fd N" with the receiver's new fd:
    here once the receiver reported the numbers it installed (docs/decisions.md)."""
    import re

    mask = fault_daemon.mountpoint / "sys" / "module" / "binder" / "parameters" / "debug_mask"
    mask.write_text(str(0x207))
    tracing = fault_daemon.mountpoint / "sys" / "kernel" / "tracing"
    for event in ("binder_transaction_fd_send", "binder_transaction_fd_recv"):
        (tracing / "events" / "binder" / event / "enable").write_text("1")
    try:
        c = spawn("client", fault_daemon.device, "1", log=tmp_path / "client.err")
        try:
            assert read_line(c, 60).startswith("fds")
            assert read_line(c, 60).startswith("fds")
        finally:
            kill_all(c)
    finally:
        mask.write_text("7")
    lines = re.findall(r"binder: fd fixup txn (\d+) fd (\d+)", _kmsg(fault_daemon.mountpoint))
    # 21 calls passed the service an fd, 3 got one back: each delivery's line, with a real fd number
    assert len(lines) == 24, lines
    assert all(int(fd) > 2 for _txn, fd in lines)
    # and the tracepoints: fd_send as the sender's fd is taken, fd_recv once the receiver says
    trace = (tracing / "trace").read_text()
    sent = re.findall(r"binder_transaction_fd_send: transaction=(\d+) src_fd=(\d+) offset=(\d+)", trace)
    received = re.findall(r"binder_transaction_fd_recv: transaction=(\d+) dest_fd=(\d+) offset=(\d+)", trace)
    assert len(sent) == len(received) == 24, trace[-2000:]
    assert sorted((t, fd) for t, fd, _o in received) == sorted(lines)
    assert sorted((t, o) for t, _fd, o in sent) == sorted((t, o) for t, _fd, o in received)
