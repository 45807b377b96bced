"""A Pythonic way to define a binder service and to call one (AIDL's wire conventions).

::

    class Echo(Service):
        descriptor = "vbinder.example.IEcho"

        @method(FIRST_CALL_TRANSACTION)
        def echo(self, data: Parcel, reply: Parcel) -> None:
            reply.write_string16(data.read_string16())

    class EchoProxy(Proxy):
        descriptor = "vbinder.example.IEcho"

        def echo(self, text: str) -> str:
            return self.call(FIRST_CALL_TRANSACTION, lambda p: p.write_string16(text)).read_string16()

A method's request starts with the interface token; its reply starts with the AIDL status
(``writeNoException``, or the exception a :class:`RemoteException` describes).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from .binder import FLAG_ONEWAY, BBinder, IBinder
from .errors import UnknownTransactionError
from .parcel import EX_ILLEGAL_STATE, EX_SECURITY, HEADER_SYST, Parcel, RemoteException
from .parcel_file_descriptor import HasFileno

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def method(code: int, oneway: bool = False) -> Callable[[F], F]:
    """Mark a :class:`Service` method as the handler of transaction ``code``."""

    def mark(fn: F) -> F:
        fn._binder_code = code  # type: ignore[attr-defined]
        fn._binder_oneway = oneway  # type: ignore[attr-defined]
        return fn

    return mark


class Service(BBinder):
    """A local object whose :func:`method`-marked methods handle transaction codes."""

    descriptor = ""
    header = HEADER_SYST
    _methods: ClassVar[dict[int, Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._methods = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                code = getattr(value, "_binder_code", None)
                if code is not None:
                    cls._methods[code] = value

    def on_transact(self, code: int, data: Parcel, reply: Parcel, flags: int) -> None:
        fn = self._methods.get(code)
        if fn is None:
            raise UnknownTransactionError(code)
        if not data.enforce_interface(self.descriptor, self.header):
            reply.write_exception(RemoteException(EX_SECURITY, "Interface token mismatch"))
            return
        start = reply.data_position()
        reply.write_no_exception()
        try:
            fn(self, data, reply)
        except RemoteException as e:
            reply.set_data_position(start)
            reply.write_exception(e)
        except UnknownTransactionError:
            raise
        except Exception as e:  # noqa: BLE001 - the caller gets the error as an exception status
            log.exception("%s: code %d failed", self.descriptor, code)
            reply.set_data_position(start)
            reply.write_exception(RemoteException(EX_ILLEGAL_STATE, f"{type(e).__name__}: {e}"))


class Proxy:
    """A typed client of a remote (or local) object: requests carry the interface token."""

    descriptor = ""
    header = HEADER_SYST

    def __init__(self, binder: IBinder) -> None:
        self.binder = binder

    def dump(self, fd: int | HasFileno, args: Sequence[str] = ()) -> int | None:
        """The object's ``dump`` (IBinder.dump: DUMP_TRANSACTION with ``fd`` and ``args``)."""
        return self.binder.dump(fd, args)

    def call(self, code: int, write: Callable[[Parcel], None] | None = None, oneway: bool = False,
             method: str | None = None) -> Parcel:
        """Send ``code`` with the token and what ``write`` adds; return the reply after its status.

        ``method`` names the call in traces (default: the name of the proxy method calling this).
        """
        data = Parcel()
        if method is None:
            caller = sys._getframe(1).f_code.co_name
            method = caller if caller.isidentifier() else f"#{code}"  # Java's name for a nameless code
        data.trace_name = (self.descriptor, method)
        data.write_interface_token(self.descriptor, self.header)
        if write is not None:
            write(data)
        reply = self.binder.transact(code, data, FLAG_ONEWAY if oneway else 0)
        if reply is None:
            return Parcel()
        reply.read_exception()
        return reply
