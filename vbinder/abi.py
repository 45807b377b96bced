"""The vbinder device ABI, version 1: ioctls as frames over pwrite/pread (DESIGN.md).

A request frame carries the ioctl number, its argument and the caller's user-memory segments;
a reply frame carries the ioctl's result, the argument copied back, and the driver's writes into
the caller's memory. The file offset of every pwrite/pread is ``tid << 40 | pos``. Standard
library only: clients import this module.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from typing import Final

from . import uapi

ABI_VERSION: Final = 1
REQUEST_MAGIC: Final = b"VBQ1"
REPLY_MAGIC: Final = b"VBR1"
HEADER: Final = struct.Struct("<4sIIIQ")  # magic, cmd, arg_len, nseg, total
REPLY_HEADER: Final = struct.Struct("<4siIIQ")  # magic, ret, arg_len, nseg, total
SEGMENT: Final = struct.Struct("<QQ")  # addr, len
HEADER_SIZE: Final = HEADER.size  # 24

MAX_FRAME: Final = 8 << 20
MAX_SEGMENTS: Final = 1024
KEY_SHIFT: Final = 40
POS_MASK: Final = (1 << KEY_SHIFT) - 1

# The range the driver hands out for mapped areas.
MMAP_BASE: Final = 0x7000_0000_0000
MMAP_END: Final = 0x7FFF_0000_0000
PAGE_SIZE: Final = 4096
MMAP_MAX_USED: Final = 4 << 20  # SZ_4M: the kernel uses at most this much of a mapping

# vbinder's own ioctls, type 'v'.
VBINDER_MMAP_ARG: Final = struct.Struct("<QQII")  # addr, size, prot, flags
VBINDER_MUNMAP_ARG: Final = struct.Struct("<QQ")  # addr, size
VBINDER_ABI_VERSION: Final = uapi.IOR("v", 0, 4)
VBINDER_MMAP: Final = uapi.IOWR("v", 1, VBINDER_MMAP_ARG.size)
VBINDER_MUNMAP: Final = uapi.IOW("v", 2, VBINDER_MUNMAP_ARG.size)
# Extension (docs/tracing.md): 1 while a trace records binder transactions, so that clients name
# their calls; a name travels as a request segment at NAME_ADDR ("descriptor\0method", UTF-8).
VBINDER_TRACE_NAMES: Final = uapi.IOR("v", 3, 4)
NAME_ADDR: Final = 0xFFFF_FFFF_FFF0_0000  # above user space: no pointer of the caller points there
NAME_MAX: Final = 1024
# Extension (docs/abi-chained.md, VBINDER_FEATURES bit 1): a BINDER_WRITE_READ after which the
# thread's next ioctl is the read-only one of the fast path. When its read phase returns only
# BR_NOOP + BR_TRANSACTION_COMPLETE, the daemon runs that read at once: the reply is the first
# frame, marked CHAINED_MAGIC, then the second's (REPLY_MAGIC).
VBINDER_WRITE_READ_CHAINED: Final = uapi.IOWR("v", 7, uapi.WRITE_READ.size)
CHAINED_MAGIC: Final = b"VBRC"

PROT_READ: Final = 1
PROT_WRITE: Final = 2


class FrameError(ValueError):
    """A malformed frame: the pwrite that completes it fails with EINVAL."""


def key(tid: int) -> int:
    """The file offset at which thread ``tid`` writes its requests and reads its replies."""
    return tid << KEY_SHIFT


def split_offset(offset: int) -> tuple[int, int]:
    """(tid, pos) of a file offset."""
    return offset >> KEY_SHIFT, offset & POS_MASK


class Frame:
    """A decoded request (``code`` is the ioctl number) or reply (``code`` is the return value).

    A plain class (made for every frame): a compiled dataclass would keep an interpreted __init__.
    """

    __slots__ = ("code", "arg", "segments")

    def __init__(self, code: int, arg: bytes, segments: list[tuple[int, bytes]] | None = None) -> None:
        self.code = code
        self.arg = arg
        self.segments: list[tuple[int, bytes]] = segments if segments is not None else []

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Frame) and self.code == other.code and self.arg == other.arg
                and self.segments == other.segments)

    def __repr__(self) -> str:
        return f"Frame(code={self.code}, arg={self.arg!r}, segments={self.segments!r})"


_PAD: Final = tuple(b"\0" * ((8 - n) % 8) for n in range(8))  # padding after n % 8 bytes


def _encode(header: struct.Struct, magic: bytes, code: int, arg: bytes,
            segments: list[tuple[int, bytes]] | tuple[tuple[int, bytes], ...]) -> bytes:
    pack_seg = SEGMENT.pack
    parts = [b"", arg, _PAD[len(arg) & 7]]
    total = HEADER_SIZE + ((len(arg) + 7) & ~7)
    for addr, data in segments:
        n = len(data)
        parts += (pack_seg(addr, n), data, _PAD[n & 7])
        total += 16 + ((n + 7) & ~7)
    parts[0] = header.pack(magic, code, len(arg), len(segments), total)
    return b"".join(parts)


def encode_request(cmd: int, arg: bytes = b"",
                   segments: list[tuple[int, bytes]] | tuple[tuple[int, bytes], ...] = ()) -> bytes:
    return _encode(HEADER, REQUEST_MAGIC, cmd, arg, segments)


def encode_reply(ret: int, arg: bytes = b"",
                 segments: list[tuple[int, bytes]] | tuple[tuple[int, bytes], ...] = ()) -> bytes:
    return _encode(REPLY_HEADER, REPLY_MAGIC, ret, arg, segments)


def frame_total(header: bytes) -> int:
    """The ``total`` of a request that starts with ``header`` (24 bytes or more; checks the magic)."""
    total: int
    magic, _cmd, _arg_len, _nseg, total = HEADER.unpack_from(header)  # the first 24 bytes
    if magic != REQUEST_MAGIC:
        raise FrameError("bad magic")
    if total < HEADER_SIZE or total > MAX_FRAME:
        raise FrameError(f"bad total {total}")
    return total


def _decode(buf: bytes | bytearray | memoryview, header: struct.Struct, magic: bytes,
            check_overlap: bool) -> Frame:
    total_len = len(buf)
    if total_len < HEADER_SIZE:
        raise FrameError("short frame")
    got_magic: bytes
    code: int
    arg_len: int
    nseg: int
    total: int
    got_magic, code, arg_len, nseg, total = header.unpack_from(buf)  # typed: native ints when compiled
    if got_magic != magic:
        raise FrameError("bad magic")
    if total != total_len or total > MAX_FRAME:
        raise FrameError("total disagrees with the frame's length")
    if nseg > MAX_SEGMENTS:
        raise FrameError("too many segments")
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    pos = HEADER_SIZE + ((arg_len + 7) & ~7)
    if pos > total:
        raise FrameError("argument runs past the end")
    arg = buf[HEADER_SIZE:HEADER_SIZE + arg_len]
    segments: list[tuple[int, bytes]] = []
    unpack_seg = SEGMENT.unpack_from
    addr: int
    n: int
    for _ in range(nseg):
        if pos + 16 > total:
            raise FrameError("segment header runs past the end")
        addr, n = unpack_seg(buf, pos)
        pos += 16
        end = pos + ((n + 7) & ~7)
        if end > total:
            raise FrameError("segment runs past the end")
        if n:
            if addr + n > 1 << 64:
                raise FrameError("segment wraps the address space")
            segments.append((addr, buf[pos:pos + n]))
        pos = end
    if pos != total:
        raise FrameError("frame has trailing bytes")
    if check_overlap and len(segments) > 1:
        ordered = sorted(segments)  # by address (two at one address overlap anyway)
        end = 0
        for a, d in ordered:
            if a < end:
                raise FrameError("segments overlap")
            end = a + len(d)
    return Frame(code, arg, segments)


def decode_request(buf: bytes | bytearray | memoryview) -> Frame:
    """Decode and check a complete request frame; FrameError when it is malformed."""
    return _decode(buf, HEADER, REQUEST_MAGIC, check_overlap=True)


def decode_reply(buf: bytes | bytearray | memoryview) -> Frame:
    """Decode a complete reply frame (``code`` is the ioctl's return value)."""
    return _decode(buf, REPLY_HEADER, REPLY_MAGIC, check_overlap=False)


def reply_total(header: bytes | bytearray | memoryview) -> int:
    """The ``total`` of a reply, from its first 24 bytes (of its first frame, if chained)."""
    fields = REPLY_HEADER.unpack_from(header)
    magic: bytes = fields[0]
    total: int = fields[4]
    if magic != REPLY_MAGIC and magic != CHAINED_MAGIC:
        raise FrameError("bad reply magic")
    return total


def is_chained(header: bytes | bytearray | memoryview) -> bool:
    """Whether a reply starts with a chained first frame (another frame follows it)."""
    return header[:4] == CHAINED_MAGIC


def decode_chained(buf: bytes) -> tuple[Frame, Frame | None]:
    """A whole reply: its frame, or (docs/abi-chained.md) its two frames when chained."""
    if buf[:4] != CHAINED_MAGIC:
        return decode_reply(buf), None
    first_total = reply_total(buf)
    first = _decode(buf[:first_total], REPLY_HEADER, CHAINED_MAGIC, check_overlap=False)
    return first, decode_reply(buf[first_total:])


def encode_chained(first: bytes) -> bytes:
    """A reply frame marked as the first of a chained reply."""
    return CHAINED_MAGIC + first[4:]


def unchain(first: bytes) -> bytes:
    """The first frame of a chained reply as a reply of its own (the chained read did not run)."""
    return REPLY_MAGIC + first[4:]


class UserMemory:
    """The caller's memory as a request's segments: what ``copy_from_user`` may read."""

    __slots__ = ("_starts", "_segments", "name")

    def __init__(self, segments: list[tuple[int, bytes]]) -> None:
        ordered = sorted(segments)
        self.name: bytes | None = None  # the call's name (VBINDER_TRACE_NAMES), not user memory
        if ordered and ordered[-1][0] == NAME_ADDR:
            self.name = ordered.pop()[1][:NAME_MAX]
        self._starts = [a for a, _ in ordered]
        self._segments = ordered

    def read(self, addr: int, n: int) -> bytes | None:
        """``n`` bytes at ``addr``, or None where the kernel's copy_from_user would fault."""
        if n == 0:
            return b""
        i = bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        start, data = self._segments[i]
        off = addr - start
        if off + n > len(data):
            return None
        return data[off:off + n]
