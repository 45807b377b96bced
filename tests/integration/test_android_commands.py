"""Android's commands through a real mount: vbinder service, dumpsys and ping, as a user runs them.

The expected text is AOSP's: cmds/service/service.cpp (``Found N services:``, ``N\\tNAME:
[IFACE]``, ``Service NAME: found``, ``Result: Parcel(...)`` as libbinder's Parcel::print and
printHexData write it, the messages and exit codes), cmds/dumpsys/dumpsys.cpp (the listing, the
header and footer around each dump, the timeout message) and libbinderdebug (--thread, --clients
from the binder debug files). Every Android release's service manager is asked too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO, daemon_env

TIMEOUT = 60


def run(env: dict[str, str], *args: str, bare: str = "vbinder") -> subprocess.CompletedProcess[str]:
    """``vbinder ARGS``, or with ``bare`` the command the install puts beside the interpreter."""
    cmd = [sys.executable, "-m", "vbinder", *args] if bare == "vbinder" else \
        [str(Path(sys.executable).parent / bare), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def start(env: dict[str, str], argv: list[str], ready: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         stdin=subprocess.DEVNULL, cwd=REPO)
    assert p.stdout is not None
    lines = []
    for line in p.stdout:
        lines.append(line)
        if ready in line:
            return p
    raise AssertionError(f"{argv} did not say {ready!r}: {''.join(lines)}")


def stop(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def device(vbinder_mount: Path) -> Iterator[dict[str, str]]:
    """A mount with the service manager (Android 16) and the echo example: the env to reach them."""
    env = dict(daemon_env(), BINDER_DEVICE=str(vbinder_mount / "dev" / "binder"))
    sm = start(env, [sys.executable, "-m", "vbinder", "servicemanager"], "context manager of")
    echo = start(env, [sys.executable, "examples/echo_service.py"], "registered as 'echo'")
    env["ECHO_PID"], env["SM_PID"] = str(echo.pid), str(sm.pid)
    try:
        yield env
    finally:
        stop(echo, sm)


# -- service ----------------------------------------------------------------------------------------


def test_service_list_and_check(device: dict[str, str]) -> None:
    r = run(device, "service", "list")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == ("Found 2 services:\n"
                        "0\techo: [vbinder.example.IEcho]\n"
                        "1\tmanager: [android.os.IServiceManager]\n")
    assert run(device, "service", "check", "echo").stdout == "Service echo: found\n"
    r = run(device, "service", "check", "nothing")
    assert (r.returncode, r.stdout) == (0, "Service nothing: not found\n")


def test_service_call_prints_the_reply_as_libbinder(device: dict[str, str]) -> None:
    # IEcho.echo (code 1) answers the status (int32 0) and the String16 "hi": 16 bytes, one line
    r = run(device, "service", "call", "echo", "1", "s16", "hi")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "Result: Parcel(\t00000000 00000002 00690068 00000000 '........h.i.....')\n"
    # more than 16 bytes: a new line, then 16 per line, 0x%08x: offsets, the last line padded
    r = run(device, "service", "call", "echo", "1", "s16", "hello, binder!")
    assert r.stdout == ("Result: Parcel(\t\n"
                        "0x00000000: 00000000 0000000e 00650068 006c006c '........h.e.l.l.'\n"
                        "0x00000010: 002c006f 00620020 006e0069 00650064 'o.,. .b.i.n.d.e.'\n"
                        "0x00000020: 00210072 00000000                   'r.!.....        ')\n")
    # the service manager's getService2 (Android 16: code 2) answers a Service holding a binder:
    # the object is listed after the dump, with its type code and value (the handle)
    r = run(device, "service", "call", "manager", "2", "s16", "echo")
    assert re.fullmatch(r"Result: Parcel\(\t\n0x00000000: 00000000 00000001 00000000 00000001 .*\n"
                        r".*'Object #0 @ 0x14: 'sh\*' = \d+\)\n", r.stdout, re.S), r.stdout


def test_service_call_arguments(device: dict[str, str]) -> None:
    """Each argument kind, as the service gets it: echo's reply is the status then what it read
    back as a String16; a typed argument that is not a string makes the service fail the call."""
    r = run(device, "service", "call", "echo", "1", "i32", "-1", "i64", "5", "f", "1.5", "d", "2", "u32",
            "-1", "u64", "7", "null")
    assert r.returncode == 0 and r.stdout.startswith("Result: Parcel("), r.stdout
    # a bad argument: the message and the usage, exit 10; the call still goes (service.cpp's break)
    r = run(device, "service", "call", "echo", "1", "s16", "ok", "bogus")
    assert r.returncode == 10
    assert r.stderr == "service: unknown option bogus\n"
    assert r.stdout.startswith("Result: Parcel(\t00000000 00000002 006b006f 00000000 '........o.k.....')\n"
                               "Usage: service [-h|-?]\n")
    r = run(device, "service", "call", "echo", "1", "i32")
    assert (r.returncode, r.stderr) == (10, "service: no integer supplied for 'i32'\n")


def test_service_usage_and_exit_codes(device: dict[str, str], vbinder_mount: Path) -> None:
    r = run(device, "service")
    assert (r.returncode, r.stderr) == (0, "") and r.stdout.startswith("Usage: service [-h|-?]\n")
    r = run(device, "service", "call", "nothing", "1")
    assert (r.returncode, r.stdout, r.stderr) == (10, "", "service: Service nothing does not exist\n")
    r = run(device, "service", "check")
    assert r.returncode == 10 and r.stderr == "service: No service specified for check\n"
    # service.cpp's two messages are the other way round: with a service and no code it says
    # there is no service, with nothing it says there is no code
    r = run(device, "service", "call", "echo")
    assert r.returncode == 10 and r.stderr == "service: No service specified for call\n"
    r = run(device, "service", "call")
    assert r.returncode == 10 and r.stderr == "service: No code specified for call\n"
    r = run(device, "service", "frob")
    assert r.returncode == 10 and r.stderr == "service: Unknown command frob\n"
    r = run(device, "service", "-x", "list")
    assert (r.returncode, r.stderr) == (0, "service: unknown option -- x\n") and "Usage:" in r.stdout
    no_sm = dict(device, BINDER_DEVICE=str(vbinder_mount / "dev" / "vndbinder"))  # nobody serves it
    r = run(no_sm, "service", "list")
    assert r.returncode == 20 and r.stderr.endswith("service: Unable to get default service manager!\n")


# -- ping -------------------------------------------------------------------------------------------


def test_ping(device: dict[str, str]) -> None:
    r = run(device, "ping", "-c", "2", "echo")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(rf"(echo \(pid {device['ECHO_PID']}\): ping [12]: \d+\.\d\d ms\n){{2}}", r.stdout)
    r = run(device, "ping", "nothing")
    assert (r.returncode, r.stderr) == (1, "ping: Service nothing: not found\n")


# -- dumpsys ----------------------------------------------------------------------------------------


def test_dumpsys_lists(device: dict[str, str]) -> None:
    r = run(device, "dumpsys", "-l")
    assert (r.returncode, r.stdout) == (0, "Currently running services:\n  echo\n  manager\n")
    r = run(device, "dumpsys", "-l", "--skip")  # -l with services is a usage error: exit -1
    assert r.returncode == 255 and r.stderr.startswith("usage: dumpsys\n")
    r = run(device, "-l", bare="dumpsys")  # the bare command is the same program
    assert r.stdout == "Currently running services:\n  echo\n  manager\n"


def test_dumpsys_pid_headers_and_footers(device: dict[str, str]) -> None:
    r = run(device, "dumpsys", "--pid", "echo")  # one service: its pid alone, no header
    assert (r.returncode, r.stdout) == (0, f"{device['ECHO_PID']}\n")
    r = run(device, "dumpsys", "--pid")  # all: the list, then each between header and footer
    footer = r"--------- \d+\.\d{{3}}s was the duration of dumpsys {}, ending at: \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\n"
    rule = "-" * 79
    assert re.fullmatch(
        "Currently running services:\n  echo\n  manager\n"
        f"{rule}\nDUMP OF SERVICE echo:\n{device['ECHO_PID']}\n" + footer.format("echo")
        + f"{rule}\nDUMP OF SERVICE manager:\n{device['SM_PID']}\n" + footer.format("manager"), r.stdout), r.stdout
    # --pid with another kind: the pid is labelled (dumpPidToFd's exclusive is TYPE_PID alone)
    r = run(device, "dumpsys", "--pid", "--thread", "echo")
    assert re.fullmatch(rf"Service host process PID: {device['ECHO_PID']}\nThreads in use: \d+/\d+\n", r.stdout)
    r = run(device, "dumpsys", "--pid", "--skip", "manager")
    assert "  manager (skipped)\n" in r.stdout and "DUMP OF SERVICE manager" not in r.stdout
    r = run(device, "dumpsys", "--priority", "CRITICAL", "--pid")  # nothing is registered CRITICAL
    assert (r.returncode, r.stdout) == (0, "")
    r = run(device, "dumpsys", "nothing")
    assert (r.returncode, r.stderr) == (0, "Can't find service: nothing\n")


def test_dumpsys_reads_the_debug_files(device: dict[str, str]) -> None:
    """--thread counts the service's looper threads in its binder_logs/proc/PID (the main thread
    that joined the pool and the ones the driver asked for), --clients the pids that hold a ref
    to its node, less dumpsys's own."""
    r = run(device, "dumpsys", "--thread", "echo")
    m = re.fullmatch(r"Threads in use: (\d+)/(\d+)\n", r.stdout)
    assert m and int(m.group(2)) >= 1 and int(m.group(1)) <= int(m.group(2)), r.stdout + r.stderr
    r = run(device, "dumpsys", "--clients", "echo")
    assert r.stdout == f"Client PIDs: {device['SM_PID']}\n", r.stderr  # the service manager holds it


def test_dumpsys_timeout(device: dict[str, str]) -> None:
    """A service that does not answer (stopped): after -T the timeout message, from both of
    dumpsys's writers, and dumpsys goes on."""
    os.kill(int(device["ECHO_PID"]), signal.SIGSTOP)
    try:
        r = run(device, "dumpsys", "-T", "300", "--pid", "echo")
    finally:
        os.kill(int(device["ECHO_PID"]), signal.SIGCONT)
    assert r.returncode == 0
    assert r.stdout == "\n*** SERVICE 'echo' DUMP TIMEOUT (300ms) EXPIRED ***\n\n" * 2
    r = run(device, "dumpsys", "-t", "0", "echo")
    assert (r.returncode, r.stderr) == (255, "Error: invalid timeout(seconds) number: '0'\n")


# -- every release ----------------------------------------------------------------------------------


@pytest.mark.parametrize("release", [11, 12, 13, 14, 15, 16])
def test_each_releases_service_manager(vbinder_mount: Path, release: int) -> None:
    """A service manager speaking Android N's protocol, the echo service and the commands with
    $VBINDER_ANDROID=N: the same answers; the codes of another release do not reach it."""
    env = dict(daemon_env(), BINDER_DEVICE=str(vbinder_mount / "dev" / "binder"), VBINDER_ANDROID=str(release))
    sm = start(env, [sys.executable, "-m", "vbinder", "servicemanager", "--android", str(release)],
               f"(Android {release})")
    echo = start(env, [sys.executable, "examples/echo_service.py"], "registered as 'echo'")
    try:
        r = run(env, "service", "list")
        assert r.stdout == ("Found 2 services:\n0\techo: [vbinder.example.IEcho]\n"
                            "1\tmanager: [android.os.IServiceManager]\n"), r.stderr
        r = subprocess.run([sys.executable, "examples/echo_client.py", "hi"], env=env, capture_output=True,
                           text=True, timeout=TIMEOUT, cwd=REPO, stdin=subprocess.DEVNULL)
        assert "echo('hi') -> 'hi'" in r.stdout, r.stderr
        other = 16 if release != 16 else 14
        r = run(dict(env, VBINDER_ANDROID=str(other)), "service", "check", "echo")
        assert r.stdout == "Service echo: not found\n"  # its checkService is another method there
    finally:
        stop(echo, sm)


# -- file descriptors: service call's fd, afd and nfd; dumpsys's dump -----------------------------

READER = """
import os, sys
from vbinder_client import FIRST_CALL_TRANSACTION, ProcessState, Service, default_service_manager, method

class Reader(Service):
    descriptor = "vbinder.test.IReader"

    @method(FIRST_CALL_TRANSACTION)
    def read(self, data, reply):
        # every fd object in the call: what its file holds, and what kind of file it is
        while data.data_avail() >= 24:
            fd = data.read_file_descriptor()
            what = os.readlink(f"/proc/self/fd/{fd}")
            kind = "memfd" if what.startswith("/memfd:test") else "file" if what.startswith("/") else what
            print(f"read {os.pread(fd, 100, 0)!r} ({kind})", flush=True)
        reply.write_int32(len(os.listdir("/proc/self/fd")))  # after the Service's status

ps = ProcessState.init()
default_service_manager().add_service("reader", Reader())
ps.start_thread_pool()
print("ready", flush=True)
ps.ipc().join_thread_pool()
"""


def service_fds(result: str) -> int:
    """The reader's open fds, from ``Result: Parcel(\t00000000 NNNNNNNN  '........')``."""
    return int(result.split()[3], 16)


def test_service_call_passes_files(device: dict[str, str], tmp_path: Path) -> None:
    """``fd PATH`` (the file, opened read-only), ``afd PATH`` (an ashmem region, a memfd named
    ``test``, holding the file's bytes) and ``nfd N`` (the command's own fd N) reach the service
    as fds of its own; a path that cannot be opened is service.cpp's usage error, an fd number that
    is not open fails the call (the driver's EBADF: ``Parcel(NULL)``)."""
    (tmp_path / "a.txt").write_text("first file")
    (tmp_path / "b.txt").write_text("second")
    reader = start(device, [sys.executable, "-c", READER], "ready")
    try:
        assert reader.stdout is not None

        def served() -> str:
            return reader.stdout.readline().strip()  # type: ignore[union-attr]

        before = service_fds(run(device, "service", "call", "reader", "1").stdout)
        r = run(device, "service", "call", "reader", "1", "fd", str(tmp_path / "a.txt"))
        assert (r.returncode, r.stderr) == (0, ""), r.stdout
        assert served() == "read b'first file' (file)"
        assert service_fds(r.stdout) == before + 1  # the call's fd, the service's own until it replied
        assert re.fullmatch(r"Result: Parcel\(\t00000000 [0-9a-f]{8} +'\.{8}'\)\n", r.stdout), r.stdout
        r = run(device, "service", "call", "reader", "1", "afd", str(tmp_path / "b.txt"), "fd",
                str(tmp_path / "a.txt"))
        assert (r.returncode, r.stderr) == (0, ""), r.stdout
        assert [served(), served()] == ["read b'second' (memfd)", "read b'first file' (file)"]
        with open(tmp_path / "b.txt", "rb") as stdin:  # nfd 0: the command's stdin
            r = subprocess.run([sys.executable, "-m", "vbinder", "service", "call", "reader", "1", "nfd", "0"],
                               env=device, capture_output=True, text=True, timeout=TIMEOUT, stdin=stdin)
        assert (r.returncode, r.stderr) == (0, ""), r.stdout
        assert served() == "read b'second' (file)"
        # failures
        r = run(device, "service", "call", "reader", "1", "nfd", "987")  # not open in the command
        assert (r.returncode, r.stdout, r.stderr) == (0, "Result: Parcel(NULL)\n", "")
        r = run(device, "service", "call", "reader", "1", "fd", str(tmp_path / "missing"))
        assert r.returncode == 10 and r.stderr == f"service: could not open '{tmp_path / 'missing'}'\n"
        assert "Usage: service" in r.stdout
        r = run(device, "service", "call", "reader", "1", "afd", str(tmp_path / "missing"))
        assert r.returncode == 10 and r.stderr == f"service: could not open or stat '{tmp_path / 'missing'}'\n"
        r = run(device, "service", "call", "reader", "1", "nfd")
        assert r.returncode == 10 and r.stderr == "service: no file descriptor supplied for 'nfd'\n"
        # none of the calls' files stayed with the service
        assert service_fds(run(device, "service", "call", "reader", "1").stdout) == before
    finally:
        stop(reader)


def test_dumpsys_prints_the_services_dump(device: dict[str, str]) -> None:
    """``dumpsys SERVICE [ARGS]`` is IBinder::dump: DUMP_TRANSACTION with a pipe's write end and the
    words, and what the service writes there is dumpsys's output (the echo example's ``dump``)."""
    r = run(device, "dumpsys", "echo")
    assert (r.returncode, r.stdout, r.stderr) == (0, "echo service: 0 echoes answered (dump args: none)\n", "")
    assert "h.i." in run(device, "service", "call", "echo", "1", "s16", "hi").stdout  # one echo
    r = run(device, "dumpsys", "echo", "--verbose", "x")  # the words after the name are the dump's
    assert r.stdout == "echo service: 1 echoes answered (dump args: --verbose x)\n"
    r = run(device, "dumpsys")  # every service, each between a header and a footer, with -a
    assert r.returncode == 0, r.stderr
    assert ("DUMP OF SERVICE echo:\necho service: 1 echoes answered (dump args: -a)\n--------- "
            in r.stdout), r.stdout
    r = run(device, "echo", bare="dumpsys")
    assert r.stdout == "echo service: 1 echoes answered (dump args: none)\n"
