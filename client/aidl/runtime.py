"""What the generated code stands on: base classes for interfaces, stubs, proxies, parcelables,
unions and enums, and the parcel encodings of AIDL's types that :class:`Parcel` lacks.

Each encoding is the one AOSP's generated code produces, and says where the rule comes from:
``Parcel.cpp`` / ``Parcel.java`` (libbinder and the framework) and the code Android 14's aidl
generates for the C++ (``generate_cpp.cpp``) and Java (``generate_java*.cpp``) backends.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, cast, overload

from ..binder import FLAG_ONEWAY, BBinder, BpBinder, IBinder, UnknownTransactionError
from ..errors import (
    EX_BAD_PARCELABLE,
    EX_ILLEGAL_STATE,
    EX_SECURITY,
    EX_UNSUPPORTED_OPERATION,
    ParcelError,
    RemoteException,
    exception_for,
)
from ..parcel import HEADER_SYST, Parcel, interface_header
from ..process_state import ProcessState
from ..stability import Stability

__all__ = [
    "AidlEnum", "Interface", "Parcelable", "Proxy", "Stub", "Union", "as_binder", "end_of_arguments",
    "non_null", "out_array", "read_array", "read_array_into", "read_binder", "read_byte_enum_array",
    "read_bytes", "read_bytes_into", "read_char", "read_file_descriptor", "read_parcelable",
    "read_parcelable_into", "read_pfd", "read_string", "read_utf8", "write_array", "write_byte_enum_array",
    "write_char", "write_file_descriptor", "write_out_array_size", "write_parcelable", "write_pfd",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
P = TypeVar("P", bound="Parcelable")
I_co = TypeVar("I_co", bound="Interface", covariant=True)


class Parcelable(Protocol):
    """What a parcelable offers: the generated ones, and the classes users provide for
    ``parcelable Foo;`` declarations (constructible with no arguments)."""

    def write_to_parcel(self, parcel: Parcel) -> None: ...

    def read_from_parcel(self, parcel: Parcel) -> None: ...


# --- values ----------------------------------------------------------------------------------------


def non_null(value: T | None, what: str) -> T:
    """A value of a type that is not ``@nullable``: null on the wire is an error, as the C++
    backend's ``UNEXPECTED_NULL``."""
    if value is None:
        raise ParcelError(f"unexpected null {what}")
    return value


def write_char(p: Parcel, value: str) -> None:
    """``char``: one UTF-16 code unit in an int32 (``Parcel::writeChar``, Java ``writeInt(c)``)."""
    code = ord(value) if len(value) == 1 else -1
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"char must be one UTF-16 code unit, not {value!r}")
    p.write_int32(code)


def read_char(p: Parcel) -> str:
    """``readChar``: the low 16 bits of an int32."""
    return chr(p.read_int32() & 0xFFFF)


def read_string(p: Parcel) -> str:
    """A ``String`` that is not ``@nullable`` (``readString16``)."""
    return non_null(p.read_string16(), "String")


def read_utf8(p: Parcel) -> str:
    """A ``@utf8InCpp String`` that is not ``@nullable`` (``readUtf8FromUtf16``)."""
    return non_null(p.read_utf8_from_utf16(), "String")


def read_bytes(p: Parcel) -> bytes:
    """A ``byte[]`` that is not ``@nullable`` (``readByteVector``)."""
    return non_null(p.read_byte_array(), "byte[]")


def read_binder(p: Parcel) -> IBinder:
    """An ``IBinder`` that is not ``@nullable`` (``readStrongBinder``)."""
    return cast(IBinder, non_null(p.read_strong_binder(), "IBinder"))


def read_nullable_binder(p: Parcel) -> IBinder | None:
    """A ``@nullable IBinder`` (``readNullableStrongBinder``)."""
    return cast("IBinder | None", p.read_strong_binder())


def as_binder(value: Interface | IBinder | None) -> IBinder | None:
    """The binder an interface argument is written as (``IInterface::asBinder``)."""
    if value is None or isinstance(value, IBinder):
        return value
    return value.as_binder()


def read_interface(p: Parcel, stub: type[Stub[I_co]]) -> I_co | None:
    """An interface: the binder read, as ``IFoo.Stub.asInterface`` makes it."""
    binder = p.read_strong_binder()
    return None if binder is None else stub.as_interface(binder)


def write_interface(p: Parcel, value: Interface | None) -> None:
    """An interface (a callback): its binder (``writeStrongBinder(IInterface::asBinder(v))``)."""
    p.write_strong_binder(as_binder(value))


# --- arrays and Lists ------------------------------------------------------------------------------
# Parcel.cpp writeData(vector<T>) / Parcel.java write*Array: an int32 length (-1 for null), then
# each element as it is written alone. byte[] (and byte-backed enums) are the exception: their
# bytes follow the length, padded to 4 (writeByteVector / writeByteArray).


def write_array(p: Parcel, values: Sequence[T] | None, write: Callable[[Parcel, T], None]) -> None:
    if values is None:
        p.write_int32(-1)
        return
    p.write_int32(len(values))
    for v in values:
        write(p, v)


def _read_length(p: Parcel, min_size: int) -> int | None:
    n = p.read_int32()
    if n == -1:
        return None
    if n < 0 or n * min_size > p.data_avail():  # Parcel::resizeOutVector / readData's bound
        raise ParcelError(f"bad array length {n} ({p.data_avail()} bytes left)")
    return n


def read_array(p: Parcel, read: Callable[[Parcel], T], min_size: int = 4) -> list[T] | None:
    n = _read_length(p, min_size)
    return None if n is None else [read(p) for _ in range(n)]


def read_array_into(p: Parcel, target: list[T] | None, read: Callable[[Parcel], T]) -> None:
    """An ``out``/``inout`` array or List written back by the callee: it replaces ``target``'s
    contents (Java fills the caller's array; C++ resizes the caller's vector)."""
    values = read_array(p, read)
    if target is not None:
        target[:] = values or []


def write_out_array_size(p: Parcel, values: Sequence[Any] | bytes | None) -> None:
    """An ``out T[]``'s length, which the proxy sends (generate_cpp ``writeVectorSize``, Java
    ``writeInt(arg.length)``, -1 for null) so that the stub can allocate as many elements."""
    p.write_int32(-1 if values is None else len(values))


def out_array(p: Parcel, new: Callable[[], T]) -> list[T] | None:
    """The stub's side of :func:`write_out_array_size` (``resizeOutVector``): that many
    default elements, or None."""
    n = _read_length(p, 0)
    return None if n is None else [new() for _ in range(n)]


def out_bytes(p: Parcel) -> bytearray | None:
    n = _read_length(p, 0)
    return None if n is None else bytearray(n)


def read_bytes_into(p: Parcel, target: bytearray | None) -> None:
    values = p.read_byte_array()
    if target is not None:
        target[:] = values or b""


E = TypeVar("E", bound="AidlEnum")


def write_byte_enum_array(p: Parcel, values: Sequence[int] | None) -> None:
    """A byte-backed enum's array: written as ``byte[]`` (Parcel.h ``writeEnumVector`` for int8_t)."""
    p.write_byte_array(None if values is None else bytes(v & 0xFF for v in values))


def read_byte_enum_array(p: Parcel, enum_type: type[E]) -> list[E] | None:
    raw = p.read_byte_array()
    return None if raw is None else [enum_type(b - 256 if b > 127 else b) for b in raw]


# --- parcelables -----------------------------------------------------------------------------------


def write_parcelable(p: Parcel, value: Parcelable | None) -> None:
    """``writeParcelable`` / ``writeNullableParcelable`` (Java ``writeTypedObject``): int32 1 then
    the parcelable, or int32 0 for null."""
    if value is None:
        p.write_int32(0)
        return
    p.write_int32(1)
    value.write_to_parcel(p)


def read_parcelable(p: Parcel, new: Callable[[], P]) -> P | None:
    """``readParcelable`` (Java ``readTypedObject``): None after a 0, else ``new()`` read in place."""
    if p.read_int32() == 0:
        return None
    value = new()
    value.read_from_parcel(p)
    return value


@overload
def parcelable_reader(new: Callable[[], P], nullable: Literal[False]) -> Callable[[Parcel], P]: ...


@overload
def parcelable_reader(new: Callable[[], P], nullable: Literal[True]) -> Callable[[Parcel], P | None]: ...


def parcelable_reader(new: Callable[[], P], nullable: bool) -> Callable[[Parcel], P | None]:
    """Reads one element of an array or List of parcelables (each with its null marker)."""
    if nullable:
        return lambda p: read_parcelable(p, new)
    return lambda p: non_null(read_parcelable(p, new), new.__name__ if hasattr(new, "__name__") else "parcelable")


def read_parcelable_into(p: Parcel, target: Parcelable | None) -> None:
    """An ``out``/``inout`` parcelable written back by the callee, read into the caller's object
    (Java: ``if (0 != _reply.readInt()) arg.readFromParcel(_reply)``)."""
    if p.read_int32() != 0 and target is not None:
        target.read_from_parcel(p)


def begin_parcelable(p: Parcel) -> int:
    """A structured parcelable's header: its int32 size, which counts itself. Returns where the
    parcelable ends (generate_cpp ``readFromParcel``: a size below 4 is BAD_VALUE)."""
    start = p.data_position()
    size = p.read_int32()
    if size < 4 or start + size > p.data_size():
        raise ParcelError(f"bad parcelable size {size} at {start} ({p.data_size() - start} bytes left)")
    return start + size


def begin_write_parcelable(p: Parcel) -> int:
    """Reserve the size word; :func:`end_write_parcelable` fills it in (``_aidl_start_pos``)."""
    start = p.data_position()
    p.write_int32(0)
    return start


def end_write_parcelable(p: Parcel, start: int) -> None:
    end = p.data_position()
    p.set_data_position(start)
    p.write_int32(end - start)
    p.set_data_position(end)


class StructuredParcelable:
    """Base of the generated parcelables (which are dataclasses)."""

    def write_to_parcel(self, parcel: Parcel) -> None:
        raise NotImplementedError

    def read_from_parcel(self, parcel: Parcel) -> None:
        raise NotImplementedError


class Union:
    """Base of the generated unions: exactly one field is set; ``tag`` says which.

    ``U(name=value)`` sets one field, ``U()`` the first with its default. Reading the field that
    is not set raises ``AttributeError`` (Java: ``IllegalStateException``), setting one switches.
    """

    Tag: ClassVar[type[enum.IntEnum]]
    _defaults: ClassVar[dict[str, Callable[[], Any]]]  # by field, in declaration order

    def __init__(self, **field: Any) -> None:
        if len(field) > 1:
            raise TypeError(f"a union holds one field, not {', '.join(field)}")
        if not field:
            name, make = next(iter(self._defaults.items()))
            field = {name: make()}
        ((name, value),) = field.items()
        if name not in self._defaults:
            raise TypeError(f"{type(self).__name__} has no field {name!r}")
        self._tag = self.Tag[name]
        self._value = value

    @property
    def tag(self) -> enum.IntEnum:
        return self._tag

    @property
    def value(self) -> Any:
        return self._value

    def _get(self, tag: enum.IntEnum) -> Any:
        if self._tag is not tag:
            raise AttributeError(f"{type(self).__name__} holds {self._tag.name}, not {tag.name}")
        return self._value

    def _set(self, tag: enum.IntEnum, value: Any) -> None:
        self._tag, self._value = tag, value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self._tag, self._value) == (other._tag, other._value)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._tag))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._tag.name}={self._value!r})"

    def write_to_parcel(self, parcel: Parcel) -> None:
        raise NotImplementedError

    def read_from_parcel(self, parcel: Parcel) -> None:
        raise NotImplementedError


def unknown_tag(union: str, tag: int) -> ParcelError:
    return ParcelError(f"union {union}: unknown tag {tag}")


class AidlEnum(enum.IntEnum):
    """Base of the generated enums. A value the declaration does not name (a newer peer's) is
    kept, as C++ and Java keep it: ``E(7)`` is a member named ``'7'``."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = str(value)
        member._value_ = value
        return member


# --- file descriptors ------------------------------------------------------------------------------
# FileDescriptor is written as libbinder's writeDupFileDescriptor (a BINDER_TYPE_FD object);
# ParcelFileDescriptor as a parcelable: int32 1 (non-null) or 0, then what
# Parcel.write_parcel_file_descriptor writes (ParcelFileDescriptor::writeToParcel: int32 0, no
# comm channel, then the fd object). Those Parcel methods come with file-descriptor support.


class _FdParcel(Protocol):
    def write_dup_file_descriptor(self, fd: int) -> None: ...
    def read_file_descriptor(self) -> int: ...
    def read_unique_file_descriptor(self) -> int: ...
    def write_parcel_file_descriptor(self, pfd: Any) -> None: ...
    def read_parcel_file_descriptor(self) -> Any: ...


def _fd_parcel(p: Parcel) -> _FdParcel:
    if not hasattr(p, "write_file_descriptor"):
        raise NotImplementedError("this vbinder_client's Parcel cannot carry file descriptors")
    return cast(_FdParcel, p)


def write_file_descriptor(p: Parcel, fd: int) -> None:
    """AIDL's ``FileDescriptor`` as C++'s ``writeUniqueFileDescriptor`` and Java's
    ``writeRawFileDescriptor`` write it: ``writeDupFileDescriptor``, a duplicate the parcel owns
    (cookie 1); ``fd`` stays the caller's."""
    _fd_parcel(p).write_dup_file_descriptor(fd)


def read_file_descriptor(p: Parcel) -> int:
    """AIDL's ``FileDescriptor``, as the other backends hand it over (C++ ``unique_fd``): a result
    or out value read from a reply is a duplicate the caller owns and closes; an argument read by
    a stub is the call's, lent for the method's run (the call's parcel closes it after)."""
    fdp = _fd_parcel(p)
    return fdp.read_unique_file_descriptor() if p.is_reply else fdp.read_file_descriptor()


def write_pfd(p: Parcel, pfd: Any) -> None:
    if pfd is None:
        p.write_int32(0)
        return
    fdp = _fd_parcel(p)
    p.write_int32(1)
    fdp.write_parcel_file_descriptor(pfd)


def read_pfd(p: Parcel) -> Any:
    fdp = _fd_parcel(p)
    return None if p.read_int32() == 0 else fdp.read_parcel_file_descriptor()


# --- interfaces ------------------------------------------------------------------------------------


class Interface:
    """Base of the generated interfaces (``IInterface``)."""

    DESCRIPTOR: ClassVar[str] = ""

    def as_binder(self) -> IBinder:
        """The binder object behind this interface: the stub itself, or the proxy's remote."""
        raise NotImplementedError


def end_of_arguments(data: Parcel) -> None:
    """``Parcel::enforceNoDataAvail`` (Android 13+ stubs, both backends): a call must not carry
    more than its arguments."""
    left = data.data_avail()
    if left:
        raise RemoteException(EX_BAD_PARCELABLE, f"Parcel data not fully consumed, unread size: {left}")


Handler = Callable[[Any, Parcel, Parcel], None]


def transaction(code: int) -> Callable[[Handler], Handler]:
    """Mark a stub method as the handler of transaction ``code``."""

    def mark(fn: Handler) -> Handler:
        fn._aidl_code = code  # type: ignore[attr-defined]
        return fn

    return mark


class Stub(BBinder, Generic[I_co]):
    """Base of the generated ``IFoo.Stub``: a local binder object that unpacks each call,
    calls the method the subclass implements, and packs the reply as AOSP's stubs do.

    A call whose interface token does not match gets EX_SECURITY (Java's ``enforceInterface``);
    arguments that do not parse get EX_BAD_PARCELABLE; a method that raises a
    :class:`RemoteException` (``ServiceSpecificException`` and the others) sends it; one that
    raises ``NotImplementedError`` sends EX_UNSUPPORTED_OPERATION; any other exception is logged
    and sent as EX_ILLEGAL_STATE with its text.
    """

    DESCRIPTOR: ClassVar[str]
    header: int | None = None  # the interface token's header: None for the process's device's
    stability: int = Stability.SYSTEM
    _aidl_handlers: ClassVar[dict[int, Handler]] = {}
    _aidl_interface: ClassVar[type[Interface]]
    _aidl_proxy: ClassVar[Callable[[IBinder], Any]]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        handlers: dict[int, Handler] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                code = getattr(value, "_aidl_code", None)
                if code is not None:
                    handlers[code] = value
        cls._aidl_handlers = handlers
        cls.descriptor = getattr(cls, "DESCRIPTOR", "")  # what INTERFACE_TRANSACTION answers

    def as_binder(self) -> IBinder:
        return self

    @overload
    @classmethod
    def as_interface(cls: type[Stub[I_co]], binder: IBinder) -> I_co: ...

    @overload
    @classmethod
    def as_interface(cls: type[Stub[I_co]], binder: None) -> None: ...

    @classmethod
    def as_interface(cls: type[Stub[I_co]], binder: IBinder | None) -> I_co | None:
        """``IFoo.Stub.asInterface``: a local object of this interface itself, else a proxy."""
        if binder is None:
            return None
        if isinstance(binder, cls._aidl_interface) and isinstance(binder, BBinder):
            return cast(I_co, binder)
        return cast(I_co, cls._aidl_proxy(binder))

    def on_transact(self, code: int, data: Parcel, reply: Parcel, flags: int) -> None:
        handler = self._aidl_handlers.get(code)
        if handler is None:
            raise UnknownTransactionError(code)
        if not data.enforce_interface(self.DESCRIPTOR, self.header if self.header is not None else _own_header()):
            reply.write_exception(RemoteException(EX_SECURITY, "Binder invocation to an incorrect interface"))
            return
        start = reply.data_position()
        try:
            handler(self, data, reply)
            return
        except RemoteException as e:
            error = e
        except ParcelError as e:
            error = exception_for(EX_BAD_PARCELABLE, str(e))
        except NotImplementedError as e:
            error = exception_for(EX_UNSUPPORTED_OPERATION, str(e) or f"transaction {code} is not implemented")
        except UnknownTransactionError:
            raise
        except Exception as e:  # noqa: BLE001 - the caller gets the error as an exception status
            log.exception("%s: transaction %d failed", self.DESCRIPTOR, code)
            error = exception_for(EX_ILLEGAL_STATE, f"{type(e).__name__}: {e}")
        if flags & FLAG_ONEWAY:
            log.warning("%s: one-way transaction %d failed: %s", self.DESCRIPTOR, code, error)
            return
        reply.set_data_position(start)
        reply.write_exception(error)


def _own_header() -> int:
    """The header libbinder writes on this process's device (VNDR on vndbinder)."""
    process = ProcessState._instance
    return interface_header(process.device) if process is not None else HEADER_SYST


class Proxy:
    """Base of the generated proxies: each method writes the token and its arguments,
    transacts, and reads the reply's status (raised as the matching exception) and results."""

    DESCRIPTOR: ClassVar[str]

    def __init__(self, binder: IBinder) -> None:
        self.binder = binder
        self.header = interface_header(binder.process.device) if isinstance(binder, BpBinder) else _own_header()

    def as_binder(self) -> IBinder:
        return self.binder

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} of {self.binder!r}>"

    def _aidl_data(self) -> Parcel:
        data = Parcel()
        data.write_interface_token(self.DESCRIPTOR, self.header)
        return data

    def _aidl_call(self, code: int, data: Parcel) -> Parcel:
        data.trace_name = (self.DESCRIPTOR, _method_name(type(self), code))
        reply = self.binder.transact(code, data, 0)
        assert reply is not None
        reply.read_exception()
        return reply

    def _aidl_send(self, code: int, data: Parcel) -> None:
        data.trace_name = (self.DESCRIPTOR, _method_name(type(self), code))
        self.binder.transact(code, data, FLAG_ONEWAY)


_METHOD_NAMES: dict[type, dict[int, str]] = {}


def _method_name(cls: type, code: int) -> str:
    """The AIDL method of transaction ``code`` (from the interface's ``TRANSACTION_<method>``): the
    name a trace shows for the call (docs/tracing.md)."""
    names = _METHOD_NAMES.get(cls)
    if names is None:
        names = _METHOD_NAMES[cls] = {value: attr[len("TRANSACTION_"):] for klass in reversed(cls.__mro__)
                                      for attr, value in vars(klass).items()
                                      if attr.startswith("TRANSACTION_") and isinstance(value, int)}
    return names.get(code, str(code))
