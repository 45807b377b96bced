"""IPCThreadState: one per thread; talks BINDER_WRITE_READ and executes what the driver returns.

Each transaction or reply this thread sends is *owed* an answer by the driver (BR_REPLY,
BR_TRANSACTION_COMPLETE for a one-way call or a reply, or an error); answers come last-sent first,
as nested calls return. A call that an exception ends before its answer (Ctrl-C, raising
KeyboardInterrupt in the main thread) leaves an orphan: the driver still has the thread in that
call, and refuses a new one with a bad transaction stack, so the next transaction or reply this
thread sends first reads the answers owed to orphans, and drops them (freeing their buffers).
"""

from __future__ import annotations

import errno
import logging
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Final

from vbinder import uapi

from .errors import DeadObjectError, FailedTransactionError, StatusError, UnknownTransactionError
from .extended_error import failure_text
from .parcel import Parcel
from .signals import signal_guard

if TYPE_CHECKING:
    from .process_state import ProcessState

log = logging.getLogger(__name__)

TR: Final = uapi.TRANSACTION_DATA
_TR_SIZE: Final = TR.size
_U32: Final = uapi.U32
_I32: Final = uapi.S32
_PTR_COOKIE: Final = uapi.PTR_COOKIE
_READ_SIZE: Final = 256  # libbinder's mIn capacity

# status_t values (libbinder's Errors.h) carried by TF_STATUS_CODE replies.
UNKNOWN_ERROR: Final = -0x80000000
FAILED_TRANSACTION: Final = UNKNOWN_ERROR + 2
UNKNOWN_TRANSACTION: Final = -74  # -EBADMSG

# What answers a transaction or reply this thread sent.
_ANSWERS: Final = frozenset((uapi.BR_TRANSACTION_COMPLETE, uapi.BR_ONEWAY_SPAM_SUSPECT, uapi.BR_REPLY,
                      uapi.BR_DEAD_REPLY, uapi.BR_FAILED_REPLY, uapi.BR_FROZEN_REPLY))
_COMPLETE: Final = (uapi.BR_TRANSACTION_COMPLETE, uapi.BR_ONEWAY_SPAM_SUSPECT)
_FAILURES: Final = frozenset((uapi.BR_DEAD_REPLY, uapi.BR_FAILED_REPLY, uapi.BR_FROZEN_REPLY))


class _Owed:
    """A transaction or reply this thread sent, whose answer has not been read yet."""

    __slots__ = ("sync", "acked", "orphan", "chain")

    def __init__(self, sync: bool, chain: bool = False) -> None:
        self.sync = sync  # a call that waits for BR_REPLY (else BR_TRANSACTION_COMPLETE ends it)
        self.acked = False  # BR_TRANSACTION_COMPLETE read
        self.orphan = False  # nobody waits for the answer any more: drop it
        # A reply after which the thread reads (its looper, or the wait of its own call, goes
        # on): its BR_TRANSACTION_COMPLETE may chain that read (docs/abi-chained.md).
        self.chain = chain


# (command, BR_REPLY's parcel or None, BR_REPLY's flags)
_Answer = tuple[int, Parcel | None, int]


class IPCThreadState:
    """The calling thread's binder state: its out and in buffers."""

    default_process: ClassVar[Callable[[], ProcessState] | None] = None
    """Where :meth:`self` finds the process: ``ProcessState.self``, which :mod:`.process_state`
    installs (it imports this module, and creates each thread's state; imports go one way)."""

    def __init__(self, process: ProcessState) -> None:
        self.process = process
        self.transport = process.transport
        self.out = bytearray()
        self.inbuf = b""
        self.inpos = 0
        self.buffers: dict[int, bytes] = {}
        self._owed: list[_Owed] = []
        self._unanswered: tuple[int, ...] | None = None  # a sync BR_TRANSACTION taken, not yet executing
        self.calling_pid = 0  # of the call this thread is serving (0: none, or a one-way call)
        self.calling_uid = 0
        self.stray_answers = 0  # answers no call waited for (:meth:`_stray`)

    @classmethod
    def self(cls) -> IPCThreadState:
        """The calling thread's state in the process's ProcessState (opened on first use)."""
        default_process = cls.default_process
        assert default_process is not None, "vbinder_client.process_state installs it"
        return default_process().thread_state()

    # -- talking to the driver -----------------------------------------------------------------

    def talk_with_driver(self, do_receive: bool = True) -> None:
        """One BINDER_WRITE_READ: send what is queued, read when the in buffer is used up."""
        with signal_guard:
            need_read = self.inpos >= len(self.inbuf)
            in_flight = self.transport.in_flight()
            if in_flight is not None and (in_flight or not (self.out or self.process.pending)):
                # Ctrl-C interrupted an earlier talk while its read phase waited: it is still in
                # flight, and what its write consumed comes only with its reply. Only a read
                # continues it; what is queued meanwhile goes with a later talk.
                if do_receive and need_read:
                    self._apply(self.transport.resume(), True)
                return
            pending = self.process.take_pending() if self.process.pending else b""
            if pending:
                self.out[:0] = pending
            write = bytes(self.out) if (not do_receive or need_read) else b""
            read_size = _READ_SIZE if do_receive and need_read else 0
            if not write and not read_size:
                return
            if write and read_size and not self._owed and in_flight is None and signal_guard.active:
                # A wait for work (no answer owed) in the guarded main thread: send first, then
                # wait read-only, so that Ctrl-C leaves nothing but a read-only read phase in
                # flight, which a new request may replace (not a write whose consumption is
                # unknown until work comes).
                self._apply(self.transport.write_read(write, 0), False)
                write = b""
            top = self._owed[-1] if self._owed else None
            try:
                if top is not None and top.chain and not top.acked and read_size:
                    # A reply whose BR_TRANSACTION_COMPLETE chains the thread's next read: may wait.
                    result = self.transport.write_read(write, read_size, True)
                elif top is not None and not top.sync and not top.acked:
                    # A one-way call's or a reply's BR_TRANSACTION_COMPLETE (or error) comes at once.
                    with signal_guard.immediate():
                        result = self.transport.write_read(write, read_size)
                else:
                    result = self.transport.write_read(write, read_size)
            except OSError as e:
                if e.errno != errno.EBUSY or in_flight is None:
                    raise
                # The interrupted read-only read phase had produced its reply: that is this
                # talk's input; the new commands go with the next talk.
                self._apply(self.transport.resume(), True)
                return
            self._apply(result, bool(read_size))

    def _apply(self, result: tuple[int, int, bytes, dict[int, bytes]], did_read: bool) -> None:
        ret, consumed, read, buffers = result
        if ret < 0:
            raise FailedTransactionError(f"BINDER_WRITE_READ failed: {ret}")
        if consumed:
            del self.out[:consumed]
        if did_read:
            self.inbuf = read
            self.inpos = 0
        if buffers:
            self.buffers.update(buffers)

    def _read_command(self) -> tuple[int, bytes]:
        """The next command of the in buffer and its argument (its size is in the code)."""
        with signal_guard:  # taken whole, or not at all
            cmd = _U32.unpack_from(self.inbuf, self.inpos)[0]
            n = uapi.ioc_size(cmd)
            arg = self.inbuf[self.inpos + 4:self.inpos + 4 + n]
            self.inpos += 4 + n
            if cmd in (uapi.BR_TRANSACTION, uapi.BR_TRANSACTION_SEC_CTX):
                tr = TR.unpack_from(arg)
                if not tr[3] & uapi.TF_ONE_WAY:
                    self._unanswered = tr
        return cmd, arg

    def _answer_unanswered(self) -> None:
        """An exception came between taking a call and executing it: answer it, or its caller waits on."""
        tr, self._unanswered = self._unanswered, None
        if tr is not None:
            self._parcel(tr)  # frees its buffer
            self.send_status(FAILED_TRANSACTION)

    def _execute_next(self) -> None:
        """Take the next command and execute it."""
        try:
            self.execute_command(*self._read_command())
        except BaseException:
            self._answer_unanswered()
            raise

    # -- calls ---------------------------------------------------------------------------------

    def write_transaction(self, cmd: int, flags: int, handle: int, code: int, data: Parcel) -> None:
        payload = data.data()
        objects = data.objects()
        offsets = struct.pack(f"<{len(objects)}Q", *objects) if objects else b""
        place = self.transport.place
        daddr = place(payload) if payload else 0
        oaddr = place(offsets) if offsets else 0
        self.out += _U32.pack(cmd) + TR.pack(handle, 0, code, flags, 0, 0, len(payload), len(offsets),
                                              daddr, oaddr)

    def _send(self, cmd: int, flags: int, handle: int, code: int, data: Parcel, sync: bool,
              chain: bool = False) -> _Answer:
        """Send a transaction or reply and wait for its answer (orphaned if an exception ends the wait)."""
        owed = None
        try:
            with signal_guard:
                self._settle()
                self.write_transaction(cmd, flags, handle, code, data)
                owed = _Owed(sync, chain)
                self._owed.append(owed)
            return self._wait(owed)
        except BaseException:
            if owed is not None and owed in self._owed:
                owed.orphan = True
            raise

    def transact(self, handle: int, code: int, data: Parcel, flags: int = 0) -> Parcel | None:
        """Call ``handle``: the reply parcel, or None for a one-way call."""
        flags |= uapi.TF_ACCEPT_FDS
        name = data.trace_name
        if name is not None and self.transport.names_wanted():
            self.transport.name_next(name[0], name[1])
        with signal_guard:  # held for the whole call (cheaper than around each step), not its callbacks
            cmd, parcel, reply_flags = self._send(uapi.BC_TRANSACTION, flags, handle, code, data,
                                                  not flags & uapi.TF_ONE_WAY)
        if cmd in _FAILURES:
            raise self._failure(cmd)
        if parcel is None:
            return None
        if reply_flags & uapi.TF_STATUS_CODE:
            status = parcel.read_int32() if parcel.data_size() >= 4 else UNKNOWN_ERROR
            raise FailedTransactionError(f"the call failed with status {status}")
        return parcel

    def wait_for_response(self, want_reply: bool) -> Parcel | None:
        """Wait for the answer to the last transaction sent (IPCThreadState::waitForResponse)."""
        if not self._owed:
            raise RuntimeError("no transaction waits for an answer")
        cmd, parcel, _flags = self._wait(self._owed[-1])
        if cmd in _FAILURES:
            raise self._failure(cmd)
        return parcel if want_reply else None

    def _failure(self, cmd: int) -> Exception:
        """The exception for a call the driver answered ``cmd`` (BR_DEAD_REPLY, BR_FAILED_REPLY,
        BR_FROZEN_REPLY), named with the errno of the thread's extended error:
        ``BR_FAILED_REPLY (29201), -EPERM``. The program can still read that error."""
        transport = self.transport
        text = failure_text(cmd, transport.extended_errors.read(transport.ioctl))
        return DeadObjectError(text) if cmd == uapi.BR_DEAD_REPLY else FailedTransactionError(text)

    def _wait(self, owed: _Owed) -> _Answer:
        """Read and execute commands until ``owed`` is answered; answers to orphans are dropped."""
        while True:
            self.talk_with_driver()
            if self.inpos >= len(self.inbuf):
                continue
            try:
                with signal_guard:  # an answer is taken and accounted for whole
                    cmd, arg = self._read_command()
                    answer = None
                    if cmd in _ANSWERS:
                        done, answer = self._answer(cmd, arg)
                        if done is owed:
                            return answer
                if answer is None:
                    self.execute_command(cmd, arg)
            except BaseException:
                self._answer_unanswered()
                raise

    def _answer(self, cmd: int, arg: bytes) -> tuple[_Owed | None, _Answer]:
        """Account for an answer: (what it answers, if that is finished; the answer)."""
        top = self._owed[-1] if self._owed else None
        parcel = None
        flags = 0
        if cmd in _COMPLETE:
            if top is None or top.acked:
                self._stray(cmd)
                return None, (cmd, None, 0)
            top.acked = True
            if top.sync:
                return None, (cmd, None, 0)
        elif cmd == uapi.BR_REPLY:
            tr = TR.unpack(arg)
            flags = tr[3]
            parcel = self._parcel(tr)
            parcel.is_reply = True
        if top is None:
            self._stray(cmd)
            return None, (cmd, parcel, flags)
        self._owed.pop()
        return top, (cmd, parcel, flags)

    def _stray(self, cmd: int) -> None:
        """An answer that no call of this thread waits for: the driver answered out of order.

        libbinder's thread pool aborts the process there (``*** BAD COMMAND %d received from
        Binder driver``, then getAndExecuteCommand's error): this client says what happened, counts
        it in ``stray_answers`` and goes on serving."""
        self.stray_answers += 1
        log.error("binder: stray %s (%d): no call of this thread waits for it. The driver's answers came "
                  "out of order: a one-way call was delivered to this thread while it waited in a call of "
                  "its own (a 3.x driver's BC_FREE_BUFFER queues a node's next one-way call on the freeing "
                  "thread), and a nested call took this thread's answer. libbinder aborts here "
                  "('*** BAD COMMAND %d received from Binder driver')", uapi.BR_NAMES.get(cmd, hex(cmd)), cmd, cmd)

    def _settle(self) -> None:
        """Read the answers owed to orphans (see the module's docstring) before sending anything."""
        while self._owed and self._owed[-1].orphan:
            self._wait(self._owed[-1])

    def _parcel(self, tr: tuple[int, ...]) -> Parcel:
        """The parcel of a received buffer; its objects are adopted and the buffer freed."""
        with signal_guard:
            data_size, offsets_size, data_ptr, _offsets_ptr = tr[6], tr[7], tr[8], tr[9]
            raw = self.buffers.pop(data_ptr, b"")
            off_start = (data_size + 7) & ~7
            parcel = Parcel.from_buffer(raw[:data_size], raw[off_start:off_start + offsets_size])
            if offsets_size:
                parcel.adopt_file_descriptors()  # the parcel closes them, unless the program dups them
                self.process.adopt(parcel, self.out)  # new proxies' refs first, then the free
            self.out += _U32.pack(uapi.BC_FREE_BUFFER) + uapi.U64.pack(data_ptr)
        return parcel

    def send_reply(self, reply: Parcel, flags: int, chain: bool = False) -> None:
        """BC_REPLY. A failed reply (the caller died) is logged, not raised, as libbinder's sendReply.
        ``chain``: the thread reads next (see _Owed)."""
        cmd, _parcel, _flags = self._send(uapi.BC_REPLY, flags, 0xFFFFFFFF, 0, reply, False, chain)
        if cmd not in _COMPLETE:
            log.info("binder: reply not delivered (%s)", uapi.BR_NAMES.get(cmd, hex(cmd)))

    def send_status(self, status: int, chain: bool = False) -> None:
        data = Parcel()
        data.write_int32(status)
        self.send_reply(data, uapi.TF_STATUS_CODE, chain)

    # -- executing what the driver returns --------------------------------------------------------

    def execute_command(self, cmd: int, arg: bytes = b"") -> None:
        proc = self.process
        if cmd in (uapi.BR_TRANSACTION, uapi.BR_TRANSACTION_SEC_CTX):
            self._execute_transaction(TR.unpack_from(arg))
        elif cmd == uapi.BR_NOOP:
            pass
        elif cmd == uapi.BR_SPAWN_LOOPER:
            proc.spawn_pooled_thread(False)
        elif cmd in (uapi.BR_INCREFS, uapi.BR_ACQUIRE, uapi.BR_RELEASE, uapi.BR_DECREFS):
            ptr, cookie = _PTR_COOKIE.unpack(arg)
            with signal_guard:  # the count and its acknowledgement go together
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
            cookie = uapi.U64.unpack(arg)[0]
            self.out += _U32.pack(uapi.BC_DEAD_BINDER_DONE) + uapi.U64.pack(cookie)
            with signal_guard.released():  # the death recipients are the user's code
                proc.dead_binder(cookie)
        elif cmd == uapi.BR_CLEAR_DEATH_NOTIFICATION_DONE:
            pass
        elif cmd in _ANSWERS:
            # An answer read outside a call's wait (by a looper): it can only be an orphan's.
            owed, _answer = self._answer(cmd, arg)
            if owed is not None and not owed.orphan:
                log.error("binder: %s for a call that is still waited for", uapi.BR_NAMES.get(cmd))
        elif cmd in (uapi.BR_OK, uapi.BR_FINISHED):
            pass
        elif cmd == uapi.BR_ERROR:
            log.error("binder: BR_ERROR %d from the driver", _I32.unpack(arg)[0])
        else:
            log.error("binder: unexpected command %#x", cmd)
            self.inpos = len(self.inbuf)

    def _execute_transaction(self, tr: tuple[int, ...]) -> None:
        target_ptr, cookie, code, flags, sender_pid, sender_euid = tr[:6]
        oneway = bool(flags & uapi.TF_ONE_WAY)
        reply = Parcel()
        status = 0
        data: Parcel | None = None
        prev = (self.calling_pid, self.calling_uid)
        try:
            self._unanswered = None  # from here on, this method answers the call
            data = self._parcel(tr)
            binder = self.process.context_object if target_ptr == 0 else self.process.local(cookie)
            self.calling_pid, self.calling_uid = sender_pid, sender_euid
            if binder is None:
                status = UNKNOWN_TRANSACTION
            else:
                with signal_guard.released():  # the service's code: Ctrl-C may interrupt it
                    binder.dispatch(code, data, reply, flags)
        except UnknownTransactionError:
            status = UNKNOWN_TRANSACTION
        except StatusError as e:
            status = e.status
        except Exception:
            log.exception("binder: transaction %d failed", code)
            status = FAILED_TRANSACTION
        except BaseException:
            # KeyboardInterrupt (Ctrl-C) in the service's code: the caller still gets an answer,
            # or it would wait for as long as this thread lives.
            if tr[8] in self.buffers:
                self._parcel(tr)
            if not oneway:
                self.send_status(FAILED_TRANSACTION)
            raise
        finally:
            self.calling_pid, self.calling_uid = prev
        try:
            if oneway:
                return
            # The looper, or the wait of this thread's own call, reads next: the reply chains that
            # read, unless the call leaves work for after the reply, which a chained read would
            # hold back until the next call comes (docs/abi-chained.md): fds of the reply to close
            # (below), and the call's parcel while it holds objects: it closes its fds, and it
            # keeps the proxies it brought alive, whose BC_RELEASE/BC_DECREFS go when it goes.
            chain = not reply.owns_file_descriptors() and not (data is not None and data.objects())
            if status:
                self.send_status(status, chain)
            else:
                self.send_reply(reply, 0, chain)  # (which may pass on an fd the call brought)
        finally:
            reply.close_file_descriptors()
            if data is not None:
                data.close_file_descriptors()  # the call's parcel goes with the call, as libbinder's

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
        with signal_guard:  # let go only while a service's code runs
            try:
                while True:
                    self.talk_with_driver()
                    while self.inpos < len(self.inbuf):
                        self._execute_next()
            finally:
                self.out += _U32.pack(uapi.BC_EXIT_LOOPER)
                try:
                    self.talk_with_driver(False)
                except Exception:  # noqa: BLE001 - the device may be gone
                    pass


def calling_pid() -> int:
    """The pid of the process whose call this thread is serving (0 for one-way calls)."""
    return IPCThreadState.self().calling_pid


def calling_uid() -> int:
    return IPCThreadState.self().calling_uid


__all__ = ["IPCThreadState", "calling_pid", "calling_uid"]
