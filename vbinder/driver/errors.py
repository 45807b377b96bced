"""The one exception type of the driver core: an errno that user space sees."""

from __future__ import annotations

import errno as _errno


class BinderError(Exception):
    """An ioctl or file operation failed with ``errno`` (as the kernel's ``-errno`` return)."""

    def __init__(self, errno: int, why: str = "") -> None:
        super().__init__(errno, why or _errno.errorcode.get(errno, str(errno)))
        self.errno = errno
        self.why = why

    def __str__(self) -> str:
        name = _errno.errorcode.get(self.errno, str(self.errno))
        return f"{name}: {self.why}" if self.why else name


class WouldBlock(Exception):
    """The read phase has nothing to deliver yet: the caller waits on ``waiter`` and retries.

    With a ``deadline`` (on the driver's clock) the caller retries then, even if not woken.
    The core returns it rather than raising it (a raise through compiled frames builds a
    traceback entry in each: a tenth of a call's work); callers may raise it.
    """

    def __init__(self, waiter: Waiter, deadline: float | None = None) -> None:
        # No super().__init__(): BaseException.__new__ has the arguments already, and the call
        # from compiled code is slow for an object made on every wait.
        self.waiter = waiter
        self.deadline = deadline


class Waiter:
    """Something a blocked reader waits on; the I/O layer sets ``wake_cb`` before it waits."""

    __slots__ = ("wake_cb",)

    def __init__(self) -> None:
        self.wake_cb: object | None = None

    def wake(self) -> None:
        cb = self.wake_cb
        if cb is not None:
            self.wake_cb = None
            cb()  # type: ignore[operator]
