"""Property-based tests of the core: random traffic between fake processes keeps the invariants.

Invariants (issue "The whole protocol"): node and ref counts never go negative; every sync
call is answered exactly once (BR_REPLY, BR_DEAD_REPLY, BR_FAILED_REPLY or BR_FROZEN_REPLY);
once every process is released no driver object and no buffer is left.
"""

from __future__ import annotations

import struct

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from vbinder import uapi
from vbinder.driver import BinderError, WouldBlock
from vbinder.driver.stats import OBJ_NAMES

from .harness import Client, cmd, flat_binder, flat_handle, make_driver

ANSWERS = {"BR_REPLY", "BR_DEAD_REPLY", "BR_FAILED_REPLY", "BR_FROZEN_REPLY"}


class Traffic(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.d = make_driver()
        self.next_pid = 100
        self.procs: list[Client] = []
        self.waiting: dict[int, WouldBlock] = {}  # pid -> its blocked sync call
        self.incoming: dict[int, list[tuple[int, ...]]] = {}  # pid -> sync calls it must answer
        self.answers: dict[int, int] = {}  # pid -> answers received for its one outstanding call
        mgr = self._spawn()
        assert mgr.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == 0
        mgr.write_read(cmd(uapi.BC_ENTER_LOOPER), 0)
        self._spawn()

    def _spawn(self) -> Client:
        c = Client(self.d, self.next_pid)
        self.next_pid += 1
        c.mmap()
        c.write_read(cmd(uapi.BC_ENTER_LOOPER), 0)
        self.procs.append(c)
        self.incoming[c.pid] = []
        return c

    def _handles(self, c: Client) -> list[int]:
        return sorted(c.file.proc.refs_by_desc)

    def _consume(self, c: Client, names: list[str], brs: list) -> None:  # noqa: ANN001
        """Acknowledge what a read delivered: ref requests, buffers, calls to answer."""
        out = b""
        for br in brs:
            if br.name in ("BR_INCREFS", "BR_ACQUIRE"):
                done = uapi.BC_INCREFS_DONE if br.name == "BR_INCREFS" else uapi.BC_ACQUIRE_DONE
                out += cmd(done, *uapi.PTR_COOKIE.unpack(br.payload), fmt="QQ")
            elif br.name == "BR_TRANSACTION":
                tr = br.tr
                if tr[3] & uapi.TF_ONE_WAY:
                    out += cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q")
                else:
                    self.incoming[c.pid].append(tr)
            elif br.name == "BR_REPLY":
                out += cmd(uapi.BC_FREE_BUFFER, br.tr[8], fmt="Q")
            elif br.name == "BR_DEAD_BINDER":
                out += cmd(uapi.BC_DEAD_BINDER_DONE, *struct.unpack("<Q", br.payload), fmt="Q")
            if br.name in ANSWERS:
                self.answers[c.pid] = self.answers.get(c.pid, 0) + 1
        if out:
            r = c.write_read(out, 0)
            assert r.ret == 0

    def _payload(self, c: Client, objects: list[int]) -> tuple[bytes, tuple[int, ...]]:
        data = b""
        offs = []
        handles = self._handles(c)
        for choice in objects:
            offs.append(len(data))
            if choice % 2 == 0 or not handles:
                data += flat_binder(0x1000 + 0x10 * (choice % 4), 0x1000 + 0x10 * (choice % 4))
            else:
                data += flat_handle(handles[choice % len(handles)])
        return data + b"tail", tuple(offs)

    @rule(i=st.integers(0, 10), h=st.integers(0, 3), objs=st.lists(st.integers(0, 7), max_size=3),
          oneway=st.booleans())
    def call(self, i: int, h: int, objs: list[int], oneway: bool) -> None:
        c = self.procs[i % len(self.procs)]
        if c.pid in self.waiting or self.incoming[c.pid]:
            return
        handles = [0, *self._handles(c)]
        handle = handles[h % len(handles)]
        data, offs = self._payload(c, objs)
        flags = uapi.TF_ONE_WAY if oneway else 0
        self.answers[c.pid] = 0
        try:
            r = c.write_read(c.bc_transaction(handle, 1, data, flags=flags, objects=offs), 256)
        except WouldBlock as wb:
            self.waiting[c.pid] = wb
            return
        self._consume(c, r.names, r.brs)
        if not oneway and self.answers[c.pid] == 0:
            # the call went out: wait for its answer
            try:
                r = c.write_read(b"", 256)
            except WouldBlock as wb:
                self.waiting[c.pid] = wb
                return
            self._consume(c, r.names, r.brs)
        if not oneway or any(n in ANSWERS for n in r.names):
            assert self.answers[c.pid] == 1, r.names

    @rule(i=st.integers(0, 10))
    def serve(self, i: int) -> None:
        c = self.procs[i % len(self.procs)]
        if c.pid in self.waiting:
            return
        try:
            r = c.write_read(b"", 256)
        except WouldBlock:
            # nothing to read: a new request cancels the waiting read (DESIGN.md, one request per thread)
            assert c.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0)).code == 0
            return
        self._consume(c, r.names, r.brs)

    @precondition(lambda self: any(self.incoming.values()))
    @rule(handle=st.integers(0, 3))
    def reply(self, handle: int) -> None:
        c = next(p for p in self.procs if self.incoming[p.pid])
        tr = self.incoming[c.pid].pop()
        data, offs = self._payload(c, [handle] if handle % 2 else [])
        w = cmd(uapi.BC_FREE_BUFFER, tr[8], fmt="Q") + c.bc_transaction(0, 0, data, objects=offs, reply=True)
        r = c.write_read(w, 256)
        self._consume(c, r.names, r.brs)

    @rule()
    def wake_callers(self) -> None:
        for pid, wb in list(self.waiting.items()):
            c = next(p for p in self.procs if p.pid == pid)
            try:
                r = c.finish(wb)
            except WouldBlock as again:
                self.waiting[pid] = again
                continue
            except BinderError:
                del self.waiting[pid]
                continue
            del self.waiting[pid]
            self._consume(c, r.names, r.brs)
            if not any(n in ANSWERS for n in r.names):
                try:
                    r = c.write_read(b"", 256)
                except WouldBlock as again:
                    self.waiting[pid] = again
                    continue
                self._consume(c, r.names, r.brs)
            assert self.answers[pid] == 1, r.names

    @precondition(lambda self: len(self.procs) > 2)
    @rule(i=st.integers(1, 10))
    def kill(self, i: int) -> None:
        c = self.procs.pop(1 + i % (len(self.procs) - 1))
        self.waiting.pop(c.pid, None)
        self.incoming.pop(c.pid, None)
        c.file.release()

    @precondition(lambda self: len(self.procs) < 5)
    @rule()
    def spawn(self) -> None:
        self._spawn()

    @invariant()
    def counts_never_negative(self) -> None:
        for c in self.procs:
            proc = c.file.proc
            for node in proc.nodes.values():
                assert min(node.internal_strong_refs, node.local_strong_refs, node.local_weak_refs,
                           node.tmp_refs) >= 0
            for ref in proc.refs_by_desc.values():
                assert ref.strong >= 0 and ref.weak >= 0 and (ref.strong or ref.weak)
        for node in self.d.dead_nodes:
            assert node.internal_strong_refs >= 0 and node.tmp_refs >= 0

    def teardown(self) -> None:
        for c in self.procs:
            c.file.release()
        for kind in range(len(OBJ_NAMES)):
            assert self.d.stats.active(kind) == 0, (kind.name, self.d.stats.active(kind))
        assert not self.d.dead_nodes
        assert not self.d.procs


TestTraffic = Traffic.TestCase
TestTraffic.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
