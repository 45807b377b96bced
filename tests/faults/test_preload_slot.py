"""The preload library's request slot (docs/abi-slot.md, vbinder/preload/slot.c) through a real
mount: C programs (bench/cecho.c) echo payloads of 0 B, 64 KiB and 1 MiB - 64 KiB byte for byte
with the slot for large requests (the default), for none (VBINDER_SLOT=0) and for all
(VBINDER_SLOT=1); the counting daemon shows what each costs in FUSE requests, and once the
programs are gone the daemon holds the fds it held before (its copies of the memfds went with the
open files)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.support import FaultDaemon, kill_all, read_line
from tests.faults.test_chained import ask, requests
from tests.faults.test_fds import daemon_fds, wait_for
from tests.support import REPO, daemon_env, fuse_usable

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

SIZES = (0, 64 << 10, (1 << 20) - (64 << 10))
CALLS = 100
# The client's FUSE requests per sync call, by VBINDER_SLOT and payload size. By pwrite: the
# request, and a pread of the reply (a 64 KiB reply takes a second pread past the first 16 KiB).
# By the slot: one pread, the reply in the slot when it is longer than that pread.
PER_CALL = {
    "default": {0: 2, 64 << 10: 1},
    "0": {0: 2, 64 << 10: 3},
    "1": {0: 1, 64 << 10: 1},
}


@pytest.fixture(scope="module")
def cecho(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("cecho") / "cecho"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(exe), str(REPO / "bench" / "cecho.c"), "-lpthread"],
                   check=True)
    return exe


class Echo:
    """The service manager, a cecho server and a cecho client on the mount, through the library."""

    def __init__(self, daemon: FaultDaemon, exe: Path, slot: str, tmp: Path) -> None:
        from vbinder.preload import library

        mnt = str(daemon.mountpoint)
        env = {**daemon_env(), "VBINDER_ANDROID": "14"}  # cecho's IServiceManager codes
        cenv = {**env, "LD_PRELOAD": str(library()), "VBINDER_MOUNT": mnt}
        cenv.pop("VBINDER_SLOT", None)  # default: whatever the test run's environment says
        if slot != "default":
            cenv["VBINDER_SLOT"] = slot
        self.client_err = tmp / "client.err"
        self.procs: list[subprocess.Popen[str]] = []
        sm = self.spawn([sys.executable, "-m", "vbinder", "servicemanager", mnt], env, subprocess.PIPE)
        assert sm.stderr is not None and "context manager" in sm.stderr.readline() + sm.stderr.readline()
        self.server = self.spawn([str(exe), "server", "slot"], cenv, subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert read_line(self.server).strip() == "ready"
        with open(self.client_err, "w") as err:
            self.client = self.spawn([str(exe), "client", "slot"], cenv, err, stdout=subprocess.PIPE,
                                     stdin=subprocess.PIPE)
        assert read_line(self.client).strip() == "ready", self.client_err.read_text()

    def spawn(self, argv: list[str], env: dict[str, str], stderr: object, **kw: object) -> subprocess.Popen[str]:
        p = subprocess.Popen(argv, stderr=stderr, text=True, env=env, **kw)  # type: ignore[call-overload]
        self.procs.append(p)
        return p

    def check(self, size: int, calls: int) -> None:
        assert ask(self.client, f"check {size} {calls}").strip() == "ok", self.client_err.read_text()


@pytest.mark.parametrize("slot", ["default", "0", "1"])
def test_c_calls_echo_through_the_slot(fault_daemon: FaultDaemon, cecho: Path, tmp_path: Path, slot: str) -> None:
    base = daemon_fds(fault_daemon)
    echo = Echo(fault_daemon, cecho, slot, tmp_path)
    try:
        for size in SIZES:
            echo.check(size, 3)
        for size, expected in PER_CALL[slot].items():
            echo.check(size, 5)  # warm
            time.sleep(0.1)
            c0 = requests(fault_daemon, echo.client.pid)
            echo.check(size, CALLS)
            per = (requests(fault_daemon, echo.client.pid) - c0) / CALLS
            assert per == pytest.approx(expected, abs=0.05), (slot, size, per)
        # A slot registered or not, quietly: no notice on stderr.
        assert "vbinder preload" not in echo.client_err.read_text()
    finally:
        kill_all(*echo.procs)
    assert wait_for(lambda: daemon_fds(fault_daemon) == base), (daemon_fds(fault_daemon), base)


def test_the_slot_follows_the_fd_channel_across_fork_and_exec(fault_daemon: FaultDaemon, tmp_path: Path) -> None:
    """The opener has the slot's memfd; a forked child closes its copy and calls by pwrite (with
    VBINDER_SLOT=1, which would send it by the slot); an exec'd image has none (close-on-exec)."""
    from vbinder.preload import library

    exe = tmp_path / "slot_fork"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(exe), str(Path(__file__).with_name("slot_fork.c")),
                    "-lpthread"], check=True)
    base = daemon_fds(fault_daemon)
    env = {**daemon_env(), "LD_PRELOAD": str(library()), "VBINDER_MOUNT": str(fault_daemon.mountpoint),
           "VBINDER_SLOT": "1"}
    r = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["parent call 4", "parent 1", "child 0", "child call 4", "child 0", "parent 1",
                                     "exec 0"], r.stderr
    assert "vbinder preload" not in r.stderr
    assert wait_for(lambda: daemon_fds(fault_daemon) == base), (daemon_fds(fault_daemon), base)


def test_a_thread_that_ends_frees_its_region(fault_daemon: FaultDaemon, tmp_path: Path) -> None:
    """40 threads one after the other (more than the slot's 16 regions) each make a call: each
    takes the region the last one freed, so every call is one request (by pwrite: two)."""
    from vbinder.preload import library

    exe = tmp_path / "slot_fork"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(exe), str(Path(__file__).with_name("slot_fork.c")),
                    "-lpthread"], check=True)
    env = {**daemon_env(), "LD_PRELOAD": str(library()), "VBINDER_MOUNT": str(fault_daemon.mountpoint),
           "VBINDER_SLOT": "1"}
    p = subprocess.Popen([str(exe), "threads", "40"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert read_line(p).strip() == "ready"
        c0 = requests(fault_daemon, p.pid)
        assert ask(p, "go").strip() == "done"
        assert requests(fault_daemon, p.pid) - c0 == 40
        assert p.stdin is not None
        p.stdin.write("exit\n")
        p.stdin.close()
        assert p.wait(timeout=10) == 0
    finally:
        kill_all(p)
