"""``vbinder trace record``: the binder events of a mount into a file Perfetto opens.

A recording is a tracefs instance of its own (``sys/kernel/tracing/instances/vbinder-record-PID``,
made and removed here), so that it changes nothing another reader of the mount's tracing files
sees, with the binder events Perfetto reads (or all) and record-tgid on. It is read as ftrace's
consumers read it: ring buffer pages from ``per_cpu/cpu0/trace_pipe_raw``, thread names and
pids from ``saved_cmdlines`` and ``saved_tgids``, the lines printed here (as ``trace`` would
print them), so that the daemon, which serves the calls being traced, does not format them.
The file is the systrace text that Perfetto (UI and trace_processor) imports as a system trace.
``vbinder top`` uses the same kind of session.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from vbinder.driver import trace as tr

TRACING = "sys/kernel/tracing"
BUFFER_KB = 16384
# What Perfetto's binder importer reads (BinderTracker: slices, flows, their args); --all-events
# records the other binder events too (for a reader of the text, not for Perfetto).
PERFETTO_EVENTS = ("binder_transaction", "binder_transaction_received", "binder_command", "binder_return",
                   "binder_transaction_alloc_buf")


class Session:
    """A tracefs instance of the mount with the given events on; read its lines with :meth:`lines`."""

    def __init__(self, mount: str, purpose: str, events: Sequence[str] | None = None,
                 buffer_kb: int = BUFFER_KB) -> None:
        self.root = Path(mount) / TRACING
        _remove_stale(self.root / "instances")
        self.dir = self.root / "instances" / f"vbinder-{purpose}-{os.getpid()}"
        os.mkdir(self.dir)
        try:
            self._write("buffer_size_kb", str(buffer_kb))
            self._write("options/record-tgid", "1")
            if events is None:
                self._write("events/binder/enable", "1")
            else:
                for name in events:
                    self._write(f"events/binder/{name}/enable", "1")
            self.fd = os.open(self.dir / "per_cpu" / "cpu0" / "trace_pipe_raw", os.O_RDONLY | os.O_NONBLOCK)
        except BaseException:
            os.rmdir(self.dir)
            raise
        self.comms: dict[int, str] = {}
        self.tgids: dict[int, int] = {}
        self._heads: dict[tuple[int, int], str] = {}

    def _write(self, name: str, value: str) -> None:
        with open(self.dir / name, "w") as f:
            f.write(value)

    def read_raw(self, timeout: float) -> bytes:
        """The pages that came within ``timeout`` seconds (none: empty)."""
        try:
            return os.read(self.fd, 256 * tr.RAW_PAGE)
        except BlockingIOError:  # nothing new (poll(2) on a FUSE file gets no wake-ups here)
            if timeout:
                time.sleep(timeout)
            return b""

    def read(self, timeout: float) -> list[str]:
        """The lines that came within ``timeout`` seconds (none: an empty list)."""
        return self.lines_of(self.read_raw(timeout))

    def lines_of(self, pages: bytes) -> list[str]:
        """Pages read from this session as ``trace`` lines."""
        recs = tr.parse_raw(pages)
        if any(r[1] not in self.comms for r in recs):
            self._names()
        out = []
        for ts, tid, _pid, ev, args in recs:
            rec: tr.Record = (ts, tid, self.tgids.get(tid, 0), ev, args)
            out.append(tr.format_line(rec, self.comms, True, 0, self._heads))
        return out

    def _names(self) -> None:
        """Thread names and pids, as the mount has them now (saved_cmdlines, saved_tgids)."""
        for name in ("saved_cmdlines", "saved_tgids"):
            try:
                text = (self.root / name).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                tid, _sep, value = line.partition(" ")
                if not tid.isdigit() or not value:
                    continue
                if name == "saved_tgids":
                    self.tgids[int(tid)] = int(value)
                else:
                    self.comms[int(tid)] = value
        self._heads.clear()

    def lines(self, until: Callable[[], bool], poll: float = 0.1) -> Iterator[str]:
        """Lines as they come, until ``until()`` says stop (then what is left in the buffer)."""
        while not until():
            yield from self.read(poll)
        while batch := self.read(0):
            yield from batch

    def pages(self, until: Callable[[], bool], poll: float = 0.1) -> bytes:
        """Everything, as pages, until ``until()`` says stop: a recording formats its lines after
        the run, so that it takes as little of the machine as it can while the calls go on."""
        out = bytearray()
        while not until():
            out += self.read_raw(poll)
        while chunk := self.read_raw(0):
            out += chunk
        return bytes(out)

    def close(self) -> None:
        os.close(self.fd)
        with contextlib.suppress(OSError):
            os.rmdir(self.dir)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_stale(instances: Path) -> None:
    """Instances left by vbinder sessions whose process is gone (killed) go."""
    try:
        names = os.listdir(instances)
    except OSError:
        return
    for name in names:
        pid = name.rsplit("-", 1)[-1]
        if name.startswith("vbinder-") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):
                os.rmdir(instances / name)


def header(entries: int) -> str:
    """The head of the file: the ``trace`` file's, with the TGID column (record-tgid)."""
    buf = tr.TraceBuffer(tr.Tracer(time.monotonic), "", os.cpu_count() or 1)
    buf.record_tgid = True
    buf.written = entries
    return tr.header(buf, entries)


def record(mount: str, output: str, duration: float | None, command: Sequence[str],
           out: Callable[[str], None] = print, all_events: bool = False) -> int:
    """Record until ``command`` exits, ``duration`` passes, or Ctrl-C; returns the command's status."""
    lines: list[str] = []
    status = 0
    stop = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    with Session(mount, "record", None if all_events else PERFETTO_EVENTS) as session:
        old = signal.signal(signal.SIGINT, on_signal)
        start = time.monotonic()
        proc = None
        try:
            if command:
                env = dict(os.environ)
                env.setdefault("BINDER_DEVICE", os.path.join(mount, "dev", "binder"))
                try:
                    proc = subprocess.Popen(list(command), env=env)
                except OSError as e:
                    out(f"vbinder trace record: {command[0]}: {e.strerror}")
                    return 127
            else:
                out(f"vbinder trace record: recording {mount}" + (
                    f" for {duration:g} s" if duration else "; Ctrl-C stops"))

            def done() -> bool:
                if stop:
                    return True
                if duration is not None and time.monotonic() - start >= duration:
                    return True
                return proc is not None and proc.poll() is not None

            pages = session.pages(done)
            lines.extend(session.lines_of(pages))
        finally:
            signal.signal(signal.SIGINT, old)
            if proc is not None:
                if proc.poll() is None:
                    proc.terminate()
                status = proc.wait()
    events = [line for line in lines if not line.startswith("#")]
    Path(output).write_text(header(len(events)) + "".join(line + "\n" for line in events))
    out(f"vbinder trace record: {len(events)} events in {output} (open it in ui.perfetto.dev)")
    return status


def main(mount: str, output: str, duration: float | None, command: Sequence[str], all_events: bool = False) -> int:
    try:
        return record(mount, output, duration, command, out=lambda s: print(s, file=sys.stderr),
                      all_events=all_events)
    except PermissionError as e:
        print(f"vbinder trace record: {e.filename}: {e.strerror} (tracing instances are made by the "
              "mount's owner)", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno == errno.ENOENT:
            print(f"vbinder trace record: {mount} has no {TRACING} (an older vbinder?)", file=sys.stderr)
            return 1
        raise
