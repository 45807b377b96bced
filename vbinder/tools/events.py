"""Reading traces: ftrace text lines in, binder calls out (what ``top`` and ``diagram`` show).

A line is parsed as Perfetto's systrace tokenizer parses it (``TASK-PID (TGID) [CPU] FLAGS
SECONDS: event: args``); :class:`CallTracker` follows each thread's binder events the way
Perfetto's binder tracker does (binder_transaction, binder_transaction_received, binder_return,
binder_transaction_alloc_buf, and the AIDL names of print events) and reports every call when it
ends: answered (BR_REPLY), failed (BR_DEAD_REPLY, BR_FAILED_REPLY, BR_FROZEN_REPLY) or, one-way,
sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Perfetto's SystraceLineTokenizer (src/trace_processor/importers/systrace).
LINE = re.compile(r"-(\d+)\s+\(?\s*(\d+|-+)?\)?\s?\[(\d+)\]\s*[a-zA-Z0-9.]{0,5}\s*(\d+\.\d+):\s+(\S+):")
FAILURES = ("BR_DEAD_REPLY", "BR_FAILED_REPLY", "BR_FROZEN_REPLY")
TF_ONE_WAY = 0x01


def process_name(pid: int) -> str:
    """A readable name: the comm, or for an interpreter the script it runs."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        if comm.startswith("python"):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            for i, a in enumerate(argv[1:], 1):
                if a == "-m" and i + 1 < len(argv):
                    return f"python -m {argv[i + 1]}"
                if a == "-c":
                    return "python -c"
                if not a.startswith("-"):
                    return os.path.basename(a)
        return comm
    except OSError:
        return "?"


@dataclass(slots=True)
class Line:
    task: str
    tid: int
    tgid: int | None
    cpu: int
    ts: float
    event: str
    args: str

    def fields(self) -> dict[str, str]:
        """``key=value`` arguments, as Perfetto splits them (a word without ``=`` is ``name``)."""
        out: dict[str, str] = {}
        for token in self.args.split(" "):
            if "=" in token:
                k, _sep, v = token.partition("=")
                out[k] = v
            elif token:
                out["name"] = token
        return out


def parse_line(text: str) -> Line | None:
    """One trace line, or None for a header or a line that is not an event."""
    if not text or text.startswith("#"):
        return None
    m = LINE.search(text)
    if m is None:
        return None
    tgid = m.group(2)
    return Line(text[:m.start()].strip(), int(m.group(1)), int(tgid) if tgid and tgid.isdigit() else None,
                int(m.group(3)), float(m.group(4)), m.group(5), text[m.end():].strip())


@dataclass(slots=True)
class Call:
    """One binder call, as the trace shows it."""

    id: int
    ts: float  # binder_transaction on the caller
    tid: int
    pid: int
    comm: str
    dest_pid: int
    dest_tid: int
    dest_node: int
    code: int
    flags: int
    name: str | None = None  # "IFoo::method" when the caller named it
    data_size: int = 0
    server_tid: int = 0  # the thread that took it
    received: float | None = None
    end: float | None = None
    result: str = ""  # BR_REPLY, a failure, or BR_TRANSACTION_COMPLETE for one-way
    depth: int = 0  # calls already open on the caller's thread (nested calls)
    parent: int | None = None  # the call the caller was serving when it made this one
    reply_id: int | None = None

    @property
    def oneway(self) -> bool:
        return bool(self.flags & TF_ONE_WAY)

    @property
    def failed(self) -> bool:
        return self.result in FAILURES

    @property
    def latency(self) -> float | None:
        return None if self.end is None else self.end - self.ts

    @property
    def interface(self) -> str | None:
        return self.name.split("::", 1)[0] if self.name else None

    @property
    def method(self) -> str | None:
        return self.name.split("::", 1)[1] if self.name and "::" in self.name else None


@dataclass
class CallTracker:
    """Follows the binder events of a trace, line by line, and reports each call as it ends."""

    on_done: Callable[[Call], None] | None = None
    calls: dict[int, Call] = field(default_factory=dict)  # every call seen, by transaction id
    comms: dict[int, str] = field(default_factory=dict)  # tid -> thread name
    tgids: dict[int, int] = field(default_factory=dict)  # tid -> pid
    _waiting: dict[int, list[Call]] = field(default_factory=dict)  # tid -> its sync calls without answer
    _serving: dict[int, list[Call]] = field(default_factory=dict)  # tid -> calls it took, not answered
    _replies: dict[int, Call] = field(default_factory=dict)  # reply id -> the call it answers
    _names: dict[int, str] = field(default_factory=dict)  # tid -> the name of its next call
    _oneway: dict[int, Call] = field(default_factory=dict)  # tid -> its one-way call not yet completed
    _attempts: dict[int, float] = field(default_factory=dict)  # tid -> BC_TRANSACTION with no transaction yet
    _failed_id: int = 0  # calls that failed before they were transactions get ids -1, -2, ...

    def feed(self, lines: Iterable[str]) -> None:
        for text in lines:
            line = parse_line(text)
            if line is not None:
                self.line(line)

    def line(self, ln: Line) -> None:
        if ln.task and ln.task != "<...>":
            self.comms[ln.tid] = ln.task
        if ln.tgid:
            self.tgids[ln.tid] = ln.tgid
        ev = ln.event
        if ev == "binder_transaction":
            self._transaction(ln, ln.fields())
        elif ev == "binder_transaction_received":
            self._received(ln, int(ln.fields().get("transaction", "0")))
        elif ev == "binder_transaction_alloc_buf":
            f = ln.fields()
            call = self.calls.get(int(f.get("transaction", "0")))
            if call is not None:
                call.data_size = int(f.get("data_size", "0"))
        elif ev == "binder_return":
            self._return(ln, ln.fields().get("name", ""))
        elif ev == "binder_command":
            name = ln.fields().get("name", "")
            if name in ("BC_TRANSACTION", "BC_TRANSACTION_SG"):
                self._attempts[ln.tid] = ln.ts
        elif ev in ("tracing_mark_write", "print", "0"):
            parts = ln.args.split("|")
            if len(parts) >= 3 and parts[0] == "B" and parts[2].startswith("AIDL::") and parts[2].endswith("::client"):
                segs = parts[2].split("::")
                if len(segs) >= 5:
                    self._names[ln.tid] = f"{segs[2]}::{segs[3]}"

    def _transaction(self, ln: Line, f: dict[str, str]) -> None:
        tid = ln.tid
        self._attempts.pop(tid, None)
        tid_id = int(f.get("transaction", "0"))
        if f.get("reply") == "1":
            serving = self._serving.get(tid)
            if serving:
                call = serving.pop()
                call.reply_id = tid_id
                self._replies[tid_id] = call
            return
        flags = int(f.get("flags", "0"), 16)
        caller_serving = self._serving.get(tid)
        waiting = self._waiting.setdefault(tid, [])
        call = Call(tid_id, ln.ts, tid, self.tgids.get(tid, tid), self.comms.get(tid, ln.task),
                    int(f.get("dest_proc", "0")), int(f.get("dest_thread", "0")), int(f.get("dest_node", "0")),
                    int(f.get("code", "0"), 16), flags, name=self._names.pop(tid, None),
                    depth=len(waiting) + len(caller_serving or ()),
                    parent=caller_serving[-1].id if caller_serving else None)
        self.calls[tid_id] = call
        if call.oneway:
            self._oneway[tid] = call
        else:
            waiting.append(call)

    def _received(self, ln: Line, tid_id: int) -> None:
        reply_to = self._replies.pop(tid_id, None)
        if reply_to is not None:
            waiting = self._waiting.get(ln.tid)
            if waiting and waiting[-1] is reply_to:
                waiting.pop()
            self._finish(reply_to, ln.ts, "BR_REPLY")
            return
        call = self.calls.get(tid_id)
        if call is None:
            return
        call.received = ln.ts
        call.server_tid = ln.tid
        if not call.oneway:
            self._serving.setdefault(ln.tid, []).append(call)

    def _return(self, ln: Line, name: str) -> None:
        if name in FAILURES:
            waiting = self._waiting.get(ln.tid)
            if ln.tid in self._attempts:
                # Refused before it became a transaction (a dead or bad target): no
                # binder_transaction, as in the kernel; the call is known by its BC_TRANSACTION.
                self._failed_id -= 1
                call = Call(self._failed_id, self._attempts.pop(ln.tid), ln.tid, self.tgids.get(ln.tid, ln.tid),
                            self.comms.get(ln.tid, ln.task), 0, 0, 0, 0, 0, name=self._names.pop(ln.tid, None))
                self.calls[call.id] = call
                self._finish(call, ln.ts, name)
            elif waiting:
                self._finish(waiting.pop(), ln.ts, name)
            elif ln.tid in self._oneway:
                self._finish(self._oneway.pop(ln.tid), ln.ts, name)
        elif name in ("BR_TRANSACTION_COMPLETE", "BR_ONEWAY_SPAM_SUSPECT") and ln.tid in self._oneway:
            self._finish(self._oneway.pop(ln.tid), ln.ts, name)

    def _finish(self, call: Call, ts: float, result: str) -> None:
        call.end = ts
        call.result = result
        if self.on_done is not None:
            self.on_done(call)

    def process_name(self, pid: int) -> str:
        """A process's name: its main thread's, else one of its threads'."""
        if pid in self.comms:
            return self.comms[pid]
        return next((self.comms[t] for t, p in self.tgids.items() if p == pid and t in self.comms), str(pid))


def read_calls(lines: Iterable[str]) -> CallTracker:
    """Every call of a recorded trace."""
    tracker = CallTracker()
    tracker.feed(lines)
    return tracker
