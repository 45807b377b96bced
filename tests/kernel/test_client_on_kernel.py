"""vbinder_client on the real 6.1 driver: the README's promise that the same client works there.

Every conformance scenario (tests/conformance: all of them go through ``vbinder_client``, which
picks its kernel transport, ioctls and a real ``mmap``, for a character device) runs in one VM,
and each transcript must equal the one recorded there (``expected/<scenario>.json``, which the
vbinder mount is compared with too). Then the service manager and the echo example run there as
a user runs them, and print what they print on a vbinder mount.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.runner import MARK, load
from tests.conformance.test_conformance import EXPECTED, diff
from tests.kernel import vm
from tests.kernel.conftest import need_kernel
from tests.support import daemon_env

HERE = Path(__file__).resolve().parent
RUNNER = vm.REPO / "tests" / "conformance" / "runner.py"
SCENARIOS = sorted(load())


def _on_kernel(payload: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    """One VM run; a VM that failed to boot (125) is tried once more."""
    r = vm.run(payload, timeout=timeout)
    if r.returncode == 125:
        r = vm.run(payload, timeout=timeout)
    return r


@pytest.fixture(scope="module")
def kernel_transcripts() -> dict[str, Any]:
    """Every scenario's transcript on the kernel, from one VM (about 30 s)."""
    need_kernel()
    r = _on_kernel([str(RUNNER), "--device", "/dev/binder", *SCENARIOS], timeout=600)
    out: dict[str, Any] = {}
    for line in r.stdout.splitlines():
        if line.startswith(MARK + " "):
            _mark, name, text = line.split(" ", 2)
            out[name] = json.loads(text)
    if not out:
        pytest.fail(f"the VM produced no transcript (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    out["__stderr__"] = r.stderr
    return out


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_on_the_kernel_matches_its_record(name: str, kernel_transcripts: dict[str, Any]) -> None:
    got = kernel_transcripts.get(name)
    assert got is not None, f"{name}: no transcript from the VM\n{kernel_transcripts['__stderr__'][-3000:]}"
    assert not [e for e in got if e.get("event") == "error"], (
        f"{name}: the client failed on the real kernel: {got}\n{kernel_transcripts['__stderr__'][-3000:]}")
    expected = json.loads((EXPECTED / f"{name}.json").read_text())
    assert got == expected, f"{name}: the kernel's transcript changed\n{diff(expected, got)}"


# -- the service manager and the echo example, as a user runs them ---------------------------------


def normalized(text: str) -> list[str]:
    """The example's lines without what differs between runs: pids and timings."""
    text = re.sub(r"pid \d+", "pid N", text)
    text = re.sub(r"\d+ us per call", "T us per call", text)
    return text.splitlines()


def test_service_manager_and_echo_example_on_the_kernel(vbinder_mount: Path) -> None:
    """examples_on_device.py on the kernel and on vbinder: the same lines."""
    need_kernel()
    script = str(HERE / "examples_on_device.py")
    r = _on_kernel([script], timeout=240)
    assert r.returncode == 0, f"on the kernel (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-3000:]}"
    kernel = normalized(r.stdout)
    local = subprocess.run([sys.executable, script, str(vbinder_mount / "dev" / "binder")], capture_output=True,
                           text=True, timeout=120, env=daemon_env(), stdin=subprocess.DEVNULL)
    assert local.returncode == 0, f"on vbinder:\n{local.stdout}\n{local.stderr}"
    assert "echo client: echo('hello, kernel') -> 'hello, kernel'" in kernel, r.stdout
    assert normalized(local.stdout) == kernel
