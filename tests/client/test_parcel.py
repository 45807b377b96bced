"""Tests of vbinder_client.parcel against the byte layouts of AOSP's Parcel.cpp and Status.cpp."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vbinder_client.parcel import (
    EX_HAS_REPLY_HEADER,
    EX_ILLEGAL_ARGUMENT,
    EX_NONE,
    EX_PARCELABLE,
    EX_SECURITY,
    EX_SERVICE_SPECIFIC,
    EX_TRANSACTION_FAILED,
    HEADER_SYST,
    HEADER_VNDR,
    STRICT_MODE_PENALTY_GATHER,
    UNSET_WORK_SOURCE,
    FlatBinderObject,
    InterfaceToken,
    Parcel,
    ParcelError,
    RemoteException,
    Stability,
    interface_header,
)

from vbinder.uapi import BINDER_TYPE_BINDER, BINDER_TYPE_FD, BINDER_TYPE_HANDLE, FLAT_BINDER_OBJECT

SM = "android.os.IServiceManager"


def reader(p: Parcel) -> Parcel:
    """A parcel over what ``p`` wrote, positioned at 0 (what the receiver gets)."""
    return Parcel(p.data(), p.objects())


class FakeBinder:
    """A binder object as the flatten hook sees it."""

    def __init__(self, flat: tuple[int, int, int, int], stability: int | None = None) -> None:
        self.flat = flat
        if stability is not None:
            self.stability = stability

    def flatten(self) -> tuple[int, int, int, int]:
        return self.flat


LOCAL = FakeBinder((BINDER_TYPE_BINDER, 0x113, 0x7F00_0000_1000, 0x7F00_0000_2000))


# --- round trips -------------------------------------------------------------------------------

ROUND_TRIPS: list[tuple[str, Any]] = [
    ("int32", 0),
    ("int32", -1),
    ("int32", 2**31 - 1),
    ("int32", -(2**31)),
    ("uint32", 0),
    ("uint32", 2**32 - 1),
    ("int64", -(2**63)),
    ("int64", 2**63 - 1),
    ("uint64", 2**64 - 1),
    ("bool", True),
    ("bool", False),
    ("float", 1.5),
    ("float", -0.25),
    ("float", math.inf),
    ("double", 0.1),
    ("double", -1e300),
    ("byte", 0),
    ("byte", 127),
    ("byte", -128),
    ("string16", "hi"),
    ("string16", ""),
    ("string16", None),
    ("string16", "caf\u00e9 \U0001f600"),
    ("string16", "lone \ud800 surrogate"),
    ("utf8_from_utf16", "caf\u00e9 \U0001f600"),
    ("utf8_from_utf16", None),
    ("string8", "abc"),
    ("string8", ""),
    ("string8", None),
    ("string8", "\u00e9t\u00e9"),
    ("byte_array", b""),
    ("byte_array", None),
    ("byte_array", b"\x00\x01\x02"),
    ("byte_array", bytes(range(256))),
]


def _writer(p: Parcel, kind: str) -> Callable[[Any], None]:
    return getattr(p, "write_utf8_as_utf16" if kind == "utf8_from_utf16" else f"write_{kind}")


@pytest.mark.parametrize(("kind", "value"), ROUND_TRIPS)
def test_round_trip(kind: str, value: Any) -> None:
    p = Parcel()
    _writer(p, kind)(value)
    assert p.data_size() % 4 == 0
    r = reader(p)
    assert getattr(r, f"read_{kind}")() == value
    assert r.data_avail() == 0


def test_round_trip_many_in_one_parcel() -> None:
    p = Parcel()
    for kind, value in ROUND_TRIPS:
        _writer(p, kind)(value)
    p.write_strong_binder(LOCAL)
    p.write_strong_binder(None)
    p.write_int32(99)
    r = reader(p)
    for kind, value in ROUND_TRIPS:
        assert getattr(r, f"read_{kind}")() == value, kind
    assert r.read_strong_binder() == FlatBinderObject(*LOCAL.flat)
    assert r.read_strong_binder() is None
    assert r.read_int32() == 99
    assert r.data_avail() == 0


def test_float_is_single_precision() -> None:
    p = Parcel()
    p.write_float(0.1)
    assert reader(p).read_float() == struct.unpack("<f", struct.pack("<f", 0.1))[0]


def test_byte_takes_unsigned_and_reads_signed() -> None:
    # Parcel::writeByte(int8_t) -> writeInt32(int32_t(val)); readByte -> int8_t(readInt32())
    p = Parcel()
    p.write_byte(255)
    assert p.data() == b"\xff\xff\xff\xff"
    assert reader(p).read_byte() == -1
    assert Parcel(b"\x80\x01\x00\x00").read_byte() == -128  # only the low 8 bits count


def test_utf8_as_utf16_accepts_utf8_bytes() -> None:
    # Parcel::writeUtf8AsUtf16 converts UTF-8 to a String16: same bytes as writeString16.
    a, b = Parcel(), Parcel()
    a.write_utf8_as_utf16("caf\u00e9".encode())
    b.write_string16("caf\u00e9")
    assert a.data() == b.data()
    with pytest.raises(ValueError):
        Parcel().write_utf8_as_utf16(b"\xff")


def test_read_utf8_from_utf16_rejects_lone_surrogate() -> None:
    p = Parcel()
    p.write_string16("\udc00")
    with pytest.raises(ParcelError, match="UTF-16"):
        reader(p).read_utf8_from_utf16()
    assert reader(p).read_string16() == "\udc00"


def test_string8_bytes_round_trip() -> None:
    p = Parcel()
    p.write_string8(b"\xffraw\x00nul")
    r = reader(p)
    s = r.read_string8()
    assert s is not None and s.encode("utf-8", "surrogateescape") == b"\xffraw\x00nul"


@given(st.text())
def test_string16_property(s: str) -> None:
    p = Parcel()
    p.write_string16(s)
    assert len(p.data()) == 4 + ((len(s.encode("utf-16-le", "surrogatepass")) + 2 + 3) & ~3)
    assert reader(p).read_string16() == s


@given(st.binary(max_size=64), st.integers(-(2**31), 2**31 - 1))
def test_byte_array_then_int_property(b: bytes, i: int) -> None:
    p = Parcel()
    p.write_byte_array(b)
    p.write_int32(i)
    r = reader(p)
    assert r.read_byte_array() == b
    assert r.read_int32() == i


@pytest.mark.parametrize(
    ("method", "value"),
    [
        ("write_int32", 2**31),
        ("write_uint32", -1),
        ("write_int64", 2**63),
        ("write_uint64", -1),
        ("write_byte", 256),
        ("write_byte", -129),
        ("write_float", 1e300),
    ],
)
def test_write_out_of_range(method: str, value: Any) -> None:
    with pytest.raises(ValueError):
        getattr(Parcel(), method)(value)


# --- exact bytes -------------------------------------------------------------------------------


def test_string16_bytes() -> None:
    # Parcel::writeString16(const char16_t*, size_t): writeInt32(len), then writeInplace of
    # (len + 1) char16_t with the last one 0; writeInplace zero-pads to 4 bytes.
    p = Parcel()
    p.write_string16("hi")
    assert p.data() == b"\x02\x00\x00\x00h\x00i\x00\x00\x00\x00\x00"
    p = Parcel()
    p.write_string16("")
    assert p.data() == b"\x00\x00\x00\x00\x00\x00\x00\x00"
    p = Parcel()
    p.write_string16("abc")  # 3 units + terminator = 8 bytes: no padding
    assert p.data() == b"\x03\x00\x00\x00a\x00b\x00c\x00\x00\x00"


def test_null_string16_bytes() -> None:
    # Parcel::writeString16: `if (str == nullptr) return writeInt32(-1);`
    p = Parcel()
    p.write_string16(None)
    assert p.data() == b"\xff\xff\xff\xff"


def test_string8_bytes() -> None:
    # Parcel::writeString8(const char*, size_t): writeInt32(len), writeInplace(len + 1) with a NUL.
    p = Parcel()
    p.write_string8("abc")
    assert p.data() == b"\x03\x00\x00\x00abc\x00"
    p = Parcel()
    p.write_string8("abcd")
    assert p.data() == b"\x04\x00\x00\x00abcd\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (None, b"\xff\xff\xff\xff"),
        (b"", b"\x00\x00\x00\x00"),
        (b"\x01\x02\x03", b"\x03\x00\x00\x00\x01\x02\x03\x00"),
        (b"\x01\x02\x03\x04", b"\x04\x00\x00\x00\x01\x02\x03\x04"),
        (b"\x01\x02\x03\x04\x05", b"\x05\x00\x00\x00\x01\x02\x03\x04\x05\x00\x00\x00"),
    ],
)
def test_byte_array_bytes(value: bytes | None, wire: bytes) -> None:
    # Parcel::writeByteArray: writeInt32(-1) for null, else writeInt32(len) + write(), which
    # goes through writeInplace and zero-pads to 4 bytes.
    p = Parcel()
    p.write_byte_array(value)
    assert p.data() == wire


def test_scalar_bytes() -> None:
    # Parcel::writeBool -> writeInt32(int32_t(val)); writeInt64/writeDouble -> writeAligned (8 bytes,
    # little-endian, no extra alignment).
    p = Parcel()
    p.write_bool(True)
    p.write_int64(0x0102030405060708)
    p.write_double(1.0)
    assert p.data() == (
        b"\x01\x00\x00\x00" + b"\x08\x07\x06\x05\x04\x03\x02\x01" + b"\x00\x00\x00\x00\x00\x00\xf0\x3f"
    )


def test_interface_token_bytes_on_binder() -> None:
    # Parcel::writeInterfaceToken: writeInt32(getStrictModePolicy() | STRICT_MODE_PENALTY_GATHER)
    # (policy 0 on a native thread, gather = 1 << 31), writeInt32(kUnsetWorkSource = -1) when the
    # work source is not propagated, writeInt32(kHeader = B_PACK_CHARS('S','Y','S','T')), then
    # writeString16(descriptor).
    p = Parcel()
    p.write_interface_token(SM)
    descriptor = SM.encode("utf-16-le")
    assert p.data() == (
        b"\x00\x00\x00\x80"
        + b"\xff\xff\xff\xff"
        + b"TSYS"
        + b"\x1a\x00\x00\x00"
        + descriptor
        + b"\x00\x00"
        + b"\x00\x00"
    )
    assert len(p.data()) == 72
    assert p.objects() == []


def test_interface_token_header_on_vndbinder() -> None:
    # Parcel.cpp: kHeader is B_PACK_CHARS('V','N','D','R') when built with __ANDROID_VNDK__.
    p = Parcel()
    p.write_interface_token(SM, interface_header("/mnt/dev/vndbinder"))
    assert p.data()[8:12] == b"RDNV"
    assert interface_header("binder") == HEADER_SYST
    assert interface_header("vndbinder") == HEADER_VNDR


def test_strong_binder_bytes() -> None:
    # Parcel::flattenBinder: writeObject(obj, false) (24-byte flat_binder_object, its offset
    # recorded because obj.binder != 0), then finishFlattenBinder: writeInt32(Stability::getRepr),
    # Level::SYSTEM = 0b001100 for a local binder of the system partition.
    p = Parcel()
    p.write_int32(7)
    p.write_strong_binder(LOCAL)
    assert p.data() == (
        b"\x07\x00\x00\x00"
        + b"\x85*bs"  # BINDER_TYPE_BINDER = B_PACK_CHARS('s', 'b', '*', 0x85)
        + b"\x13\x01\x00\x00"  # FLAT_BINDER_FLAG_ACCEPTS_FDS | priority 19, as the hook gave
        + b"\x00\x10\x00\x00\x00\x7f\x00\x00"
        + b"\x00\x20\x00\x00\x00\x7f\x00\x00"
        + b"\x0c\x00\x00\x00"
    )
    assert p.objects() == [4]


def test_null_binder_bytes() -> None:
    # Parcel::flattenBinder with binder == nullptr: type BINDER_TYPE_BINDER, flags = schedBits
    # (schedPolicyMask(SCHED_NORMAL, 19) = 0x13), binder 0, cookie 0; writeObject(obj, false) does
    # not record it (val.binder == 0); finishFlattenBinder writes UNDECLARED (0).
    p = Parcel()
    p.write_strong_binder(None)
    assert p.data() == b"\x85*bs" + b"\x13\x00\x00\x00" + bytes(16) + b"\x00\x00\x00\x00"
    assert p.objects() == []
    q = Parcel()
    q.write_strong_binder(None, null_flags=0)  # a thread with background scheduling disabled
    assert q.data()[4:8] == b"\x00\x00\x00\x00"


def test_handle_zero_is_not_recorded() -> None:
    # Parcel::flattenBinder for a proxy sets obj.binder = 0 then obj.handle = handle (a union), so
    # writeObject(obj, false) records the offset only for handles other than 0.
    p = Parcel()
    p.write_strong_binder(FakeBinder((BINDER_TYPE_HANDLE, 0x13, 0, 0)))
    p.write_strong_binder(FakeBinder((BINDER_TYPE_HANDLE, 0x13, 5, 0)))
    assert p.objects() == [28]
    r = reader(p)
    assert r.read_strong_binder() == FlatBinderObject(BINDER_TYPE_HANDLE, 0x13, 0, 0)
    assert r.read_strong_binder() == FlatBinderObject(BINDER_TYPE_HANDLE, 0x13, 5, 0)


def test_stability_attribute() -> None:
    p = Parcel()
    p.write_strong_binder(FakeBinder(LOCAL.flat, Stability.VINTF))
    assert p.data()[-4:] == b"\x3f\x00\x00\x00"
    with pytest.raises(ValueError):
        Parcel().write_strong_binder(FakeBinder(LOCAL.flat, 5))


def test_no_exception_bytes() -> None:
    # Parcel::writeNoException -> Status().writeToParcel: writeInt32(EX_NONE) only.
    p = Parcel()
    p.write_no_exception()
    assert p.data() == b"\x00\x00\x00\x00"


def test_service_specific_exception_bytes() -> None:
    # Status::writeToParcel: writeInt32(mException), writeString16(message), writeInt32(0) (empty
    # remote stack trace header), then for EX_SERVICE_SPECIFIC writeInt32(mErrorCode).
    p = Parcel()
    p.write_exception(RemoteException(EX_SERVICE_SPECIFIC, "hi", 42))
    assert p.data() == (
        b"\xf8\xff\xff\xff"
        + b"\x02\x00\x00\x00h\x00i\x00\x00\x00\x00\x00"
        + b"\x00\x00\x00\x00"
        + b"\x2a\x00\x00\x00"
    )


def test_parcelable_exception_bytes() -> None:
    # Status::writeToParcel: EX_PARCELABLE ends with writeInt32(0), an empty blob.
    p = Parcel()
    p.write_exception(RemoteException(EX_PARCELABLE))
    # A missing message is written as the empty String16 (String16(String8())): 8 bytes.
    assert p.data() == b"\xf7\xff\xff\xff" + bytes(8) + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"


# --- flat objects and the resolver -------------------------------------------------------------


def test_flat_object_round_trip_and_offsets() -> None:
    p = Parcel()
    p.write_int32(1)
    p.write_flat_object(BINDER_TYPE_FD, 0, 3, 1)
    p.write_flat_object(BINDER_TYPE_HANDLE, 0, 0, 0)  # recorded: null_meta_data defaults to True
    assert p.objects() == [4, 28]
    r = reader(p)
    assert r.read_int32() == 1
    assert r.read_flat_object() == (BINDER_TYPE_FD, 0, 3, 1)
    assert r.read_flat_object() == FlatBinderObject(BINDER_TYPE_HANDLE, 0, 0, 0)


def test_from_buffer_parses_u64_offsets() -> None:
    p = Parcel()
    p.write_int32(1)
    p.write_strong_binder(FakeBinder((BINDER_TYPE_HANDLE, 0, 9, 0)))
    offsets = struct.pack("<Q", 4)
    r = Parcel.from_buffer(p.data(), offsets)
    assert r.objects() == [4]
    assert r.read_int32() == 1
    assert r.read_strong_binder() == FlatBinderObject(BINDER_TYPE_HANDLE, 0, 9, 0)
    with pytest.raises(ParcelError):
        Parcel.from_buffer(p.data(), b"\x04\x00\x00")


def test_binder_resolver_hook() -> None:
    p = Parcel()
    p.write_strong_binder(FakeBinder((BINDER_TYPE_HANDLE, 0, 9, 0), Stability.VENDOR))
    p.write_strong_binder(None)
    seen: list[tuple[FlatBinderObject, int]] = []

    def resolve(obj: FlatBinderObject, stability: int) -> str:
        seen.append((obj, stability))
        return f"proxy {obj.value}"

    r = reader(p)
    r.binder_resolver = resolve
    assert r.read_strong_binder() == "proxy 9"
    assert r.read_strong_binder() is None  # the null binder never reaches the resolver
    assert seen == [(FlatBinderObject(BINDER_TYPE_HANDLE, 0, 9, 0), Stability.VENDOR)]


# --- interface tokens --------------------------------------------------------------------------


def test_enforce_interface() -> None:
    p = Parcel()
    p.write_interface_token(SM)
    p.write_int32(5)
    r = reader(p)
    assert r.enforce_interface(SM)
    assert r.read_int32() == 5
    assert not reader(p).enforce_interface("android.os.IOther")
    assert not reader(p).enforce_interface(SM, HEADER_VNDR)


def test_enforce_interface_wrong_header_stops_before_descriptor() -> None:
    # Parcel::enforceInterface returns false on a header mismatch without reading further.
    p = Parcel()
    p.write_int32(0)
    p.write_int32(-1)
    p.write_uint32(HEADER_VNDR)
    p.write_int32(1000)  # not a String16 that fits
    assert not reader(p).enforce_interface(SM)


def test_read_interface_token_fields() -> None:
    p = Parcel()
    p.write_interface_token(SM, HEADER_VNDR, strict_mode_policy=0x41, work_source=10001)
    token = reader(p).read_interface_token()
    assert token == InterfaceToken((0x41 | STRICT_MODE_PENALTY_GATHER) - 2**32, 10001, HEADER_VNDR, SM)
    p = Parcel()
    p.write_interface_token(SM)
    assert reader(p).read_interface_token().work_source == UNSET_WORK_SOURCE


# --- status ------------------------------------------------------------------------------------


def test_no_exception_round_trip() -> None:
    p = Parcel()
    p.write_no_exception()
    p.write_int32(3)
    r = reader(p)
    assert r.read_exception() is None
    assert r.read_int32() == 3


@pytest.mark.parametrize(
    "exc",
    [
        RemoteException(EX_SECURITY, "denied"),
        RemoteException(EX_ILLEGAL_ARGUMENT, ""),
        RemoteException(EX_SERVICE_SPECIFIC, "boom", -7),
        RemoteException(EX_PARCELABLE, "p"),
        RemoteException(-1000, "unknown code"),
    ],
)
def test_exception_round_trip(exc: RemoteException) -> None:
    p = Parcel()
    p.write_exception(exc)
    p.write_int32(77)
    r = reader(p)
    with pytest.raises(RemoteException) as info:
        r.read_exception()
    got = info.value
    assert (got.code, got.message, got.service_specific_error) == (
        exc.code,
        exc.message,
        exc.service_specific_error,
    )
    assert r.read_int32() == 77
    assert reader(p).read_status() is not None


def test_exception_str() -> None:
    # Status::toString8 format.
    assert (
        str(RemoteException(EX_SERVICE_SPECIFIC, "boom", 42)) == "Status(-8, EX_SERVICE_SPECIFIC): '42: boom'"
    )
    assert str(RemoteException(EX_SECURITY, "no")) == "Status(-1, EX_SECURITY): 'no'"


def test_transaction_failed_is_not_written() -> None:
    # Status::writeToParcel returns mErrorCode for EX_TRANSACTION_FAILED and writes nothing.
    p = Parcel()
    with pytest.raises(ValueError):
        p.write_exception(RemoteException(EX_TRANSACTION_FAILED))
    assert p.data() == b""


def test_java_null_message() -> None:
    # Java's Parcel.writeException writes a null message as String16 -1.
    p = Parcel()
    for v in (EX_SECURITY, -1, 0):
        p.write_int32(v)
    exc = reader(p).read_status()
    assert exc is not None and exc.code == EX_SECURITY and exc.message is None


def test_reply_header_is_skipped() -> None:
    # Status::readFromParcel: EX_HAS_REPLY_HEADER, then a header whose int32 size counts itself;
    # skipped, and the status is EX_NONE.
    p = Parcel()
    p.write_int32(EX_HAS_REPLY_HEADER)
    p.write_int32(12)
    p.write_int32(111)
    p.write_int32(222)
    p.write_int32(5)
    r = reader(p)
    assert r.read_status() is None
    assert r.read_int32() == 5


def test_remote_stack_trace_is_skipped() -> None:
    p = Parcel()
    p.write_int32(EX_SERVICE_SPECIFIC)
    p.write_string16("m")
    p.write_int32(8)  # stack trace header of 8 bytes including this word
    p.write_int32(0xDEAD)
    p.write_int32(9)
    r = reader(p)
    exc = r.read_status()
    assert exc is not None and exc.service_specific_error == 9 and exc.message == "m"
    assert r.data_avail() == 0


@pytest.mark.parametrize("size", [-4, 100])
def test_bad_header_sizes(size: int) -> None:
    # Status::readFromParcel: header_size < 0 or > dataAvail is UNKNOWN_ERROR.
    p = Parcel()
    p.write_int32(EX_HAS_REPLY_HEADER)
    p.write_int32(size)
    with pytest.raises(ParcelError, match="reply header"):
        reader(p).read_status()
    q = Parcel()
    q.write_int32(EX_SECURITY)
    q.write_string16("x")
    q.write_int32(size)
    with pytest.raises(ParcelError, match="stack trace"):
        reader(q).read_exception()


def test_none_status_writes_only_code() -> None:
    p = Parcel()
    p.write_exception(RemoteException(EX_NONE, "ignored"))
    assert p.data() == b"\x00\x00\x00\x00"


# --- short and garbled data --------------------------------------------------------------------

TRUNCATABLE: list[tuple[str, Any]] = [
    ("int32", 1),
    ("uint32", 1),
    ("int64", 1),
    ("uint64", 1),
    ("bool", True),
    ("float", 1.0),
    ("double", 1.0),
    ("byte", 1),
    ("string16", "hello"),
    ("utf8_from_utf16", "hello"),
    ("string8", "hello"),
    ("byte_array", b"hello"),
]


@pytest.mark.parametrize(("kind", "value"), TRUNCATABLE)
def test_truncated_input(kind: str, value: Any) -> None:
    p = Parcel()
    _writer(p, kind)(value)
    data = p.data()
    for cut in range(1, len(data) + 1):
        with pytest.raises(ParcelError):
            getattr(Parcel(data[:-cut]), f"read_{kind}")()


def test_truncated_structures() -> None:
    p = Parcel()
    p.write_interface_token(SM)
    for cut in range(1, len(p.data()), 3):
        with pytest.raises(ParcelError):
            Parcel(p.data()[:-cut]).read_interface_token()
    q = Parcel()
    q.write_exception(RemoteException(EX_SERVICE_SPECIFIC, "msg", 3))
    for cut in range(1, len(q.data()) + 1):
        with pytest.raises(ParcelError):
            Parcel(q.data()[:-cut]).read_exception()
    b = Parcel()
    b.write_strong_binder(None)
    for cut in range(1, len(b.data()) + 1):
        with pytest.raises(ParcelError):
            Parcel(b.data()[:-cut]).read_strong_binder()


def test_string_garbage() -> None:
    # Parcel::readString16Inplace / readString8Inplace: the terminator must be there.
    with pytest.raises(ParcelError, match="0-terminated"):
        Parcel(b"\x01\x00\x00\x00a\x00b\x00").read_string16()
    with pytest.raises(ParcelError, match="NUL"):
        Parcel(b"\x03\x00\x00\x00abcd").read_string8()
    with pytest.raises(ParcelError, match="negative"):
        Parcel(b"\xfe\xff\xff\xff").read_string16()
    with pytest.raises(ParcelError, match="negative"):
        Parcel(b"\xfe\xff\xff\xff").read_byte_array()
    with pytest.raises(ParcelError, match="not enough"):
        Parcel(b"\xff\xff\xff\x7f" + bytes(8)).read_string16()


def test_object_checks() -> None:
    # Parcel::readObject: an object must be in the offsets array (unless a null one, with
    # nullMetaData false); validateReadData: plain reads may not overlap an object.
    obj = FLAT_BINDER_OBJECT.pack(BINDER_TYPE_HANDLE, 0, 4, 0) + b"\x0c\x00\x00\x00"
    with pytest.raises(ParcelError, match="no binder object"):
        Parcel(obj).read_strong_binder()
    with pytest.raises(ParcelError, match="no binder object"):
        Parcel(obj).read_flat_object()
    with pytest.raises(ParcelError, match="overlaps"):
        Parcel(obj, [0]).read_int32()
    r = Parcel(bytes(4) + obj, [4])
    with pytest.raises(ParcelError, match="overlaps"):
        r.read_int64()
    fd = FLAT_BINDER_OBJECT.pack(BINDER_TYPE_FD, 0, 4, 0) + b"\x0c\x00\x00\x00"
    with pytest.raises(ParcelError, match="not a binder"):
        Parcel(fd, [0]).read_strong_binder()


@pytest.mark.parametrize(
    ("flat", "stability"),
    [
        ((BINDER_TYPE_HANDLE, 0, 4, 0), 0),  # a real binder must have a declared level
        ((BINDER_TYPE_HANDLE, 0, 4, 0), 5),
        ((BINDER_TYPE_BINDER, 0, 0, 0), Stability.SYSTEM),  # a null binder must be UNDECLARED
    ],
)
def test_bad_stability(flat: tuple[int, int, int, int], stability: int) -> None:
    # Parcel::finishUnflattenBinder -> Stability::setRepr returns BAD_TYPE for these.
    data = FLAT_BINDER_OBJECT.pack(*flat) + struct.pack("<i", stability)
    with pytest.raises(ParcelError, match="stability"):
        Parcel(data, [0]).read_strong_binder()


@pytest.mark.parametrize("objects", [[2], [12], [0, 12], [4, 0]])
def test_bad_offsets(objects: list[int]) -> None:
    # ipcSetDataReference wants ascending, non-overlapping objects inside the data.
    with pytest.raises(ParcelError, match="offset"):
        Parcel(bytes(32), objects)


# --- position ----------------------------------------------------------------------------------


def test_position_and_overwrite() -> None:
    p = Parcel()
    p.write_int32(1)
    p.write_int32(2)
    assert (p.data_position(), p.data_size(), p.data_avail()) == (8, 8, 0)
    p.set_data_position(0)
    p.write_int32(9)  # overwrites in place, as Parcel.cpp does
    assert p.data() == b"\x09\x00\x00\x00\x02\x00\x00\x00"
    assert (p.data_position(), p.data_avail()) == (4, 4)
    assert p.read_int32() == 2
    with pytest.raises(ValueError):
        p.set_data_position(9)
    with pytest.raises(ValueError):
        p.set_data_position(-1)


def test_client_imports_no_daemon_modules() -> None:
    code = (
        "import sys, vbinder_client.parcel; bad = {'pyfuse3', 'trio'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
