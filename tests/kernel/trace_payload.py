"""Run conformance scenarios with every binder event traced; print each one's trace.

    python tests/kernel/trace_payload.py --device DEV --tracing TRACEFS SCENARIO...

The same payload runs in the oracle's VM (``/sys/kernel/tracing``, the real 6.1 driver) and on a
vbinder mount (``MOUNT/sys/kernel/tracing``); tests/kernel/test_trace_on_kernel.py compares the
two. Prints ``TRACE <scenario>`` then the trace's lines, then ``TRACE-END``.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.conformance.runner import load  # noqa: E402


def write(tracing: str, name: str, value: str) -> None:
    with open(os.path.join(tracing, name), "w") as f:
        f.write(value)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", required=True)
    ap.add_argument("--tracing", required=True)
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    scenarios = load()
    write(args.tracing, "buffer_size_kb", "8192")
    write(args.tracing, "options/record-tgid", "1")
    for name in args.names:
        write(args.tracing, "tracing_on", "0")
        write(args.tracing, "trace", "")
        write(args.tracing, "events/binder/enable", "1")
        write(args.tracing, "tracing_on", "1")
        scenarios[name].fn(args.device)
        write(args.tracing, "tracing_on", "0")
        write(args.tracing, "events/binder/enable", "0")
        with open(os.path.join(args.tracing, "trace")) as f:
            text = f.read()
        print("TRACE", name, flush=True)
        sys.stdout.write(text)
        print("TRACE-END", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
