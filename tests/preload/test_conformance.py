"""The conformance suite a third way: its kernel-ABI client under ``vbinder run``.

tests/conformance runs every scenario through ``vbinder_client``, which picks its transport by
the device: on a vbinder mount the frames of the device ABI, on a character device its kernel
transport (``fcntl.ioctl`` and a real ``mmap``). Under ``vbinder run``, ``/dev/binder`` is the
mount's device and stats as a character device, so the same scenarios go through the kernel
transport and the preload library, and must give the kernel's transcripts
(``tests/conformance/expected``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conformance.runner import load
from tests.conformance.test_conformance import EXPECTED, diff
from tests.preload.conftest import daemon_problems, transcripts, vbinder_run
from tests.support import Daemon

RUNNER = Path(__file__).resolve().parents[1] / "conformance" / "runner.py"


def test_the_client_picks_its_kernel_transport(library: Path, vbinder_mount: Path) -> None:
    code = ("from vbinder_client.device import open_transport; t = open_transport('/dev/binder'); "
            "print(type(t).__name__, t.map_addr > 0)")
    r = vbinder_run(vbinder_mount, [sys.executable, "-c", code])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["KernelTransport", "True"]


@pytest.mark.parametrize("name", sorted(load()))
def test_scenario_through_the_library_matches_kernel(name: str, library: Path, vbinder_daemon: Daemon) -> None:
    scenario = load()[name]
    if scenario.xfail:
        pytest.xfail(scenario.xfail)
    expected = json.loads((EXPECTED / f"{name}.json").read_text())
    r = vbinder_run(vbinder_daemon.mountpoint, [sys.executable, str(RUNNER), "--device", "/dev/binder", name])
    got = transcripts(r.stdout).get(name)
    assert got is not None, f"no transcript (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert not [e for e in got if e.get("event") == "error"], f"{name} failed under the library\n{r.stderr}"
    assert got == expected, f"{name}: differs from the kernel\n{diff(expected, got)}\n\nstderr:\n{r.stderr}"
    assert not daemon_problems(vbinder_daemon.log_text()), vbinder_daemon.log_text()
