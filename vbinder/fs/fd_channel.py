"""The daemon's side of the fd channel (docs/abi-fds.md): the files transactions carry.

One abstract ``SOCK_SEQPACKET`` Unix socket listens; a client connects once per open device file,
presents the token that file's VBINDER_FD_CHANNEL gave it, and is bound to that file if the
kernel says (``SO_PEERCRED``) that it is the process that opened the file. Then:

- the client **stages** the fds of a request (STAGE records with ``SCM_RIGHTS``) before it writes
  the request; the request (VBINDER_WRITE_READ_FDS) brackets the driver's ``take_file`` calls
  with ``begin_fds``/``end_fds``, and what it did not take is closed at its end;
- the driver **delivers** a transaction's files to its receiver: DELIVER records on the
  receiver's channel, sent without waiting (a full channel fails the delivery, as a full fd
  table fails 6.1's).

The driver holds files as numbers from :class:`FileTable` (each one a duplicate the daemon owns);
nothing here waits except the HELLO, in a task of its own with a timeout. A bound channel has no
task: one reader watches every bound socket through an epoll set of its own (a trio task per
channel cost each open file 3 KiB more). Every fd the daemon receives is either in a staged set,
in the table, or closed; a channel's close closes its sets.
"""

from __future__ import annotations

import array
import errno
import fcntl
import logging
import os
import resource
import secrets
import select
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from .. import fdabi
from ..driver.log import Debug
from ..driver.trace import M_FD_RECV, TP_FD_RECV
from .slot import RequestSlot, check_file

if TYPE_CHECKING:
    from ..driver.process import Proc

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 5.0  # seconds a connection may take to say HELLO
MAX_WAITING_HELLO = 64  # connections that have not said HELLO yet, at once
MAX_HELD_PER_PROC = 4096  # files held for one open file: staged, or in its undelivered transactions
RESERVE_FDS = 1024  # fds the daemon keeps for itself (FUSE, /proc, sockets)
MAX_RECORDS_PER_DRAIN = 4096  # a drain that finds more is a flood: the channel closes
_CMSG_SPACE = socket.CMSG_SPACE(4 * fdabi.MAX_FDS)
_RECV_SIZE = 64 + 4 * 4096  # larger than any valid record
_SEND_FLAGS = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL
_RECV_FLAGS = socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (files in transactions are fds here); the
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as e:
            log.debug("RLIMIT_NOFILE left at %d: %s", soft, e)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _close_all(fds: Iterator[int] | list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The fds of a received message's SCM_RIGHTS (all of them: the caller owns them now)."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(data[:len(data) - len(data) % a.itemsize])
            fds.extend(a)
    return fds


@dataclass(eq=False)
class _Set:
    """The files a thread staged for its request ``seq``: fd number -> the daemon's fd."""

    seq: int
    files: dict[int, int] = field(default_factory=dict)
    active: bool = False  # its request is running (between begin_fds and end_fds)
    overflow: int = 0  # an errno when files could not be held (EMFILE), for every take


@dataclass(eq=False, slots=True)
class Channel:
    """A bound fd channel: the socket of one open device file."""

    sock: socket.socket
    proc: Proc
    sets: dict[int, _Set] = field(default_factory=dict)  # by tid
    last_seq: dict[int, int] = field(default_factory=dict)  # tid -> the seq of its last request with fds
    held: int = 0  # files taken into transactions from this open file (not delivered yet)
    staged: int = 0  # files in its staged sets
    next_tag: int = 1
    reports: dict[int, tuple[int, int, list[int]]] = field(default_factory=dict)  # tag -> (debug id, tid,
    # offsets) of a delivery whose INSTALLED record is awaited
    closed: bool = False
    slot: RequestSlot | None = None  # the request slot (docs/abi-slot.md), once registered
    slot_answer: int = -errno.ENOENT  # VBINDER_SLOT's: the region size, or -errno


class FileTable:
    """The files the driver holds: opaque numbers for the daemon's own fds."""

    def __init__(self, limit: int) -> None:
        self.fds: dict[int, int] = {}  # file -> the daemon's fd
        self.owner: dict[int, Channel] = {}  # file -> the channel it was taken from
        self.limit = limit  # the most files held at once (below the daemon's RLIMIT_NOFILE)
        self.staged = 0  # fds in staged sets
        self._next = 1

    def held(self) -> int:
        return len(self.fds) + self.staged

    def add(self, fd: int, owner: Channel) -> int:
        file = self._next
        self._next += 1
        self.fds[file] = fd
        self.owner[file] = owner
        owner.held += 1
        return file

    def pop(self, file: int) -> int | None:
        """Forget ``file``: its fd (now the caller's), or None if unknown."""
        fd = self.fds.pop(file, None)
        owner = self.owner.pop(file, None)
        if owner is not None:
            owner.held -= 1
        return fd


class FdChannels:
    """The listening socket, the tokens handed out, the bound channels and the files held."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is None:
            limit = raise_fd_limit()
        self.files = FileTable(max(limit - RESERVE_FDS, 64))
        self.tokens: dict[bytes, Proc] = {}
        self.token_of: dict[Proc, bytes] = {}
        self.channels: dict[Proc, Channel] = {}
        self.waiting_hello = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK
                                      | socket.SOCK_CLOEXEC)
        while True:
            name = f"vbinder-fds/{os.getpid()}/{secrets.token_hex(12)}".encode()
            try:
                self.listener.bind(b"\0" + name)
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    self.listener.close()
                    raise
        self.name = name
        self.listener.listen(128)
        self._nursery: trio.Nursery | None = None
        self._epoll = select.epoll()  # the bound channels' sockets (close-on-exec), read by _read_all
        self._by_fd: dict[int, Channel] = {}

    # -- the driver's Host methods --------------------------------------------------------------

    def fd_channel(self, proc: Proc) -> bytes | int:
        """VBINDER_FD_CHANNEL: this open file's token and the socket's name (EBUSY once bound)."""
        if proc in self.channels or proc.is_dead:
            return -errno.EBUSY
        token = self.token_of.get(proc)
        if token is None:
            token = secrets.token_bytes(fdabi.TOKEN_SIZE)
            self.tokens[token] = proc
            self.token_of[proc] = token
        return fdabi.CHANNEL.pack(token, self.name)

    def begin_fds(self, proc: Proc, tid: int, seq: int) -> None:
        ch = self.channels.get(proc)
        if ch is None or ch.closed:
            return
        self.drain(ch)  # the STAGE records were queued before the request's pwrite
        if ch.closed:
            return
        ch.last_seq[tid] = seq
        s = ch.sets.get(tid)
        if s is not None:
            if s.seq == seq:
                s.active = True
            else:
                self._drop_set(ch, tid)  # an older request's, never used

    def slot(self, proc: Proc) -> int:
        """VBINDER_SLOT: the region size of the slot this open file's channel registered, or
        -errno (-EOPNOTSUPP: no channel; -ENOENT: no SLOT record; -EINVAL: the file was refused)."""
        ch = self.channels.get(proc)
        if ch is None or ch.closed:
            return -errno.EOPNOTSUPP
        self.drain(ch)  # the SLOT record was sent before the ioctl
        return -errno.EOPNOTSUPP if ch.closed else ch.slot_answer

    def slot_of(self, proc: Proc) -> RequestSlot | None:
        ch = self.channels.get(proc)
        return ch.slot if ch is not None else None

    def end_fds(self, proc: Proc, tid: int) -> None:
        ch = self.channels.get(proc)
        if ch is not None and tid in ch.sets:
            self._drop_set(ch, tid)

    def take_file(self, proc: Proc, tid: int, fd: int) -> int:
        ch = self.channels.get(proc)
        if ch is None:
            return -errno.EOPNOTSUPP
        s = ch.sets.get(tid)
        if s is None or not s.active:
            return -errno.EBADF
        if s.overflow:
            return -s.overflow
        mine = s.files.get(fd)
        if mine is None:
            return -errno.EBADF
        if ch.held + ch.staged >= MAX_HELD_PER_PROC or self.files.held() >= self.files.limit:
            proc.log.user_error("%d:%d vbinder: too many files held (%d for this process, %d in all)",
                                proc.pid, tid, ch.held + ch.staged, self.files.held())
            return -errno.EMFILE
        try:
            dup = fcntl.fcntl(mine, fcntl.F_DUPFD_CLOEXEC, 0)  # one per object, as fget takes one per object
        except OSError as e:
            return -(e.errno or errno.EMFILE)
        return self.files.add(dup, ch)

    def close_file(self, file: int) -> None:
        fd = self.files.pop(file)
        if fd is not None:
            _close_all([fd])

    def deliver_files(self, proc: Proc, tid: int, files: list[int], debug_id: int, offsets: list[int]) -> int:
        ch = self.channels.get(proc)
        if ch is None or ch.closed:
            proc.log.user_error("%d:%d vbinder: cannot deliver %d fds: %s", proc.pid, tid, len(files),
                                "no fd channel" if ch is None else "its fd channel is closed")
            return -errno.EMFILE
        room = _fd_room(proc.pid)
        if room is not None and room < len(files):
            return -errno.EMFILE  # get_unused_fd_flags would fail in the receiver
        fds = [self.files.fds[f] for f in files if f in self.files.fds]
        if len(fds) != len(files):
            return -errno.EBADF
        tag = ch.next_tag
        ch.next_tag += 1
        report = bool(proc.log.debug_mask & Debug.TRANSACTION or proc.trace.mask & M_FD_RECV)
        flags = fdabi.DELIVER_REPORT if report else 0
        parts = [fds[i:i + fdabi.MAX_FDS] for i in range(0, len(fds), fdabi.MAX_FDS)] or [[]]
        for n, part in enumerate(parts):
            last = fdabi.DELIVER_LAST if n == len(parts) - 1 else 0
            record = fdabi.DELIVER.pack(fdabi.DELIVER_MAGIC, flags | last, tag, n * fdabi.MAX_FDS, len(part))
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", part))] if part else []
            try:
                ch.sock.sendmsg([record], anc, _SEND_FLAGS)
            except OSError as e:
                if n:
                    # Half a delivery went: the client can never complete it. The channel ends
                    # (the client closes what it holds of it at the end of the channel).
                    self.close_channel(ch, "a delivery failed half way")
                return -(e.errno or errno.EIO)
        for f in files:
            fd = self.files.pop(f)
            if fd is not None:
                _close_all([fd])
        if report:
            if len(ch.reports) >= 1024:
                ch.reports.pop(next(iter(ch.reports)))
            ch.reports[tag] = (debug_id, tid, offsets)
        return tag

    # -- channels -------------------------------------------------------------------------------

    def drain(self, ch: Channel) -> None:
        """Read every record queued on ``ch`` (never waits)."""
        for _ in range(MAX_RECORDS_PER_DRAIN):
            if ch.closed:
                return
            try:
                data, anc, flags, _addr = ch.sock.recvmsg(_RECV_SIZE, _CMSG_SPACE, _RECV_FLAGS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.close_channel(ch, f"read failed: {os.strerror(e.errno or errno.EIO)}")
                return
            fds = _received_fds(anc)
            if not data and not fds:
                self.close_channel(ch, "")  # the client closed it
                return
            why = self._record(ch, data, fds, flags)
            if why:
                self.close_channel(ch, why)
                return
        self.close_channel(ch, "flooded")

    def _record(self, ch: Channel, data: bytes, fds: list[int], flags: int) -> str:
        """Take one record; a reason to close the channel if it is malformed ("" when fine)."""
        proc = ch.proc
        if len(data) < 4:
            _close_all(fds)
            return "a short record"
        magic = int.from_bytes(data[:4], "little")
        if magic == fdabi.STAGE_MAGIC and len(data) >= fdabi.STAGE.size:
            _m, sflags, tid, seq, count = fdabi.STAGE.unpack_from(data)
            if (len(data) != fdabi.STAGE.size + 4 * count or not 0 < count <= fdabi.MAX_FDS
                    or (len(fds) != count and not flags & socket.MSG_CTRUNC)):
                _close_all(fds)
                return "a malformed STAGE record"
            numbers = fdabi.decode_numbers(data, fdabi.STAGE.size, count)
            self._stage(ch, tid, seq, bool(sflags & fdabi.STAGE_FIRST), numbers, fds,
                        bool(flags & socket.MSG_CTRUNC))
            return ""
        if magic == fdabi.SLOT_MAGIC:
            return self._slot_record(ch, data, fds)
        _close_all(fds)
        if fds:
            return "fds in a record that carries none"
        if magic == fdabi.INSTALLED_MAGIC and len(data) >= fdabi.INSTALLED.size:
            _m, count, tag = fdabi.INSTALLED.unpack_from(data)
            if len(data) != fdabi.INSTALLED.size + 4 * count:
                return "a malformed INSTALLED record"
            report = ch.reports.pop(tag, None)
            if report is not None:
                self._installed(proc, report, fdabi.decode_numbers(data, fdabi.INSTALLED.size, count))
            return ""
        return f"an unknown record (magic {magic:#x}, {len(data)} bytes)"

    @staticmethod
    def _slot_record(ch: Channel, data: bytes, fds: list[int]) -> str:
        """A SLOT record: its one fd becomes the open file's request slot, if it is fit to be."""
        if len(data) != fdabi.SLOT.size or len(fds) != 1:
            _close_all(fds)
            return "a malformed SLOT record"
        _m, flags, region = fdabi.SLOT.unpack(data)
        if ch.slot is not None:
            _close_all(fds)
            ch.slot_answer = -errno.EBUSY  # one slot per open file; the first stays
            return ""
        size = check_file(fds[0], region) if flags == 0 else -errno.EINVAL
        if size < 0:
            _close_all(fds)
            ch.slot_answer = size
            ch.proc.log.user_error("%d vbinder: request slot refused: not a sealed memfd of whole regions "
                                   "(region %d)", ch.proc.pid, region)
            return ""
        ch.slot = RequestSlot(fds[0], region, size)
        ch.slot_answer = region
        return ""

    @staticmethod
    def _installed(proc: Proc, report: tuple[int, int, list[int]], fds: list[int]) -> None:
        """binder_apply_fd_fixups's line and tracepoint for each fd, once the receiver says which
        it installed (the daemon cannot know before: docs/decisions.md)."""
        debug_id, tid, offsets = report
        trace = proc.trace
        if trace.mask & M_FD_RECV:
            trace.task(tid, proc.pid)
        for fd, offset in zip(fds, offsets, strict=False):
            proc.log.debug(Debug.TRANSACTION, "fd fixup txn %d fd %d", debug_id, fd)
            if trace.mask & M_FD_RECV:
                trace.emit(TP_FD_RECV, (debug_id, fd, offset))

    def _stage(self, ch: Channel, tid: int, seq: int, first: bool, numbers: list[int], fds: list[int],
               truncated: bool) -> None:
        if seq <= ch.last_seq.get(tid, 0):
            _close_all(fds)  # for a request that has run already
            return
        s = ch.sets.get(tid)
        if first or s is None or s.seq != seq:
            if s is not None:
                self._drop_set(ch, tid)
            s = ch.sets[tid] = _Set(seq)
        if truncated or self.files.held() + len(fds) > self.files.limit or (
                ch.held + ch.staged + len(fds) > MAX_HELD_PER_PROC):
            s.overflow = errno.EMFILE
            _close_all(fds)
            ch.proc.log.user_error("%d:%d vbinder: too many files held (%d for this process, %d in all)",
                                   ch.proc.pid, tid, ch.held + ch.staged, self.files.held())
            return
        for number, fd in zip(numbers, fds, strict=True):
            old = s.files.get(number)
            if old is not None:
                _close_all([old])
                self.files.staged -= 1
                ch.staged -= 1
            s.files[number] = fd
            self.files.staged += 1
            ch.staged += 1

    def _drop_set(self, ch: Channel, tid: int) -> None:
        s = ch.sets.pop(tid, None)
        if s is not None:
            self.files.staged -= len(s.files)
            ch.staged -= len(s.files)
            _close_all(list(s.files.values()))

    def close_channel(self, ch: Channel, why: str) -> None:
        """End a channel: its staged files are closed; the open file keeps no channel."""
        if ch.closed:
            return
        ch.closed = True
        if why:
            ch.proc.log.user_error("%d vbinder: fd channel closed: %s", ch.proc.pid, why)
        for tid in list(ch.sets):
            self._drop_set(ch, tid)
        ch.reports.clear()
        if ch.slot is not None:
            ch.slot.close()
            ch.slot = None
        fd = ch.sock.fileno()
        if self._by_fd.get(fd) is ch:
            del self._by_fd[fd]
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass
        ch.sock.close()

    def release(self, proc: Proc) -> None:
        """The open file of ``proc`` was released: its token and channel go."""
        token = self.token_of.pop(proc, None)
        if token is not None:
            self.tokens.pop(token, None)
        ch = self.channels.pop(proc, None)
        if ch is not None:
            self.close_channel(ch, "")

    def close(self) -> None:
        for proc in list(self.channels):
            self.release(proc)
        for fd in list(self.files.fds.values()):
            _close_all([fd])
        self.files.fds.clear()
        self.listener.close()
        self._epoll.close()

    # -- the trio side: accepting, HELLO, reading ---------------------------------------------

    async def serve(self) -> None:
        """Accept connections until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._read_all)
                while True:
                    await trio.lowlevel.wait_readable(self.listener)
                    try:
                        conn, _addr = self.listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        log.warning("fd channel: accept failed: %s", e)
                        await trio.sleep(0.1)  # EMFILE: let the fds come back
                        continue
                    if self.waiting_hello >= MAX_WAITING_HELLO:
                        conn.close()
                        continue
                    self.waiting_hello += 1
                    nursery.start_soon(self._hello, conn)
        finally:
            self._nursery = None

    async def _hello(self, conn: socket.socket) -> None:
        """Wait (at most HELLO_TIMEOUT) for a connection's HELLO; bound, read its records."""
        ch: Channel | None = None
        try:
            conn.setblocking(False)
            pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            data = b""
            with trio.move_on_after(HELLO_TIMEOUT):
                while True:
                    await trio.lowlevel.wait_readable(conn)
                    try:
                        data, anc, _flags, _addr = conn.recvmsg(_RECV_SIZE, _CMSG_SPACE, _RECV_FLAGS)
                    except (BlockingIOError, InterruptedError):
                        continue
                    _close_all(_received_fds(anc))
                    break
            if not data:
                return  # no HELLO in time, or the peer went away
            status, proc = self._check_hello(data, pid)
            conn.send(fdabi.ACK.pack(fdabi.ACK_MAGIC, status), _SEND_FLAGS)
            if status == 0 and proc is not None:
                ch = self._bind(conn, proc)
        except (OSError, trio.ClosedResourceError) as e:
            log.debug("fd channel: %s", e)
        finally:
            self.waiting_hello -= 1
            if ch is None:
                conn.close()

    def _check_hello(self, data: bytes, pid: int) -> tuple[int, Proc | None]:
        if len(data) != fdabi.HELLO.size:
            return -errno.EINVAL, None
        magic, version, token = fdabi.HELLO.unpack(data)
        if magic != fdabi.HELLO_MAGIC or version != fdabi.VERSION:
            return -errno.EINVAL, None
        proc = self.tokens.get(token)
        if proc is None or proc.is_dead:
            return -errno.EINVAL, None
        if proc in self.channels:
            return -errno.EBUSY, None
        if pid != proc.pid:
            proc.log.user_error("%d vbinder: fd channel refused to pid %d (not the opener)", proc.pid, pid)
            return -errno.EPERM, None
        return 0, proc

    def _bind(self, conn: socket.socket, proc: Proc) -> Channel:
        token = self.token_of.pop(proc)
        del self.tokens[token]
        ch = self.channels[proc] = Channel(conn, proc)
        self._epoll.register(conn.fileno(), select.EPOLLIN)
        self._by_fd[conn.fileno()] = ch
        return ch

    async def _read_all(self) -> None:
        """Read the bound channels' records as they come (INSTALLED reports, the client's close):
        the one task that waits for them, on the epoll set (readable while a socket is)."""
        while True:
            await trio.lowlevel.wait_readable(self._epoll.fileno())
            try:
                ready = self._epoll.poll(0, 256)
            except InterruptedError:
                continue
            for fd, _events in ready:
                ch = self._by_fd.get(fd)
                if ch is not None:
                    self.drain(ch)  # (a hang-up reads as the client's close)


def _fd_room(pid: int) -> int | None:
    """How many more fds process ``pid`` could open (its RLIMIT_NOFILE against the fds it has
    below it), or None when /proc does not say."""
    try:
        with open(f"/proc/{pid}/limits", "rb") as f:
            text = f.read()
        soft = None
        for line in text.splitlines():
            if line.startswith(b"Max open files"):
                field = line.split()[3]
                soft = None if field == b"unlimited" else int(field)
        if soft is None:
            return None
        used = sum(1 for name in os.listdir(f"/proc/{pid}/fd") if int(name) < soft)
    except (OSError, ValueError, IndexError):
        return None
    return soft - used
