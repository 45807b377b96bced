"""6.1's debugfs files, rendered from a :class:`Driver`: ``state``, ``stats``, ``transactions``,
``transaction_log``, ``failed_transaction_log`` and ``proc/<pid>``.

Each printer follows its 6.1 function line for line (binder.c: ``print_binder_*``,
``state_show``, ``stats_show``, ``transactions_show``, ``proc_show``,
``transaction_log_show``; binder_alloc.c: ``binder_alloc_print_allocated``,
``binder_alloc_print_pages``), including what the printing itself does to what it prints:
the temporary reference taken on each node while it prints (``tr`` is one more than the node's
own count) and the rollback of a proc's or thread's header when ``print_all`` is 0 and nothing
followed it.

Pointers print with ``%pK`` as :func:`.fmt.pk` says.

With debug_mask's SPINLOCKS bit the printers print 6.1's lock lines where 6.1's take and drop
their locks (``log`` is the driver's log then, None with the bit off: one mask test per file), as
often as 6.1 runs them: :func:`_show`.

The ``proc/<pid>`` entries are ``Driver.debugfs_procs`` (binder_open creates one for the first
proc of a pid, binder_release of that proc removes it): see :func:`proc_pids`.

With the 3.4 profile the files are 3.4's (``Profile.debugfs``): the same printers with that
driver's texts (no ``context`` lines, ``thread N: l XX`` with need_return as looper bit 0x20, nodes
without ``tr``, ``d %p`` of a ref's death notification raw, NULL as ``(null)``, buffers and
transactions without extra sizes, the transaction logs' short entries, no pages lines, 3.4's BC/BR
names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..uapi import BC_STAT_NAMES, BR_STAT_NAMES  # binder.c's string tables, as 6.1 prints them
from .fmt import U64_MASK, d32, pk, pk_obj, zd
from .locks import (
    INNER_LOCK,
    INNER_UNLOCK,
    NODE_LOCK,
    NODE_UNLOCK,
    PROC_LOCK,
    PROC_UNLOCK,
    SPIN,
    dec_node_tmpref,
    inner,
    node_inner_lock,
    node_inner_unlock,
    spin,
)
from .stats import OBJ_NAMES, Stats
from .texts_3_4 import p, p3
from .work import WorkType

_BC_NAMES_3_4 = 17  # BC_TRANSACTION .. BC_DEAD_BINDER_DONE
_BR_NAMES_3_4 = 18  # BR_ERROR .. BR_FAILED_REPLY

if TYPE_CHECKING:
    from .alloc import Alloc
    from .driver import Driver
    from .log import Log
    from .node import Node, Ref
    from .process import Proc
    from .thread import Thread
    from .transaction_log import LogEntry, TransactionLog

__all__ = [
    "pk", "proc_pids", "render_all", "render_failed_transaction_log",
    "render_proc", "render_state", "render_stats", "render_transaction_log", "render_transactions",
]

# -- the print functions of binder.c ------------------------------------------------------------


def _print_thread(out: list[str], thread: Thread, print_always: bool) -> None:
    """print_binder_thread_ilocked."""
    start_pos = len(out)
    if thread.proc.profile.debugfs == "3.4":
        out.append(f"  thread {thread.pid}: l {thread.looper_state():02x}\n")
    else:
        out.append(f"  thread {thread.pid}: l {int(thread.looper):02x} need_return "
                   f"{int(thread.looper_need_return)} tr {thread.tmp_ref}\n")
    header_pos = len(out)
    proc = thread.proc
    t = thread.transaction_stack
    while t is not None:
        if t.from_ is thread:
            t.print_transaction(out, proc, "    outgoing transaction")
            t = t.from_parent
        elif t.to_thread is thread:
            t.print_transaction(out, proc, "    incoming transaction")
            t = t.to_parent
        else:
            t.print_transaction(out, proc, "    bad transaction")
            t = None
    for w in thread.todo:
        w.debug_print(out, proc, "    ", "    pending transaction")
    if not print_always and len(out) == header_pos:
        del out[start_pos:]


def _print_node(out: list[str], node: Node) -> None:
    """print_binder_node_nilocked, with the printer's temporary reference counted in ``tr``."""
    refs = node.refs
    count = len(refs)
    legacy = node.driver.profile.debugfs == "3.4"
    if legacy:
        line = (f"  node {node.debug_id}: u{p3(node.ptr)} c{p3(node.cookie)} hs {int(node.has_strong_ref)}"
                f" hw {int(node.has_weak_ref)} ls {node.local_strong_refs} lw {node.local_weak_refs}"
                f" is {node.internal_strong_refs} iw {count}")
    else:
        line = (f"  node {node.debug_id}: u{node.ptr & U64_MASK:016x} c{node.cookie & U64_MASK:016x}"
                f" hs {int(node.has_strong_ref)} hw {int(node.has_weak_ref)} ls {node.local_strong_refs}"
                f" lw {node.local_weak_refs} is {node.internal_strong_refs} iw {count} tr {node.tmp_refs + 1}")
    if count:
        # node->refs is an hlist: newest first.
        line += " proc" + "".join(f" {ref.proc.pid}" for ref in reversed(refs))
    out.append(line + "\n")
    if node.proc is not None or legacy:
        for w in node.async_todo:
            w.debug_print(out, node.proc, "    ", "    pending async transaction")


def _print_ref(out: list[str], ref: Ref, log: Log | None) -> None:
    """print_binder_ref_olocked (under the ref's node's lock)."""
    node = ref.node
    if log is not None:
        spin(log, NODE_LOCK, 6111)
    death = pk_obj(ref.death)
    if node.driver.profile.debugfs == "3.4":
        death = p(death)
    out.append(f"  ref {ref.debug_id}: desc {ref.desc} {'' if node.proc is not None else 'dead '}node"
               f" {node.debug_id} s {ref.strong} w {ref.weak} d {death}\n")
    if log is not None:
        spin(log, NODE_UNLOCK, 6117)


def _print_allocated(out: list[str], alloc: Alloc) -> None:
    """binder_alloc_print_allocated (print_binder_buffer for each allocated buffer, by address)."""
    legacy = alloc.log.profile.debugfs == "3.4"
    for buffer in alloc.allocated_buffers():
        state = "active" if buffer.transaction is not None else "delivered"
        if legacy:
            out.append(f"  buffer {buffer.debug_id}: {p3(buffer.user_data)} size {zd(buffer.data_size)}:"
                       f"{zd(buffer.offsets_size)} {state}\n")
        else:
            out.append(f"  buffer {buffer.debug_id}: {pk(buffer.user_data)} size {zd(buffer.data_size)}:"
                       f"{zd(buffer.offsets_size)}:{zd(buffer.extra_buffers_size)} {state}\n")


def _print_pages(out: list[str], alloc: Alloc) -> None:
    """binder_alloc_print_pages."""
    active, lru, free = alloc.page_counts()
    out.append(f"  pages: {active}:{lru}:{free}\n")
    out.append(f"  pages high watermark: {alloc.pages_high}\n")


def _print_proc(out: list[str], proc: Proc, print_all: bool, log: Log | None) -> None:
    """print_binder_proc. Its locks: the proc's inner lock over the threads and nodes, dropped
    around each node printed (which holds a tmp ref on the node meanwhile, dropped when the next one
    is printed: binder_put_node), the proc lock over the refs, the inner lock over the todo."""
    start_pos = len(out)
    out.append(f"proc {proc.pid}\n")
    if proc.profile.debugfs != "3.4":
        out.append(f"context {proc.context.name}\n")
    header_pos = len(out)
    if log is not None:
        spin(log, INNER_LOCK, 6133)
    for thread in sorted(proc.threads.values(), key=_by_pid):
        _print_thread(out, thread, print_all)
    last_node: Node | None = None
    for node in sorted(proc.nodes.values(), key=_by_ptr):
        if not print_all and not node.has_async_transaction:
            continue
        if log is not None:
            spin(log, INNER_UNLOCK, 6151)
            if last_node is not None:
                dec_node_tmpref(log, last_node)
            node_inner_lock(log, node, 6154)
        _print_node(out, node)
        if log is not None:
            node_inner_unlock(log, node, 6156)
            spin(log, INNER_LOCK, 6158)
        last_node = node
    if log is not None:
        spin(log, INNER_UNLOCK, 6160)
        if last_node is not None:
            dec_node_tmpref(log, last_node)
    if print_all:
        if log is not None:
            spin(log, PROC_LOCK, 6165)
        for ref in sorted(proc.refs_by_desc.values(), key=_by_desc):
            _print_ref(out, ref, log)
        if log is not None:
            spin(log, PROC_UNLOCK, 6172)
    _print_allocated(out, proc.alloc)
    for w in proc.todo:
        w.debug_print(out, proc, "  ", "  pending transaction")
    if proc.delivered_death:
        out.append("  has delivered dead binder\n")
    if log is not None:
        inner(log, 6175, 6183)
    if not print_all and len(out) == header_pos:
        del out[start_pos:]


def _by_pid(thread: Thread) -> int:
    return thread.pid


def _by_ptr(node: Node) -> int:
    return node.ptr


def _by_desc(ref: Ref) -> int:
    return ref.desc


def _print_stats(out: list[str], prefix: str, stats: Stats, legacy: bool = False) -> None:
    """print_binder_stats (3.4's string tables ended at BC_DEAD_BINDER_DONE and BR_FAILED_REPLY)."""
    bc_names = BC_STAT_NAMES[:_BC_NAMES_3_4] if legacy else BC_STAT_NAMES
    br_names = BR_STAT_NAMES[:_BR_NAMES_3_4] if legacy else BR_STAT_NAMES
    for name, n in zip(bc_names, stats.bc, strict=False):
        if n:
            out.append(f"{prefix}{name}: {n}\n")
    for name, n in zip(br_names, stats.br, strict=False):
        if n:
            out.append(f"{prefix}{name}: {n}\n")
    for name, created, deleted in zip(OBJ_NAMES, stats.obj_created, stats.obj_deleted, strict=False):
        if created or deleted:
            out.append(f"{prefix}{name}: active {created - deleted} total {created}\n")


def _print_proc_stats(out: list[str], proc: Proc, log: Log | None) -> None:
    """print_binder_proc_stats: the threads and nodes counted under the proc's inner lock, the
    refs under its proc lock, the todo under its inner lock."""
    alloc = proc.alloc
    legacy = proc.profile.debugfs == "3.4"
    out.append(f"proc {proc.pid}\n")
    if not legacy:
        out.append(f"context {proc.context.name}\n")
    out.append(f"  threads: {len(proc.threads)}\n")
    out.append(f"  requested threads: {d32(proc.requested_threads)}+{d32(proc.requested_threads_started)}"
               f"/{d32(proc.max_threads)}\n"
               f"  ready threads {len(proc.waiting_threads)}\n"
               f"  free async space {zd(alloc.get_free_async_space())}\n")
    if log is not None:
        inner(log, 6299, 6316)
    out.append(f"  nodes: {len(proc.nodes)}\n")
    if log is not None:
        spin(log, PROC_LOCK, 6321)
        spin(log, PROC_UNLOCK, 6329)
    strong = weak = 0
    for ref in proc.refs_by_desc.values():
        strong += ref.strong
        weak += ref.weak
    out.append(f"  refs: {len(proc.refs_by_desc)} s {strong} w {weak}\n")
    out.append(f"  buffers: {alloc.count_allocated()}\n")
    if not legacy:
        _print_pages(out, alloc)
    if log is not None:
        inner(log, 6338, 6343)
    pending = sum(1 for w in proc.todo if w.type == WorkType.TRANSACTION)
    out.append(f"  pending transactions: {pending}\n")
    _print_stats(out, "  ", proc.stats, legacy)


def _print_log_entry_3_4(out: list[str], e: LogEntry | None) -> None:
    """3.4's print_binder_transaction_log_entry."""
    if e is None:
        return
    call_type = "reply" if e.call_type == 2 else ("async" if e.call_type == 1 else "call ")
    out.append(f"{d32(e.debug_id)}: {call_type} from {d32(e.from_proc)}:{d32(e.from_thread)}"
               f" to {d32(e.to_proc)}:{d32(e.to_thread)} node {d32(e.to_node)} handle {d32(e.target_handle)}"
               f" size {d32(e.data_size)}:{d32(e.offsets_size)}\n")


def _print_log_entry(out: list[str], e: LogEntry | None) -> None:
    """print_binder_transaction_log_entry: " (incomplete)" while debug_id_done is 0."""
    if e is None:  # a slot never written: the kernel's zeroed static entry
        out.append("0: call  from 0:0 to 0:0 context  node 0 handle 0 size 0:0 ret 0/0 l=0 (incomplete)\n")
        return
    call_type = "reply" if e.call_type == 2 else ("async" if e.call_type == 1 else "call ")
    out.append(f"{d32(e.debug_id)}: {call_type} from {d32(e.from_proc)}:{d32(e.from_thread)}"
               f" to {d32(e.to_proc)}:{d32(e.to_thread)} context {e.context_name[:255]} node {d32(e.to_node)}"
               f" handle {d32(e.target_handle)} size {d32(e.data_size)}:{d32(e.offsets_size)}"
               f" ret {d32(e.return_error)}/{d32(e.return_error_param)} l={d32(e.return_error_line)}"
               f"{'' if e.debug_id_done else ' (incomplete)'}\n")


# -- the files ----------------------------------------------------------------------------------


PAGE_SIZE: Final = 4096


def _show(driver: Driver, show: Callable[[list[str], Log | None], None]) -> str:
    """seq_read of a debugfs file: ``show`` prints the file into a list of strings.

    With the SPINLOCKS bit, ``show`` gets the log and prints its lock lines, as often as 6.1 runs
    it: seq_read first gives it a page, and while its text does not fit (a NUL included: 4096
    bytes do not fit a page) frees that buffer and runs it again in one twice as large.
    (Not modelled: in the transactions file, a thread's or proc's header that is the write to
    overflow leaves the count at the header's end, so 6.1 rolls that thread or proc back with what
    followed it, and seq_read, seeing no overflow, shows the file without it.)
    """
    out: list[str] = []
    log = driver.log
    if not log.debug_mask & SPIN:
        show(out, None)
        return "".join(out)
    size = PAGE_SIZE
    while True:
        show(out, log)
        text = "".join(out)
        if len(text.encode(errors="surrogateescape")) < size:
            return text
        out.clear()
        size <<= 1


def render_state(driver: Driver) -> str:
    """state_show: dead nodes (newest first), then every proc with print_all."""
    def show(out: list[str], log: Log | None) -> None:
        out.append("binder state:\n")
        if driver.dead_nodes:
            out.append("dead nodes:\n")
        # binder_dead_nodes is an hlist: the node that died last comes first. Each node printed is
        # held by a tmp ref (under binder_dead_nodes_lock, no line) until the next one is printed.
        last_node: Node | None = None
        for node in reversed(driver.dead_nodes):
            if log is not None:
                if last_node is not None:
                    dec_node_tmpref(log, last_node)
                spin(log, NODE_LOCK, 6370)
            _print_node(out, node)
            if log is not None:
                spin(log, NODE_UNLOCK, 6372)
            last_node = node
        if log is not None and last_node is not None:
            dec_node_tmpref(log, last_node)
        for proc in driver.procs:
            _print_proc(out, proc, True, log)
    return _show(driver, show)


def render_stats(driver: Driver) -> str:
    """stats_show: the global counters, then each proc's."""
    def show(out: list[str], log: Log | None) -> None:
        out.append("binder stats:\n")
        _print_stats(out, "", driver.stats, driver.profile.debugfs == "3.4")
        for proc in driver.procs:
            _print_proc_stats(out, proc, log)
    return _show(driver, show)


def render_transactions(driver: Driver) -> str:
    """transactions_show: every proc without print_all (empty threads and procs left out)."""
    def show(out: list[str], log: Log | None) -> None:
        out.append("binder transactions:\n")
        for proc in driver.procs:
            _print_proc(out, proc, False, log)
    return _show(driver, show)


def render_proc(driver: Driver, pid: int) -> str:
    """proc_show: every proc of ``pid``, whatever its context, each under its own header."""
    def show(out: list[str], log: Log | None) -> None:
        for proc in driver.procs:
            if proc.pid == pid:
                out.append("binder proc state:\n")
                _print_proc(out, proc, True, log)
    return _show(driver, show)


def _render_log(log: TransactionLog, legacy: bool) -> str:
    """transaction_log_show: the entries oldest first, at most 32."""
    size = log.SIZE
    count = log.cur + 1
    cur = 0 if count < size and not log.full else count % size
    if count > size or log.full:
        count = size
    out: list[str] = []
    entries = log.entries
    print_entry = _print_log_entry_3_4 if legacy else _print_log_entry
    for i in range(count):
        print_entry(out, entries[(cur + i) % size])
    return "".join(out)


def render_transaction_log(driver: Driver) -> str:
    """The ``transaction_log`` file."""
    return _render_log(driver.transaction_log, driver.profile.debugfs == "3.4")


def render_failed_transaction_log(driver: Driver) -> str:
    """The ``failed_transaction_log`` file."""
    return _render_log(driver.failed_transaction_log, driver.profile.debugfs == "3.4")


# -- proc/<pid> ---------------------------------------------------------------------------------


def proc_pids(driver: Driver) -> list[int]:
    """The pids that have a ``proc/<pid>`` file (``Driver.debugfs_procs``), ascending."""
    return sorted(driver.debugfs_procs)


def render_all(driver: Driver) -> dict[str, str]:
    """Every file of the debugfs directory by its path below ``binder/``."""
    files = {
        "state": render_state(driver),
        "stats": render_stats(driver),
        "transactions": render_transactions(driver),
        "transaction_log": render_transaction_log(driver),
        "failed_transaction_log": render_failed_transaction_log(driver),
    }
    for pid in proc_pids(driver):
        files[f"proc/{pid}"] = render_proc(driver, pid)
    return files
