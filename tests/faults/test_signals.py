"""Signals and death of client processes blocked in binder calls (issue "Nothing stuck, nothing lost").

tests/fs/test_fs_mount.py covers a raw reader blocked in a looper read (Ctrl-C, Ctrl-Z, SIGKILL);
these go through vbinder_client calls between real processes and check what the peers see, as
the kernel gives it: BR_DEAD_REPLY to callers of a dead process, BR_DEAD_BINDER to holders of a
death notification, and the dead process's proc, threads, nodes and buffers gone from the driver
(counted by the test daemon, DESIGN.md "Waiting, signals and death").
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.faults.conftest import Server
from tests.faults.support import (
    DEATH_BOUND,
    DEBUGFS,
    FaultDaemon,
    assert_gone,
    kill_all,
    proc_counts,
    read_counts,
    read_line,
    spawn_peer,
    wait_debugfs_proc_gone,
    wait_for_baseline,
)
from tests.fs.fsutil import state, wait_in_fuse
from tests.support import fuse_usable

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

INTERRUPT_BOUND = 2.0  # Ctrl-C raises KeyboardInterrupt (the goal is half a second)


def _wait_for(pred, timeout: float = DEATH_BOUND, what: str = "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"not after {timeout} s: {what}"
        time.sleep(0.02)


@pytest.fixture(params=["pwrite", "slot"])
def requests_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the peers spawned after it send their requests: the default (pwrite for small ones),
    or every request by the request slot (docs/abi-slot.md: EINTR leaves its read phase in flight)."""
    if request.param == "slot":
        monkeypatch.setenv("VBINDER_SLOT", "1")
    return str(request.param)


def _calls(server: Server, who: str) -> list[int]:
    return [int(f[2]) for f in server.lines() if f[0] == "T" and f[1] == who]


def test_ctrl_c_in_a_blocked_call_raises_and_the_thread_can_call_again(
        fault_daemon: FaultDaemon, fault_server: Server, tmp_path: Path, requests_by: str) -> None:
    p = spawn_peer("blocked", fault_daemon.device, "1500", log=tmp_path / "blocked.err")
    try:
        assert read_line(p) == "calling\n", (tmp_path / "blocked.err").read_text()
        _wait_for(lambda: 1 in _calls(fault_server, "blocked"), what="the server got the call")
        wait_in_fuse(p.pid)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        line = read_line(p, 10)
        assert line.startswith("interrupted"), (line, (tmp_path / "blocked.err").read_text())
        took = time.monotonic() - t0
        print(f"Ctrl-C in a blocked call: KeyboardInterrupt after {took * 1000:.0f} ms")
        assert took < INTERRUPT_BOUND
        # The interrupted call's reply is still owed (the thread is still in the call, for the
        # driver): the next call waits for it, then gets its own answer.
        assert read_line(p, 10) == "retried 2\n", (tmp_path / "blocked.err").read_text()
        assert p.wait(10) == 0, (tmp_path / "blocked.err").read_text()
    finally:
        kill_all(p)
    assert _calls(fault_server, "blocked") == [-1, 1, 2]


def test_ctrl_c_in_a_looper_read_then_a_call_then_serving_again(
        fault_daemon: FaultDaemon, fault_server: Server, tmp_path: Path, requests_by: str) -> None:
    """The main thread waits for work in join_thread_pool; Ctrl-C ends the wait (its read-only
    read phase stays in flight), the thread makes a call (which replaces it), then serves."""
    p = spawn_peer("looper", fault_daemon.device, "l", log=tmp_path / "looper.err")
    watcher = None
    try:
        assert read_line(p).startswith("ready"), (tmp_path / "looper.err").read_text()
        wait_in_fuse(p.pid)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert read_line(p, 10) == "interrupted\n", (tmp_path / "looper.err").read_text()
        assert time.monotonic() - t0 < INTERRUPT_BOUND
        assert read_line(p, 10) == "called 7\n", (tmp_path / "looper.err").read_text()
        assert read_line(p, 10) == "serving\n"
        watcher = spawn_peer("watcher", fault_daemon.device, "l", log=tmp_path / "watcher.err")
        assert read_line(watcher) == f"ready {p.pid}\n", (tmp_path / "watcher.err").read_text()
    finally:
        kill_all(p, *([watcher] if watcher else []))


def test_ctrl_c_in_a_services_code_answers_its_caller(
        fault_daemon: FaultDaemon, fault_server: Server, tmp_path: Path, requests_by: str) -> None:
    """Ctrl-C while the main thread runs a service's method: KeyboardInterrupt there, and the
    caller gets an answer at once (a failure status), not after the method would have ended."""
    p = spawn_peer("looper", fault_daemon.device, "l", log=tmp_path / "looper.err")
    caller = None
    try:
        assert read_line(p).startswith("ready"), (tmp_path / "looper.err").read_text()
        caller = spawn_peer("slowcall", fault_daemon.device, "l", "20000", log=tmp_path / "caller.err")
        assert read_line(caller) == "calling\n", (tmp_path / "caller.err").read_text()
        assert read_line(p) == "slow\n"
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert read_line(p, 10) == "interrupted\n", (tmp_path / "looper.err").read_text()
        assert read_line(caller, 10) == "failed FailedTransactionError\n", (tmp_path / "caller.err").read_text()
        assert time.monotonic() - t0 < INTERRUPT_BOUND
        assert read_line(p, 10) == "called 7\n", (tmp_path / "looper.err").read_text()
        assert read_line(p, 10) == "serving\n"
    finally:
        kill_all(p, *([caller] if caller else []))


def test_ctrl_z_in_a_blocked_call(fault_daemon: FaultDaemon, fault_server: Server, tmp_path: Path) -> None:
    """A stop (SIGSTOP, as Ctrl-Z's SIGTSTP) answers the waiting read so that the process can
    stop; after SIGCONT the call goes on and gets its answer."""
    p = spawn_peer("blocked", fault_daemon.device, "1000", log=tmp_path / "blocked.err")
    try:
        assert read_line(p) == "calling\n"
        wait_in_fuse(p.pid)
        p.send_signal(signal.SIGSTOP)
        _wait_for(lambda: state(p.pid) == "T", what="stopped")
        time.sleep(0.3)
        p.send_signal(signal.SIGCONT)
        assert read_line(p, 10) == "answered\n", (tmp_path / "blocked.err").read_text()
        assert read_line(p, 10) == "retried 2\n"
    finally:
        kill_all(p)
    assert _calls(fault_server, "blocked") == [-1, 1, 2]


def test_sigkill_of_a_caller_blocked_in_a_call(fault_daemon: FaultDaemon, fault_server: Server,
                                               tmp_path: Path) -> None:
    """The caller dies at once; the server's reply gets BR_DEAD_REPLY and the server goes on."""
    mnt = fault_daemon.mountpoint
    p = spawn_peer("blocked", fault_daemon.device, "1000", log=tmp_path / "blocked.err")
    try:
        assert read_line(p) == "calling\n"
        _wait_for(lambda: 1 in _calls(fault_server, "blocked"), what="the server got the call")
        wait_in_fuse(p.pid)
        assert proc_counts(mnt, p.pid) is not None
        p.kill()
        print(f"SIGKILL of a caller blocked in a call: gone after {assert_gone(p) * 1000:.0f} ms")
        # its proc is released, while the server still works on its call
        _wait_for(lambda: proc_counts(mnt, p.pid) is None, what="the killed caller's proc released")
        wait_debugfs_proc_gone(mnt, p.pid)
    finally:
        kill_all(p)
    time.sleep(1.2)  # the server replies to the dead caller: BR_DEAD_REPLY, which it must survive
    q = spawn_peer("blocked", fault_daemon.device, "0", log=tmp_path / "second.err")
    try:
        assert read_line(q) == "calling\n", (tmp_path / "second.err").read_text()
        assert read_line(q) == "answered\n"
        assert read_line(q) == "retried 2\n"
        assert q.wait(10) == 0
    finally:
        kill_all(q)
    server = proc_counts(mnt, fault_server.pid)
    assert server is not None and server["buffers"] == 0 and server["transaction_stacks"] == 0, server


def test_callers_of_a_killed_server_get_dead_reply(fault_daemon: FaultDaemon, fault_server: Server,
                                                   tmp_path: Path) -> None:
    p = spawn_peer("blocked", fault_daemon.device, "30000", log=tmp_path / "blocked.err")
    try:
        assert read_line(p) == "calling\n"
        _wait_for(lambda: 1 in _calls(fault_server, "blocked"), what="the server got the call")
        fault_server.proc.kill()
        assert_gone(fault_server.proc)
        # BR_DEAD_REPLY: DeadObjectError, which this program does not catch
        assert p.wait(DEATH_BOUND) != 0
        assert "DeadObjectError" in (tmp_path / "blocked.err").read_text()
    finally:
        kill_all(p)
    wait_for_baseline(fault_daemon.mountpoint)


def test_death_notification_when_the_holder_is_killed(fault_daemon: FaultDaemon, fault_server: Server,
                                                       tmp_path: Path) -> None:
    mnt = fault_daemon.mountpoint
    holder = spawn_peer("holder", fault_daemon.device, "h", log=tmp_path / "holder.err")
    assert read_line(holder).startswith("ready"), (tmp_path / "holder.err").read_text()
    watcher = spawn_peer("watcher", fault_daemon.device, "h", log=tmp_path / "watcher.err")
    try:
        assert read_line(watcher) == f"ready {holder.pid}\n", (tmp_path / "watcher.err").read_text()
        h = proc_counts(mnt, holder.pid)
        assert h is not None and h["nodes"] == 1
        assert read_counts(mnt)["active"]["death"] == 2  # the watcher's and the server's (it links to what it keeps)
        t0 = time.monotonic()
        holder.kill()
        assert_gone(holder)
        assert read_line(watcher, DEATH_BOUND) == "dead\n"  # BR_DEAD_BINDER
        assert time.monotonic() - t0 < DEATH_BOUND
        assert read_line(watcher) == "dead-call DeadObjectError\n"  # BR_DEAD_REPLY
        assert proc_counts(mnt, holder.pid) is None
        if wait_debugfs_proc_gone(mnt, holder.pid):
            # its node lives on as a dead node while the watcher holds a ref, as in 6.1
            assert "dead nodes:" in (mnt / DEBUGFS / "state").read_text()
    finally:
        kill_all(holder, watcher)
    wait_for_baseline(mnt, procs=1)
    server = proc_counts(mnt, fault_server.pid)
    assert server is not None and server["buffers"] == 0, server
