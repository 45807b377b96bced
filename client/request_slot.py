"""The client's side of the request slot (docs/abi-slot.md): one FUSE request per ioctl.

A sealed memfd, sent to the daemon over the fd channel, split into regions of one thread each: a
thread puts its request frame in its region and one ``pread`` at the slot offset runs it, write
phase and read phase; a reply too long for that pread comes back in the same region. Standard
library only.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import socket
import threading
from collections.abc import Callable
from typing import Final

from vbinder import fdabi

from .errors import TransportError

REGION: Final = 2 << 20  # a thread's region: requests and replies up to 2 MiB (a 1 MiB - 8 KiB payload fits)
REGIONS: Final = 16  # threads with a region at once (more use pwrite, as version 1)
# The shortest request sent by the slot: shorter ones take pwrite + pread, which measured faster
# for them on a 2-core machine (docs/abi-slot.md, "What it costs and saves").
SLOT_MIN: Final = 16384

Ioctl = Callable[[int, bytes], tuple[int, bytes]]


class RequestSlot:
    """A registered slot: its memfd (this process's copy) and which regions belong to which thread."""

    def __init__(self, fd: int, region: int, count: int) -> None:
        self.fd = fd
        self.region = region
        self.capacity = region - fdabi.SLOT_SEQ.size  # the longest request or reply a region holds
        self._lock = threading.Lock()
        self._free = list(range((count - 1) * region, -1, -region))  # popped from the end: 0 first
        self._owner: dict[int, int] = {}  # region start -> the native thread id holding it

    @classmethod
    def open(cls, sock: socket.socket, ioctl: Ioctl, region: int = REGION, count: int = REGIONS) -> RequestSlot:
        """Make the memfd, send it on the fd channel ``sock`` and ask VBINDER_SLOT whether the
        daemon took it (TransportError if not)."""
        try:
            fd = os.memfd_create("vbinder-slot", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        except OSError as e:
            raise TransportError(e.errno or errno.EIO, f"request slot: {e}") from None
        try:
            os.ftruncate(fd, region * count)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fdabi.SLOT_SEALS)
            record = fdabi.SLOT.pack(fdabi.SLOT_MAGIC, 0, region)
            sock.sendmsg([record], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            ret, arg = ioctl(fdabi.VBINDER_SLOT, bytes(fdabi.SLOT_ARG.size))
            if ret < 0:
                raise TransportError(-ret, f"request slot refused: {os.strerror(-ret)}")
            if fdabi.SLOT_ARG.unpack(arg)[0] != region:
                raise TransportError(errno.EPROTO, "request slot: the daemon took another region size")
        except OSError as e:
            os.close(fd)
            if isinstance(e, TransportError):
                raise
            raise TransportError(e.errno or errno.EIO, f"request slot: {e}") from None
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, region, count)

    def acquire(self, tid: int) -> int:
        """A region for thread ``tid``: its start, or -1 when every region has a living owner."""
        with self._lock:
            if not self._free:
                alive = {t.native_id for t in threading.enumerate()}
                for start, owner in list(self._owner.items()):
                    if owner not in alive:  # its thread ended: nothing of it is in flight
                        del self._owner[start]
                        self._free.append(start)
                if not self._free:
                    return -1
            start = self._free.pop()
            self._owner[start] = tid
            return start

    def put(self, start: int, seq: int, request: bytes) -> None:
        """Put ``request`` in the region at ``start`` as number ``seq`` (new for every request)."""
        n = os.pwritev(self.fd, [fdabi.SLOT_SEQ.pack(seq), request], start)
        if n != fdabi.SLOT_SEQ.size + len(request):
            raise TransportError(errno.EIO, f"short write into the request slot ({n} of {len(request)})")

    def reply(self, start: int, total: int) -> bytes:
        """The reply the daemon put in the region at ``start`` (a stub of ``total`` said so)."""
        if total > self.capacity:
            raise TransportError(errno.EPROTO, f"a slot reply of {total} bytes is longer than its region")
        data = os.pread(self.fd, total, start + fdabi.SLOT_SEQ.size)
        if len(data) != total:
            raise TransportError(errno.EIO, "the slot's reply is cut short")
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
