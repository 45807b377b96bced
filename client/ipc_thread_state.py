"""IPCThreadState: one per thread; talks BINDER_WRITE_READ and executes what the driver returns."""

from __future__ import annotations

import logging
import struct
import threading

from vbinder import uapi

from .binder import BBinder, DeadObjectError, FailedTransactionError, UnknownTransactionError
from .parcel import Parcel
from .process_state import ProcessState

log = logging.getLogger(__name__)

TR = uapi.TRANSACTION_DATA
_TR_SIZE = TR.size
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_PTR_COOKIE = uapi.PTR_COOKIE
_READ_SIZE = 256  # libbinder's mIn capacity

# status_t values (libbinder's Errors.h) carried by TF_STATUS_CODE replies.
UNKNOWN_ERROR = -0x80000000
FAILED_TRANSACTION = UNKNOWN_ERROR + 2
UNKNOWN_TRANSACTION = -74  # -EBADMSG


class IPCThreadState:
    """The calling thread's binder state: its out and in buffers."""

    _local = threading.local()

    def __init__(self, process: ProcessState) -> None:
        self.process = process
        self.transport = process.transport
        self.out = bytearray()
        self.inbuf = b""
        self.inpos = 0
        self.buffers: dict[int, bytes] = {}

    @classmethod
    def self(cls) -> IPCThreadState:
        st = getattr(cls._local, "state", None)
        if st is None:
            st = cls._local.state = IPCThreadState(ProcessState.self())
        return st

    # -- talking to the driver -----------------------------------------------------------------

    def talk_with_driver(self, do_receive: bool = True) -> None:
        """One BINDER_WRITE_READ: send what is queued, read when the in buffer is used up."""
        pending = self.process.take_pending() if self.process.pending else b""
        if pending:
            self.out[:0] = pending
        need_read = self.inpos >= len(self.inbuf)
        write = bytes(self.out) if (not do_receive or need_read) else b""
        read_size = _READ_SIZE if do_receive and need_read else 0
        if not write and not read_size:
            return
        ret, consumed, read, buffers = self.transport.write_read(write, read_size)
        if ret < 0:
            raise FailedTransactionError(f"BINDER_WRITE_READ failed: {ret}")
        if consumed:
            del self.out[:consumed]
        if read_size:
            self.inbuf = read
            self.inpos = 0
        if buffers:
            self.buffers.update(buffers)

    def _next_cmd(self) -> int:
        cmd = _U32.unpack_from(self.inbuf, self.inpos)[0]
        self.inpos += 4
        return cmd

    def _take(self, n: int) -> bytes:
        data = self.inbuf[self.inpos:self.inpos + n]
        self.inpos += n
        return data

    # -- calls ---------------------------------------------------------------------------------

    def write_transaction(self, cmd: int, flags: int, handle: int, code: int, data: Parcel) -> None:
        payload = data.data()
        objects = data.objects()
        offsets = struct.pack(f"<{len(objects)}Q", *objects) if objects else b""
        place = self.transport.place  # type: ignore[attr-defined]
        daddr = place(payload) if payload else 0
        oaddr = place(offsets) if offsets else 0
        self.out += _U32.pack(cmd) + TR.pack(handle, 0, code, flags, 0, 0, len(payload), len(offsets),
                                              daddr, oaddr)

    def transact(self, handle: int, code: int, data: Parcel, flags: int = 0) -> Parcel | None:
        """Call ``handle``: the reply parcel, or None for a one-way call."""
        flags |= uapi.TF_ACCEPT_FDS
        self.write_transaction(uapi.BC_TRANSACTION, flags, handle, code, data)
        if flags & uapi.TF_ONE_WAY:
            self.wait_for_response(False)
            return None
        return self.wait_for_response(True)

    def wait_for_response(self, want_reply: bool) -> Parcel | None:
        while True:
            self.talk_with_driver()
            if self.inpos >= len(self.inbuf):
                continue
            cmd = self._next_cmd()
            if cmd == uapi.BR_TRANSACTION_COMPLETE:
                if not want_reply:
                    return None
            elif cmd == uapi.BR_DEAD_REPLY:
                raise DeadObjectError("the remote process died (BR_DEAD_REPLY)")
            elif cmd == uapi.BR_FAILED_REPLY:
                raise FailedTransactionError("the driver refused the transaction (BR_FAILED_REPLY)")
            elif cmd == uapi.BR_FROZEN_REPLY:
                raise FailedTransactionError("the target process is frozen (BR_FROZEN_REPLY)")
            elif cmd == uapi.BR_REPLY:
                tr = TR.unpack(self._take(_TR_SIZE))
                parcel = self._parcel(tr)
                if tr[3] & uapi.TF_STATUS_CODE:
                    status = parcel.read_int32() if parcel.data_size() >= 4 else UNKNOWN_ERROR
                    raise FailedTransactionError(f"the call failed with status {status}")
                return parcel if want_reply else None
            else:
                self.execute_command(cmd)

    def _parcel(self, tr: tuple[int, ...]) -> Parcel:
        """The parcel of a received buffer; its objects are adopted and the buffer freed."""
        data_size, offsets_size, data_ptr, _offsets_ptr = tr[6], tr[7], tr[8], tr[9]
        raw = self.buffers.pop(data_ptr, b"")
        off_start = (data_size + 7) & ~7
        parcel = Parcel.from_buffer(raw[:data_size], raw[off_start:off_start + offsets_size])
        if offsets_size:
            self.process.adopt(parcel)
        self.out += _U32.pack(uapi.BC_FREE_BUFFER) + uapi.U64.pack(data_ptr)
        return parcel

    def send_reply(self, reply: Parcel, flags: int) -> None:
        self.write_transaction(uapi.BC_REPLY, flags, 0xFFFFFFFF, 0, reply)
        self.wait_for_response(False)

    def send_status(self, status: int) -> None:
        data = Parcel()
        data.write_int32(status)
        self.send_reply(data, uapi.TF_STATUS_CODE)

    # -- executing what the driver returns --------------------------------------------------------

    def execute_command(self, cmd: int) -> None:
        proc = self.process
        if cmd in (uapi.BR_TRANSACTION, uapi.BR_TRANSACTION_SEC_CTX):
            raw = self._take(_TR_SIZE + (8 if cmd == uapi.BR_TRANSACTION_SEC_CTX else 0))
            self._execute_transaction(TR.unpack_from(raw))
        elif cmd == uapi.BR_NOOP:
            pass
        elif cmd == uapi.BR_SPAWN_LOOPER:
            proc.spawn_pooled_thread(False)
        elif cmd in (uapi.BR_INCREFS, uapi.BR_ACQUIRE, uapi.BR_RELEASE, uapi.BR_DECREFS):
            ptr, cookie = _PTR_COOKIE.unpack(self._take(16))
            if cmd == uapi.BR_INCREFS:
                proc.local_refs(cookie, 1, 0)
                self.out += _U32.pack(uapi.BC_INCREFS_DONE) + _PTR_COOKIE.pack(ptr, cookie)
            elif cmd == uapi.BR_ACQUIRE:
                proc.local_refs(cookie, 0, 1)
                self.out += _U32.pack(uapi.BC_ACQUIRE_DONE) + _PTR_COOKIE.pack(ptr, cookie)
            elif cmd == uapi.BR_RELEASE:
                proc.local_refs(cookie, 0, -1)
            else:
                proc.local_refs(cookie, -1, 0)
        elif cmd == uapi.BR_DEAD_BINDER:
            cookie = uapi.U64.unpack(self._take(8))[0]
            proc.dead_binder(cookie)
            self.out += _U32.pack(uapi.BC_DEAD_BINDER_DONE) + uapi.U64.pack(cookie)
        elif cmd == uapi.BR_CLEAR_DEATH_NOTIFICATION_DONE:
            self._take(8)
        elif cmd in (uapi.BR_OK, uapi.BR_FINISHED):
            pass
        elif cmd == uapi.BR_ERROR:
            log.error("binder: BR_ERROR from the driver")
        else:
            log.error("binder: unexpected command %#x", cmd)
            self.inpos = len(self.inbuf)

    def _execute_transaction(self, tr: tuple[int, ...]) -> None:
        target_ptr, cookie, code, flags, sender_pid, sender_euid = tr[:6]
        data = self._parcel(tr)
        binder = self.process.context_object if target_ptr == 0 else self.process.local(cookie)
        oneway = bool(flags & uapi.TF_ONE_WAY)
        reply = Parcel()
        status = 0
        prev = (getattr(self, "calling_pid", 0), getattr(self, "calling_uid", 0))
        self.calling_pid, self.calling_uid = sender_pid, sender_euid
        try:
            if binder is None:
                status = UNKNOWN_TRANSACTION
            else:
                binder.dispatch(code, data, reply, flags)
        except UnknownTransactionError:
            status = UNKNOWN_TRANSACTION
        except Exception:
            log.exception("binder: transaction %d to %r failed", code, binder)
            status = FAILED_TRANSACTION
        finally:
            self.calling_pid, self.calling_uid = prev
        if oneway:
            return
        if status:
            self.send_status(status)
        else:
            self.send_reply(reply, 0)

    # -- death notifications -------------------------------------------------------------------

    def request_death_notification(self, handle: int, cookie: int) -> None:
        self.out += _U32.pack(uapi.BC_REQUEST_DEATH_NOTIFICATION) + uapi.HANDLE_COOKIE.pack(handle, cookie)
        self.flush()

    def clear_death_notification(self, handle: int, cookie: int) -> None:
        self.out += _U32.pack(uapi.BC_CLEAR_DEATH_NOTIFICATION) + uapi.HANDLE_COOKIE.pack(handle, cookie)
        self.flush()

    def flush(self) -> None:
        """Send what is queued without reading (IPCThreadState::flushCommands)."""
        self.talk_with_driver(False)

    # -- the thread pool -----------------------------------------------------------------------

    def join_thread_pool(self, is_main: bool = True) -> None:
        """Serve calls on this thread until the process exits (BC_ENTER_LOOPER / BC_REGISTER_LOOPER)."""
        self.out += _U32.pack(uapi.BC_ENTER_LOOPER if is_main else uapi.BC_REGISTER_LOOPER)
        try:
            while True:
                self.talk_with_driver()
                while self.inpos < len(self.inbuf):
                    self.execute_command(self._next_cmd())
        finally:
            self.out += _U32.pack(uapi.BC_EXIT_LOOPER)
            try:
                self.talk_with_driver(False)
            except Exception:  # noqa: BLE001 - the device may be gone
                pass


def calling_pid() -> int:
    """The pid of the process whose call this thread is serving (0 for one-way calls)."""
    return getattr(IPCThreadState.self(), "calling_pid", 0)


def calling_uid() -> int:
    return getattr(IPCThreadState.self(), "calling_uid", 0)


__all__ = ["IPCThreadState", "BBinder", "calling_pid", "calling_uid"]
