"""Record the real kernel's output of every seed script (the oracle's VM, Linux 6.1).

    python tests/seeds/record.py [SEED ...]

Writes tests/seeds/expected/<seed>.6.1.txt: what the seed prints with ``--normalize`` on the
kernel, which the tests compare vbinder's 6.1 profile with (tests/seeds/test_seeds.py) and the
kernel itself with again (tests/kernel/test_seeds_on_kernel.py).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.kernel import vm  # noqa: E402
from tests.seeds.run_seeds import seed_scripts  # noqa: E402

EXPECTED = HERE / "expected"


def outputs(text: str) -> dict[str, str]:
    """run_seeds.py's output: each seed's, by name (None for one that failed)."""
    out: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("SEED "):
            name, lines = line.split()[1], []
        elif name is not None and line.startswith(f"END {name} exit "):
            if line.split()[-1] == "0":
                out[name] = "".join(lines)
            name = None
        elif name is not None:
            lines.append(line)
    return out


def on_kernel(names: list[str]) -> tuple[dict[str, str], str]:
    """The seeds' outputs on the kernel, one fresh VM each, two at once (about 25 s a VM)."""

    def one(name: str) -> tuple[str, str | None, str]:
        argv = [str(HERE / "run_seeds.py"), "--device", "/dev/binder", name]
        r = vm.run(argv, timeout=600)
        if r.returncode == 125:  # the VM failed to boot: once more
            r = vm.run(argv, timeout=600)
        return name, outputs(r.stdout).get(name), f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"

    got: dict[str, str] = {}
    logs = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, text, log in pool.map(one, names):
            if text is None:
                logs.append(f"{name}: {log}")
            else:
                got[name] = text
    return got, "\n".join(logs)


def main() -> int:
    why = vm.unavailable()
    if why:
        print(f"the oracle's VM cannot run here: {why}", file=sys.stderr)
        return 1
    names = sys.argv[1:] or list(seed_scripts())
    got, log = on_kernel(names)
    failed = 0
    for name in names:
        if name not in got:
            failed += 1
            print(f"FAIL  {name}\n{log}", file=sys.stderr)
            continue
        path = EXPECTED / f"{name}.6.1.txt"
        path.write_text(got[name])
        print(f"wrote {path.relative_to(HERE.parents[1])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
