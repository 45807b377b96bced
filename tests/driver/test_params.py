"""Module parameters (vbinder.driver.params) against Linux 6.1.

expected/params.json is oracle_scripts/params_oracle.py run on the oracle: every input written
with one write(2) to debug_mask, alloc_debug_mask and stop_on_user_error, with the result and the
value read back (kernel/params.c param_set_uint/int and param_get_*, lib/kstrtox.c, kernfs and
sysfs writes, binder.c binder_set_stop_on_user_error).
"""

from __future__ import annotations

import errno
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbinder.driver import BinderError
from vbinder.driver.params import kstrtoint, kstrtouint

from . import replay
from .harness import make_driver
from .oracle_scripts.params_oracle import INPUTS

EXPECTED = json.loads((replay.EXPECTED / "params.json").read_text())
# The Debian module's names -> the Android layout vbinder serves.
NAMES = {"debug_mask": ("binder", "debug_mask"), "alloc_debug_mask": ("binder_alloc", "debug_mask"),
         "stop_on_user_error": ("binder", "stop_on_user_error"), "devices": ("binder", "devices")}
RESETS = {"debug_mask": b"7", "alloc_debug_mask": b"1", "stop_on_user_error": b"0"}


def test_reads_and_modes_match_the_oracle() -> None:
    """param_get_uint/int/charp text and the files' modes, as loaded (devices=binder)."""
    d = make_driver(devices=("binder",))
    for name, want in EXPECTED["params"].items():
        p = d.params.get(*NAMES[name])
        assert p.read() == want["read"].encode(), name
        assert oct(p.mode) == want["mode"], name
        assert p.path == "sys/module/{}/parameters/{}".format(*NAMES[name])


@pytest.mark.parametrize("case", EXPECTED["writes"], ids=lambda c: f"{c['param']}-{c['repr']}")
def test_write_matches_the_oracle(case: dict) -> None:
    """One write(2): bytes taken or errno (EINVAL garbage, ERANGE overflow), then the value."""
    d = make_driver(devices=("binder",))
    p = d.params.get(*NAMES[case["param"]])
    data = INPUTS[case["input"]]
    assert len(data) == case["len"] and repr(data[:24]) == case["repr"]
    assert p.write(RESETS[case["param"]]) == 1
    try:
        result: object = p.write(data)
    except BinderError as e:
        result = errno.errorcode[e.errno]
    assert result == case["result"]
    assert p.read() == case["after"].encode()


def test_devices_is_read_only() -> None:
    """devices is charp 0444: the oracle's open for writing fails with EACCES (kernfs_fop_open)."""
    assert EXPECTED["devices_write"] == "open EACCES"
    d = make_driver()
    p = d.params.get("binder", "devices")
    assert not p.writable
    assert p.read() == b"binder,hwbinder,vndbinder\n"
    with pytest.raises(BinderError) as ei:
        p.write(b"x\n")
    assert ei.value.errno == errno.EACCES


def test_masks_live_in_the_log() -> None:
    """debug_mask, binder_alloc's debug_mask and stop_on_user_error read and write driver.log."""
    d = make_driver()
    d.params.write("binder", "debug_mask", b"0x3fbf\n")
    d.params.write("binder_alloc", "debug_mask", b"017")
    d.params.write("binder", "stop_on_user_error", b"-3")
    assert (d.log.debug_mask, d.log.alloc_debug_mask, d.log.stop_on_user_error) == (0x3FBF, 15, -3)
    d.log.debug_mask = 5
    assert d.params.read("binder", "debug_mask") == b"5\n"
    assert d.params.read("binder", "stop_on_user_error") == b"-3\n"
    assert sorted((p.module, p.name) for p in d.params) == [
        ("binder", "debug_mask"), ("binder", "devices"), ("binder", "stop_on_user_error"),
        ("binder_alloc", "debug_mask")]


def test_stop_on_user_error_wakes_waiters_below_two() -> None:
    """binder_set_stop_on_user_error: param_set_int, then wake_up(&binder_user_error_wait) if
    the value is below 2, whether or not the parse succeeded; the error is still returned."""
    d = make_driver()
    woken: list[int] = []
    d.params.user_error_wait.append(lambda: woken.append(d.log.stop_on_user_error))
    p = d.params.get("binder", "stop_on_user_error")
    p.write(b"1\n")
    d.log.user_error("something")  # binder_user_error arms it: 1 -> 2
    assert d.log.stop_on_user_error == 2
    assert woken == [1]
    with pytest.raises(BinderError):
        p.write(b"junk")  # stays 2: no wake
    assert woken == [1]
    p.write(b"5")
    assert woken == [1]
    p.write(b"0")
    assert woken == [1, 0]
    with pytest.raises(BinderError) as ei:
        p.write(b"99999999999")  # ERANGE, value stays 0: woken anyway
    assert ei.value.errno == errno.ERANGE
    assert woken == [1, 0, 0]


_VALID_UINT = re.compile(rb"\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\n?")


@given(st.text(alphabet="0123456789abcdefxX+-\n \0", max_size=14).map(str.encode))
def test_kstrtouint_model(s: bytes) -> None:
    """kstrtouint(s, 0) accepts exactly an optional '+', a C integer literal (0x hex, 0 octal,
    decimal) and one newline, up to the first NUL; a value over 32 bits is ERANGE."""
    text = s.split(b"\0", 1)[0]
    m = _VALID_UINT.fullmatch(text)
    try:
        got: object = kstrtouint(text)
    except BinderError as e:
        got = e.errno
    if m is None:
        assert got == errno.EINVAL  # (14 characters cannot overflow 64 bits, the other ERANGE)
        return
    value = int(m.group(1), 0) if not re.fullmatch(rb"0[0-7]+", m.group(1)) else int(m.group(1), 8)
    assert got == (value if value <= 0xFFFFFFFF else errno.ERANGE)


@given(st.integers(min_value=-(1 << 33), max_value=1 << 33), st.sampled_from(["%d", "%#x", "%#o"]))
def test_kstrtoint_round_trip(n: int, fmt: str) -> None:
    """kstrtoint parses what printf prints (sign first, then 0x or 0), ERANGE outside int."""
    text = ("-" + fmt % -n if n < 0 else fmt % n).replace("0o", "0").encode() + b"\n"
    try:
        got: object = kstrtoint(text)
    except BinderError as e:
        got = e.errno
    assert got == (n if -(1 << 31) <= n < (1 << 31) else errno.ERANGE)
