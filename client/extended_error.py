"""The extended error of a failed call, for the exception's message, without taking it from the program.

``BINDER_GET_EXTENDED_ERROR`` (6.0+) gives a thread's last failure as (debug id, BR code, errno)
and clears it. The client reads it when a call fails, to say ``BR_FAILED_REPLY (29201), -EPERM``;
a program that reads it afterwards must still get it, as it would without the client's read. So
each transport keeps what the client read, per thread, and hands it out on the program's next
``BINDER_GET_EXTENDED_ERROR`` (unless the driver has a newer failure), once, as the driver would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from vbinder import uapi
from vbinder.explain import return_error


def _cleared() -> bytes:
    return uapi.EXTENDED_ERROR.pack(0, uapi.BR_OK, 0)


_EMPTY: bytes = _cleared()  # what a read leaves in the driver


class ExtendedErrors:
    """What the client read of each thread's extended error and the program has not."""

    def __init__(self) -> None:
        self._local = threading.local()

    def handed_out(self, ret: int, arg: bytes) -> tuple[int, bytes]:
        """The result of a program's ``BINDER_GET_EXTENDED_ERROR``: the driver's, or if it is
        still what the client's read left there (cleared: id 0, BR_OK), what the client read;
        either way nothing is kept after."""
        kept: bytes | None = getattr(self._local, "kept", None)
        self._local.kept = None
        if ret == 0 and kept is not None and arg == _EMPTY:
            return 0, kept
        return ret, arg

    def read(self, ioctl: Callable[[int, bytes], tuple[int, bytes]]) -> tuple[int, int, int]:
        """Read the calling thread's extended error through ``ioctl`` (a transport's, which hands
        out what was kept) and keep it for the program: (id, BR code, errno); BR_OK if none."""
        ret, arg = ioctl(uapi.BINDER_GET_EXTENDED_ERROR, _EMPTY)
        if ret < 0 or len(arg) != uapi.EXTENDED_ERROR.size:
            return 0, uapi.BR_OK, 0  # a driver before 6.0 has no extended error
        eid, cmd, param = uapi.EXTENDED_ERROR.unpack(arg)
        if arg != _EMPTY:
            self._local.kept = arg  # the read cleared it in the driver
        return eid, cmd, param


def failure_text(command: int, ee: tuple[int, int, int]) -> str:
    """``BR_FAILED_REPLY (29201), -EPERM``: the BR code of a failed call, with the errno of its
    extended error when that error is this failure's."""
    _eid, cmd, param = ee
    return return_error(command, param if cmd == command else None)
