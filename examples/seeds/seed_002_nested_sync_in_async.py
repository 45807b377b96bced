#!/usr/bin/env python3
"""Seed 002: a sync call nested in a one-way call, and the stray BR_TRANSACTION_COMPLETE.

A service ("nested") with one binder thread gets two one-way calls for the same node. While it
handles the first, it calls a peer synchronously; its BC_FREE_BUFFER of the first call's buffer
goes with that BC_TRANSACTION. In 3.x, BC_FREE_BUFFER moved the node's next one-way call onto
the freeing thread's *own* todo, ahead of the sync call's BR_TRANSACTION_COMPLETE: the thread,
waiting for its reply, reads the second one-way call first and runs it nested; that handler's
own one-way call then takes the sync call's BR_TRANSACTION_COMPLETE as its answer, and the
one-way call's own BR_TRANSACTION_COMPLETE is left over, read by the thread pool after
everything: libbinder aborts there ("BAD COMMAND"), which crashed system_server. 6.1 queues the
next one-way call for the proc: it runs after the first, and nothing is left over.

vbinder_client (libbinder's protocol) reports the leftover answer as an error and serves on.

    examples/seeds/seed_002_nested_sync_in_async.py [--kernel 3.4|6.1 | --device DEV] [--normalize]
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seedlib import Printer, Role, Scenario, Tap, Target, run  # noqa: E402
from vbinder_client import FIRST_CALL_TRANSACTION, Proxy, Service, default_service_manager, method  # noqa: E402
from vbinder_client.device import open_transport  # noqa: E402
from vbinder_client.process_state import ProcessState  # noqa: E402
from vbinder_client.service_manager import serve  # noqa: E402

ANSWERS = ("BR_TRANSACTION", "BR_REPLY", "BR_TRANSACTION_COMPLETE", "BR_FAILED_REPLY", "BR_DEAD_REPLY")


class Peer(Service):
    descriptor = "seed.IPeer"
    role: Role

    @method(FIRST_CALL_TRANSACTION)
    def call(self, data: object, reply: object) -> None:
        self.role.tell("nested", "replying")

    @method(FIRST_CALL_TRANSACTION + 1, oneway=True)
    def note(self, data: object, reply: object) -> None:
        pass


class PeerProxy(Proxy):
    descriptor = "seed.IPeer"

    def call(self) -> None:
        super().call(FIRST_CALL_TRANSACTION)

    def note(self) -> None:
        super().call(FIRST_CALL_TRANSACTION + 1, oneway=True)


class NestedProxy(Proxy):
    descriptor = "seed.INested"

    def first(self) -> None:
        self.call(FIRST_CALL_TRANSACTION, oneway=True)

    def second(self) -> None:
        self.call(FIRST_CALL_TRANSACTION + 1, oneway=True)


def service_manager(role: Role) -> None:
    ready = threading.Event()
    threading.Thread(target=lambda: (ready.wait(), role.tell("main", "ready")), daemon=True).start()
    serve(role.device, ready=ready)


def peer(role: Role) -> None:
    role.wait("start")
    ps = ProcessState.init(role.device)
    Peer.role = role
    default_service_manager().add_service("peer", Peer())
    role.tell("main", "ready")
    ps.ipc().join_thread_pool()


def nested(role: Role) -> None:
    role.wait("start")
    tap = Tap(open_transport(role.device))
    ps = ProcessState(role.device, max_threads=0, transport=tap)  # one binder thread: this one
    ProcessState._instance = ps
    errors: list[str] = []

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage())
            role.report("client error", text=record.getMessage().split(". ", 1)[0])

    logging.getLogger("vbinder_client").addHandler(Errors(logging.ERROR))
    peer_proxy = PeerProxy(default_service_manager().get_service("peer"))
    inside = threading.local()

    class Nested(Service):
        descriptor = "seed.INested"

        @method(FIRST_CALL_TRANSACTION, oneway=True)
        def first(self, data: object, reply: object) -> None:
            role.report("first: begins")
            role.wait("sent")  # the second call is queued on the node
            inside.first = True
            peer_proxy.call()  # BC_FREE_BUFFER (the first call's buffer) + BC_TRANSACTION
            inside.first = False
            role.report("first: its sync call to the peer returned")

        @method(FIRST_CALL_TRANSACTION + 1, oneway=True)
        def second(self, data: object, reply: object) -> None:
            role.report("second: begins", inside_first=bool(getattr(inside, "first", False)))
            role.wait("replying")  # the peer answers the first call
            time.sleep(0.5)  # its reply is on its way
            peer_proxy.note()
            role.report("second: its one-way call to the peer returned")
            role.tell("main", "second done")

    default_service_manager().add_service("nested", Nested())
    role.tell("main", "ready")
    main_tid = threading.get_native_id()
    threading.Thread(target=lambda: _summary(role, tap, main_tid, errors), daemon=True).start()
    ps.ipc().join_thread_pool()


def _summary(role: Role, tap: Tap, tid: int, errors: list[str]) -> None:
    role.wait("summary")
    role.report("the binder thread read", returns=[n for t, n in tap.returns if t == tid and n in ANSWERS])
    role.report("stray answers", count=sum(1 for e in errors if e.startswith("binder: stray")))
    role.tell("main", "summarized")


def client(role: Role) -> None:
    role.wait("start")
    ProcessState.init(role.device)
    proxy = NestedProxy(default_service_manager().get_service("nested"))
    proxy.first()
    proxy.second()
    role.report("sent first() and second(), one-way")
    role.tell("nested", "sent")
    role.wait("exit")


def seed(target: Target, out: Printer) -> None:
    sc = Scenario(target, service_manager=service_manager, peer=peer, nested=nested, client=client)
    sc.main.wait("ready")
    for name in ("peer", "nested"):
        sc.main.tell(name, "start")
        sc.main.wait("ready")
    sc.main.tell("client", "start")
    sc.main.wait("second done")
    time.sleep(1.0)  # what the binder thread reads after the calls
    sc.main.tell("nested", "summary")
    sc.main.wait("summarized")
    sc.main.tell("client", "exit")
    for name in ("nested", "peer", "service_manager"):
        sc.kill(name)
    events = sc.finish()
    out.name_pids({name: sc.pids[name] for name in ("peer", "nested", "client")})
    out.section("the client", [_event(e) for e in events if e["role"] == "client"])
    out.section("the nested service, in order", [_event(e) for e in events if e["role"] == "nested"])
    for e in events:
        if e.get("event") in ("error", "timeout"):
            out.section(f"{e['role']} failed", [str(e)])


def _event(e: dict[str, object]) -> str:
    rest = {k: v for k, v in e.items() if k not in ("role", "event")}
    return f"{e['event']}" + (f" {rest}" if rest else "")


if __name__ == "__main__":
    sys.exit(run(__doc__, seed))
