#!/usr/bin/env python3
"""Seed 003: the mapped area's allocator: where buffers land, what async space costs, pages.

A sender makes two one-way calls and a sync call to a receiver, which reads them and frees
them. What the seed's 3.x allocator did differently from 6.1's:

- each ``struct binder_buffer`` (80 bytes on a 64-bit kernel) sat in the area before its data:
  the first buffer's data is at offset 80 of the area (6.1: 0), the next one 80 bytes after the
  end of the first;
- ``free_async_space`` (half the area) paid ``size + sizeof(struct binder_buffer)`` per one-way
  buffer (6.1: ``size``), so "binder_alloc_buf size 152 async free N" drops by 232 (6.1: 152),
  and a free gives it all back;
- pages were freed as soon as no buffer used them (6.1 keeps them on an lru), and the area's
  first page (the first header's) was taken at mmap and kept to the end ("pages 1" at release).

    examples/seeds/seed_003_allocator.py [--kernel 3.4|6.1 | --device DEV] [--normalize]
"""

from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seedlib import Printer, Raw, Role, Scenario, Target, bc, names, reap, run  # noqa: E402

from vbinder import uapi  # noqa: E402

CALLS = ((148, uapi.TF_ONE_WAY), (72, uapi.TF_ONE_WAY), (76, 0))  # data sizes and flags


def receiver(role: Role) -> None:
    r = Raw(role.device)
    assert r.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))[0] == 0
    r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
    role.tell("main", "ready")

    def receive() -> tuple[int, ...]:
        tr = _transaction(r)
        role.report("received", size=tr[6], offset=tr[8] - r.map_addr, flags=tr[3])
        return tr

    first = receive()
    role.wait("free the first")  # both one-way buffers are allocated: the second waits on the node
    r.wr(bc(uapi.BC_FREE_BUFFER, first[8], fmt="Q"), 0)
    second = receive()
    role.tell("main", "second received")
    call = receive()
    r.wr(bc(uapi.BC_FREE_BUFFER, call[8], fmt="Q") + r.tx(0, 0, reply=True), 0)
    role.wait("free the second")
    r.wr(bc(uapi.BC_FREE_BUFFER, second[8], fmt="Q"), 0)
    role.tell("main", "freed")
    role.wait("exit")


def _transaction(r: Raw) -> tuple[int, ...]:
    while True:
        for name, arg in r.wr():
            if name == "BR_TRANSACTION":
                return uapi.TRANSACTION_DATA.unpack(arg)


def sender(role: Role) -> None:
    role.wait("open")
    r = Raw(role.device)
    role.tell("main", "opened")
    role.wait("send")
    for size, flags in CALLS[:2]:
        role.report("sent", size=size, returns=names(r.wr(r.tx(0, 1, b"s" * size, flags=flags))))
    role.tell("main", "sent")
    role.wait("call")
    size, flags = CALLS[2]
    got = r.wr(r.tx(0, 1, b"c" * size, flags=flags))
    while "BR_REPLY" not in names(got):
        got += r.wr()
    role.report("called", size=size, returns=names(got))
    r.wr(bc(uapi.BC_FREE_BUFFER, uapi.TRANSACTION_DATA.unpack(got[-1][1])[8], fmt="Q"), 0)
    role.tell("main", "called")
    role.wait("exit")


def free_async_space(stats: str, pid: int) -> str:
    """The receiver's "free async space" and "pages" lines of the stats file."""
    part = stats.split(f"proc {pid}\n", 1)[1].split("\nproc ", 1)[0]
    return "; ".join(line.strip() for line in part.splitlines() if re.match(r"\s+(free async space|pages)", line))


def seed(target: Target, out: Printer) -> None:
    sc = Scenario(target, receiver=receiver, sender=sender)
    sc.main.wait("ready")
    sc.main.tell("sender", "open")
    sc.main.wait("opened")
    receiver_pid = sc.pids["receiver"]
    spaces = [("after mmap", free_async_space(target.read("stats"), receiver_pid))]
    target.log.settle()
    target.set_masks(7, alloc=0x1 | 0x4 | 0x8)  # the allocator's USER_ERROR, BUFFER_ALLOC, BUFFER_ALLOC_ASYNC
    sc.main.tell("sender", "send")
    sc.main.wait("sent")
    spaces.append(("two one-way buffers allocated", free_async_space(target.read("stats"), receiver_pid)))
    sc.main.tell("receiver", "free the first")
    sc.main.wait("second received")
    sc.main.tell("sender", "call")
    sc.main.wait("called")
    sc.main.tell("receiver", "free the second")
    sc.main.wait("freed")
    spaces.append(("all freed", free_async_space(target.read("stats"), receiver_pid)))
    lines = target.log.settle()
    target.set_masks(0xF, alloc=0x1 | 0x2 | 0x4)  # + OPEN_CLOSE; the allocator's OPEN_CLOSE, BUFFER_ALLOC
    sc.main.tell("receiver", "exit")
    reap(receiver_pid)
    released = target.log.settle(quiet=1.0)
    target.set_masks(7, alloc=1)
    sc.main.tell("sender", "exit")
    events = sc.finish()
    out.name_pids({"receiver": receiver_pid, "sender": sc.pids["sender"]})
    out.section("the receiver: each buffer's data, at an offset in its area",
                [f"{e['event']} {e['size']} bytes at offset {e['offset']}" for e in events if e["event"] == "received"])
    out.section("the receiver's stats", [f"{when}: {line}" for when, line in spaces])
    out.section("log: the calls (the allocator's BUFFER_ALLOC and BUFFER_ALLOC_ASYNC)", lines)
    out.section("log: the receiver exits", released)
    for e in events:
        if e.get("event") in ("error", "timeout"):
            out.section(f"{e['role']} failed", [str(e)])


if __name__ == "__main__":
    sys.exit(run(__doc__, seed))
