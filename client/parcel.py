"""Parcel: the binder payload format, as Android 14's libbinder (``Parcel.cpp``) writes it.

Everything is little-endian and every write is padded to 4 bytes. Binder objects are 24-byte
``flat_binder_object`` structs whose byte offsets are kept in :meth:`Parcel.objects`, the array
that the transport hands to the driver as the transaction's offsets.

References (AOSP ``frameworks/native/libs/binder``): ``Parcel.cpp`` for the primitive types,
strings, objects and interface tokens; ``Status.cpp`` (``Status::writeToParcel`` /
``readFromParcel``) for the AIDL status header; ``Stability.{h,cpp}`` for the word that follows
every binder object.

Binder objects are reached through two hooks, so that this module knows nothing of the binder
classes: :meth:`Parcel.write_strong_binder` flattens an object with
:attr:`Parcel.binder_flattener` (``obj.flatten()`` unless the process installs its own), and
:meth:`Parcel.read_strong_binder` passes the raw object to :attr:`Parcel.binder_resolver`.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final, NamedTuple, Protocol

from vbinder.uapi import BINDER_TYPE_BINDER, BINDER_TYPE_FD, BINDER_TYPE_HANDLE, FLAT_BINDER_OBJECT, S32, U32, U64

from .errors import (  # status codes and errors live in a pure module (mypyc cannot compile them)
    EX_BAD_PARCELABLE,
    EX_HAS_NOTED_APPOPS_REPLY_HEADER,
    EX_HAS_REPLY_HEADER,
    EX_ILLEGAL_ARGUMENT,
    EX_ILLEGAL_STATE,
    EX_NETWORK_MAIN_THREAD,
    EX_NONE,
    EX_NULL_POINTER,
    EX_PARCELABLE,
    EX_SECURITY,
    EX_SERVICE_SPECIFIC,
    EX_TRANSACTION_FAILED,
    EX_UNSUPPORTED_OPERATION,
    EXCEPTION_NAMES,
    ParcelError,
    RemoteException,
    exception_for,
)
from .parcel_file_descriptor import HasFileno, OwnedFds, ParcelFileDescriptor, dup_cloexec, fileno
from .stability import Stability

__all__ = [
    "DEFAULT_SCHED_BITS",
    "EXCEPTION_NAMES",
    "EX_BAD_PARCELABLE",
    "EX_HAS_NOTED_APPOPS_REPLY_HEADER",
    "EX_HAS_REPLY_HEADER",
    "EX_ILLEGAL_ARGUMENT",
    "EX_ILLEGAL_STATE",
    "EX_NETWORK_MAIN_THREAD",
    "EX_NONE",
    "EX_NULL_POINTER",
    "EX_PARCELABLE",
    "EX_SECURITY",
    "EX_SERVICE_SPECIFIC",
    "EX_TRANSACTION_FAILED",
    "EX_UNSUPPORTED_OPERATION",
    "FLAT_OBJECT_SIZE",
    "HEADER_RECO",
    "HEADER_SYST",
    "HEADER_VNDR",
    "STRICT_MODE_PENALTY_GATHER",
    "UNSET_WORK_SOURCE",
    "BinderFlattener",
    "BinderResolver",
    "FlatBinderObject",
    "FlattenableBinder",
    "InterfaceToken",
    "Parcel",
    "ParcelFileDescriptor",
    "ParcelError",
    "RemoteException",
    "Stability",
    "interface_header",
    "set_wire_format",
]

# --- constants -------------------------------------------------------------------------------------


def _pack_chars(chars: str) -> int:
    """``B_PACK_CHARS(c1, c2, c3, c4)``: the first character in the most significant byte."""
    a, b, c, d = (ord(ch) for ch in chars)
    return (a << 24) | (b << 16) | (c << 8) | d


# Parcel.cpp ``kHeader``: the third word of an interface token. libbinder on the system partition
# writes SYST, on vendor (``__ANDROID_VNDK__``, i.e. the users of /dev/vndbinder) VNDR, in
# recovery RECO; enforceInterface rejects any other value than its own.
HEADER_SYST: Final = _pack_chars("SYST")
HEADER_VNDR: Final = _pack_chars("VNDR")
HEADER_RECO: Final = _pack_chars("RECO")

# Parcel.cpp: ``#define STRICT_MODE_PENALTY_GATHER (1 << 31)``, ORed into the policy word.
STRICT_MODE_PENALTY_GATHER: Final = 1 << 31
# IPCThreadState.h ``kUnsetWorkSource``: the work-source word when none is propagated.
UNSET_WORK_SOURCE: Final = -1

# flattenBinder ORs ``schedPolicyMask(SCHED_NORMAL, 19)`` into every object's flags unless the
# thread disabled background scheduling; that includes the null binder.
DEFAULT_SCHED_BITS: Final = 19

FLAT_OBJECT_SIZE: Final = FLAT_BINDER_OBJECT.size  # 24

# Encoded interface tokens, by (policy, work source, header, descriptor), and what
# enforce_interface expects, by (header, descriptor): bounded, a process has few interfaces.
_TOKENS: Final[dict[tuple[int, int, int, str], bytes]] = {}
_EXPECTED: Final[dict[tuple[int, str], bytes]] = {}
_TOKENS_MAX: Final = 1024

_DECLARED_LEVELS: Final = frozenset({Stability.VENDOR, Stability.SYSTEM, Stability.VINTF})

# The stability word's format, process-wide as libbinder's (compiled in): Android 12 and 13 write
# a versioned ``Category`` (Stability.h: {uint8 version; uint8 reserved[2]; Level level}, read as
# an int32: version 1 in the low byte, the level in the high one; a null binder is version 1,
# UNDECLARED), and refuse a word whose version is 0; Android 11 and 14 on write the level itself.
_CATEGORY: Final = [False]
_WIRE_VERSION: Final = 1  # Stability.cpp kBinderWireFormatVersion (and kBinderWireFormatOldest)


def set_wire_format(android: int) -> None:
    """Write and read binder objects' stability words as Android ``android`` does (11 to 16)."""
    _CATEGORY[0] = android in (12, 13)


def _stability_word(level: int) -> int:
    return (level << 24) | _WIRE_VERSION if _CATEGORY[0] else level


def interface_header(device: str) -> int:
    """The interface-token header libbinder uses on the named device (``vndbinder`` -> VNDR)."""
    return HEADER_VNDR if device.rstrip("/").rsplit("/", 1)[-1] == "vndbinder" else HEADER_SYST


# --- errors and small types -----------------------------------------------------------------------


class FlatBinderObject(NamedTuple):
    """A raw ``flat_binder_object``; ``value`` is the ``binder`` pointer or the ``handle``."""

    type: int
    flags: int
    value: int
    cookie: int


class InterfaceToken(NamedTuple):
    """The four fields of an interface token, as read (all int32 but the descriptor)."""

    strict_mode_policy: int
    work_source: int
    header: int
    descriptor: str | None


class FlattenableBinder(Protocol):
    """What :meth:`Parcel.write_strong_binder` needs of a binder object.

    ``flatten()`` returns ``(type, flags, binder_or_handle, cookie)`` as ``flattenBinder`` fills
    them in. The stability word written after it is the object's ``stability`` attribute if it
    has one, else :attr:`Stability.SYSTEM`.
    """

    def flatten(self) -> tuple[int, int, int, int]: ...


BinderResolver = Callable[[FlatBinderObject, int], Any]
"""Turns a non-null object read by :meth:`Parcel.read_strong_binder` and its stability word
into the caller's binder object."""

BinderFlattener = Callable[[FlattenableBinder], tuple[int, int, int, int]]
"""Gives the ``flat_binder_object`` fields of a binder object that
:meth:`Parcel.write_strong_binder` writes."""


def flatten_binder(obj: FlattenableBinder) -> tuple[int, int, int, int]:
    """The default flattener: ``obj.flatten()``."""
    return obj.flatten()


def _raw_binder(obj: FlatBinderObject, stability: int) -> FlatBinderObject:
    """The default resolver: the raw object itself."""
    return obj


def _pad(n: int) -> int:
    return (n + 3) & ~3


_PAD4: Final = (b"", b"\0\0\0", b"\0\0", b"\0")  # the zeros after n bytes, by n % 4


_I32: Final = S32
_U32: Final = U32
_I64: Final = struct.Struct("<q")
_U64: Final = U64
_F32: Final = struct.Struct("<f")
_F64: Final = struct.Struct("<d")


# --- the parcel ------------------------------------------------------------------------------------


class Parcel:
    """A binder transaction payload: data bytes, a position, and the offsets of its objects.

    Writes go at the data position (overwriting or appending) and advance it; reads advance it
    too. Readers raise :class:`ParcelError` where libbinder would return an error status.
    """

    binder_flattener: ClassVar[BinderFlattener] = flatten_binder
    """Called by :meth:`write_strong_binder` with each non-null binder object. Process-wide, as
    libbinder's flattenBinder reaches ``ProcessState::self()``: the client's process state
    installs one that also keeps a local object alive for the driver."""

    def __init__(self, data: bytes = b"", objects: Sequence[int] = ()) -> None:
        """Wrap ``data`` (position 0) with ``objects``, the byte offsets of its flat objects."""
        offsets = [int(o) for o in objects]
        end = 0
        for off in offsets:
            # ipcSetDataReference: offsets ascend and objects do not overlap; the kernel also
            # wants each inside the data and 4-aligned.
            if off < end or off % 4 or off + FLAT_OBJECT_SIZE > len(data):
                raise ParcelError(f"bad object offset {off} (data size {len(data)}, min {end})")
            end = off + FLAT_OBJECT_SIZE
        self._buf = bytearray(data)
        self._pos = 0
        self._objects = offsets
        # The call this parcel carries, for traces: (interface descriptor, method name). A trace
        # shows it as AIDL's slices (docs/tracing.md); Proxy and generated proxies set it.
        self.trace_name: tuple[str, str] | None = None
        self.binder_resolver: BinderResolver = _raw_binder
        """Called by :meth:`read_strong_binder` with each non-null object and its stability."""
        self.keepalive: list[Any] = []
        """The objects a received parcel carries, resolved on arrival (held while the parcel lives)."""
        self._owned: OwnedFds | None = None  # the fds this parcel closes (close_file_descriptors)
        self.is_reply = False
        """A reply received from the driver (its caller reads what it returns: see AIDL's FileDescriptor)."""

    @classmethod
    def from_buffer(cls, data: bytes, offsets: bytes) -> Parcel:
        """A parcel from a delivered buffer: ``offsets`` is the driver's array of u64 offsets."""
        if len(offsets) % 8:
            raise ParcelError(f"offsets array of {len(offsets)} bytes is not a whole number of u64")
        return cls(data, struct.unpack(f"<{len(offsets) // 8}Q", offsets) if offsets else ())

    def __repr__(self) -> str:
        return f"Parcel(size={len(self._buf)}, position={self._pos}, objects={self._objects})"

    # --- buffer --------------------------------------------------------------------------------

    def data(self) -> bytes:
        """The bytes of the parcel."""
        return bytes(self._buf)

    def objects(self) -> list[int]:
        """The offsets of the flat objects, in the order they were written."""
        return list(self._objects)

    def data_size(self) -> int:
        """Number of data bytes."""
        return len(self._buf)

    def data_position(self) -> int:
        """Where the next read or write happens."""
        return self._pos

    def set_data_position(self, pos: int) -> None:
        """Move the position; it must lie within the data."""
        if not 0 <= pos <= len(self._buf):
            raise ValueError(f"position {pos} outside the parcel's {len(self._buf)} bytes")
        self._pos = pos

    def data_avail(self) -> int:
        """Bytes left to read after the position."""
        return len(self._buf) - self._pos

    # --- raw access ----------------------------------------------------------------------------

    def _put(self, raw: bytes) -> None:
        """Write ``raw`` at the position, zero-padded to 4 bytes (``writeInplace``)."""
        buf = self._buf
        pad = _PAD4[len(raw) & 3]
        if self._pos == len(buf):  # appending: the usual case, without a padded copy
            buf += raw
            buf += pad
            self._pos = len(buf)
            return
        padded = raw + pad
        buf[self._pos : self._pos + len(padded)] = padded
        self._pos += len(padded)

    def _take(self, n: int, what: str) -> bytes:
        """Read ``n`` bytes and skip their padding (``Parcel::read``/``readInplace``)."""
        start, end = self._pos, self._pos + _pad(n)
        if n < 0 or end > len(self._buf):
            raise ParcelError(
                f"not enough data for {what}: need {_pad(n)} bytes at {start}, have {len(self._buf) - start}"
            )
        self._check_no_object(start, end, what)
        self._pos = end
        return bytes(self._buf[start : start + n])

    def _unpack(self, fmt: struct.Struct, what: str) -> Any:
        """Read one fixed-size value (4 or 8 bytes, so no padding): :meth:`_take` without the copy."""
        start = self._pos
        end = start + fmt.size
        if end > len(self._buf) or self._objects:
            return fmt.unpack(self._take(fmt.size, what))[0]  # its checks and errors
        self._pos = end
        return fmt.unpack_from(self._buf, start)[0]

    def _check_no_object(self, start: int, end: int, what: str) -> None:
        """``validateReadData``: plain reads may not touch a flat object's bytes."""
        if not self._objects:
            return
        objs = sorted(self._objects)
        i = bisect.bisect_left(objs, start - FLAT_OBJECT_SIZE + 1)
        if i < len(objs) and objs[i] < end:
            raise ParcelError(f"{what} at {start} overlaps the binder object at offset {objs[i]}")

    @staticmethod
    def _pack(fmt: struct.Struct, what: str, *values: Any) -> bytes:
        try:
            return fmt.pack(*values)
        except (struct.error, OverflowError) as e:
            raise ValueError(f"{what} out of range: {values!r}") from e

    @staticmethod
    def _pack1(fmt: struct.Struct, what: str, value: Any) -> bytes:
        """:meth:`_pack` of one value (no argument tuple: the per-call path)."""
        try:
            return fmt.pack(value)
        except (struct.error, OverflowError):
            return Parcel._pack(fmt, what, value)  # raises, with its message

    # --- numbers -------------------------------------------------------------------------------

    def write_int32(self, value: int) -> None:
        """``writeInt32``."""
        self._put(self._pack1(_I32, "int32", value))

    def read_int32(self) -> int:
        """``readInt32``."""
        value: int = self._unpack(_I32, "int32")
        return value

    def write_uint32(self, value: int) -> None:
        """``writeUint32``."""
        self._put(self._pack1(_U32, "uint32", value))

    def read_uint32(self) -> int:
        """``readUint32``."""
        value: int = self._unpack(_U32, "uint32")
        return value

    def write_int64(self, value: int) -> None:
        """``writeInt64``: 8 bytes, no extra alignment."""
        self._put(self._pack1(_I64, "int64", value))

    def read_int64(self) -> int:
        """``readInt64``."""
        value: int = self._unpack(_I64, "int64")
        return value

    def write_uint64(self, value: int) -> None:
        """``writeUint64``."""
        self._put(self._pack1(_U64, "uint64", value))

    def read_uint64(self) -> int:
        """``readUint64``."""
        value: int = self._unpack(_U64, "uint64")
        return value

    def write_float(self, value: float) -> None:
        """``writeFloat``: IEEE single."""
        self._put(self._pack1(_F32, "float", value))

    def read_float(self) -> float:
        """``readFloat``."""
        value: float = self._unpack(_F32, "float")
        return value

    def write_double(self, value: float) -> None:
        """``writeDouble``: IEEE double."""
        self._put(self._pack1(_F64, "double", value))

    def read_double(self) -> float:
        """``readDouble``."""
        value: float = self._unpack(_F64, "double")
        return value

    def write_bool(self, value: bool) -> None:
        """``writeBool``: an int32, 1 or 0."""
        self.write_int32(1 if value else 0)

    def read_bool(self) -> bool:
        """``readBool``: any non-zero int32 is true."""
        return self.read_int32() != 0

    def write_byte(self, value: int) -> None:
        """``writeByte``: an int8 (0..255 taken as its two's complement) widened to an int32."""
        if not -128 <= value <= 255:
            raise ValueError(f"byte out of range: {value!r}")
        self.write_int32(value - 256 if value > 127 else value)

    def read_byte(self) -> int:
        """``readByte``: the low 8 bits of an int32, signed."""
        low = self.read_int32() & 0xFF
        return low - 256 if low > 127 else low

    # --- strings and arrays --------------------------------------------------------------------

    def _read_length(self, what: str) -> int | None:
        """A length word: -1 is null, other negatives are garbage."""
        n = self.read_int32()
        if n == -1:
            return None
        if n < 0:
            raise ParcelError(f"negative length {n} for {what}")
        return n

    def write_string16(self, value: str | None) -> None:
        """``writeString16``: int32 UTF-16 length (-1 for null), UTF-16LE units, a 0 unit, padding."""
        if value is None:
            self.write_int32(-1)
            return
        units = value.encode("utf-16-le", "surrogatepass")
        self.write_int32(len(units) // 2)
        self._put(units + b"\0\0")

    def _read_string16_units(self) -> bytes | None:
        """``readString16Inplace``: the UTF-16LE units of a String16, or None for null."""
        n = self._read_length("String16")
        if n is None:
            return None
        raw = self._take(2 * (n + 1), "String16")
        if raw[-2:] != b"\0\0":
            raise ParcelError(f"String16 of {n} units is not 0-terminated")
        return raw[:-2]

    def read_string16(self) -> str | None:
        """``readString16``; None for null. Unpaired surrogates come back as they were."""
        units = self._read_string16_units()
        return None if units is None else units.decode("utf-16-le", "surrogatepass")

    def write_utf8_as_utf16(self, value: str | bytes | None) -> None:
        """``writeUtf8AsUtf16`` (AIDL ``@utf8InCpp String``): a String16 on the wire.

        ``bytes`` must be valid UTF-8 (libbinder's BAD_VALUE otherwise: ``ValueError``).
        """
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"not UTF-8: {value!r}") from e
        self.write_string16(value)

    def read_utf8_from_utf16(self) -> str | None:
        """``readUtf8FromUtf16``: a String16 that must be valid UTF-16; None for null."""
        units = self._read_string16_units()
        if units is None:
            return None
        try:
            return units.decode("utf-16-le")
        except UnicodeDecodeError as e:
            raise ParcelError(f"String16 is not valid UTF-16: {e}") from e

    def write_string8(self, value: str | bytes | None) -> None:
        """``writeString8``: int32 byte length (-1 for null), the bytes, a NUL, padding.

        A ``str`` is encoded as UTF-8 (surrogate escapes give back the bytes they came from).
        """
        if value is None:
            self.write_int32(-1)
            return
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        self.write_int32(len(raw))
        self._put(raw + b"\0")

    def read_string8(self) -> str | None:
        """``readString8``: decoded as UTF-8, undecodable bytes as surrogate escapes; None for null."""
        n = self._read_length("String8")
        if n is None:
            return None
        raw = self._take(n + 1, "String8")
        if raw[-1] != 0:
            raise ParcelError(f"String8 of {n} bytes is not NUL-terminated")
        return raw[:-1].decode("utf-8", "surrogateescape")

    def write_byte_array(self, value: bytes | None) -> None:
        """``writeByteArray`` / AIDL ``byte[]``: int32 length (-1 for null), bytes, padding."""
        if value is None:
            self.write_int32(-1)
            return
        self.write_int32(len(value))
        self._put(bytes(value))

    def read_byte_array(self) -> bytes | None:
        """``readByteVector``; None for null."""
        n = self._read_length("byte array")
        return None if n is None else self._take(n, "byte array")

    # --- binder objects ------------------------------------------------------------------------

    def write_flat_object(
        self, type_: int, flags: int, value: int, cookie: int, *, null_meta_data: bool = True
    ) -> None:
        """``writeObject``: a 24-byte ``flat_binder_object`` at the position.

        Its offset goes into :meth:`objects` unless ``null_meta_data`` is false and ``value`` is
        0 (libbinder keeps null binders, and handle 0, out of the offsets array that way).
        """
        raw = self._pack(FLAT_BINDER_OBJECT, "flat_binder_object", type_, flags, value, cookie)
        pos = self._pos
        self._put(raw)
        if null_meta_data or value != 0:
            self._objects.append(pos)

    def read_flat_object(self, *, null_meta_data: bool = True) -> FlatBinderObject:
        """``readObject``: the flat object at the position, which must be in :meth:`objects`.

        With ``null_meta_data`` false, an object whose value and cookie are 0 need not be.
        """
        pos = self._pos
        if pos + FLAT_OBJECT_SIZE > len(self._buf):
            raise ParcelError(f"not enough data for a flat_binder_object at {pos}")
        obj = FlatBinderObject(*FLAT_BINDER_OBJECT.unpack_from(self._buf, pos))
        if (null_meta_data or obj.value != 0 or obj.cookie != 0) and pos not in self._objects:
            raise ParcelError(f"no binder object at offset {pos} (objects at {self._objects})")
        self._pos = pos + FLAT_OBJECT_SIZE
        return obj

    def write_strong_binder(
        self, obj: FlattenableBinder | None, *, null_flags: int = DEFAULT_SCHED_BITS
    ) -> None:
        """``writeStrongBinder`` (``flattenBinder`` + ``finishFlattenBinder``).

        Writes the object :attr:`binder_flattener` describes, then its stability word
        (``obj.stability``, default SYSTEM). ``None`` is the null binder: BINDER_TYPE_BINDER,
        ``null_flags``, binder 0, cookie 0, stability UNDECLARED. Objects whose value is 0
        (the null binder, handle 0) are not recorded in :meth:`objects`, as in libbinder.
        """
        if obj is None:
            self.write_flat_object(BINDER_TYPE_BINDER, null_flags, 0, 0, null_meta_data=False)
            self.write_int32(_stability_word(Stability.UNDECLARED))
            return
        stability = int(getattr(obj, "stability", Stability.SYSTEM))
        if stability not in _DECLARED_LEVELS:
            raise ValueError(f"binder stability must be a declared level, not {stability}")
        type_, flags, value, cookie = Parcel.binder_flattener(obj)
        self.write_flat_object(type_, flags, value, cookie, null_meta_data=False)
        self.write_int32(_stability_word(stability))

    def read_strong_binder(self) -> Any:
        """``readNullableStrongBinder``: None for the null binder, else the resolver's result.

        Reads the object and its stability word and checks them as ``unflattenBinder`` and
        ``Stability::setRepr`` do: the type must be BINDER or HANDLE, a null binder must be
        UNDECLARED and any other a declared level. Then calls
        ``self.binder_resolver(FlatBinderObject, stability)``; the default resolver returns the
        FlatBinderObject.
        """
        pos = self._pos
        obj = self.read_flat_object(null_meta_data=False)
        if obj.type not in (BINDER_TYPE_BINDER, BINDER_TYPE_HANDLE):
            raise ParcelError(f"object at {pos} is not a binder (type {obj.type:#x})")
        stability = self.read_int32()
        if _CATEGORY[0]:  # Android 12 and 13: a Category word; its version must be 1 or more
            if stability & 0xFF < _WIRE_VERSION:
                raise ParcelError(f"binder at {pos} carries wire protocol version {stability & 0xFF}")
            stability = (stability >> 24) & 0xFF
        if obj.type == BINDER_TYPE_BINDER and obj.value == 0 and obj.cookie == 0:
            if stability != Stability.UNDECLARED:
                raise ParcelError(f"null binder at {pos} carries stability {stability}")
            return None
        if stability not in _DECLARED_LEVELS:
            raise ParcelError(f"binder at {pos} carries unknown stability {stability}")
        return self.binder_resolver(obj, stability)

    # --- file descriptors ----------------------------------------------------------------------

    def write_file_descriptor(self, fd: int | HasFileno, take_ownership: bool = False) -> None:
        """``writeFileDescriptor``: a BINDER_TYPE_FD object (flags 0, cookie 1 when the parcel takes
        ownership of ``fd`` and closes it with itself, else 0: the caller keeps it open until the
        parcel is sent). The receiver gets its own fd for the same open file."""
        number = fileno(fd)
        if take_ownership:
            self._own(number)
        self.write_flat_object(BINDER_TYPE_FD, 0, number & 0xFFFFFFFF, 1 if take_ownership else 0)

    def write_dup_file_descriptor(self, fd: int | HasFileno) -> None:
        """``writeDupFileDescriptor``: a duplicate (close-on-exec) that the parcel owns."""
        dup = dup_cloexec(fileno(fd))
        try:
            self.write_file_descriptor(dup, take_ownership=True)
        except BaseException:
            os.close(dup)
            raise

    def write_parcel_file_descriptor(self, pfd: int | HasFileno) -> None:
        """``ParcelFileDescriptor::writeToParcel`` (``writeDupParcelFileDescriptor``): int32 0 (no
        comm channel), then a duplicate of ``pfd`` that the parcel owns. AIDL's non-null marker
        (int32 1) is the caller's."""
        self.write_int32(0)
        self.write_dup_file_descriptor(pfd)

    def read_file_descriptor(self) -> int:
        """``readFileDescriptor``: the fd of the BINDER_TYPE_FD object at the position. It stays the
        parcel's (a received parcel closes its fds with itself): dup it, or use
        :meth:`read_unique_file_descriptor`, to keep it."""
        pos = self._pos
        obj = self.read_flat_object()
        if obj.type != BINDER_TYPE_FD:
            raise ParcelError(f"object at {pos} is not a file descriptor (type {obj.type:#x})")
        fd = obj.value & 0xFFFFFFFF
        if fd >= 0x8000_0000:
            raise ParcelError(f"the file descriptor at {pos} was not received (the process has no room for it)")
        return fd

    def read_unique_file_descriptor(self) -> int:
        """``readUniqueFileDescriptor``: a duplicate (close-on-exec) that the caller owns."""
        return dup_cloexec(self.read_file_descriptor())

    def read_parcel_file_descriptor(self) -> ParcelFileDescriptor:
        """``readUniqueParcelFileDescriptor``: what :meth:`write_parcel_file_descriptor` wrote, as a
        ParcelFileDescriptor that owns a duplicate. A comm channel (Java's ``createReliable*``) is
        told the fd is detached and left to the parcel, as ``readParcelFileDescriptor`` does."""
        has_comm = self.read_int32()
        fd = self.read_file_descriptor()
        if has_comm:
            comm = self.read_file_descriptor()
            try:
                os.write(comm, (2).to_bytes(4, "big"))  # ParcelFileDescriptor.Status.DETACHED, big-endian
            except OSError as e:
                raise ParcelError(f"detaching the ParcelFileDescriptor failed: {e}") from None
        return ParcelFileDescriptor(dup_cloexec(fd))

    def has_file_descriptors(self) -> bool:
        """``hasFileDescriptors``: the parcel holds a BINDER_TYPE_FD object."""
        buf = self._buf
        return any(int.from_bytes(buf[off:off + 4], "little") == BINDER_TYPE_FD for off in self._objects)

    def adopt_file_descriptors(self) -> None:
        """A received parcel's fds become the parcel's: closed with it (libbinder's received
        ``Parcel`` closes its fds when it frees its buffer)."""
        buf = self._buf
        for off in self._objects:
            if int.from_bytes(buf[off:off + 4], "little") == BINDER_TYPE_FD:
                fd = int.from_bytes(buf[off + 8:off + 12], "little")
                if fd < 0x8000_0000:
                    self._own(fd)

    def owns_file_descriptors(self) -> bool:
        """Whether the parcel holds fds it closes (see :meth:`close_file_descriptors`)."""
        owned = self._owned
        return owned is not None and bool(owned.fds)

    def close_file_descriptors(self) -> None:
        """Close the fds the parcel owns (also done when it is garbage-collected)."""
        owned = self._owned
        if owned is not None:
            owned.close()

    def _own(self, fd: int) -> None:
        owned = self._owned
        if owned is None:
            owned = self._owned = OwnedFds()
        owned.fds.append(fd)

    # --- interface tokens ----------------------------------------------------------------------

    def write_interface_token(
        self,
        descriptor: str,
        header: int = HEADER_SYST,
        *,
        strict_mode_policy: int = 0,
        work_source: int = UNSET_WORK_SOURCE,
    ) -> None:
        """``writeInterfaceToken``: policy | PENALTY_GATHER, work source, header, descriptor.

        The defaults are a native thread's: policy 0, no work source propagated.
        """
        key = (strict_mode_policy, work_source, header, descriptor)
        raw = _TOKENS.get(key)
        if raw is None:  # encoded once per interface: a proxy writes the same token on every call
            token = Parcel()
            token.write_uint32((strict_mode_policy | STRICT_MODE_PENALTY_GATHER) & 0xFFFFFFFF)
            token.write_int32(work_source)
            token.write_uint32(header)
            token.write_string16(descriptor)
            raw = token.data()
            if len(_TOKENS) < _TOKENS_MAX:
                _TOKENS[key] = raw
        self._put(raw)

    def read_interface_token(self) -> InterfaceToken:
        """The four fields of an interface token, unchecked (policy and header as int32)."""
        policy = self.read_int32()
        work_source = self.read_int32()
        header = self.read_int32()
        return InterfaceToken(policy, work_source, header, self.read_string16())

    def enforce_interface(self, descriptor: str, header: int = HEADER_SYST) -> bool:
        """``enforceInterface``: read a token; true when its header and descriptor match.

        As in libbinder, a wrong header returns false before the descriptor is read.
        """
        expected = _EXPECTED.get((header, descriptor))
        if expected is None:  # the header word and the descriptor as a token carries them
            token = Parcel()
            token.write_uint32(header & 0xFFFFFFFF)
            token.write_string16(descriptor)
            expected = token.data()
            if len(_EXPECTED) < _TOKENS_MAX:
                _EXPECTED[(header, descriptor)] = expected
        start = self._pos + 8  # after the strict-mode policy and the work source
        if self._buf[start:start + len(expected)] == expected:  # the usual case: one comparison
            self._pos = start + len(expected)
            return True
        self.read_int32()  # strict-mode policy
        self.read_int32()  # work source
        if self.read_uint32() != header & 0xFFFFFFFF:
            return False
        return self.read_string16() == descriptor

    # --- AIDL status ---------------------------------------------------------------------------

    def write_no_exception(self) -> None:
        """``writeNoException``: the status of a successful AIDL reply, int32 0."""
        self.write_int32(EX_NONE)

    def write_exception(self, exc: RemoteException) -> None:
        """``Status::writeToParcel``: code, message, empty stack-trace header, then extras.

        A None message is written as the empty string. EX_SERVICE_SPECIFIC adds the error
        code, EX_PARCELABLE an empty blob (int32 0). EX_TRANSACTION_FAILED is never written
        (libbinder returns its status_t instead): ``ValueError``.
        """
        if exc.code == EX_TRANSACTION_FAILED:
            raise ValueError("EX_TRANSACTION_FAILED is not sent in a parcel; fail the transaction")
        self.write_int32(exc.code)
        if exc.code == EX_NONE:
            return
        self.write_string16(exc.message or "")
        self.write_int32(0)  # remote stack trace header
        if exc.code == EX_SERVICE_SPECIFIC:
            self.write_int32(exc.service_specific_error)
        elif exc.code == EX_PARCELABLE:
            self.write_int32(0)

    def _skip_sized_header(self, what: str) -> None:
        """Skip a block whose int32 size counts its own 4 bytes; 0 skips just the size."""
        start, avail = self._pos, self.data_avail()
        size = self.read_int32()
        if size < 0 or size > avail:
            raise ParcelError(f"bad {what} size {size} at {start} ({avail} bytes left)")
        if size:
            self._pos = start + size

    def read_status(self) -> RemoteException | None:
        """``Status::readFromParcel``: None for EX_NONE, else the exception (not raised), as the
        :class:`RemoteException` subclass for its code (``ServiceSpecificException``, ...).

        A reply header (EX_HAS_REPLY_HEADER) is skipped and means no exception; the remote
        stack trace and an EX_PARCELABLE blob are skipped. A null message reads as None.
        """
        code = self.read_int32()
        if code == EX_HAS_REPLY_HEADER:
            self._skip_sized_header("reply header")
            code = EX_NONE
        if code == EX_NONE:
            return None
        message = self.read_string16()
        self._skip_sized_header("remote stack trace header")
        error = 0
        if code == EX_SERVICE_SPECIFIC:
            error = self.read_int32()
        elif code == EX_PARCELABLE:
            self._skip_sized_header("parcelable exception")
        return exception_for(code, message, error)

    def read_exception(self) -> None:
        """``readExceptionCode`` for AIDL replies: raise the RemoteException if there is one."""
        exc = self.read_status()
        if exc is not None:
            raise exc
