"""The driver core's errors: an errno that user space sees (:class:`BinderError`), a failed
transaction (:class:`TransactionError`), and the read that must wait (:class:`WouldBlock`)."""

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


class TransactionError(Exception):
    """A failed binder_transaction, as one value: ``reply`` is the BR code its sender reads
    (BR_FAILED_REPLY, BR_DEAD_REPLY, BR_FROZEN_REPLY), ``param`` the -errno (or 0) of the extended
    error and of failed_transaction_log.

    It is raised where the check that failed is, and :func:`failed_line` reads that source line
    from its traceback: what 6.1 prints as ``__LINE__`` (DESIGN.md, Conventions). A traceback
    says it in compiled code too, where no frame of the check exists to ask.
    """

    def __init__(self, reply: int, param: int = 0) -> None:
        super().__init__(reply, param)
        self.reply = reply
        self.param = param


def failed_line(err: BaseException) -> int:
    """The source line that raised ``err`` (the innermost entry of its traceback), or 0."""
    tb = err.__traceback__
    if tb is None:
        return 0
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_lineno


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
