#!/usr/bin/env python3
"""Seed 000: "binder: 3057: binder_alloc_buf, no vma", then "transaction failed 29201, size 124-4".

A process crashes: its mapped area goes first (exit_mm), its binder fd only when the last
holder of the open file closes it. Here the victim (the context manager) forks a child that
holds its fd, and is killed; a client's calls to it then find a proc without an area:

- 3.4 (the seed's kernel): ``binder: V: binder_alloc_buf, no vma`` (KERN_ERR, whatever the mask)
  and ``binder: C:T transaction failed 29201, size 124-4``, and the caller reads BR_FAILED_REPLY;
- 6.1: ``binder_alloc: V: binder_alloc_buf, no vma``, the reason and the failed call's line, and
  BR_DEAD_REPLY (-ESRCH in the extended error).

    examples/seeds/seed_000_no_vma.py [--kernel 3.4|6.1 | --device DEV] [--normalize]
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seedlib import Printer, Raw, Role, Scenario, Target, bc, mm_gone, names, reap, run  # noqa: E402

from vbinder import uapi  # noqa: E402

DATA = bytes(range(124))  # the seed's call: 124 bytes of data, 4 of offsets


def victim(role: Role, hold: tuple[int, int]) -> None:
    r = Raw(role.device)
    assert r.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))[0] == 0
    r.wr(bc(uapi.BC_ENTER_LOOPER), 0)
    holder = os.fork()
    if holder == 0:  # holds the victim's binder fd, as the seed's leaked fd did
        os.read(hold[0], 1)
        os._exit(0)
    role.tell("main", "ready", holder=holder)
    time.sleep(3600)  # until killed


def client(role: Role) -> None:
    role.wait("open")
    r = Raw(role.device)
    role.tell("main", "opened")
    role.wait("call")
    seen: dict[str, object] = {}

    def call() -> None:  # from a thread other than the main one, as the seed's 4008:4104
        seen["tid"] = threading.get_native_id()
        for _ in range(2):
            seen.setdefault("returns", []).append(names(r.wr(r.tx(0, 1, DATA, offsets_size=4))))  # type: ignore[union-attr]
        if not role.target.legacy:  # (3.x had no extended errors)
            _id, cmd, param = uapi.EXTENDED_ERROR.unpack(
                r.ioctl(uapi.BINDER_GET_EXTENDED_ERROR, b"\0" * uapi.EXTENDED_ERROR.size)[1])
            seen["extended_error"] = [uapi.BR_NAMES.get(cmd, cmd), param]

    t = threading.Thread(target=call)
    t.start()
    t.join()
    role.report("client", **seen)
    role.tell("main", "called")
    role.wait("exit")


def seed(target: Target, out: Printer) -> None:
    hold = os.pipe()
    sc = Scenario(target, victim=lambda role: victim(role, hold), client=client)
    ready = sc.main.wait("ready")
    sc.main.tell("client", "open")
    sc.main.wait("opened")
    target.log.settle()
    target.set_masks(0xF, alloc=1)  # USER_ERROR, FAILED_TRANSACTION, DEAD_TRANSACTION, OPEN_CLOSE
    sc.kill("victim")  # its area goes; its file stays open in the holder
    assert mm_gone(sc.pids["victim"])
    sc.main.tell("client", "call")
    sc.main.wait("called")
    lines = target.log.settle()
    os.write(hold[1], b"x")  # the holder exits: the proc goes at last
    reap(ready["holder"])
    released = target.log.settle(quiet=1.0)
    sc.main.tell("client", "exit")
    events = sc.finish()
    tids = {e["tid"]: "C_T" for e in events if e.get("event") == "client"}
    out.name_pids({"victim": sc.pids["victim"], "client": sc.pids["client"]}, tids)
    out.section("log: the victim dies, the client calls it twice", lines)
    out.section("log: the holder exits", released)
    for e in events:
        if e.get("event") == "client":
            out.section("client", [f"returns {e['returns']}"]
                        + ([f"extended error {e['extended_error']}"] if "extended_error" in e else []))
        elif e.get("event") in ("error", "timeout"):
            out.section(f"{e['role']} failed", [str(e)])
    target.set_masks(7, alloc=1)


if __name__ == "__main__":
    sys.exit(run(__doc__, seed))
