"""Binder's numbers named: `vbinder errors`, `vbinder log --decode`, and the client's messages.

The lines decoded are real ones: the 6.1 driver's log and failed_transaction_log from the oracle
(tests/oracle/samples), and the 3.x line of the first seed (shared/seeds, quoted here).
"""

from __future__ import annotations

import subprocess
import sys

from tests.support import ORACLE_SAMPLES, REPO, daemon_env
from vbinder import uapi
from vbinder.explain import decode_line, errno_text, explain, return_error

SEED_3X = "[ 175.008343] binder: 4008:4104 transaction failed 29201, size 124-4"


def test_codes_are_the_kernels() -> None:
    assert uapi.BR_DEAD_REPLY == 29189 and uapi.BR_FAILED_REPLY == 29201 and uapi.BR_FROZEN_REPLY == 29202
    assert return_error(29201, -1) == "BR_FAILED_REPLY (29201), -EPERM"
    assert return_error(29189) == "BR_DEAD_REPLY (29189)"
    assert errno_text(-95) == "-EOPNOTSUPP" and errno_text(22) == "EINVAL"


def test_decode_the_oracles_log_lines() -> None:
    dmesg = (ORACLE_SAMPLES / "stock" / "dmesg_C_debug_mask_0x7.txt").read_text().splitlines()
    decoded = {line: decode_line(line) for line in dmesg}
    failed = next(d for line, d in decoded.items() if "failed 9/29201/-22" in line)
    assert "failed 9/29201/-22 (BR_FAILED_REPLY/-EINVAL), size 8-0 line 3063" in failed
    assert any("ioctl c018620c (BINDER_GET_NODE_INFO_FOR_REF) " in d and d.endswith("returned -1 (-EPERM)")
               for d in decoded.values())
    assert any("ioctl 40046207 (BINDER_SET_CONTEXT_MGR) " in d and d.endswith("returned -16 (-EBUSY)")
               for d in decoded.values())
    assert any(d.endswith("invalid ref 77 ret -22 (-EINVAL)") for d in decoded.values())
    unchanged = [line for line in dmesg if "BC_FREE_BUFFER" in line or "already set" in line]
    assert unchanged and all(decoded[line] == line for line in unchanged)


def test_decode_failed_transaction_log() -> None:
    state = (ORACLE_SAMPLES / "stock" / "debugfs_Z_final.txt").read_text().splitlines()
    bad = next(line for line in state if "ret 29201/-22" in line)
    assert "ret 29201/-22 (BR_FAILED_REPLY/-EINVAL) l=3063" in decode_line(bad)
    ok = next(line for line in state if "ret 0/0" in line)
    assert decode_line(ok) == ok
    assert decode_line("1: call  from 1:1 to 2:0 context binder node 3 handle 1 size 4:0 ret 29189/-22 l=3100") \
        .endswith("ret 29189/-22 (BR_DEAD_REPLY/-EINVAL) l=3100")


def test_decode_the_seeds_3x_line() -> None:
    assert decode_line(SEED_3X) == ("[ 175.008343] binder: 4008:4104 transaction failed 29201 (BR_FAILED_REPLY), "
                                    "size 124-4")


def test_explain_a_pair() -> None:
    lines = explain(["29189", "-22"])
    assert lines[0].startswith("29189 = BR_DEAD_REPLY (0x7205): ")
    assert lines[1] == "-22 = -EINVAL: Invalid argument"
    assert lines[2] == "BR_DEAD_REPLY/-EINVAL in Linux 6.1:"
    assert any("no context manager" in line for line in lines[3:])
    # the same pair as logs write it, and by name
    assert explain(["29189/-22"]) == lines
    assert explain(["BR_DEAD_REPLY", "-EINVAL"])[2:] == lines[2:]


def test_explain_the_3x_line_alone() -> None:
    """29201 with no errno (a 3.x log): every cause 6.1 has for it, and what 3.x meant."""
    text = "\n".join(explain(["29201"]))
    for pair in ("BR_FAILED_REPLY/-EINVAL", "BR_FAILED_REPLY/-ENOSPC", "BR_FAILED_REPLY/-EPROTO"):
        assert f"{pair} in Linux 6.1:" in text
    assert "binder_alloc_buf, no vma" in text and "BR_DEAD_REPLY/-ESRCH" in text


def test_explain_other_numbers() -> None:
    assert explain(["0xc0306201"]) == ["0xc0306201 = BINDER_WRITE_READ (0xc0306201, argument of 48 bytes)"]
    assert explain(["c0306201"])[0].startswith("c0306201 = BINDER_WRITE_READ")
    assert explain([str(uapi.BC_TRANSACTION)])[0].endswith("BC_TRANSACTION (0x40406300): a command a thread "
                                                          "writes to the driver")
    assert explain(["BR_FAILED_REPLY", "-EMLINK"])[-1].startswith(
        "BR_FAILED_REPLY/-EMLINK: Linux 6.1 does not give this pair (with BR_FAILED_REPLY it gives ")
    assert explain(["zork"]) == ["zork: not a number or a name binder uses"]


def _vbinder(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbinder", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=daemon_env(), cwd=REPO)


def test_the_commands() -> None:
    r = _vbinder("errors", "29189", "-22")
    assert r.returncode == 0 and r.stdout.splitlines() == explain(["29189", "-22"])
    r = _vbinder("log", "--decode", "--input", "-", stdin=SEED_3X + "\nplain line\n")
    assert r.returncode == 0 and r.stdout.splitlines() == [decode_line(SEED_3X), "plain line"]
    r = _vbinder("log", "--input", "/nonexistent/kmsg")
    assert r.returncode == 1 and "No such file" in r.stderr
