"""The coordinator's tools: workers, mounts, cleanup, /proc readings, statistics, progress, time."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from bench import REPO

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A measurement could not be made (a worker failed, timed out, or a mount did not come up)."""


class OutOfTime(BenchError):
    """The run's time budget is spent: the remaining measurements are skipped."""


# -- time --------------------------------------------------------------------------------------------


class Budget:
    """The whole run's time limit, checked before each measurement."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise OutOfTime(f"time budget ({self.seconds:.0f} s) spent before {what}")

    def timeout(self, wanted: float) -> float:
        """A command's timeout: ``wanted``, but never far past the budget."""
        return max(5.0, min(wanted, self.left() + 30.0))


# -- progress ----------------------------------------------------------------------------------------


class Progress:
    """A progress bar on stderr (tqdm when installed, else one line per step)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.bar: Any = None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True,
                                bar_format="{desc:<44.44} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
            except ImportError:
                self.bar = None

    def begin(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(label)
        elif self.enabled:
            print(f"bench: [{self.done}/{self.total}] {label}", file=sys.stderr, flush=True)

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- /proc -------------------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """utime + stime of process ``pid`` (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(ticks: int) -> float:
    return ticks / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for {pid}")


def mounted(path: Path) -> bool:
    """``path`` is a mount point (also a dead FUSE mount, where os.path.ismount says False)."""
    target = str(path.resolve(strict=False))
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[4].replace("\\040", " ") == target:
                    return True
    except OSError:
        pass
    return False


def lazy_unmount(path: Path) -> None:
    for argv in (["fusermount3", "-u", "-z", str(path)], ["umount", "-l", str(path)]):
        if shutil.which(argv[0]):
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10, check=False)
            if not mounted(path):
                return


# -- statistics --------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)


def latency(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50, p99 and mean of round-trip samples, in microseconds."""
    s = sorted(samples_ns)
    if not s:
        return {"count": 0, "p50": float("nan"), "p99": float("nan"), "mean": float("nan")}
    return {"count": len(s), "p50": percentile(s, 50) / 1e3, "p99": percentile(s, 99) / 1e3,
            "mean": sum(s) / len(s) / 1e3}


# -- processes ---------------------------------------------------------------------------------------


class Worker:
    """A ``bench.worker`` process: JSON commands on its stdin, JSON answers on its stdout."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self.pid = popen.pid
        self._buf = b""
        self._fd = popen.stdout.fileno() if popen.stdout is not None else -1
        if self._fd >= 0:
            os.set_blocking(self._fd, False)

    def __repr__(self) -> str:
        return f"<Worker {self.name} pid {self.pid}>"

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines)

    def _fail(self, why: str) -> BenchError:
        tail = self.log_tail()
        return BenchError(f"{self.name} (pid {self.pid}): {why}" + (f"\n{tail}" if tail else ""))

    def send(self, cmd: str, **args: Any) -> None:
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise self._fail(f"cannot send {cmd}: {e}") from None

    def recv(self, timeout: float) -> Any:
        """The next answer's value; BenchError on an error answer, an exit or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"no answer within {timeout:.0f} s")
            ready, _w, _x = select.select([self._fd], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                self.popen.poll()
                raise self._fail(f"exited (status {self.popen.returncode})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        answer = json.loads(line)
        if "error" in answer:
            raise self._fail(answer["error"] + "\n" + answer.get("trace", ""))
        return answer.get("ok", answer.get("ready"))

    def request(self, cmd: str, timeout: float, **args: Any) -> Any:
        self.send(cmd, **args)
        return self.recv(timeout)

    def alive(self) -> bool:
        return self.popen.poll() is None


class Supervisor:
    """Starts every process and mount of the run, and takes all of them down again.

    Workers run in their own session (a Ctrl-C in the terminal reaches only the coordinator,
    which then kills them itself) and die with the coordinator (PR_SET_PDEATHSIG).
    """

    def __init__(self, workdir: Path, python: str = sys.executable) -> None:
        self.workdir = workdir
        self.python = python
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []  # in start order
        self.mounts: list[tuple[Path, subprocess.Popen[bytes]]] = []
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._seq = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        env["BENCH_PARENT"] = str(os.getpid())
        env.pop("BINDER_DEVICE", None)
        return env

    def popen(self, name: str, argv: list[str], stdout: int | TextIO | None = None) -> subprocess.Popen[bytes]:
        self._seq += 1
        log = self.logs / f"{self._seq:03d}-{name}.log"
        with open(log, "wb") as err:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=stdout if stdout is not None else err,
                                 stderr=err, cwd=REPO, env=self.env(), start_new_session=True)
        self.procs.append((name, p))
        return p

    def worker(self, name: str, role: str, args: dict[str, Any] | None = None, wait: float | None = 60.0,
               pipe: bool = True) -> Worker:
        """Start a worker; with ``wait``, return once it is ready (BenchError if it fails).

        Without ``pipe`` its stdout goes to its log (file system daemons: nothing reads them).
        """
        argv = [self.python, "-m", "bench.worker", role, json.dumps(args or {})]
        p = self.popen(name, argv, stdout=subprocess.PIPE if pipe else None)
        w = Worker(name, p, self.logs / f"{self._seq:03d}-{name}.log")
        if wait is not None:
            w.recv(wait)
        return w

    def stop(self, *workers: Worker, grace: float = 2.0) -> None:
        """End workers: close their stdin (they exit), then SIGKILL what is left after ``grace``."""
        for w in workers:
            with contextlib.suppress(OSError):
                if w.popen.stdin is not None:
                    w.popen.stdin.close()
        deadline = time.monotonic() + grace
        for w in workers:
            try:
                w.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(w.popen, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.popen.wait(5)
        self._forget(*(w.popen for w in workers))

    def kill(self, *workers: Worker) -> None:
        for w in workers:
            _kill(w.popen, signal.SIGKILL)
        for w in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.popen.wait(5)
        self._forget(*(w.popen for w in workers))

    def _forget(self, *popens: subprocess.Popen[bytes]) -> None:
        gone = {id(p) for p in popens if p.poll() is not None}
        self.procs = [(n, p) for n, p in self.procs if id(p) not in gone]

    # -- mounts ----------------------------------------------------------------------------------------

    def mount(self, name: str, role: str, mountpoint: Path, args: dict[str, Any], timeout: float = 30.0) -> Worker:
        """Start a file system daemon (role ``daemon`` or ``floorfs``) and wait for its mount."""
        mountpoint.mkdir(parents=True, exist_ok=True)
        if mounted(mountpoint):
            raise BenchError(f"{mountpoint} is already mounted")
        w = self.worker(name, role, {"mount": str(mountpoint), **args}, wait=None, pipe=False)
        self.mounts.append((mountpoint, w.popen))
        deadline = time.monotonic() + timeout
        while not os.path.ismount(mountpoint):
            if not w.alive():
                raise BenchError(f"{name} exited before mounting {mountpoint}\n{w.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not mount {mountpoint} within {timeout:.0f} s\n{w.log_tail()}")
            time.sleep(0.02)
        return w

    def unmount(self, w: Worker, grace: float = 8.0) -> None:
        """SIGTERM a file system daemon (it unmounts), SIGKILL it if it hangs, and unmount lazily."""
        mountpoint = next((m for m, p in self.mounts if p is w.popen), None)
        _kill(w.popen, signal.SIGTERM)
        try:
            w.popen.wait(grace)
        except subprocess.TimeoutExpired:
            _kill(w.popen, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.popen.wait(5)
        if mountpoint is not None:
            if mounted(mountpoint):
                lazy_unmount(mountpoint)
            self.mounts = [(m, p) for m, p in self.mounts if p is not w.popen]
        self._forget(w.popen)

    # -- everything ------------------------------------------------------------------------------------

    def cleanup(self) -> list[str]:
        """Kill every process (workers first, then the file system daemons) and unmount. Idempotent."""
        problems = []
        daemons = {id(p) for _m, p in self.mounts}
        others = [(n, p) for n, p in self.procs if id(p) not in daemons]
        for _n, p in others:
            _kill(p, signal.SIGKILL)
        for n, p in others:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                problems.append(f"{n} (pid {p.pid}) did not die")
        for _mountpoint, p in list(self.mounts):
            _kill(p, signal.SIGTERM)
        for mountpoint, p in list(self.mounts):
            try:
                p.wait(8)
            except subprocess.TimeoutExpired:
                _kill(p, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)
            if mounted(mountpoint):
                lazy_unmount(mountpoint)
            if mounted(mountpoint):
                problems.append(f"{mountpoint} is still mounted")
        self.mounts = []
        self.procs = [(n, p) for n, p in self.procs if p.poll() is None]
        problems += [f"{n} (pid {p.pid}) is still running" for n, p in self.procs]
        return problems


def _kill(p: subprocess.Popen[bytes], sig: int) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, sig)


def remove_workdir(workdir: Path, keep: bool) -> None:
    """Remove the run's directory, never descending into a mount that is still there."""
    if keep or not workdir.exists():
        return
    for dirpath, dirnames, _files in os.walk(workdir):
        for d in dirnames:
            if mounted(Path(dirpath) / d):
                return  # leave it: removing would walk into a live mount
    shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """SIGINT (also where it was ignored, as in a script's background job), SIGTERM and SIGHUP end
    the run with KeyboardInterrupt: the cleanup runs."""

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP off while cleaning up (a second Ctrl-C must not skip it)."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
