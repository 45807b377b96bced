"""Programs of tests/faults/test_chained.py: ``python chain_peers.py ROLE DEVICE`` (vbinder_client).

- ``server DEVICE [pool]``: the context manager, echoing a string (code 1) and looking at a
  binder it is sent without keeping it (code 2); serves on its main thread only (or, with
  ``pool``, on a pool thread while the main thread sleeps); prints ``ready PID``; on Ctrl-C
  prints ``interrupted`` and exits 0.
- ``client DEVICE``: prints ``ready PID``; then one command a line on stdin: ``calls N`` makes N
  echo calls and prints ``done N``; ``calls N L`` echoes N strings of L characters (2 L bytes)
  instead; ``lend`` starts a pool thread (it reads the driver's
  BR_RELEASE/BR_DECREFS) and sends a local object of its own in a call (code 2), then prints
  ``lent``; ``exit`` ends it.

``VBINDER_CHAINED=0`` in the environment makes either a client of ABI v1 only.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from vbinder_client import FIRST_CALL_TRANSACTION, Parcel, ProcessState, Proxy, Service, method  # noqa: E402

ECHO = FIRST_CALL_TRANSACTION
GLANCE = FIRST_CALL_TRANSACTION + 1


class Echo(Service):
    descriptor = "vbinder.test.IChained"

    @method(ECHO)
    def echo(self, data: Parcel, reply: Parcel) -> None:
        reply.write_string16(data.read_string16())

    @method(GLANCE)
    def glance(self, data: Parcel, reply: Parcel) -> None:
        reply.write_int32(data.read_strong_binder() is not None)  # not kept: only the call's parcel holds it


class Lent(Service):
    descriptor = "vbinder.test.ILent"


LENT = Lent()


class EchoProxy(Proxy):
    descriptor = Echo.descriptor


def server(dev: str, mode: str = "main") -> None:
    ps = ProcessState.init(dev, max_threads=0)
    ps.become_context_manager(Echo())
    print("ready", os.getpid(), flush=True)
    try:
        if mode == "pool":
            ps.start_thread_pool()
            while True:
                time.sleep(1)
        ps.ipc().join_thread_pool()
    except KeyboardInterrupt:
        print("interrupted", flush=True)


def client(dev: str) -> None:
    ps = ProcessState.init(dev)
    proxy = EchoProxy(ps.context_proxy())

    def once(text: str) -> str | None:
        return proxy.call(ECHO, lambda p: p.write_string16(text)).read_string16()

    assert once("hello") == "hello"
    print("ready", os.getpid(), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[0] == "calls":
            n = int(words[1])
            length = int(words[2]) if len(words) > 2 else 0
            for i in range(n):
                text = str(i).rjust(length, "x")
                assert once(text) == text
            print("done", n, flush=True)
        elif words[0] == "lend":
            ps.start_thread_pool()  # (idempotent)
            assert proxy.call(GLANCE, lambda p: p.write_strong_binder(LENT)).read_int32() == 1
            ps.ipc().flush()  # BC_INCREFS_DONE, BC_ACQUIRE_DONE, the reply's BC_FREE_BUFFER
            print("lent", flush=True)
        elif words[0] == "exit":
            return


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](*sys.argv[2:])
