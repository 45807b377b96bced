"""Client programs of the fault and load tests: ``python peers.py ROLE DEVICE ...`` (vbinder_client).

Every program prints ``ready`` (and more on stdout) when it is set up, and writes one line per
event to its record file (``os.write`` of a whole line to an O_APPEND file, so that a SIGKILL
loses no line that was written):

- ``server DEVICE RECORD [MAX_THREADS]``: the context manager (handle 0) serving :class:`FaultService`;
  records ``T client n`` for each call and ``O client n`` for each one-way call it receives;
  WHOAMI answers the caller's sender_pid and sender_euid.
- ``client DEVICE RECORD NAME COUNT [THREADS [SEED]]``: COUNT calls per thread to handle 0, a mix
  of sync (``call``) and one-way calls; records ``S name n kind`` before a call, then ``R name n``
  (answered), ``I name n`` (KeyboardInterrupt: Ctrl-C, then it goes on), ``D name n``
  (BR_DEAD_REPLY), ``F name n`` (BR_FAILED_REPLY) or ``X name n got`` (a wrong answer); ``done`` at
  the end. Prints ``ready`` once its first call was answered.
- ``blocked DEVICE MS``: a sync call that the server holds MS ms; prints ``calling``, then
  ``interrupted`` on Ctrl-C, then retries a quick call and prints ``retried N``.
- ``holder DEVICE NAME``: registers a local object under NAME at the server, prints ``ready``
  and serves it until killed.
- ``looper DEVICE NAME``: like holder, on its main thread only; Ctrl-C ends its looper read, then
  it calls the server (``called 7``) and serves again (``serving``).
- ``slowcall DEVICE NAME MS``: calls NAME's object, which takes MS ms (it prints ``slow``).
- ``watcher DEVICE NAME``: gets NAME's object from the server, links to its death, calls it,
  prints ``ready``; prints ``dead`` on BR_DEAD_BINDER and then ``dead-call <exception>`` for a call.
"""

from __future__ import annotations

import faulthandler
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from vbinder_client import (  # noqa: E402
    FIRST_CALL_TRANSACTION,
    BpBinder,
    DeadObjectError,
    FailedTransactionError,
    IPCThreadState,
    Parcel,
    ProcessState,
    Proxy,
    Service,
    calling_pid,
    calling_uid,
    method,
)

DESCRIPTOR = "vbinder.test.IFault"
CALL = FIRST_CALL_TRANSACTION
ONEWAY = FIRST_CALL_TRANSACTION + 1
REGISTER = FIRST_CALL_TRANSACTION + 2
LOOKUP = FIRST_CALL_TRANSACTION + 3
PING_OBJ = FIRST_CALL_TRANSACTION + 4
WHOAMI = FIRST_CALL_TRANSACTION + 5
SLOW = FIRST_CALL_TRANSACTION + 6


class Record:
    """Whole lines appended to a file with one write each."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, *fields: object) -> None:
        os.write(self.fd, (" ".join(map(str, fields)) + "\n").encode())


class FaultService(Service):
    descriptor = DESCRIPTOR

    def __init__(self, record: Record | None) -> None:
        super().__init__()
        self.record = record
        self.objects: dict[str, object] = {}

    @method(CALL)
    def call(self, data: Parcel, reply: Parcel) -> None:
        who, n, ms = data.read_string16(), data.read_int32(), data.read_int32()
        if self.record:
            self.record("T", who, n)
        if ms:
            time.sleep(ms / 1000)
        reply.write_int32(n)

    @method(ONEWAY, oneway=True)
    def oneway(self, data: Parcel, reply: Parcel) -> None:
        who, n = data.read_string16(), data.read_int32()
        if self.record:
            self.record("O", who, n)

    @method(REGISTER)
    def register(self, data: Parcel, reply: Parcel) -> None:
        """Keep an object under a name, as a service manager does, until its process dies."""
        name = data.read_string16() or ""
        obj = data.read_strong_binder()
        self.objects[name] = obj
        if isinstance(obj, BpBinder):
            obj.link_to_death(lambda who, name=name: self.objects.pop(name, None) if self.objects.get(name) is who
                              else None)

    @method(LOOKUP)
    def lookup(self, data: Parcel, reply: Parcel) -> None:
        reply.write_strong_binder(self.objects.get(data.read_string16() or ""))  # type: ignore[arg-type]

    @method(WHOAMI)
    def whoami(self, data: Parcel, reply: Parcel) -> None:
        """The caller as the driver says (sender_pid, sender_euid of the transaction)."""
        reply.write_int32(calling_pid())
        reply.write_int32(calling_uid())


class Pinged(Service):
    descriptor = DESCRIPTOR

    @method(PING_OBJ)
    def ping_obj(self, data: Parcel, reply: Parcel) -> None:
        reply.write_int32(os.getpid())

    @method(SLOW)
    def slow(self, data: Parcel, reply: Parcel) -> None:
        print("slow", flush=True)
        time.sleep(data.read_int32() / 1000)


class FaultProxy(Proxy):
    descriptor = DESCRIPTOR

    def sync(self, who: str, n: int, ms: int = 0) -> int:
        def w(p: Parcel) -> None:
            p.write_string16(who)
            p.write_int32(n)
            p.write_int32(ms)

        return self.call(CALL, w).read_int32()

    def oneway(self, who: str, n: int) -> None:
        def w(p: Parcel) -> None:
            p.write_string16(who)
            p.write_int32(n)

        self.call(ONEWAY, w, oneway=True)


def server(dev: str, record: str, max_threads: str = "15") -> None:
    ps = ProcessState.init(dev, max_threads=int(max_threads))
    ps.become_context_manager(FaultService(Record(record)))
    ps.start_thread_pool()
    print("ready", os.getpid(), flush=True)
    ps.ipc().join_thread_pool()


def client(dev: str, record: str, name: str, count: str, threads: str = "1", seed: str = "0") -> None:
    ps = ProcessState.init(dev)
    rec = Record(record)
    sm = FaultProxy(ps.context_proxy())
    sm.sync(name, -1)  # the first call: the server is there
    print("ready", os.getpid(), flush=True)
    total = int(count)

    def one_call(tname: str, n: int, rng: random.Random) -> None:
        oneway = rng.random() < 0.3
        ms = rng.choice((0, 0, 0, 1, 3))
        try:
            rec("S", tname, n, "o" if oneway else "s")
            if oneway:
                sm.oneway(tname, n)
            else:
                got = sm.sync(tname, n, ms)
                if got != n:
                    rec("X", tname, n, got)
                    return
            rec("R", tname, n)
        except DeadObjectError:
            rec("D", tname, n)
        except FailedTransactionError:
            rec("F", tname, n)

    def run(tname: str, rng: random.Random) -> None:
        """COUNT calls; Ctrl-C (KeyboardInterrupt, main thread only) ends one call, not the run."""
        state = {"next": 0, "cur": -1}
        while state["next"] < total:
            try:
                while state["next"] < total:
                    n = state["cur"] = state["next"]
                    state["next"] = n + 1
                    one_call(tname, n, rng)
                    state["cur"] = -1
            except KeyboardInterrupt:
                try:
                    if state["cur"] >= 0:
                        rec("I", tname, state["cur"])
                        state["cur"] = -1
                except KeyboardInterrupt:
                    pass

    finished: list[str] = []

    def worker(tname: str, rng: random.Random) -> None:
        try:
            run(tname, rng)
        finally:
            finished.append(tname)

    workers = [threading.Thread(target=worker, args=(f"{name}.{i}", random.Random(f"{seed}.{i}")))
               for i in range(1, int(threads))]
    for t in workers:
        t.start()
    run(f"{name}.0", random.Random(f"{seed}.0"))
    while True:  # not Thread.join: a KeyboardInterrupt in join() may leave the thread marked done
        try:
            while len(finished) < len(workers):
                time.sleep(0.005)
            rec("done", name)
            print("done", flush=True)
            return
        except KeyboardInterrupt:
            continue


def blocked(dev: str, ms: str) -> None:
    ps = ProcessState.init(dev)
    sm = FaultProxy(ps.context_proxy())
    sm.sync("blocked", -1)
    print("calling", flush=True)
    t0 = time.monotonic()
    try:
        sm.sync("blocked", 1, int(ms))
        print("answered", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted {time.monotonic() - t0:.3f}", flush=True)
    print("retried", sm.sync("blocked", 2), flush=True)


def holder(dev: str, name: str) -> None:
    ps = ProcessState.init(dev)
    ps.start_thread_pool()
    sm = FaultProxy(ps.context_proxy())

    def w(p: Parcel) -> None:
        p.write_string16(name)
        p.write_strong_binder(Pinged())

    sm.call(REGISTER, w)
    print("ready", os.getpid(), flush=True)
    ps.ipc().join_thread_pool()


def watcher(dev: str, name: str) -> None:
    ps = ProcessState.init(dev)
    ps.start_thread_pool()
    sm = FaultProxy(ps.context_proxy())
    obj = sm.call(LOOKUP, lambda p: p.write_string16(name)).read_strong_binder()
    died = threading.Event()
    obj.link_to_death(lambda _who: died.set())
    pid = FaultProxy(obj).call(PING_OBJ).read_int32()
    print("ready", pid, flush=True)
    died.wait()
    print("dead", flush=True)
    try:  # through the driver, not the proxy (which knows it is dead)
        ps.ipc().transact(obj.handle, PING_OBJ, Parcel())
        print("dead-call answered", flush=True)
    except (DeadObjectError, FailedTransactionError) as e:
        print("dead-call", type(e).__name__, flush=True)
    sys.stdin.readline()


def looper(dev: str, name: str) -> None:
    """Registers an object under NAME, serves on the main thread only; on Ctrl-C prints
    ``interrupted``, makes a call from that thread (``called N``), then serves again."""
    ps = ProcessState.init(dev, max_threads=0)
    sm = FaultProxy(ps.context_proxy())

    def w(p: Parcel) -> None:
        p.write_string16(name)
        p.write_strong_binder(Pinged())

    sm.call(REGISTER, w)
    print("ready", os.getpid(), flush=True)
    try:
        ps.ipc().join_thread_pool()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    print("called", sm.sync("looper", 7), flush=True)
    print("serving", flush=True)
    ps.ipc().join_thread_pool()


def slowcall(dev: str, name: str, ms: str) -> None:
    """Calls SLOW(MS) on NAME's object: prints ``answered`` or ``failed EXCEPTION``."""
    ps = ProcessState.init(dev)
    sm = FaultProxy(ps.context_proxy())
    obj = FaultProxy(sm.call(LOOKUP, lambda p: p.write_string16(name)).read_strong_binder())
    print("calling", flush=True)
    try:
        obj.call(SLOW, lambda p: p.write_int32(int(ms)))
        print("answered", flush=True)
    except Exception as e:  # noqa: BLE001 - printed for the test
        print("failed", type(e).__name__, flush=True)


ECHO = FIRST_CALL_TRANSACTION + 10
NOTE = FIRST_CALL_TRANSACTION + 11
RELAY = FIRST_CALL_TRANSACTION + 12


class MeshService(Service):
    """A load-test process's object: ECHO answers n, NOTE (one-way) is recorded, RELAY calls
    ECHO on the object it is given, from this process's looper thread (a nested outgoing call)."""

    descriptor = DESCRIPTOR

    def __init__(self, record: Record) -> None:
        super().__init__()
        self.record = record

    @method(ECHO)
    def echo(self, data: Parcel, reply: Parcel) -> None:
        who, n = data.read_string16(), data.read_int32()
        self.record("E", who, n)
        reply.write_int32(n)

    @method(NOTE, oneway=True)
    def note(self, data: Parcel, reply: Parcel) -> None:
        who, n = data.read_string16(), data.read_int32()
        self.record("N", who, n)

    @method(RELAY)
    def relay(self, data: Parcel, reply: Parcel) -> None:
        who, n, target = data.read_string16() or "", data.read_int32(), data.read_strong_binder()
        reply.write_int32(mesh_echo(FaultProxy(target), who, n))


def mesh_echo(proxy: FaultProxy, who: str, n: int) -> int:
    def w(p: Parcel) -> None:
        p.write_string16(who)
        p.write_int32(n)

    return proxy.call(ECHO, w).read_int32()


def mesh(dev: str, record: str, index: str, count: str, calls: str, loopers: str = "3", callers: str = "2") -> None:
    """``mesh DEVICE RECORD I N CALLS``: process I of N in a ring. It registers ``mI`` at the server,
    serves on LOOPERS looper threads, prints ``ready``; on ``go`` (stdin) each of CALLERS threads
    makes CALLS rounds on m(I+1): ECHO (sync), NOTE (one-way) and every third round a RELAY
    through m(I+1) to m(I+2); records ``C thread n got`` per answer; prints ``done``; serves on
    until stdin closes."""
    i, n_procs = int(index), int(count)
    rec = Record(record)
    ps = ProcessState.init(dev, max_threads=int(loopers))
    sm = FaultProxy(ps.context_proxy())
    svc = MeshService(rec)

    def loop() -> None:
        IPCThreadState.self().join_thread_pool(True)

    for _ in range(int(loopers)):
        threading.Thread(target=loop, daemon=True).start()

    def reg(p: Parcel) -> None:
        p.write_string16(f"m{i}")
        p.write_strong_binder(svc)

    sm.call(REGISTER, reg)
    print("ready", os.getpid(), flush=True)
    assert sys.stdin.readline() == "go\n"
    peers = [sm.call(LOOKUP, lambda p, j=j: p.write_string16(f"m{(i + j) % n_procs}")).read_strong_binder()
             for j in (1, 2)]
    assert all(p is not None for p in peers)
    nxt, after = FaultProxy(peers[0]), peers[1]
    failures: list[str] = []

    def caller(t: int) -> None:
        name = f"m{i}.{t}"
        try:
            for n in range(int(calls)):
                rec("C", name, n, mesh_echo(nxt, name, n))

                def note(p: Parcel, n: int = n) -> None:
                    p.write_string16(name)
                    p.write_int32(n)

                nxt.call(NOTE, note, oneway=True)
                rec("S", name, n)
                if n % 3 == 0:
                    def relay(p: Parcel, n: int = n) -> None:
                        p.write_string16(f"{name}.r")
                        p.write_int32(n)
                        p.write_strong_binder(after)

                    rec("L", name, n, nxt.call(RELAY, relay).read_int32())
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(f"{name}: {e!r}")

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(int(callers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("done", *failures, flush=True)
    sys.stdin.read()


ROLES = {"server": server, "client": client, "blocked": blocked, "holder": holder, "watcher": watcher,
         "looper": looper, "slowcall": slowcall, "mesh": mesh}

if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1)  # a stack dump of a stuck peer, for debugging
    ROLES[sys.argv[1]](*sys.argv[2:])
