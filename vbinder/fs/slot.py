"""The daemon's side of the request slot (docs/abi-slot.md): requests and replies in shared memory.

A client sends a sealed memfd over its fd channel; a ``pread`` at ``key | SLOT_BIT | start`` then
runs the request frame the client put at ``start`` (write phase and read phase, one FUSE request),
and a reply too long for the pread goes back into the same region. The daemon never maps the
file: it reads and writes it with ``pread``/``pwrite``, so a client that changes the file under it
changes nothing the daemon already copied, and cannot make it fault. The file is sealed against
shrinking, and the daemon writes only below the size it had when registered: nothing it writes
grows the file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import Final

from .. import abi, fdabi

_FIRST_READ: Final = 4096  # one pread of the file usually gets the whole request
_SEQ: Final = fdabi.SLOT_SEQ.size


class SlotError(Exception):
    """A slot request the daemon will not run: its pread fails with ``errno`` (nothing started)."""

    def __init__(self, err: int, why: str) -> None:
        super().__init__(why)
        self.errno = err


def check_file(fd: int, region: int) -> int:
    """The size of a file offered as a slot with regions of ``region`` bytes, or -errno: it must
    be a memfd (or other shmem file) sealed against shrinking, at most SLOT_MAX_SIZE,
    a whole number of regions."""
    try:
        st = os.fstat(fd)
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)  # fails (EINVAL) for a file that is not shmem
    except OSError:
        return -errno.EINVAL
    if not stat.S_ISREG(st.st_mode) or seals & fdabi.SLOT_SEALS != fdabi.SLOT_SEALS:
        return -errno.EINVAL
    size = st.st_size
    if (region < fdabi.SLOT_MIN_REGION or region % fdabi.SLOT_MIN_REGION or region > abi.MAX_FRAME
            or not 0 < size <= fdabi.SLOT_MAX_SIZE or size % region):
        return -errno.EINVAL
    return size


class RequestSlot:
    """One open file's slot: the daemon's fd for it, its regions' size, its size when registered."""

    __slots__ = ("fd", "region", "size", "capacity")

    def __init__(self, fd: int, region: int, size: int) -> None:
        self.fd = fd
        self.region = region
        self.size = size
        self.capacity = region - _SEQ  # the longest reply a region holds

    def request(self, pos: int) -> tuple[int, bytes]:
        """(number, request frame) in the region ``pos`` names (a pread's pos with SLOT_BIT), copied."""
        start = pos & fdabi.SLOT_OFF_MASK
        region = self.region
        if start % region or start >= self.size:
            raise SlotError(errno.EINVAL, f"slot offset {start:#x} is not a region of the slot")
        data = os.pread(self.fd, min(region, _FIRST_READ), start)
        if len(data) < _SEQ + abi.HEADER_SIZE:
            raise SlotError(errno.EINVAL, "the slot's request is cut short")
        try:
            total = abi.frame_total(data[_SEQ:])
        except abi.FrameError as e:
            raise SlotError(errno.EINVAL, f"malformed frame in the slot: {e}") from None
        if _SEQ + total > region:
            raise SlotError(errno.EINVAL, f"the slot's request ({total} bytes) is longer than its region")
        seq: int = fdabi.SLOT_SEQ.unpack_from(data)[0]
        if _SEQ + total <= len(data):
            return seq, data[_SEQ:_SEQ + total]
        # A large frame: read again, the frame alone (no copy to cut it out). If the client changed
        # the region meanwhile, the daemon runs what it read, checked as any frame.
        frame = os.pread(self.fd, total, start + _SEQ)
        if len(frame) < total:
            raise SlotError(errno.EINVAL, "the slot's request is cut short")
        return seq, frame

    def put_reply(self, pos: int, reply: bytes) -> bytes | None:
        """Write ``reply`` into the region of ``pos`` (after its number): the stub frame the pread
        returns instead, or None if it does not fit (the pread then returns the reply as version 1
        does)."""
        start = (pos & fdabi.SLOT_OFF_MASK) + _SEQ
        if _SEQ + len(reply) > self.region or start + len(reply) > self.size:
            return None
        try:
            n = os.pwrite(self.fd, reply, start)
        except OSError:
            return None
        if n != len(reply):
            return None
        return abi.REPLY_HEADER.pack(fdabi.STUB_MAGIC, 0, 0, 0, len(reply))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
