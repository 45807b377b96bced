"""SIGKILL and SIGINT at random points of sync and one-way traffic between real processes.

Rounds of client processes (tests/faults/peers.py ``client``: two threads each, a mix of sync
and one-way calls to the server, the context manager) get SIGINT (KeyboardInterrupt in their
main thread: the interrupted call is dropped, the client goes on) or SIGKILL at random moments.
Then (issue "Nothing stuck, nothing lost"):

- no process is stuck: a killed client is gone within the bound, the others finish;
- every call was answered exactly once: the server received no call twice, every answered sync
  call reached it once and got its own answer, every one-way call the driver accepted
  (BR_TRANSACTION_COMPLETE) is delivered once, even when its sender was killed; the clients
  that were not killed got an outcome for every call they made;
- the driver holds nothing for the clients once they are gone (counted), and is back to its
  baseline once the server is gone too (counted; debugfs state/stats too once served).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.faults.conftest import Server
from tests.faults.support import (
    FaultDaemon,
    assert_gone,
    kill_all,
    proc_counts,
    read_counts,
    read_line,
    spawn_peer,
)
from tests.support import fuse_usable

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

FINISH_BOUND = 60.0  # a client that was not killed finishes its calls


@dataclass
class Client:
    name: str
    proc: subprocess.Popen[str]
    record: Path
    killed: bool = False
    interrupts: int = 0
    events: list[list[str]] = field(default_factory=list)


def _records(path: Path) -> list[list[str]]:
    return [ln.split() for ln in path.read_text().splitlines()] if path.exists() else []


def run_round(daemon: FaultDaemon, server: Server, tmp: Path, rnd: int, rng: random.Random, clients: int,
              calls: int, threads: int = 2) -> dict[str, int]:
    """One round: start the clients, signal them at random, wait, check every call. Returns tallies."""
    procs: list[Client] = []
    try:
        for i in range(clients):
            name = f"r{rnd}c{i}"
            record = tmp / f"{name}.rec"
            p = spawn_peer("client", daemon.device, str(record), name, str(calls), str(threads),
                           f"{rnd}.{i}", log=tmp / f"{name}.err")
            procs.append(Client(name, p, record))
        for c in procs:
            line = read_line(c.proc)
            assert line.startswith("ready"), (tmp / f"{c.name}.err").read_text()
        # Signals at random moments while the calls run; about a third of the clients is killed.
        kills = max(1, clients // 3)
        deadline = time.monotonic() + FINISH_BOUND
        while time.monotonic() < deadline:
            alive = [c for c in procs if not c.killed and c.proc.poll() is None
                     and not any(e[0] == "done" for e in _records(c.record))]
            if not alive:
                break
            time.sleep(rng.uniform(0.002, 0.04))
            c = rng.choice(alive)
            if kills and rng.random() < 0.25:
                c.proc.send_signal(signal.SIGKILL)
                c.killed = True
                kills -= 1
                assert_gone(c.proc)
            else:
                c.proc.send_signal(signal.SIGINT)
                c.interrupts += 1
        for c in procs:
            if not c.killed:
                assert_gone(c.proc, max(1.0, deadline - time.monotonic()))
    finally:
        kill_all(*(c.proc for c in procs))
    return check_round(daemon, server, procs, tmp)


def check_round(daemon: FaultDaemon, server: Server, procs: list[Client], tmp: Path) -> dict[str, int]:
    tally: collections.Counter[str] = collections.Counter()
    for c in procs:
        c.events = _records(c.record)
        err = (tmp / f"{c.name}.err").read_text()
        assert not any(e[0] == "X" for e in c.events), (c.name, [e for e in c.events if e[0] == "X"], err)
        if not c.killed:
            assert any(e[0] == "done" for e in c.events), (c.name, "did not finish", err)
    # the one-way calls the driver accepted reach the server, once (also those of killed senders)
    accepted = {(e[1], int(e[2])) for c in procs for e in c.events if e[0] == "R"}
    kinds = {(e[1], int(e[2])): e[3] for c in procs for e in c.events if e[0] == "S"}
    oneways = {k for k in accepted if kinds[k] == "o"}
    deadline = time.monotonic() + 10
    while True:
        got = collections.Counter((f[1], int(f[2])) for f in server.lines() if f[0] in ("T", "O") and int(f[2]) >= 0)
        missing = [k for k in oneways if got[k] == 0]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not missing, f"accepted one-way calls never delivered: {sorted(missing)[:10]}"
    dups = {k: n for k, n in got.items() if n > 1}
    assert not dups, f"calls received more than once: {dups}"
    for c in procs:
        outcomes: dict[int, list[str]] = collections.defaultdict(list)
        sent = {}
        for e in c.events:
            if e[0] == "S":
                sent[(e[1], int(e[2]))] = e[3]
            elif e[0] in ("R", "I", "D", "F"):
                outcomes[(e[1], int(e[2]))].append(e[0])  # type: ignore[index]
        for key, kind in sent.items():
            outs = outcomes.get(key, [])  # type: ignore[call-overload]
            assert outs.count("R") <= 1 and not {"D", "F"} & set(outs), (c.name, key, outs)
            if "R" in outs:
                assert got[key] == 1, (c.name, key, kind, "answered but the server never got it")
            if not c.killed:
                assert outs, (c.name, key, "no outcome")
            tally["sync" if kind == "s" else "oneway"] += 1
            tally["answered" if "R" in outs else "interrupted" if "I" in outs else "cut"] += 1
    tally["killed"] = sum(c.killed for c in procs)
    tally["sigint"] = sum(c.interrupts for c in procs)
    # the killed and finished clients' procs are released; the server holds nothing of theirs
    deadline = time.monotonic() + 10
    while True:
        counts = read_counts(daemon.mountpoint)
        s = proc_counts(daemon.mountpoint, server.pid)
        assert s is not None
        done = (len(counts["procs"]) == 1 and s["buffers"] == 0 and s["refs"] == 0
                and s["transaction_stacks"] == 0 and s["outstanding_txns"] == 0 and s["todo"] == 0
                and counts["active"]["transaction"] == 0 and counts["active"]["ref"] == 0)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert done, counts
    return dict(tally)


def _run(daemon: FaultDaemon, server: Server, tmp: Path, rounds: int, clients: int, calls: int) -> None:
    rng = random.Random(int(os.environ.get("VBINDER_FAULT_SEED", "0")) or None)
    totals: collections.Counter[str] = collections.Counter()
    for rnd in range(rounds):
        totals.update(run_round(daemon, server, tmp, rnd, rng, clients, calls))
    print(f"fault traffic: {dict(totals)}")
    assert totals["killed"] and totals["sigint"] and totals["answered"]


def test_sigkill_and_sigint_during_traffic(fault_daemon: FaultDaemon, fault_server: Server, tmp_path: Path) -> None:
    _run(fault_daemon, fault_server, tmp_path, rounds=3, clients=6, calls=40)


@pytest.mark.long
def test_sigkill_and_sigint_during_traffic_long(fault_daemon: FaultDaemon, fault_server: Server,
                                               tmp_path: Path) -> None:
    _run(fault_daemon, fault_server, tmp_path, rounds=int(os.environ.get("VBINDER_FAULT_ROUNDS", "30")),
         clients=12, calls=100)
