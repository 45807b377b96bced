"""What Perfetto's trace processor makes of a systrace text file, for the binder events.

Perfetto's own trace_processor cannot run here (its Python package downloads the
trace_processor_shell binary at first use, and this machine reaches no such host), so this is a
port of the importer's code paths a vbinder recording goes through, from Perfetto's sources:
``SystraceTraceParser`` (header lines skipped, ``TRACE:`` marker), ``SystraceLineTokenizer``
(its regular expression), ``SystraceLineParser`` (the ``key=value`` split and the events it
dispatches), ``BinderTracker`` (binder_transaction, binder_transaction_received, binder_command,
binder_return, binder_transaction_alloc_buf: slices, their args and flows) and
``SystraceParser`` (``B|pid|name`` / ``E|pid`` print events as thread slices). The tests check
that a recording yields the slices and flows Perfetto's UI draws and that its
``android_binder_txns`` table would join (``aidl_name`` from a server's ``AIDL::java*server``
slice under the ``binder reply``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LINE = re.compile(r"-(\d+)\s+\(?\s*(\d+|-+)?\)?\s?\[(\d+)\]\s*[a-zA-Z0-9.]{0,5}\s*(\d+\.\d+):\s+(\S+):")
BC_TRANSACTION, BC_REPLY, BC_TRANSACTION_SG, BC_REPLY_SG = 0x40406300, 0x40406301, 0x40486311, 0x40486312
BR_REPLY, BR_DEAD_REPLY, BR_TRANSACTION_COMPLETE, BR_FAILED_REPLY = 0x80407203, 0x7205, 0x7206, 0x7211
BR_FROZEN_REPLY, BR_ONEWAY_SPAM_SUSPECT = 0x7212, 0x7213
BR_TRANSACTION, BR_TRANSACTION_SEC_CTX = 0x80407202, 0x80487202


@dataclass
class Slice:
    id: int
    ts: int
    tid: int
    name: str
    category: str = ""
    dur: int = -1
    depth: int = 0
    parent: Slice | None = None
    args: dict[str, object] = field(default_factory=dict)


@dataclass
class Model:
    slices: list[Slice] = field(default_factory=list)
    flows: list[tuple[int, int]] = field(default_factory=list)
    thread_tgid: dict[int, int] = field(default_factory=dict)
    thread_name: dict[int, str] = field(default_factory=dict)
    parse_failures: int = 0
    _stacks: dict[int, list[Slice]] = field(default_factory=dict)

    # -- SliceTracker ------------------------------------------------------------------------------

    def begin(self, ts: int, tid: int, cat: str, name: str, args: dict[str, object] | None = None) -> Slice:
        stack = self._stacks.setdefault(tid, [])
        s = Slice(len(self.slices), ts, tid, name, cat, depth=len(stack), parent=stack[-1] if stack else None,
                  args=dict(args or {}))
        self.slices.append(s)
        stack.append(s)
        return s

    def end(self, ts: int, tid: int, args: dict[str, object] | None = None) -> Slice | None:
        stack = self._stacks.get(tid)
        if not stack:
            return None
        s = stack.pop()
        s.dur = ts - s.ts
        if args:
            s.args.update(args)
        return s

    def scoped(self, ts: int, tid: int, cat: str, name: str, args: dict[str, object]) -> Slice:
        s = self.begin(ts, tid, cat, name, args)
        self._stacks[tid].pop()
        s.dur = 0
        return s

    def add_args(self, tid: int, cat: str, name: str, args: dict[str, object]) -> None:
        for s in reversed(self._stacks.get(tid, [])):
            if s.category == cat and s.name == name:
                s.args.update(args)
                return

    def children(self, s: Slice) -> list[Slice]:
        return [c for c in self.slices if c.parent is s]


@dataclass
class _Txn:
    is_reply: bool
    is_oneway: bool
    args: dict[str, object]
    send_tid: int
    send_slice: Slice | None
    send_aidl: Slice | None


class BinderTracker:
    """Perfetto's BinderTracker, on the Model's slices."""

    def __init__(self, m: Model) -> None:
        self.m = m
        self.outstanding: dict[int, _Txn] = {}
        self.frames: dict[int, list[dict[str, object]]] = {}
        self.reply_to_aidl: dict[int, Slice] = {}

    def transaction(self, ts: int, tid: int, tid_id: int, dest_node: int, dest_tgid: int, dest_tid: int,
                    is_reply: bool, flags: int, code: str) -> None:
        human = ""
        if flags & 0x01:
            human += "this is a one-way call: async, no return; "
        if flags & 0x10:
            human += "allow replies with file descriptors; "
        if flags == 0:
            human += "No Flags Set"
        args: dict[str, object] = {"transaction id": tid_id, "destination node": dest_node,
                                   "destination process": dest_tgid, "reply transaction?": is_reply,
                                   "flags": f"{flags:#x} {human}", "code": code, "calling tid": tid}
        oneway = bool(flags & 0x01)
        aidl = None
        if is_reply:
            extra: dict[str, object] = {"destination thread": dest_tid}
            if dest_tid in self.m.thread_name:
                extra["destination name"] = self.m.thread_name[dest_tid]
            self.m.add_args(tid, "binder", "binder reply", extra)
            send = self.m.end(ts, tid, args)
        elif oneway:
            send = self.m.scoped(ts, tid, "binder", "binder transaction async", args)
        else:
            send = self.m.begin(ts, tid, "binder", "binder transaction", args)
            aidl = self.m.begin(ts, tid, "", "Unknown AIDL")
        self.outstanding[tid_id] = _Txn(is_reply, oneway, args, tid, send, aidl)
        frame = self.top(tid)
        if frame is not None:
            if frame["state"] == "SndAfterBC_TRANSACTION":
                frame.update(state="SndAfterTransaction", oneway=oneway, reply=is_reply)
            elif frame["state"] == "RcvAfterBC_REPLY":
                frame.update(state="RcvAfterTransaction", oneway=oneway, reply=is_reply)
            elif frame["state"] == "RcvAfterTransactionReceived":
                self.frames[tid].pop()

    def received(self, ts: int, tid: int, tid_id: int) -> None:
        txn = self.outstanding.pop(tid_id, None)
        if txn is None:
            return
        if not txn.is_oneway:
            if not txn.is_reply:
                self.frames.setdefault(tid, []).append({"state": "RcvAfterTransactionReceived"})
            else:
                frame = self.top(tid)
                if frame is not None and frame["state"] == "SndAfterBR_TRANSACTION_COMPLETE":
                    frame["state"] = "SndAfterTransactionReceived"
        if txn.is_reply:
            if not txn.is_oneway:
                self.m.end(ts, tid)  # the "Unknown AIDL" (or AIDL-named) slice
            self.m.end(ts, tid)  # the binder transaction
            return
        if txn.is_oneway:
            recv = self.m.scoped(ts, tid, "binder", "binder async rcv", txn.args)
        else:
            extra: dict[str, object] = {"destination thread": tid}
            if tid in self.m.thread_name:
                extra["destination name"] = self.m.thread_name[tid]
            self.m.add_args(txn.send_tid, "binder", "binder transaction", extra)
            recv = self.m.begin(ts, tid, "binder", "binder reply")
            if txn.send_aidl is not None:
                self.reply_to_aidl[recv.id] = txn.send_aidl
        if txn.send_slice is not None:
            self.m.flows.append((txn.send_slice.id, recv.id))

    def command(self, tid: int, cmd: int) -> None:
        if cmd in (BC_TRANSACTION, BC_TRANSACTION_SG):
            self.frames.setdefault(tid, []).append({"state": "SndAfterBC_TRANSACTION"})
        elif cmd in (BC_REPLY, BC_REPLY_SG):
            frame = self.top(tid)
            if frame is not None and frame["state"] == "RcvAfterBR_TRANSACTION":
                frame["state"] = "RcvAfterBC_REPLY"

    def ret(self, ts: int, tid: int, cmd: int) -> None:
        frame = self.top(tid)
        if frame is None:
            return
        state = frame["state"]
        if cmd in (BR_DEAD_REPLY, BR_FAILED_REPLY, BR_FROZEN_REPLY):
            if state in ("RcvAfterBC_REPLY", "SndAfterTransaction", "RcvAfterTransaction",
                         "SndAfterBR_TRANSACTION_COMPLETE"):
                if "oneway" in frame and not frame["oneway"] and not frame["reply"]:
                    self.m.end(ts, tid)
                self.frames[tid].pop()
            elif state == "SndAfterBC_TRANSACTION":
                self.frames[tid].pop()
        elif cmd in (BR_TRANSACTION_COMPLETE, BR_ONEWAY_SPAM_SUSPECT):
            if state in ("RcvAfterTransaction", "SndAfterBC_TRANSACTION"):
                self.frames[tid].pop()
            elif state == "SndAfterTransaction":
                if not frame.get("oneway"):
                    frame["state"] = "SndAfterBR_TRANSACTION_COMPLETE"
                else:
                    self.frames[tid].pop()
        elif cmd == BR_REPLY:
            if state == "SndAfterTransactionReceived":
                self.frames[tid].pop()
        elif cmd in (BR_TRANSACTION, BR_TRANSACTION_SEC_CTX) and state == "RcvAfterTransactionReceived":
            frame["state"] = "RcvAfterBR_TRANSACTION"

    def top(self, tid: int) -> dict[str, object] | None:
        stack = self.frames.get(tid)
        return stack[-1] if stack else None


def load(text: str) -> Model:
    """Import a systrace text file as trace_processor would (the parts above)."""
    m = Model()
    binder = BinderTracker(m)
    i = text.find("TRACE:\n", 0, 1 << 16)
    if i >= 0:
        text = text[i + 7:]
    lines = []
    for raw in text.split("\n"):
        if not raw or raw.startswith("#"):
            continue
        mt = LINE.search(raw)
        if mt is None:
            m.parse_failures += 1
            continue
        lines.append((int(float(mt.group(4)) * 1e9), raw, mt))
    lines.sort(key=lambda x: x[0])  # the sorter orders by time (a stable sort)
    for ts, raw, mt in lines:
        tid = int(mt.group(1))
        task = raw[:mt.start()].strip()
        if task != "<...>":
            m.thread_name[tid] = task
        tgid = mt.group(2)
        if tgid and tgid.isdigit():
            m.thread_tgid[tid] = int(tgid)
        event, rest = mt.group(5), raw[mt.end():].strip()
        args: dict[str, str] = {}
        for token in rest.split(" "):
            if "=" not in token:
                args["name"] = token
            else:
                k, v = token.split("=", 1)
                args[k] = v
        if event == "binder_transaction":
            binder.transaction(ts, tid, int(args["transaction"]), int(args["dest_node"]), int(args["dest_proc"]),
                               int(args["dest_thread"]), int(args["reply"]) == 1, int(args["flags"], 16),
                               args["code"] + " Java Layer Dependent")
        elif event == "binder_transaction_received":
            binder.received(ts, tid, int(args["transaction"]))
        elif event == "binder_command":
            binder.command(tid, int(args["cmd"], 0))
        elif event == "binder_return":
            binder.ret(ts, tid, int(args["cmd"], 0))
        elif event == "binder_transaction_alloc_buf":
            m.add_args(tid, "binder", "binder transaction",
                       {"data size": int(args["data_size"]), "offsets size": int(args["offsets_size"])})
        elif event in ("tracing_mark_write", "print", "0"):
            parts = rest.split("|")
            if parts[0] == "B" and len(parts) >= 3:
                s = m.begin(ts, tid, "", parts[2])
                parent = s.parent
                if parts[2].startswith("AIDL::") and parent is not None and parent.name == "binder reply":
                    aidl = binder.reply_to_aidl.pop(parent.id, None)
                    if aidl is not None:
                        aidl.name = parts[2]  # BinderTracker::UpdateAidlSliceName
            elif parts[0] == "E":
                m.end(ts, tid)
    return m


def binder_txns(m: Model) -> list[dict[str, object]]:
    """android_binder_txns' join for synchronous calls: client slice, flow, reply, aidl name."""
    by_id = {s.id: s for s in m.slices}
    out = []
    for src, dst in m.flows:
        txn, reply = by_id[src], by_id[dst]
        if txn.name != "binder transaction":
            continue
        aidl = [c.name for c in m.children(reply)
                if re.fullmatch(r"AIDL::cpp.*Server|AIDL::java.*server|HIDL::.*server", c.name)]
        out.append({"aidl_name": min(aidl) if aidl else None, "client_tid": txn.tid,
                    "client_pid": m.thread_tgid.get(txn.tid), "client_dur": txn.dur, "server_tid": reply.tid,
                    "server_pid": m.thread_tgid.get(reply.tid), "server_dur": reply.dur})
    return out
