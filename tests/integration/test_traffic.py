"""Seeing the traffic: ``vbinder trace record`` (a file Perfetto imports), ``vbinder top``,
``vbinder trace diagram`` and ``vbinder graph``, with real processes on a real mount."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vbinder_client.binder import DUMP_TRANSACTION

from tests.integration import perfetto_model
from tests.integration.test_calls import echo_service, service_manager  # noqa: F401 - fixtures
from tests.support import REPO, TOOLS_SKIPPED, daemon_env
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
    assert "AIDL::java::IServiceManager::listServices::server" in names
    assert any(re.fullmatch(r"AIDL::java::IServiceManager::getService\d*::server", str(n)) for n in names)
    # The client's side: the AIDL slice around its binder transaction, whose child Perfetto names
    # after the server's AIDL slice; flows join each call to its reply.
    sent = [s for s in m.slices if s.name == "binder transaction" and s.tid in m.thread_tgid
            and m.thread_tgid[s.tid] == client_pid]
    # (the client's dump at its end is IBinder.dump, DUMP_TRANSACTION: not an AIDL call)
    dump = [s for s in sent if str(s.args.get("code", "")).split(" ")[0] == hex(DUMP_TRANSACTION)]
    assert len(dump) == 1
    sent = [s for s in sent if s not in dump]
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



# -- the diagram, in a real browser -------------------------------------------------------------------

ARTIFACTS = REPO / "build" / "test-artifacts"


def skip(why: str) -> None:
    """Skip, and have the run end with a banner saying what was not tested."""
    if why not in TOOLS_SKIPPED:
        TOOLS_SKIPPED.append(why)
    pytest.skip(why)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    skip("no chromium: `make test` installs Debian's chromium as root (scripts/bootstrap.sh --test); "
         "the diagram's page was not loaded in a browser")


def browse(page: Path, *args: str, hash_: str = "") -> str:
    r = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={page.parent / 'chromium-profile'}", *args, page.as_uri() + hash_],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_diagram_html_in_a_browser(echo_service: tuple[str, subprocess.Popen[str]],  # noqa: F811
                                   tmp_path: Path) -> None:
    dev, svc = echo_service
    client_pid, _text = record_echo(dev, tmp_path / "trace.txt")
    page = tmp_path / "calls.html"
    r = vbinder("trace", "diagram", str(tmp_path / "trace.txt"), "-o", str(page))
    assert r.returncode == 0, r.stderr
    svg_out = tmp_path / "calls.svg"
    assert vbinder("trace", "diagram", str(tmp_path / "trace.txt"), "-o", str(svg_out)).returncode == 0
    assert svg_out.read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg ')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "diagram.png"
    shot.unlink(missing_ok=True)
    browse(page, f"--screenshot={shot}", "--window-size=1400,900")
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = browse(page, "--dump-dom", hash_="#zoom=2")
    # The page's script ran (zoom applied), and the diagram holds every call and its reply.
    assert '<span id="zoom-level">200%</span>' in dom
    assert re.search(r'<div id="sticky"><svg[^>]*width="(\d+)"[^>]*id="heads"', dom)  # names stay on top
    svg = re.search(r'<svg[^>]*id="diagram"[^>]*>', dom).group(0)  # type: ignore[union-attr]
    width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))  # type: ignore[union-attr]
    assert f'width="{width * 2:g}"' in svg
    calls = re.findall(r'<g class="msg call" data-id="(\d+)" data-kind="call"', dom)
    replies = re.findall(r'<g class="msg reply" data-id="(\d+)" data-kind="end" data-result="BR_REPLY"', dom)
    assert len(calls) >= 201 and set(replies) <= set(calls) and len(replies) == len(calls)
    assert len(re.findall(r'class="msg oneway"', dom)) == 1
    assert dom.count(">IEcho::echo</text>") == 201
    assert f"pid {client_pid}</text>" in dom and f"pid {svc.pid}</text>" in dom
    assert 'class="bar"' in dom


def test_diagram_marks_failures_and_nesting(tmp_path: Path) -> None:
    """A synthetic trace: A calls B, B calls C inside that call, then A's next call to a dead C fails."""
    lines = ["# tracer: nop"]

    def txn(t: float, tid: int, pid: int, tid_id: int, node: int, dest: int, dest_thread: int, reply: int,
            flags: int, code: int) -> None:
        ev(t, tid, pid, "binder_transaction", f"transaction={tid_id} dest_node={node} dest_proc={dest} "
           f"dest_thread={dest_thread} reply={reply} flags={flags:#x} code={code:#x}")

    def ev(t: float, tid: int, pid: int, name: str, args: str) -> None:
        lines.append(f"{'p' + str(pid):>16}-{tid:<7d} ({pid:7d}) [000] ..... {t:12.6f}: {name}: {args}")

    txn(1.0, 10, 10, 1, 5, 20, 0, 0, 0x10, 0x1)
    ev(1.1, 21, 20, "binder_transaction_received", "transaction=1")
    txn(1.2, 21, 20, 2, 7, 30, 0, 0, 0x10, 0x2)
    ev(1.3, 31, 30, "binder_transaction_received", "transaction=2")
    txn(1.4, 31, 30, 3, 0, 20, 21, 1, 0x0, 0x0)
    ev(1.5, 21, 20, "binder_transaction_received", "transaction=3")
    txn(1.6, 21, 20, 4, 0, 10, 10, 1, 0x0, 0x0)
    ev(1.7, 10, 10, "binder_transaction_received", "transaction=4")
    txn(2.0, 10, 10, 5, 7, 30, 0, 0, 0x10, 0x3)
    ev(2.1, 10, 10, "binder_return", "cmd=0x7205 BR_DEAD_REPLY")
    trace = tmp_path / "t.txt"
    trace.write_text("\n".join(lines) + "\n")
    out = tmp_path / "d.svg"
    assert vbinder("trace", "diagram", str(trace), "-o", str(out)).returncode == 0
    svg = out.read_text()
    assert svg.count('class="bar"') == 2  # B serving A's call, C serving B's nested call
    bars = [float(x) for x in re.findall(r'<rect class="bar" x="([0-9.]+)"', svg)]
    assert len(set(bars)) == 2
    assert 'class="msg call failed" data-id="5"' in svg and "BR_DEAD_REPLY</text>" in svg and "✕" in svg


# -- vbinder top, in tmux -----------------------------------------------------------------------------


def tmux(*args: str) -> str:
    if shutil.which("tmux") is None:
        skip("no tmux: `make test` installs it as root (scripts/bootstrap.sh --test); vbinder top was not run "
             "in a terminal")
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=30).stdout


def screen(session: str, want: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = tmux("capture-pane", "-p", "-t", session)
        if want in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{want!r} not on the screen:\n{text}")


def test_top_in_tmux(echo_service: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> None:  # noqa: F811
    dev, svc = echo_service
    mount = str(Path(dev).parents[1])
    session = f"vbinder-top-{os.getpid()}"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in daemon_env().items() if k in ("PYTHONPATH", "PATH"))
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50",
         f"env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m vbinder top -m {shlex.quote(mount)};"
         " sleep 30")
    try:
        screen(session, "per interface and method")
        r = subprocess.run([sys.executable, str(REPO / "examples" / "echo_client.py"), "hi", dev],
                           capture_output=True, text=True, env=daemon_env(), timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 20
        while True:  # until top has taken all of the client's calls
            text = screen(session, "IEcho::echo")
            row = next(line for line in text.splitlines() if line.strip().lstrip("│┃ ").startswith("IEcho::echo"))
            cells = [c.strip() for c in re.split("[│┃]", row) if c.strip()]
            if cells[1] == "201" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert cells[0] == "IEcho::echo" and cells[1] == "201"  # calls, then rate, percentiles, failures
        assert float(cells[2]) > 0 and all(c.endswith(" ms") for c in cells[3:6]) and cells[6] == "0"
        assert "BR_REPLY" in text and "IEcho::shout" in text and "IServiceManager::getService" in text
        assert "echo_client.py" in text and "python -c" in text  # the caller, and the service (python -c)
        assert f"{svc.pid} " in text
        tmux("send-keys", "-t", session, "f")
        screen(session, "failures only")
        # A call to the service after it died fails with BR_DEAD_REPLY: top shows it.
        code = f"""
import sys
sys.path.insert(0, {str(REPO / 'examples')!r})
from echo_interface import IEcho
from vbinder_client import ProcessState, default_service_manager
ProcessState.init({dev!r})
proxy = IEcho.Stub.as_interface(default_service_manager().get_service("echo"))
print("ready", flush=True)
sys.stdin.readline()
try:
    proxy.echo("late")
except Exception as e:
    print(type(e).__name__, flush=True)
"""
        late = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env=daemon_env())
        assert late.stdout.readline().startswith("ready")  # type: ignore[union-attr]
        svc.kill()
        svc.wait(10)
        late.stdin.write("go\n")  # type: ignore[union-attr]
        late.stdin.flush()  # type: ignore[union-attr]
        assert late.stdout.readline().strip() == "DeadObjectError"  # type: ignore[union-attr]
        late.wait(10)
        text = screen(session, "BR_DEAD_REPLY")
        assert "BR_REPLY " not in text.replace("BR_DEAD_REPLY", "")
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 10
        while "vbinder top" in tmux("capture-pane", "-p", "-t", session) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "vbinder top" not in tmux("capture-pane", "-p", "-t", session)  # q left the screen
        assert not any(n.startswith("vbinder-top-") for n in os.listdir(Path(mount) / "sys/kernel/tracing/instances"))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


# -- vbinder graph: the seed cases at a glance --------------------------------------------------------

HOLDER = """
import os, sys, time
sys.path.insert(0, {examples!r})
from vbinder_client import ProcessState, default_service_manager
ProcessState.init({dev!r})
echo = default_service_manager().get_service("echo")
echo.link_to_death(lambda who: None)
print("ready", flush=True)
sys.stdin.readline()
"""

ORPHAN = """
import os, sys, time
from vbinder_client import ProcessState
ProcessState.init({dev!r})
child = os.fork()
if child == 0:  # holds the inherited device file; never uses it
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    time.sleep(120)
    os._exit(0)
print(child, flush=True)
"""


def test_graph_shows_dead_nodes_and_procs_without_process(echo_service: tuple[str, subprocess.Popen[str]],  # noqa: F811
                                                          tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        skip("no dot: `make test` installs Debian's graphviz as root (scripts/bootstrap.sh --test); "
             "vbinder graph was not drawn")
    dev, svc = echo_service
    mount = str(Path(dev).parents[1])
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(examples=str(REPO / "examples"), dev=dev)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=daemon_env())
    orphan = subprocess.run([sys.executable, "-c", ORPHAN.format(dev=dev)], capture_output=True, text=True,
                            env=daemon_env(), timeout=TIMEOUT)
    child = int(orphan.stdout.strip())
    try:
        assert holder.stdout.readline().startswith("ready")  # type: ignore[union-attr]
        svc.kill()
        svc.wait(10)
        state = (Path(mount) / "sys/kernel/debug/binder/state").read_text()
        assert "dead nodes:" in state
        out = tmp_path / "graph.svg"
        r = vbinder("graph", "-m", mount, "-o", str(out))
        assert r.returncode == 0, r.stderr
        assert "1 procs without a process" in r.stderr
        svg = out.read_text()
        # The dead node, red, still named by the holder's ref (which has a death notification).
        dead = re.search(r'<g id="node_(\d+)" class="node">.*?</g>', svg, re.S)
        assert dead and "DEAD node" in dead.group(0) and "#c0262d" in dead.group(0)
        assert re.search(r'<g id="ref_\d+" class="edge">.*?death notification.*?</g>', svg, re.S)
        # The proc whose process exited (its file lives on in the forked child): marked, in red.
        gone = re.search(rf'<g id="proc_{orphan_pid(state, child)}" class="cluster">.*?</g>', svg, re.S)
        assert gone and "PROCESS GONE" in gone.group(0) and "#c0262d" in gone.group(0)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert vbinder("graph", "-m", mount, "-o", str(ARTIFACTS / "graph.png")).returncode == 0
    finally:
        os.kill(child, 9)
        holder.kill()
        holder.wait(10)


def orphan_pid(state: str, child: int) -> int:
    """The proc in ``state`` whose process is gone (the orphan's parent)."""
    pids = [int(x) for x in re.findall(r"^proc (\d+)$", state, re.M)]
    gone = [p for p in pids if not os.path.exists(f"/proc/{p}")]
    assert len(gone) == 1, (pids, child)
    return gone[0]


PLAIN_SERVICE = """
import os, sys
from vbinder_client import FIRST_CALL_TRANSACTION, ProcessState, Service, default_service_manager, method

class Plain(Service):
    descriptor = "vbinder.test.IPlain"

    @method(FIRST_CALL_TRANSACTION)
    def ping(self, data, reply):
        reply.write_int32(data.read_int32() + 1)

ps = ProcessState.init(sys.argv[1])
default_service_manager().add_service("plain", Plain())
print("ready", flush=True)
ps.ipc().join_thread_pool()
"""

PLAIN_CLIENT = """
import sys
from vbinder_client import FIRST_CALL_TRANSACTION, ProcessState, Proxy, default_service_manager

class PlainProxy(Proxy):
    descriptor = "vbinder.test.IPlain"

    def ping(self, n):
        return self.call(FIRST_CALL_TRANSACTION, lambda p: p.write_int32(n)).read_int32()

    def ping_named(self, n):
        return self.call(FIRST_CALL_TRANSACTION, lambda p: p.write_int32(n), method="pingAgain").read_int32()

ProcessState.init(sys.argv[1])
proxy = PlainProxy(default_service_manager().get_service("plain"))
assert proxy.ping(41) == 42 and proxy.ping_named(1) == 2
"""


def test_service_and_proxy_calls_are_named(service_manager: str, tmp_path: Path) -> None:  # noqa: F811
    dev = service_manager
    svc = subprocess.Popen([sys.executable, "-c", PLAIN_SERVICE, dev], stdout=subprocess.PIPE, text=True,
                           env=daemon_env())
    try:
        assert svc.stdout.readline().startswith("ready")  # type: ignore[union-attr]
        out = tmp_path / "plain.txt"
        r = vbinder("trace", "record", "-m", str(Path(dev).parents[1]), "-o", str(out), "--",
                    sys.executable, "-c", PLAIN_CLIENT, dev)
        assert r.returncode == 0, r.stderr
        text = out.read_text()
        for name in ("ping", "pingAgain"):  # the proxy method's name, or the one given
            assert re.search(rf"tracing_mark_write: B\|\d+\|AIDL::java::IPlain::{name}::client$", text, re.M)
            assert f"tracing_mark_write: B|{svc.pid}|AIDL::java::IPlain::{name}::server\n" in text
        txns = perfetto_model.binder_txns(perfetto_model.load(text))
        assert [t["aidl_name"] for t in txns if t["server_pid"] == svc.pid] == [
            "AIDL::java::IPlain::ping::server", "AIDL::java::IPlain::pingAgain::server"]
    finally:
        svc.kill()
        svc.wait(10)


def test_top_once_prints_one_screen(echo_service: tuple[str, subprocess.Popen[str]]) -> None:  # noqa: F811
    dev, _svc = echo_service
    mount = str(Path(dev).parents[1])
    top = subprocess.Popen([sys.executable, "-m", "vbinder", "top", "-m", mount, "--once", "4", "-i", "echo"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**daemon_env(), "COLUMNS": "200", "LINES": "60"})
    time.sleep(1.5)  # its instance is there: the calls below are seen
    r = subprocess.run([sys.executable, str(REPO / "examples" / "echo_client.py"), "hi", dev],
                       capture_output=True, text=True, env=daemon_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    out, err = top.communicate(timeout=30)
    assert top.returncode == 0, err
    assert "filter: interface echo" in out and "IEcho::echo" in out and "IServiceManager" not in out
