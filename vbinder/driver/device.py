"""One open device file: request frames in, reply frames out, one request per thread (ABI v1).

This is the "One request per thread" section of DESIGN.md as a state machine over file offsets
(``tid << 40 | pos``). It knows frames and keys, not binder: each complete request goes to
:mod:`vbinder.driver.ioctl`, whose read phase may return :class:`WouldBlock` instead of a reply;
the I/O layer then waits on the ticket it carries and calls :meth:`DeviceFile.resume`.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Final

from .. import abi, uapi
from . import ioctl
from .errors import BinderError, Waiter, WouldBlock
from .process import Proc
from .thread import Looper

MAX_KEYS: Final = 1024
MAX_WAITING: Final = 256
MAX_HELD_BYTES: Final = 64 << 20
PARTIAL_TIMEOUT: Final = 10.0
# What a read phase returns, alone, for a reply or a one-way call: a chained request's chained
# read runs only after this (docs/abi-chained.md).
_LONE_COMPLETE: Final = uapi.U32.pack(uapi.BR_NOOP) + uapi.U32.pack(uapi.BR_TRANSACTION_COMPLETE)


@dataclass(slots=True)
class _Key:
    """What one thread (key) has in flight on this file."""

    partial: bytearray | None = None
    partial_total: int = 0
    partial_since: float = 0.0
    pending: ioctl.Pending | ioctl.FreezePending | ioctl.Held | None = None  # a read phase not yet produced
    ticket: Waiter | None = None  # the waiting pread of ``pending``
    reply: bytes | None = None  # produced, not yet read to its end
    first: bytes | None = None  # a chained reply's first frame, while its chained read runs
    whole: int = 0  # a slot request's (docs/abi-slot.md): a reply up to this long is read whole
    slot_seq: int = 0  # the number of the last slot request that ran


def _reads_next(looper: int) -> bool:
    """A looper thread (entered or registered, not exited) that does not poll: after a reply, its
    next step is a read, so a chained read may run (docs/abi-chained.md). A thread that polls
    waits in poll(2) instead, with other fds: its read must not start before the poll says so."""
    return bool(looper & (Looper.ENTERED | Looper.REGISTERED)) and not looper & (Looper.EXITED | Looper.POLL)


class DeviceFile:
    """An open binder device file: the ABI's frames over one :class:`Proc`."""

    def __init__(self, proc: Proc, nonblock: bool = False) -> None:
        self.proc = proc
        self.nonblock = nonblock
        self.keys: dict[int, _Key] = {}
        self.waiting = 0
        self.held = 0  # bytes in partial frames and unread replies

    # -- helpers ----------------------------------------------------------------------------------

    def _refuse(self, tid: int, err: int, why: str) -> BinderError:
        self.proc.log.user_error("%d:%d vbinder: %s", self.proc.pid, tid, why)
        return BinderError(err, why)

    def _key(self, tid: int) -> _Key:
        k = self.keys.get(tid)
        if k is None:
            if len(self.keys) >= MAX_KEYS:
                self._expire(self.proc.clock())
                if len(self.keys) >= MAX_KEYS:
                    raise self._refuse(tid, errno.EAGAIN, "too many threads on one file")
            k = self.keys[tid] = _Key()
        return k

    def _drop_partial(self, k: _Key) -> None:
        if k.partial is not None:
            self.held -= len(k.partial)
            k.partial = None

    def _set_reply(self, k: _Key, done: ioctl.Done) -> None:
        reply = abi.encode_reply(done.ret, done.arg, done.segments)
        self.held += len(reply)
        k.reply = reply

    def _expire(self, now: float, keep: _Key | None = None) -> None:
        """Drop partial frames left for longer than PARTIAL_TIMEOUT, and idle keys (not ``keep``)."""
        for tid, k in list(self.keys.items()):
            if k.partial is not None and now - k.partial_since > PARTIAL_TIMEOUT:
                self._drop_partial(k)
            if k is not keep and k.partial is None and k.pending is None and k.reply is None:
                del self.keys[tid]

    def _cancel_pending(self, k: _Key) -> None:
        if k.pending is not None:
            ioctl.cancel(self.proc, k.pending)
            k.pending = None
        if k.ticket is not None:
            ticket, k.ticket = k.ticket, None
            self.waiting -= 1
            ticket.wake()  # its pread resumes and gets ECANCELED

    # -- file operations ----------------------------------------------------------------------------

    def write(self, offset: int, data: bytes) -> int:
        """A pwrite: one chunk of a request frame. Returns the bytes taken."""
        tid, pos = abi.split_offset(offset)
        k = self._key(tid)
        if pos == 0 and len(data) >= abi.HEADER_SIZE:
            # The usual case: a whole frame in one write (no copy into a partial buffer).
            self._drop_partial(k)
            try:
                total = abi.frame_total(data)
            except abi.FrameError as e:
                raise self._refuse(tid, errno.EINVAL, f"malformed frame: {e}") from None
            if total == len(data):
                self._execute(k, tid, data)
                return len(data)
        frame = self._collect(k, tid, pos, data)
        if frame is not None:
            self._execute(k, tid, frame)
        return len(data)

    def _collect(self, k: _Key, tid: int, pos: int, data: bytes) -> bytes | None:
        """Add a chunk to the thread's partial frame: the whole frame once complete, else None."""
        if pos == 0:
            self._drop_partial(k)
            now = self.proc.clock()
            self._expire(now, keep=k)  # partial frames left for 10 s go (only split frames get here)
            k.partial = bytearray()
            k.partial_since = now
            k.partial_total = 0
        elif k.partial is None or pos != len(k.partial):
            self._drop_partial(k)
            raise self._refuse(tid, errno.EINVAL, "frame chunk out of order")
        if self.held + len(data) > MAX_HELD_BYTES:
            self._drop_partial(k)
            raise self._refuse(tid, errno.ENOMEM, "too many bytes held in frames")
        part = k.partial
        part += data
        self.held += len(data)
        if len(part) >= abi.HEADER_SIZE and not k.partial_total:
            try:
                k.partial_total = abi.frame_total(bytes(part[:abi.HEADER_SIZE]))
            except abi.FrameError as e:
                self._drop_partial(k)
                raise self._refuse(tid, errno.EINVAL, f"malformed frame: {e}") from None
        if not k.partial_total or len(part) < k.partial_total:
            return None
        if len(part) > k.partial_total:
            self._drop_partial(k)
            raise self._refuse(tid, errno.EINVAL, "malformed frame: longer than its total")
        frame = bytes(part)
        self._drop_partial(k)
        return frame

    def slot_request(self, tid: int, seq: int, frame: bytes) -> bool:
        """A pread at a slot offset (docs/abi-slot.md), its first half: ``frame``, the request
        number ``seq`` the client put in its slot, runs as a pwrite of it would, unless it ran
        already (the same pread again, after EINTR). True when it ran and its reply is
        produced; either way the pread then reads as at pos 0 (:meth:`read` with ``whole``),
        which runs (or continues) the read phase.

        A reply longer than that pread's ``size`` but at most ``whole`` bytes is returned whole
        and stays unread: the I/O layer puts it in the slot, then calls :meth:`consume`, or
        answers its first ``size`` bytes, and the rest is read as version 1 reads it.
        """
        k = self._key(tid)
        self._drop_partial(k)
        if seq == k.slot_seq:
            return False
        self._execute(k, tid, frame)
        k.slot_seq = seq
        return k.reply is not None

    def consume(self, tid: int) -> None:
        """The reply of ``tid`` was delivered whole (into its slot): it is read."""
        k = self.keys.get(tid)
        if k is not None and k.reply is not None:
            self.held -= len(k.reply)
            k.reply = None

    def _execute(self, k: _Key, tid: int, frame_bytes: bytes) -> None:
        """A complete request: check it, cancel what it replaces, run its write phase."""
        if k.reply is not None:
            raise self._refuse(tid, errno.EBUSY, "new request before the last reply was read")
        if k.first is not None:  # only another thread using this one's key gets here
            raise self._refuse(tid, errno.EBUSY, "new request while a chained read waits")
        try:
            frame = abi.decode_request(frame_bytes)
        except abi.FrameError as e:
            raise self._refuse(tid, errno.EINVAL, f"malformed frame: {e}") from None
        self._cancel_pending(k)
        mem = abi.UserMemory(frame.segments)
        if ioctl.held(self.proc):  # stop_on_user_error: the ioctl runs in its pread, after the hold
            k.pending = ioctl.Held(tid, frame.code, frame.arg, mem)
            return
        outcome = ioctl.start(self.proc, tid, frame.code, frame.arg, mem)
        if isinstance(outcome, ioctl.Done):
            self._set_reply(k, outcome)
        else:
            k.pending = outcome

    def read(self, offset: int, size: int, whole: int = 0) -> bytes | WouldBlock:
        """A pread: the reply at ``pos``, or the read phase at pos 0 (WouldBlock: wait, then resume).
        ``whole``: the second half of a slot request's pread (:meth:`slot_request`)."""
        tid, pos = abi.split_offset(offset)
        k = self.keys.get(tid)
        if k is not None:
            k.whole = whole
        if k is not None and k.partial is not None:
            self._drop_partial(k)
            if pos == 0:
                raise self._refuse(tid, errno.EINVAL, "read while a partial frame is pending")
        if k is not None and k.reply is not None:
            return self._read_reply(k, pos, size)
        if pos > 0:
            raise BinderError(errno.EINVAL, "no reply to read")
        if k is not None and k.pending is not None:
            if k.ticket is not None:
                raise self._refuse(tid, errno.EBUSY, "a second pread waits on one thread")
        else:
            pending = ioctl.fast_path(self.proc, tid)
            if pending is None:
                raise BinderError(errno.ENOMSG, "no request in flight and no earlier read")
            k = self._key(tid)
            k.pending = ioctl.hold(self.proc, pending) if ioctl.held(self.proc) else pending
        return self._run_read(k, tid, size)

    def resume(self, offset: int, size: int, ticket: Waiter) -> bytes | WouldBlock:
        """Continue the pread that waited on ``ticket`` (raises ECANCELED if it was superseded)."""
        tid, _pos = abi.split_offset(offset)
        k = self.keys.get(tid)
        if k is None or k.ticket is not ticket:
            raise BinderError(errno.ECANCELED, "request superseded")
        k.ticket = None
        self.waiting -= 1
        if k.reply is not None:
            return self._read_reply(k, 0, size)
        return self._run_read(k, tid, size)

    def abandon(self, offset: int, ticket: Waiter, size: int = abi.MAX_FRAME) -> bytes | None:
        """The pread waiting on ``ticket`` was interrupted: its read phase stays in flight.

        If that was the chained read of a chained reply, the pread returns the first frame
        instead, as a reply of its own: that ioctl is done, the chained one not started."""
        tid, _pos = abi.split_offset(offset)
        k = self.keys.get(tid)
        if k is None or k.ticket is not ticket:
            return None
        k.ticket = None
        self.waiting -= 1
        if k.pending is not None:
            ioctl.interrupt(self.proc, k.pending)
        return None if k.first is None else self._unchain(k, size)

    def _unchain(self, k: _Key, size: int) -> bytes:
        """The chained read of ``k`` did not run: its first frame is the reply, alone."""
        first = k.first
        assert first is not None
        k.first = None
        k.reply = abi.unchain(first)  # as long as ``first``: ``held`` stays
        return self._read_reply(k, 0, size)

    def _run_read(self, k: _Key, tid: int, size: int) -> bytes | WouldBlock:
        assert k.pending is not None
        if isinstance(k.pending, ioctl.Held):
            h = k.pending
            if ioctl.held(self.proc):
                return self._wait(k, tid, WouldBlock(self.proc.driver.hold_waiter()), size)
            outcome = ioctl.start(self.proc, h.tid, h.cmd, h.arg, h.mem)
            if isinstance(outcome, ioctl.Done):
                k.pending = None
                self._set_reply(k, outcome)
                return self._read_reply(k, 0, size)
            k.pending = outcome
        pending = k.pending
        done = ioctl.resume(self.proc, pending, self.nonblock)
        if isinstance(done, WouldBlock):
            return self._wait(k, tid, done, size)
        k.pending = None
        if k.first is not None:  # the chained read produced: both frames go in one reply
            first, k.first = k.first, None
            self.held -= len(first)
            reply = first + abi.encode_reply(done.ret, done.arg, done.segments)
            self.held += len(reply)
            k.reply = reply
            return self._read_reply(k, 0, size)
        if (isinstance(pending, ioctl.Pending) and pending.chain and done.ret == 0 and len(done.segments) == 1
                and done.segments[0][1] == _LONE_COMPLETE and done.segments[0][0] == pending.bwr[5]
                and _reads_next(pending.thread.looper)
                and not self.nonblock and not ioctl.held(self.proc)):
            chained = ioctl.fast_path(self.proc, tid)
            if chained is not None:
                # docs/abi-chained.md: the read the client makes next runs now.
                first = abi.encode_chained(abi.encode_reply(done.ret, done.arg, done.segments))
                self.held += len(first)
                k.first = first
                k.pending = chained
                return self._run_read(k, tid, size)
        self._set_reply(k, done)
        return self._read_reply(k, 0, size)

    def _wait(self, k: _Key, tid: int, wb: WouldBlock, size: int) -> bytes | WouldBlock:
        """The read phase of ``k`` waits on ``wb``'s ticket (EAGAIN past MAX_WAITING preads; a
        chained read answers its first frame instead)."""
        if self.waiting >= MAX_WAITING:
            assert k.pending is not None
            ioctl.interrupt(self.proc, k.pending)
            if k.first is not None:
                return self._unchain(k, size)
            raise self._refuse(tid, errno.EAGAIN, "too many waiting preads")
        k.ticket = wb.waiter
        self.waiting += 1
        return wb

    def _read_reply(self, k: _Key, pos: int, size: int) -> bytes:
        reply = k.reply
        assert reply is not None
        if pos == 0 and size < len(reply) <= k.whole:
            return reply  # a slot request's: the I/O layer moves it into the slot (slot_request)
        chunk = reply[pos:pos + size]
        if pos + len(chunk) >= len(reply):
            self.held -= len(reply)
            k.reply = None
        return chunk

    def poll(self, tid: int) -> bool:
        """POLLIN: the thread would find work, or has a produced reply unread."""
        k = self.keys.get(tid)
        if k is not None and k.reply is not None:
            return True
        return ioctl.poll(self.proc, tid)

    def flush(self, mm_gone: bool = False) -> None:
        """A close of the file (binder_flush); ``mm_gone``: the opener's memory went first."""
        ioctl.flush(self.proc, mm_gone)

    def release(self) -> None:
        for k in self.keys.values():
            k.first = None
            self._cancel_pending(k)
        self.keys.clear()
        ioctl.release(self.proc)
