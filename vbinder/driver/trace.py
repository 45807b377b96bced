"""The driver's tracepoints: 6.1's binder events (binder_trace.h), their buffers and their text.

The core calls :meth:`Tracer.emit` where 6.1 calls ``trace_binder_*``, behind a test of one bit
of :attr:`Tracer.mask` (``if tp.mask & TP_TRANSACTION:``), so that an event nobody enabled costs
one integer test. An emitted event is a tuple (time, tid, tgid, event, args) appended to each
:class:`TraceBuffer` that records it: the top-level tracefs buffer and the instances made under
``instances/``. Nothing is formatted on the call path: a buffer's lines are made when its
``trace`` or ``trace_pipe`` is read (:func:`format_line`), with 6.1's ``TP_printk`` text, and
each event's ``format`` file is :func:`format_file`.

The "current task" of an event is the thread whose request the core is running
(:meth:`Tracer.task`), as ``current`` is in the kernel.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Callable
from typing import Final

from .errors import BinderError
from .params import kstrtoull

# -- the events ---------------------------------------------------------------------------------------

# C types of the fields: (size, signed).
_CTYPES: Final[dict[str, tuple[int, int]]] = {
    "int": (4, 1), "unsigned int": (4, 0), "unsigned long": (8, 0), "size_t": (8, 0),
    "uint32_t": (4, 0), "bool": (1, 0), "binder_uintptr_t": (8, 0), "const char *": (8, 0),
    "unsigned short": (2, 0), "unsigned char": (1, 0), "unsigned long ip": (8, 0),
}
_COMMON: Final = (("unsigned short", "common_type"), ("unsigned char", "common_flags"),
                  ("unsigned char", "common_preempt_count"), ("int", "common_pid"))
_BUFFER_FIELDS: Final = (("int", "debug_id"), ("size_t", "data_size"), ("size_t", "offsets_size"),
                         ("size_t", "extra_buffers_size"))
_BUFFER_FMT: Final = ('"transaction=%d data_size=%zd offsets_size=%zd extra_buffers_size=%zd", '
                      'REC->debug_id, REC->data_size, REC->offsets_size, REC->extra_buffers_size')
_LRU_FIELDS: Final = (("int", "proc"), ("size_t", "page_index"))
_LRU_FMT: Final = '"proc=%d page_index=%zu", REC->proc, REC->page_index'
_LOCK_FMT: Final = '"tag=%s", REC->tag'
_RET_FMT: Final = '"ret=%d", REC->ret'


def _strings_fmt(table: str) -> str:
    """The print fmt of binder_command/binder_return: the kernel expands ARRAY_SIZE in it."""
    return (f'"cmd=0x%x %s", REC->cmd, (((REC->cmd) >> 0) & ((1 << 8)-1)) < (sizeof({table}) / '
            f'sizeof(({table})[0]) + ((int)(sizeof(struct {{ int:(-!!(__builtin_types_compatible_p('
            f'typeof(({table})), typeof(&({table})[0])))); }})))) ? {table}[(((REC->cmd) >> 0) & '
            '((1 << 8)-1))] : "unknown"')


# (name, ID as the oracle's 6.1 numbered it, fields, print fmt), in binder_trace.h's order.
_SPECS: Final[tuple[tuple[str, int, tuple[tuple[str, str], ...], str], ...]] = (
    ("binder_ioctl", 1391, (("unsigned int", "cmd"), ("unsigned long", "arg")),
     '"cmd=0x%x arg=0x%lx", REC->cmd, REC->arg'),
    ("binder_lock", 1390, (("const char *", "tag"),), _LOCK_FMT),
    ("binder_locked", 1389, (("const char *", "tag"),), _LOCK_FMT),
    ("binder_unlock", 1388, (("const char *", "tag"),), _LOCK_FMT),
    ("binder_ioctl_done", 1387, (("int", "ret"),), _RET_FMT),
    ("binder_write_done", 1386, (("int", "ret"),), _RET_FMT),
    ("binder_read_done", 1385, (("int", "ret"),), _RET_FMT),
    ("binder_wait_for_work", 1384, (("bool", "proc_work"), ("bool", "transaction_stack"), ("bool", "thread_todo")),
     '"proc_work=%d transaction_stack=%d thread_todo=%d", REC->proc_work, REC->transaction_stack, '
     'REC->thread_todo'),
    ("binder_txn_latency_free", 1383,
     (("int", "debug_id"), ("int", "from_proc"), ("int", "from_thread"), ("int", "to_proc"), ("int", "to_thread"),
      ("unsigned int", "code"), ("unsigned int", "flags")),
     # 6.1 prints the code under "flags=" and the flags under "code=" (fixed in later kernels).
     '"transaction=%d from %d:%d to %d:%d flags=0x%x code=0x%x", REC->debug_id, REC->from_proc, '
     'REC->from_thread, REC->to_proc, REC->to_thread, REC->code, REC->flags'),
    ("binder_transaction", 1382,
     (("int", "debug_id"), ("int", "target_node"), ("int", "to_proc"), ("int", "to_thread"), ("int", "reply"),
      ("unsigned int", "code"), ("unsigned int", "flags")),
     '"transaction=%d dest_node=%d dest_proc=%d dest_thread=%d reply=%d flags=0x%x code=0x%x", '
     'REC->debug_id, REC->target_node, REC->to_proc, REC->to_thread, REC->reply, REC->flags, REC->code'),
    ("binder_transaction_received", 1381, (("int", "debug_id"),), '"transaction=%d", REC->debug_id'),
    ("binder_transaction_node_to_ref", 1380,
     (("int", "debug_id"), ("int", "node_debug_id"), ("binder_uintptr_t", "node_ptr"), ("int", "ref_debug_id"),
      ("uint32_t", "ref_desc")),
     '"transaction=%d node=%d src_ptr=0x%016llx ==> dest_ref=%d dest_desc=%d", REC->debug_id, '
     'REC->node_debug_id, (u64)REC->node_ptr, REC->ref_debug_id, REC->ref_desc'),
    ("binder_transaction_ref_to_node", 1379,
     (("int", "debug_id"), ("int", "ref_debug_id"), ("uint32_t", "ref_desc"), ("int", "node_debug_id"),
      ("binder_uintptr_t", "node_ptr")),
     '"transaction=%d node=%d src_ref=%d src_desc=%d ==> dest_ptr=0x%016llx", REC->debug_id, '
     'REC->node_debug_id, REC->ref_debug_id, REC->ref_desc, (u64)REC->node_ptr'),
    ("binder_transaction_ref_to_ref", 1378,
     (("int", "debug_id"), ("int", "node_debug_id"), ("int", "src_ref_debug_id"), ("uint32_t", "src_ref_desc"),
      ("int", "dest_ref_debug_id"), ("uint32_t", "dest_ref_desc")),
     '"transaction=%d node=%d src_ref=%d src_desc=%d ==> dest_ref=%d dest_desc=%d", REC->debug_id, '
     'REC->node_debug_id, REC->src_ref_debug_id, REC->src_ref_desc, REC->dest_ref_debug_id, REC->dest_ref_desc'),
    ("binder_transaction_fd_send", 1377, (("int", "debug_id"), ("int", "fd"), ("size_t", "offset")),
     '"transaction=%d src_fd=%d offset=%zu", REC->debug_id, REC->fd, REC->offset'),
    ("binder_transaction_fd_recv", 1376, (("int", "debug_id"), ("int", "fd"), ("size_t", "offset")),
     '"transaction=%d dest_fd=%d offset=%zu", REC->debug_id, REC->fd, REC->offset'),
    ("binder_transaction_alloc_buf", 1375, _BUFFER_FIELDS, _BUFFER_FMT),
    ("binder_transaction_buffer_release", 1374, _BUFFER_FIELDS, _BUFFER_FMT),
    ("binder_transaction_failed_buffer_release", 1373, _BUFFER_FIELDS, _BUFFER_FMT),
    ("binder_transaction_update_buffer_release", 1372, _BUFFER_FIELDS, _BUFFER_FMT),
    ("binder_update_page_range", 1371,
     (("int", "proc"), ("bool", "allocate"), ("size_t", "offset"), ("size_t", "size")),
     '"proc=%d allocate=%d offset=%zu size=%zu", REC->proc, REC->allocate, REC->offset, REC->size'),
    ("binder_alloc_lru_start", 1370, _LRU_FIELDS, _LRU_FMT),
    ("binder_alloc_lru_end", 1369, _LRU_FIELDS, _LRU_FMT),
    ("binder_free_lru_start", 1368, _LRU_FIELDS, _LRU_FMT),
    ("binder_free_lru_end", 1367, _LRU_FIELDS, _LRU_FMT),
    ("binder_alloc_page_start", 1366, _LRU_FIELDS, _LRU_FMT),
    ("binder_alloc_page_end", 1365, _LRU_FIELDS, _LRU_FMT),
    ("binder_unmap_user_start", 1364, _LRU_FIELDS, _LRU_FMT),
    ("binder_unmap_user_end", 1363, _LRU_FIELDS, _LRU_FMT),
    ("binder_unmap_kernel_start", 1362, _LRU_FIELDS, _LRU_FMT),
    ("binder_unmap_kernel_end", 1361, _LRU_FIELDS, _LRU_FMT),
    ("binder_command", 1360, (("uint32_t", "cmd"),), _strings_fmt("binder_command_strings")),
    ("binder_return", 1359, (("uint32_t", "cmd"),), _strings_fmt("binder_return_strings")),
)

# The event numbers the core passes to emit (indices into EVENTS), and their bits in a mask.
TP_IOCTL: Final = 0
TP_IOCTL_DONE: Final = 4
TP_WRITE_DONE: Final = 5
TP_READ_DONE: Final = 6
TP_WAIT_FOR_WORK: Final = 7
TP_TXN_LATENCY_FREE: Final = 8
TP_TRANSACTION: Final = 9
TP_TRANSACTION_RECEIVED: Final = 10
TP_NODE_TO_REF: Final = 11
TP_REF_TO_NODE: Final = 12
TP_REF_TO_REF: Final = 13
TP_FD_SEND: Final = 14
TP_FD_RECV: Final = 15
TP_ALLOC_BUF: Final = 16
TP_BUFFER_RELEASE: Final = 17
TP_FAILED_BUFFER_RELEASE: Final = 18
TP_UPDATE_BUFFER_RELEASE: Final = 19
TP_UPDATE_PAGE_RANGE: Final = 20
TP_ALLOC_LRU_START: Final = 21
TP_ALLOC_LRU_END: Final = 22
TP_FREE_LRU_START: Final = 23
TP_FREE_LRU_END: Final = 24
TP_ALLOC_PAGE_START: Final = 25
TP_ALLOC_PAGE_END: Final = 26
TP_COMMAND: Final = 31
TP_RETURN: Final = 32
TP_PRINT: Final = 33  # ftrace's print event (trace_marker), not a binder event

BINDER_EVENTS: Final = len(_SPECS)
PRINT_ID: Final = 5  # ftrace/print's ID on 6.1

# Bits of Tracer.mask: ``1 << TP_...``. The core tests these before building an event's arguments.
M_IOCTL: Final = 1 << TP_IOCTL
M_IOCTL_DONE: Final = 1 << TP_IOCTL_DONE
M_WRITE_DONE: Final = 1 << TP_WRITE_DONE
M_READ_DONE: Final = 1 << TP_READ_DONE
M_WAIT_FOR_WORK: Final = 1 << TP_WAIT_FOR_WORK
M_TXN_LATENCY_FREE: Final = 1 << TP_TXN_LATENCY_FREE
M_TRANSACTION: Final = 1 << TP_TRANSACTION
M_TRANSACTION_RECEIVED: Final = 1 << TP_TRANSACTION_RECEIVED
M_NODE_TO_REF: Final = 1 << TP_NODE_TO_REF
M_REF_TO_NODE: Final = 1 << TP_REF_TO_NODE
M_REF_TO_REF: Final = 1 << TP_REF_TO_REF
M_FD_SEND: Final = 1 << TP_FD_SEND
M_FD_RECV: Final = 1 << TP_FD_RECV
M_ALLOC_BUF: Final = 1 << TP_ALLOC_BUF
M_BUFFER_RELEASE: Final = 1 << TP_BUFFER_RELEASE
M_FAILED_BUFFER_RELEASE: Final = 1 << TP_FAILED_BUFFER_RELEASE
M_UPDATE_PAGE_RANGE: Final = 1 << TP_UPDATE_PAGE_RANGE
M_PAGES: Final = ((1 << TP_ALLOC_LRU_START) | (1 << TP_ALLOC_LRU_END) | (1 << TP_FREE_LRU_START)
                  | (1 << TP_FREE_LRU_END) | (1 << TP_ALLOC_PAGE_START) | (1 << TP_ALLOC_PAGE_END))
M_COMMAND: Final = 1 << TP_COMMAND
M_RETURN: Final = 1 << TP_RETURN
M_PRINT: Final = 1 << TP_PRINT
# Where the client's transaction names go: the buffers that record binder_transaction.
M_NAMES: Final = M_TRANSACTION


class Field:
    """One field of an event's record, as its format file describes it."""

    __slots__ = ("ctype", "name", "offset", "size", "signed")

    def __init__(self, ctype: str, name: str, offset: int, size: int, signed: int) -> None:
        self.ctype = ctype
        self.name = name
        self.offset = offset
        self.size = size
        self.signed = signed


def _layout(fields: tuple[tuple[str, str], ...]) -> tuple[list[Field], int]:
    """The fields at their C struct offsets after the common header, and the record's size."""
    out: list[Field] = []
    offset = 0
    for ctype, name in (*_COMMON, *fields):
        size, signed = _CTYPES[ctype]
        offset = (offset + size - 1) // size * size
        out.append(Field(ctype, name, offset, size, signed))
        offset += size
    align = max(f.size for f in out)
    return out, (offset + align - 1) // align * align


_CONV: Final = re.compile(r"%(0?\d*)(?:ll|l|z|h)?([dux%s])")


class Event:
    """One tracepoint: its name, ID, record layout, print fmt and how a line prints its arguments."""

    __slots__ = ("name", "id", "fields", "size", "print_fmt", "pyfmt", "conv", "names", "strings")

    def __init__(self, name: str, id_: int, fields: tuple[tuple[str, str], ...], print_fmt: str) -> None:
        self.name = name
        self.id = id_
        self.fields, self.size = _layout(fields)
        self.print_fmt = print_fmt
        quoted = print_fmt[1:print_fmt.index('"', 1)]
        # Python's % knows no length modifiers; each conversion's field gives size and sign.
        self.pyfmt = _CONV.sub(lambda m: f"%{m.group(1)}{'d' if m.group(2) == 'u' else m.group(2)}", quoted)
        self.conv = [m.group(2) for m in _CONV.finditer(quoted) if m.group(2) != "%"]
        order = re.findall(r"REC->(\w+)", print_fmt[print_fmt.index('"', 1):])
        names = [f.name for f in self.fields[len(_COMMON):]]
        # The order of the arguments in the line (binder_command/return print REC->cmd and its name).
        self.strings = "strings" in print_fmt
        self.names = [names.index(n) for n in dict.fromkeys(order)] if not self.strings else [0, 0]

    def text(self, args: tuple[object, ...]) -> str:
        """The event's part of a line (after ``name: ``), as TP_printk prints it."""
        if self.strings:  # binder_command, binder_return: the code and its name
            cmd = int(args[0])  # type: ignore[call-overload]
            return f"cmd=0x{cmd & 0xFFFFFFFF:x} {_cmd_name(self.name, cmd)}"
        values: list[object] = []
        for n, i in enumerate(self.names):
            v = args[i]
            if type(v) is bool or (type(v) is int and 0 <= v < 0x8000_0000):
                values.append(v)  # prints the same whatever the field's size and sign
            else:
                values.append(self._exact(n, i, v))
        return self.pyfmt % tuple(values)

    def _exact(self, n: int, i: int, v: object) -> int:
        """A value as the field holds it and its conversion prints it (%d of an unsigned field
        prints it signed, as printf does; %x of a negative one its two's complement)."""
        f = self.fields[len(_COMMON) + i]
        x: int = int(v) & ((1 << (8 * f.size)) - 1)  # type: ignore[call-overload]
        if self.conv[n] == "d" and x >> (8 * f.size - 1):
            x -= 1 << (8 * f.size)
        return x


_COMMAND_STRINGS: Final = ("BC_TRANSACTION", "BC_REPLY", "BC_ACQUIRE_RESULT", "BC_FREE_BUFFER", "BC_INCREFS",
                           "BC_ACQUIRE", "BC_RELEASE", "BC_DECREFS", "BC_INCREFS_DONE", "BC_ACQUIRE_DONE",
                           "BC_ATTEMPT_ACQUIRE", "BC_REGISTER_LOOPER", "BC_ENTER_LOOPER", "BC_EXIT_LOOPER",
                           "BC_REQUEST_DEATH_NOTIFICATION", "BC_CLEAR_DEATH_NOTIFICATION",
                           "BC_DEAD_BINDER_DONE", "BC_TRANSACTION_SG", "BC_REPLY_SG")
_RETURN_STRINGS: Final = ("BR_ERROR", "BR_OK", "BR_TRANSACTION", "BR_REPLY", "BR_ACQUIRE_RESULT", "BR_DEAD_REPLY",
                          "BR_TRANSACTION_COMPLETE", "BR_INCREFS", "BR_ACQUIRE", "BR_RELEASE", "BR_DECREFS",
                          "BR_ATTEMPT_ACQUIRE", "BR_NOOP", "BR_SPAWN_LOOPER", "BR_FINISHED", "BR_DEAD_BINDER",
                          "BR_CLEAR_DEATH_NOTIFICATION_DONE", "BR_FAILED_REPLY", "BR_FROZEN_REPLY",
                          "BR_ONEWAY_SPAM_SUSPECT")


def _cmd_name(event: str, cmd: int) -> str:
    """binder_command_strings / binder_return_strings by _IOC_NR, as the print fmt indexes them."""
    table = _COMMAND_STRINGS if event == "binder_command" else _RETURN_STRINGS
    nr = cmd & 0xFF
    return table[nr] if nr < len(table) else "unknown"


_HEADER_BYTES: Final = 8  # a ring buffer event's header and time delta, as ftrace accounts them
EVENTS: Final[list[Event]] = [Event(*spec) for spec in _SPECS]
_SIZES: Final[list[int]] = [_HEADER_BYTES + e.size for e in EVENTS]
EVENT_NAMES: Final[dict[str, int]] = {e.name: i for i, e in enumerate(EVENTS)}
ALL_BINDER: Final = (1 << BINDER_EVENTS) - 1


def format_file(i: int) -> str:
    """``events/binder/<event>/format``, as 6.1 prints it."""
    e = EVENTS[i]
    lines = [f"name: {e.name}", f"ID: {e.id}", "format:"]
    for n, f in enumerate(e.fields):
        lines.append(f"\tfield:{f.ctype} {f.name};\toffset:{f.offset};\tsize:{f.size};\tsigned:{f.signed};")
        if n == len(_COMMON) - 1:
            lines.append("")
    lines.append("")
    lines.append(f"print fmt: {e.print_fmt}")
    return "\n".join(lines) + "\n"


PRINT_FORMAT: Final = """name: print
ID: 5
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:0;

print fmt: "%ps: %s", (void *)REC->ip, REC->buf
"""

# -- buffers ------------------------------------------------------------------------------------------

# A record: (time in seconds on the driver's clock, tid, tgid, event number, arguments).
Record = tuple[float, int, int, int, tuple[object, ...]]
DEFAULT_BUFFER_KB: Final = 1408  # 6.1's default per-CPU buffer (buffer_size_kb once expanded)


def record_bytes(rec: Record) -> int:
    """What a record takes in a buffer: its event's struct, or a print's text, and a header."""
    ev = rec[3]
    if ev == TP_PRINT:
        return _HEADER_BYTES + 16 + len(str(rec[4][0])) + 1
    return _SIZES[ev]


class TraceBuffer:
    """A trace array (the top-level one, or an instance): its enabled events, switch and ring.

    Records older than the buffer's size in bytes go first, as ftrace's overwrite mode drops
    them. Records are numbered (the first in the ring is ``next_seq - len(ring)``), so that each
    ``trace_pipe`` reader follows the ring from where it is (several readers each see every line,
    as ``proc/kmsg`` readers do), and what a pipe reader has read no longer shows in ``trace`` (a
    consuming read, as in ftrace). A reader that waits arms a one-shot waker (:meth:`on_next`).
    """

    def __init__(self, tracer: Tracer, name: str, cpus: int) -> None:
        self.tracer = tracer
        self.name = name
        self.cpus = cpus
        self.events = 0  # enabled events (bits 1 << TP_*); print events are always taken
        self.on = True  # tracing_on
        self.record_tgid = False  # options/record-tgid
        self.buffer_kb = DEFAULT_BUFFER_KB
        self.capacity = DEFAULT_BUFFER_KB * 1024 * cpus  # bytes
        self.ring: deque[Record] = deque()
        self.sizes: deque[int] = deque()  # each record's bytes
        self.used = 0
        self.next_seq = 0
        self.consumed = 0  # records before this were read through trace_pipe
        self.written = 0  # entries-written: every record added since the last clear
        self.wakers: list[Callable[[], None]] = []

    def recording(self) -> int:
        """The events this buffer takes now: none while tracing_on is 0."""
        return self.events | M_PRINT if self.on else 0

    def set_events(self, events: int) -> None:
        self.events = events & ALL_BINDER
        self.tracer.update()

    def set_on(self, on: bool) -> None:
        self.on = on
        self.tracer.update()

    def set_buffer_kb(self, kb: int) -> None:
        self.buffer_kb = kb
        self.capacity = kb * 1024 * self.cpus
        self._trim()

    def add(self, rec: Record, size: int) -> None:
        self.ring.append(rec)
        self.sizes.append(size)
        self.next_seq += 1
        self.written += 1
        self.used += size
        if self.used > self.capacity:
            self._trim()
        if self.wakers:
            wakers, self.wakers = self.wakers, []
            for wake in wakers:
                wake()

    def on_next(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` once, at the next record."""
        self.wakers.append(wake)

    def _trim(self) -> None:
        while self.used > self.capacity and self.ring:
            self.ring.popleft()
            self.used -= self.sizes.popleft()

    def clear(self) -> None:
        """An O_TRUNC open of ``trace`` (``echo > trace``): the buffer is emptied."""
        self.ring.clear()
        self.sizes.clear()
        self.used = 0
        self.consumed = self.next_seq
        self.written = 0

    def _from(self, seq: int) -> list[Record]:
        first = self.next_seq - len(self.ring)
        skip = max(0, seq - first)
        return list(self.ring)[skip:] if skip else list(self.ring)

    def records(self) -> list[Record]:
        """What ``trace`` shows: the records not consumed through trace_pipe."""
        return self._from(self.consumed)

    def since(self, seq: int) -> tuple[list[Record], int]:
        """Records with sequence >= ``seq`` still in the ring, and the next sequence to ask for."""
        out = self._from(seq) if seq < self.next_seq else []
        if out:
            self.consumed = max(self.consumed, self.next_seq)
        return out, self.next_seq

    def first_seq(self) -> int:
        """Where a new trace_pipe reader starts: the oldest record not consumed yet."""
        return max(self.consumed, self.next_seq - len(self.ring))


class Tracer:
    """The tracepoints' state: which events anyone records (``mask``), the buffers, the task.

    ``comm`` gives a thread's name (``/proc/<tid>/comm``, from the I/O layer); names are kept
    for the threads seen while tracing, as ftrace's saved_cmdlines, so that a thread that has
    exited still prints with its name.
    """

    def __init__(self, clock: Callable[[], float], cpus: int = 1,
                 comm: Callable[[int], str | None] | None = None) -> None:
        self.clock = clock
        self.cpus = cpus
        self.comm = comm
        self.mask = 0  # the union of what the buffers record: the core's one test per tracepoint
        self.tid = 0  # the current task
        self.pid = 0
        self.worker = 0  # the task of the driver's deferred work (the kernel's kworker): the daemon
        self.buffers: list[TraceBuffer] = []
        self.comms: dict[int, str] = {}
        self.tgids: dict[int, int] = {}
        self.top = self.new_buffer("")

    def new_buffer(self, name: str) -> TraceBuffer:
        buf = TraceBuffer(self, name, self.cpus)
        self.buffers.append(buf)
        self.update()
        return buf

    def remove_buffer(self, buf: TraceBuffer) -> None:
        self.buffers.remove(buf)
        self.update()

    def update(self) -> None:
        mask = 0
        for b in self.buffers:
            mask |= b.recording()
        self.mask = mask

    def task(self, tid: int, pid: int) -> None:
        """The thread (and its process) whose request the core runs now: ``current``."""
        self.tid = tid
        self.pid = pid

    def set_worker(self, pid: int, name: str) -> None:
        """The task that runs the driver's deferred work (a close, a release): in the kernel a
        kworker; here the process serving the driver, named ``name``."""
        self.worker = pid
        self.comms[pid] = name
        self.tgids[pid] = pid

    def deferred(self, opener: int) -> None:
        """Deferred work runs now (binder_flush, binder_release): the worker's, else the opener's."""
        if self.worker:
            self.task(self.worker, self.worker)
        else:
            self.task(opener, opener)

    def emit(self, ev: int, args: tuple[object, ...]) -> None:
        """Record event ``ev`` for the current task in every buffer that takes it."""
        tid = self.tid
        if tid not in self.comms:
            self._remember(tid)
        rec: Record = (self.clock(), tid, self.pid, ev, args)
        bit = 1 << ev
        size = _SIZES[ev]
        for buf in self.buffers:
            if buf.on and buf.events & bit:
                buf.add(rec, size)

    def mark(self, text: str, names: bool = False) -> None:
        """A print event (``tracing_mark_write: text``) for the current task; with ``names``, only
        into the buffers that record binder_transaction (a transaction's interface and method)."""
        tid = self.tid
        if tid not in self.comms:
            self._remember(tid)
        rec: Record = (self.clock(), tid, self.pid, TP_PRINT, (text,))
        size = record_bytes(rec)
        for buf in self.buffers:
            if buf.on and (not names or buf.events & M_NAMES):
                buf.add(rec, size)

    def _remember(self, tid: int) -> None:
        if len(self.comms) > 65536:
            self.comms.clear()
            self.tgids.clear()
        name = self.comm(tid) if self.comm is not None and tid else None
        self.comms[tid] = name if name is not None else "<...>"
        self.tgids[tid] = self.pid


# -- the control files (what a write(2) to each does, as ftrace's handlers parse it) -----------------

MARKER_MAX: Final = 4096


def _ulong(data: bytes) -> int:
    """kstrtoul_from_user(..., 10, ...): a decimal number, one optional trailing newline."""
    return kstrtoull(data.split(b"\0", 1)[0], 10)


def _bit(data: bytes) -> bool:
    """0 or 1, else EINVAL (event_enable_write, trace_options_core_write)."""
    val = _ulong(data)
    if val > 1:
        raise BinderError(22, "0 or 1")
    return bool(val)


def enable_text(buf: TraceBuffer, events: int) -> bytes:
    """``enable`` of one event or a system: 0, 1, or X when some of them are on."""
    on = buf.events & events
    return b"0\n" if not on else b"1\n" if on == events else b"X\n"


def write_enable(buf: TraceBuffer, events: int, data: bytes) -> None:
    if _bit(data):
        buf.set_events(buf.events | events)
    else:
        buf.set_events(buf.events & ~events)


def write_tracing_on(buf: TraceBuffer, data: bytes) -> None:
    buf.set_on(bool(_ulong(data)))


def write_buffer_size_kb(buf: TraceBuffer, data: bytes) -> None:
    kb = _ulong(data)
    if not kb or kb > 1 << 20:
        raise BinderError(22, "buffer size out of range")  # tracing_entries_write: at least one entry
    buf.set_buffer_kb(kb)


def write_record_tgid(buf: TraceBuffer, data: bytes) -> None:
    buf.record_tgid = _bit(data)


def write_marker(tracer: Tracer, buf: TraceBuffer, tid: int, pid: int, data: bytes) -> None:
    """``trace_marker``: the text becomes a print event of the writer (up to a newline)."""
    text = data[:MARKER_MAX].decode(errors="replace").rstrip("\n")
    if not buf.on:
        return
    tracer.task(tid, pid)
    if tid not in tracer.comms:
        tracer._remember(tid)
    rec: Record = (tracer.clock(), tid, pid, TP_PRINT, (text,))
    buf.add(rec, record_bytes(rec))


# -- text ---------------------------------------------------------------------------------------------


def format_line(rec: Record, comms: dict[int, str], tgid: bool = False, cpu: int = 0,
                cache: dict[tuple[int, int], str] | None = None) -> str:
    """One line of ``trace``/``trace_pipe``: ``TASK-PID [CPU] FLAGS SECONDS: event: args`` (6.1's
    trace_print_context and the event's TP_printk); with ``tgid``, the TGID column too.
    ``cache`` keeps each thread's ``TASK-PID (TGID) [CPU] FLAGS`` part between calls."""
    ts, tid, pid, ev, args = rec
    head = cache.get((tid, pid)) if cache is not None else None
    if head is None:
        comm = comms.get(tid, "<...>") if tid else "<idle>"
        if not tgid:
            head = f"{comm:>16}-{tid:<7d} [{cpu:03d}] ..... "
        elif pid:
            head = f"{comm:>16}-{tid:<7d} ({pid:7d}) [{cpu:03d}] ..... "
        else:
            head = f"{comm:>16}-{tid:<7d} (-------) [{cpu:03d}] ..... "
        if cache is not None:
            cache[(tid, pid)] = head
    usecs = int(ts * 1_000_000)
    secs = f"{usecs // 1_000_000:5d}.{usecs % 1_000_000:06d}"
    if ev == TP_PRINT:
        return f"{head}{secs}: tracing_mark_write: {args[0]}"
    e = EVENTS[ev]
    return f"{head}{secs}: {e.name}: {e.text(args)}"


def header(buf: TraceBuffer, entries: int) -> str:
    """The head of the ``trace`` file (tracer nop, with the irq-info columns), as 6.1 prints it."""
    prec = 12 if buf.record_tgid else 2
    space = " " * prec
    tgid_head = "     TGID   "[:prec]
    tgid_bar = "       |    "[:prec]
    return (
        "# tracer: nop\n#\n"
        f"# entries-in-buffer/entries-written: {entries}/{buf.written}   #P:{buf.cpus}\n#\n"
        f"#                            {space}  _-----=> irqs-off/BH-disabled\n"
        f"#                            {space} / _----=> need-resched\n"
        f"#                            {space}| / _---=> hardirq/softirq\n"
        f"#                            {space}|| / _--=> preempt-depth\n"
        f"#                            {space}||| / _-=> migrate-disable\n"
        f"#                            {space}|||| /     delay\n"
        f"#           TASK-PID  {tgid_head} CPU#  |||||  TIMESTAMP  FUNCTION\n"
        f"#              | |    {tgid_bar}   |   |||||     |         |\n"
    )


def render_trace(buf: TraceBuffer) -> str:
    """The ``trace`` file of ``buf``."""
    recs = buf.records()
    comms = buf.tracer.comms
    return header(buf, len(recs)) + "".join(format_line(r, comms, buf.record_tgid) + "\n" for r in recs)


def saved_cmdlines(tracer: Tracer) -> str:
    """``saved_cmdlines``: ``PID COMM`` for each thread traced."""
    return "".join(f"{tid} {name}\n" for tid, name in sorted(tracer.comms.items()) if tid)


def saved_tgids(tracer: Tracer) -> str:
    """``saved_tgids``: ``PID TGID`` for each thread traced."""
    return "".join(f"{tid} {tgid}\n" for tid, tgid in sorted(tracer.tgids.items()) if tid and tgid)


# -- per_cpu/cpuN/trace_pipe_raw: ftrace's ring buffer pages ------------------------------------------
#
# A page: u64 timestamp (ns), u64 commit (bytes of events after the header), then events. An event
# is a u32 header (type_len in its low 5 bits, time_delta from the previous event, ns, in the
# other 27) and its data: the record as the event's format file lays it out (common_type is the
# event's ID, common_pid the task). type_len 1..28 is the data's length in 4-byte words; 0 means
# the next u32 holds the length (with itself) and data follows it; 30 is a time extend (the
# delta's high bits in the next u32). This is what tracing tools (trace-cmd, Perfetto's traced)
# read, and what lets a reader format lines in its own process instead of the daemon's.

RAW_PAGE: Final = 4096
_PAGE_HEADER: Final = struct.Struct("<QQ")
_U32: Final = struct.Struct("<I")
_TIME_EXTEND: Final = 30
_SMALL_DATA: Final = 28 * 4
_CODES: Final = {(1, 0): "B", (1, 1): "b", (2, 0): "H", (4, 0): "I", (4, 1): "i", (8, 0): "Q", (8, 1): "q"}


def _record_struct(e: Event) -> struct.Struct:
    fmt = "<"
    at = 0
    for f in e.fields:
        fmt += "x" * (f.offset - at) + ("?" if f.ctype == "bool" else _CODES[(f.size, f.signed)])
        at = f.offset + f.size
    return struct.Struct(fmt + "x" * (e.size - at))


_RAW: Final[list[struct.Struct]] = [_record_struct(e) for e in EVENTS]
_BY_ID: Final[dict[int, int]] = {e.id: i for i, e in enumerate(EVENTS)}
_IDS: Final[list[int]] = [e.id for e in EVENTS]
_COMMON_HEAD: Final = struct.Struct("<HBBi")  # common_type, common_flags, common_preempt_count, common_pid
_PRINT_HEAD: Final = struct.Struct("<HBBiQ")  # the common fields, ip


def _raw_data(rec: Record) -> bytes:
    _ts, tid, _pid, ev, args = rec
    if ev == TP_PRINT:
        text = str(args[0]).encode(errors="replace") + b"\n\0"
        return _PRINT_HEAD.pack(PRINT_ID, 0, 0, tid, 0) + text
    try:
        return _RAW[ev].pack(_IDS[ev], 0, 0, tid, *args)
    except struct.error:  # a value the field holds only truncated, as the kernel's struct would
        e = EVENTS[ev]
        return _RAW[ev].pack(e.id, 0, 0, tid, *[_fit(v, f) for v, f in zip(args, e.fields[len(_COMMON):], strict=True)])


def _fit(v: object, f: Field) -> object:
    if f.ctype == "bool":
        return bool(v)
    n = int(v)  # type: ignore[call-overload]
    bits = 8 * f.size
    n &= (1 << bits) - 1
    return n - (1 << bits) if f.signed and n >> (bits - 1) else n


_ROOM: Final = RAW_PAGE - _PAGE_HEADER.size


def raw_pages(recs: list[Record]) -> bytes:
    """The records as ring buffer pages (each RAW_PAGE bytes)."""
    out = bytearray()
    page = bytearray()
    page_ts = last = 0
    pack = _U32.pack
    for rec in recs:
        ns = int(rec[0] * 1e9)
        data = _raw_data(rec)
        n = len(data)
        if n & 3:
            data += bytes(4 - (n & 3))
            n = len(data)
        size = 4 + n if n <= _SMALL_DATA else 8 + n
        if not page or len(page) + size + 8 > _ROOM:
            if page:
                out += _PAGE_HEADER.pack(page_ts, len(page))
                out += page
                out += bytes(_ROOM - len(page))
            page = bytearray()
            page_ts = last = ns
        delta = ns - last if ns > last else 0
        last = ns
        if delta >> 27:
            page += pack(_TIME_EXTEND | ((delta & 0x7FFFFFF) << 5))
            page += pack(delta >> 27)
            delta = 0
        if n <= _SMALL_DATA:
            page += pack((n >> 2) | (delta << 5))
        else:
            page += pack(delta << 5)
            page += pack(n + 4)
        page += data
    if page:
        out += _PAGE_HEADER.pack(page_ts, len(page))
        out += page
        out += bytes(_ROOM - len(page))
    return bytes(out)


def parse_raw(pages: bytes, tgids: dict[int, int] | None = None) -> list[Record]:
    """Ring buffer pages back into records (the pid of each from ``tgids``, as saved_tgids says)."""
    recs: list[Record] = []
    for start in range(0, len(pages) - _PAGE_HEADER.size + 1, RAW_PAGE):
        ts, commit = _PAGE_HEADER.unpack_from(pages, start)
        pos = start + _PAGE_HEADER.size
        end = pos + commit
        while pos + 4 <= end:
            head = _U32.unpack_from(pages, pos)[0]
            type_len, delta = head & 31, head >> 5
            pos += 4
            if type_len == _TIME_EXTEND:
                delta |= _U32.unpack_from(pages, pos)[0] << 27
                ts += delta
                pos += 4
                continue
            if type_len == 0:
                n = _U32.unpack_from(pages, pos)[0] - 4
                pos += 4
            elif type_len <= 28:
                n = type_len * 4
            else:
                break  # padding, or what this reader does not know: the rest of the page
            ts += delta
            data = pages[pos:pos + n]
            pos += n
            if len(data) < _COMMON_HEAD.size:
                continue
            event_id, _flags, _pc, tid = _COMMON_HEAD.unpack_from(data)
            if event_id == PRINT_ID:
                text = data[_PRINT_HEAD.size:].split(b"\0", 1)[0].decode(errors="replace").rstrip("\n")
                recs.append((ts / 1e9, tid, (tgids or {}).get(tid, 0), TP_PRINT, (text,)))
                continue
            ev = _BY_ID.get(event_id)
            if ev is None:
                continue
            values = _RAW[ev].unpack_from(data)[4:]
            recs.append((ts / 1e9, tid, (tgids or {}).get(tid, 0), ev, tuple(values)))
    return recs


# -- named calls (docs/tracing.md): AIDL's slices, written by the driver ------------------------------


def begin_client_call(tp: Tracer, pid: int, marks: list[int], debug_id: int, oneway: bool,
                      raw: bytes) -> str | None:
    """The client named its call (``descriptor\\0method``): its slice begins, before its
    binder_transaction and before anything can fail it. Each open slice is on the thread's
    ``marks``: a call's id, negated on the client, 0 for a one-way call. Returns ``IFoo::method``."""
    interface, _sep, method = raw.decode(errors="replace").partition("\0")
    if not method or "|" in interface or "|" in method or "\n" in interface + method:
        return None
    name = f"{interface.rsplit('.', 1)[-1]}::{method}"
    tp.mark(f"B|{pid}|AIDL::java::{name}::client", True)
    marks.append(0 if oneway else -debug_id)
    return name


def begin_served_call(tp: Tracer, pid: int, marks: list[int], debug_id: int, name: str) -> None:
    """A server thread takes a named call (after its binder_transaction_received)."""
    tp.mark(f"B|{pid}|AIDL::java::{name}::server", True)
    marks.append(debug_id)


def end_named_call(tp: Tracer, pid: int, marks: list[int], key: int) -> None:
    """The named slice ``key`` on top of the thread's marks ends: a server's call at its reply or
    its one-way buffer's free, a client's (key < 0: any) at its answer."""
    if marks and (marks[-1] == key or (key < 0 and marks[-1] < 0)):
        marks.pop()
        tp.mark(f"E|{pid}", True)
