"""6.1's lock lines: what debug_mask's SPINLOCKS bit (1 << 14) prints.

6.1 takes its three kinds of lock through helpers (binder.c, "binder_proc_lock" and the rest)
that first print, under SPINLOCKS, ``binder: _binder_inner_proc_lock: line=4885``: the helper's
name and the source line of the call (the macro passes ``__LINE__``). vbinder takes no locks: it
prints those lines where 6.1 takes and drops its locks, in 6.1's order, with 6.1's line numbers
(docs/decisions.md, "Lock lines"). A node's inner lock takes its proc's inner lock too, whose
lines (374, 396) are those of the helper's own calls.

Every call site checks the mask first (``if log.debug_mask & SPIN:``) so that the per-call path
does no work for these lines when the bit is off; the helpers here print unconditionally (through
binder_debug, rate-limited with the rest).

The helpers named after 6.1's functions print what the function prints when its work is done
under a lock vbinder does not take: e.g. :func:`thread_dec_tmpref`, :func:`free_transaction`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .log import Debug

if TYPE_CHECKING:
    from .log import Log
    from .node import Node
    from .process import Proc
    from .thread import Thread
    from .transaction import Transaction

SPIN: Final = Debug.SPINLOCKS

PROC_LOCK: Final = "_binder_proc_lock"
PROC_UNLOCK: Final = "_binder_proc_unlock"
INNER_LOCK: Final = "_binder_inner_proc_lock"
INNER_UNLOCK: Final = "_binder_inner_proc_unlock"
NODE_LOCK: Final = "_binder_node_lock"
NODE_UNLOCK: Final = "_binder_node_unlock"
NODE_INNER_LOCK: Final = "_binder_node_inner_lock"
NODE_INNER_UNLOCK: Final = "_binder_node_inner_unlock"

# The lines of the calls inside 6.1's helpers: _binder_node_inner_lock and _unlock take and drop
# the node's proc's inner lock.
_NODE_INNER_PROC_LOCK: Final = 374
_NODE_INNER_PROC_UNLOCK: Final = 396


def spin(log: Log, func: str, line: int) -> None:
    """One lock line: ``func`` (one of the names above) called from 6.1's line ``line``."""
    log.debug(SPIN, "%s: line=%d", func, line)


def inner(log: Log, lock: int, unlock: int) -> None:
    """A proc's inner lock taken at line ``lock`` and dropped at ``unlock``, nothing between."""
    log.debug(SPIN, "%s: line=%d", INNER_LOCK, lock)
    log.debug(SPIN, "%s: line=%d", INNER_UNLOCK, unlock)


def node_inner_lock(log: Log, node: Node, line: int) -> None:
    """binder_node_inner_lock: the node's lock, and its proc's inner lock while it has one."""
    log.debug(SPIN, "%s: line=%d", NODE_INNER_LOCK, line)
    if node.proc is not None:
        log.debug(SPIN, "%s: line=%d", INNER_LOCK, _NODE_INNER_PROC_LOCK)


def node_inner_unlock(log: Log, node: Node, line: int) -> None:
    """binder_node_inner_unlock."""
    log.debug(SPIN, "%s: line=%d", NODE_INNER_UNLOCK, line)
    if node.proc is not None:
        log.debug(SPIN, "%s: line=%d", INNER_UNLOCK, _NODE_INNER_PROC_UNLOCK)


def node_inner(log: Log, node: Node, lock: int, unlock: int) -> None:
    """A node's inner lock taken at ``lock`` and dropped at ``unlock``, nothing between."""
    node_inner_lock(log, node, lock)
    node_inner_unlock(log, node, unlock)


def inc_node_tmpref(log: Log, node: Node) -> None:
    """binder_inc_node_tmpref (a dead node's count is under binder_dead_nodes_lock, no line)."""
    spin(log, NODE_LOCK, 962)
    if node.proc is not None:
        inner(log, 964, 969)
    spin(log, NODE_UNLOCK, 972)


def dec_node_tmpref(log: Log, node: Node) -> None:
    """binder_dec_node_tmpref (and binder_put_node)."""
    node_inner(log, node, 985, 1003)


def proc_dec_tmpref(log: Log, proc: Proc) -> None:
    """binder_proc_dec_tmpref, its count already dropped: the proc is freed when it is dead and
    has no threads and no other tmp ref."""
    log.debug(SPIN, "%s: line=%d", INNER_LOCK, 1463)
    log.debug(SPIN, "%s: line=%d", INNER_UNLOCK,
              1467 if proc.is_dead and not proc.threads and not proc.tmp_ref else 1471)


def thread_dec_tmpref(log: Log, thread: Thread, last: bool = False) -> None:
    """binder_thread_dec_tmpref. vbinder holds no thread between calls, so a thread's tmp ref
    reaches 0 on a dead thread only at the end of its release (``last``): then it is freed, and
    its tmp ref on the proc goes (binder_free_thread; the caller dropped the count)."""
    log.debug(SPIN, "%s: line=%d", INNER_LOCK, 1439)
    if last:
        log.debug(SPIN, "%s: line=%d", INNER_UNLOCK, 1442)
        proc_dec_tmpref(log, thread.proc)
    else:
        log.debug(SPIN, "%s: line=%d", INNER_UNLOCK, 1446)


def free_transaction(log: Log, t: Transaction) -> None:
    """binder_free_transaction: the target proc's count under its inner lock, then the tmp ref
    that pinned the target thread."""
    if t.to_proc is not None:
        inner(log, 1585, 1594)
    if t.to_thread is not None:
        thread_dec_tmpref(log, t.to_thread)


def release_work_end(log: Log) -> None:
    """binder_release_work's last look at the list: empty."""
    inner(log, 4788, 4791)
