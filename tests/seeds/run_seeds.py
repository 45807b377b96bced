"""Run the seed scripts (examples/seeds) on one binder device and print their outputs.

    python tests/seeds/run_seeds.py --device /dev/binder [SEED ...]        (all when none is named)

Each seed runs with ``--normalize``; its output is printed between ``SEED <name>`` and
``END <name>`` lines. In the oracle's VM (tests/kernel/vm.py) this is how the kernel's outputs
are recorded (tests/seeds/record.py) and checked (tests/kernel/test_seeds_on_kernel.py), one seed
per VM: the kernel's module cannot be reloaded, and a seed wants a fresh driver (debug ids from
1, no rate limit spent), as a fresh mount gives vbinder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "examples" / "seeds"


def seed_scripts() -> dict[str, Path]:
    """The seed scripts by name (``seed_000_no_vma``, ...)."""
    return {p.stem: p for p in sorted(SEEDS.glob("seed_*.py"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", required=True)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    scripts = seed_scripts()
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    code = 0
    for name in args.names or list(scripts):
        r = subprocess.run([sys.executable, str(scripts[name]), "--device", args.device, "--normalize"],
                           capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
        print(f"SEED {name}\n{r.stdout}END {name} exit {r.returncode}", flush=True)
        if r.returncode:
            code = 1
            print(f"{name}:\n{r.stderr[-3000:]}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
