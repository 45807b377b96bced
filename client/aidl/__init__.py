"""AIDL for vbinder: interfaces defined in Android's AIDL, as typed Python.

``vbinder aidl -o OUT FILE.aidl...`` writes the modules; :func:`load` compiles a file at run
time. Both produce the same classes: for ``interface p.IFoo``, ``IFoo`` (typed methods,
constants, ``DESCRIPTOR``, ``TRANSACTION_*``), ``IFoo.Stub`` (subclass it to implement the
service) and ``IFoo.Stub.as_interface(binder)`` (a proxy to call it). What they send is what
AOSP's generated C++ and Java send (``runtime`` cites the rules).

Modules: ``grammar`` and ``parser`` (lark), ``model``, ``compiler`` (imports, checks,
constants), ``codegen``, ``runtime`` (what generated code uses), ``loader``.
"""

from typing import TYPE_CHECKING

from ..errors import (
    BadParcelableException,
    IllegalArgumentException,
    IllegalStateException,
    NetworkOnMainThreadException,
    NullPointerException,
    RemoteException,
    SecurityException,
    ServiceSpecificException,
    UnsupportedOperationException,
)
from .model import AidlError

if TYPE_CHECKING:
    from .loader import compile_to, load


def __getattr__(name: str) -> object:
    """The compiler (and lark, which it needs) is imported on first use: generated code needs only
    the runtime, so the client imports without lark."""
    if name in ("compile_to", "load"):
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AidlError", "BadParcelableException", "IllegalArgumentException", "IllegalStateException",
    "NetworkOnMainThreadException", "NullPointerException", "RemoteException", "SecurityException",
    "ServiceSpecificException", "UnsupportedOperationException", "compile_to", "load",
]
