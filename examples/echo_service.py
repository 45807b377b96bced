#!/usr/bin/env python3
"""The echo service: registers itself as "echo" with the service manager and serves calls.

Usage: echo_service.py [DEVICE]   (DEVICE: a vbinder device file; default: the one vbinder mount)
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from echo_interface import EchoService  # noqa: E402
from vbinder_client import ProcessState, default_service_manager  # noqa: E402


def main() -> None:
    ps = ProcessState.init(sys.argv[1] if len(sys.argv) > 1 else None)
    default_service_manager().add_service("echo", EchoService())
    print(f"echo service: pid {os.getpid()}, registered as 'echo' on {ps.transport.path}", flush=True)
    ps.start_thread_pool()  # more looper threads when the driver asks (BR_SPAWN_LOOPER)
    ps.ipc().join_thread_pool()


if __name__ == "__main__":
    main()
