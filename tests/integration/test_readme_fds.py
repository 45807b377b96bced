"""README "File descriptors", as written: the Logger service and its client, each in its own
process through a real mount, and ``vbinder dumpsys`` on it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import REPO, daemon_env

from .test_calls import TIMEOUT, service_manager, stop  # noqa: F401 - the fixture


def readme_blocks() -> tuple[str, str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## File descriptors"):text.index("## Define an interface in AIDL")]
    service, client = re.findall(r"```python\n(.*?)```", section, re.S)
    return service, client


def test_readme_fd_example(service_manager: str, tmp_path: Path) -> None:  # noqa: F811
    service, client = readme_blocks()
    env = {**daemon_env(), "BINDER_DEVICE": service_manager}
    program = service.replace("ps.start_thread_pool()", "print('ready', flush=True); ps.start_thread_pool()")
    svc = subprocess.Popen([sys.executable, "-c", program], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert svc.stdout.readline().startswith("ready"), svc.stderr.read()  # type: ignore[union-attr]
        r = subprocess.run([sys.executable, "-c", client], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["logger attached", "first line of the log", "logger: dump ['-a']"]
        r = subprocess.run([sys.executable, "-m", "vbinder", "dumpsys", "logger", "-a", "-b"], env=env,
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert (r.returncode, r.stdout) == (0, "logger: dump ['-a', '-b']\n"), r.stderr
    finally:
        stop(svc)
