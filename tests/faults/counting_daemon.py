"""``python counting_daemon.py MOUNTPOINT [vbinder mount options]``: vbinder, plus a test-only file
that counts what the driver and the FUSE layer hold.

Tests only: the product has no such file. It adds ``sys/kernel/debug/binder/vbinder_test_counts``
(JSON, made at open) so that the fault, fuzz, load and shutdown tests can assert "no object left"
(issue "Nothing stuck, nothing lost") with numbers: the driver's procs, threads, nodes, refs,
buffers and object counts, which debugfs ``state`` and ``stats`` show too (the tests compare
those with their baseline as well), and what debugfs cannot show: the device files still open
in the daemon, their keys, waiting preads, bytes held in frames, the watchdog's watches, and the
FUSE requests (reads, writes) on device files per opening process (docs/abi-chained.md's count).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from vbinder import cli
from vbinder.driver.stats import OBJ_NAMES
from vbinder.fs import daemon
from vbinder.fs.ops import DeviceHandle
from vbinder.fs.tree import Tree

COUNTS = "sys/kernel/debug/binder/vbinder_test_counts"

_ops: list[Any] = []  # the mount's Operations, once built


class CountingOperations(daemon.Operations):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _ops.append(self)
        self.requests: dict[int, list[int]] = {}  # opener's pid -> [device reads, device writes]

    def _count(self, fh: int, i: int) -> None:
        h = self.handles.get(fh)
        if isinstance(h, DeviceHandle):
            self.requests.setdefault(h.tgid, [0, 0])[i] += 1

    async def read(self, fh: int, off: int, size: int) -> bytes:
        self._count(fh, 0)
        return await super().read(fh, off, size)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        self._count(fh, 1)
        return await super().write(fh, off, buf)


def counts(driver: Any) -> dict[str, Any]:
    """What the driver and the FUSE layer hold: everything is 0 once every client is gone."""
    procs = []
    for p in driver.procs:
        procs.append({
            "pid": p.pid, "threads": len(p.threads), "nodes": len(p.nodes), "refs": len(p.refs_by_desc),
            "buffers": p.alloc.count_allocated(), "todo": len(p.todo), "outstanding_txns": p.outstanding_txns,
            "waiting_threads": len(p.waiting_threads), "delivered_death": len(p.delivered_death),
            "transaction_stacks": sum(1 for t in p.threads.values() if t.transaction_stack is not None),
        })
    out: dict[str, Any] = {
        "procs": procs,
        "active": {name: driver.stats.active(i) for i, name in enumerate(OBJ_NAMES)},
        "dead_nodes": len(driver.dead_nodes),
    }
    if _ops:
        ops = _ops[0]
        files = [h.file for h in ops.handles.values() if isinstance(h, DeviceHandle)]
        out.update(device_files=len(files), keys=sum(len(f.keys) for f in files),
                   waiting_preads=sum(f.waiting for f in files), held_bytes=sum(f.held for f in files),
                   watches=len(ops.watchdog.watches), polling=len(ops._polling),
                   requests={str(pid): rw for pid, rw in ops.requests.items()})
        fds = ops.host.fds
        if fds is not None:  # the fd channels (docs/abi-fds.md): files held, staged, channels
            out.update(fd_files=len(fds.files.fds), fd_staged=fds.files.staged, fd_channels=len(fds.channels),
                       fd_tokens=len(fds.tokens), fd_waiting_hello=fds.waiting_hello)
    out["daemon_fds"] = len(os.listdir("/proc/self/fd"))  # (one of them reads this file)
    return out


def tree_with_counts(driver: Any, uid: int, gid: int) -> Tree:
    tree = _build_tree(driver, uid, gid)
    tree.add_generated(COUNTS, lambda: json.dumps(counts(driver)).encode() + b"\n")
    return tree


_build_tree = daemon.build_tree

if __name__ == "__main__":
    daemon.Operations = CountingOperations  # type: ignore[misc]
    daemon.build_tree = tree_with_counts
    sys.exit(cli.main(["mount", sys.argv[1], "--foreground", *sys.argv[2:]]))
