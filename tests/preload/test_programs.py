"""The C test programs on vbinder under ``vbinder run``, compared with the real 6.1 driver.

Each scenario of ``scenarios.py`` (the service manager, the poll-looper server and the client;
bad input of every kind; a Python program on fcntl.ioctl and ctypes' mmap; file descriptors in
calls, replies and arrays, refused, held by a server while their sender is killed, and sent by two
clients at once to a server of three threads) runs on a fresh mount,
every program through the preload library, and its transcript must equal the one recorded on
the kernel (``expected/<scenario>.json``, by ``record_kernel.py``; ``test_on_kernel.py``
re-runs them there). Afterwards the daemon is alive and logged no error of its own: a program's
bad input, crash or kill harmed no one else, and its open fds are the ones it had before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conformance.test_conformance import diff
from tests.preload import scenarios
from tests.preload.conftest import HERE, daemon_problems, transcripts, vbinder_run
from tests.support import REPO, Daemon

EXPECTED = HERE / "expected"


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_program_transcript_matches_kernel(name: str, programs: Path, library: Path, vbinder_daemon: Daemon) -> None:
    """Also: once the programs are gone, the daemon has the fds it had before (the fds scenario's
    programs check their own: the client's and the server's are back where they were)."""
    expected = json.loads((EXPECTED / f"{name}.json").read_text())
    assert not [e for e in expected if "error" in e], f"the kernel's run of {name} failed: {expected}"
    daemon_fds = open_fds(vbinder_daemon.pid)
    argv = [sys.executable, str(HERE / "scenarios.py"), "--bin", str(programs), name]
    r = vbinder_run(vbinder_daemon.mountpoint, argv)
    got = transcripts(r.stdout).get(name)
    assert got is not None, f"no transcript (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert got == expected, f"{name}: vbinder differs from the kernel\n{diff(expected, got)}\n\nstderr:\n{r.stderr}"
    assert vbinder_daemon.proc.poll() is None, "the daemon died"
    assert not daemon_problems(vbinder_daemon.log_text()), vbinder_daemon.log_text()
    deadline = time.monotonic() + 10  # the last releases of the programs' files come as they exit
    while open_fds(vbinder_daemon.pid) != daemon_fds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(vbinder_daemon.pid) == daemon_fds


def test_the_benchmarks_c_programs_echo_through_the_library(tmp_path: Path, programs: Path, library: Path,
                                                           vbinder_mount: Path) -> None:
    """bench/cecho.c, which `make bench` measures: registers, is found, echoes every size back."""
    exe = tmp_path / "cecho"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(exe), str(REPO / "bench" / "cecho.c"), "-lpthread"],
                   check=True)
    env = {**os.environ, "LD_PRELOAD": str(library), "VBINDER_MOUNT": str(vbinder_mount)}
    started = []
    try:
        for argv in ([str(programs / "servicemanager")], [str(exe), "server", "bench"]):
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env)
            started.append(p)
            assert p.stdout is not None and "ready" in p.stdout.readline()
        r = subprocess.run([str(exe), "client", "bench"], input="warmup 0 5\nsync 0 20 2\nsync 65536 3 1\n",
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        ready, ok, sync0, sync64k = r.stdout.splitlines()
        assert (ready, ok) == ("ready", "ok")
        for line, calls, reps in ((sync0, 20, 2), (sync64k, 3, 1)):
            words = line.split()
            at = words.index("walls")
            assert words[0] == "samples" and at == 1 + calls * reps and len(words) == at + 1 + reps
            assert all(int(w) > 0 for w in words[1:at])
    finally:
        for p in started:
            p.kill()
            p.wait()
