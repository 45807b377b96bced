"""The log's rate limit (docs/decisions.md, "Rate limiting"): 6.1's pr_info_ratelimited.

binder_debug and binder_user_error are functions in 6.1's binder.c, each with one ratelimit
state; binder_alloc_debug is a macro, one state per call site. Each state lets 10 lines through
per 5 s window (DEFAULT_RATELIMIT_BURST, DEFAULT_RATELIMIT_INTERVAL), counts the rest, and at
the first call after its window prints ``<function>: N callbacks suppressed`` (KERN_WARNING).
test_log_lines.py checks the same against the oracle's dmesg samples; the 3.4 profile and
``--no-ratelimit`` keep every line.
"""

from __future__ import annotations

from vbinder.driver.log import KERN_WARNING, AllocDebug, Debug, Log
from vbinder.driver.profile import ANDROID_3_4


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def texts(log: Log) -> list[str]:
    return [line.split("] ", 1)[1] for _seq, line in log.ring]


def test_ten_lines_per_five_seconds_then_the_count_of_the_rest() -> None:
    clock = Clock()
    log = Log(debug_mask=Debug.THREADS, clock=clock)
    for i in range(25):
        log.debug(Debug.THREADS, "line %d", i)
        clock.t += 0.01
    assert texts(log) == [f"binder: line {i}" for i in range(10)]
    clock.t += 5.0
    log.debug(Debug.THREADS, "line %d", 25)
    assert texts(log)[10:] == ["binder_debug: 15 callbacks suppressed", "binder: line 25"]
    assert log.ring[10][1].startswith(f"<{KERN_WARNING}>")


def test_a_window_is_five_seconds_from_its_first_line() -> None:
    clock = Clock()
    log = Log(debug_mask=Debug.THREADS, clock=clock)
    for i in range(11):  # the 11th is dropped
        log.debug(Debug.THREADS, "a %d", i)
    clock.t += 5.0  # not past the window yet (time_is_before_jiffies: strictly after)
    log.debug(Debug.THREADS, "b")
    clock.t += 0.001
    log.debug(Debug.THREADS, "c")
    assert texts(log)[10:] == ["binder_debug: 2 callbacks suppressed", "binder: c"]


def test_user_errors_and_each_allocator_site_have_their_own_limit() -> None:
    clock = Clock()
    log = Log(debug_mask=Debug.THREADS | Debug.USER_ERROR, alloc_debug_mask=AllocDebug.USER_ERROR
              | AllocDebug.BUFFER_ALLOC, clock=clock)
    for i in range(12):
        log.debug(Debug.THREADS, "debug %d", i)
        log.user_error("user %d", i)
        log.alloc_debug(AllocDebug.USER_ERROR, "%d: binder_alloc_buf, no vma", i)
        log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: add free buffer, size %d, at %s", i, 8, "0")
    lines = texts(log)
    for kind in ("binder: debug", "binder: user", "binder_alloc_buf, no vma", "add free buffer"):
        assert sum(kind in line for line in lines) == 10, kind
    assert len(lines) == 40
    clock.t += 6
    log.debug(Debug.THREADS, "x")
    log.user_error("x")
    log.alloc_debug(AllocDebug.USER_ERROR, "%d: binder_alloc_buf, no vma", 1)
    log.alloc_debug(AllocDebug.BUFFER_ALLOC, "%d: add free buffer, size %d, at %s", 1, 8, "0")
    assert [line for line in texts(log)[40:] if "suppressed" in line] == [
        "binder_debug: 2 callbacks suppressed", "binder_user_error: 2 callbacks suppressed",
        "binder_alloc_new_buf_locked: 2 callbacks suppressed", "binder_insert_free_buffer: 2 callbacks suppressed"]


def test_a_masked_line_spends_nothing() -> None:
    clock = Clock()
    log = Log(debug_mask=Debug.USER_ERROR, clock=clock)
    for i in range(50):
        log.debug(Debug.THREADS, "off %d", i)
    log.debug(Debug.USER_ERROR, "on")
    assert texts(log) == ["binder: on"]


def test_no_ratelimit_and_the_3_4_profile_keep_every_line() -> None:
    mask = Debug.THREADS | Debug.USER_ERROR
    for log in (Log(debug_mask=mask, clock=Clock(), ratelimit=False),
                Log(debug_mask=mask, clock=Clock(), profile=ANDROID_3_4)):
        for i in range(30):
            log.debug(Debug.THREADS, "%d:%d BC_REGISTER_LOOPER", 1, i)
            log.user_error("%d:%d got reply transaction with no transaction stack", 1, i)
        assert len(texts(log)) == 60
        assert not any("suppressed" in line for line in texts(log))
