"""The C test programs on vbinder under ``vbinder run``, compared with the real 6.1 driver.

Each scenario of ``scenarios.py`` (the service manager, the poll-looper server and the client;
bad input of every kind; a Python program on fcntl.ioctl and ctypes' mmap) runs on a fresh mount,
every program through the preload library, and its transcript must equal the one recorded on
the kernel (``expected/<scenario>.json``, by ``record_kernel.py``; ``test_on_kernel.py``
re-runs them there). Afterwards the daemon is alive and logged no error of its own: a program's
bad input, crash or kill harmed no one else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conformance.test_conformance import diff
from tests.preload import scenarios
from tests.preload.conftest import HERE, daemon_problems, transcripts, vbinder_run
from tests.support import Daemon

EXPECTED = HERE / "expected"


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_program_transcript_matches_kernel(name: str, programs: Path, library: Path, vbinder_daemon: Daemon) -> None:
    expected = json.loads((EXPECTED / f"{name}.json").read_text())
    assert not [e for e in expected if "error" in e], f"the kernel's run of {name} failed: {expected}"
    argv = [sys.executable, str(HERE / "scenarios.py"), "--bin", str(programs), name]
    r = vbinder_run(vbinder_daemon.mountpoint, argv)
    got = transcripts(r.stdout).get(name)
    assert got is not None, f"no transcript (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert got == expected, f"{name}: vbinder differs from the kernel\n{diff(expected, got)}\n\nstderr:\n{r.stderr}"
    assert vbinder_daemon.proc.poll() is None, "the daemon died"
    assert not daemon_problems(vbinder_daemon.log_text()), vbinder_daemon.log_text()
