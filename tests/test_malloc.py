"""vbinder/malloc.py: after keep_large_buffers, a process that copies 1 MiB buffers again and again
stops taking a page fault per page of each copy (they come from the heap, reused), and
VBINDER_MALLOC=0 leaves malloc as glibc has it. The daemon's side is measured through a mount in
tests/faults/test_slot.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import daemon_env

COPIES = 40
PROGRAM = f"""
import resource, sys
from vbinder.malloc import keep_large_buffers
tuned = keep_large_buffers()
keep = b"y" * 16
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):  # the heap grows once
    data = b"x" * (1 << 20)
    del data
before = faults()
for i in range({COPIES}):
    data = (b"x" * (1 << 20))[i:]  # two fresh 1 MiB buffers, written
    del data
print(tuned, faults() - before)
"""


def run(env: dict[str, str]) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, check=True)
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


def test_large_buffers_stop_faulting() -> None:
    env = daemon_env()
    env.pop("VBINDER_MALLOC", None)
    tuned, faults = run(env)
    untuned, faults_v = run({**env, "VBINDER_MALLOC": "0"})
    if not tuned:
        pytest.fail("mallopt refused the thresholds (not glibc?)")
    assert not untuned
    assert faults_v >= COPIES * 256, faults_v  # each copy: fresh pages, a fault each (4 KiB pages)
    assert faults < COPIES * 16, (faults, faults_v)
