"""Nodes (a process's local objects), refs (handles to them) and their counts (6.1).

A node lives in its owner proc's ``nodes`` until it is deleted; when the owner dies while refs
remain it becomes a dead node (``proc`` None) on the driver's dead-node list. A ref is a
process's handle (``desc``) to a node, holding strong and weak counts; its 0->1 transitions take
internal references on the node, which the owner learns through BR_INCREFS/BR_ACQUIRE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .. import uapi
from ..uapi import (
    BR_ACQUIRE,
    BR_DECREFS,
    BR_INCREFS,
    BR_RELEASE,
    FLAT_BINDER_FLAG_ACCEPTS_FDS,
    FLAT_BINDER_FLAG_TXN_SECURITY_CTX,
)
from . import locks
from .fmt import U64_MASK
from .locks import INNER_UNLOCK, NODE_LOCK, NODE_UNLOCK, PROC_LOCK, PROC_UNLOCK, SPIN, spin
from .log import Debug
from .stats import Obj
from .texts_3_4 import p3
from .work import Death, Work, WorkList, WorkType, dequeue

if TYPE_CHECKING:
    from .driver import Driver
    from .process import Proc
    from .thread import Thread

U32: Final = uapi.U32
PTR_COOKIE: Final = uapi.PTR_COOKIE


class NodeWork(Work):
    """A node's ``work`` member (BINDER_WORK_NODE): tells the owner what changed in its node's
    strong and weak state (BR_INCREFS, BR_ACQUIRE, BR_RELEASE, BR_DECREFS)."""

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        super().__init__(WorkType.NODE)
        self.node = node

    def deliver(self, thread: Thread, out: bytearray, segments: list[tuple[int, bytes]]) -> bool:
        node = self.node
        proc = thread.proc
        log = proc.log
        strong = bool(node.internal_strong_refs or node.local_strong_refs)
        weak = bool(node.refs or node.local_weak_refs or node.tmp_refs or strong)
        has_strong, has_weak = node.has_strong_ref, node.has_weak_ref
        if weak and not has_weak:
            node.has_weak_ref = node.pending_weak_ref = True
            node.local_weak_refs += 1
        if strong and not has_strong:
            node.has_strong_ref = node.pending_strong_ref = True
            node.local_strong_refs += 1
        if not strong and has_strong:
            node.has_strong_ref = False
        if not weak and has_weak:
            node.has_weak_ref = False
        if not weak and not strong:
            log.debug(Debug.INTERNAL_REFS, "%d:%d node %d u%016x c%016x deleted", proc.pid, thread.pid,
                      node.debug_id, node.ptr, node.cookie)
            del proc.nodes[node.ptr]
            if log.debug_mask & SPIN:
                spin(log, INNER_UNLOCK, 4537)
                spin(log, NODE_LOCK, 4538)  # (to free it after whoever still holds it)
                spin(log, NODE_UNLOCK, 4548)
            free_node(node)
        elif log.debug_mask & SPIN:
            spin(log, INNER_UNLOCK, 4551)
        before = len(out)
        for cond, cmd, name in ((weak and not has_weak, BR_INCREFS, "BR_INCREFS"),
                                (strong and not has_strong, BR_ACQUIRE, "BR_ACQUIRE"),
                                (not strong and has_strong, BR_RELEASE, "BR_RELEASE"),
                                (not weak and has_weak, BR_DECREFS, "BR_DECREFS")):
            if cond:
                out += U32.pack(cmd) + PTR_COOKIE.pack(node.ptr, node.cookie)
                proc.stat_br(thread, cmd)
                log.debug(Debug.USER_REFS, "%d:%d %s %d u%016x c%016x", proc.pid, thread.pid, name,
                          node.debug_id, node.ptr, node.cookie)
        if len(out) == before:
            log.debug(Debug.INTERNAL_REFS, "%d:%d node %d u%016x c%016x state unchanged", proc.pid,
                      thread.pid, node.debug_id, node.ptr, node.cookie)
        return False

    def cancel(self, proc: Proc) -> None:
        pass  # the node itself goes with its proc

    def debug_print(self, out: list[str], proc: Proc | None, prefix: str, transaction_prefix: str) -> None:
        node = self.node
        if node.driver.profile.debugfs == "3.4":  # %p: NULL is "(null)"
            out.append(f"{prefix}node work {node.debug_id}: u{p3(node.ptr)} c{p3(node.cookie)}\n")
            return
        out.append(f"{prefix}node work {node.debug_id}: u{node.ptr & U64_MASK:016x} c{node.cookie & U64_MASK:016x}\n")


class Node:
    """struct binder_node."""

    __slots__ = ("driver", "debug_id", "proc", "ptr", "cookie", "work", "internal_strong_refs",
                 "local_strong_refs", "local_weak_refs", "tmp_refs", "refs", "has_strong_ref",
                 "pending_strong_ref", "has_weak_ref", "pending_weak_ref", "has_async_transaction",
                 "accept_fds", "txn_security_ctx", "async_todo")

    def __init__(self, driver: Driver, proc: Proc, ptr: int, cookie: int, flags: int) -> None:
        self.driver = driver
        self.debug_id = driver.next_id()
        self.proc: Proc | None = proc
        self.ptr = ptr
        self.cookie = cookie
        self.work = NodeWork(self)
        self.internal_strong_refs = 0
        self.local_strong_refs = 0
        self.local_weak_refs = 0
        self.tmp_refs = 0
        self.refs: dict[Ref, None] = {}  # hlist: printed newest first
        self.has_strong_ref = False
        self.pending_strong_ref = False
        self.has_weak_ref = False
        self.pending_weak_ref = False
        self.has_async_transaction = False
        self.accept_fds = bool(flags & FLAT_BINDER_FLAG_ACCEPTS_FDS)
        # (3.x had no security contexts)
        self.txn_security_ctx = bool(flags & FLAT_BINDER_FLAG_TXN_SECURITY_CTX) and driver.profile.newer_uapi
        self.async_todo = WorkList()


class Ref:
    """struct binder_ref: a handle of ``proc`` to ``node``."""

    __slots__ = ("debug_id", "proc", "node", "desc", "strong", "weak", "death")

    def __init__(self, debug_id: int, proc: Proc, node: Node, desc: int) -> None:
        self.debug_id = debug_id
        self.proc = proc
        self.node = node
        self.desc = desc
        self.strong = 0
        self.weak = 0
        self.death: Death | None = None


# -- node counts -------------------------------------------------------------------------------


def new_node(proc: Proc, ptr: int, cookie: int, flags: int, tid: int) -> Node:
    """binder_new_node/binder_init_node_ilocked: the node for ``ptr`` (tmp_refs taken)."""
    if proc.log.debug_mask & SPIN:
        locks.inner(proc.log, 796, 798)
    node = proc.nodes.get(ptr)
    if node is not None:
        node.tmp_refs += 1
        return node
    d = proc.driver
    node = Node(d, proc, ptr, cookie, flags)
    d.stats.obj_created[Obj.NODE] += 1
    node.tmp_refs += 1
    proc.nodes[ptr] = node
    d.log.debug(Debug.INTERNAL_REFS, "%d:%d node %d u%016x c%016x created",
                proc.pid, tid, node.debug_id, ptr, cookie)
    return node


def get_node(proc: Proc, ptr: int) -> Node | None:
    """binder_get_node: takes a tmp ref when found."""
    if proc.log.debug_mask & SPIN:
        locks.inner(proc.log, 725, 727)
    node = proc.nodes.get(ptr)
    if node is not None:
        node.tmp_refs += 1
    return node


def free_node(node: Node) -> None:
    node.driver.stats.obj_deleted[Obj.NODE] += 1


def inc_node(node: Node, strong: bool, internal: bool, target: Thread | None) -> int:
    """binder_inc_node_nilocked: 0, or -EINVAL for an invalid internal strong increment."""
    if strong:
        if internal:
            proc = node.proc
            if (target is None and node.internal_strong_refs == 0
                    and not (proc is not None and node is proc.context.mgr_node and node.has_strong_ref)):
                node.driver.log.err("invalid inc strong node for %d", node.debug_id)
                return -22
            node.internal_strong_refs += 1
        else:
            node.local_strong_refs += 1
        if not node.has_strong_ref and target is not None:
            dequeue(node.work)
            target.enqueue_deferred_work(node.work)
    else:
        if not internal:
            node.local_weak_refs += 1
        if not node.has_weak_ref and target is not None and not node.work.queued:
            target.todo.enqueue(node.work)
    return 0


def dec_node_nilocked(node: Node, strong: bool, internal: bool) -> bool:
    """binder_dec_node_nilocked: True when the node must be freed."""
    proc = node.proc
    if strong:
        if internal:
            node.internal_strong_refs -= 1
        else:
            node.local_strong_refs -= 1
        if node.local_strong_refs or node.internal_strong_refs:
            return False
    else:
        if not internal:
            node.local_weak_refs -= 1
        if node.local_weak_refs or node.tmp_refs or node.refs:
            return False
    if proc is not None and (node.has_strong_ref or node.has_weak_ref):
        if not node.work.queued:
            proc.todo.enqueue(node.work)
            proc.wakeup_proc()
    elif not node.refs and not node.local_strong_refs and not node.local_weak_refs and not node.tmp_refs:
        if proc is not None:
            dequeue(node.work)
            del proc.nodes[node.ptr]
            node.driver.log.debug(Debug.INTERNAL_REFS, "refless node %d deleted", node.debug_id)
        else:
            node.driver.dead_nodes.pop(node, None)
            node.driver.log.debug(Debug.INTERNAL_REFS, "dead node %d deleted", node.debug_id)
        return True
    return False


def dec_node(node: Node, strong: bool, internal: bool) -> None:
    """binder_dec_node."""
    log = node.driver.log
    if log.debug_mask & SPIN:
        locks.node_inner_lock(log, node, 930)
    free = dec_node_nilocked(node, strong, internal)
    if log.debug_mask & SPIN:
        locks.node_inner_unlock(log, node, 932)
    if free:
        free_node(node)


def dec_node_tmpref(node: Node) -> None:
    """binder_dec_node_tmpref / binder_put_node."""
    log = node.driver.log
    if log.debug_mask & SPIN:
        locks.node_inner_lock(log, node, 985)
    node.tmp_refs -= 1
    free = dec_node_nilocked(node, False, True)
    if log.debug_mask & SPIN:
        locks.node_inner_unlock(log, node, 1003)
    if free:
        free_node(node)


# -- refs --------------------------------------------------------------------------------------


def get_ref(proc: Proc, desc: int, need_strong: bool) -> Ref | None:
    """binder_get_ref_olocked."""
    ref = proc.refs_by_desc.get(desc)
    if ref is None:
        return None
    if need_strong and not ref.strong:
        proc.log.user_error("tried to use weak ref as strong ref")
        return None
    return ref


def get_ref_for_node(proc: Proc, node: Node, create: bool) -> Ref | None:
    """binder_get_ref_for_node_olocked: the smallest free desc (0 only for the manager)."""
    ref = proc.refs_by_node.get(node)
    if ref is not None or not create:
        return ref
    d = proc.driver
    d.stats.obj_created[Obj.REF] += 1
    desc = 0 if node is proc.context.mgr_node else 1
    by_desc = proc.refs_by_desc
    while desc in by_desc:
        desc += 1
    ref = Ref(d.next_id(), proc, node, desc)
    proc.refs_by_node[node] = ref
    by_desc[desc] = ref
    log = d.log
    if log.debug_mask & SPIN:
        spin(log, NODE_LOCK, 1109)
    node.refs[ref] = None
    log.debug(Debug.INTERNAL_REFS, "%d new ref %d desc %d for node %d",
              proc.pid, ref.debug_id, desc, node.debug_id)
    if log.debug_mask & SPIN:
        spin(log, NODE_UNLOCK, 1116)
    return ref


def cleanup_ref(ref: Ref) -> None:
    """binder_cleanup_ref_olocked (and binder_free_ref)."""
    proc = ref.proc
    node = ref.node
    d = proc.driver
    d.log.debug(Debug.INTERNAL_REFS, "%d delete ref %d desc %d for node %d",
                proc.pid, ref.debug_id, ref.desc, node.debug_id)
    del proc.refs_by_desc[ref.desc]
    del proc.refs_by_node[node]
    log = d.log
    if log.debug_mask & SPIN:
        locks.node_inner_lock(log, node, 1132)
    if ref.strong:
        dec_node_nilocked(node, True, True)
    node.refs.pop(ref, None)
    free = dec_node_nilocked(node, False, True)
    if log.debug_mask & SPIN:
        locks.node_inner_unlock(log, node, 1138)
    if free:
        free_node(node)
    if ref.death is not None:
        log.debug(Debug.DEAD_BINDER, "%d delete ref %d desc %d has death notification",
                  proc.pid, ref.debug_id, ref.desc)
        if log.debug_mask & SPIN:
            locks.inner(log, 527, 529)  # binder_dequeue_work
        dequeue(ref.death)
        d.stats.obj_deleted[Obj.DEATH] += 1
    d.stats.obj_deleted[Obj.REF] += 1


def inc_ref(ref: Ref, strong: bool, target: Thread | None) -> int:
    """binder_inc_ref_olocked (binder_inc_node on the first count of a kind)."""
    if strong:
        if ref.strong == 0:
            ret = _inc_node(ref.node, True, target)
            if ret:
                return ret
        ref.strong += 1
    else:
        if ref.weak == 0:
            ret = _inc_node(ref.node, False, target)
            if ret:
                return ret
        ref.weak += 1
    return 0


def _inc_node(node: Node, strong: bool, target: Thread | None) -> int:
    """binder_inc_node of an internal count."""
    log = node.driver.log
    if log.debug_mask & SPIN:
        locks.node_inner_lock(log, node, 859)
    ret = inc_node(node, strong, True, target)
    if log.debug_mask & SPIN:
        locks.node_inner_unlock(log, node, 861)
    return ret


def dec_ref(ref: Ref, strong: bool) -> bool:
    """binder_dec_ref_olocked: True when the ref was deleted."""
    if strong:
        if ref.strong == 0:
            ref.proc.log.user_error("%d invalid dec strong, ref %d desc %d s %d w %d",
                                    ref.proc.pid, ref.debug_id, ref.desc, ref.strong, ref.weak)
            return False
        ref.strong -= 1
        if ref.strong == 0:
            dec_node(ref.node, True, True)
    else:
        if ref.weak == 0:
            ref.proc.log.user_error("%d invalid dec weak, ref %d desc %d s %d w %d",
                                    ref.proc.pid, ref.debug_id, ref.desc, ref.strong, ref.weak)
            return False
        ref.weak -= 1
    if ref.strong == 0 and ref.weak == 0:
        cleanup_ref(ref)
        return True
    return False


def update_ref_for_handle(proc: Proc, desc: int, increment: bool, strong: bool) -> tuple[int, Ref | None]:
    """binder_update_ref_for_handle: (ret, ref) with the ref's data as it was left."""
    log = proc.log
    if log.debug_mask & SPIN:
        spin(log, PROC_LOCK, 1310)
    ref = get_ref(proc, desc, strong)
    if ref is None:
        if log.debug_mask & SPIN:
            spin(log, PROC_UNLOCK, 1330)
        return -22, None
    ret = 0
    if increment:
        ret = inc_ref(ref, strong, None)
    else:
        dec_ref(ref, strong)
    if log.debug_mask & SPIN:
        spin(log, PROC_UNLOCK, 1323)
    return ret, ref


def inc_ref_for_node(proc: Proc, node: Node, strong: bool, target: Thread | None) -> tuple[int, Ref | None]:
    """binder_inc_ref_for_node: (ret, ref)."""
    log = proc.log
    if log.debug_mask & SPIN:
        spin(log, PROC_LOCK, 1375)
    existing = get_ref_for_node(proc, node, False)
    if existing is None and log.debug_mask & SPIN:
        spin(log, PROC_UNLOCK, 1378)  # (to allocate the new ref)
        spin(log, PROC_LOCK, 1382)
    ref = existing or get_ref_for_node(proc, node, True)
    assert ref is not None
    ret = inc_ref(ref, strong, target)
    if ret and existing is None:
        cleanup_ref(ref)
        if log.debug_mask & SPIN:
            spin(log, PROC_UNLOCK, 1399)
        return ret, None
    if log.debug_mask & SPIN:
        spin(log, PROC_UNLOCK, 1399)
    return ret, ref
