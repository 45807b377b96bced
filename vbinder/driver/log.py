"""The driver's log: 6.1's binder_debug/binder_user_error/binder_alloc_debug, gated by the masks.

Lines go into a bounded ring (like the kernel's printk buffer) with a sequence number, so that
several kmsg readers can follow it, each seeing every line. There is no rate limiting: a debugging
tool must not drop lines (DESIGN.md, "Which kernel").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Final

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


class Log:
    """The masks, the stop_on_user_error parameter and the ring of printed lines."""

    def __init__(self, debug_mask: int = DEFAULT_DEBUG_MASK,
                 alloc_debug_mask: int = DEFAULT_ALLOC_DEBUG_MASK,
                 capacity: int = 16384, clock: Callable[[], float] = time.monotonic) -> None:
        self.debug_mask = debug_mask
        self.alloc_debug_mask = alloc_debug_mask
        self.stop_on_user_error = 0
        self.clock = clock
        self.t0 = clock()
        self.ring: deque[tuple[int, str]] = deque(maxlen=capacity)
        self.next_seq = 0
        self.listeners: list[Callable[[str], None]] = []

    def emit(self, level: int, text: str) -> None:
        """Print one kernel line (``text`` includes its ``binder: `` prefix, no newline)."""
        t = self.clock() - self.t0
        line = f"<{level}>[{int(t):5d}.{int((t % 1) * 1e6):06d}] {text}"
        self.ring.append((self.next_seq, line))
        self.next_seq += 1
        for cb in self.listeners:
            cb(line)

    def debug(self, mask: int, fmt: str, *args: object) -> None:
        """binder_debug(): printed when ``mask`` is set in debug_mask."""
        if self.debug_mask & mask:
            self.emit(KERN_INFO, "binder: " + (fmt % args if args else fmt))

    def user_error(self, fmt: str, *args: object) -> None:
        """binder_user_error(): printed under USER_ERROR; arms stop_on_user_error."""
        if self.debug_mask & Debug.USER_ERROR:
            self.emit(KERN_INFO, "binder: " + (fmt % args if args else fmt))
        if self.stop_on_user_error:
            self.stop_on_user_error = 2

    def info(self, fmt: str, *args: object) -> None:
        """pr_info(): always printed."""
        self.emit(KERN_INFO, "binder: " + (fmt % args if args else fmt))

    def err(self, fmt: str, *args: object) -> None:
        """pr_err(): always printed."""
        self.emit(KERN_ERR, "binder: " + (fmt % args if args else fmt))

    def warn(self, fmt: str, *args: object) -> None:
        """pr_warn(): always printed."""
        self.emit(KERN_WARNING, "binder: " + (fmt % args if args else fmt))

    def alloc_debug(self, mask: int, fmt: str, *args: object) -> None:
        """binder_alloc_debug(): printed when ``mask`` is set in the allocator's debug_mask."""
        if self.alloc_debug_mask & mask:
            self.emit(KERN_INFO, "binder_alloc: " + (fmt % args if args else fmt))

    def lines_since(self, seq: int) -> tuple[list[str], int]:
        """Lines with sequence >= ``seq`` still in the ring, and the next sequence to ask for."""
        if seq >= self.next_seq or not self.ring:
            return [], self.next_seq
        first = self.ring[0][0]
        start = max(seq, first) - first
        return [line for _s, line in list(self.ring)[start:]], self.next_seq
