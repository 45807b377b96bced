"""``sys/kernel/tracing``: the driver's tracepoints as tracefs files (the files 6.1 has for them).

For the top-level buffer and each instance (``instances/NAME``, made with mkdir): ``tracing_on``,
``trace`` (an O_TRUNC open clears it), ``trace_pipe`` (a consuming, blocking read; several
readers each get every line), ``trace_marker``, ``buffer_size_kb``, ``buffer_total_size_kb``,
``options/record-tgid``, ``events/enable``, ``events/binder/enable`` and, per event,
``events/binder/<event>/{enable,format,id}`` (and ``events/ftrace/print/{format,id}``).
What each write does is the driver's (:mod:`vbinder.driver.trace`); this module only wires paths.
"""

from __future__ import annotations

import errno
import functools
import re
from collections.abc import Callable

from ..driver import BinderError
from ..driver import trace as tr
from ..driver.log import Log
from .tree import Stream, Tree

TRACING = "sys/kernel/tracing"
INSTANCE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class LogSource:
    """``proc/kmsg``: the driver's log ring."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.ended = False
        self.lines = True
        self._wakers: list[Callable[[], None]] = []
        log.listeners.append(self._line)

    def _line(self, _line: str) -> None:
        if self._wakers:
            wakers, self._wakers = self._wakers, []
            for wake in wakers:
                wake()

    def on_next(self, wake: Callable[[], None]) -> None:
        self._wakers.append(wake)

    def start(self) -> int:
        return 0  # from the oldest line kept

    def data_since(self, seq: int) -> tuple[bytes, int]:
        lines, nxt = self.log.lines_since(seq)
        return "".join(line + "\n" for line in lines).encode(), nxt


class PipeSource:
    """``trace_pipe``: a buffer's records as lines, formatted when read."""

    def __init__(self, buf: tr.TraceBuffer) -> None:
        self.buf = buf
        self.ended = False  # its instance was removed
        self.lines = True
        self._heads: dict[tuple[int, int], str] = {}  # each thread's head of line
        self._heads_for: tuple[bool, int] = (False, 0)  # (record-tgid, thread names known) when made

    def on_next(self, wake: Callable[[], None]) -> None:
        self.buf.on_next(wake)

    def start(self) -> int:
        return self.buf.first_seq()

    def data_since(self, seq: int) -> tuple[bytes, int]:
        recs, nxt = self.buf.since(seq)
        comms = self.buf.tracer.comms
        tgid = self.buf.record_tgid
        if self._heads_for != (tgid, len(comms)):  # an option or a thread name changed: heads anew
            self._heads.clear()
            self._heads_for = (tgid, len(comms))
        heads = self._heads
        return "".join(tr.format_line(r, comms, tgid, 0, heads) + "\n" for r in recs).encode(), nxt


class RawPipeSource(PipeSource):
    """``per_cpu/cpu0/trace_pipe_raw``: the same records as ring buffer pages, consumed as
    ``trace_pipe`` consumes them; the reader formats them (names from ``saved_cmdlines``,
    pids from ``saved_tgids``). Every event is CPU 0's; the other CPUs' files stay empty."""

    def __init__(self, buf: tr.TraceBuffer) -> None:
        super().__init__(buf)
        self.lines = False

    def data_since(self, seq: int) -> tuple[bytes, int]:
        recs, nxt = self.buf.since(seq)
        return tr.raw_pages(recs), nxt


class EmptySource:
    """Another CPU's trace_pipe_raw: nothing comes (vbinder's events are all CPU 0's)."""

    def __init__(self, buf: tr.TraceBuffer) -> None:
        self.buf = buf
        self.ended = False
        self.lines = False

    def on_next(self, wake: Callable[[], None]) -> None:
        pass  # woken only when its buffer is removed (the readers of a removed buffer end)

    def start(self) -> int:
        return 0

    def data_since(self, seq: int) -> tuple[bytes, int]:
        return b"", 0


def _text(value: Callable[[], object]) -> bytes:
    return f"{value()}\n".encode()


def add_buffer_files(tree: Tree, tracer: tr.Tracer, buf: tr.TraceBuffer, base: str) -> None:
    """The files of one trace array under ``base``."""
    p = functools.partial
    tree.add_generated(f"{base}/tracing_on", p(_text, lambda: int(buf.on)), p(tr.write_tracing_on, buf), mode=0o644)
    tree.add_generated(f"{base}/trace", lambda: tr.render_trace(buf).encode(), lambda _data: buf.clear(),
                       mode=0o644, truncate=buf.clear)
    tree.add_stream(f"{base}/trace_pipe", PipeSource(buf), mode=0o444)
    for cpu in range(buf.cpus):
        raw: PipeSource | EmptySource = RawPipeSource(buf) if cpu == 0 else EmptySource(buf)
        tree.add_stream(f"{base}/per_cpu/cpu{cpu}/trace_pipe_raw", raw, mode=0o444)
    tree.add_generated(f"{base}/trace_marker", None, mode=0o222, write_as=p(_marker, tracer, buf))
    tree.add_generated(f"{base}/buffer_size_kb", p(_text, lambda: buf.buffer_kb),
                       p(tr.write_buffer_size_kb, buf), mode=0o644)
    tree.add_generated(f"{base}/buffer_total_size_kb", p(_text, lambda: buf.buffer_kb * buf.cpus), mode=0o444)
    tree.add_generated(f"{base}/options/record-tgid", p(_text, lambda: int(buf.record_tgid)),
                       p(tr.write_record_tgid, buf), mode=0o644)
    for path in (f"{base}/events/enable", f"{base}/events/binder/enable"):
        tree.add_generated(path, p(tr.enable_text, buf, tr.ALL_BINDER), p(tr.write_enable, buf, tr.ALL_BINDER),
                           mode=0o644)
    for i, e in enumerate(tr.EVENTS):
        d = f"{base}/events/binder/{e.name}"
        tree.add_generated(f"{d}/enable", p(tr.enable_text, buf, 1 << i), p(tr.write_enable, buf, 1 << i),
                           mode=0o644)
        tree.add_generated(f"{d}/format", p(_static, tr.format_file(i)), mode=0o444)
        tree.add_generated(f"{d}/id", p(_static, f"{e.id}\n"), mode=0o444)
    tree.add_generated(f"{base}/events/ftrace/print/format", p(_static, tr.PRINT_FORMAT), mode=0o444)
    tree.add_generated(f"{base}/events/ftrace/print/id", p(_static, f"{tr.PRINT_ID}\n"), mode=0o444)


def _static(text: str) -> bytes:
    return text.encode()


def _marker(tracer: tr.Tracer, buf: tr.TraceBuffer, data: bytes, tid: int, tgid: int) -> None:
    tr.write_marker(tracer, buf, tid, tgid, data)


def build_tracefs(tree: Tree, tracer: tr.Tracer) -> None:
    """``sys/kernel/tracing`` with the top-level buffer's files and ``instances/``."""
    add_buffer_files(tree, tracer, tracer.top, TRACING)
    tree.add_generated(f"{TRACING}/saved_cmdlines", lambda: tr.saved_cmdlines(tracer).encode(), mode=0o444)
    tree.add_generated(f"{TRACING}/saved_tgids", lambda: tr.saved_tgids(tracer).encode(), mode=0o444)
    instances: dict[str, tr.TraceBuffer] = {}
    d = tree.mkdir(f"{TRACING}/instances")

    def mkdir(name: str) -> None:
        if not INSTANCE_NAME.fullmatch(name) or name in (".", ".."):
            raise BinderError(errno.EINVAL, f"bad instance name {name!r}")
        if name in instances:
            raise BinderError(errno.EEXIST, name)
        buf = instances[name] = tracer.new_buffer(name)
        add_buffer_files(tree, tracer, buf, f"{TRACING}/instances/{name}")

    def rmdir(name: str) -> None:
        buf = instances.pop(name, None)
        if buf is None:
            raise BinderError(errno.ENOENT, name)
        tracer.remove_buffer(buf)
        base = f"{TRACING}/instances/{name}"
        pipes = [tree.resolve(f"{base}/trace_pipe"),
                 *(tree.resolve(f"{base}/per_cpu/cpu{cpu}/trace_pipe_raw") for cpu in range(buf.cpus))]
        tree.remove(base, recursive=True)
        for pipe in pipes:
            if isinstance(pipe, Stream) and isinstance(pipe.source, PipeSource | EmptySource):
                pipe.source.ended = True  # its readers get end-of-file, not a wait for ever
        for wake in buf.wakers:
            wake()
        buf.wakers.clear()

    d.mkdir = mkdir
    d.rmdir = rmdir
