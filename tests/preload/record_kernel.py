"""Record the kernel's transcripts of the C test programs: ``expected/<scenario>.json``.

    python tests/preload/record_kernel.py [--check] [SCENARIO ...]

Builds the programs (``build/preload-programs/``, inside the checkout, which the oracle's VM sees
read-only), runs ``scenarios.py`` on the real 6.1 driver in one VM (``tests/kernel/vm.py``) and
writes each transcript; with ``--check`` it only compares them with the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from tests.kernel import vm  # noqa: E402
from tests.preload import scenarios  # noqa: E402
from tests.preload.conftest import transcripts  # noqa: E402

EXPECTED = HERE / "expected"
BIN = REPO / "build" / "preload-programs"


def on_kernel(names: list[str]) -> dict[str, list]:
    """The scenarios' transcripts on the real driver (one VM; one more try if it failed to boot)."""
    scenarios.build(str(BIN))
    payload = [str(HERE / "scenarios.py"), "--bin", str(BIN), *names]
    for _attempt in range(2):
        r = vm.run(payload, timeout=400)
        if r.returncode != 125:
            break
    got = transcripts(r.stdout)
    if not got:
        raise SystemExit(f"the VM produced no transcript (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-3000:]}")
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with expected/ instead of writing")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    names = args.names or list(scenarios.SCENARIOS)
    why = vm.unavailable()
    if why:
        print(f"record_kernel: {why}", file=sys.stderr)
        return 1
    failed = 0
    for name, transcript in on_kernel(names).items():
        path = EXPECTED / f"{name}.json"
        bad = [e for e in transcript if "error" in e]
        if args.check:
            same = path.exists() and json.loads(path.read_text()) == transcript
            print(f"{'same' if same else 'DIFF'}  {name}")
            failed += not same
        else:
            path.write_text(json.dumps(transcript, indent=1, sort_keys=True) + "\n")
            print(f"{'wrote' if not bad else 'WROTE (with errors)'}  {path.relative_to(REPO)}")
        failed += bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
