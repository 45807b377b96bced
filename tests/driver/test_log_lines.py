"""The driver's log lines against the kernel's: the oracle smoke's dmesg per debug_mask.

samples/stock/dmesg_{B,C,D,E}_debug_mask_*.txt are what 6.1 printed while smoke.py ran its
scenarios B (mask 0x8), C (0x7), D (0x3fbf) and E (0x40). The smoke scenario is replayed on the
core with the same pids and debug ids, the mask set as smoke.py set it before each client; the
lines must be the kernel's once timestamps, the module prefix and user addresses are normalized.
6.1 rate-limits binder_debug (10 lines per 5 s, then "binder_debug: N callbacks suppressed" at the
first line of the next window), and so does vbinder: smoke.py waits 5.2 s between phases, which
the replay's clock does too, so a sample holds the first lines of its phase and the count of the
lines its previous phase dropped.
"""

from __future__ import annotations

import re

import pytest

from tests.support import ORACLE_SAMPLES

from . import replay
from .oracle_scripts import scenarios
from .test_debugfs import SMOKE_TIDS

SAMPLES = ORACLE_SAMPLES / "stock"
MASKS = {"A": 0x7, "B": 0x8, "C": 0x7, "D": 0x3FBF, "E": 0x40, "F": 0x7}
FILES = {"B": "dmesg_B_debug_mask_0x8.txt", "C": "dmesg_C_debug_mask_0x7.txt",
         "D": "dmesg_D_debug_mask_0x3fbf.txt", "E": "dmesg_E_debug_mask_0x40.txt"}
_ADDR = re.compile(r"\b(?:u)?[0-9a-f]{8,16}\b")


def normalize(line: str) -> str:
    """Drop the timestamp and level; ``binder_linux:`` (the Debian module) is ``binder:`` on a
    device; user-space addresses (the mapping, the caller's buffers) differ between runs."""
    line = re.sub(r"^(<\d>)?\[ *\d+\.\d+\] ", "", line.rstrip("\n"))
    line = line.replace("binder_linux: ", "binder: ")
    line = re.sub(r"(ioctl [0-9a-f]+ )[0-9a-f]+( returned)", r"\1ARG\2", line)
    line = re.sub(r"\bline \d+$", "line L", line)  # the failing check's source line: vbinder's own
    return _ADDR.sub(lambda m: "u" + "ADDR" if m.group().startswith("u") else "ADDR", line)


def by_thread(lines: list[str]) -> dict[str, list[str]]:
    """The lines of each ``pid:tid`` (others under "")."""
    out: dict[str, list[str]] = {}
    for line in lines:
        m = re.match(r"binder: (\d+:\d+) ", line)
        out.setdefault(m.group(1) if m else "", []).append(line)
    return out


@pytest.fixture(scope="module")
def phases(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The replay's log lines of each smoke client's phase (its open to the next client's)."""
    marks: list[tuple[str, int]] = []
    holder: dict[str, replay.ReplayEnv] = {}
    real_open = scenarios._client_open

    def client_open(env, actor):  # noqa: ANN001, ANN202
        holder["env"] = env
        log = env.driver.log
        log.clock.t += 5.2  # smoke.py: "phases that log are 5.2 s apart"
        log.debug_mask = MASKS[actor.name]
        marks.append((actor.name, log.next_seq))
        return real_open(env, actor)

    def close_at_exit(self) -> None:  # noqa: ANN001
        # smoke.py's clients exit: their memory goes before their files (exit_mm, exit_files)
        self.client.file.flush(mm_gone=True)
        self.client.file.release()

    monkeypatch_module.setattr(scenarios, "_client_open", client_open)
    monkeypatch_module.setattr(replay.File, "close", close_at_exit)
    env = replay.run("smoke", SMOKE_TIDS)
    log = env.driver.log
    bounds = [*marks, ("end", log.next_seq)]
    lines = {seq: line for seq, line in log.ring}
    out = {}
    for (name, start), (_next, end) in zip(bounds, bounds[1:], strict=False):
        out[name] = [lines[s] for s in range(start, end) if s in lines]
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():  # noqa: ANN201
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("phase", sorted(FILES))
def test_log_lines_match_the_kernel(phases: dict[str, list[str]], phase: str) -> None:
    path = SAMPLES / FILES[phase]
    want = [normalize(x) for x in path.read_text().splitlines()]
    got = [normalize(x) for x in phases[phase]]
    # The same lines, and each thread's lines in the same order; between threads the order
    # is the scheduler's (the kernel ran the woken caller before the replier went on).
    assert sorted(got) == sorted(want), f"{got}\n!=\n{want}"
    assert by_thread(got) == by_thread(want)
    assert all(x.startswith("<") for x in phases[phase])  # kmsg's level prefix
