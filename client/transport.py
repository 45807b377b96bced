"""Transports: how the client reaches a binder driver (ioctl calls and the mapped area).

:class:`Transport` is what IPCThreadState needs of one; :class:`VbinderTransport` speaks the
vbinder device ABI (frames over pwrite/pread, DESIGN.md). :mod:`.kernel_transport` is the
other, on a real binder; :mod:`.device` finds the device and opens the right one.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import resource
import sys
import threading
import time
from typing import Any, Final, Protocol

from vbinder import abi, fdabi, uapi
from vbinder.malloc import keep_large_buffers

from .errors import TransportError  # its own module: mypyc cannot compile an OSError subclass
from .extended_error import ExtendedErrors
from .fd_channel import FdChannel
from .request_slot import SLOT_MIN, RequestSlot
from .signals import check_signals, signal_guard

MAP_SIZE: Final = (1 << 20) - 2 * 4096  # libbinder's BINDER_VM_SIZE: 1 MiB - 8 KiB
MAP_PRIVATE: Final = 0x02
MAP_NORESERVE: Final = 0x4000
_FIRST_READ: Final = 16384  # one pread usually fetches the whole reply
# Where this client places the memory it sends (out of the driver's mapped-area range).
_USER_BASE: Final = 0x1000_0000_0000


_libc = ctypes.CDLL(None, use_errno=True)
_libc_pread: Final = _libc.pread
_libc_pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64]
_libc_pread.restype = ctypes.c_ssize_t


class Transport(Protocol):
    """What IPCThreadState needs from a driver."""

    path: str
    map_addr: int
    extended_errors: ExtendedErrors

    def ioctl(self, cmd: int, arg: bytes) -> tuple[int, bytes]: ...

    def write_read(self, write: bytes, read_size: int, chain: bool = False
                   ) -> tuple[int, int, bytes, dict[int, bytes]]: ...

    def in_flight(self) -> int | None: ...

    def resume(self) -> tuple[int, int, bytes, dict[int, bytes]]: ...

    def place(self, data: bytes) -> int: ...

    def names_wanted(self) -> bool: ...

    def name_next(self, interface: str, method: str) -> None: ...

    def close(self) -> None: ...


def _raise_fsize_limit() -> None:
    """Keys are large file offsets: the soft RLIMIT_FSIZE must allow them (DESIGN.md, Identity)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY:
        raise TransportError(errno.EFBIG, "vbinder needs an unlimited RLIMIT_FSIZE (its file offsets "
                             f"carry thread ids), but the hard limit is {hard}")
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


class _ThreadState:
    """What one thread keeps in a :class:`VbinderTransport`: its key and memory, and its exchange."""

    __slots__ = ("tid", "key", "read_buffer", "segments", "inflight", "last_read_size", "rbuf", "name", "chained",
                 "second", "region", "slot_sent")

    def __init__(self) -> None:
        tid = threading.get_native_id()
        self.tid = tid
        self.key = abi.key(tid)
        self.read_buffer = _USER_BASE + (tid << 24)  # its memory: read buffer, write buffer, data
        self.segments: list[tuple[int, bytes]] = []  # placed for the next write_read
        self.inflight: tuple[bytes, list[tuple[int, bytes]]] | None = None  # (write, segments)
        self.last_read_size = 0
        self.rbuf: ctypes.Array[ctypes.c_char] | None = None  # the guarded pread's buffer
        self.name: bytes | None = None  # the next call's name (VBINDER_TRACE_NAMES)
        # The result of a chained read (docs/abi-chained.md): the next read-only write_read's.
        self.chained: tuple[int, int, bytes, dict[int, bytes]] | None = None
        self.second: abi.Frame | None = None  # its frame, until the first frame's result is made
        self.region = -2  # its region of the request slot (docs/abi-slot.md): -1 none, -2 not asked yet
        self.slot_sent = False  # its last pread reached the daemon (a slot pread's request ran)


class VbinderTransport:
    """A vbinder device file: every ioctl is one request frame and its reply frame."""

    def __init__(self, path: str, map_size: int = MAP_SIZE, map_flags: int = MAP_PRIVATE) -> None:
        """``map_size``, ``map_flags``: the mapped area's (0: none); libbinder maps MAP_SIZE with
        MAP_PRIVATE | MAP_NORESERVE, which the driver prints in its mmap lines."""
        _raise_fsize_limit()
        keep_large_buffers()  # payloads are copied in fresh buffers: keep them in the heap
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.map_addr = 0
        self.map_size = 0
        self._local = threading.local()
        self._names = False  # the daemon wants calls named (a trace records transactions)
        self._names_checked = 0.0  # when that was last asked (at most once a second)
        self.extended_errors = ExtendedErrors()  # what the client read of failed calls' extended errors
        self.fds: FdChannel | None = None  # the fd channel (docs/abi-fds.md), when the daemon has one
        # The numbers of requests that stage fds: one counter for all threads, so that a thread
        # whose tid was another's before gets numbers above that one's (the daemon drops a set
        # whose number is not above its thread's last).
        self._fd_seq = itertools.count(1)
        self._slot_seq = itertools.count(1)  # slot requests' numbers: one counter, as _fd_seq's
        self.chained = False  # the daemon offers the chained wait (docs/abi-chained.md)
        self.slot: RequestSlot | None = None  # the request slot (docs/abi-slot.md), when the daemon has one
        self._pid = os.getpid()  # a forked child shares the slot's file: it must not write its regions
        # The shortest request that goes by the slot: VBINDER_SLOT=1 sends all, 0 none (no slot).
        self.slot_min = 0 if os.environ.get("VBINDER_SLOT") == "1" else SLOT_MIN
        try:
            ret, arg = self.ioctl(abi.VBINDER_ABI_VERSION, b"\0" * 4)
            if ret < 0 or uapi.U32.unpack(arg)[0] != abi.ABI_VERSION:
                raise TransportError(errno.EPROTO, f"{path} does not speak vbinder ABI {abi.ABI_VERSION}")
            ret, arg = self.ioctl(fdabi.VBINDER_FEATURES, bytes(fdabi.FEATURES.size))
            features = fdabi.FEATURES.unpack(arg)[0] if ret == 0 else 0  # -EINVAL: a daemon of ABI v1 only
            # On unless VBINDER_CHAINED=0 (a client of ABI v1 only: docs/abi-chained.md).
            self.chained = bool(features & fdabi.FEATURE_CHAINED) and os.environ.get("VBINDER_CHAINED") != "0"
            if map_size:
                ret, arg = self.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(0, map_size, abi.PROT_READ,
                                                                                  map_flags))
                if ret < 0:
                    raise TransportError(-ret, f"mapping {path}: {os.strerror(-ret)}")
                self.map_addr, self.map_size = abi.VBINDER_MMAP_ARG.unpack(arg)[:2]
            try:
                self.fds = FdChannel.open(self.ioctl, features)
            except TransportError as e:
                # Calls work without it; fds cannot be passed (docs/abi-fds.md: a process in
                # another network namespace cannot reach the daemon's abstract socket).
                print(f"vbinder_client: {path}: {e}: file descriptors cannot be passed", file=sys.stderr)
            if self.fds is not None and features & fdabi.FEATURE_SLOT and os.environ.get("VBINDER_SLOT") != "0":
                try:
                    self.slot = RequestSlot.open(self.fds.sock, self.ioctl)
                except TransportError as e:  # calls work without it, a request more each
                    print(f"vbinder_client: {path}: {e}: requests go by pwrite", file=sys.stderr)
        except BaseException:
            os.close(self.fd)
            raise

    # -- frames ------------------------------------------------------------------------------------

    def _thread(self) -> _ThreadState:
        """The calling thread's state (one thread-local lookup per exchange), made on its first
        exchange. (Not a threading.local subclass with a default: compiled, one crashes.)"""
        local = self._local
        try:
            st: _ThreadState = local.state
        except AttributeError:
            st = local.state = _ThreadState()
        return st

    def _send(self, st: _ThreadState, request: bytes) -> None:
        n = os.pwrite(self.fd, request, st.key)
        if n != len(request):
            raise TransportError(errno.EIO, f"short write of a request ({n} of {len(request)})")

    def _receive(self, st: _ThreadState, wait: bool = False, slot_start: int = -1) -> abi.Frame:
        """pread the whole reply of this thread's request (of the read-only fast path, if none).

        With ``wait`` (a read phase that may wait) in the main thread under :data:`signal_guard`,
        the pread is :meth:`_guarded_pread`, which a Ctrl-C ends without losing the reply.
        With ``slot_start``, the request is in the thread's region of the request slot, and the
        first pread runs it (:meth:`_guarded_pread` too). A chained reply's second frame becomes
        the thread's ``chained`` result.
        """
        fd = self.fd
        key = st.key
        offset = key if slot_start < 0 else fdabi.slot_offset(key, slot_start)
        if wait and signal_guard.interrupts_waits:
            data = self._guarded_pread(st, fd, offset)
        else:
            # A slot pread that EINTR interrupts is retried as it was: the daemon runs a slot's
            # request once, and the retry continues its read phase (docs/abi-slot.md).
            st.slot_sent = True
            data = os.pread(fd, _FIRST_READ, offset)
        if data[:4] == fdabi.STUB_MAGIC:  # the reply is in the slot (docs/abi-slot.md)
            slot = self.slot
            assert slot is not None
            data = slot.reply(slot_start, abi.REPLY_HEADER.unpack_from(data)[4])
        total = abi.reply_total(data)
        if abi.is_chained(data):  # docs/abi-chained.md: the second frame follows the first
            if total + abi.HEADER_SIZE > len(data):
                data += os.pread(fd, total + abi.HEADER_SIZE - len(data), key + len(data))
            total += abi.reply_total(data[total:])
        if total > len(data):
            data += os.pread(fd, total - len(data), key + len(data))
        first, st.second = abi.decode_chained(data)
        return first

    def _guarded_pread(self, st: _ThreadState, fd: int, offset: int) -> bytes:
        """The waiting pread of the main thread under :data:`signal_guard`.

        It runs through libc rather than ``os.pread``: Python's retry on EINTR would run SIGINT's
        handler inside the call, and a KeyboardInterrupt raised just after a pread returned would
        lose the reply it read. Here SIGINT's handler only records the signal during the call; if
        the daemon answered EINTR (it saw the signal), the recorded SIGINT is handed to its handler
        and the read phase stays in flight; if the reply came, the call completes and the guard
        raises the interrupt after it. One pread, as any other thread's. ``st.slot_sent`` says
        whether it reached the daemon (a slot pread's request then ran: docs/abi-slot.md).
        """
        buf: Any = st.rbuf  # Any: typeshed says a char array's slice is a list (it is bytes)
        if buf is None:
            buf = st.rbuf = ctypes.create_string_buffer(_FIRST_READ)
        st.slot_sent = False
        while True:
            # Run the Python handlers of the signals that came since the last check, then hand a
            # recorded Ctrl-C on: one that came before the wait must not start it. The check must
            # be explicit: compiled code passes no eval-loop check between bytecodes, and a SIGINT
            # caught by the C handler but not yet run is no longer pending for the daemon to see.
            check_signals()
            signal_guard.deliver_pending()
            n = _libc_pread(fd, buf, _FIRST_READ, offset)
            st.slot_sent = True
            if n >= 0:
                data: bytes = buf[:n]
                return data
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise OSError(err, os.strerror(err))

    def ioctl(self, cmd: int, arg: bytes, segments: list[tuple[int, bytes]] | None = None) -> tuple[int, bytes]:
        """One ioctl: (return value, argument copied back)."""
        st = self._thread()
        self._send(st, abi.encode_request(cmd, arg, segments or ()))
        f = self._receive(st)
        if cmd == uapi.BINDER_GET_EXTENDED_ERROR:
            return self.extended_errors.handed_out(f.code, f.arg)
        return f.code, f.arg

    def write_read(self, write: bytes, read_size: int, chain: bool = False
                   ) -> tuple[int, int, bytes, dict[int, bytes]]:
        """BINDER_WRITE_READ with ``write`` (BC commands whose pointers were made by ``place``).

        Returns (ret, write_consumed, what was read, transaction buffers by address).

        ``chain``: the thread's next call will read (with the same ``read_size``); if the daemon
        offers the chained wait and this read returns only BR_TRANSACTION_COMPLETE, that read
        runs at once and the next write_read that reads returns its result (docs/abi-chained.md).
        Commands that call writes go first, in a request of their own.

        If SIGINT's handler raises (KeyboardInterrupt) while its read phase waits (see
        :class:`SignalGuard`), the exchange stays in flight: :meth:`in_flight` says so, and
        :meth:`resume` finishes it. The only other call allowed meanwhile is one that replaces a
        read-only read phase with a new request (``write`` not empty); it fails with EBUSY if
        that read phase had produced its reply, which :meth:`resume` then returns.
        """
        local = self._thread()
        chained = local.chained
        if chained is not None and read_size:
            local.chained = None
            if write or local.segments or local.name is not None:
                try:
                    sent = self.write_read(write, 0)  # the write phase alone
                except BaseException:
                    local.chained = chained
                    raise
                if sent[0] < 0:
                    local.chained = chained  # the write failed: the kernel would not have read
                    return sent
                return chained[0], sent[1], chained[2], chained[3]
            return chained
        read_buffer = local.read_buffer
        data_segments = local.segments
        local.segments = []
        if local.name is not None:  # the call's name goes with the write that sends it
            data_segments.append((abi.NAME_ADDR, local.name))
            local.name = None
        before = local.inflight
        f = None
        try:
            if not write and not data_segments and local.last_read_size == read_size:
                local.inflight = (b"", [])  # the pread itself starts the read phase
                try:
                    f = self._receive(local, read_size > 0)  # the ABI's read-only fast path
                except OSError as e:
                    if e.errno != errno.ENOMSG:
                        raise
                    local.inflight = before
            if f is None:
                waddr = read_buffer + 0x10000
                arg = uapi.WRITE_READ.pack(len(write), 0, waddr, read_size, 0, read_buffer)
                chain = chain and self.chained and read_size > 0
                cmd = abi.VBINDER_WRITE_READ_CHAINED if chain else uapi.BINDER_WRITE_READ
                fds = self.fds
                if fds is not None and write:
                    numbers = fdabi.fds_in_write(write, data_segments)
                    if numbers:  # stage them, then the request that takes them (docs/abi-fds.md)
                        seq = next(self._fd_seq) & 0xFFFF_FFFF
                        fds.stage(local.tid, seq, numbers)
                        cmd = fdabi.VBINDER_WRITE_READ_FDS
                        arg += uapi.U32.pack(seq) + uapi.U32.pack(fdabi.WR_CHAIN if chain else 0)
                request = abi.encode_request(cmd, arg, [*data_segments, (waddr, write)])
                slot = self.slot
                region = local.region
                if slot is not None and region == -2:
                    region = local.region = slot.acquire(local.tid)
                if (slot is not None and region >= 0 and self.slot_min <= len(request) <= slot.capacity
                        and os.getpid() == self._pid):
                    # docs/abi-slot.md: the request in the slot, one pread runs it
                    try:
                        slot.put(region, next(self._slot_seq), request)
                        local.inflight = (write, data_segments)
                        local.slot_sent = False
                        f = self._receive(local, read_size > 0, region)
                    except BaseException:
                        if not local.slot_sent:
                            local.inflight = before  # not started: what was in flight still is
                        raise
                else:
                    try:
                        self._send(local, request)
                    except BaseException:
                        local.inflight = before  # not sent: what was in flight still is
                        raise
                    local.inflight = (write, data_segments)
                    f = self._receive(local, read_size > 0)
                if read_size:
                    local.last_read_size = read_size
        except OSError:
            if local.inflight is not before:
                local.inflight = None  # ours failed (the daemon is gone, say): nothing to resume
            local.segments = data_segments + local.segments
            raise
        except BaseException:  # SIGINT's handler raised (KeyboardInterrupt) while the read phase waited
            if local.inflight is before:  # nothing in flight is ours: the segments are unsent
                local.segments = data_segments + local.segments
            raise
        local.inflight = None
        return self._result(local, f, write, data_segments)

    def in_flight(self) -> int | None:
        """The write size of this thread's exchange that Ctrl-C interrupted, or None."""
        inflight = self._thread().inflight
        return None if inflight is None else len(inflight[0])

    def resume(self) -> tuple[int, int, bytes, dict[int, bytes]]:
        """Finish the exchange that Ctrl-C interrupted (see :meth:`write_read`): its result.

        A pread at pos 0 continues its read phase, or reads its reply if produced (DESIGN.md,
        "One request per thread"); it may wait again, and be interrupted again.
        """
        local = self._thread()
        write, data_segments = local.inflight or (b"", [])
        try:
            f = self._receive(local, True)  # interrupted again (not an OSError): still in flight
        except OSError as e:
            local.inflight = None
            local.segments = data_segments + local.segments
            if e.errno == errno.ENOMSG:
                return 0, 0, b"", {}  # nothing was in flight after all
            raise
        local.inflight = None
        return self._result(local, f, write, data_segments)

    def _result(self, local: _ThreadState, f: abi.Frame, write: bytes, data_segments: list[tuple[int, bytes]]
                ) -> tuple[int, int, bytes, dict[int, bytes]]:
        bwr = uapi.WRITE_READ.unpack_from(f.arg)
        consumed: int = bwr[1]
        if consumed < len(write):
            local.segments = data_segments + local.segments  # commands left unsent still point there
        buffers: dict[int, bytes] = {}
        read = b""
        read_buffer = local.read_buffer
        fixups: bytes | None = None
        for addr, data in f.segments:
            if addr == read_buffer:
                read = data
            elif addr == fdabi.FIXUPS_ADDR:
                fixups = data
            else:
                buffers[addr] = data
        fds = self.fds
        if fds is not None:
            if fds.fda and consumed:
                fds.freed(write[:consumed])  # before new buffers: their addresses may be the freed ones'
            if fixups is not None:
                buffers = fds.apply(fixups, buffers)
        second = local.second
        if second is not None:  # a chained read's result, made after the first's (its frees first)
            local.second = None
            local.chained = self._result(local, second, b"", [])
        return f.code, consumed, read, buffers

    def place(self, data: bytes) -> int:
        """Put ``data`` in this thread's memory for the next write_read; returns its address."""
        local = self._thread()
        segments = local.segments
        addr = local.read_buffer + 0x20000 + sum((len(d) + 7) & ~7 for _a, d in segments)
        segments.append((addr, data))
        return addr

    def names_wanted(self) -> bool:
        """Whether a trace records transactions, so that calls should carry their names: asked
        of the daemon (VBINDER_TRACE_NAMES) at most once a second; never of one without it."""
        now = time.monotonic()
        if now - self._names_checked < 1.0:
            return self._names
        self._names_checked = now
        if self._thread().inflight is not None:
            return self._names  # this thread's exchange is in flight: ask later
        ret, arg = self.ioctl(abi.VBINDER_TRACE_NAMES, b"\0" * 4)
        if ret < 0:
            self._names_checked = float("inf")  # an older daemon: never ask again
            self._names = False
        else:
            self._names = uapi.U32.unpack(arg)[0] == 1
        return self._names

    def name_next(self, interface: str, method: str) -> None:
        """Name the next call this thread sends (its interface descriptor and method)."""
        self._thread().name = f"{interface}\0{method}".encode()[:abi.NAME_MAX]

    def close(self) -> None:
        if self.slot is not None:
            self.slot.close()
            self.slot = None
        if self.fds is not None:
            self.fds.close()
            self.fds = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
