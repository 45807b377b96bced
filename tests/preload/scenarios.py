"""The C test programs (tests/preload/programs) in scenarios, with their transcripts.

    python tests/preload/scenarios.py --bin DIR [--device DEV] [SCENARIO ...]
    python tests/preload/scenarios.py --build DIR        (compile the programs into DIR)

Runs each scenario's programs (built into DIR) on DEV (default /dev/binder) and prints one line
per scenario: ``TRANSCRIPT <name> <json>``. The same script runs on the real 6.1 driver in the
oracle's VM (``record_kernel.py``) and on vbinder under ``vbinder run`` (every program it starts
inherits the preload library); the transcripts must be equal. A transcript is every program's
lines, program by program, then their exit statuses: what each printed is deterministic, how
the programs interleave is not, so it is not recorded.

Standard library only: the VM runs it with the host's python.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
C_PROGRAMS = ("servicemanager", "server", "client", "badinput", "fds")
WAIT = 60.0  # the VM is slow (TCG); a program that needs longer than this is stuck
MARK = "TRANSCRIPT"


class Program:
    """A started test program: its output lines as they come, its exit status."""

    def __init__(self, role: str, argv: list[str]) -> None:
        self.role = role
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float = WAIT) -> None:
        """Until a line containing ``text`` came (ScenarioError if the program ends first)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise ScenarioError(f"{self.role}: no {text!r} (got {self.lines})")
                self.cond.wait(min(left, 0.1))

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = WAIT) -> str | int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.reader.join(5)
            return "timeout"
        self.reader.join(5)
        code = self.proc.returncode
        return signal.Signals(-code).name if code < 0 else code


class ScenarioError(Exception):
    pass


def run(programs: list[Program], body: Callable[[], None]) -> list[dict[str, Any]]:
    """Run ``body``; then every program's lines and exit status (programs still running are killed)."""
    events: list[dict[str, Any]] = []
    try:
        body()
    except ScenarioError as e:
        events.append({"proc": "scenario", "error": str(e)})
    exits = {}
    for p in programs:
        if p.proc.poll() is None and not any(e.get("error") for e in events):
            exits[p.role] = p.wait(WAIT)
        else:
            p.signal(signal.SIGKILL)
            exits[p.role] = p.wait(5)
    for p in programs:
        events.extend({"proc": p.role, "line": line} for line in p.lines)
    events.extend({"proc": p.role, "exit": exits[p.role]} for p in programs)
    return events


def services(bin_dir: str, dev: str) -> list[dict[str, Any]]:
    """The service manager, the poll-looper server and the client; a caller killed in a call."""
    path = os.path.join
    sm = Program("servicemanager", [path(bin_dir, "servicemanager"), dev])
    programs = [sm]

    def body() -> None:
        sm.wait_for("ready")
        server = Program("server", [path(bin_dir, "server"), dev])
        programs.append(server)
        server.wait_for("ready")
        hang = Program("hung client", [path(bin_dir, "client"), "hang", dev])
        programs.append(hang)
        server.wait_for("hang")
        hang.signal(signal.SIGKILL)  # killed in the middle of its call
        hang.wait()
        server.send(b"x")  # now the server replies, to a caller that is gone
        server.wait_for("replied to the killed caller")
        client = Program("client", [path(bin_dir, "client"), dev])
        programs.append(client)
        client.wait()
        server.wait()
        sm.wait_for("-> null")  # the client's last getService, after the server died
        sm.signal(signal.SIGINT)  # Ctrl-C, while it waits in its read

    return run(programs, body)


def bad_input(bin_dir: str, dev: str) -> list[dict[str, Any]]:
    """Bad pointers and arguments, a forked child, a thread killed mid-call, a write to the area."""
    path = os.path.join
    sm = Program("servicemanager", [path(bin_dir, "servicemanager"), dev])
    programs = [sm]

    def body() -> None:
        sm.wait_for("ready")
        bad = Program("badinput", [path(bin_dir, "badinput"), dev])
        programs.append(bad)
        bad.wait()
        writer = Program("area writer", [path(bin_dir, "badinput"), "write-area", dev])
        programs.append(writer)
        writer.wait()
        sm.wait_for("list")
        sm.signal(signal.SIGTERM)

    return run(programs, body)


def python_client(bin_dir: str, dev: str) -> list[dict[str, Any]]:
    """A Python program on fcntl.ioctl and ctypes' mmap, with the C service manager."""
    sm = Program("servicemanager", [os.path.join(bin_dir, "servicemanager"), dev])
    programs = [sm]

    def body() -> None:
        sm.wait_for("ready")
        py = Program("python", [sys.executable, os.path.join(PROGRAMS, "py_client.py"), dev])
        programs.append(py)
        py.wait()
        sm.wait_for("died")  # its process is gone: the service manager forgets it
        sm.wait_for("death notification cleared")
        sm.signal(signal.SIGTERM)

    return run(programs, body)


def fds(bin_dir: str, dev: str) -> list[dict[str, Any]]:
    """File descriptors: in calls, replies and arrays, refused, a caller killed while the server
    holds its fd, and 400 more calls after which nobody has more fds than before."""
    path = os.path.join
    sm = Program("servicemanager", [path(bin_dir, "servicemanager"), dev])
    programs = [sm]

    def body() -> None:
        sm.wait_for("ready")
        server = Program("server", [path(bin_dir, "fds"), "server", dev])
        programs.append(server)
        server.wait_for("ready")
        hold = Program("holding client", [path(bin_dir, "fds"), "hold", dev])
        programs.append(hold)
        server.wait_for("hold")
        hold.signal(signal.SIGKILL)  # killed while the server holds its fd
        hold.wait()
        server.send(b"x")  # the server replies, with an fd, to a caller that is gone
        server.wait_for("replied to the killed caller")
        client = Program("client", [path(bin_dir, "fds"), "client", dev])
        programs.append(client)
        client.wait()
        server.wait()
        sm.wait_for("death notification cleared")  # the server's death, seen before it is stopped
        sm.signal(signal.SIGTERM)

    return run(programs, body)


def fds_threads(bin_dir: str, dev: str) -> list[dict[str, Any]]:
    """Fds to a server of three looper threads from two clients at once: calls, replies and arrays
    delivered to whichever thread takes each, and everyone's fds back where they were."""
    path = os.path.join
    sm = Program("servicemanager", [path(bin_dir, "servicemanager"), dev])
    programs = [sm]

    def body() -> None:
        sm.wait_for("ready")
        server = Program("server", [path(bin_dir, "fds"), "server", dev, "3"])
        programs.append(server)
        server.wait_for("ready")
        clients = [Program(f"client {i}", [path(bin_dir, "fds"), "stress", dev, "100"]) for i in (1, 2)]
        programs.extend(clients)
        for c in clients:
            c.wait()
        finish = Program("finish", [path(bin_dir, "fds"), "finish", dev])
        programs.append(finish)
        finish.wait()
        server.wait()
        sm.wait_for("death notification cleared")
        sm.signal(signal.SIGTERM)

    return run(programs, body)


SCENARIOS: dict[str, Callable[[str, str], list[dict[str, Any]]]] = {
    "services": services, "bad_input": bad_input, "python_client": python_client, "fds": fds,
    "fds_threads": fds_threads}


def build(out: str) -> None:
    """Compile the C programs into ``out`` (gcc, against <linux/android/binder.h>)."""
    os.makedirs(out, exist_ok=True)
    for name in C_PROGRAMS:
        cmd = ["gcc", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o", os.path.join(out, name),
               os.path.join(PROGRAMS, f"{name}.c"), os.path.join(PROGRAMS, "tbinder.c"), "-lpthread"]
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", help="where the test programs are built")
    ap.add_argument("--build", metavar="DIR", help="compile the programs into DIR and exit")
    ap.add_argument("--device", default="/dev/binder")
    ap.add_argument("names", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS) + " (default: all)")
    args = ap.parse_args(argv)
    # The programs get SIGINT's default action (Ctrl-C ends them), also where this script was
    # started with it ignored (a background job of a shell script).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if args.build:
        build(args.build)
        return 0
    if not args.bin:
        ap.error("--bin or --build")
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(unknown)}")
    for name in args.names or list(SCENARIOS):
        transcript = SCENARIOS[name](args.bin, args.device)
        print(MARK, name, json.dumps(transcript, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
