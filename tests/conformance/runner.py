"""Run conformance scenarios on one device and print their transcripts.

    python tests/conformance/runner.py --device DEV [SCENARIO ...]     (all when none is named)
    python tests/conformance/runner.py --list

Prints one line per scenario: ``TRANSCRIPT <name> <json>``. The roles' stderr passes through.
Works with any Python 3.11 that can read this checkout: ``vbinder_client`` is loaded from
``client/`` when it is not installed (as inside the oracle's VM with the host's python3).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARK = "TRANSCRIPT"


def _import_path() -> None:
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    if importlib.util.find_spec("vbinder_client") is None:
        spec = importlib.util.spec_from_file_location(
            "vbinder_client", os.path.join(REPO, "client", "__init__.py"),
            submodule_search_locations=[os.path.join(REPO, "client")])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["vbinder_client"] = module
        spec.loader.exec_module(module)


def load() -> dict:
    """The registry, with every scenario module imported."""
    _import_path()
    from tests.conformance import scenarios_client, scenarios_fds, scenarios_raw  # noqa: F401
    from tests.conformance.framework import SCENARIOS

    return SCENARIOS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=os.environ.get("BINDER_DEVICE", "/dev/binder"))
    ap.add_argument("--list", action="store_true", help="list the scenarios")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    scenarios = load()
    if args.list:
        for s in scenarios.values():
            print(f"{s.name}{'  (xfail: ' + s.xfail + ')' if s.xfail else ''}")
        return 0
    names = args.names or list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(unknown)}")
    for name in names:
        transcript = scenarios[name].fn(args.device)
        print(MARK, name, json.dumps(transcript, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
