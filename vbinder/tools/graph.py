"""``vbinder graph [-o OUT.svg]``: the object graph of the driver's state, drawn with graphviz.

Read from debugfs ``state`` (so it draws what the kernel's own file says): each proc is a box
holding its nodes, each ref an arrow from the proc that holds it to the node it names (desc,
strong/weak counts, and a death notification when one is registered), transactions in flight
are arrows between procs, and what the binder seeds are about stands out in red: a dead node
that refs still name, and a proc whose process is gone (it outlives its process while some
other process still holds its file open).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .events import process_name

STATE = "sys/kernel/debug/binder/state"
NULL = "0000000000000000"


@dataclass
class GNode:
    id: int
    ptr: str
    counts: str
    dead: bool = False
    holders: list[int] = field(default_factory=list)


@dataclass
class GRef:
    id: int
    desc: int
    node: int
    strong: int
    weak: int
    death: bool
    dead_node: bool


@dataclass
class GProc:
    pid: int
    context: str = ""
    threads: int = 0
    nodes: list[GNode] = field(default_factory=list)
    refs: list[GRef] = field(default_factory=list)
    transactions: list[tuple[str, int, str, int, str]] = field(default_factory=list)  # kind, id, from, to, text


@dataclass
class State:
    procs: list[GProc] = field(default_factory=list)
    dead_nodes: list[GNode] = field(default_factory=list)


NODE = re.compile(r"^  node (\d+): u([0-9a-f]+) c([0-9a-f]+) (hs \d+ hw \d+ ls \d+ lw \d+ is \d+ iw \d+) tr \d+"
                  r"(?: proc((?: \d+)+))?")
REF = re.compile(r"^  ref (\d+): desc (\d+) (dead )?node (\d+) s (\d+) w (\d+) d ([0-9a-f]+)")
TXN = re.compile(r"^\s+(outgoing|incoming|pending|bad) transaction (\d+): \S+ from (\d+):(\d+) to (\d+):(\d+)"
                 r" code (\S+) flags (\S+)")


def parse_state(text: str) -> State:
    """6.1's debugfs ``state`` as objects."""
    st = State()
    proc: GProc | None = None
    in_dead = False
    for line in text.splitlines():
        if line == "dead nodes:":
            in_dead = True
            continue
        if line.startswith("proc "):
            in_dead = False
            proc = GProc(int(line.split()[1]))
            st.procs.append(proc)
            continue
        if proc is not None and line.startswith("context "):
            proc.context = line.split(" ", 1)[1]
        elif (m := NODE.match(line)) is not None:
            node = GNode(int(m.group(1)), m.group(2), m.group(4), dead=in_dead,
                         holders=[int(p) for p in (m.group(5) or "").split()])
            (st.dead_nodes if in_dead else proc.nodes if proc is not None else st.dead_nodes).append(node)
        elif proc is not None and (m := REF.match(line)) is not None:
            proc.refs.append(GRef(int(m.group(1)), int(m.group(2)), int(m.group(4)), int(m.group(5)),
                                  int(m.group(6)), m.group(7) != NULL, bool(m.group(3))))
        elif proc is not None and line.startswith("  thread "):
            proc.threads += 1
        elif proc is not None and (m := TXN.match(line)) is not None:
            if m.group(1) in ("outgoing", "pending"):
                proc.transactions.append((m.group(1), int(m.group(2)), f"{m.group(3)}:{m.group(4)}",
                                          int(m.group(5)), f"code {m.group(7)} flags {m.group(8)}"))
    return st


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _name(pid: int) -> str:
    name = process_name(pid)
    return "" if name == "?" else name


def to_dot(st: State, alive: dict[int, bool] | None = None) -> str:
    """The graph in graphviz's language."""
    import graphviz  # type: ignore[import-untyped]

    alive = alive if alive is not None else {p.pid: _alive(p.pid) for p in st.procs}
    g = graphviz.Digraph("binder", graph_attr={"rankdir": "LR", "fontname": "sans-serif", "compound": "true",
                                                 "label": "binder state", "labelloc": "t"},
                         node_attr={"fontname": "sans-serif", "fontsize": "10"},
                         edge_attr={"fontname": "sans-serif", "fontsize": "9"})
    where: dict[int, str] = {}
    for i, p in enumerate(st.procs):
        gone = not alive.get(p.pid, True)
        with g.subgraph(name=f"cluster_{i}") as c:
            title = f"proc {p.pid}" + (f" ({_name(p.pid)})" if not gone and _name(p.pid) else "")
            c.attr(label=f"{title}\ncontext {p.context}" + ("\nPROCESS GONE: the proc outlives it" if gone else ""),
                   style="rounded,filled", fillcolor="#ffe3e3" if gone else "#eef3fb",
                   color="#c0262d" if gone else "#4a6fa5", penwidth="3" if gone else "1",
                   fontcolor="#c0262d" if gone else "black", id=f"proc_{p.pid}")
            c.node(f"p{p.pid}", f"{p.threads} thread(s)\n{len(p.refs)} ref(s)", shape="plaintext", id=f"anchor_{p.pid}")
            for n in p.nodes:
                where[n.id] = f"n{n.id}"
                c.node(f"n{n.id}", f"node {n.id}\nu{n.ptr.lstrip('0') or '0'}\n{n.counts}", shape="box",
                       style="filled", fillcolor="white", id=f"node_{n.id}")
    for n in st.dead_nodes:
        where[n.id] = f"n{n.id}"
        g.node(f"n{n.id}", f"DEAD node {n.id}\n(owner gone, still referenced)\n{n.counts}", shape="box",
               style="filled,bold", fillcolor="#c0262d", fontcolor="white", color="#7a0f14", penwidth="3",
               id=f"node_{n.id}")
    for p in st.procs:
        for r in p.refs:
            target = where.get(r.node)
            if target is None:
                continue
            label = f"ref {r.id} desc {r.desc}\ns {r.strong} w {r.weak}" + ("\ndeath notification" if r.death else "")
            g.edge(f"p{p.pid}", target, label, color="#c0262d" if r.dead_node else "#1f4e8c",
                   style="bold" if r.death else "solid", penwidth="2" if r.strong else "1",
                   arrowhead="normal" if r.strong else "empty", id=f"ref_{r.id}")
        for kind, tid_id, frm, to, text in p.transactions:
            if f"p{to}" == f"p{p.pid}" or to == 0:
                continue
            g.edge(f"p{p.pid}", f"p{to}", f"{kind} transaction {tid_id}\n{frm} {text}", color="#d97a00",
                   style="dashed", id=f"txn_{tid_id}")
    return str(g.source)


def render(st: State, output: str) -> None:
    import graphviz

    dot = to_dot(st)
    if output.endswith(".dot"):
        Path(output).write_text(dot)
        return
    fmt = output.rsplit(".", 1)[-1] if "." in output else "svg"
    Path(output).write_bytes(graphviz.Source(dot).pipe(format=fmt))


def main(mount: str, output: str) -> int:
    try:
        text = (Path(mount) / STATE).read_text()
    except OSError as e:
        print(f"vbinder graph: {mount}/{STATE}: {e.strerror}", file=sys.stderr)
        return 1
    st = parse_state(text)
    try:
        render(st, output)
    except ImportError:
        print("vbinder graph: needs the graphviz package (pip install graphviz)", file=sys.stderr)
        return 1
    except Exception as e:  # graphviz.ExecutableNotFound and rendering errors
        print(f"vbinder graph: {e} (Debian's graphviz package gives the dot command)", file=sys.stderr)
        return 1
    dead = len(st.dead_nodes)
    gone = sum(1 for p in st.procs if not _alive(p.pid))
    print(f"vbinder graph: {len(st.procs)} procs, {sum(len(p.nodes) for p in st.procs)} nodes, {dead} dead, "
          f"{gone} procs without a process -> {output}", file=sys.stderr)
    return 0
