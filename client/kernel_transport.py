"""KernelTransport: the client's transport on a real kernel binder device (``/dev/binder``).

The same interface as :class:`~vbinder_client.transport.VbinderTransport`, with real system
calls: ioctls through ``fcntl.ioctl`` on a mutable buffer, user memory is the process's memory
(``place`` keeps bytes alive in ctypes buffers), and the mapped area is a real read-only
``mmap`` of the device, whose transaction buffers are read at the addresses the driver returns.
Standard library only.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import struct
import threading
from typing import NamedTuple

from vbinder import uapi

from .extended_error import ExtendedErrors
from .signals import check_signals, signal_guard

WR = uapi.WRITE_READ
TR = uapi.TRANSACTION_DATA
MAP_SIZE = (1 << 20) - 2 * 4096  # libbinder's BINDER_VM_SIZE: 1 MiB - 8 KiB
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_TRANSACTIONS = (uapi.BR_TRANSACTION, uapi.BR_TRANSACTION_SEC_CTX, uapi.BR_REPLY)


_libc = ctypes.CDLL(None, use_errno=True)
_libc_mmap = _libc.mmap
_libc_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc_mmap.restype = ctypes.c_void_p
_libc_munmap = _libc.munmap
_libc_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc_munmap.restype = ctypes.c_int
_MAP_FAILED = (1 << 64) - 1  # (void *) -1


class _Exchange(NamedTuple):
    """One BINDER_WRITE_READ: the struct (the kernel copies it back into ``buf``) and the memory
    its pointers name, kept alive until it completes."""

    write_len: int
    buf: bytearray
    wbuf: ctypes.Array[ctypes.c_char]
    rbuf: ctypes.Array[ctypes.c_char] | None
    placed: list[ctypes.Array[ctypes.c_char]]


class _ThreadState:
    """What one thread keeps in a :class:`KernelTransport`."""

    __slots__ = ("placed", "inflight", "rbuf")

    def __init__(self) -> None:
        self.placed: list[ctypes.Array[ctypes.c_char]] = []  # placed for the next write_read
        self.inflight: _Exchange | None = None  # the exchange Ctrl-C interrupted
        self.rbuf: ctypes.Array[ctypes.c_char] | None = None  # the read buffer, reused


class _Local(threading.local):
    """Each thread's state in one KernelTransport (None before its first exchange)."""

    state: _ThreadState | None = None


class KernelTransport:
    """A kernel binder device: real ioctls, real memory, a real mapped area."""

    def __init__(self, path: str, map_size: int = MAP_SIZE, map_flags: int = mmap.MAP_PRIVATE) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.map_addr = 0
        self.map_size = 0
        self._map: memoryview | None = None
        self._local = _Local()
        self.extended_errors = ExtendedErrors()  # what the client read of failed calls' extended errors
        try:
            if map_size:
                # mmap(2) itself: Python's mmap object would keep a dup of the fd, and the driver
                # sees each close of it (binder_flush) where libbinder has one fd.
                addr = _libc_mmap(None, map_size, mmap.PROT_READ, map_flags, self.fd, 0)
                if addr is None or addr == _MAP_FAILED:
                    err = ctypes.get_errno()
                    raise OSError(err, f"mmap of {path}: {os.strerror(err)}")
                self._map = memoryview((ctypes.c_char * map_size).from_address(addr)).cast("B")
                self.map_addr = addr
                self.map_size = map_size
        except BaseException:
            os.close(self.fd)
            self.fd = -1
            raise

    # -- ioctls ------------------------------------------------------------------------------------

    def _ioctl(self, cmd: int, buf: bytearray, interruptible: bool = False) -> int:
        """One ioctl on ``buf`` (the kernel's copy-back lands in it), retried after EINTR.

        On EINTR Python has already run the signal handlers when ``fcntl.ioctl`` raises; if a
        handler raised, its exception propagates instead. With ``interruptible``, a SIGINT that
        :data:`~vbinder_client.signals.signal_guard` recorded is handed to its real handler
        then (which raises KeyboardInterrupt). The retry passes the struct as the kernel copied
        it back (for BINDER_WRITE_READ: the updated ``write_consumed``).
        """
        while True:
            try:
                return int(fcntl.ioctl(self.fd, cmd, buf, True))
            except OSError as e:
                if e.errno != errno.EINTR:
                    return -(e.errno or errno.EIO)
                if interruptible:
                    signal_guard.deliver_pending()

    def ioctl(self, cmd: int, arg: bytes) -> tuple[int, bytes]:
        """One ioctl: (return value or -errno, argument copied back).

        As the vbinder ABI: an ``arg`` whose length is not ``_IOC_SIZE(cmd)`` gives -EINVAL (the
        kernel would read past it); the copy-back is the argument for ioctls that write it when
        they succeed, and always for BINDER_WRITE_READ; otherwise empty.
        """
        if uapi.ioc_size(cmd) != len(arg):
            return -errno.EINVAL, b""
        buf = bytearray(arg)
        ret = self._ioctl(cmd, buf)
        if cmd == uapi.BINDER_GET_EXTENDED_ERROR:
            return self.extended_errors.handed_out(ret, bytes(buf) if ret >= 0 else b"")
        if cmd == uapi.BINDER_WRITE_READ or (ret >= 0 and uapi.ioc_dir(cmd) & uapi.IOC_READ):
            return ret, bytes(buf)
        return ret, b""

    def write_read(self, write: bytes, read_size: int, chain: bool = False
                   ) -> tuple[int, int, bytes, dict[int, bytes]]:
        """BINDER_WRITE_READ with ``write`` (BC commands whose pointers were made by ``place``);
        ``chain`` is vbinder's (docs/abi-chained.md): the kernel needs no such thing.

        Returns (ret, write_consumed, what was read, transaction buffers by address), the
        buffers being the bytes of each BR_TRANSACTION/BR_REPLY read, from the mapped area.

        If KeyboardInterrupt ends it while its read phase waits (Ctrl-C; under the client's
        ``signal_guard`` only there), the exchange stays in flight, as VbinderTransport's does:
        :meth:`in_flight` says so and :meth:`resume` finishes it. The kernel keeps nothing for an
        interrupted read (it had read nothing), so a new call simply drops it.
        """
        local = self._thread()
        local.inflight = None
        placed, local.placed = local.placed, []
        wbuf = ctypes.create_string_buffer(write, max(len(write), 1))
        rbuf = local.rbuf
        if read_size and (rbuf is None or len(rbuf) < read_size):
            rbuf = local.rbuf = ctypes.create_string_buffer(read_size)
        rptr = ctypes.addressof(rbuf) if read_size and rbuf is not None else 0
        buf = bytearray(WR.pack(len(write), 0, ctypes.addressof(wbuf), read_size, 0, rptr))
        exchange = _Exchange(len(write), buf, wbuf, rbuf, placed)
        ret = self._wait(local, exchange, read_size > 0)
        return self._result(local, ret, exchange)

    def _thread(self) -> _ThreadState:
        """The calling thread's state, made on its first exchange."""
        local = self._local
        st = local.state
        if st is None:
            st = local.state = _ThreadState()
        return st

    def _wait(self, local: _ThreadState, exchange: _Exchange, may_wait: bool) -> int:
        """The BINDER_WRITE_READ of ``exchange``; Ctrl-C while it waits leaves it in flight.

        In the main thread under :data:`~vbinder_client.signals.signal_guard`, SIGINT's handler
        only records the signal, so a read phase that may wait is ended by hand: the kernel
        returns EINTR when the signal arrives, and :meth:`_ioctl` hands the recorded SIGINT on
        (KeyboardInterrupt). The kernel has copied the struct back by then, so :meth:`resume`
        re-issues it with nothing left to write, as libbinder does.
        """
        interruptible = may_wait and signal_guard.interrupts_waits
        issued = False
        try:
            if interruptible:
                # A Ctrl-C that came before the wait must not start it (see VbinderTransport).
                check_signals()
                signal_guard.deliver_pending()
            issued = True
            return self._ioctl(uapi.BINDER_WRITE_READ, exchange.buf, interruptible)
        except KeyboardInterrupt:
            if issued:
                local.inflight = exchange  # resume() re-issues it, or returns it if it completed
            else:
                local.placed = exchange.placed + local.placed
            raise

    def _result(self, local: _ThreadState, ret: int, exchange: _Exchange) -> tuple[int, int, bytes, dict[int, bytes]]:
        bwr = WR.unpack(exchange.buf)
        if bwr[1] < exchange.write_len:
            local.placed = exchange.placed + local.placed  # commands left unsent still point there
        read = ctypes.string_at(bwr[5], bwr[4]) if bwr[4] and bwr[5] else b""
        return ret, bwr[1], read, self._buffers(read)

    def in_flight(self) -> int | None:
        """The write size of this thread's exchange that Ctrl-C interrupted, or None."""
        inflight = self._thread().inflight
        return None if inflight is None else inflight.write_len

    def resume(self) -> tuple[int, int, bytes, dict[int, bytes]]:
        """Finish the exchange that Ctrl-C interrupted: its result.

        If the ioctl had returned (the interrupt came just after it), that is its result; else it
        is issued again with the struct the kernel copied back (nothing left to write).
        """
        local = self._thread()
        exchange = local.inflight
        if exchange is None:
            return 0, 0, b"", {}
        local.inflight = None
        bwr = WR.unpack(exchange.buf)
        if bwr[4] or not bwr[3]:
            # It completed: a read returns at least BR_NOOP, and a write alone never waits.
            return self._result(local, 0, exchange)
        ret = self._wait(local, exchange, True)
        return self._result(local, ret, exchange)

    def _buffers(self, read: bytes) -> dict[int, bytes]:
        """The transaction buffers that ``read`` delivers: {data address: data .. end of buffer}."""
        out: dict[int, bytes] = {}
        pos = 0
        while pos + 4 <= len(read):
            cmd = _U32.unpack_from(read, pos)[0]
            pos += 4
            if cmd in _TRANSACTIONS and pos + TR.size <= len(read):
                tr = TR.unpack_from(read, pos)
                secctx = _U64.unpack_from(read, pos + TR.size)[0] if cmd == uapi.BR_TRANSACTION_SEC_CTX else 0
                data = self._buffer(tr, secctx)
                if data is not None:
                    out[tr[8]] = data
            pos += uapi.ioc_size(cmd)
        return out

    def _buffer(self, tr: tuple[int, ...], secctx: int) -> bytes | None:
        """A buffer's bytes: data, offsets, and what scatter-gather objects and secctx add."""
        data_size, offsets_size, data_ptr, offsets_ptr = tr[6], tr[7], tr[8], tr[9]
        m = self._map
        if m is None or not data_ptr and not offsets_size:
            return None
        start = data_ptr - self.map_addr
        end = start + data_size
        if offsets_size:
            end = max(end, offsets_ptr - self.map_addr + offsets_size)
        if start < 0 or end > self.map_size:
            return None
        raw = bytes(m[start:end])
        # Scatter-gather copies (BINDER_TYPE_PTR) and the security context follow the offsets.
        off_start = offsets_ptr - data_ptr
        for i in range(offsets_size // 8):
            at = off_start + 8 * i
            if at + 8 > len(raw):
                break
            obj = _U64.unpack_from(raw, at)[0]
            if obj + uapi.BUFFER_OBJECT.size <= data_size and _U32.unpack_from(raw, obj)[0] == uapi.BINDER_TYPE_PTR:
                _t, _f, bptr, length, _p, _po = uapi.BUFFER_OBJECT.unpack_from(raw, obj)
                end = max(end, bptr - self.map_addr + length)
        if secctx:
            at = secctx - self.map_addr
            nul = bytes(m[at:]).find(b"\0") if 0 <= at < self.map_size else -1
            end = max(end, at + nul + 1 if nul >= 0 else at)
        if end > len(raw) + start and end <= self.map_size:
            raw = bytes(m[start:end])
        return raw

    def place(self, data: bytes) -> int:
        """Put ``data`` in this thread's memory until its next write_read; returns its address."""
        buf = ctypes.create_string_buffer(data, max(len(data), 1))
        self._thread().placed.append(buf)
        return ctypes.addressof(buf)

    def names_wanted(self) -> bool:
        """A kernel's driver takes no call names (its traces name calls through trace_marker)."""
        return False

    def name_next(self, interface: str, method: str) -> None:
        pass

    def close(self) -> None:
        if self._map is not None:
            self._map.release()
            self._map = None
            _libc_munmap(self.map_addr, self.map_size)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
