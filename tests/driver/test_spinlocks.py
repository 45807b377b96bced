"""debug_mask's SPINLOCKS bit (1 << 14): 6.1's lock lines, each thread's in the kernel's order.

``expected/spinlocks/<scenario>.json`` is a scenario of ``oracle_scripts/scenarios.py`` run on
the oracle with ``ORACLE_SPINLOCKS=1`` (``tests/oracle/run.sh -e ORACLE_SPINLOCKS=1 -o DIR [-d
DEVICES] tests/driver/oracle_scripts/run_scenario.py NAME``, its JSON cut to the keys read
here): run_scenario.py traces every binder_debug call of the SPINLOCKS mask with a kprobe (the
log itself is rate-limited), as [tid, function, line]. The scenario is replayed on the core with
the same tids and only SPINLOCKS set; every thread's ``_binder_*_lock: line=N`` lines must be the
kernel's, in the kernel's order (between threads the order is the scheduler's). Deferred work
(binder_flush, binder_release) runs on a kworker in the kernel: the lines of every other task
are compared as one sequence, and so are the debugfs reader's (run_scenario.py's snapshots read
state, stats, transactions, both logs and each proc/<pid>; the printers take their locks, and
seq_read runs a printer again in a buffer twice as large while its text does not fit).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vbinder.driver.log import Debug

from . import replay

EXPECTED = Path(__file__).parent / "expected" / "spinlocks"
SCENARIOS = sorted(p.stem for p in EXPECTED.glob("*.json"))
_LOCK_LINE = re.compile(r"binder: _binder_\w+: line=\d+$")


def kernel_lines(record: dict) -> dict[object, list[str]]:
    """The recorded lock lines, by tid ("kworker" for tasks that are no actor's, "reader" for
    the process that read debugfs)."""
    tids = {tid for ts in record["tids"].values() for tid in ts}
    out: dict[object, list[str]] = {}
    for tid, func, line in record["spinlocks"]:
        who = tid if tid in tids else "reader" if tid == record["runner"] else "kworker"
        out.setdefault(who, []).append(f"{func}: line={line}")
    return out


def vbinder_lines(record: dict) -> dict[object, list[str]]:
    devices = tuple(record.get("devices", "binder").split(","))
    env = replay.run(record["scenario"], record["tids"], devices, debug_mask=Debug.SPINLOCKS, ratelimit=False)
    out: dict[object, list[str]] = {}
    for who, line in env.lines:
        if _LOCK_LINE.match(line):  # (the lines printed whatever the mask are not the kernel's kprobe's)
            out.setdefault(who, []).append(line.removeprefix("binder: "))
    return out


def _first_difference(want: list[str], got: list[str]) -> str:
    for i, (a, b) in enumerate(zip(want, got, strict=False)):
        if a != b:
            return (f"line {i}: kernel {a!r}, vbinder {b!r}\n  kernel:  {want[max(0, i - 4):i + 6]}\n"
                    f"  vbinder: {got[max(0, i - 4):i + 6]}")
    return f"kernel has {len(want)} lines, vbinder {len(got)}: the rest {want[len(got):][:8] or got[len(want):][:8]}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_thread_takes_6_1_s_locks_in_its_order(name: str) -> None:
    record = json.loads((EXPECTED / f"{name}.json").read_text())
    want = kernel_lines(record)
    got = vbinder_lines(record)
    for who in sorted(set(want) | set(got), key=str):
        w, g = want.get(who, []), got.get(who, [])
        assert g == w, f"{name}, {who}: {_first_difference(w, g)}"
