"""IBinder, BBinder (a local object) and BpBinder (a proxy to a handle), as libbinder has them."""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from vbinder import uapi

from .errors import DeadObjectError, FailedTransactionError, StatusError, UnknownTransactionError
from .parcel import Parcel
from .parcel_file_descriptor import HasFileno

if TYPE_CHECKING:
    from .process_state import ProcessState

__all__ = [
    "DUMP_TRANSACTION", "FIRST_CALL_TRANSACTION", "FLAG_ONEWAY", "INTERFACE_TRANSACTION", "LAST_CALL_TRANSACTION",
    "PING_TRANSACTION", "BBinder", "BpBinder", "DeadObjectError", "DeathRecipient", "FailedTransactionError",
    "IBinder", "StatusError", "UnknownTransactionError",
]  # the errors are errors.py's, here too for the binder classes' users

FIRST_CALL_TRANSACTION = 0x00000001
LAST_CALL_TRANSACTION = 0x00FFFFFF
PING_TRANSACTION = 0x5F504E47  # '_PNG'
DUMP_TRANSACTION = 0x5F444D50  # '_DMP'
INTERFACE_TRANSACTION = 0x5F4E5446  # '_NTF'
DEBUG_PID_TRANSACTION = 0x5F504944  # '_PID': the object's process id (what dumpsys --pid asks)
FLAG_ONEWAY = uapi.TF_ONE_WAY

_ids = itertools.count(0x1000, 0x10)


class IBinder:
    """A binder object, local or remote."""

    def transact(self, code: int, data: Parcel, flags: int = 0) -> Parcel | None:
        raise NotImplementedError

    def flatten(self) -> tuple[int, int, int, int]:
        """(type, flags, binder or handle, cookie), as flattenBinder fills them in."""
        raise NotImplementedError

    def ping(self) -> bool:
        try:
            self.transact(PING_TRANSACTION, Parcel())
            return True
        except (DeadObjectError, FailedTransactionError):
            return False

    def interface_descriptor(self) -> str:
        reply = self.transact(INTERFACE_TRANSACTION, Parcel())
        assert reply is not None
        return reply.read_string16() or ""

    def debug_pid(self) -> int:
        """``getDebugPid``: the pid of the process that holds the object (DEBUG_PID_TRANSACTION)."""
        reply = self.transact(DEBUG_PID_TRANSACTION, Parcel())
        assert reply is not None
        return reply.read_int32()
    def dump(self, fd: int | HasFileno, args: Sequence[str] = ()) -> int:
        """``IBinder::dump``: ask the object to write its state to ``fd`` (what ``dumpsys`` does):
        DUMP_TRANSACTION with the fd and the arguments. The object's status (0: fine)."""
        data = Parcel()
        data.write_file_descriptor(fd)
        data.write_int32(len(args))
        for arg in args:
            data.write_string16(arg)
        self.transact(DUMP_TRANSACTION, data)
        return 0


class BBinder(IBinder):
    """A local object: subclass and override :meth:`on_transact`.

    Its (ptr, cookie) identity is a process-unique number; the process keeps it alive while the
    driver holds references to it (BR_INCREFS/BR_ACQUIRE until BR_RELEASE/BR_DECREFS).
    """

    descriptor = ""

    def __init__(self) -> None:
        self._ptr = next(_ids)

    def flatten(self) -> tuple[int, int, int, int]:
        """The flat_binder_object fields that describe this object to the driver (the process
        keeps it alive meanwhile: see ``ProcessState.flatten_binder``)."""
        return uapi.BINDER_TYPE_BINDER, uapi.FLAT_BINDER_FLAG_ACCEPTS_FDS | 0x13, self._ptr, self._ptr

    def transact(self, code: int, data: Parcel, flags: int = 0) -> Parcel | None:
        """Call the object in-process, as libbinder does for a local binder."""
        reply = Parcel()
        data.set_data_position(0)
        self.dispatch(code, data, reply, flags)
        reply.set_data_position(0)
        return None if flags & FLAG_ONEWAY else reply

    def dispatch(self, code: int, data: Parcel, reply: Parcel, flags: int) -> None:
        """BBinder::transact: the built-in codes, then :meth:`on_transact`."""
        if code == PING_TRANSACTION:
            return
        if code == INTERFACE_TRANSACTION:
            reply.write_string16(self.descriptor)
            return
        if code == DEBUG_PID_TRANSACTION:
            reply.write_int32(os.getpid())
            return
        if code == DUMP_TRANSACTION:
            # BBinder::onTransact: the fd, an int32 count and that many String16s (while data lasts)
            fd = data.read_file_descriptor()
            args: list[str] = []
            for _ in range(data.read_int32()):
                if data.data_avail() <= 0:
                    break
                args.append(data.read_string16() or "")
            status = self.dump(fd, args)
            if status:
                raise StatusError(status)
            return
        self.on_transact(code, data, reply, flags)

    def dump(self, fd: int | HasFileno, args: Sequence[str] = ()) -> int | None:  # type: ignore[override]
        """Write this object's state to ``fd`` (DUMP_TRANSACTION, as ``dumpsys`` asks for it):
        override it. ``fd`` is the caller's file, lent for the call (dup it to keep it); return
        a status (0, or a negative errno) or None."""
        return 0

    def on_transact(self, code: int, data: Parcel, reply: Parcel, flags: int) -> None:
        """Handle one call; raise to fail it (the caller sees an exception status)."""
        raise UnknownTransactionError(code)


DeathRecipient = Callable[["BpBinder"], None]


class BpBinder(IBinder):
    """A proxy: calls go to ``handle`` through the driver, from the calling thread's state in the
    proxy's process (``process.thread_state()``)."""

    def __init__(self, process: ProcessState, handle: int) -> None:
        self.process = process
        self.handle = handle
        self.descriptor = ""
        self._recipients: list[DeathRecipient] = []
        self._death_requested = False
        self.dead = False
        self._lock = threading.Lock()

    def transact(self, code: int, data: Parcel, flags: int = 0) -> Parcel | None:
        if self.dead:
            raise DeadObjectError(f"handle {self.handle} is dead")
        return self.process.thread_state().transact(self.handle, code, data, flags)

    def link_to_death(self, recipient: DeathRecipient) -> None:
        """Call ``recipient(self)`` when the remote process dies (BR_DEAD_BINDER)."""
        with self._lock:
            if self.dead:
                raise DeadObjectError(f"handle {self.handle} is dead")
            self._recipients.append(recipient)
            first = not self._death_requested
            self._death_requested = True
        if first:
            self.process.track_death(self)
            self.process.thread_state().request_death_notification(self.handle, self.cookie)

    def unlink_to_death(self, recipient: DeathRecipient) -> None:
        with self._lock:
            self._recipients.remove(recipient)
            last = not self._recipients and self._death_requested and not self.dead
            if last:
                self._death_requested = False
        if last:
            self.process.thread_state().clear_death_notification(self.handle, self.cookie)

    @property
    def cookie(self) -> int:
        return id(self)

    def send_obituary(self) -> None:
        """BR_DEAD_BINDER arrived: mark dead and tell the recipients."""
        with self._lock:
            self.dead = True
            recipients, self._recipients = self._recipients, []
        ref = weakref.ref(self)
        for r in recipients:
            obj = ref()
            if obj is not None:
                r(obj)

    def flatten(self) -> tuple[int, int, int, int]:
        return uapi.BINDER_TYPE_HANDLE, 0, self.handle, 0

    def __repr__(self) -> str:
        return f"<BpBinder handle={self.handle}{' dead' if self.dead else ''}>"

    def __del__(self) -> None:
        try:
            self.process.proxy_gone(self.handle)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
