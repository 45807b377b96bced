"""What generated proxies and stubs put on the wire, byte for byte, against AOSP's rules.

Every call below goes through a proxy and a stub generated from tests/client/aidl (ITypes.aidl
has one method per type); the test sees the request's and the reply's bytes. The expected bytes
are built here from the rules, each cited:

- Parcel.cpp (libbinder, Android 14): ``writeInt32``/``writeInt64``/``writeFloat``/``writeDouble``
  (little-endian, padded to 4), ``writeBool`` and ``writeChar`` and ``writeByte`` (an int32 each),
  ``writeString16`` (int32 length in UTF-16 units, -1 for null, the units, a 0 unit, padding),
  ``writeByteVector`` (int32 length, the bytes, padding), ``writeData(vector<T>)`` (int32 length,
  -1 for null, then each element as written alone), ``writeParcelable`` (int32 1, then
  ``writeToParcel``; int32 0 for a null ``writeNullableParcelable``), ``writeInterfaceToken``
  (policy | STRICT_MODE_PENALTY_GATHER, work source -1, the 'SYST' header, the descriptor),
  ``flattenBinder`` + ``finishFlattenBinder`` (a flat_binder_object, then the stability int32).
- Status.cpp ``writeToParcel``: int32 0 for no exception; code, message, stack-trace header 0,
  and for EX_SERVICE_SPECIFIC the error code.
- generate_cpp.cpp / generate_java*.cpp (the aidl compiler's C++ and Java backends): the
  arguments in declaration order (in and inout ones; for an ``out T[]`` its length,
  ``writeVectorSize``); the reply's status, the return value, then the out and inout arguments in
  declaration order; a structured parcelable's int32 size (counting itself) before its fields;
  a union's int32 tag before its one field; an enum as its backing type, a byte-backed enum's
  array as a byte[] (``writeEnumVector``).
"""

# ruff: noqa: N802, N803, N806 - the methods and classes keep their AIDL names

from __future__ import annotations

import os
import struct
import sys
from typing import Any

import pytest
from vbinder_client import FLAG_ONEWAY, IBinder, Parcel, ParcelFileDescriptor, aidl
from vbinder_client.aidl import runtime

from tests.support import REPO
from vbinder import uapi

TYPES = REPO / "tests" / "client" / "aidl"
ITypes: Any = aidl.load(str(TYPES / "vbinder/test/ITypes.aidl"), include=[str(TYPES)])
_module = sys.modules[ITypes.__module__]
Item, Shape, Color = _module.Item, _module.Shape, sys.modules[_module.Item.__module__].Color
Level = sys.modules[sys.modules[ITypes.__module__].__name__.rsplit(".", 1)[0] + ".Level"].Level
Size = sys.modules[sys.modules[ITypes.__module__].__name__.rsplit(".", 1)[0] + ".Size"].Size
ICallback = sys.modules[sys.modules[ITypes.__module__].__name__.rsplit(".", 1)[0] + ".ICallback"].ICallback


# --- the rules, as bytes ---------------------------------------------------------------------------


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def i64(v: int) -> bytes:
    return struct.pack("<q", v)


def pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def s16(s: str | None) -> bytes:
    if s is None:
        return i32(-1)
    units = s.encode("utf-16-le")
    return i32(len(units) // 2) + pad(units + b"\0\0")


def array(items: list[bytes] | None) -> bytes:
    return i32(-1) if items is None else i32(len(items)) + b"".join(items)


def token(descriptor: str) -> bytes:
    # 0x80000000: STRICT_MODE_PENALTY_GATHER; -1: kUnsetWorkSource; 'SYST' as B_PACK_CHARS
    return struct.pack("<Ii", 0x80000000, -1) + struct.pack("<I", 0x53595354) + s16(descriptor)


OK = i32(0)  # writeNoException


def parcelable(*fields: bytes) -> bytes:
    body = b"".join(fields)
    return i32(1) + i32(4 + len(body)) + body  # non-null marker, size (with itself), fields


def item_bytes(count: int = 1, label: str = "item", note: str | None = None, color: int = 5,
               weights: list[int] | None = None, mark: str = "x", on: bool = False) -> bytes:
    tag = parcelable(i32(ord(mark)), i32(int(on)))
    body = parcelable(i32(count), s16(label), s16(note), i32(color), array([i64(w) for w in weights or []]), tag)
    return body


# --- the service and the wire between ---------------------------------------------------------------


class Binder(IBinder):
    """A binder object to send: it flattens to a handle, as a proxy does."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def flatten(self) -> tuple[int, int, int, int]:
        return uapi.BINDER_TYPE_HANDLE, 0, self.handle, 0


def flat_handle(handle: int) -> bytes:
    return uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_HANDLE, 0, handle, 0) + i32(0b001100)  # SYSTEM


class Types(ITypes.Stub):  # type: ignore[misc]
    def flipBoolean(self, v: bool) -> bool:
        return not v

    def reverseInts(self, v: list[int], copy: list[int]) -> list[int]:
        copy[:] = v
        return v[::-1]

    def grow(self, item: Any, made: Any, names: list[str], more: list[str]) -> None:
        item.count += 1
        made.label = "made"
        names.append("z")
        more.extend(["m", "n"])

    def repeatBinder(self, v: Any) -> IBinder | None:
        return None if v is None else Binder(9)

    def repeatBinders(self, v: list[Any]) -> list[IBinder]:
        return [Binder(9) for _ in v]

    def callBack(self, cb: Any, v: int) -> int:
        return v + 100

    def fire(self, v: int) -> None:
        self.fired = v

    def fail(self, code: int) -> None:
        raise aidl.ServiceSpecificException(code, "it failed")


for _name in dir(ITypes):  # every other repeatX answers its argument
    if _name.startswith("repeat") and _name not in vars(Types):
        setattr(Types, _name, lambda self, v: v)


class Wire(IBinder):
    """Between the proxy and the stub: keeps the bytes of each request and reply."""

    def __init__(self, stub: Any) -> None:
        self.stub = stub
        self.calls: list[tuple[int, bytes, int, bytes | None]] = []
        self.replies: list[Parcel] = []  # what a kernel would have copied: the fds they own stay open

    def transact(self, code: int, data: Parcel, flags: int = 0) -> Parcel | None:
        request = Parcel(data.data(), data.objects())
        reply = Parcel()
        self.stub.dispatch(code, request, reply, flags)
        self.calls.append((code, data.data(), flags, None if flags & FLAG_ONEWAY else reply.data()))
        if flags & FLAG_ONEWAY:
            return None
        back = Parcel(reply.data(), reply.objects())
        self.replies.append(reply)
        return back


@pytest.fixture
def wire() -> Wire:
    return Wire(Types())


def call(wire: Wire, method: str, *args: Any) -> tuple[Any, bytes, bytes | None]:
    proxy = ITypes.Stub._aidl_proxy(wire)
    result = getattr(proxy, method)(*args)
    _code, request, _flags, reply = wire.calls[-1]
    prefix = token("vbinder.test.ITypes")
    assert request.startswith(prefix)
    return result, request[len(prefix):], reply


# --- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "value", "encoded", "back"), [
    ("flipBoolean", True, i32(1), i32(0)),  # writeBool: an int32
    ("repeatByte", -2, i32(-2), i32(-2)),  # writeByte: an int32
    ("repeatChar", "é", i32(0xE9), i32(0xE9)),  # writeChar: a UTF-16 unit in an int32
    ("repeatInt", -5, i32(-5), i32(-5)),
    ("repeatLong", 1 << 40, i64(1 << 40), i64(1 << 40)),  # writeInt64: 8 bytes, no alignment
    ("repeatFloat", 1.5, struct.pack("<f", 1.5), struct.pack("<f", 1.5)),
    ("repeatDouble", 0.1, struct.pack("<d", 0.1), struct.pack("<d", 0.1)),
    ("repeatString", "hé!", s16("hé!"), s16("hé!")),  # writeString16
    ("repeatUtf8", "añb", s16("añb"), s16("añb")),  # writeUtf8AsUtf16: a String16 on the wire
    ("repeatNullable", None, i32(-1), i32(-1)),  # a null String16
])
def test_scalars(wire: Wire, method: str, value: Any, encoded: bytes, back: bytes) -> None:
    result, request, reply = call(wire, method, value)
    assert request == encoded
    assert reply == OK + back
    assert result == (not value if method == "flipBoolean" else value)


def test_arrays_and_lists(wire: Wire) -> None:
    # writeByteVector: the bytes follow the length, padded to 4
    assert call(wire, "repeatBytes", b"\x01\x02\x03")[1] == i32(3) + b"\x01\x02\x03\0"
    # writeData(vector<T>): length, then each element alone
    assert call(wire, "repeatLongs", [1, -1])[1] == array([i64(1), i64(-1)])
    assert call(wire, "repeatBooleans", [True, False])[1] == array([i32(1), i32(0)])
    assert call(wire, "repeatChars", ["a", "b"])[1] == array([i32(97), i32(98)])
    assert call(wire, "repeatFloats", [2.0])[1] == array([struct.pack("<f", 2.0)])
    assert call(wire, "repeatDoubles", [2.0])[1] == array([struct.pack("<d", 2.0)])
    assert call(wire, "repeatStrings", ["a", "bc"])[1] == array([s16("a"), s16("bc")])
    assert call(wire, "repeatStringList", ["x"])[1] == array([s16("x")])  # List<String>: the same
    result, request, reply = call(wire, "repeatNullableInts", None)
    assert (result, request, reply) == (None, i32(-1), OK + i32(-1))  # a null array: length -1


def test_out_array_sends_its_length_and_gets_it_filled(wire: Wire) -> None:
    copy = [0, 0, 0]
    result, request, reply = call(wire, "reverseInts", [1, 2, 3], copy)
    # in int[] v, then out int[] copy's length (writeVectorSize / Java's writeInt(copy.length))
    assert request == array([i32(1), i32(2), i32(3)]) + i32(3)
    # status, return value, then the out argument
    assert reply == OK + array([i32(3), i32(2), i32(1)]) + array([i32(1), i32(2), i32(3)])
    assert result == [3, 2, 1] and copy == [1, 2, 3]


def test_parcelables(wire: Wire) -> None:
    item = Item(count=2, note="n", weights=[7])
    result, request, reply = call(wire, "repeatItem", item)
    assert request == item_bytes(count=2, note="n", weights=[7])
    assert reply == OK + request
    assert result == item and result is not item
    assert call(wire, "repeatNullableItem", None)[1:] == (i32(0), OK + i32(0))  # writeNullableParcelable
    # arrays and Lists of parcelables: each element with its marker (writeTypedArray / writeParcelableVector)
    assert call(wire, "repeatItems", [Item(), Item(count=3)])[1] == i32(2) + item_bytes() + item_bytes(count=3)
    assert call(wire, "repeatItemList", [Item()])[1] == i32(1) + item_bytes()


def test_inout_and_out_arguments_are_written_back_in_place(wire: Wire) -> None:
    item, made, names, more = Item(), Item(label="old"), ["a"], ["stale"]
    result, request, reply = call(wire, "grow", item, made, names, more)
    # inout item, (out made: nothing), inout names, (out List: nothing)
    assert request == item_bytes() + array([s16("a")])
    # status, then item, made, names, more in declaration order
    assert reply == OK + item_bytes(count=2) + item_bytes(label="made") + array([s16("a"), s16("z")]) + \
        array([s16("m"), s16("n")])
    assert result is None
    assert (item.count, made.label, names, more) == (2, "made", ["a", "z"], ["m", "n"])


def test_unions(wire: Wire) -> None:
    # the tag (the field's index), then the field; as an argument, the parcelable marker first
    assert call(wire, "repeatShape", Shape())[1] == i32(1) + i32(0) + i32(3)
    assert call(wire, "repeatShape", Shape(square="sq"))[1] == i32(1) + i32(1) + s16("sq")
    assert call(wire, "repeatShape", Shape(item=Item()))[1] == i32(1) + i32(2) + item_bytes()
    result = call(wire, "repeatShape", Shape(raw=b"ab"))[0]
    assert result == Shape(raw=b"ab") and result.tag == Shape.Tag.raw
    with pytest.raises(AttributeError):
        _ = result.square


def test_enums(wire: Wire) -> None:
    assert call(wire, "repeatColor", Color.BLUE)[1:] == (i32(6), OK + i32(6))  # byte-backed: writeByte
    assert call(wire, "repeatLevel", Level.LOW)[1] == i32(-1)  # int-backed: writeInt32
    assert call(wire, "repeatSize", Size.HUGE)[1] == i64(1 << 40)  # long-backed: writeInt64
    # a byte-backed enum's array is a byte[] (writeEnumVector for int8_t, Java writeByteArray)
    assert call(wire, "repeatColors", [Color.RED, Color.BLUE])[1] == i32(2) + b"\x00\x06\0\0"
    assert call(wire, "repeatLevels", [Level.HIGH])[1] == array([i32(0x7FFFFFFF)])
    # a value the declaration does not name passes through, as in C++ and Java
    assert call(wire, "repeatColor", Color(9))[0] == 9


def test_binders(wire: Wire) -> None:
    # a null binder: BINDER_TYPE_BINDER with the sched bits (19), value 0, stability UNDECLARED
    null = uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, 19, 0, 0) + i32(0)
    assert call(wire, "repeatBinder", None)[1:] == (null, OK + null)
    result, request, reply = call(wire, "repeatBinder", Binder(4))
    assert request == flat_handle(4) and reply == OK + flat_handle(9)
    assert call(wire, "repeatBinders", [Binder(4)])[1] == array([flat_handle(4)])


def test_interfaces_are_sent_as_their_binder(wire: Wire) -> None:
    cb = ICallback.Stub._aidl_proxy(Binder(5))  # a remote callback: its handle goes on the wire
    result, request, _reply = call(wire, "callBack", cb, 1)
    assert request == flat_handle(5) + i32(1)
    assert result == 101


def test_oneway_calls_carry_the_flag_and_get_no_reply(wire: Wire) -> None:
    proxy = ITypes.Stub._aidl_proxy(wire)
    assert proxy.fire(7) is None
    code, request, flags, reply = wire.calls[-1]
    assert (code, flags, reply) == (ITypes.TRANSACTION_fire, FLAG_ONEWAY, None)
    assert request == token("vbinder.test.ITypes") + i32(7)
    assert wire.stub.fired == 7


def test_service_specific_errors(wire: Wire) -> None:
    proxy = ITypes.Stub._aidl_proxy(wire)
    with pytest.raises(aidl.ServiceSpecificException) as e:
        proxy.fail(42)
    assert (e.value.error_code, e.value.message) == (42, "it failed")
    # Status::writeToParcel: EX_SERVICE_SPECIFIC (-8), the message, stack-trace header 0, the code
    assert wire.calls[-1][3] == i32(-8) + s16("it failed") + i32(0) + i32(42)


def test_the_aidl_exception_codes_arrive_as_their_classes() -> None:
    classes = [aidl.SecurityException, aidl.BadParcelableException, aidl.IllegalArgumentException,
               aidl.NullPointerException, aidl.IllegalStateException, aidl.NetworkOnMainThreadException,
               aidl.UnsupportedOperationException]
    for code, cls in zip(range(-1, -8, -1), classes, strict=True):  # Status.h EX_SECURITY -1 ... -7
        p = Parcel()
        p.write_exception(cls("why"))
        assert p.data() == i32(code) + s16("why") + i32(0)
        p.set_data_position(0)
        with pytest.raises(cls, match="why"):
            p.read_exception()


def test_stub_refuses_bad_calls_as_aosp_stubs_do() -> None:
    stub = Types()
    reply = Parcel()
    # a wrong interface token: Java's enforceInterface throws SecurityException (EX_SECURITY)
    stub.dispatch(ITypes.TRANSACTION_repeatInt, Parcel(token("other.IFoo") + i32(1)), reply, 0)
    assert reply.data()[:4] == i32(-1)
    # more data than the arguments: enforceNoDataAvail, EX_BAD_PARCELABLE
    reply = Parcel()
    stub.dispatch(ITypes.TRANSACTION_repeatInt, Parcel(token("vbinder.test.ITypes") + i32(1) + i32(2)), reply, 0)
    assert reply.data() == i32(-2) + s16("Parcel data not fully consumed, unread size: 4") + i32(0)
    # a null where the type is not @nullable (C++: UNEXPECTED_NULL), and short data: EX_BAD_PARCELABLE
    for args in (i32(-1), b""):
        reply = Parcel()
        stub.dispatch(ITypes.TRANSACTION_repeatString, Parcel(token("vbinder.test.ITypes") + args), reply, 0)
        assert reply.data()[:4] == i32(-2)


def test_parcelables_from_older_and_newer_peers() -> None:
    # readFromParcel reads the fields its size covers and skips what it does not know
    older = parcelable(i32(7))[4:]  # only count
    item = Item(label="mine")
    item.read_from_parcel(Parcel(older))
    assert (item.count, item.label) == (7, "mine")
    newer = item_bytes(count=8)[4:]
    newer = i32(struct.unpack("<i", newer[:4])[0] + 8) + newer[4:] + i64(0)  # 8 bytes of a future field
    p = Parcel(newer + i32(99))
    item.read_from_parcel(p)
    assert item.count == 8 and p.read_int32() == 99
    with pytest.raises(runtime.ParcelError):  # a size below 4 is BAD_VALUE
        Item().read_from_parcel(Parcel(i32(2)))


# --- file descriptors --------------------------------------------------------------------------------
# Parcel.cpp: writeDupFileDescriptor (what C++'s writeUniqueFileDescriptor and Java's
# writeRawFileDescriptor call) writes a BINDER_TYPE_FD flat_binder_object, flags 0, the duplicate's
# number, cookie 1 (the parcel owns it), and no stability word; ParcelFileDescriptor::writeToParcel
# is writeDupParcelFileDescriptor: int32 0 (no comm channel), then the same object; as an AIDL value
# writeParcelable puts the non-null int32 1 before it (writeNullableParcelable: 0 for null).

IFiles: Any = aidl.load(str(TYPES / "vbinder/test/IFiles.aidl"), include=[str(TYPES)])


def fd_object(buf: bytes, at: int) -> tuple[int, int, int, int]:
    """(type, flags, fd, cookie) of the flat_binder_object at ``at``."""
    kind, flags, value, cookie = uapi.FLAT_BINDER_OBJECT.unpack_from(buf, at)
    return kind, flags, value & 0xFFFFFFFF, cookie


def same_file(a: int, b: int) -> bool:
    return (os.fstat(a).st_dev, os.fstat(a).st_ino) == (os.fstat(b).st_dev, os.fstat(b).st_ino)


class Files(IFiles.Stub):  # type: ignore[misc]
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def write(self, fd: int, text: str) -> None:
        self.seen.append(fd)

    def same(self, fd: int) -> int:
        return fd

    def take(self, pfd: Any) -> str:
        self.seen.append(pfd)
        return "taken"

    def maybe(self, pfd: Any) -> Any:
        return pfd

    def many(self, pfds: list[Any]) -> list[Any]:
        return pfds


def test_file_descriptors_as_aosp_writes_them() -> None:
    wire = Wire(Files())
    proxy = IFiles.Stub._aidl_proxy(wire)
    prefix = token("vbinder.test.IFiles")
    size = uapi.FLAT_BINDER_OBJECT.size
    r, w = os.pipe()
    try:
        proxy.write(w, "t")  # FileDescriptor: the object (a duplicate, cookie 1), then the String16
        request = wire.calls[-1][1][len(prefix):]
        kind, flags, fd, cookie = fd_object(request, 0)
        assert (kind, flags, cookie) == (uapi.BINDER_TYPE_FD, 0, 1) and fd != w
        assert request[size:] == s16("t")
        proxy.take(ParcelFileDescriptor(os.dup(r)))  # ParcelFileDescriptor: 1, 0, the object
        request = wire.calls[-1][1][len(prefix):]
        assert request[:8] == i32(1) + i32(0) and len(request) == 8 + size
        kind, flags, fd, cookie = fd_object(request, 8)
        assert (kind, flags, cookie) == (uapi.BINDER_TYPE_FD, 0, 1)
        assert call_reply(wire) == OK + s16("taken")
        # the reply of a ParcelFileDescriptor result: status, 1, 0, the object; null: status, 0
        with proxy.maybe(ParcelFileDescriptor(os.dup(r))) as back:
            reply = call_reply(wire)
            assert reply[:12] == OK + i32(1) + i32(0) and len(reply) == 12 + size
            assert fd_object(reply, 12)[::3] == (uapi.BINDER_TYPE_FD, 1) and same_file(back.fileno(), r)
        assert proxy.maybe(None) is None
        assert wire.calls[-1][1][len(prefix):] == i32(0) and call_reply(wire) == OK + i32(0)
        # ParcelFileDescriptor[]: the length, then each element as alone (writeParcelableVector)
        got = proxy.many([ParcelFileDescriptor(os.dup(r)), ParcelFileDescriptor(os.dup(w))])
        request = wire.calls[-1][1][len(prefix):]
        assert request[:12] == i32(2) + i32(1) + i32(0) and request[12 + size:20 + size] == i32(1) + i32(0)
        assert [same_file(p.fileno(), f) for p, f in zip(got, (r, w), strict=True)] == [True, True]
        for p in got:
            p.close()
    finally:
        os.close(r)
        os.close(w)


def call_reply(wire: Wire) -> bytes:
    reply = wire.calls[-1][3]
    assert reply is not None
    return reply
