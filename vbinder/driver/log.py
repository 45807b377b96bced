"""The driver's log: 6.1's binder_debug/binder_user_error/binder_alloc_debug, gated by the masks.

Lines go into a bounded ring (like the kernel's printk buffer) with a sequence number, so that
several kmsg readers can follow it, each seeing every line.

6.1 prints those three through ``pr_info_ratelimited``: each call site keeps a ratelimit state
(DEFAULT_RATELIMIT_INTERVAL 5 s, DEFAULT_RATELIMIT_BURST 10, lib/ratelimit.c), and after a
window in which it dropped lines, its next call first prints ``<function>: N callbacks
suppressed``. binder_debug and binder_user_error are functions, one site each; binder_alloc_debug
is a macro, one site per use (:data:`ALLOC_SITES` names each one's function). With
``ratelimit`` (the default, as on a device; ``vbinder mount --no-ratelimit`` turns it off) vbinder
does the same (docs/decisions.md, "Rate limiting").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Final

from .profile import LINUX_6_1, Profile
from .texts_3_4 import text_3_4

KERN_ERR: Final = 3
KERN_WARNING: Final = 4
KERN_INFO: Final = 6


class Debug:
    """binder.c's debug_mask bits (6.1). Plain ints: IntFlag's ``&`` is slow on the per-call path."""

    USER_ERROR: Final = 1 << 0
    FAILED_TRANSACTION: Final = 1 << 1
    DEAD_TRANSACTION: Final = 1 << 2
    OPEN_CLOSE: Final = 1 << 3
    DEAD_BINDER: Final = 1 << 4
    DEATH_NOTIFICATION: Final = 1 << 5
    READ_WRITE: Final = 1 << 6
    USER_REFS: Final = 1 << 7
    THREADS: Final = 1 << 8
    TRANSACTION: Final = 1 << 9
    TRANSACTION_COMPLETE: Final = 1 << 10
    FREE_BUFFER: Final = 1 << 11
    INTERNAL_REFS: Final = 1 << 12
    PRIORITY_CAP: Final = 1 << 13
    SPINLOCKS: Final = 1 << 14


class AllocDebug:
    """binder_alloc.c's debug_mask bits (6.1)."""

    USER_ERROR: Final = 1 << 0
    OPEN_CLOSE: Final = 1 << 1
    BUFFER_ALLOC: Final = 1 << 2
    BUFFER_ALLOC_ASYNC: Final = 1 << 3


DEFAULT_DEBUG_MASK = Debug.USER_ERROR | Debug.FAILED_TRANSACTION | Debug.DEAD_TRANSACTION
DEFAULT_ALLOC_DEBUG_MASK = AllocDebug.USER_ERROR

_COMMON_BITS: Final = (1 << 13) - 1  # USER_ERROR to INTERNAL_REFS: the same in 3.x and 6.1
_BUFFER_ALLOC_3X: Final = 1 << 13  # 3.x's BINDER_DEBUG_BUFFER_ALLOC
_BUFFER_ALLOC_ASYNC_3X: Final = 1 << 15  # 3.x's BINDER_DEBUG_BUFFER_ALLOC_ASYNC

RATELIMIT_INTERVAL: Final = 5.0  # DEFAULT_RATELIMIT_INTERVAL (5 * HZ)
RATELIMIT_BURST: Final = 10  # DEFAULT_RATELIMIT_BURST

# binder_alloc_debug's call sites in 6.1's binder_alloc.c, by format: the function each is in
# (what its "callbacks suppressed" line names).
ALLOC_SITES: Final = {
    "%d: add free buffer, size %d, at %s": "binder_insert_free_buffer",
    "%d: %s pages %s-%s": "binder_update_page_range",
    "%s: %d %x-%x %s failed %d": "binder_alloc_mmap_handler",
    "%d: pid %d spamming oneway? %d buffers allocated for a total size of %d": "debug_low_async_space_locked",
    "%d: binder_alloc_buf, no vma": "binder_alloc_new_buf_locked",
    "%d: got transaction with invalid size %d-%d": "binder_alloc_new_buf_locked",
    "%d: got transaction with invalid extra_buffers_size %d": "binder_alloc_new_buf_locked",
    "%d: binder_alloc_buf size %d failed, no async space left": "binder_alloc_new_buf_locked",
    "%d: binder_alloc_buf size %d failed, no address space": "binder_alloc_new_buf_locked",
    "allocated: %d (num: %d largest: %d), free: %d (num: %d largest: %d)": "binder_alloc_new_buf_locked",
    "%d: binder_alloc_buf size %d got buffer %s size %d": "binder_alloc_new_buf_locked",
    "%d: binder_alloc_buf size %d got %s": "binder_alloc_new_buf_locked",
    "%d: binder_alloc_buf size %d async free %d": "binder_alloc_new_buf_locked",
    "%d: merge free, buffer %s share page with %s": "binder_delete_free_buffer",
    "%d: merge free, buffer start %s is page aligned": "binder_delete_free_buffer",
    "%d: merge free, buffer %s do not share page with %s or %s": "binder_delete_free_buffer",
    "%d: binder_free_buf %s size %d buffer_size %d": "binder_free_buf_locked",
    "%d: binder_free_buf size %d async free %d": "binder_free_buf_locked",
    "%s: %d: page %d at %s %s": "binder_alloc_deferred_release",
    "%s: %d buffers %d, pages %d": "binder_alloc_deferred_release",
}


class RateLimit:
    """A ratelimit_state of one call site and ___ratelimit(): at most ``RATELIMIT_BURST`` lines
    per window of ``RATELIMIT_INTERVAL``; a window starts at the first call after the last one
    ended, whose count of dropped lines is printed then."""

    __slots__ = ("func", "begin", "printed", "missed")

    def __init__(self, func: str) -> None:
        self.func = func  # __func__ where pr_info_ratelimited expanded
        self.begin = -1.0  # rs->begin (none yet)
        self.printed = 0
        self.missed = 0

    def allow(self, log: Log, now: float) -> bool:
        if self.begin < 0:
            self.begin = now
        if now > self.begin + RATELIMIT_INTERVAL:
            if self.missed:
                log.emit(KERN_WARNING, f"{self.func}: {self.missed} callbacks suppressed")
                self.missed = 0
            self.begin = now
            self.printed = 0
        if self.printed < RATELIMIT_BURST:
            self.printed += 1
            return True
        self.missed += 1
        return False


class Log:
    """The masks, the stop_on_user_error parameter and the ring of printed lines.

    ``debug_mask`` and ``alloc_debug_mask`` are what the core checks, by 6.1's bits. With a
    profile whose allocator shares binder.c's mask (3.x), :meth:`set_debug_mask` derives both
    from the one parameter (``debug_param``): bits 0 to 12 mean the same in both drivers, 3.x's
    BUFFER_ALLOC (1 << 13) and BUFFER_ALLOC_ASYNC (1 << 15) become the allocator's bits, and
    6.1's PRIORITY_CAP and SPINLOCKS (1 << 13, 1 << 14) are never set.
    """

    def __init__(self, debug_mask: int = DEFAULT_DEBUG_MASK,
                 alloc_debug_mask: int = DEFAULT_ALLOC_DEBUG_MASK,
                 capacity: int = 16384, clock: Callable[[], float] = time.monotonic,
                 ratelimit: bool | None = None, profile: Profile = LINUX_6_1) -> None:
        self.profile = profile
        self.debug_mask = debug_mask
        self.alloc_debug_mask = alloc_debug_mask
        self.debug_param = debug_mask  # binder's debug_mask parameter, as written
        self.set_debug_mask(debug_mask)
        if profile.alloc_module:
            self.alloc_debug_mask = alloc_debug_mask
        self.stop_on_user_error = 0
        self.clock = clock
        # pr_info_ratelimited: each call site's lines limited (as the profile's kernel, unless told)
        self.ratelimit = profile.ratelimit if ratelimit is None else ratelimit
        self._texts = profile.texts is not None  # the lines in another driver's words
        self._debug_limit = RateLimit("binder_debug")
        self._user_error_limit = RateLimit("binder_user_error")
        self._alloc_limits: dict[str, RateLimit] = {}
        self.t0 = clock()
        self.ring: deque[tuple[int, str]] = deque(maxlen=capacity)
        self.next_seq = 0
        self.listeners: list[Callable[[str], None]] = []

    def set_debug_mask(self, value: int) -> None:
        """binder's debug_mask parameter is ``value``: the masks the core checks follow."""
        self.debug_param = value
        if self.profile.alloc_module:
            self.debug_mask = value
            return
        self.debug_mask = value & _COMMON_BITS
        self.alloc_debug_mask = ((AllocDebug.USER_ERROR if value & Debug.USER_ERROR else 0)
                                 | (AllocDebug.OPEN_CLOSE if value & Debug.OPEN_CLOSE else 0)
                                 | (AllocDebug.BUFFER_ALLOC if value & _BUFFER_ALLOC_3X else 0)
                                 | (AllocDebug.BUFFER_ALLOC_ASYNC if value & _BUFFER_ALLOC_ASYNC_3X else 0))

    def emit(self, level: int, text: str) -> None:
        """Print one kernel line (``text`` includes its ``binder: `` prefix, no newline)."""
        t = self.clock() - self.t0
        line = f"<{level}>[{int(t):5d}.{int((t % 1) * 1e6):06d}] {text}"
        self.ring.append((self.next_seq, line))
        self.next_seq += 1
        for cb in self.listeners:
            cb(line)

    def _print(self, level: int, prefix: str, fmt: str, args: tuple[object, ...]) -> None:
        """One line of binder.c (``prefix`` "binder: ") or binder_alloc.c ("binder_alloc: "), in
        the words of the profile's driver."""
        if self._texts:
            text = text_3_4(fmt, args)
            if text is not None:
                self.emit(level, text)
            return
        self.emit(level, prefix + (fmt % args if args else fmt))

    def printk(self, level: int, text: str) -> None:
        """A line the profile's driver prints as it is (its own words, prefix included)."""
        self.emit(level, text)

    def debug(self, mask: int, fmt: str, *args: object) -> None:
        """binder_debug(): printed when ``mask`` is set in debug_mask."""
        if self.debug_mask & mask:
            if self.ratelimit and not self._debug_limit.allow(self, self.clock()):
                return
            self._print(KERN_INFO, "binder: ", fmt, args)

    def user_error(self, fmt: str, *args: object) -> None:
        """binder_user_error(): printed under USER_ERROR; arms stop_on_user_error."""
        if self.debug_mask & Debug.USER_ERROR:
            if not self.ratelimit or self._user_error_limit.allow(self, self.clock()):
                self._print(KERN_INFO, "binder: ", fmt, args)
        if self.stop_on_user_error:
            self.stop_on_user_error = 2

    def info(self, fmt: str, *args: object) -> None:
        """pr_info(): always printed."""
        self._print(KERN_INFO, "binder: ", fmt, args)

    def err(self, fmt: str, *args: object) -> None:
        """pr_err(): always printed."""
        self._print(KERN_ERR, "binder: ", fmt, args)

    def warn(self, fmt: str, *args: object) -> None:
        """pr_warn(): always printed."""
        self._print(KERN_WARNING, "binder: ", fmt, args)

    def alloc_debug(self, mask: int, fmt: str, *args: object) -> None:
        """binder_alloc_debug(): printed when ``mask`` is set in the allocator's debug_mask."""
        if self.alloc_debug_mask & mask:
            if self.ratelimit and not self._alloc_limit(fmt).allow(self, self.clock()):
                return
            self._print(KERN_INFO, "binder_alloc: ", fmt, args)

    def _alloc_limit(self, fmt: str) -> RateLimit:
        """The ratelimit state of binder_alloc_debug's call site with ``fmt``."""
        limit = self._alloc_limits.get(fmt)
        if limit is None:
            limit = self._alloc_limits[fmt] = RateLimit(ALLOC_SITES.get(fmt, "binder_alloc_debug"))
        return limit

    def lines_since(self, seq: int) -> tuple[list[str], int]:
        """Lines with sequence >= ``seq`` still in the ring, and the next sequence to ask for."""
        if seq >= self.next_seq or not self.ring:
            return [], self.next_seq
        first = self.ring[0][0]
        start = max(seq, first) - first
        return [line for _s, line in list(self.ring)[start:]], self.next_seq
