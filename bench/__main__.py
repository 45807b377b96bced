"""``python -m bench [--quick] [--output FILE] [--only SECTIONS] [--keep]``: run the benchmarks.

Prints the machine and a markdown report on stdout (the progress bar goes to stderr) and writes the
report to ``bench/results.md`` (a full run of every section) or ``--output``. ``BENCH_QUICK=1`` is ``--quick``.
Everything it starts is stopped and unmounted at the end, also on Ctrl-C, SIGTERM or a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import REPO
from bench.harness import Progress, Supervisor, remove_workdir, signals_as_interrupt, uninterruptible
from bench.report import render
from bench.run import Config, Results, Run, _loadavg, machine_info

SECTIONS = ("floor", "unix", "dbus", "vbinder", "aggregate", "resources", "growth", "verbose", "traced")


def _sections(text: str) -> set[str]:
    names = {s.strip() for s in text.split(",") if s.strip()}
    unknown = names - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown sections: {', '.join(sorted(unknown))} "
                                         f"(known: {', '.join(SECTIONS)})")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="vbinder's benchmarks (see bench/README.md).")
    p.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                   help="small counts: a smoke run of about a minute (also BENCH_QUICK=1)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write the report here (default: bench/results.md for a full run of every section, "
                        "nothing for --quick or --only)")
    p.add_argument("--only", type=_sections, metavar="SECTIONS", default=set(SECTIONS),
                   help=f"comma-separated subset of: {','.join(SECTIONS)}")
    p.add_argument("--budget", type=float, metavar="SECONDS", help="time limit of the whole run")
    p.add_argument("--keep", action="store_true", help="keep the work directory (worker and daemon logs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def report_path(args: argparse.Namespace, quick: bool, interrupted: bool) -> str | None:
    """Where the report goes: ``--output``, else bench/results.md for a whole full run only (a
    partial one would blank the other sections of the file)."""
    if args.output:
        return str(args.output)
    whole = not quick and not interrupted and args.only == set(SECTIONS)
    return str(REPO / "bench" / "results.md") if whole else None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = Config.make_quick() if args.quick else Config()
    if args.budget:
        cfg.budget = args.budget
    results = Results(machine=machine_info(), config=cfg)
    m = results.machine
    print(f"bench: {'quick' if cfg.quick else 'full'} run on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
          f"pyfuse3 {m['pyfuse3']}, trio {m['trio']}, vbinder {m['vbinder']}; budget {cfg.budget:.0f} s",
          file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="vbinder-bench-"))
    sup = Supervisor(workdir)
    progress = Progress(Run.plan_steps(cfg, args.only), enabled=not args.no_progress)
    run = Run(cfg, sup, progress, results, args.only)
    t0 = time.monotonic()
    status = 0
    try:
        with signals_as_interrupt():
            run.run()
    except KeyboardInterrupt:
        results.interrupted = True
        status = 130
        progress.note("bench: interrupted: stopping everything")
    finally:
        with uninterruptible():
            progress.begin("cleanup: stop processes, unmount")
            problems = sup.cleanup()
            progress.step()
            progress.close()
            for msg in problems:
                print(f"bench: cleanup: {msg}", file=sys.stderr)
            remove_workdir(workdir, keep=args.keep or bool(problems))
            if args.keep:
                print(f"bench: logs kept in {workdir}", file=sys.stderr)
    results.seconds = time.monotonic() - t0
    results.machine["load_after"] = _loadavg()
    text = render(results)
    print(text)
    out = report_path(args, cfg.quick, results.interrupted)
    if out:
        Path(out).write_text(text)
        print(f"bench: report written to {out}", file=sys.stderr)
    if results.errors:
        print(f"bench: {len(results.errors)} measurement(s) failed (see 'Not measured'); "
              "run with --keep to keep the logs", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
