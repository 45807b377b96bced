"""Load: many processes and threads at once (issue "Nothing stuck, nothing lost": load).

64 processes (tests/faults/peers.py ``mesh``), each with three looper threads and two calling
threads, in a ring: each calls the next one's object (sync and one-way) and relays calls through
it to the one after (a nested call from a looper thread, with a binder object passed along).
The objects are registered at the server (the context manager), which links to their deaths.
No deadlock (everything finishes within the bound), no lost or duplicated transaction (every
answer is the right one, every call and one-way call arrives exactly once), and once the
processes are gone no driver object is left for them (counted; debugfs too, at the end).
A bigger run: ``make faults-long`` (VBINDER_LOAD_PROCS, VBINDER_LOAD_CALLS).
"""

from __future__ import annotations

import collections
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.conftest import Server
from tests.faults.support import FaultDaemon, kill_all, proc_counts, read_counts, read_line, spawn_peer
from tests.support import fuse_usable

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

BOUND = 120.0  # everything is done within this (no deadlock)


def _wait_for_notes(tmp: Path, procs: int, want: int, timeout: float) -> None:
    """Until the processes recorded ``want`` one-way calls (N lines), or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sum(line.startswith("N ") for i in range(procs)
                  for line in (tmp / f"m{i}.rec").read_text().splitlines())
        if got >= want:
            return
        time.sleep(0.05)


def _load(daemon: FaultDaemon, server: Server, tmp: Path, procs: int, calls: int) -> None:
    t0 = time.monotonic()
    mesh: list[subprocess.Popen[str]] = []
    try:
        for i in range(procs):
            mesh.append(spawn_peer("mesh", daemon.device, str(tmp / f"m{i}.rec"), str(i), str(procs), str(calls),
                                   log=tmp / f"m{i}.err"))
        for i, p in enumerate(mesh):
            assert read_line(p, BOUND).startswith("ready"), (tmp / f"m{i}.err").read_text()
        started = time.monotonic()
        for p in mesh:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for i, p in enumerate(mesh):
            left = max(1.0, BOUND - (time.monotonic() - t0))
            line = read_line(p, left)
            assert line == "done\n", (line, (tmp / f"m{i}.err").read_text())
        ran = time.monotonic() - started
        peak = read_counts(daemon.mountpoint)
        # "done" means a process's own calls returned; the last one-way calls it sent may still
        # be on their way to the next process, which must not be told to exit before they arrive.
        _wait_for_notes(tmp, procs, procs * 2 * calls, max(1.0, BOUND - (time.monotonic() - t0)))
        for p in mesh:
            assert p.stdin is not None
            p.stdin.close()
        for i, p in enumerate(mesh):
            assert p.wait(30) == 0, (tmp / f"m{i}.err").read_text()
    finally:
        kill_all(*mesh)
    # every call answered once, with its own answer; every call and one-way call arrived once
    sent: dict[str, set[tuple[str, int]]] = collections.defaultdict(set)
    got: collections.Counter[tuple[str, str, int]] = collections.Counter()
    for i in range(procs):
        for line in (tmp / f"m{i}.rec").read_text().splitlines():
            f = line.split()
            if f[0] in ("C", "L"):
                assert int(f[3]) == int(f[2]), line  # the answer is this call's
                sent["E" if f[0] == "C" else "R"].add((f[1], int(f[2])))
            elif f[0] == "S":
                sent["N"].add((f[1], int(f[2])))
            else:
                got[(f[0], f[1], int(f[2]))] += 1
    expected = procs * 2 * calls
    assert len(sent["E"]) == len(sent["N"]) == expected
    assert len(sent["R"]) == procs * 2 * len(range(0, calls, 3))
    dups = {k: n for k, n in got.items() if n != 1}
    assert not dups, list(dups.items())[:10]
    assert {(w, n) for (k, w, n) in got if k == "E" and not w.endswith(".r")} == sent["E"]
    assert {(w[:-2], n) for (k, w, n) in got if k == "E" and w.endswith(".r")} == sent["R"]
    assert {(w, n) for (k, w, n) in got if k == "N"} == sent["N"]
    # the processes are gone: nothing of theirs is left; the server let go of their objects
    deadline = time.monotonic() + 20
    while True:
        c = read_counts(daemon.mountpoint)
        s = proc_counts(daemon.mountpoint, server.pid)
        done = (len(c["procs"]) == 1 and s is not None and s["refs"] == 0 and s["buffers"] == 0
                and c["dead_nodes"] == 0 and c["active"]["ref"] == 0 and c["active"]["node"] == 1
                and c["active"]["transaction"] == 0 and c["active"]["death"] == 0)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert done, c
    threads = sum(p["threads"] for p in peak["procs"])
    calls_made = 2 * expected + 2 * len(sent["R"])  # ECHO, NOTE; RELAY and the ECHO it makes
    print(f"load: {procs} processes, {threads} binder threads at the peak, {calls_made} calls "
          f"in {ran:.1f} s ({time.monotonic() - t0:.1f} s in all)")


def test_load_many_processes_and_threads(fault_daemon: FaultDaemon, tmp_path: Path) -> None:
    server = Server(fault_daemon.device, tmp_path, name="registry")
    try:
        _load(fault_daemon, server, tmp_path, int(os.environ.get("VBINDER_LOAD_PROCS", "64")),
              int(os.environ.get("VBINDER_LOAD_CALLS", "6")))
    finally:
        kill_all(server.proc)


@pytest.mark.long
def test_load_many_processes_and_threads_long(fault_daemon: FaultDaemon, tmp_path: Path) -> None:
    server = Server(fault_daemon.device, tmp_path, name="registry")
    try:
        _load(fault_daemon, server, tmp_path, int(os.environ.get("VBINDER_LOAD_PROCS", "128")),
              int(os.environ.get("VBINDER_LOAD_CALLS", "60")))
    finally:
        kill_all(server.proc)
