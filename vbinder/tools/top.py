"""``vbinder top``: the transactions going through the driver, live, in the terminal (rich).

The recent calls (time, caller pid:tid and process, target process and node, interface and
method when the caller named them, code, flags, data size, latency, result) above a summary of
calls per interface and method (count, rate, latency percentiles, failures). ``--process``,
``--interface`` and ``--failures`` filter both; keys: ``f`` toggles failures only, ``c`` clears,
``q`` quits. The events come from a tracefs instance of its own (:class:`record.Session`).
"""

from __future__ import annotations

import contextlib
import select
import sys
import termios
import time
import tty
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .events import Call, CallTracker, process_name
from .record import Session

EVENTS = ("binder_transaction", "binder_transaction_received", "binder_return", "binder_command",
          "binder_transaction_alloc_buf")
RECENT = 500
RATE_WINDOW = 10.0  # seconds over which rates are computed


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


@dataclass
class Stats:
    """One interface and method's calls."""

    count: int = 0
    failures: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    times: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class Top:
    """The state behind the screen: calls in, tables out."""

    def __init__(self, process: str | None = None, interface: str | None = None, failures: bool = False) -> None:
        self.process = process
        self.interface = interface
        self.failures = failures
        self.recent: deque[Call] = deque(maxlen=RECENT)
        self.stats: dict[str, Stats] = {}
        self.names: dict[int, str] = {}
        self.total = 0
        self.started = time.monotonic()
        self.tracker = CallTracker(on_done=self.add)

    def name_of(self, pid: int) -> str:
        name = self.names.get(pid)
        if name is None:
            name = self.names[pid] = process_name(pid)
        return name

    def wanted(self, c: Call) -> bool:
        if self.failures and not c.failed:
            return False
        if self.interface and self.interface.lower() not in (c.name or "").lower():
            return False
        if self.process:
            p = self.process
            if p.isdigit():
                return int(p) in (c.pid, c.dest_pid)
            return p in self.name_of(c.pid) or p in self.name_of(c.dest_pid)
        return True

    def add(self, c: Call) -> None:
        self.name_of(c.pid)
        self.name_of(c.dest_pid)
        self.total += 1
        if not self.wanted(c):
            return
        self.recent.append(c)
        key = c.name or f"code {c.code:#x}"
        st = self.stats.setdefault(key, Stats())
        st.count += 1
        st.failures += c.failed
        if c.latency is not None:
            st.latencies.append(c.latency)
        st.times.append(time.monotonic())

    def clear(self) -> None:
        self.recent.clear()
        self.stats.clear()

    def render(self, height: int) -> Group:
        flt = [f"process {self.process}" if self.process else "",
               f"interface {self.interface}" if self.interface else "", "failures only" if self.failures else ""]
        head = Text.assemble(("vbinder top", "bold"), f"  {self.total} calls seen",
                             f"  filter: {', '.join(x for x in flt if x) or 'none'}",
                             ("   f failures  c clear  q quit", "dim"))
        summary = Table(title="per interface and method", expand=True, title_justify="left")
        for col in ("INTERFACE::METHOD", "CALLS", "CALLS/S", "P50", "P90", "P99", "FAILED"):
            summary.add_column(col, justify="left" if col.startswith("INTER") else "right", no_wrap=True)
        now = time.monotonic()
        window = min(RATE_WINDOW, max(now - self.started, 1e-3))
        rows = sorted(self.stats.items(), key=lambda kv: -kv[1].count)
        for key, st in rows[:8]:
            lat = list(st.latencies)
            rate = sum(1 for t in st.times if now - t <= window) / window
            summary.add_row(key, str(st.count), f"{rate:.1f}", _ms(percentile(lat, 0.5)), _ms(percentile(lat, 0.9)),
                            _ms(percentile(lat, 0.99)), Text(str(st.failures), style="red" if st.failures else ""))
        calls = Table(title="recent calls", expand=True, title_justify="left")
        for col in ("TIME", "CALLER", "TARGET", "INTERFACE::METHOD", "CODE", "FLAGS", "SIZE", "LATENCY", "RESULT"):
            calls.add_column(col, no_wrap=True, overflow="ellipsis")
        room = max(3, height - 8 - min(len(rows), 8) - 6)
        for c in list(self.recent)[-room:]:
            result = Text(c.result, style="bold red" if c.failed else "green" if c.result == "BR_REPLY" else "")
            calls.add_row(time.strftime("%H:%M:%S", time.localtime(time.time() - (time.monotonic() - c.ts)))
                          if c.ts > 0 else "-",
                          f"{c.pid}:{c.tid} {self.name_of(c.pid)}", f"{c.dest_pid} {self.name_of(c.dest_pid)} "
                          f"node {c.dest_node}", c.name or "-", f"{c.code:#x}",
                          "oneway" if c.oneway else f"{c.flags:#x}", str(c.data_size), _ms(c.latency), result)
        return Group(head, summary, calls)


@contextlib.contextmanager
def _keys() -> Iterator[bool]:
    """stdin in cbreak mode while watching (when it is a terminal)."""
    if not sys.stdin.isatty():
        yield False
        return
    old = termios.tcgetattr(sys.stdin)
    try:
        tty.setcbreak(sys.stdin.fileno())
        yield True
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, old)


def main(mount: str, process: str | None, interface: str | None, failures: bool, once: float | None) -> int:
    top = Top(process, interface, failures)
    console = Console()
    with Session(mount, "top", EVENTS) as session:
        if once is not None:
            end = time.monotonic() + once
            top.tracker.feed(session.lines(lambda: time.monotonic() >= end))
            console.print(top.render(console.size.height))
            return 0
        with _keys() as keys, Live(top.render(console.size.height), console=console, screen=True,
                                   auto_refresh=False) as live:
            last = 0.0
            while True:
                top.tracker.feed(session.read(0.05))
                if keys and select.select([sys.stdin], [], [], 0)[0]:
                    key = sys.stdin.read(1)
                    if key in ("q", "Q"):
                        return 0
                    if key == "f":
                        top.failures = not top.failures
                        top.clear()
                    elif key == "c":
                        top.clear()
                now = time.monotonic()
                if now - last >= 0.25:
                    live.update(top.render(console.size.height), refresh=True)
                    last = now
