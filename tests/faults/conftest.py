"""Fixtures of tests/faults: a counting daemon, a fault-test server; the ``long`` marker.

Tests marked ``long`` (the longer fuzz, fault and load runs) are skipped unless selected with
``-m long`` (``make faults-long``) or ``VBINDER_LONG=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.support import (
    FaultDaemon,
    assert_debugfs_baseline,
    debugfs_snapshot,
    kill_all,
    read_line,
    spawn_peer,
    wait_for_baseline,
)
from tests.support import fuse_usable


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: a long fuzz/fault/load run (make faults-long; skipped otherwise)")
    config.addinivalue_line("markers", "mount_options(*options): more `vbinder mount` options for fault_daemon")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "long" in (config.getoption("markexpr", "") or "") or os.environ.get("VBINDER_LONG"):
        return
    skip = pytest.mark.skip(reason="a long run: make faults-long (or -m long, or VBINDER_LONG=1)")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)


@pytest.fixture
def fault_daemon(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FaultDaemon]:
    """A mounted counting daemon (tests/faults/counting_daemon.py); stopped with SIGTERM. A test
    marked ``mount_options(...)`` gets its mount with those options."""
    reason = fuse_usable()
    if reason:
        pytest.skip(reason)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    marker = request.node.get_closest_marker("mount_options")
    daemon = FaultDaemon(mnt, tmp_path / "daemon.log", *(marker.args if marker is not None else ()))
    baseline = debugfs_snapshot(mnt)
    ok = False
    try:
        yield daemon
        ok = True
    finally:
        alive = daemon.proc.poll() is None
        try:
            if ok and alive:
                # Whatever the test did, once its processes are gone the driver is back to where
                # it started: counted, and in debugfs (state, stats) as 6.1 prints them.
                wait_for_baseline(mnt)
                assert_debugfs_baseline(mnt, baseline)
                log = daemon.log_text()
                assert "answering EIO" not in log and "Traceback" not in log, log[-3000:]
        finally:
            if alive:
                daemon.stop()
            else:
                daemon.kill()


class Server:
    """The fault-test server (peers.py server): context manager of ``dev/binder``."""

    def __init__(self, device: str, tmp: Path, max_threads: int = 15, name: str = "server") -> None:
        self.record = tmp / f"{name}.rec"
        self.err = tmp / f"{name}.err"
        self.proc = spawn_peer("server", device, str(self.record), str(max_threads), log=self.err)
        line = read_line(self.proc)
        assert line.startswith("ready"), self.err.read_text()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def lines(self) -> list[list[str]]:
        return [ln.split() for ln in self.record.read_text().splitlines()] if self.record.exists() else []


@pytest.fixture
def fault_server(fault_daemon: FaultDaemon, tmp_path: Path) -> Iterator[Server]:
    """A server on the counting daemon, killed at the end (then fault_daemon checks the baseline)."""
    server = Server(fault_daemon.device, tmp_path)
    try:
        yield server
    finally:
        kill_all(server.proc)
