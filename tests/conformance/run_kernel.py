"""Record the kernel's transcripts: every scenario on the real 6.1 driver, in the oracle's VM.

    python tests/conformance/run_kernel.py [-j 2] [--check] [SCENARIO ...]

Each scenario runs in its own VM (``tests/kernel/vm.py``: the oracle's runner), at most
``-j`` at once (each VM takes about 1.1 GB), and its transcript is written to
``tests/conformance/expected/<scenario>.json``. With ``--check`` nothing is written: the runs
are compared with the files (to see that a scenario is deterministic on the kernel).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from tests.conformance.runner import MARK, load  # noqa: E402
from tests.kernel import vm  # noqa: E402

EXPECTED = HERE / "expected"


def run_on_kernel(name: str, python: str, timeout: int) -> tuple[str, list | None, str]:
    """(name, transcript or None, what went wrong / stderr); a VM that failed (125) is retried once."""
    for _attempt in range(2):
        r = vm.run([str(HERE / "runner.py"), "--device", "/dev/binder", name], timeout=timeout, python=python)
        for line in r.stdout.splitlines():
            if line.startswith(f"{MARK} {name} "):
                return name, json.loads(line.split(" ", 2)[2]), r.stderr
        if r.returncode != 125:
            break
    return name, None, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=2, help="VMs at once (default 2)")
    ap.add_argument("-p", "--python", default=sys.executable, help="the interpreter the VM runs")
    ap.add_argument("-t", "--timeout", type=int, default=150, help="payload timeout per VM, seconds")
    ap.add_argument("--check", action="store_true", help="compare with expected/ instead of writing")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    why = vm.unavailable()
    if why:
        print(f"the oracle's VM cannot run here: {why}", file=sys.stderr)
        return 1
    scenarios = load()
    names = args.names or list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(unknown)}")
    EXPECTED.mkdir(exist_ok=True)
    failed = 0
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, transcript, err in pool.map(lambda n: run_on_kernel(n, args.python, args.timeout), names):
            path = EXPECTED / f"{name}.json"
            if transcript is None:
                failed += 1
                print(f"FAIL  {name}: no transcript\n{err}", file=sys.stderr)
                continue
            bad = [e for e in transcript if e.get("event") in ("error", "timeout")]
            text = json.dumps(transcript, indent=1, sort_keys=True) + "\n"
            if args.check:
                same = path.exists() and json.loads(path.read_text()) == transcript
                failed += not same
                print(f"{'same' if same else 'DIFF'}  {name}")
                if not same:
                    print(text, file=sys.stderr)
            else:
                path.write_text(text)
                print(f"{'wrote' if not bad else 'WROTE (with errors)'}  {path.relative_to(REPO)}")
            if bad:
                failed += 1
                print(f"      {name}: {bad}\n{err}", file=sys.stderr)
    print(f"{len(names)} scenario(s) in {time.monotonic() - t0:.0f} s, {failed} with problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
