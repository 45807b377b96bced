"""Profile vbinder under a load: ``python -m bench.profile [--scenario NAME] [--process WHICH]``.

Mounts vbinder, starts a service manager, an echo server and a client that calls it in a loop,
samples one process (the daemon by default) with py-spy (``pip install py-spy``; root, or ptrace
allowed) while it holds the GIL (running Python: a wall-clock profile on a busy machine mostly
shows where a process was preempted), and prints the functions with the most samples, inclusive
and self, and the path of the folded stacks (for speedscope or flamegraph.pl). Scenarios: ``sync``
(0-byte echo calls), ``oneway``, ``pending`` (sync calls while 1000 oneway calls wait on the echo
node), ``idle-loopers`` (200 waiting looper threads and nothing else). Cleans up as
``python -m bench`` does.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Supervisor, remove_workdir, signals_as_interrupt, uninterruptible

SCENARIOS = ("sync", "oneway", "pending", "idle-loopers")


def top(folded: Path, n: int = 25) -> str:
    """The ``n`` functions with the most samples, inclusive and self, from py-spy's raw output."""
    incl: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _sp, count = line.rpartition(" ")
        if not stack:
            continue
        k = int(count)
        total += k
        frames = stack.split(";")
        for f in set(frames):
            incl[f] += k
        self_[frames[-1]] += k
    out = [f"{total} samples", "", "inclusive:"]
    out += [f"  {c / total:6.1%}  {f}" for f, c in incl.most_common(n)]
    out += ["", "self:"]
    out += [f"  {c / total:6.1%}  {f}" for f, c in self_.most_common(n)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--scenario", choices=SCENARIOS, default="sync")
    p.add_argument("--output", "-o", metavar="FILE", help="the folded stacks (default: a file in /tmp)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--process", choices=("daemon", "server", "client"), default="daemon",
                   help="which process to sample (default: the daemon)")
    p.add_argument("--native", action="store_true",
                   help="include native frames (pyfuse3's Cython, libfuse); pauses the daemon at each sample")
    args = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("bench.profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="vbinder-profile-"))
    out = Path(args.output) if args.output else Path(tempfile.mkstemp(prefix="vbinder-daemon-", suffix=".folded")[1])
    sup = Supervisor(workdir)
    try:
        with signals_as_interrupt():
            mnt = workdir / "vbinder"
            device = str(mnt / "dev" / "binder")
            counter = workdir / "counter"
            counter.write_bytes(b"\0" * 8)
            daemon = sup.mount("vbinder", "daemon", mnt, {"mask": 0})
            sup.worker("servicemanager", "sm", {"device": device})
            echo = sup.worker("echo0", "server", {"device": device, "name": "echo0", "counter": str(counter)})
            vb = {"kind": "vbinder", "device": device, "targets": ["echo0"]}
            client = None
            if args.scenario != "idle-loopers":
                client = sup.worker("client", "client", vb)
            if args.scenario == "pending":
                sup.worker("pender", "client", vb).request("block", 120, n=1000)
            if args.scenario == "idle-loopers":
                sup.worker("loopers", "threads", {"device": device}).request("spawn", 120, n=200, kind="looper")
            if client is not None:
                client.request("warmup", 60, size=0, n=300)
                if args.scenario == "oneway":
                    client.send("oneway", size=0, n=10**7, counter=str(counter), window=400)
                else:
                    client.send("sync_for", size=0, start=time.monotonic(), duration=args.seconds + 2)
            time.sleep(0.5)
            pid = {"daemon": daemon.pid, "server": echo.pid, "client": client.pid if client else 0}[args.process]
            how = ["--native"] if args.native else ["--gil"]
            subprocess.run([spy, "record", "--format", "raw", "--rate", "500", *how,
                            "-d", str(int(args.seconds)), "-o", str(out), "-p", str(pid)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(top(out, args.top))
            print(f"\nfolded stacks: {out}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    finally:
        with uninterruptible():
            problems = sup.cleanup()
            for msg in problems:
                print(f"bench.profile: cleanup: {msg}", file=sys.stderr)
            remove_workdir(workdir, keep=bool(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
