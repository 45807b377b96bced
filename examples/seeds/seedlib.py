"""What the seed scripts share: where they run, the driver's log and files, roles, a raw client.

A seed script runs its scenario on a binder driver and prints what the seed shows: log lines,
debugfs files, what the processes read. ``--kernel 6.1`` or ``--kernel 3.4`` (the default)
mounts vbinder with that profile in a temporary directory for the run; ``--device PATH`` uses a
device that exists (a real kernel's ``/dev/binder``, or a vbinder mount's ``dev/binder``), with
that kernel's or mount's log, debugfs and parameters. ``--normalize`` prints pids as the names
of the processes, and addresses, hashed pointers, times and vbinder's own source lines as
placeholders, so that two runs (on vbinder and on the kernel) can be compared line for line.

Processes are forked before any of them opens the device (a binder fd inherited and closed
would flush the parent's proc), except where the seed wants just that.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from vbinder_client.device import open_transport

from vbinder import uapi

WAIT = 60.0  # the oracle's VM is slow (TCG): a Python process takes seconds to start there
TR = uapi.TRANSACTION_DATA
MAP_SIZE = (1 << 20) - 2 * 4096  # libbinder's BINDER_VM_SIZE
MAP_PRIVATE, MAP_NORESERVE = 0x02, 0x4000  # libbinder's flags (MAP_NORESERVE shows in the mmap lines)


# -- where a seed runs ---------------------------------------------------------------------------


class Target:
    """The driver a seed runs on: paths of its device, log, debugfs and parameters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.mountpoint: str | None = None
        self._tmp: str | None = None
        if args.device:
            self.device = args.device
            root = os.path.dirname(os.path.dirname(os.path.abspath(self.device)))
            if os.path.exists(os.path.join(root, "proc", "kmsg")) and root != "/":  # a vbinder mount
                self.kind, self.kernel = "vbinder", _mount_kernel(root)
                self.root = root
            else:
                self.kind, self.kernel, self.root = "kernel", "6.1", "/"
        else:
            self.kind, self.kernel = "vbinder", args.kernel
            self._tmp = tempfile.mkdtemp(prefix="vbinder-seed-")
            self.root = self.mountpoint = os.path.join(self._tmp, "mnt")
            os.mkdir(self.mountpoint)
            cmd = [sys.executable, "-m", "vbinder", "mount", self.mountpoint, "--kernel", args.kernel]
            r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=WAIT)
            if r.returncode:
                shutil.rmtree(self._tmp, ignore_errors=True)
                sys.exit(f"cannot mount vbinder: {r.stderr.strip()}")
            self.device = os.path.join(self.mountpoint, "dev", "binder")
        if self.kind == "kernel":
            self.kmsg = "/dev/kmsg"
            self.debugfs = "/sys/kernel/debug/binder"
            module = "binder_linux" if os.path.isdir("/sys/module/binder_linux") else "binder"
            self.params = f"/sys/module/{module}/parameters"
            # Debian's binder_linux module holds binder_alloc's mask as alloc_debug_mask
            self.alloc_param = (f"{self.params}/alloc_debug_mask" if module == "binder_linux"
                                else "/sys/module/binder_alloc/parameters/debug_mask")
        else:
            self.kmsg = os.path.join(self.root, "proc", "kmsg")
            self.debugfs = os.path.join(self.root, "sys", "kernel", "debug", "binder")
            self.params = os.path.join(self.root, "sys", "module", "binder", "parameters")
            self.alloc_param = os.path.join(self.root, "sys", "module", "binder_alloc", "parameters", "debug_mask")
        self.legacy = self.kernel != "6.1"  # 3.x: one debug_mask, the allocator's bits in it
        self.log = LogReader(self.kmsg)

    def close(self) -> None:
        """Unmount what this run mounted."""
        self.log.close()
        if self.mountpoint is not None:
            subprocess.run([sys.executable, "-m", "vbinder", "umount", self.mountpoint], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=WAIT)
            self.mountpoint = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def set_masks(self, binder: int, alloc: int = 0) -> None:
        """binder's debug_mask, and binder_alloc's (6.1): 3.x had one mask, with the allocator's
        bits BUFFER_ALLOC (1 << 13) and BUFFER_ALLOC_ASYNC (1 << 15) in it."""
        if self.legacy:
            bits = {1: 1, 2: 8, 4: 1 << 13, 8: 1 << 15}  # binder_alloc's bits, as 3.x's binder.c had them
            binder |= sum(v for k, v in bits.items() if alloc & k)
        else:
            _write(self.alloc_param, alloc)
        _write(os.path.join(self.params, "debug_mask"), binder)

    def read(self, name: str) -> str:
        """A debugfs file (``state``, ``proc/<pid>``, ...)."""
        with open(os.path.join(self.debugfs, name)) as f:
            return f.read()


def _mount_kernel(root: str) -> str:
    """The profile of a vbinder mount, from its parameter files (3.x has proc_no_lock)."""
    return "3.4" if os.path.exists(os.path.join(root, "sys/module/binder/parameters/proc_no_lock")) else "6.1"


def _write(path: str, value: int) -> None:
    with open(path, "w") as f:
        f.write(f"{value}\n")


class LogReader:
    """The driver's new log lines (the kernel's /dev/kmsg, a mount's proc/kmsg), without level
    and time; the Debian module's ``binder_linux:`` prefix reads ``binder:``, as on a device."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.kernel = path == "/dev/kmsg"
        if self.kernel:
            os.lseek(self.fd, 0, os.SEEK_END)  # only what comes from now on
        self.rest = b""
        self.lines: list[str] = []
        self.take()
        self.lines = []

    def take(self) -> list[str]:
        """The lines logged since the last take."""
        new: list[str] = []
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:  # /dev/kmsg: records overwritten meanwhile
                    continue
                raise
            if not chunk:
                break
            if self.kernel:  # one record per read: "pri,seq,ts,flags;text\n"
                text = chunk.decode(errors="replace").split(";", 1)[-1].split("\n", 1)[0]
                new.append(text)
                continue
            self.rest += chunk
            *lines, self.rest = self.rest.split(b"\n")
            new += [re.sub(r"^<\d+>\[ *\d+\.\d+\] ", "", raw.decode(errors="replace")) for raw in lines]
        new = [line.replace("binder_linux: ", "binder: ") for line in new]
        new = [line for line in new if "binder" in line]  # (the kernel's log has the others too)
        self.lines += new
        return new

    def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> list[str]:
        """The lines logged until none came for ``quiet`` s (the kernel's deferred work logs late)."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            got = self.take()
            if got:
                out += got
                last = time.monotonic()
            time.sleep(0.05)
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# -- processes -----------------------------------------------------------------------------------


class Role:
    """What a forked process of a scenario gets: its name, the device, messages, ``report``."""

    def __init__(self, name: str, target: Target, inboxes: dict[str, tuple[int, int]], results: int) -> None:
        self.name = name
        self.target = target
        self.device = target.device
        self._inbox = inboxes[name][0]
        self._outboxes = {r: w for r, (_r, w) in inboxes.items()}
        self._results = results
        self._buf = b""
        self._stash: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reading = False
        self.pids: dict[str, int] = {}

    def report(self, event: str, **fields: Any) -> None:
        """One thing this process saw, for the transcript."""
        os.write(self._results, (json.dumps({"role": self.name, "event": event, **fields}) + "\n").encode())

    def tell(self, role: str, msg: str, **fields: Any) -> None:
        os.write(self._outboxes[role], (json.dumps({"msg": msg, **fields}) + "\n").encode())

    def wait(self, msg: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next message called ``msg`` (others wait for their own waiters; threads may wait
        for different messages at once)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, got in enumerate(self._stash):
                    if got.get("msg") == msg:
                        return self._stash.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name}: no {msg!r} within {timeout} s")
                if self._reading:
                    self._cond.wait(left)
                    continue
                self._reading = True
                self._cond.release()
                try:
                    ready = select.select([self._inbox], [], [], min(left, 0.2))[0]
                    chunk = os.read(self._inbox, 65536) if ready else b""
                finally:
                    self._cond.acquire()
                    self._reading = False
                if ready and not chunk:
                    raise EOFError(f"{self.name}: inbox closed")
                self._buf += chunk
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    self._stash.append(json.loads(line))
                self._cond.notify_all()


_RUNNING: list[int] = []  # the roles of this run's scenarios, killed if the run ends early


class Scenario:
    """Processes forked before any opens the device; this (the controlling) process is ``main``."""

    def __init__(self, target: Target, **roles: Callable[[Role], None]) -> None:
        names = ["main", *roles]
        _subreaper()  # what the roles fork is reparented to this process when they die
        self.inboxes = {r: os.pipe() for r in names}
        self.results_r, results_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pids: dict[str, int] = {"main": os.getpid()}
        for name, fn in roles.items():
            pid = os.fork()
            if pid == 0:
                os.close(self.results_r)
                role = Role(name, target, self.inboxes, results_w)
                code = 1
                try:
                    role.pids = role.wait("pids")["pids"]
                    fn(role)
                    code = 0
                except BaseException as e:  # noqa: BLE001 - reported, details on stderr
                    role.report("error", type=type(e).__name__, text=str(e))
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            self.pids[name] = pid
            _RUNNING.append(pid)
        os.close(results_w)
        self.main = Role("main", target, self.inboxes, os.dup(self.results_r))
        for name in roles:
            self.main.tell(name, "pids", pids=self.pids)
        self.main.pids = self.pids
        self.events: list[dict[str, Any]] = []
        self._rest = b""

    def collect(self) -> list[dict[str, Any]]:
        """The events reported so far."""
        while select.select([self.results_r], [], [], 0)[0]:
            chunk = os.read(self.results_r, 65536)
            if not chunk:
                break
            self._rest += chunk
            *lines, self._rest = self._rest.split(b"\n")
            self.events += [json.loads(line) for line in lines if line.strip()]
        return self.events

    def kill(self, name: str) -> None:
        """End ``name`` as a crash would (SIGKILL), and reap it."""
        os.kill(self.pids[name], signal.SIGKILL)
        os.waitpid(self.pids[name], 0)

    def finish(self, timeout: float = WAIT) -> list[dict[str, Any]]:
        """Wait for the other processes to exit; every event, then their exits."""
        deadline = time.monotonic() + timeout
        for name, pid in self.pids.items():
            if name == "main":
                continue
            while True:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    if status and not os.WIFSIGNALED(status):
                        self.events.append({"role": name, "event": "exit", "status": os.WEXITSTATUS(status)})
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    self.events.append({"role": name, "event": "timeout"})
                time.sleep(0.02)
        return self.collect()


def _subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def reap(pid: int, timeout: float = WAIT) -> None:
    """Wait for ``pid`` (a child, or an orphan of one: this process is their subreaper) to exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


# -- a raw client ---------------------------------------------------------------------------------


def parse_brs(data: bytes) -> list[tuple[str, bytes]]:
    """The return commands of a read buffer: (name, argument)."""
    out = []
    pos = 0
    while pos + 4 <= len(data):
        cmd = struct.unpack_from("<I", data, pos)[0]
        n = uapi.ioc_size(cmd)
        out.append((uapi.BR_NAMES.get(cmd, hex(cmd)), data[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return out


class Raw:
    """BC commands and BR lists through vbinder_client's transport (the kernel's, or vbinder's)."""

    def __init__(self, device: str, map_size: int = MAP_SIZE, map_flags: int = MAP_PRIVATE | MAP_NORESERVE) -> None:
        self.t = open_transport(device, map_size=map_size, map_flags=map_flags)
        self.map_addr = self.t.map_addr
        self.buffers: dict[int, bytes] = {}
        ret, _ = self.t.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
        assert ret == 0, ret

    def wr(self, write: bytes = b"", read_size: int = 256) -> list[tuple[str, bytes]]:
        ret, _consumed, read, buffers = self.t.write_read(write, read_size)
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret))
        self.buffers.update(buffers)
        return parse_brs(read)

    def tx(self, handle: int, code: int, data: bytes = b"", offsets: tuple[int, ...] = (), flags: int = 0,
           reply: bool = False, offsets_size: int | None = None) -> bytes:
        """A BC_TRANSACTION (BC_REPLY); ``offsets_size`` overrides the offsets' size."""
        offs = struct.pack(f"<{len(offsets)}Q", *offsets)
        daddr = self.t.place(data) if data else 0
        oaddr = self.t.place(offs or b"\0" * 8) if offs or offsets_size else 0
        osize = len(offs) if offsets_size is None else offsets_size
        return bc(uapi.BC_REPLY if reply else uapi.BC_TRANSACTION) + TR.pack(
            handle, 0, code, flags, 0, 0, len(data), osize, daddr, oaddr)

    def ioctl(self, cmd: int, arg: bytes) -> tuple[int, bytes]:
        return self.t.ioctl(cmd, arg)


class Tap:
    """A transport that records what each thread reads: ``returns`` is (tid, BR name), in order."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.path = inner.path
        self.map_addr = inner.map_addr
        self.returns: list[tuple[int, str]] = []

    def write_read(self, write: bytes, read_size: int) -> tuple[int, int, bytes, dict[int, bytes]]:
        return self._record(self.inner.write_read(write, read_size))

    def resume(self) -> tuple[int, int, bytes, dict[int, bytes]]:
        return self._record(self.inner.resume())

    def _record(self, result: tuple[int, int, bytes, dict[int, bytes]]) -> tuple[int, int, bytes, dict[int, bytes]]:
        tid = threading.get_native_id()
        self.returns += [(tid, name) for name, _arg in parse_brs(result[2])]
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # ioctl, place, in_flight, close, ...


def bc(code: int, *args: int, fmt: str | None = None) -> bytes:
    """A BC command with its arguments (u32 each unless ``fmt`` says otherwise)."""
    return struct.pack("<I" + (fmt if fmt is not None else "I" * len(args)), code, *args)


def names(brs: list[tuple[str, bytes]], skip: tuple[str, ...] = ("BR_NOOP", "BR_SPAWN_LOOPER")) -> list[str]:
    return [n for n, _a in brs if n not in skip]


# -- running and printing -------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--kernel", default="3.4", choices=["3.4", "3.x", "6.1"],
                       help="mount vbinder with this profile for the run (default 3.4: the seed's era)")
    where.add_argument("--device", help="run on this binder device (a real /dev/binder, or a vbinder mount's)")
    ap.add_argument("--normalize", action="store_true",
                    help="pids as process names, addresses and times as placeholders (for comparisons)")
    return ap


class Printer:
    """Sections of output; with ``normalize``, what differs between runs as placeholders."""

    def __init__(self, normalize: bool) -> None:
        self.normalize = normalize
        self.pids: dict[int, str] = {}

    def name_pids(self, pids: dict[str, int], tids: dict[int, str] | None = None) -> None:
        for name, pid in pids.items():
            self.pids[pid] = name.upper()
        for tid, name in (tids or {}).items():
            self.pids[tid] = name

    def norm(self, line: str) -> str:
        if not self.normalize:
            return line
        # Debian's module prints binder_alloc.c's lines with binder.c's prefix (binder_linux:)
        line = line.replace("binder_alloc: ", "binder: ")
        line = re.sub(r"(?<!vma )(?<!pagep )(?<![0-9a-fA-F])([uc]?)([0-9a-f]{16})(?![0-9a-fA-F])", _hexword, line)
        line = re.sub(r"\b(at |data |ptr |buffer )?[0-9a-f]{12}(?=[-\s)]|$)",
                      lambda m: (m.group(1) or "") + "ADDR", line)
        line = re.sub(r"\b(?:7[0-9a-f]{11}|[0-9a-f]{8})(?=-[0-9a-f])", "ADDR", line)
        line = re.sub(r"(?<=-)(?:7[0-9a-f]{11}|[0-9a-f]{8})\b", "ADDR", line)
        line = re.sub(r"\bline \d+$", "line L", line)
        line = _PID_PLACES.sub(lambda m: self.pids.get(int(m.group()), m.group()), line)
        return line

    def section(self, title: str, lines: list[str] | str) -> None:
        if isinstance(lines, str):
            lines = lines.splitlines()
        print(f"== {self.norm(title)}")
        for line in lines:
            print(self.norm(line))
        sys.stdout.flush()


# Where the driver's texts print a pid or a tid: "binder: P:T ...", "binder_open: P:T", "proc P",
# "thread T:", "from P:T to P:T", "binder_release: P ...", ... (not sizes or counts that happen to
# equal a pid).
_PID_PLACES = re.compile(r"(?:(?<=binder: )|(?<=binder_open: )|(?<=binder_mmap: )|(?<=binder_flush: )"
                         r"|(?<=_release: )|(?<=proc )|(?<=proc/)|(?<=thread )|(?<=to )|(?<=from )|(?<=:))"
                         r"\d+(?=[:\s,]|$)")


def _hexword(m: re.Match[str]) -> str:
    """A 64-bit value: a user address (the mapped area, the caller's memory) reads ADDR, a hashed
    pointer (%p, %pK: eight zeros, then the hash) PTR; NULL and other values stay."""
    prefix, word = m.group(1), m.group(2)
    if word.startswith("00007") and word != "0" * 16:
        return prefix + "ADDR"
    if not prefix and word.startswith("00000000") and word != "0" * 16:
        return "PTR"
    return prefix + word


def run(doc: str | None, body: Callable[[Target, Printer], None]) -> int:
    """Parse the arguments, set the target up, run ``body``, tear down."""
    args = parser(doc).parse_args()
    target = Target(args)
    printer = Printer(args.normalize)
    if args.normalize:
        print(f"== driver: {target.kernel}")  # (vbinder's or the kernel's: the same output)
    elif target.kind == "vbinder":
        print(f"== driver: vbinder --kernel {target.kernel}")
    else:
        print(f"== driver: Linux {os.uname().release}")
    signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(int(4 * WAIT))
    try:
        body(target, printer)
    finally:
        signal.alarm(0)
        for pid in _RUNNING:  # (a role left waiting by a failure)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        target.close()
    return 0


def _too_long(_signum: int, _frame: object) -> None:
    raise TimeoutError(f"the seed did not finish within {4 * WAIT:.0f} s")


def nanosleep_until(pred: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def mm_gone(pid: int) -> bool:
    """The process has dropped its memory (or is gone): its mappings are closed."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            return b"\nVmSize:" not in f.read()
    except OSError:
        return True


__all__ = ["Printer", "Raw", "Role", "Scenario", "Tap", "Target", "bc", "mm_gone", "names", "nanosleep_until",
           "parse_brs", "reap", "run"]
