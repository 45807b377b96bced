#!/usr/bin/env python3
"""Seed 001: a binder proc that outlives its process, then "binder_release: ... page 0 ... not freed".

A service (the victim) registers a node with the service manager, parks two looper threads and
is killed while a child it forked holds its binder fd (the seed's process leaked its fd): the
proc stays, with its threads, its node, its ref to the manager, and the node work that the
manager's dropped reference queued, until the holder exits:

- 3.4 (the seed's kernel): ``proc/<pid>`` lists ``thread N: l 22`` (ENTERED, and NEED_RETURN
  from the flush), ``ref 3: desc 0 node 1 s 1 w 1 d (null)``, ``node work 5``; the release prints
  ``binder_release: <pid>: page 0 at ... not freed`` (the page of the first buffer's header,
  taken at mmap) and ``binder_release: <pid> threads 2, nodes 1 (ref 0), refs 1, active
  transactions 0, buffers 0, pages 1``;
- 6.1: the same state in 6.1's format, and binder_deferred_release's and binder_alloc's lines.

Then another service, with 4 threads, 2 nodes the manager holds and 8 refs, is killed the usual
way: 3.4 prints the seed's ``binder_release: 1727 threads 4, nodes 2 (ref 2), refs 8, active
transactions 0, buffers 0, pages 1`` after its ``page 0 ... not freed``.

    examples/seeds/seed_001_proc_outlives_process.py [--kernel 3.4|6.1 | --device DEV] [--normalize]
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seedlib import (  # noqa: E402
    Printer,
    Raw,
    Role,
    Scenario,
    Target,
    bc,
    names,
    nanosleep_until,
    reap,
    run,
)

from vbinder import uapi  # noqa: E402

PTR, COOKIE = 0x4031B8A8, 0x4031B88C  # the seed's node 5
VICTIM_MAP = (2 << 20) - 8192  # the seed's device mapped 2040 K


def manager(role: Role) -> None:
    r = Raw(role.device)
    assert r.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))[0] == 0
    r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
    role.tell("main", "ready")
    ping = _transaction(r)  # the victim's one-way ping
    r.wr(bc(uapi.BC_FREE_BUFFER, ping[8], fmt="Q"), 0)
    add = _transaction(r)  # its "add service", with its binder
    handle = struct.unpack_from("<I", r.buffers[add[8]], 8)[0]
    # A proxy for the handle takes its own references (libbinder's), then the call is answered.
    r.wr(bc(uapi.BC_INCREFS, handle) + bc(uapi.BC_ACQUIRE, handle) + bc(uapi.BC_FREE_BUFFER, add[8], fmt="Q")
         + r.tx(0, 0, b"\0" * 4, reply=True), 0)
    role.wait("drop")  # the victim is dead: its proxy goes
    r.wr(bc(uapi.BC_RELEASE, handle) + bc(uapi.BC_DECREFS, handle), 0)
    role.tell("main", "dropped")
    # The other service registers two binders and gets seven of the manager's in the reply.
    add = _transaction(r)
    data = r.buffers[add[8]]
    handles = [struct.unpack_from("<I", data, 24 * i + 8)[0] for i in range(2)]
    objects = b"".join(uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, 0x17F, 0x7000 + 0x100 * i,
                                                    0x7000 + 0x100 * i) for i in range(7))
    r.wr(b"".join(bc(uapi.BC_INCREFS, h) + bc(uapi.BC_ACQUIRE, h) for h in handles)
         + bc(uapi.BC_FREE_BUFFER, add[8], fmt="Q")
         + r.tx(0, 0, objects, offsets=tuple(24 * i for i in range(7)), reply=True), 0)
    role.wait("exit")


def _transaction(r: Raw) -> tuple[int, ...]:
    while True:
        for name, arg in r.wr():
            if name == "BR_TRANSACTION":
                return uapi.TRANSACTION_DATA.unpack(arg)


def victim(role: Role, hold: tuple[int, int]) -> None:
    role.wait("go")
    r = Raw(role.device, map_size=VICTIM_MAP)
    r.wr(r.tx(0, 1, b"ping", flags=uapi.TF_ONE_WAY))  # debug id 2
    r.wr(bc(uapi.BC_INCREFS, 0) + bc(uapi.BC_ACQUIRE, 0), 0)  # ref 3 to the manager's node 1
    obj = uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, 0x17F, PTR, COOKIE)
    got = r.wr(r.tx(0, 3, obj, offsets=(0,)))  # transaction 4 carries node 5
    while "BR_REPLY" not in names(got):
        got += r.wr()
    acks = b""
    for name, arg in got:
        if name in ("BR_INCREFS", "BR_ACQUIRE"):
            acks += bc(uapi.BC_INCREFS_DONE if name == "BR_INCREFS" else uapi.BC_ACQUIRE_DONE) + arg
        elif name == "BR_REPLY":
            acks += bc(uapi.BC_FREE_BUFFER, uapi.TRANSACTION_DATA.unpack(arg)[8], fmt="Q")
    r.wr(acks, 0)
    holder = os.fork()
    if holder == 0:  # holds the victim's binder fd, as the seed's leaked one
        os.read(hold[0], 1)
        os._exit(0)
    tids = []

    def loop() -> None:
        tids.append(threading.get_native_id())
        r.wr(bc(uapi.BC_ENTER_LOOPER))  # (a new thread's first read returns at once)
        while True:
            r.wr()  # waits for work until the process is killed

    second = threading.Thread(target=loop, daemon=True)
    second.start()
    while not tids:
        time.sleep(0.01)
    role.report("threads", second=tids[0])
    role.tell("main", "ready", holder=holder)
    loop()


def service(role: Role) -> None:
    """A service that dies the usual way, with 4 threads, 2 nodes (a ref each) and 8 refs: the
    process of the seed's binder_release line."""
    role.wait("go")
    r = Raw(role.device, map_size=VICTIM_MAP)
    objects = b"".join(uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, 0x17F, ptr, ptr)
                       for ptr in (0x5000, 0x6000))
    got = r.wr(bc(uapi.BC_INCREFS, 0) + bc(uapi.BC_ACQUIRE, 0) + r.tx(0, 3, objects, offsets=(0, 24)))
    while "BR_REPLY" not in names(got):
        got += r.wr()
    acks = b""
    for name, arg in got:
        if name in ("BR_INCREFS", "BR_ACQUIRE"):
            acks += bc(uapi.BC_INCREFS_DONE if name == "BR_INCREFS" else uapi.BC_ACQUIRE_DONE) + arg
        elif name == "BR_REPLY":
            tr = uapi.TRANSACTION_DATA.unpack(arg)
            for i in range(7):  # a proxy for each of the manager's binders
                handle = struct.unpack_from("<I", r.buffers[tr[8]], 24 * i + 8)[0]
                acks += bc(uapi.BC_INCREFS, handle) + bc(uapi.BC_ACQUIRE, handle)
            acks += bc(uapi.BC_FREE_BUFFER, tr[8], fmt="Q")
    r.wr(acks, 0)

    def loop() -> None:
        r.wr(bc(uapi.BC_ENTER_LOOPER))
        while True:
            r.wr()

    for _ in range(3):
        threading.Thread(target=loop, daemon=True).start()
    role.tell("main", "ready")
    loop()


def seed(target: Target, out: Printer) -> None:
    hold = os.pipe()
    sc = Scenario(target, manager=manager, victim=lambda role: victim(role, hold), service=service)
    sc.main.wait("ready")
    sc.main.tell("victim", "go")
    holder = sc.main.wait("ready")["holder"]
    victim_pid = sc.pids["victim"]
    # both threads wait for work: "l 12" (ENTERED, WAITING) in either driver's proc file
    nanosleep_until(lambda: target.read(f"proc/{victim_pid}").count(": l 12") == 2)
    target.log.settle()
    target.set_masks(0xF, alloc=0x7)  # + OPEN_CLOSE; the allocator's USER_ERROR, OPEN_CLOSE, BUFFER_ALLOC
    sc.kill("victim")  # its area and threads go, its proc stays: the holder has its fd
    died = target.log.settle()
    sc.main.tell("manager", "drop")
    sc.main.wait("dropped")
    state = target.read(f"proc/{victim_pid}")
    os.write(hold[1], b"x")  # the holder exits: the proc goes at last
    reap(holder)
    nanosleep_until(lambda: not os.path.exists(os.path.join(target.debugfs, "proc", str(victim_pid))))
    released = target.log.settle(quiet=1.0)
    sc.main.tell("service", "go")  # another service, which dies the usual way
    sc.main.wait("ready")
    service_pid = sc.pids["service"]
    nanosleep_until(lambda: target.read(f"proc/{service_pid}").count(": l 12") == 4)
    target.log.settle()
    sc.kill("service")
    nanosleep_until(lambda: not os.path.exists(os.path.join(target.debugfs, "proc", str(service_pid))))
    service_died = target.log.settle(quiet=1.0)
    target.set_masks(7, alloc=1)
    sc.main.tell("manager", "exit")
    events = sc.finish()
    tids = {e["second"]: "VICTIM_T2" for e in events if e.get("event") == "threads"}
    out.name_pids({"manager": sc.pids["manager"], "victim": victim_pid, "service": service_pid}, tids)
    out.section("log: the victim is killed", died)
    out.section(f"proc/{victim_pid}: after the manager dropped its reference", state)
    out.section("log: the holder exits", released)
    out.section("log: another service (4 threads, 2 nodes, 8 refs) is killed", service_died)
    for e in events:
        if e.get("event") in ("error", "timeout"):
            out.section(f"{e['role']} failed", [str(e)])


if __name__ == "__main__":
    sys.exit(run(__doc__, seed))
