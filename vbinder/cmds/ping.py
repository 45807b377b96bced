"""``vbinder ping NAME``: is a service alive? PING_TRANSACTION, as ``IBinder::pingBinder``.

    ping [-c COUNT] NAME

Looks NAME up (checkService) and pings it COUNT times (default 1), printing each round trip:
``NAME (pid P): ping 1: 0.42 ms``; exit 0 when every ping was answered, 1 when NAME is not
registered or a ping failed (the line says why: ``BR_DEAD_REPLY (29189), -EINVAL``), 20
without a service manager, as ``service``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .service import Service, _check


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vbinder ping", description="PING_TRANSACTION to a registered service.")
    p.add_argument("-c", "--count", type=int, default=1, metavar="COUNT", help="pings to send (default 1)")
    p.add_argument("name", metavar="NAME")
    args = p.parse_args(argv)
    from vbinder_client import Parcel
    from vbinder_client.binder import PING_TRANSACTION

    sm = Service(sys.stdout, sys.stderr)._service_manager()
    if sm is None:
        print("ping: Unable to get default service manager!", file=sys.stderr)
        return 20
    service = _check(sm, args.name)
    if service is None:
        print(f"ping: Service {args.name}: not found", file=sys.stderr)
        return 1
    try:
        who = f" (pid {service.debug_pid()})"
    except Exception:  # noqa: BLE001 - an object that does not answer _PID still answers pings
        who = ""
    failed = 0
    for i in range(1, max(args.count, 1) + 1):
        start = time.perf_counter()
        try:
            service.transact(PING_TRANSACTION, Parcel())
        except Exception as e:  # noqa: BLE001 - the failure is the answer
            print(f"{args.name}{who}: ping {i}: {type(e).__name__}: {e}", flush=True)
            failed += 1
            continue
        print(f"{args.name}{who}: ping {i}: {(time.perf_counter() - start) * 1000:.2f} ms", flush=True)
    return 1 if failed else 0
