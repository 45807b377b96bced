"""The processes the benchmark measures: ``python -m bench.worker ROLE JSON-ARGS``.

Every worker dies with the coordinator (``PR_SET_PDEATHSIG``), prints one JSON line
``{"ready": ...}`` once set up, then answers each JSON command line on its stdin with one JSON line
on its stdout (``{"error": ...}`` when the command failed), and exits at the end of its stdin.

Roles:

- ``daemon``: ``vbinder mount MOUNT --foreground`` (SIGTERM, also at the coordinator's death,
  unmounts); ``floorfs``: the floor file system (:mod:`bench.floorfs`); ``dbus``: nothing here,
  the coordinator runs ``dbus-daemon`` itself.
- ``sm``: the service manager; ``server``: a vbinder process serving :class:`BenchService`.
- ``pong``: the other end of a floor, Unix-socket or D-Bus ping-pong.
- ``client``: calls over one transport (vbinder, floor, unix, dbus) and times them.
- ``opener``: opens (and maps) the device many times: idle binder processes.
- ``threads``: threads of one binder process, idle or waiting as loopers.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from bench import ensure_client

PR_SET_PDEATHSIG = 1
U64 = struct.Struct("<Q")
FLOOR_HEADER = struct.Struct("<Q")  # bench.floorfs's messages: total length, | FLOOR_ACK
FLOOR_ACK = 1 << 63  # in the length: the file system acknowledges on the channel next to it
FLOOR_CHANNELS = {"floor": 0, "floor5": 2, "floor2": 4}  # the pong's inbox; replies go to inbox + 1
FLOOR_SLOT = 1 << 39  # bench.floorfs.SLOT: a pread that first sends the reader's slot
SLOT_SIZE = 8 << 20
FIRST_READ = 16384  # as vbinder_client's transport: one pread usually fetches a whole reply
DBUS_NAME = "org.vbinder.Bench"
DBUS_PATH = "/org/vbinder/Bench"
DBUS_IFACE = "org.vbinder.Bench"

# BenchService transaction codes (FIRST_CALL_TRANSACTION = 1).
ECHO = 1
ONEWAY = 2
MAKE_BINDERS = 3
BLOCK = 4
ECHO_STRING = 5
BENCH_DESCRIPTOR = "vbinder.bench.IBench"
MAKE_CHUNK = 250


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Get ``sig`` when the coordinator dies, even by SIGKILL (no orphans, no stale mounts)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        return
    parent = os.environ.get("BENCH_PARENT")
    if parent and os.getppid() != int(parent):
        os._exit(1)  # the coordinator died before the prctl


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def commands() -> Iterator[dict[str, Any]]:
    for line in sys.stdin:
        if line.strip():
            yield json.loads(line)


def serve_commands(handlers: dict[str, Callable[..., Any]]) -> None:
    """Answer commands until stdin ends: ``{"cmd": NAME, **kwargs}`` -> ``handlers[NAME](**kwargs)``."""
    for cmd in commands():
        name = cmd.pop("cmd")
        try:
            emit({"ok": handlers[name](**cmd)})
        except Exception as e:  # noqa: BLE001 - the coordinator reports it
            emit({"error": f"{name}: {type(e).__name__}: {e}", "trace": traceback.format_exc()})


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def raise_fsize() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


# -- timing ------------------------------------------------------------------------------------------


class Caller:
    """Times ``call(payload)`` round trips; the commands every client kind shares.

    A negative size (:data:`STRING`) is a call with a string argument of that many characters,
    made by ``call_str`` (D-Bus's ``s``, AIDL's ``String``); transports without strings send its
    UTF-8 bytes."""

    def __init__(self, call: Callable[[bytes], bytes], call_str: Callable[[str], str] | None = None) -> None:
        self.call = call
        self.call_str = call_str or (lambda s: call(s.encode()).decode())

    def _for(self, size: int) -> tuple[Callable[[Any], Any], Any]:
        if size < 0:
            return self.call_str, "x" * -size
        return self.call, b"\xa5" * size

    def warmup(self, size: int, n: int, **_: Any) -> int:
        call, payload = self._for(size)
        for _i in range(n):
            back = call(payload)
        if n and back != payload:
            raise RuntimeError(f"echo returned {len(back)} for {len(payload)}")
        return n

    def sync(self, size: int, n: int, reps: int, **_: Any) -> dict[str, list[int]]:
        """``reps`` repetitions of ``n`` calls: every call's time and every repetition's, in ns."""
        call, payload = self._for(size)
        pc = time.perf_counter_ns
        samples: list[int] = []
        walls: list[int] = []
        append = samples.append
        for _r in range(reps):
            t_rep = pc()
            for _i in range(n):
                t0 = pc()
                call(payload)
                append(pc() - t0)
            walls.append(pc() - t_rep)
        return {"samples": samples, "walls": walls}

    def sync_for(self, size: int, start: float, duration: float, **_: Any) -> dict[str, Any]:
        """Calls from ``start`` (time.monotonic, shared by all processes) for ``duration`` seconds."""
        call, payload = self._for(size)
        pc = time.perf_counter_ns
        while (left := start - time.monotonic()) > 0:
            time.sleep(min(left, 0.01))
        end = pc() + int(duration * 1e9)
        samples: list[int] = []
        append = samples.append
        t1 = pc()
        while t1 < end:
            t0 = t1
            call(payload)
            t1 = pc()
            if t1 <= end:
                append(t1 - t0)
        return {"samples": samples}


# -- vbinder -----------------------------------------------------------------------------------------


def _bench_classes() -> tuple[type, type, type]:
    ensure_client()
    from vbinder_client import FIRST_CALL_TRANSACTION, Parcel, Proxy, Service, method

    assert FIRST_CALL_TRANSACTION == ECHO

    class Leaf(Service):
        descriptor = "vbinder.bench.ILeaf"

    class BenchService(Service):
        """Echo, count oneway calls, hand out new binders, block oneway calls until released."""

        descriptor = BENCH_DESCRIPTOR

        def __init__(self, counter: str | None) -> None:
            super().__init__()
            self.count = 0
            self.blocks_done = 0
            self.lock = threading.Lock()
            self.release = threading.Event()
            self.leaves: list[Service] = []
            self.mm: mmap.mmap | None = None
            if counter:
                with open(counter, "r+b") as f:
                    self.mm = mmap.mmap(f.fileno(), U64.size)

        @method(ECHO)
        def echo(self, data: Parcel, reply: Parcel) -> None:
            reply.write_byte_array(data.read_byte_array())

        @method(ECHO_STRING)
        def echo_string(self, data: Parcel, reply: Parcel) -> None:
            reply.write_string16(data.read_string16())

        @method(ONEWAY, oneway=True)
        def oneway(self, data: Parcel, reply: Parcel) -> None:
            data.read_byte_array()
            with self.lock:
                self.count += 1
                if self.mm is not None:
                    U64.pack_into(self.mm, 0, self.count)

        @method(MAKE_BINDERS)
        def make_binders(self, data: Parcel, reply: Parcel) -> None:
            n = data.read_int32()
            reply.write_int32(n)
            for _i in range(n):
                leaf = Leaf()
                reply.write_strong_binder(leaf)

        @method(BLOCK, oneway=True)
        def block(self, data: Parcel, reply: Parcel) -> None:
            self.release.wait(300)
            with self.lock:
                self.blocks_done += 1

    class BenchProxy(Proxy):
        descriptor = BENCH_DESCRIPTOR

    return Leaf, BenchService, BenchProxy


def role_sm(device: str) -> None:
    ensure_client()
    from vbinder_client.service_manager import serve

    ready = threading.Event()
    threading.Thread(target=serve, args=(device,), kwargs={"ready": ready}, daemon=True).start()
    if not ready.wait(30):
        raise RuntimeError("the service manager did not start")
    emit({"ready": os.getpid()})
    serve_commands({})


def role_server(device: str, name: str, counter: str | None = None) -> None:
    ensure_client()
    from vbinder_client import ProcessState, default_service_manager

    _leaf, bench_service, _proxy = _bench_classes()
    ps = ProcessState.init(device)
    svc = bench_service(counter)
    default_service_manager().add_service(name, svc)
    ps.start_thread_pool()
    emit({"ready": os.getpid()})

    def release() -> int:
        svc.release.set()
        return 0

    def block() -> int:
        svc.release.clear()
        return 0

    serve_commands({"release": release, "block": block, "count": lambda: svc.count,
                    "blocks_done": lambda: svc.blocks_done})


class VbinderClient(Caller):
    def __init__(self, device: str, targets: list[str]) -> None:
        ensure_client()
        from vbinder_client import ProcessState, default_service_manager

        _leaf, _svc, proxy = _bench_classes()
        ProcessState.init(device)
        sm = default_service_manager()
        self.proxies = []
        for name in targets:
            b = sm.get_service(name, timeout=20)
            if b is None:
                raise RuntimeError(f"no service {name}")
            self.proxies.append(proxy(b))
        self.held: list[Any] = []
        self.target = 0
        super().__init__(self._echo, self._echo_string)

    def _echo(self, payload: bytes) -> bytes:
        return self.proxies[self.target].call(ECHO, lambda p: p.write_byte_array(payload)).read_byte_array()

    def _echo_string(self, text: str) -> str:
        back = self.proxies[self.target].call(ECHO_STRING, lambda p: p.write_string16(text)).read_string16()
        return back or ""

    def use(self, target: int) -> int:
        self.target = target
        return target

    def oneway(self, size: int, n: int, counter: str, window: int, **_: Any) -> dict[str, int]:
        """``n`` oneway calls, at most ``window`` ahead of the server; times to send and to drain."""
        proxy = self.proxies[self.target]
        payload = b"\xa5" * size
        with open(counter, "rb") as f:
            mm = mmap.mmap(f.fileno(), U64.size, prot=mmap.PROT_READ)
        try:
            base = U64.unpack_from(mm)[0]
            pc = time.perf_counter_ns
            t0 = pc()
            waits = 0
            for i in range(n):
                while i - (U64.unpack_from(mm)[0] - base) >= window:
                    waits += 1
                    time.sleep(0.0002)
                proxy.call(ONEWAY, lambda p: p.write_byte_array(payload), oneway=True)
            t_sent = pc()
            deadline = time.monotonic() + 120
            while U64.unpack_from(mm)[0] - base < n:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not receive every oneway call")
                time.sleep(0.0002)
            t_done = pc()
        finally:
            mm.close()
        return {"send_ns": t_sent - t0, "drain_ns": t_done - t0, "flow_waits": waits}

    def make_binders(self, n: int, **_: Any) -> int:
        """Ask the target for ``n`` new binders and hold them: refs here, nodes there."""
        proxy = self.proxies[self.target]
        while n > 0:
            k = min(n, MAKE_CHUNK)
            reply = proxy.call(MAKE_BINDERS, lambda p, k=k: p.write_int32(k))
            got = reply.read_int32()
            self.held.extend(reply.read_strong_binder() for _i in range(got))
            n -= k
        return len(self.held)

    def drop(self) -> int:
        """Let go of the binders held (their refs go with the next call)."""
        self.held.clear()
        return 0

    def block(self, n: int, **_: Any) -> int:
        """``n`` oneway calls that the target holds until released: one runs, the rest wait."""
        proxy = self.proxies[self.target]
        for _i in range(n):
            proxy.call(BLOCK, oneway=True)
        return n


# -- the other transports ----------------------------------------------------------------------------


class FloorClient(Caller):
    """Channel ``out`` out, ``out + 1`` back (see bench.floorfs); with ``slots``, through the
    request slot of channel ``out`` (two requests a round trip)."""

    def __init__(self, path: str, out: int, slots: str | None = None) -> None:
        raise_fsize()
        self.fd = os.open(path, os.O_RDWR)
        self.out = out
        self.slot = Slot(slots, out) if slots else None
        super().__init__(self._call if self.slot is None else self._slot_call)

    def _call(self, payload: bytes) -> bytes:
        return floor_exchange(self.fd, payload, self.out, self.out + 1)

    def _slot_call(self, payload: bytes) -> bytes:
        assert self.slot is not None
        self.slot.put(FLOOR_HEADER.pack(FLOOR_HEADER.size + len(payload)) + payload)
        return floor_receive(self.fd, self.out + 1, FLOOR_SLOT)[FLOOR_HEADER.size:]


class Slot:
    """A process's request slot for channel ``channel`` (bench.floorfs): u64 seq, the message."""

    def __init__(self, slots: str, channel: int) -> None:
        fd = os.open(os.path.join(slots, f"slot{channel}"), os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, SLOT_SIZE)
        self.mm = mmap.mmap(fd, SLOT_SIZE)
        os.close(fd)
        self.seq = 0

    def put(self, msg: bytes) -> None:
        self.seq += 1
        self.mm[8:8 + len(msg)] = msg
        FLOOR_HEADER.pack_into(self.mm, 0, self.seq)


def floor_exchange(fd: int, payload: bytes, out: int, back: int) -> bytes:
    msg = FLOOR_HEADER.pack(FLOOR_HEADER.size + len(payload)) + payload
    os.pwrite(fd, msg, out << 40)
    return floor_receive(fd, back)[FLOOR_HEADER.size:]


def floor_receive(fd: int, channel: int, first: int = 0) -> bytes:
    key = channel << 40
    data = os.pread(fd, FIRST_READ, key | first)
    total = FLOOR_HEADER.unpack_from(data)[0] & ~FLOOR_ACK
    while len(data) < total:
        data += os.pread(fd, total - len(data), key + len(data))
    return data


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError("peer closed")
        got += k
    return bytes(buf)


class UnixClient(Caller):
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        super().__init__(self._call)

    def _call(self, payload: bytes) -> bytes:
        self.sock.sendall(U64.pack(len(payload)) + payload)
        n = U64.unpack(_recv_exact(self.sock, U64.size))[0]
        return _recv_exact(self.sock, n)


class DbusClient(Caller):
    def __init__(self, address: str) -> None:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(bus=address)
        target = DBusAddress(DBUS_PATH, bus_name=DBUS_NAME, interface=DBUS_IFACE)
        conn = self.conn

        def call(payload: bytes) -> bytes:
            return conn.send_and_get_reply(new_method_call(target, "Echo", "ay", (payload,))).body[0]

        def call_str(text: str) -> str:
            return conn.send_and_get_reply(new_method_call(target, "Echo", "s", (text,))).body[0]

        super().__init__(call, call_str)


# -- C programs through the preload library (bench/cecho.c) -------------------------------------------


def start_cecho(exe: str, mount: str, mode: str, name: str) -> Any:
    """``cecho MODE NAME`` under the preload library, once it printed "ready"."""
    from vbinder.preload import library

    env = {**os.environ, "LD_PRELOAD": str(library()), "VBINDER_MOUNT": mount, "VBINDER_PRELOAD_DEBUG": "1"}
    p = subprocess.Popen([exe, mode, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"cecho {mode} did not start (exit {p.poll()})")
    return p


class CechoClient(Caller):
    """The C client (bench/cecho.c) times its own calls: this only passes the commands on."""

    def __init__(self, exe: str, mount: str, target: str) -> None:
        self.proc = start_cecho(exe, mount, "client", target)
        super().__init__(lambda payload: payload)

    def _ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"cecho client exited ({self.proc.wait()})")
        return answer

    def warmup(self, size: int, n: int, **_: Any) -> int:
        self._ask(f"warmup {size} {n}")
        return n

    def sync(self, size: int, n: int, reps: int, **_: Any) -> dict[str, list[int]]:
        words = self._ask(f"sync {size} {n} {reps}").split()
        at = words.index("walls")
        return {"samples": [int(w) for w in words[1:at]], "walls": [int(w) for w in words[at + 1:]]}


def role_cserver(exe: str, mount: str, name: str) -> None:
    """The C echo server through the preload library: serves until this worker ends."""
    p = start_cecho(exe, mount, "server", name)
    emit({"ready": os.getpid()})
    try:
        serve_commands({})
    finally:
        p.kill()


def role_client(kind: str, **args: Any) -> None:
    client: Caller
    if kind == "vbinder":
        client = VbinderClient(args["device"], args["targets"])
    elif kind == "cecho":
        client = CechoClient(args["exe"], args["mount"], args["target"])
    elif kind in FLOOR_CHANNELS:
        client = FloorClient(args["path"], FLOOR_CHANNELS[kind], args.get("slots"))
    elif kind == "unix":
        client = UnixClient(args["path"])
    elif kind == "dbus":
        client = DbusClient(args["address"])
    else:
        raise ValueError(kind)
    emit({"ready": os.getpid()})
    handlers: dict[str, Callable[..., Any]] = {"warmup": client.warmup, "sync": client.sync,
                                               "sync_for": client.sync_for}
    if isinstance(client, VbinderClient):
        handlers.update(use=client.use, oneway=client.oneway, make_binders=client.make_binders,
                        block=client.block, drop=client.drop)
    serve_commands(handlers)


def role_pong(kind: str, **args: Any) -> None:
    """The echoing end of a floor, Unix-socket or D-Bus ping-pong: serves until killed."""
    if kind in FLOOR_CHANNELS:
        raise_fsize()
        fd = os.open(args["path"], os.O_RDWR)
        inbox = FLOOR_CHANNELS[kind]
        emit({"ready": os.getpid()})
        if kind == "floor":
            while True:
                os.pwrite(fd, floor_receive(fd, inbox), (inbox + 1) << 40)
        if kind == "floor2":  # the reply goes in the slot, sent by the pread that waits for the next
            slot = Slot(args["slots"], inbox + 1)
            msg = floor_receive(fd, inbox)
            while True:
                slot.put(msg)
                msg = floor_receive(fd, inbox, FLOOR_SLOT)
        while True:  # floor5: vbinder's five requests, the acknowledgement read after the reply
            msg = bytearray(floor_receive(fd, inbox))
            FLOOR_HEADER.pack_into(msg, 0, len(msg) | FLOOR_ACK)
            os.pwrite(fd, msg, (inbox + 1) << 40)
            floor_receive(fd, inbox)
    elif kind == "unix":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(args["path"])
        listener.listen(1)
        emit({"ready": os.getpid()})
        sock, _addr = listener.accept()
        while True:
            n = U64.unpack(_recv_exact(sock, U64.size))[0]
            sock.sendall(U64.pack(n) + _recv_exact(sock, n))
    elif kind == "dbus":
        from jeepney import MessageType, new_method_return
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        conn = open_dbus_connection(bus=args["address"])
        conn.send_and_get_reply(message_bus.RequestName(DBUS_NAME))
        emit({"ready": os.getpid()})
        while True:
            msg = conn.receive()
            if msg.header.message_type == MessageType.method_call:
                arg = msg.body[0]
                conn.send(new_method_return(msg, "s" if isinstance(arg, str) else "ay", (arg,)))
    else:
        raise ValueError(kind)


# -- idle processes and threads ----------------------------------------------------------------------


def role_opener(device: str) -> None:
    """Open and map the device on command: each open is one idle binder process."""
    ensure_client()
    from vbinder_client.transport import VbinderTransport

    raise_nofile()
    opened: list[Any] = []

    def open_more(n: int) -> int:
        for _i in range(n):
            opened.append(VbinderTransport(device))
        return len(opened)

    emit({"ready": os.getpid()})
    serve_commands({"open": open_more})


def role_threads(device: str) -> None:
    """Threads of one binder process: ``idle`` ones made one ioctl, ``looper`` ones wait for work."""
    ensure_client()
    from vbinder_client import ProcessState

    from vbinder import uapi

    ps = ProcessState.init(device)
    park = threading.Event()
    started: list[threading.Thread] = []

    def idle() -> None:
        ps.transport.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))
        park.wait()

    def looper() -> None:
        ps.ipc().join_thread_pool(True)

    def spawn(n: int, kind: str) -> int:
        target = idle if kind == "idle" else looper
        done = threading.Semaphore(0)

        def run() -> None:
            done.release()
            target()

        for _i in range(n):
            t = threading.Thread(target=run, daemon=True)
            t.start()
            started.append(t)
        for _i in range(n):
            done.acquire()
        time.sleep(0.2)  # let the last ones reach the driver
        return len(started)

    emit({"ready": os.getpid()})
    serve_commands({"spawn": spawn})


def role_daemon(mount: str, mask: int) -> None:
    die_with_parent(signal.SIGTERM)
    from vbinder.cli import main

    sys.exit(main(["mount", mount, "--foreground", "--devices", "binder", "--debug-mask", str(mask)]))


def role_floorfs(mount: str, slots: str | None = None) -> None:
    die_with_parent(signal.SIGTERM)
    from bench.floorfs import serve

    serve(mount, slots)


ROLES: dict[str, Callable[..., None]] = {
    "daemon": role_daemon, "floorfs": role_floorfs, "sm": role_sm, "server": role_server,
    "client": role_client, "pong": role_pong, "cserver": role_cserver, "opener": role_opener, "threads": role_threads,
}


def main() -> None:
    role, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    os.environ.update(args.pop("env", None) or {})  # e.g. VBINDER_CHAINED=0: a client of ABI v1 only
    if role not in ("daemon", "floorfs"):
        die_with_parent()
    try:
        ROLES[role](**args)
    except Exception as e:  # noqa: BLE001 - tell the coordinator, which is waiting for "ready"
        emit({"error": f"{role}: {type(e).__name__}: {e}", "trace": traceback.format_exc()})
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)  # binder threads may be waiting in the driver: do not join them


if __name__ == "__main__":
    main()
