"""Programs of the fd tests (tests/faults/test_fds.py): ``python fd_peers.py ROLE DEVICE ...``.

- ``server DEVICE``: the context manager; its object answers GET with a :class:`Files` object
  (whose node accepts fds, as every object libbinder sends). Prints ``ready PID``.
- ``client DEVICE COUNT``: COUNT calls, each passing a pipe's write end that the service writes
  to, every tenth also getting a pipe back (a ParcelFileDescriptor); prints ``fds N`` (its open
  fds) once warmed up and again at the end, then ``done``, and waits for its stdin to close.
- ``holder DEVICE``: sends a pipe's write end to HOLD, which keeps the call (and the fd) until
  RELEASE; prints ``holding`` once the service has the fd. Killed in the middle of that call.
- ``interrupted DEVICE``: like holder, and Ctrl-C ends its call; prints ``interrupted``, then, after
  a line on stdin, makes another call and prints ``fds N``: how many more fds it has than before.
- ``counter DEVICE``: prints the service's open fds each time a line arrives on stdin.
"""

from __future__ import annotations

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from vbinder_client import (  # noqa: E402
    FIRST_CALL_TRANSACTION,
    BBinder,
    Parcel,
    ParcelFileDescriptor,
    ProcessState,
    Proxy,
    Service,
    method,
)

DESCRIPTOR = "vbinder.test.IFiles"
WRITE = FIRST_CALL_TRANSACTION
PIPE = FIRST_CALL_TRANSACTION + 1
HOLD = FIRST_CALL_TRANSACTION + 2
RELEASE = FIRST_CALL_TRANSACTION + 3
COUNT = FIRST_CALL_TRANSACTION + 4


class Files(Service):
    descriptor = DESCRIPTOR

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    @method(WRITE)
    def write(self, data: Parcel, reply: Parcel) -> None:
        fd = data.read_file_descriptor()
        os.write(fd, (data.read_string16() or "").encode())

    @method(PIPE)
    def pipe(self, data: Parcel, reply: Parcel) -> None:
        r, w = ParcelFileDescriptor.create_pipe()
        with r, w:
            os.write(w.fileno(), (data.read_string16() or "").encode())
            reply.write_int32(1)
            reply.write_parcel_file_descriptor(r)

    @method(HOLD)
    def hold(self, data: Parcel, reply: Parcel) -> None:
        fd = data.read_file_descriptor()
        os.write(fd, b"holding\n")
        self.release.wait(60)
        self.release.clear()
        reply.write_parcel_file_descriptor(fd)  # an fd in the reply, for a caller that may be gone

    @method(RELEASE)
    def release_hold(self, data: Parcel, reply: Parcel) -> None:
        self.release.set()

    @method(COUNT)
    def count(self, data: Parcel, reply: Parcel) -> None:
        import gc

        gc.collect()
        reply.write_int32(len(os.listdir("/proc/self/fd")))


class Hub(BBinder):
    def __init__(self) -> None:
        super().__init__()
        self.files = Files()

    def on_transact(self, code: int, data: Parcel, reply: Parcel, flags: int) -> None:
        reply.write_strong_binder(self.files)


class FilesProxy(Proxy):
    descriptor = DESCRIPTOR

    def write(self, fd: int, text: str) -> None:
        self.call(WRITE, lambda p: (p.write_file_descriptor(fd), p.write_string16(text)))

    def pipe(self, text: str) -> ParcelFileDescriptor:
        r = self.call(PIPE, lambda p: p.write_string16(text))
        assert r.read_int32() == 1
        return r.read_parcel_file_descriptor()

    def hold(self, fd: int) -> None:
        self.call(HOLD, lambda p: p.write_file_descriptor(fd))

    def release(self) -> None:
        self.call(RELEASE)

    def count(self) -> int:
        return self.call(COUNT).read_int32()


def files(dev: str) -> FilesProxy:
    ps = ProcessState.init(dev)
    reply = ps.context_proxy().transact(1, Parcel())
    assert reply is not None
    return FilesProxy(reply.read_strong_binder())


def my_fds() -> int:
    import gc

    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def server(dev: str) -> None:
    ps = ProcessState.init(dev)
    ps.become_context_manager(Hub())
    ps.start_thread_pool()
    print("ready", os.getpid(), flush=True)
    ps.ipc().join_thread_pool()


def one_call(svc: FilesProxy, i: int) -> None:
    r, w = os.pipe()
    try:
        svc.write(w, f"{i}.")
        os.close(w)
        w = -1
        assert os.read(r, 64) == f"{i}.".encode()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if i % 10 == 0:
        with svc.pipe(str(i)) as p:
            assert os.read(p.fileno(), 64) == str(i).encode()


def client(dev: str, count: str) -> None:
    svc = files(dev)
    for i in range(20):  # warm up: threads, proxies and caches are made once
        one_call(svc, i)
    print("fds", my_fds(), svc.count(), flush=True)
    for i in range(int(count)):
        one_call(svc, i)
    print("fds", my_fds(), svc.count(), flush=True)
    print("done", flush=True)
    sys.stdin.read()


def holder(dev: str) -> None:
    svc = files(dev)
    r, w = os.pipe()
    threading.Thread(target=lambda: print(os.read(r, 64).decode().strip(), flush=True), daemon=True).start()
    svc.hold(w)
    print("returned", flush=True)


def interrupted(dev: str) -> None:
    """A HOLD call ended by Ctrl-C in the main thread; once told (a line on stdin), another call,
    which first reads and drops the held call's late reply (with an fd in it): prints its fds."""
    svc = files(dev)
    base = my_fds()
    r, w = os.pipe()
    threading.Thread(target=lambda: print(os.read(r, 64).decode().strip(), flush=True), daemon=True).start()
    try:
        svc.hold(w)
        print("returned", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    os.close(w)
    sys.stdin.readline()
    svc.count()
    os.close(r)
    print("fds", my_fds() - base, flush=True)
    sys.stdin.read()


def counter(dev: str) -> None:
    svc = files(dev)
    print("ready", svc.count(), flush=True)
    for _line in sys.stdin:
        print(svc.count(), flush=True)


def release(dev: str) -> None:
    files(dev).release()
    print("released", flush=True)


ROLES = {"server": server, "client": client, "holder": holder, "interrupted": interrupted, "counter": counter,
         "release": release}

if __name__ == "__main__":
    ROLES[sys.argv[1]](*sys.argv[2:])
