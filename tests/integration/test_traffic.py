"""Seeing the traffic: ``vbinder trace record`` (a file Perfetto imports), ``vbinder top``,
``vbinder trace diagram`` and ``vbinder graph``, with real processes on a real mount."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration import perfetto_model
from tests.integration.test_calls import echo_service, service_manager  # noqa: F401 - fixtures
from tests.support import REPO, daemon_env
from vbinder.tools.events import read_calls

TIMEOUT = 60


def vbinder(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbinder", *args], capture_output=True, text=True,
                          env=daemon_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def record_echo(dev: str, out: Path) -> tuple[int, str]:
    """Record the echo client's run; (the client's pid, the file's text)."""
    mount = str(Path(dev).parents[1])
    r = vbinder("trace", "record", "-m", mount, "-o", str(out), "--",
                sys.executable, str(REPO / "examples" / "echo_client.py"), "hi", dev)
    assert r.returncode == 0, r.stderr
    pid = int(re.search(r"echo client: pid (\d+)", r.stdout).group(1))  # type: ignore[union-attr]
    return pid, out.read_text()


def test_record_is_a_system_trace_perfetto_imports(echo_service: tuple[str, subprocess.Popen[str]],  # noqa: F811
                                                   tmp_path: Path) -> None:
    dev, svc = echo_service
    client_pid, text = record_echo(dev, tmp_path / "trace.txt")
    assert text.startswith("# tracer: nop\n#\n# entries-in-buffer/entries-written: ")
    assert "#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION\n" in text
    m = perfetto_model.load(text)
    assert m.parse_failures == 0
    txns = perfetto_model.binder_txns(m)
    echo = [t for t in txns if t["aidl_name"] == "AIDL::java::IEcho::echo::server"]
    assert len(echo) == 201  # echo(text), then 200 timed calls
    for t in echo:
        assert t["client_pid"] == client_pid and t["server_pid"] == svc.pid
        assert 0 < t["server_dur"] <= t["client_dur"]  # type: ignore[operator]
    names = {t["aidl_name"] for t in txns}
    assert {"AIDL::java::IServiceManager::getService::server",
            "AIDL::java::IServiceManager::listServices::server"} <= names
    # The client's side: the AIDL slice around its binder transaction, whose child Perfetto names
    # after the server's AIDL slice; flows join each call to its reply.
    sent = [s for s in m.slices if s.name == "binder transaction" and s.tid in m.thread_tgid
            and m.thread_tgid[s.tid] == client_pid]
    assert sent and all(s.parent is not None and s.parent.name.startswith("AIDL::java::") for s in sent)
    to_echo = [s for s in sent if [c.name for c in m.children(s)] == ["AIDL::java::IEcho::echo::server"]]
    assert len(to_echo) == 201
    assert all(s.parent.name == "AIDL::java::IEcho::echo::client" for s in to_echo)  # type: ignore[union-attr]
    assert all(s.args["destination process"] == svc.pid and s.args["destination thread"] in m.thread_tgid
               and s.dur > 0 for s in to_echo)
    assert any("data size" in s.args for s in sent)
    # The one-way shout: an async slice, a flow to the server's "binder async rcv", then its AIDL slice.
    flows = {a: b for a, b in m.flows}
    async_sent = [s for s in m.slices
                  if s.name == "binder transaction async" and m.thread_tgid.get(s.tid) == client_pid]
    assert len(async_sent) == 1
    rcv = m.slices[flows[async_sent[0].id]]
    assert rcv.name == "binder async rcv" and m.thread_tgid[rcv.tid] == svc.pid
    after = [s for s in m.slices if s.tid == rcv.tid and s.ts >= rcv.ts and s.name.startswith("AIDL::")]
    assert after[0].name == "AIDL::java::IEcho::shout::server"
    # The same file read back by vbinder's own reader (what diagram draws).
    calls = read_calls(text.splitlines())
    assert sum(1 for c in calls.calls.values() if c.name == "IEcho::echo" and c.result == "BR_REPLY") == 201

