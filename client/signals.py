"""The signal guard: Ctrl-C handled between exchanges with the driver, never inside one.

Both transports (the vbinder device's and the kernel's) and IPCThreadState use it; it knows
nothing of either, so it has a module of its own.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from types import FrameType
from typing import Any, Final

_MAIN_IDENT: Final = threading.main_thread().ident  # Python runs signal handlers in this thread only
_get_ident: Final = threading.get_ident  # compiled, a Final is a C static: no lookups per call
# The C functions under signal.signal/getsignal: the same, without their enum conversions (a
# guarded call swaps SIGINT's handler twice; those conversions were a fifth of the client's time).
try:
    from _signal import getsignal as _c_getsignal  # type: ignore[import-not-found, unused-ignore]
    from _signal import signal as _c_setsignal  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - not CPython
    _c_getsignal, _c_setsignal = signal.getsignal, signal.signal
_getsignal: Final = _c_getsignal
_setsignal: Final = _c_setsignal
_SIGINT: Final = int(signal.SIGINT)
check_signals: Final = ctypes.pythonapi.PyErr_CheckSignals  # runs pending handlers; raises what one raised
check_signals.restype = ctypes.c_int


class SignalGuard:
    """Keeps Ctrl-C from tearing an exchange with the driver apart (the main thread's only).

    Python runs signal handlers in the main thread, between bytecodes: a KeyboardInterrupt raised
    just after a ``pwrite`` or ``pread`` returned would drop what it did (a request sent, then
    sent again; a reply read, then lost). While the guard is held (``with signal_guard:``, by
    IPCThreadState around each exchange and its bookkeeping), SIGINT's handler only records the
    signal, and the recorded signal is handled when the outermost guard is released, or as soon
    as the one ``pread`` that waits for the driver ends (``VbinderTransport._guarded_pread``: the
    daemon ends that wait with EINTR when it sees the signal, and the read phase stays in flight:
    see ``VbinderTransport.resume``). So Ctrl-C still ends a blocked call at once. Other threads,
    and a SIGINT that is ignored or left to its default action, are not affected. Other signals
    whose Python handlers raise are not guarded (a SystemExit from a SIGTERM handler is expected
    to end the process).
    """

    def __init__(self) -> None:
        self._depth = 0
        self._saved: Any = None  # the handler we stand in for (None: not guarding)
        self._pending: list[int] = []
        self._immediate = False  # the next read phase is known to return at once

    @property
    def active(self) -> bool:
        """True in the main thread while a guard is held and stands in for SIGINT's handler."""
        return self._saved is not None and _get_ident() == _MAIN_IDENT

    @property
    def interrupts_waits(self) -> bool:
        """True where a read phase may wait and Ctrl-C should end the wait (see ``_receive``)."""
        return not self._immediate and self.active

    def immediate(self) -> _Immediate:
        """A section whose read phase returns at once (BR_TRANSACTION_COMPLETE of a one-way call
        or a reply is queued as it is sent): no need to read it in an interruptible way."""
        return _Immediate(self)

    def __enter__(self) -> SignalGuard:
        if _get_ident() != _MAIN_IDENT:
            return self
        if self._depth == 0:
            handler = _getsignal(_SIGINT)
            if callable(handler):
                try:
                    _setsignal(_SIGINT, self._handler)
                    self._saved = handler
                except ValueError:  # not the main interpreter
                    pass
        self._depth += 1
        return self

    def __exit__(self, typ: object, value: object, tb: object) -> None:
        if _get_ident() != _MAIN_IDENT:
            return
        self._depth -= 1
        if self._depth or self._saved is None:
            return
        handler, self._saved = self._saved, None
        _setsignal(_SIGINT, handler)
        pending, self._pending = self._pending, []
        for signum in pending:
            handler(signum, None)  # typically raises KeyboardInterrupt: the exchange is complete

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def deliver_pending(self) -> None:
        """Hand a recorded SIGINT to its handler now (typically: raise KeyboardInterrupt)."""
        if self._pending and self._saved is not None:
            handler = self._saved
            handler(self._pending.pop(), None)

    def released(self) -> _Released:
        """A section where the guard is let go (the user's code: a service's method, a death
        recipient), and taken again after it."""
        return _Released(self)


class _Immediate:
    __slots__ = ("guard", "main")

    def __init__(self, guard: SignalGuard) -> None:
        self.guard = guard
        self.main = False

    def __enter__(self) -> None:
        self.main = _get_ident() == _MAIN_IDENT  # the flag is the main thread's
        if self.main:
            self.guard._immediate = True

    def __exit__(self, typ: object, value: object, tb: object) -> None:
        if self.main:
            self.guard._immediate = False


class _Released:
    __slots__ = ("guard", "depth", "handler")

    def __init__(self, guard: SignalGuard) -> None:
        self.guard = guard
        self.depth = 0

    def __enter__(self) -> None:
        g = self.guard
        if g._saved is None or g._depth == 0 or _get_ident() != _MAIN_IDENT:
            self.depth = 0
            return
        self.depth, g._depth = g._depth, 0
        self.handler, g._saved = g._saved, None
        _setsignal(_SIGINT, self.handler)
        pending, g._pending = g._pending, []
        try:
            for signum in pending:
                self.handler(signum, None)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, typ: object, value: object, tb: object) -> None:
        if not self.depth:
            return
        g = self.guard
        g._depth, self.depth = self.depth, 0
        handler = _getsignal(_SIGINT)  # the user's code may have set another one
        if callable(handler):
            g._saved = handler
            _setsignal(_SIGINT, g._handler)


signal_guard: Final = SignalGuard()
