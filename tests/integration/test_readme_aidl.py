"""README "Define an interface in AIDL", as written: the AIDL file, `vbinder aidl`, `aidl.load`,
the service and the client, each in its own process through a real mount."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import REPO, daemon_env

from .test_calls import TIMEOUT, service_manager, stop  # noqa: F401 - the fixture


def readme_blocks() -> tuple[str, str, str, str, str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Define an interface in AIDL"):text.index("## Performance")]
    aidl_file = re.search(r"```aidl\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    sh = re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    load, service, client = re.findall(r"```python\n(.*?)```", section, re.S)
    return aidl_file, sh, load, service, client


def test_readme_aidl_example(service_manager: str, tmp_path: Path) -> None:  # noqa: F811
    aidl_file, sh, load, service, client = readme_blocks()
    path = tmp_path / aidl_file.splitlines()[0].removeprefix("// ").strip()
    path.parent.mkdir(parents=True)
    path.write_text(aidl_file)
    command = sh.split("#")[0].split()
    assert command[:2] == ["vbinder", "aidl"]
    r = subprocess.run([sys.executable, "-m", "vbinder", *command[1:]], cwd=tmp_path, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "gen" / "demo" / "ICounter.py").exists()
    r = subprocess.run([sys.executable, "-c", load + "print(ICounter.DESCRIPTOR, ICounter.TRANSACTION_add)"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.stdout.split() == ["demo.ICounter", "1"], r.stderr
    env = {**daemon_env(), "BINDER_DEVICE": service_manager}
    program = service.replace("ps.start_thread_pool()", "print('ready', flush=True); ps.start_thread_pool()")
    svc = subprocess.Popen([sys.executable, "-c", program], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert svc.stdout.readline().startswith("ready"), svc.stderr.read()  # type: ignore[union-attr]
        program = ("import sys; sys.path.insert(0, 'gen')\nfrom demo.ICounter import ICounter\n"
                   "from vbinder_client import ServiceSpecificException, default_service_manager\n" + client +
                   "print(doubled)\ntry:\n    counter.add(2000)\nexcept ServiceSpecificException as e:\n"
                   "    print(e.error_code, e.message)\n")
        r = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["5", "[2, 4]", "1 too much"]
    finally:
        stop(svc)

