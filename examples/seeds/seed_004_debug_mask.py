#!/usr/bin/env python3
"""Seed 004: debug_mask, bit by bit: the driver's table and the lines each bit prints.

Prints the driver's ``debug_mask`` bits (3.x: one mask, binder.c's sixteen bits, the allocator's
among them: BUFFER_ALLOC 8192, PRIORITY_CAP 16384, BUFFER_ALLOC_ASYNC 32768, and the
``proc_no_lock`` parameter; 6.1: binder.c's fifteen, and binder_alloc's own mask), then sets one
bit at a time, as the seed's ``echo 8 > /sys/module/binder/parameters/debug_mask``, and runs what
that bit is about, showing the lines it prints (``cat /proc/kmsg | grep binder``):

- OPEN_CLOSE (8): binder_open, binder_mmap, close vm area, binder_flush, binder_release;
- FREE_BUFFER (2048): BC_FREE_BUFFER ... found buffer N for active/finished transaction;
- BUFFER_ALLOC_ASYNC (32768): binder_alloc_buf/binder_free_buf size N async free M;
- BUFFER_ALLOC (8192): got buffer, allocate pages, add free buffer, free pages, merge free;
- DEAD_BINDER (16): node N now dead, BC_DEAD_BINDER_DONE ... found, delete ref ... has death
  notification (the service dies: a client has a ref to each of its two nodes, with a death
  notification on the second).

On 6.1 the allocator's two bits are binder_alloc's (BUFFER_ALLOC 4, BUFFER_ALLOC_ASYNC 8), and
the lines come 10 per 5 s (the script waits where a bit's lines would be dropped).

    examples/seeds/seed_004_debug_mask.py [--kernel 3.4|6.1 | --device DEV] [--normalize]
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seedlib import Printer, Raw, Role, Scenario, Target, bc, names, reap, run  # noqa: E402

from vbinder import uapi  # noqa: E402
from vbinder.driver.log import AllocDebug, Debug  # noqa: E402
from vbinder.driver.profile import DEBUG_BITS_3_4, LINUX_6_1  # noqa: E402

COOKIE = 0x9CE308C0  # the seed's death notification cookie


GET_BINDER = 9  # the service answers this code with a binder of its own
BINDER = uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_BINDER, 0x17F, 0xB1DE, 0xB1DE)


def service(role: Role) -> None:
    r = Raw(role.device)
    assert r.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))[0] == 0
    r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
    role.tell("main", "ready")
    while True:
        acks = b""
        for name, arg in r.wr():
            if name in ("BR_INCREFS", "BR_ACQUIRE"):
                acks += bc(uapi.BC_INCREFS_DONE if name == "BR_INCREFS" else uapi.BC_ACQUIRE_DONE) + arg
            if name != "BR_TRANSACTION":
                continue
            tr = uapi.TRANSACTION_DATA.unpack(arg)
            free = bc(uapi.BC_FREE_BUFFER, tr[8], fmt="Q")
            if tr[3] & uapi.TF_ONE_WAY:
                r.wr(acks + free, 0)
            elif tr[2] == GET_BINDER:
                r.wr(acks + free + r.tx(0, 0, BINDER, offsets=(0,), reply=True), 0)
            else:
                r.wr(acks + free + r.tx(0, 0, b"done", reply=True), 0)
            acks = b""
            role.tell("main", "served")
        if acks:
            r.wr(acks, 0)


def get_binder(r: Raw) -> tuple[int, ...]:
    """Call the service for its binder: the reply (its buffer, and the ref it holds, kept)."""
    got = r.wr(bc(uapi.BC_INCREFS, 0) + bc(uapi.BC_ACQUIRE, 0) + r.tx(0, GET_BINDER))  # (a ref to handle 0 too)
    while "BR_REPLY" not in names(got):
        got += r.wr()
    return uapi.TRANSACTION_DATA.unpack(got[-1][1])


def opener(role: Role) -> None:
    role.wait("open")
    get_binder(Raw(role.device))  # open, mmap, 2 refs and a buffer; the exit closes it all


def client(role: Role) -> None:
    role.wait("open")
    r = Raw(role.device)
    reply = get_binder(r)  # refs to the service's node 1 (desc 0) and its other node (desc 1)
    r.wr(bc(uapi.BC_INCREFS, 1) + bc(uapi.BC_ACQUIRE, 1) + bc(uapi.BC_FREE_BUFFER, reply[8], fmt="Q"), 0)
    role.tell("main", "opened")
    while True:
        what = role.wait("do")["what"]
        if what == "call":
            got = r.wr(r.tx(0, 1, b"a call carrying 28 bytes....."))
            while "BR_REPLY" not in names(got):
                got += r.wr()
            r.wr(bc(uapi.BC_FREE_BUFFER, uapi.TRANSACTION_DATA.unpack(got[-1][1])[8], fmt="Q"), 0)
        elif what == "oneway":
            r.wr(r.tx(0, 2, b"a one-way call of 148 bytes".ljust(148, b"."), flags=uapi.TF_ONE_WAY))
        elif what == "death":
            r.wr(bc(uapi.BC_REQUEST_DEATH_NOTIFICATION, 1, COOKIE, fmt="IQ"), 0)
        elif what == "dead":
            got = r.wr()
            while "BR_DEAD_BINDER" not in names(got):
                got += r.wr()
            r.wr(bc(uapi.BC_DEAD_BINDER_DONE, COOKIE, fmt="Q") + bc(uapi.BC_RELEASE, 1) + bc(uapi.BC_DECREFS, 1), 0)
        elif what == "exit":
            return
        role.tell("main", "done")


def table(target: Target) -> list[str]:
    """The driver's debug_mask bits (and its parameters)."""
    if target.legacy:
        bits = [f"{1 << i:<6} {name}" for i, name in enumerate(DEBUG_BITS_3_4)]
    else:
        bits = [f"{1 << i:<6} {name}" for i, name in enumerate(LINUX_6_1.debug_bits)]
        bits += [f"{bit:<6} {name} (binder_alloc)" for name, bit in sorted(vars(AllocDebug).items(), key=_bit)
                 if name.isupper()]
    # (Debian's module holds binder_alloc's mask as alloc_debug_mask; built in, it is binder_alloc's debug_mask)
    params = sorted(p for p in os.listdir(target.params) if p != "alloc_debug_mask")
    return [*bits, f"parameters: {' '.join(params)}"]


def _bit(item: tuple[str, object]) -> int:
    return item[1] if isinstance(item[1], int) else 0


def seed(target: Target, out: Printer) -> None:
    sc = Scenario(target, service=service, opener=opener, client=client)
    sc.main.wait("ready")
    out.section("debug_mask", table(target))
    phases: list[tuple[str, list[str]]] = []

    def phase(title: str, binder: int, alloc: int, *steps: str, pause: bool = False) -> None:
        if pause and not target.legacy:
            time.sleep(5.2)  # 6.1 prints 10 binder_debug lines per 5 s
        target.log.settle()
        target.set_masks(binder, alloc)
        for step in steps:
            if step == "open":
                sc.main.tell("opener", "open")
                reap(sc.pids["opener"])
                continue
            if step == "kill":
                sc.kill("service")
                continue
            sc.main.tell("client", "do", what=step)
            sc.main.wait("done")
            if step in ("call", "oneway"):
                sc.main.wait("served")
        phases.append((title, target.log.settle(quiet=1.0)))
        target.set_masks(0, 0)

    sc.main.tell("client", "open")
    sc.main.wait("opened")
    phase("echo 8 (OPEN_CLOSE): a process opens, maps, gets 2 refs and a buffer, and exits", Debug.OPEN_CLOSE,
          AllocDebug.OPEN_CLOSE, "open")
    phase("echo 2048 (FREE_BUFFER): a call and a one-way call, freed", Debug.FREE_BUFFER, 0, "call", "oneway")
    phase("echo 32768 (BUFFER_ALLOC_ASYNC): a one-way call", 0, AllocDebug.BUFFER_ALLOC_ASYNC, "oneway")
    phase("echo 8192 (BUFFER_ALLOC): a call", 0, AllocDebug.BUFFER_ALLOC, "call")
    phase("echo 16 (DEAD_BINDER): the service dies under a death notification", Debug.DEAD_BINDER, 0,
          "death", "kill", "dead", pause=True)
    target.set_masks(7, 1)
    sc.main.tell("client", "do", what="exit")
    events = sc.finish()
    out.name_pids(sc.pids)
    for title, lines in phases:
        out.section(title, lines)
    for e in events:
        if e.get("event") in ("error", "timeout"):
            out.section(f"{e['role']} failed", [str(e)])


if __name__ == "__main__":
    sys.exit(run(__doc__, seed))
