"""The fd channel's records, and the fds a write buffer's transactions name (docs/abi-fds.md).

The fd channel is the extension of the device ABI that carries file descriptors: a
``SOCK_SEQPACKET`` Unix socket beside each open device file, over which a client stages the fds
its transactions name (``SCM_RIGHTS``) and receives the fds delivered to it. This module is the
codec both ends share: the daemon (``vbinder.fs.fd_channel``), ``vbinder_client`` and, in C,
the preload library. Standard library only: clients import it.
"""

from __future__ import annotations

import struct
from typing import Final

from . import uapi
from .abi import UserMemory

# -- negotiation: vbinder's ioctls 4, 5, 6 ---------------------------------------------------------

FEATURE_FDS: Final = 1 << 0  # VBINDER_FEATURES bit 0: the fd channel
FEATURE_CHAINED: Final = 1 << 1  # bit 1: the chained wait (docs/abi-chained.md)
FEATURE_SLOT: Final = 1 << 2  # bit 2: the request slot (docs/abi-slot.md)
FEATURES: Final = struct.Struct("<Q")
VBINDER_FEATURES: Final = uapi.IOR("v", 4, FEATURES.size)
TOKEN_SIZE: Final = 32
NAME_SIZE: Final = 64
CHANNEL: Final = struct.Struct(f"<{TOKEN_SIZE}s{NAME_SIZE}s")  # struct vbinder_fd_channel: token, name
VBINDER_FD_CHANNEL: Final = uapi.IOR("v", 5, CHANNEL.size)
# BINDER_WRITE_READ whose transactions carry fds the thread staged, with the request's sequence
# number: struct vbinder_write_read_fds { struct binder_write_read bwr; u32 seq; u32 flags; }
WRITE_READ_FDS: Final = struct.Struct("<QQQQQQII")
VBINDER_WRITE_READ_FDS: Final = uapi.IOWR("v", 6, WRITE_READ_FDS.size)
WR_CHAIN: Final = 1  # its flags (0 before the chained wait): chained, as VBINDER_WRITE_READ_CHAINED

# -- records ------------------------------------------------------------------------------------------

MAX_FDS: Final = 253  # SCM_MAX_FD: fds one record may carry
VERSION: Final = 1


def _magic(text: str) -> int:
    return int.from_bytes(text.encode(), "little")


HELLO_MAGIC: Final = _magic("VBFH")
ACK_MAGIC: Final = _magic("VBFA")
STAGE_MAGIC: Final = _magic("VBFS")
DELIVER_MAGIC: Final = _magic("VBFD")
INSTALLED_MAGIC: Final = _magic("VBFI")
SLOT_MAGIC: Final = _magic("VBFR")

HELLO: Final = struct.Struct(f"<II{TOKEN_SIZE}s")  # magic, version, token
ACK: Final = struct.Struct("<Ii")  # magic, status (0 or -errno)
STAGE: Final = struct.Struct("<IIIII")  # magic, flags, tid, seq, count; then count x s32 fd numbers
DELIVER: Final = struct.Struct("<IIQII")  # magic, flags, tag, index, count
INSTALLED: Final = struct.Struct("<IIQ")  # magic, count, tag; then count x s32 fd numbers
SLOT: Final = struct.Struct("<IIQ")  # magic, flags (0), region size; with one fd, the slot's file

STAGE_FIRST: Final = 1  # STAGE flags: this record starts the thread's set
DELIVER_LAST: Final = 1  # DELIVER flags: the delivery's last record
DELIVER_REPORT: Final = 2  # DELIVER flags: answer with INSTALLED

# -- the request slot (docs/abi-slot.md) ------------------------------------------------------------

# VBINDER_SLOT: the region size of the slot the open file's channel registered, or -errno.
SLOT_ARG: Final = struct.Struct("<Q")
VBINDER_SLOT: Final = uapi.IOR("v", 8, SLOT_ARG.size)
SLOT_BIT: Final = 1 << 39  # in a pread's pos: run the request in the slot at the pos's low bits
SLOT_OFF_MASK: Final = SLOT_BIT - 1
SLOT_MIN_REGION: Final = 4096
SLOT_MAX_SIZE: Final = 64 << 20  # the slot's file, at most (the daemon may write all of it)
SLOT_SEALS: Final = 0x0002  # F_SEAL_SHRINK (not 0x4, F_SEAL_GROW): the file never gets shorter than registered
STUB_MAGIC: Final = b"VBRS"  # a pread's answer when the reply went into the slot
SLOT_SEQ: Final = struct.Struct("<Q")  # a region starts with its request's number, then the frame


def slot_offset(key: int, region_start: int) -> int:
    """The pread offset that runs the request in the slot region at ``region_start``."""
    return key | SLOT_BIT | region_start


# -- the fixup segment of a reply frame -------------------------------------------------------------

FIXUPS_ADDR: Final = 0xFFFF_FFFF_0000_0000  # far outside user space: never memory
FIXUPS_HEADER: Final = struct.Struct("<QII")  # tag, count, reserved
FIXUP: Final = struct.Struct("<QII")  # addr, kind, reserved
KIND_FD: Final = 0  # a BINDER_TYPE_FD object's fd: the receiver owns it
KIND_FDA: Final = 1  # an entry of a BINDER_TYPE_FDA array: closed when its buffer is freed


class RecordError(ValueError):
    """A malformed record on the channel."""


def encode_fixups(tag: int, fixups: list[tuple[int, int]]) -> bytes:
    """The fixup segment's bytes: ``fixups`` are (address, kind), in the delivery's fd order."""
    return FIXUPS_HEADER.pack(tag, len(fixups), 0) + b"".join(FIXUP.pack(a, k, 0) for a, k in fixups)


def decode_fixups(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(tag, [(address, kind), ...]) of a fixup segment."""
    if len(data) < FIXUPS_HEADER.size:
        raise RecordError("short fixup segment")
    tag, count, _reserved = FIXUPS_HEADER.unpack_from(data)
    if len(data) != FIXUPS_HEADER.size + count * FIXUP.size:
        raise RecordError("fixup segment size disagrees with its count")
    out = []
    for i in range(count):
        addr, kind, _r = FIXUP.unpack_from(data, FIXUPS_HEADER.size + i * FIXUP.size)
        out.append((addr, kind))
    return tag, out


def encode_numbers(numbers: list[int]) -> bytes:
    return struct.pack(f"<{len(numbers)}i", *numbers)


def decode_numbers(data: bytes, offset: int, count: int) -> list[int]:
    if len(data) != offset + 4 * count:
        raise RecordError("record size disagrees with its count")
    return list(struct.unpack_from(f"<{count}i", data, offset))


# -- which fds a write buffer's transactions name ---------------------------------------------------

_TR: Final = uapi.TRANSACTION_DATA
_TR_SIZE: Final = _TR.size
_BC_TRANSACTION: Final = uapi.BC_TRANSACTION
_BC_REPLY: Final = uapi.BC_REPLY
_BC_TRANSACTION_SG: Final = uapi.BC_TRANSACTION_SG
_BC_REPLY_SG: Final = uapi.BC_REPLY_SG
_MAX_FDA: Final = 1 << 16  # an array this long is refused by the driver anyway (not enough space)


def fds_in_write(write: bytes, segments: list[tuple[int, bytes]]) -> list[int]:
    """The fd numbers that the BINDER_TYPE_FD and _FDA objects of ``write``'s transactions name,
    each once, in order: what the thread must stage before the request (docs/abi-fds.md).

    ``segments`` are the sender's memory the request carries (data, offsets, scatter-gather
    buffers). Objects are read as the driver will read them, without its checks: a malformed
    object only stages an fd that nothing takes, or misses one the driver refuses anyway.
    """
    out: list[int] = []
    mem: UserMemory | None = None
    pos = 0
    end = len(write)
    while pos + 4 <= end:
        # (bytes indexing, not struct: this runs for every write of a client with an fd channel)
        cmd = write[pos] | write[pos + 1] << 8 | write[pos + 2] << 16 | write[pos + 3] << 24
        pos += 4
        if (cmd == _BC_TRANSACTION or cmd == _BC_REPLY or cmd == _BC_TRANSACTION_SG or cmd == _BC_REPLY_SG) \
                and pos + _TR_SIZE <= end and _has_objects(write, pos + 40):
            if mem is None:
                mem = UserMemory(segments)
            _objects_fds(_TR.unpack_from(write, pos), mem, out)
        pos += (cmd >> 16) & 0x3FFF  # _IOC_SIZE
    return out


def _has_objects(write: bytes, at: int) -> bool:
    """The offsets_size (a u64 at ``at``) is not 0."""
    for i in range(at, at + 8):
        if write[i]:
            return True
    return False


def _objects_fds(tr: tuple[int, ...], mem: UserMemory, out: list[int]) -> None:
    data_size: int = tr[6]
    offsets_size: int = tr[7]
    data_ptr: int = tr[8]
    offsets_ptr: int = tr[9]
    raw = mem.read(offsets_ptr, offsets_size - offsets_size % 8)
    if raw is None:
        return
    offsets = struct.unpack(f"<{len(raw) // 8}Q", raw)
    for off in offsets:
        if off + 4 > data_size:
            continue
        head = mem.read(data_ptr + off, 4)
        if head is None:
            continue
        otype = int.from_bytes(head, "little")
        if otype == uapi.BINDER_TYPE_FD:
            obj = mem.read(data_ptr + off, uapi.FD_OBJECT.size)
            if obj is not None:
                _add(out, uapi.FD_OBJECT.unpack(obj)[2] & 0xFFFFFFFF)
        elif otype == uapi.BINDER_TYPE_FDA:
            obj = mem.read(data_ptr + off, uapi.FD_ARRAY_OBJECT.size)
            if obj is None:
                continue
            _t, _pad, num_fds, parent, parent_offset = uapi.FD_ARRAY_OBJECT.unpack(obj)
            if parent >= len(offsets) or not 0 < num_fds <= _MAX_FDA:
                continue
            pobj = mem.read(data_ptr + offsets[parent], uapi.BUFFER_OBJECT.size)
            if pobj is None or int.from_bytes(pobj[:4], "little") != uapi.BINDER_TYPE_PTR:
                continue
            buffer = uapi.BUFFER_OBJECT.unpack(pobj)[2]
            fds = mem.read(buffer + parent_offset, 4 * num_fds)
            if fds is not None:
                for fd in struct.unpack(f"<{num_fds}I", fds):
                    _add(out, fd)


def _add(out: list[int], fd: int) -> None:
    if fd < 0x8000_0000 and fd not in out:
        out.append(fd)
