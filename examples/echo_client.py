#!/usr/bin/env python3
"""The echo client: finds "echo" through the service manager and calls it.

Usage: echo_client.py [TEXT] [DEVICE]
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from echo_interface import IEcho  # noqa: E402
from vbinder_client import ProcessState, default_service_manager  # noqa: E402


def main() -> None:
    text = sys.argv[1] if len(sys.argv) > 1 else "hello, binder"
    ProcessState.init(sys.argv[2] if len(sys.argv) > 2 else None)
    sm = default_service_manager()
    print(f"echo client: pid {os.getpid()}; services: {', '.join(sm.list_services())}")
    binder = sm.get_service("echo")
    if binder is None:
        sys.exit("echo client: no 'echo' service (start examples/echo_service.py)")
    echo = IEcho.Stub.as_interface(binder)  # a proxy: each method call is a transaction
    print(f"echo client: echo({text!r}) -> {echo.echo(text)!r}")
    echo.shout(text.upper())
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        echo.echo("x")
    print(f"echo client: {n} calls, {(time.perf_counter() - t0) / n * 1e6:.0f} us per call")
    print("echo client: the service's dump, written by the service to this process's stdout:", flush=True)
    binder.dump(sys.stdout, ["--counts"])  # DUMP_TRANSACTION: our stdout travels as a file descriptor


if __name__ == "__main__":
    main()
