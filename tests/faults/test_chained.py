"""The chained wait through a real mount (docs/abi-chained.md): FUSE requests per sync call,
counted by the daemon (4 with the extension, 5 for clients of ABI v1), and a server interrupted or
killed while its looper waits in a chained read: its last reply is done, nothing is lost, the
driver is back to its baseline (the fault_daemon fixture checks it)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.support import DEATH_BOUND, FaultDaemon, assert_gone, kill_all, read_line, wait_for_baseline
from tests.support import daemon_env

PEERS = Path(__file__).resolve().parent / "chain_peers.py"
CALLS = 300


def peer(role: str, *args: str, chained: bool = True, slot: bool | None = False) -> subprocess.Popen[str]:
    """A chain_peers process; ``slot``: every request by the request slot (True), none (False), or
    the client's default (None: requests of 16 KiB or more, docs/abi-slot.md)."""
    env = {**daemon_env(), "VBINDER_CHAINED": "1" if chained else "0"}
    env.pop("VBINDER_SLOT", None)
    if slot is not None:
        env["VBINDER_SLOT"] = "1" if slot else "0"
    return subprocess.Popen([sys.executable, str(PEERS), role, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def requests(d: FaultDaemon, pid: int) -> int:
    """FUSE requests (reads and writes of the device) of process ``pid`` so far."""
    reads, writes = d.counts()["requests"].get(str(pid), [0, 0])
    return int(reads + writes)


def ask(p: subprocess.Popen[str], line: str) -> str:
    assert p.stdin is not None
    p.stdin.write(line + "\n")
    p.stdin.flush()
    return read_line(p)


def per_call(d: FaultDaemon, server: subprocess.Popen[str], client: subprocess.Popen[str]) -> tuple[float, float]:
    """(server's, client's) requests per sync call over CALLS calls, the server idle around them."""
    ask(client, "calls 20")  # warm
    time.sleep(0.2)  # the server's looper is back in its wait: its request is counted
    s0, c0 = requests(d, server.pid), requests(d, client.pid)
    assert ask(client, f"calls {CALLS}").split() == ["done", str(CALLS)]
    time.sleep(0.2)
    s1, c1 = requests(d, server.pid), requests(d, client.pid)
    return (s1 - s0) / CALLS, (c1 - c0) / CALLS


@pytest.mark.parametrize(("chained", "slot"), [(True, False), (False, False), (True, True)],
                         ids=["chained", "v1", "slot"])
def test_fuse_requests_per_sync_call(fault_daemon: FaultDaemon, chained: bool, slot: bool) -> None:
    """A sync call: the caller's write and read, the callee's write of its reply and one read that
    returns its BR_TRANSACTION_COMPLETE with the next call (chained); or, for clients of ABI v1,
    the callee's read of the acknowledgement and its read of the next call apart: 5. With every
    request by the request slot (docs/abi-slot.md), one each: 2."""
    server = peer("server", fault_daemon.device, chained=chained, slot=slot)
    client = None
    try:
        assert read_line(server).startswith("ready")
        client = peer("client", fault_daemon.device, chained=chained, slot=slot)
        assert read_line(client).startswith("ready")
        srv, cli = per_call(fault_daemon, server, client)
        assert cli == pytest.approx(1.0 if slot else 2.0, abs=0.05), (srv, cli)
        assert srv == pytest.approx(1.0 if slot else 2.0 if chained else 3.0, abs=0.05), (srv, cli)
        ask(client, "exit")
        assert_gone(client)
    finally:
        kill_all(*(p for p in (client, server) if p is not None))


def test_a_v1_client_calls_a_chained_server_and_back(fault_daemon: FaultDaemon) -> None:
    """Each end chooses for itself: a chained server serves a v1 client, a v1 server a chained one."""
    for server_chained in (True, False):
        server = peer("server", fault_daemon.device, chained=server_chained)
        client = None
        try:
            assert read_line(server).startswith("ready")
            client = peer("client", fault_daemon.device, chained=not server_chained)
            assert read_line(client).startswith("ready")
            srv, cli = per_call(fault_daemon, server, client)
            assert cli == pytest.approx(2.0, abs=0.05)
            assert srv == pytest.approx(2.0 if server_chained else 3.0, abs=0.05)
            ask(client, "exit")
            assert_gone(client)
        finally:
            kill_all(*(p for p in (client, server) if p is not None))
        wait_for_baseline(fault_daemon.mountpoint)


@pytest.mark.parametrize("chained", [True, False], ids=["chained", "v1"])
def test_a_binder_received_in_a_call_is_let_go_after_the_reply(fault_daemon: FaultDaemon, chained: bool) -> None:
    """A server that looks at a binder it is sent and does not keep it lets go of it once the
    call is over: the node goes from the driver without another call (its owner got BR_RELEASE and
    BR_DECREFS, or, when the server let go before the owner read its BR_INCREFS, none). The call's
    parcel holds the server's proxy until the reply is sent, and the proxy's BC_RELEASE/BC_DECREFS
    go with the looper's next write; had that reply chained the looper's next read, the parcel would
    stay alive in the waiting looper and the refs be dropped only with the next call (the cause of
    object_refcount's lost BR_DECREFS, docs/abi-chained.md)."""
    server = peer("server", fault_daemon.device, chained=chained)
    client = None
    try:
        assert read_line(server).startswith("ready")
        client = peer("client", fault_daemon.device, chained=chained)
        assert read_line(client).startswith("ready")
        assert ask(client, "lend").strip() == "lent"
        state = fault_daemon.mountpoint / "sys/kernel/debug/binder/proc" / str(client.pid)
        deadline = time.monotonic() + 10
        while "  node " in state.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "  node " not in state.read_text(), state.read_text()
        assert ask(client, "calls 3").split() == ["done", "3"]  # the server serves on
        ask(client, "exit")
        assert_gone(client)
    finally:
        kill_all(*(p for p in (client, server) if p is not None))


@pytest.mark.parametrize("mode", ["main", "pool"])
def test_ctrl_c_ends_a_chained_wait_with_the_reply_done(fault_daemon: FaultDaemon, mode: str) -> None:
    """SIGINT to a server whose looper waits in a chained read (its reply sent): the wait ends at
    once, on the main thread with the KeyboardInterrupt (the guarded pread got the reply's own
    frame), on a pool thread with the process; the caller had its reply, and a call after it is
    refused (BR_DEAD_REPLY), never lost; the driver ends at its baseline (the fixture)."""
    server = peer("server", fault_daemon.device, mode)
    client = None
    try:
        assert read_line(server).startswith("ready")
        client = peer("client", fault_daemon.device)
        assert read_line(client).startswith("ready")
        assert ask(client, "calls 50").split() == ["done", "50"]
        time.sleep(0.2)  # the looper waits in the chained read of its last reply
        if mode == "main":
            t0 = time.monotonic()
            server.send_signal(signal.SIGINT)
            assert read_line(server, timeout=DEATH_BOUND).strip() == "interrupted"
            assert time.monotonic() - t0 < DEATH_BOUND
            assert_gone(server)
            assert server.returncode == 0
            # the server is gone: the next call is refused (BR_DEAD_REPLY), not lost
            assert client.stdin is not None
            client.stdin.write("calls 1\n")
            client.stdin.flush()
            assert_gone(client)
            assert client.returncode != 0 and "DeadObject" in (client.stderr.read() if client.stderr else "")
        else:  # the KeyboardInterrupt is the sleeping main thread's; the process exits
            server.send_signal(signal.SIGINT)
            assert read_line(server, timeout=DEATH_BOUND).strip() == "interrupted"
            assert_gone(server)
    finally:
        kill_all(*(p for p in (client, server) if p is not None))


def test_a_server_killed_in_a_chained_wait_is_released(fault_daemon: FaultDaemon) -> None:
    server = peer("server", fault_daemon.device)
    client = None
    try:
        assert read_line(server).startswith("ready")
        client = peer("client", fault_daemon.device)
        assert read_line(client).startswith("ready")
        assert ask(client, "calls 20").split() == ["done", "20"]
        time.sleep(0.2)
        server.send_signal(signal.SIGKILL)
        assert_gone(server)
        assert client.stdin is not None
        client.stdin.write("calls 1\n")
        client.stdin.flush()
        assert_gone(client)
        assert client.returncode != 0
    finally:
        kill_all(*(p for p in (client, server) if p is not None))


@pytest.mark.parametrize("chained", [True, False], ids=["chained", "v1"])
def test_the_preload_library_chains_when_asked(fault_daemon: FaultDaemon, tmp_path: Path, chained: bool) -> None:
    """bench/cecho.c's looper through the preload library: 4 requests a call with
    VBINDER_CHAINED=1 (its opt-in), 5 without; the echoes come back whole either way."""
    from tests.support import REPO
    from vbinder.preload import library

    exe = tmp_path / "cecho"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(REPO / "bench" / "cecho.c"), "-lpthread"], check=True)
    mnt = str(fault_daemon.mountpoint)
    env = {**daemon_env(), "VBINDER_ANDROID": "14"}  # cecho's IServiceManager codes
    cenv = {**env, "LD_PRELOAD": str(library()), "VBINDER_MOUNT": mnt, "VBINDER_CHAINED": "1" if chained else "0"}
    sm = subprocess.Popen([sys.executable, "-m", "vbinder", "servicemanager", mnt], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=env)
    procs: list[subprocess.Popen[str]] = [sm]
    try:
        assert sm.stderr is not None and "context manager" in sm.stderr.readline() + sm.stderr.readline()
        server = subprocess.Popen([str(exe), "server", "chain"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  text=True, env=cenv)
        procs.append(server)
        assert read_line(server).strip() == "ready"
        client = subprocess.Popen([str(exe), "client", "chain"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=cenv)
        procs.append(client)
        assert read_line(client).strip() == "ready"
        assert ask(client, "warmup 64 20").strip() == "ok"
        time.sleep(0.2)
        s0 = requests(fault_daemon, server.pid)
        words = ask(client, f"sync 64 {CALLS} 1").split()
        assert words[0] == "samples" and len(words) == CALLS + 3
        time.sleep(0.2)
        per = (requests(fault_daemon, server.pid) - s0) / CALLS
        assert per == pytest.approx(2.0 if chained else 3.0, abs=0.05)
    finally:
        kill_all(*procs)
