"""Fake processes that drive the sans-IO core through the device ABI's frames (no FUSE)."""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from typing import Any

from vbinder import abi, fdabi, uapi
from vbinder.driver import DeviceFile, Driver, WouldBlock

TR = uapi.TRANSACTION_DATA


class FakeHost:
    """tid -> tgid, as /proc would say; files as names (what an fd channel would carry).

    A test stages a thread's fds with :meth:`stage` (fd number -> a name for its file); the core
    takes them, closes them and delivers them through the Host methods; ``open_files`` is every
    file the core holds (a leak shows there), ``delivered`` every delivery by tag.
    """

    def __init__(self) -> None:
        self.tgids: dict[int, int] = {}
        self.start_times: dict[int, int] = {}
        self.fds = True  # the fd channel feature
        self.staged: dict[tuple[int, int], tuple[int, dict[int, str]]] = {}  # (pid, tid) -> (seq, fds)
        self.active: dict[tuple[int, int], dict[int, str]] = {}
        self.open_files: dict[int, str] = {}
        self.delivered: dict[int, tuple[int, list[str]]] = {}  # tag -> (pid, names)
        self.refuse_delivery: dict[int, int] = {}  # pid -> -errno for its deliveries
        self.channel_less: set[int] = set()  # pids without an fd channel
        self._next_file = 100
        self._next_tag = 1

    def tgid(self, tid: int) -> int | None:
        return self.tgids.get(tid, tid)

    def start_time(self, tid: int) -> int | None:
        return self.start_times.get(tid, 1)

    def stage(self, pid: int, tid: int, seq: int, fds: dict[int, str]) -> None:
        self.staged[(pid, tid)] = (seq, fds)

    def features(self) -> int:
        return fdabi.FEATURE_FDS if self.fds else 0

    def fd_channel(self, proc: Any) -> bytes | int:
        return fdabi.CHANNEL.pack(b"t" * fdabi.TOKEN_SIZE, b"fake")

    def begin_fds(self, proc: Any, tid: int, seq: int) -> None:
        got = self.staged.pop((proc.pid, tid), None)
        if got is not None and got[0] == seq:
            self.active[(proc.pid, tid)] = got[1]

    def end_fds(self, proc: Any, tid: int) -> None:
        self.active.pop((proc.pid, tid), None)

    def take_file(self, proc: Any, tid: int, fd: int) -> int:
        if proc.pid in self.channel_less:
            return -errno.EOPNOTSUPP
        name = self.active.get((proc.pid, tid), {}).get(fd)
        if name is None:
            return -errno.EBADF
        file = self._next_file
        self._next_file += 1
        self.open_files[file] = name
        return file

    def close_file(self, file: int) -> None:
        del self.open_files[file]

    def deliver_files(self, proc: Any, tid: int, files: list[int], debug_id: int, offsets: list[int]) -> int:
        err = self.refuse_delivery.get(proc.pid)
        if err:
            return err
        tag = self._next_tag
        self._next_tag += 1
        self.delivered[tag] = (proc.pid, [self.open_files.pop(f) for f in files])
        return tag


def make_driver(**kw: object) -> Driver:
    return Driver(host=FakeHost(), clock=_Clock(), **kw)  # type: ignore[arg-type]


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 0.000001
        return self.t


@dataclass
class BR:
    """One parsed return command."""

    name: str
    cmd: int
    payload: bytes

    @property
    def tr(self) -> tuple[int, ...]:
        return TR.unpack_from(self.payload)


def parse_brs(data: bytes) -> list[BR]:
    out = []
    pos = 0
    while pos + 4 <= len(data):
        cmd = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        n = uapi.ioc_size(cmd)
        out.append(BR(uapi.BR_NAMES.get(cmd, hex(cmd)), cmd, data[pos:pos + n]))
        pos += n
    return out


class FdFile:
    """A real device file (a vbinder mount) with DeviceFile's write/read: reads block instead."""

    def __init__(self, path: str) -> None:
        import os

        self._os = os
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)

    def write(self, offset: int, data: bytes) -> int:
        return self._os.pwrite(self.fd, data, offset)

    def read(self, offset: int, size: int) -> bytes:
        head = self._os.pread(self.fd, max(size, abi.HEADER_SIZE) if size < 65536 else 65536, offset)
        total = abi.reply_total(head)
        while len(head) < total:
            head += self._os.pread(self.fd, total - len(head), offset + len(head))
        return head

    def release(self) -> None:
        self._os.close(self.fd)


class Client:
    """One process (one open of a device) with a mirror of what the driver wrote to its memory.

    With a Driver it is a fake process on the sans-IO core; with ``file`` (an FdFile) it is the
    real calling process on a vbinder mount, and reads block instead of raising WouldBlock.
    """

    def __init__(self, driver: Driver | None, pid: int, device: str = "binder", euid: int = 0,
                 file: DeviceFile | FdFile | None = None) -> None:
        self.driver = driver
        self.pid = pid
        self.file = file if file is not None else driver.open(device, pid, pid, euid)  # type: ignore[union-attr]
        self.mem: dict[int, bytes] = {}  # user memory written by the driver (segments applied)
        self.heap = 0x1000_0000 + pid * 0x100_0000
        self.pending: list[tuple[int, bytes]] = []
        self.map_addr = 0
        self.fd_seq = 0
        # As libbinder's open_driver: BINDER_VERSION first (it also creates the main thread).
        assert self.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0)).code == 0

    # -- user memory -------------------------------------------------------------------------

    def put(self, data: bytes) -> int:
        """Place ``data`` in this process's memory for the next request; returns its address."""
        addr = self.heap
        self.heap += (len(data) + 15) & ~7
        self.pending.append((addr, data))
        return addr

    def read_mem(self, addr: int, n: int) -> bytes:
        for start, data in self.mem.items():
            if start <= addr and addr + n <= start + len(data):
                return data[addr - start:addr - start + n]
        raise KeyError(hex(addr))

    # -- ioctls ------------------------------------------------------------------------------

    def request(self, cmd: int, arg: bytes = b"", tid: int | None = None) -> None:
        tid = self.pid if tid is None else tid
        frame = abi.encode_request(cmd, arg, self.pending)
        self.pending = []
        assert self.file.write(abi.key(tid), frame) == len(frame)

    def reply(self, tid: int | None = None) -> abi.Frame:
        """pread the reply (raises WouldBlock if the read phase must wait)."""
        tid = self.pid if tid is None else tid
        return self._apply(self.file.read(abi.key(tid), abi.MAX_FRAME))

    def resume(self, wb: WouldBlock, tid: int | None = None) -> abi.Frame:
        tid = self.pid if tid is None else tid
        return self._apply(self.file.resume(abi.key(tid), abi.MAX_FRAME, wb.waiter))

    def _apply(self, data: bytes | WouldBlock) -> abi.Frame:
        if isinstance(data, WouldBlock):
            raise data  # the core returns it; these tests take it as an exception
        frame = abi.decode_reply(data)
        for addr, seg in frame.segments:
            self.mem[addr] = seg
        return frame

    def ioctl(self, cmd: int, arg: bytes = b"", tid: int | None = None) -> abi.Frame:
        self.request(cmd, arg, tid)
        return self.reply(tid)

    def mmap(self, size: int = 1040384, addr: int = 0) -> int:
        f = self.ioctl(abi.VBINDER_MMAP, abi.VBINDER_MMAP_ARG.pack(addr, size, abi.PROT_READ, 2))
        assert f.code == 0, f.code
        self.map_addr = abi.VBINDER_MMAP_ARG.unpack(f.arg)[0]
        return self.map_addr

    def write_read(self, write: bytes = b"", read_size: int = 256, tid: int | None = None,
                   read_consumed: int = 0, fds: dict[int, str] | None = None) -> WriteRead:
        """A BINDER_WRITE_READ; raises WouldBlock when the read phase waits (then call finish).

        With ``fds`` (fd number -> a name for its file), the thread stages them on the fake host's
        fd channel and the request is VBINDER_WRITE_READ_FDS (docs/abi-fds.md).
        """
        tid = self.pid if tid is None else tid
        waddr = self.put(write) if write else 0
        raddr = 0x0F00_0000 + tid * 0x1000
        arg = uapi.WRITE_READ.pack(len(write), 0, waddr, read_size, read_consumed, raddr)
        if fds is None:
            self.request(uapi.BINDER_WRITE_READ, arg, tid)
        else:
            self.fd_seq += 1
            host = self.driver.host if self.driver is not None else None
            assert isinstance(host, FakeHost)
            host.stage(self.pid, tid, self.fd_seq, fds)
            self.request(fdabi.VBINDER_WRITE_READ_FDS, arg + struct.pack("<II", self.fd_seq, 0), tid)
        return self._wr(self.reply(tid), raddr, read_consumed)

    def fixups(self, f: abi.Frame) -> tuple[int, list[tuple[int, int]]] | None:
        """The (tag, [(address, kind)]) of a reply's fixup segment, if it has one."""
        for addr, data in f.segments:
            if addr == fdabi.FIXUPS_ADDR:
                return fdabi.decode_fixups(data)
        return None

    def finish(self, wb: WouldBlock, tid: int | None = None) -> WriteRead:
        tid = self.pid if tid is None else tid
        return self._wr(self.resume(wb, tid), 0x0F00_0000 + tid * 0x1000, 0)

    def _wr(self, f: abi.Frame, raddr: int, start: int) -> WriteRead:
        bwr = uapi.WRITE_READ.unpack_from(f.arg)
        data = b""
        if bwr[4] > start:
            data = self.read_mem(raddr + start, bwr[4] - start)
        return WriteRead(f.code, bwr, parse_brs(data), f)

    def payload(self, br: BR) -> bytes:
        tr = br.tr
        return self.read_mem(tr[8], tr[6])

    # -- commands ----------------------------------------------------------------------------

    def bc_transaction(self, handle: int, code: int, data: bytes, flags: int = 0,
                       objects: tuple[int, ...] = (), reply: bool = False) -> bytes:
        daddr = self.put(data) if data else 0
        offs = struct.pack(f"<{len(objects)}Q", *objects)
        oaddr = self.put(offs) if offs else 0
        cmd = uapi.BC_REPLY if reply else uapi.BC_TRANSACTION
        return struct.pack("<I", cmd) + TR.pack(handle, 0, code, flags, 0, 0, len(data), len(offs), daddr, oaddr)


@dataclass
class WriteRead:
    ret: int
    bwr: tuple[int, ...]
    brs: list[BR]
    frame: abi.Frame

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.brs]


def cmd(code: int, *args: int, fmt: str | None = None) -> bytes:
    """A BC command with its arguments (u32 each unless ``fmt`` says otherwise)."""
    return struct.pack("<I" + (fmt if fmt is not None else "I" * len(args)), code, *args)


def flat_binder(ptr: int, cookie: int, strong: bool = True, flags: int = 0) -> bytes:
    t = uapi.BINDER_TYPE_BINDER if strong else uapi.BINDER_TYPE_WEAK_BINDER
    return uapi.FLAT_BINDER_OBJECT.pack(t, flags, ptr, cookie)


def flat_handle(handle: int, strong: bool = True) -> bytes:
    t = uapi.BINDER_TYPE_HANDLE if strong else uapi.BINDER_TYPE_WEAK_HANDLE
    return uapi.FLAT_BINDER_OBJECT.pack(t, 0, handle, 0)
