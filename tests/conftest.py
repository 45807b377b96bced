"""Shared fixtures: a vbinder daemon mounted in a subprocess (DESIGN.md "Conventions")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Daemon, fuse_usable
from vbinder import native


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A banner when the kernel side (tests/kernel) was skipped: such a run proves less."""
    from tests.kernel.conftest import SKIPPED
    from tests.support import AIDL_SKIPPED, TOOLS_SKIPPED

    for why in TOOLS_SKIPPED:
        terminalreporter.write_sep("!", "THE TRAFFIC TOOLS WERE NOT SHOWN TO A BROWSER, TMUX OR DOT", red=True,
                                   bold=True)
        terminalreporter.write_line(why, red=True, bold=True)
    for why in AIDL_SKIPPED:
        terminalreporter.write_sep("!", "ANDROID'S AIDL COMPILER DID NOT RUN", red=True, bold=True)
        terminalreporter.write_line(why, red=True, bold=True)
    for why in SKIPPED:
        terminalreporter.write_sep("!", "THE REAL KERNEL'S CHECKS DID NOT RUN", red=True, bold=True)
        terminalreporter.write_line(why, red=True, bold=True)
        terminalreporter.write_line("vbinder was compared only with recorded transcripts of the kernel, and the client "
                                    "was not run on a real binder.", red=True)


def pytest_report_header() -> str:
    if native.active():
        return f"vbinder: the compiled hot path ({native.BUILD_DIR})"
    return "vbinder: pure Python (no current compiled build, or VBINDER_PURE=1)"


@pytest.fixture
def vbinder_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A mounted daemon (``.mountpoint``, ``.proc``, ``.log_text()``); stopped with SIGTERM."""
    reason = fuse_usable()
    if reason:
        pytest.skip(reason)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    daemon = Daemon(mnt, tmp_path / "daemon.log")
    try:
        yield daemon
    finally:
        if daemon.proc.poll() is None:
            daemon.stop()
        else:
            daemon.kill()


@pytest.fixture
def vbinder_mount(vbinder_daemon: Daemon) -> Path:
    """The path of a mounted vbinder tree."""
    return vbinder_daemon.mountpoint
