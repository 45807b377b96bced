"""Conformance scenarios: written once, run on a vbinder mount and on the real 6.1 kernel.

A scenario is a function ``scenario(dev) -> transcript``: it forks one process per role BEFORE
any of them opens ``dev`` (oracle README, "Pitfalls"), each role runs its function with a
:class:`Ctx` (pipes for messages between roles, ``emit`` for what it saw), and the transcript is
every role's events, in role order, then their exit statuses. Events are normalized by the
scenario: pids become role names, addresses become offsets, debug ids become booleans.

This module needs only the standard library, ``vbinder.uapi`` and ``vbinder_client`` (it runs
inside the oracle's VM, where pyfuse3 and trio may be absent).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vbinder import uapi

Event = dict[str, Any]
Transcript = list[Event]
TR = uapi.TRANSACTION_DATA
FAIL_GRACE = 2.0  # after a role's error, how long the others may go on before they are killed
WAIT = 20.0  # a role's default wait for a message or a condition (the oracle VM is slow: TCG)


@dataclass
class Scenario:
    name: str
    fn: Callable[[str], Transcript]
    doc: str
    xfail: str | None = None


SCENARIOS: dict[str, Scenario] = {}


def scenario(xfail: str | None = None) -> Callable[[Callable[[str], Transcript]], Callable[[str], Transcript]]:
    """Register ``fn(dev) -> transcript``; ``xfail`` says why vbinder is expected to differ."""

    def register(fn: Callable[[str], Transcript]) -> Callable[[str], Transcript]:
        SCENARIOS[fn.__name__] = Scenario(fn.__name__, fn, (fn.__doc__ or "").strip(), xfail)
        return fn

    return register


class ScenarioError(Exception):
    """A role saw something it cannot go on from (a missing message, a timeout)."""


# -- processes -----------------------------------------------------------------------------------


class Ctx:
    """What a role's function gets: its name, the device, messages, and ``emit``."""

    def __init__(self, role: str, dev: str, inbox: int, outboxes: dict[str, int], results: int) -> None:
        self.role = role
        self.dev = dev
        self._inbox = inbox
        self._outboxes = outboxes
        self._results = results
        self._rbuf = b""
        self._stash: list[dict[str, Any]] = []
        self._emit_lock = threading.Lock()
        self.pids: dict[str, int] = {}
        self.tap: Tap | None = None

    # events
    def emit(self, event: str, **fields: Any) -> None:
        """Record one event of this role (written at once: a later kill loses nothing)."""
        line = json.dumps({"proc": self.role, "event": event, **fields}, sort_keys=True) + "\n"
        with self._emit_lock:
            os.write(self._results, line.encode())

    # messages
    def send(self, role: str, msg: str, **fields: Any) -> None:
        os.write(self._outboxes[role], (json.dumps({"msg": msg, **fields}) + "\n").encode())

    def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        if self._stash:
            return self._stash.pop(0)
        deadline = time.monotonic() + timeout
        while b"\n" not in self._rbuf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._inbox], [], [], left)[0]:
                raise ScenarioError(f"{self.role}: no message within {timeout} s")
            chunk = os.read(self._inbox, 65536)
            if not chunk:
                raise ScenarioError(f"{self.role}: inbox closed")
            self._rbuf += chunk
        line, self._rbuf = self._rbuf.split(b"\n", 1)
        return json.loads(line)

    def expect(self, msg: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next message, which must be ``msg``."""
        got = self.recv(timeout)
        if got.get("msg") != msg:
            raise ScenarioError(f"{self.role}: expected {msg!r}, got {got!r}")
        return got

    # normalization
    def who(self, pid: int) -> str | int:
        """A pid as a role name (0 stays 0; an unknown pid is 'other')."""
        if pid == 0:
            return 0
        for role, p in self.pids.items():
            if p == pid:
                return role
        return "other"

    # the client library
    def process(self, max_threads: int = 15) -> Any:
        """This process's ProcessState on the device, its transport tapped (``self.tap``)."""
        from vbinder_client import ProcessState
        from vbinder_client.device import open_transport

        self.tap = Tap(open_transport(self.dev))
        ps = ProcessState(self.dev, max_threads=max_threads, transport=self.tap)
        ProcessState._instance = ps
        return ps

    def raw(self) -> Raw:
        """A raw BINDER_WRITE_READ client on the device (no ProcessState)."""
        from vbinder_client.device import open_transport

        return Raw(open_transport(self.dev))


def outcome(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or ``{"exception": class name}``."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the transcript records what was raised
        return {"exception": type(e).__name__}


def wait_until(pred: Callable[[], bool], timeout: float = WAIT, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def collect_garbage() -> None:
    for _ in range(3):
        gc.collect()


def run_roles(dev: str, timeout: float = 90.0, **roles: Callable[[Ctx], None]) -> Transcript:
    """Fork one process per role (before any opens ``dev``), run them, return the transcript."""
    names = list(roles)
    inboxes = {r: os.pipe() for r in names}
    results = {r: os.pipe() for r in names}
    sys.stdout.flush()
    sys.stderr.flush()
    pids: dict[str, int] = {}
    for role in names:
        pid = os.fork()
        if pid == 0:
            _child(role, dev, roles[role], inboxes, results)  # never returns
        pids[role] = pid
    for role in names:
        os.close(inboxes[role][0])
        os.close(results[role][1])
    for role in names:
        os.write(inboxes[role][1], (json.dumps({"msg": "pids", "pids": pids}) + "\n").encode())
    lines: dict[str, bytearray] = {r: bytearray() for r in names}
    open_fds = {results[r][0]: r for r in names}
    deadline = time.monotonic() + timeout
    timed_out: list[str] = []
    failed_at = 0.0
    while open_fds:
        if failed_at and time.monotonic() > failed_at + FAIL_GRACE:
            for role in set(open_fds.values()):
                _kill(pids[role])  # a role failed: the others would only wait for it
            failed_at = 0.0
        left = min(deadline, failed_at + FAIL_GRACE if failed_at else deadline) - time.monotonic()
        ready = select.select(list(open_fds), [], [], max(left, 0))[0] if left > 0 else []
        if not ready and failed_at:
            continue
        if not ready:
            timed_out = sorted(set(open_fds.values()), key=names.index)
            for role in timed_out:
                _kill(pids[role])
            break
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                lines[open_fds[fd]] += chunk
                if b'"event": "error"' in chunk and not failed_at:
                    failed_at = time.monotonic()
            else:
                os.close(fd)
                del open_fds[fd]
    for fd in open_fds:
        os.close(fd)
    exits = {}
    for role in names:
        _pid, status = os.waitpid(pids[role], 0)
        exits[role] = _exit_desc(status)
        os.close(inboxes[role][1])
    transcript: Transcript = []
    for role in names:
        for line in bytes(lines[role]).splitlines():
            if line.strip():
                transcript.append(json.loads(line))
    for role in names:
        transcript.append({"proc": role, "event": "exit", "status": exits[role]})
    if timed_out:
        transcript.append({"proc": "runner", "event": "timeout", "roles": timed_out})
    return transcript


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _exit_desc(status: int) -> str | int:
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return os.WEXITSTATUS(status)


def _child(role: str, dev: str, fn: Callable[[Ctx], None], inboxes: dict[str, tuple[int, int]],
           results: dict[str, tuple[int, int]]) -> None:
    code = 1
    try:
        for r, (rd, _wr) in inboxes.items():
            if r != role:
                os.close(rd)
        for r, (rd, wr) in results.items():
            os.close(rd)
            if r != role:
                os.close(wr)
        ctx = Ctx(role, dev, inboxes[role][0], {r: w for r, (_r, w) in inboxes.items()}, results[role][1])
        try:
            early = []
            while (msg := ctx.recv())["msg"] != "pids":
                early.append(msg)  # another role was quicker than the runner
            ctx.pids = msg["pids"]
            ctx._stash = early
            fn(ctx)
            code = 0
        except BaseException as e:  # noqa: BLE001 - reported in the transcript, details on stderr
            ctx.emit("error", type=type(e).__name__)
            print(f"[{role}] {''.join(traceback.format_exception(e))}", file=sys.stderr, flush=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def die() -> None:
    """End this process at once, as a crash would (SIGKILL)."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)


# -- BR parsing ------------------------------------------------------------------------------------


@dataclass
class BR:
    """One return command from a read buffer."""

    name: str
    cmd: int
    payload: bytes
    thread: str = ""

    @property
    def tr(self) -> tuple[int, ...]:
        return TR.unpack_from(self.payload)

    @property
    def ptr_cookie(self) -> tuple[int, int]:
        return uapi.PTR_COOKIE.unpack_from(self.payload)

    @property
    def cookie(self) -> int:
        return uapi.U64.unpack_from(self.payload)[0]


def parse_brs(data: bytes, thread: str = "") -> list[BR]:
    out = []
    pos = 0
    while pos + 4 <= len(data):
        cmd = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        n = uapi.ioc_size(cmd)
        out.append(BR(uapi.BR_NAMES.get(cmd, hex(cmd)), cmd, data[pos:pos + n], thread))
        pos += n
    return out


class Tap:
    """A transport that records every BR its process reads (for the client-level scenarios)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.path = inner.path
        self.map_addr = inner.map_addr
        self.brs: list[BR] = []
        self.cond = threading.Condition()

    def ioctl(self, cmd: int, arg: bytes) -> tuple[int, bytes]:
        return self.inner.ioctl(cmd, arg)

    def place(self, data: bytes) -> int:
        return self.inner.place(data)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        if name == "resume" and hasattr(self.inner, "resume"):
            return lambda: self._record(self.inner.resume())
        return getattr(self.inner, name)  # in_flight, fd, ...: as the transport has them

    def write_read(self, write: bytes, read_size: int, chain: bool = False
                   ) -> tuple[int, int, bytes, dict[int, bytes]]:
        return self._record(self.inner.write_read(write, read_size, chain))

    def _record(self, result: tuple[int, int, bytes, dict[int, bytes]]) -> tuple[int, int, bytes, dict[int, bytes]]:
        read = result[2]
        if read:
            brs = parse_brs(read, threading.current_thread().name)
            with self.cond:
                self.brs.extend(brs)
                self.cond.notify_all()
        return result

    def names(self, *only: str) -> list[str]:
        with self.cond:
            return [b.name for b in self.brs if not only or b.name in only]

    def count(self, name: str) -> int:
        return len(self.names(name))

    def wait_for(self, pred: Callable[[list[BR]], bool], timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self.brs), timeout)


# -- raw clients -------------------------------------------------------------------------------------


@dataclass
class WR:
    """One BINDER_WRITE_READ's outcome."""

    ret: int
    write_consumed: int
    read_consumed: int
    brs: list[BR]
    buffers: dict[int, bytes] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.brs]


class Raw:
    """BC commands and BR lists over a transport: the same code on vbinder and the kernel."""

    def __init__(self, transport: Any) -> None:
        self.t = transport
        self.map_addr = transport.map_addr
        self.buffers: dict[int, bytes] = {}
        ret, _ = self.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
        assert ret == 0, ret

    def ioctl(self, cmd: int, arg: bytes = b"") -> tuple[int, bytes]:
        return self.t.ioctl(cmd, arg)

    def wr(self, write: bytes = b"", read_size: int = 256) -> WR:
        ret, consumed, read, buffers = self.t.write_read(write, read_size)
        self.buffers.update(buffers)
        return WR(ret, consumed, len(read), parse_brs(read), buffers)

    def put(self, data: bytes) -> int:
        """Place ``data`` for the next write (its address), 0 for nothing."""
        return self.t.place(data) if data else 0

    def tx(self, handle: int, code: int, data: bytes = b"", offsets: tuple[int, ...] = (), flags: int = 0,
           reply: bool = False, sg: int | None = None, data_ptr: int | None = None) -> bytes:
        """A BC_TRANSACTION/BC_REPLY (BC_*_SG with ``sg`` = extra_buffers_size)."""
        offs = struct.pack(f"<{len(offsets)}Q", *offsets)
        daddr = self.put(data) if data_ptr is None else data_ptr
        oaddr = self.put(offs)
        tr = TR.pack(handle, 0, code, flags, 0, 0, len(data), len(offs), daddr, oaddr)
        if sg is None:
            return bc(uapi.BC_REPLY if reply else uapi.BC_TRANSACTION) + tr
        return bc(uapi.BC_REPLY_SG if reply else uapi.BC_TRANSACTION_SG) + tr + uapi.U64.pack(sg)

    def buffer(self, br: BR) -> bytes:
        """The whole delivered buffer of a BR_TRANSACTION/BR_REPLY (data first)."""
        return self.buffers.get(br.tr[8], b"")

    def data(self, br: BR) -> bytes:
        return self.buffer(br)[:br.tr[6]]

    def tr_fields(self, br: BR, ctx: Ctx) -> dict[str, Any]:
        """A transaction's fields, normalized: pid as a role, buffer as an offset in the map."""
        target, cookie, code, flags, pid, euid, dsize, osize, dptr, optr = br.tr
        return {"target": target, "cookie": cookie, "code": code, "flags": flags, "sender_pid": ctx.who(pid),
                "sender_euid": "self" if euid == os.geteuid() else euid, "data_size": dsize,
                "offsets_size": osize, "buffer": dptr - self.map_addr if dptr else 0,
                "offsets": optr - dptr if osize else 0}

    def ee(self) -> dict[str, Any]:
        """BINDER_GET_EXTENDED_ERROR, normalized (the debug id as a boolean)."""
        return extended_error(self.t)


def extended_error(transport: Any) -> dict[str, Any]:
    ret, arg = transport.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * uapi.EXTENDED_ERROR.size)
    if ret < 0:
        return {"ret": ret}
    eid, cmd, param = uapi.EXTENDED_ERROR.unpack(arg)
    return {"id": bool(eid), "command": uapi.BR_NAMES.get(cmd, cmd), "param": param}


def bc(code: int, *args: int, fmt: str | None = None) -> bytes:
    """A BC command with its arguments (u32 each unless ``fmt`` says otherwise)."""
    return struct.pack("<I" + (fmt if fmt is not None else "I" * len(args)), code, *args)


# -- the driver's log and failed_transaction_log ----------------------------------------------------

RATELIMIT_WINDOW = 5.5  # 6.1's binder_debug/binder_user_error print 10 lines per 5 s each, then drop


def on_kernel(dev: str) -> bool:
    """``dev`` is a real binder device (a character device), not a vbinder mount's file."""
    import stat

    return stat.S_ISCHR(os.stat(dev).st_mode)


class DriverLog:
    """The driver's log lines and failed_transaction_log entries from now on, normalized: the
    same on the kernel (``/dev/kmsg``, debugfs) and on vbinder (the mount's ``proc/kmsg`` and
    debugfs). Pids become role names, debug ids ``ID``, source lines ``L``.

    6.1 rate-limits its lines (10 per 5 s for each of binder_debug and binder_user_error): on the
    kernel, the constructor waits out the current window, and a scenario must print at most 10 of
    each kind after it.
    """

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        # Under `vbinder run` the device stats as the kernel's, but the log is the mount's.
        preload_mount = os.environ.get("VBINDER_MOUNT") if os.environ.get("LD_PRELOAD") else None
        self.kernel = on_kernel(ctx.dev) and not preload_mount
        if self.kernel:
            time.sleep(RATELIMIT_WINDOW)
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
            self.debugfs = "/sys/kernel/debug/binder"
        else:
            root = preload_mount or os.path.dirname(os.path.dirname(ctx.dev))
            self.fd = os.open(os.path.join(root, "proc", "kmsg"), os.O_RDONLY | os.O_NONBLOCK)
            self.debugfs = os.path.join(root, "sys", "kernel", "debug", "binder")
        self._read()  # what is there already (vbinder's kmsg starts at the oldest line it keeps)

    def _read(self) -> list[str]:
        out: list[str] = []
        while True:
            try:
                chunk = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == 32:  # EPIPE: /dev/kmsg records were overwritten; go on
                    continue
                raise
            if not chunk:
                break
            out += chunk.decode(errors="replace").splitlines()
        return out

    def lines(self) -> list[str]:
        """The binder lines printed since the last call, normalized."""
        out = []
        for raw in self._read():
            text = raw.split(";", 1)[1] if self.kernel and ";" in raw else raw.split("] ", 1)[-1]
            if text.startswith("binder_linux: "):
                text = "binder: " + text[len("binder_linux: "):]
            if text.startswith("binder: "):
                out.append(self._normalize(text))
        return out

    def failed(self) -> str:
        """The last failed_transaction_log entry, normalized."""
        with open(os.path.join(self.debugfs, "failed_transaction_log")) as f:
            entries = f.read().splitlines()
        return self._normalize(entries[-1]) if entries else ""

    def _normalize(self, text: str) -> str:
        import re

        def pair(m: re.Match[str]) -> str:
            pid, tid = int(m.group(1)), int(m.group(2))
            if pid and self.ctx.who(pid) == "other":
                return m.group(0)  # not a pid:tid (a size, say)
            return f"{self.ctx.who(pid)}:{self.ctx.who(tid) if tid != pid else self.ctx.who(pid)}"

        text = re.sub(r"\b(\d+):(\d+)\b", pair, text)
        text = re.sub(r"^\d+: ", "ID: ", text)
        text = re.sub(r"(transaction|txn) \d+", r"\1 ID", text)
        text = re.sub(r"failed \d+/(-?\d+)/", r"failed ID/\1/", text)
        text = re.sub(r"\bnode [1-9]\d*", "node ID", text)
        text = re.sub(r"with fd, \d+, but", "with fd, FD, but", text)  # a sender's fd: its number varies
        text = re.sub(r"\bline \d+$|\bl=\d+$", "line L", text)
        return text


def errno_name(ret: int) -> str | int:
    """An ioctl's result: 0/positive as is, -errno as its name ('EINVAL')."""
    import errno as _errno

    return _errno.errorcode.get(-ret, ret) if ret < 0 else ret
