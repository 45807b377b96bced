"""The fd channel's codec (vbinder/fdabi.py): which fds a write buffer names, the fixup segment."""

from __future__ import annotations

import struct

import pytest

from vbinder import fdabi, uapi

TR = uapi.TRANSACTION_DATA


def tx(data_ptr: int, data: bytes, offsets_ptr: int, offsets: list[int], cmd: int = uapi.BC_TRANSACTION,
       sg: int | None = None) -> bytes:
    out = struct.pack("<I", cmd) + TR.pack(0, 0, 1, 0, 0, 0, len(data), 8 * len(offsets), data_ptr, offsets_ptr)
    return out + struct.pack("<Q", sg) if sg is not None else out


def test_fd_objects_of_every_transaction_once_in_order() -> None:
    a = uapi.FD_OBJECT.pack(uapi.BINDER_TYPE_FD, 0, 7, 0) + uapi.FD_OBJECT.pack(uapi.BINDER_TYPE_FD, 0, 3, 0)
    b = (uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, 0, 1, 1)
         + uapi.FD_OBJECT.pack(uapi.BINDER_TYPE_FD, 0, 7, 0))
    segs = [(0x1000, a), (0x2000, struct.pack("<QQ", 0, 24)), (0x3000, b), (0x4000, struct.pack("<QQ", 0, 24))]
    write = (struct.pack("<IQ", uapi.BC_FREE_BUFFER, 0x7000_0000_0000) + tx(0x1000, a, 0x2000, [0, 24])
             + tx(0x3000, b, 0x4000, [0, 24], cmd=uapi.BC_REPLY))
    assert fdabi.fds_in_write(write, segs) == [7, 3]


def test_fd_array_in_its_parent_buffer() -> None:
    body = b"HEADER!!" + struct.pack("<3i", 10, 11, 12) + b"\0" * 4
    ptr = uapi.BUFFER_OBJECT.pack(uapi.BINDER_TYPE_PTR, 0, 0x5000, len(body), 0, 0)
    fda = uapi.FD_ARRAY_OBJECT.pack(uapi.BINDER_TYPE_FDA, 0, 3, 0, 8)
    data = ptr + fda
    segs = [(0x1000, data), (0x2000, struct.pack("<QQ", 0, 40)), (0x5000, body)]
    write = tx(0x1000, data, 0x2000, [0, 40], cmd=uapi.BC_TRANSACTION_SG, sg=24)
    assert fdabi.fds_in_write(write, segs) == [10, 11, 12]


def test_nothing_to_stage_without_objects_or_with_bad_pointers() -> None:
    assert fdabi.fds_in_write(tx(0x1000, b"abcd", 0, []), [(0x1000, b"abcd")]) == []
    obj = uapi.FD_OBJECT.pack(uapi.BINDER_TYPE_FD, 0, 5, 0)
    assert fdabi.fds_in_write(tx(0x1000, obj, 0x9000, [0]), [(0x1000, obj)]) == []  # offsets not in memory
    assert fdabi.fds_in_write(tx(0x1000, obj, 0x2000, [100]), [(0x1000, obj), (0x2000, struct.pack("<Q", 100))]) == []
    assert fdabi.fds_in_write(b"\x01\x02", []) == []


def test_fixup_segment_round_trip_and_malformed() -> None:
    seg = fdabi.encode_fixups(9, [(0x7000_0000_0010, fdabi.KIND_FD), (0x7000_0000_0040, fdabi.KIND_FDA)])
    assert fdabi.decode_fixups(seg) == (9, [(0x7000_0000_0010, 0), (0x7000_0000_0040, 1)])
    with pytest.raises(fdabi.RecordError):
        fdabi.decode_fixups(seg[:-1])
    with pytest.raises(fdabi.RecordError):
        fdabi.decode_fixups(b"")


def test_ioctl_numbers_are_vbinders_own_and_sized() -> None:
    for cmd, size in ((fdabi.VBINDER_FEATURES, 8), (fdabi.VBINDER_FD_CHANNEL, 96), (fdabi.VBINDER_WRITE_READ_FDS, 56),
                      (fdabi.VBINDER_SLOT, 8)):
        assert (cmd >> 8) & 0xFF == ord("v") and uapi.ioc_size(cmd) == size
