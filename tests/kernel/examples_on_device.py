"""The README's quick start on one binder device: the service manager, the echo service, a call.

    python tests/kernel/examples_on_device.py [DEVICE]      (default /dev/binder: a real driver)

Starts ``vbinder servicemanager`` and ``examples/echo_service.py``, runs
``examples/echo_client.py`` twice (the second time after the service was killed, so that the
client sees the service manager drop it on its death notification), prints what the client
printed, and stops the rest. This process never opens the device (closing an inherited binder
fd flushes the parent's proc: see the oracle README). Runs as a user runs the examples, on a
vbinder mount and, with the oracle (tests/kernel/vm.py), on the real 6.1 driver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WAIT = 60.0  # the VM is slow (TCG): a Python process takes seconds to start there


def start(argv: list[str], env: dict[str, str], ready: str) -> subprocess.Popen[str]:
    """Start ``argv`` and wait for ``ready`` in its output (stdout and stderr together)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=REPO)
    assert proc.stdout is not None
    deadline = time.monotonic() + WAIT
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if ready in line:
            return proc
    proc.kill()
    sys.exit(f"{argv[1:]} did not print {ready!r}:\n{''.join(seen)}")


def main() -> int:
    device = sys.argv[1] if len(sys.argv) > 1 else "/dev/binder"
    env = dict(os.environ, BINDER_DEVICE=device, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
    py = sys.executable
    sm = start([py, "-m", "vbinder", "servicemanager"], env, "context manager of")
    service = start([py, "examples/echo_service.py"], env, "registered as 'echo'")
    try:
        client = [py, "examples/echo_client.py", "hello, kernel"]
        first = subprocess.run(client, env=env, capture_output=True, text=True, timeout=WAIT, cwd=REPO)
        sys.stdout.write(first.stdout)
        if first.returncode:
            sys.stderr.write(first.stderr)
            return 1
        service.send_signal(signal.SIGKILL)
        service.wait()
        deadline = time.monotonic() + WAIT
        while True:  # the service manager forgets "echo" when its death notification comes
            again = subprocess.run(client, env=env, capture_output=True, text=True, timeout=WAIT, cwd=REPO)
            if "no 'echo' service" in again.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        sys.stdout.write(again.stdout)
        print(f"after the service died: exit {again.returncode}, {again.stderr.strip()}")
    finally:
        for p in (service, sm):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
