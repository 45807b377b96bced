"""Helpers of the fault, fuzz, load, shutdown and permission tests (issue "Nothing stuck, nothing lost").

- :class:`FaultDaemon`: a mounted daemon (tests/faults/counting_daemon.py) whose test-only counts
  file says what driver objects are alive; :func:`wait_for_baseline` waits until they are back to
  the baseline (no procs, no objects) and fails with the counts otherwise.
- :func:`debugfs_snapshot` / :func:`assert_debugfs_baseline`: the same through the debugfs files
  (``state``, ``stats``), as 6.1 prints them; no-ops if a mount does not serve them.
- :func:`spawn_peer`: a process running ``tests/faults/peers.py`` (vbinder_client programs).
- :func:`assert_gone`: a process must exit within a bound, else its stack state is reported.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.support import REPO, Daemon, as_user, daemon_env

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers.py"
COUNTING_DAEMON = HERE / "counting_daemon.py"
COUNTS = "sys/kernel/debug/binder/vbinder_test_counts"
DEBUGFS = "sys/kernel/debug/binder"

# Generous bounds (DESIGN.md "Conventions": the tight figures are the benchmarks' business).
DEATH_BOUND = 5.0  # a killed client is gone (the goal is half a second)
SETTLE = 10.0  # the driver is back to its baseline after the last client exits


class FaultDaemon(Daemon):
    """A counting daemon (``vbinder mount --foreground`` plus the test-only counts file)."""

    def __init__(self, mountpoint: Path, log: Path, *options: str) -> None:
        super().__init__(mountpoint, log, [sys.executable, str(COUNTING_DAEMON), str(mountpoint), *options])

    @property
    def device(self) -> str:
        return str(self.mountpoint / "dev" / "binder")

    def counts(self) -> dict[str, Any]:
        return read_counts(self.mountpoint)


def read_counts(mnt: Path) -> dict[str, Any]:
    with open(mnt / COUNTS, "rb") as f:
        return json.loads(f.read())


def is_baseline(c: dict[str, Any], procs: int = 0) -> bool:
    """Nothing left but ``procs`` long-lived procs; with none, no object, open file or waiter either."""
    if len(c["procs"]) != procs:
        return False
    if procs:
        return True
    return (not any(c["active"].values()) and not c["dead_nodes"]
            and all(c.get(k, 0) == 0 for k in ("device_files", "keys", "waiting_preads", "held_bytes", "watches",
                                                "fd_files", "fd_staged", "fd_channels", "fd_tokens",
                                                "fd_waiting_hello")))


def wait_for_baseline(mnt: Path, timeout: float = SETTLE, procs: int = 0) -> dict[str, Any]:
    """Wait until the driver holds nothing (see :func:`is_baseline`); fail with the counts."""
    deadline = time.monotonic() + timeout
    while True:
        c = read_counts(mnt)
        if is_baseline(c, procs):
            return c
        if time.monotonic() > deadline:
            raise AssertionError(f"driver objects left after {timeout} s: {json.dumps(c, indent=1)}")
        time.sleep(0.05)


def proc_counts(mnt: Path, pid: int) -> dict[str, Any] | None:
    """The counts of the proc of ``pid`` (None when it has none)."""
    for p in read_counts(mnt)["procs"]:
        if p["pid"] == pid:
            return p
    return None


# -- debugfs -------------------------------------------------------------------------------------


_STATS_ACTIVE = re.compile(r"^(proc|thread|node|ref|death|transaction|transaction_complete): active (-?\d+)", re.M)


def debugfs_snapshot(mnt: Path) -> dict[str, Any] | None:
    """``state``, and the active object counts of ``stats`` (global section; 6.1 prints a line
    only for kinds ever created: absent means 0), or None while the files are not served."""
    state_path = mnt / DEBUGFS / "state"
    stats_path = mnt / DEBUGFS / "stats"
    if not state_path.exists() or not stats_path.exists():
        return None
    state = state_path.read_text()
    stats = stats_path.read_text()
    head = stats.split("\nproc ", 1)[0]  # the global section comes before the first "proc N" block
    active = {k: 0 for k in ("proc", "thread", "node", "ref", "death", "transaction", "transaction_complete")}
    active.update({k: int(v) for k, v in _STATS_ACTIVE.findall(head)})
    return {"state": state, "active": active}


def assert_debugfs_baseline(mnt: Path, baseline: dict[str, Any] | None, timeout: float = SETTLE) -> bool:
    """Wait until debugfs ``state`` and the active object counts of ``stats`` equal ``baseline``.

    Returns False (checks nothing) while the files are not served, or when the baseline was taken
    before they were.
    """
    if baseline is None or debugfs_snapshot(mnt) is None:
        return False
    deadline = time.monotonic() + timeout
    while True:
        now = debugfs_snapshot(mnt)
        assert now is not None
        if now == baseline:
            return True
        if time.monotonic() > deadline:
            assert now["active"] == baseline["active"], (now["active"], baseline["active"])
            assert now["state"] == baseline["state"], f"state:\n{now['state']}\nbaseline:\n{baseline['state']}"
        time.sleep(0.05)


def wait_debugfs_proc_gone(mnt: Path, pid: int, timeout: float = SETTLE) -> bool:
    """Wait until debugfs shows nothing of ``pid``'s proc (no ``proc PID`` block in ``state``, no
    ``proc/PID`` file). False (checks nothing) while debugfs is not served."""
    state = mnt / DEBUGFS / "state"
    if not state.exists():
        return False
    deadline = time.monotonic() + timeout
    while f"proc {pid}\n" in state.read_text() or (mnt / DEBUGFS / "proc" / str(pid)).exists():
        assert time.monotonic() < deadline, f"proc {pid} still in debugfs:\n{state.read_text()}"
        time.sleep(0.05)
    return True


# -- processes -------------------------------------------------------------------------------------


def spawn_peer(role: str, *args: str, log: Path | None = None, **kw: Any) -> subprocess.Popen[str]:
    """``peers.py ROLE ARGS``, stdout piped (its first line is "ready ..."), stderr to ``log``."""
    err = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - given to Popen
    try:
        return subprocess.Popen([sys.executable, str(PEERS), role, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True, env=daemon_env(), **kw)
    finally:
        if log is not None:
            err.close()  # type: ignore[union-attr]


def read_line(p: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The next line of ``p``'s stdout ("" at its end), within ``timeout`` seconds.

    A thread per process reads its lines into a queue: selecting on the pipe would miss lines
    already in the text wrapper's buffer.
    """
    q: queue.Queue[str] | None = getattr(p, "_lines", None)
    if q is None:
        q = queue.Queue()
        p._lines = q  # type: ignore[attr-defined]
        stdout = p.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                q.put(line)
            q.put("")

        threading.Thread(target=pump, daemon=True).start()
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"pid {p.pid}: no line after {timeout} s ({describe(p.pid)})") from None


def describe(pid: int) -> str:
    """The state and wait channel of each thread of ``pid`` (for failure messages)."""
    out = []
    try:
        for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                    stat = f.read()
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    wchan = f.read()
            except OSError:
                continue
            out.append(f"{tid}:{chr(stat[stat.rfind(b')') + 2])}:{wchan}")
    except OSError:
        return "gone"
    return " ".join(out)


def assert_gone(p: subprocess.Popen[Any], bound: float = DEATH_BOUND) -> float:
    """Wait for ``p`` to exit within ``bound`` seconds; returns how long it took."""
    t0 = time.monotonic()
    try:
        p.wait(bound)
    except subprocess.TimeoutExpired:
        state = describe(p.pid)
        p.kill()
        p.wait()
        raise AssertionError(f"pid {p.pid} still there {bound} s later: {state}") from None
    return time.monotonic() - t0


def kill_all(*procs: subprocess.Popen[Any]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    for p in procs:
        try:
            p.wait(DEATH_BOUND)
        except subprocess.TimeoutExpired:
            pass


def python(code: str, *args: str, user: int | None = None, timeout: float = 30.0
           ) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (as ``user`` when given: :func:`tests.support.as_user`)."""
    if user is None:
        cmd, env, cwd = [sys.executable], daemon_env(), str(REPO)
    else:
        (cmd, env), cwd = as_user(user), "/"
    return subprocess.run([*cmd, "-c", code, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=cwd)
