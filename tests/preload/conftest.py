"""Fixtures of the preload library's tests: the library, the C test programs, ``vbinder run``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.preload import scenarios
from tests.support import daemon_env
from vbinder import preload

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def library() -> Path:
    """The preload library (built now if the bootstrap's build is missing or stale)."""
    return preload.library()


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C test programs, compiled (gcc, <linux/android/binder.h> from linux-libc-dev)."""
    out = tmp_path_factory.mktemp("preload-programs")
    scenarios.build(str(out))
    return out


def vbinder_run(mount: Path, argv: Sequence[str], timeout: float = 180,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``vbinder run --mount MOUNT -- ARGV``: its output and exit code."""
    cmd = [sys.executable, "-m", "vbinder", "run", "--mount", str(mount), "--", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**daemon_env(), **(env or {})})


def transcripts(stdout: str) -> dict[str, list]:
    """The TRANSCRIPT lines of scenarios.py (or the conformance runner), by scenario."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith(scenarios.MARK + " "):
            _mark, name, text = line.split(" ", 2)
            out[name] = json.loads(text)
    return out


def daemon_problems(log: str) -> list[str]:
    """Lines of a daemon's log that show a bug of its own (an unexpected exception)."""
    return [line for line in log.splitlines() if "answering EIO" in line or "Traceback" in line]

