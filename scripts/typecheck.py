"""mypy in strict mode on vbinder (driver, daemon, CLI) and the client, as one import namespace.

    python scripts/typecheck.py [MYPY ARGS...]

The client's source is ``client/`` but its import name is ``vbinder_client`` (pyproject.toml's
package-dir), which mypy cannot see through: the check runs in a scratch directory that links
both packages under their import names, and its report names the files in this checkout.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"vbinder": "vbinder", "vbinder_client": "client"}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="vbinder-typecheck-") as scratch:
        for name, folder in PACKAGES.items():
            (Path(scratch) / name).symlink_to(REPO / folder)
        r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--warn-unused-ignores",
                            "--cache-dir", str(REPO / ".mypy_cache"), *sys.argv[1:],
                            *(a for name in PACKAGES for a in ("-p", name))],
                           cwd=scratch, capture_output=True, text=True)
    report = r.stdout + r.stderr
    for name, folder in PACKAGES.items():
        report = report.replace(f"{name}/", f"{folder}/") if name != folder else report
    sys.stdout.write(report)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
