"""ParcelFileDescriptor: an fd that travels in parcels (android.os.ParcelFileDescriptor, libbinder's
``os::ParcelFileDescriptor``), and the fds a parcel owns.

A ParcelFileDescriptor owns its fd: it closes it when closed, at the end of a ``with`` block, or
when it is garbage-collected. In a parcel it is written as AIDL writes it (``writeToParcel``):
an int32 0 (no comm channel) and a BINDER_TYPE_FD object of a duplicate that the parcel owns;
read back, it is a new ParcelFileDescriptor of a duplicate of the received fd. A pure module (not
compiled): these objects have ``__del__``.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any, Protocol


class HasFileno(Protocol):
    def fileno(self) -> int: ...


def fileno(fd: int | HasFileno) -> int:
    """The fd number of an int or of anything with ``fileno()`` (a file, a socket, a PFD)."""
    return fd if isinstance(fd, int) else fd.fileno()


def dup_cloexec(fd: int) -> int:
    """``fcntl(fd, F_DUPFD_CLOEXEC, 0)``, as libbinder duplicates fds."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)


class ParcelFileDescriptor:
    """An owned file descriptor that can be written to a parcel."""

    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd: int) -> None:
        """Take ownership of ``fd`` (use :meth:`dup` to keep yours)."""
        if fd < 0:
            raise ValueError(f"not a file descriptor: {fd}")
        self._fd = fd

    @classmethod
    def dup(cls, fd: int | HasFileno) -> ParcelFileDescriptor:
        """A ParcelFileDescriptor of a duplicate of ``fd`` (close-on-exec)."""
        return cls(dup_cloexec(fileno(fd)))

    @classmethod
    def open(cls, path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o666) -> ParcelFileDescriptor:
        """``open(2)`` ``path`` (close-on-exec)."""
        return cls(os.open(path, flags | os.O_CLOEXEC, mode))

    @classmethod
    def create_pipe(cls) -> tuple[ParcelFileDescriptor, ParcelFileDescriptor]:
        """A pipe: (read end, write end)."""
        r, w = os.pipe2(os.O_CLOEXEC)
        return cls(r), cls(w)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("I/O operation on a closed ParcelFileDescriptor")
        return self._fd

    def detach(self) -> int:
        """Give up ownership: the fd, which the caller must close."""
        fd, self._fd = self.fileno(), -1
        return fd

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def write_to_parcel(self, parcel: Any) -> None:
        """``writeToParcel``: what AIDL writes for a (non-null) ParcelFileDescriptor."""
        parcel.write_parcel_file_descriptor(self)

    def __enter__(self) -> ParcelFileDescriptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    def __repr__(self) -> str:
        return f"ParcelFileDescriptor({self._fd if self._fd >= 0 else 'closed'})"


class OwnedFds:
    """The fds a parcel owns (those it was given with ``take_ownership``, duplicates it made, and
    those a received parcel holds): closed with the parcel, or when it is garbage-collected."""

    __slots__ = ("fds",)

    def __init__(self) -> None:
        self.fds: list[int] = []

    def close(self) -> None:
        fds, self.fds = self.fds, []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self) -> None:
        self.close()
