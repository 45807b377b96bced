"""The conformance scenarios on a vbinder mount, compared with the kernel's transcripts.

Each scenario (tests/conformance/scenarios_*.py) runs in a fresh process tree on a fresh mount;
its transcript must equal ``expected/<scenario>.json``, which ``run_kernel.py`` recorded by
running the same scenario on the real Linux 6.1 driver in the oracle VM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance.runner import MARK, load
from tests.support import daemon_env

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"
TIMEOUT = 180


def _params() -> list:
    out = []
    for s in load().values():
        marks = [pytest.mark.xfail(reason=s.xfail, strict=False)] if s.xfail else []
        out.append(pytest.param(s.name, marks=marks, id=s.name))
    return out


def run_scenario(name: str, device: str) -> tuple[list, str]:
    """The scenario's transcript on ``device``, and what its processes wrote to stderr."""
    r = subprocess.run([sys.executable, str(HERE / "runner.py"), "--device", device, name], capture_output=True,
                       text=True, timeout=TIMEOUT, env=daemon_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        if line.startswith(f"{MARK} {name} "):
            return json.loads(line.split(" ", 2)[2]), r.stderr
    raise AssertionError(f"no transcript:\n{r.stdout}\n{r.stderr}")


def diff(expected: list, got: list) -> str:
    """The events that differ, one per line (expected first)."""
    lines = []
    for i in range(max(len(expected), len(got))):
        e = expected[i] if i < len(expected) else None
        g = got[i] if i < len(got) else None
        if e != g:
            lines.append(f"#{i}\n  kernel:  {json.dumps(e, sort_keys=True)}\n"
                         f"  vbinder: {json.dumps(g, sort_keys=True)}")
    return "\n".join(lines)


@pytest.mark.parametrize("name", _params())
def test_scenario_matches_kernel(name: str, vbinder_mount: Path) -> None:
    path = EXPECTED / f"{name}.json"
    if not path.exists():
        pytest.skip(f"no kernel transcript: run `python tests/conformance/run_kernel.py {name}`")
    expected = json.loads(path.read_text())
    # a scenario whose own code failed proves nothing, on either side
    assert not [e for e in expected if e.get("event") == "error"], f"{name}: the kernel run failed: {expected}"
    got, stderr = run_scenario(name, str(vbinder_mount / "dev" / "binder"))
    assert not [e for e in got if e.get("event") == "error"], f"{name}: the scenario failed on vbinder\n{stderr}"
    assert got == expected, f"{name}: vbinder differs from the kernel\n{diff(expected, got)}\n\nstderr:\n{stderr}"
