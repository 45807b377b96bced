"""``python -m bench.signals``: how fast a signal ends a client blocked in a binder call.

The tests assert generous bounds (seconds); the figures DESIGN.md sets (Ctrl-C raises
KeyboardInterrupt within half a second; a SIGKILLed caller is gone within half a second) are
measured here: a client calls a service that takes its time to answer, and gets SIGINT (or
SIGKILL) while it waits in the driver. Prints a markdown table; ``--rounds N`` (default 10).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.5

SLEEPER = """
    import sys, time
    from vbinder_client import *
    class Sleeper(Service):
        descriptor = "bench.ISleeper"
        @method(FIRST_CALL_TRANSACTION)
        def nap(self, data, reply):
            time.sleep(data.read_int32() / 1000)
    ps = ProcessState.init(sys.argv[1])
    default_service_manager().add_service("sleeper", Sleeper())
    print("ready", flush=True)
    ps.start_thread_pool()
    ps.ipc().join_thread_pool()
"""

CALLER = """
    import os, signal, sys, time
    from vbinder_client import *
    # As in an interactive shell: a run started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ProcessState.init(sys.argv[1])
    s = default_service_manager().get_service("sleeper")
    def nap(ms):
        p = Parcel(); p.write_interface_token("bench.ISleeper"); p.write_int32(ms)
        s.transact(FIRST_CALL_TRANSACTION, p)
    nap(0)
    for _ in range(int(sys.argv[2])):
        print("calling", flush=True)
        try:
            nap(int(sys.argv[3]))
            print("answered", flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.monotonic(), flush=True)
"""


def _py(code: str, *args: str, **kw: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env, **kw)  # type: ignore[call-overload]


def measure(rounds: int) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="vbinder-signals-"))
    mnt = work / "mnt"
    mnt.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    daemon = subprocess.Popen([sys.executable, "-m", "vbinder", "mount", str(mnt), "--foreground"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    procs: list[subprocess.Popen[str]] = []
    out: dict[str, list[float]] = {"SIGINT -> KeyboardInterrupt": [], "SIGKILL -> process gone": []}
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mnt):
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit("bench.signals: the daemon did not mount")
            time.sleep(0.05)
        dev = str(mnt / "dev" / "binder")
        procs.append(_py("from vbinder_client.service_manager import serve; import sys; serve(sys.argv[1])", dev))
        time.sleep(0.5)
        sleeper = _py(SLEEPER, dev)
        procs.append(sleeper)
        assert sleeper.stdout is not None and sleeper.stdout.readline().startswith("ready")
        # SIGINT: the caller waits in its call; the service answers after 1.5 s.
        caller = _py(CALLER, dev, str(rounds), "1500")
        procs.append(caller)
        assert caller.stdout is not None
        for _ in range(rounds):
            assert caller.stdout.readline().strip() == "calling"
            time.sleep(0.3)  # it is in the driver now
            t0 = time.monotonic()
            caller.send_signal(signal.SIGINT)
            line = caller.stdout.readline().split()
            if line and line[0] == "interrupted":
                out["SIGINT -> KeyboardInterrupt"].append(float(line[1]) - t0)
        caller.wait(30)
        # SIGKILL: a fresh caller each time.
        for _ in range(rounds):
            victim = _py(CALLER, dev, "1", "5000")
            procs.append(victim)
            assert victim.stdout is not None and victim.stdout.readline().strip() == "calling"
            time.sleep(0.3)
            t0 = time.monotonic()
            victim.kill()
            victim.wait(30)
            out["SIGKILL -> process gone"].append(time.monotonic() - t0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False, capture_output=True)
        mnt.rmdir()
        work.rmdir()
    return out


def render(out: dict[str, list[float]]) -> str:
    lines = ["## Signals: a client blocked in a call", "",
             "| what | n | p50 | max | target | result |", "|---|---:|---:|---:|---:|---|"]
    for what, xs in out.items():
        if not xs:
            lines.append(f"| {what} | 0 | — | — | ≤ {TARGET * 1000:.0f} ms | not measured |")
            continue
        p50, worst = statistics.median(xs), max(xs)
        ok = "PASS" if worst <= TARGET else "**FAIL**"
        lines.append(f"| {what} | {len(xs)} | {p50 * 1000:.0f} ms | {worst * 1000:.0f} ms | "
                     f"≤ {TARGET * 1000:.0f} ms | {ok} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.signals", description=__doc__)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--output", "-o", metavar="FILE", help="also append the table to FILE")
    args = p.parse_args(argv)
    table = render(measure(args.rounds))
    print(table)
    if args.output:
        with open(args.output, "a") as f:
            f.write("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
