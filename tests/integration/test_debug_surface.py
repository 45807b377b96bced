"""The debug surface through a real mount: debugfs, parameters from a shell, kmsg, vbinder commands.

Expectations are the 6.1 kernel's: shared/oracle/samples/stock (debugfs_A_inflight.txt, the
smoke's scenario A while its call is in flight; module_params.txt) and 6.1's param_set_uint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.driver.replay import load_sample, normalize
from tests.support import REPO, Daemon, daemon_env

from .test_calls import TIMEOUT, read_json, spawn, stop

DEBUGFS = "sys/kernel/debug/binder"
PARAMS = "sys/module/binder/parameters"


def sh(cmd: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["bash", "-c", cmd]
    if user is not None:
        argv = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)


def test_state_with_a_call_in_flight_reads_as_the_kernels(vbinder_mount: Path) -> None:
    # samples/stock/debugfs_A_inflight.txt: server 147 holds client 150's call (smoke scenario A).
    dev = str(vbinder_mount / "dev" / "binder")
    peer = str(REPO / "tests" / "integration" / "raw_peer.py")
    server = subprocess.Popen([sys.executable, peer, "server", dev, "hold"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=daemon_env())
    client = None
    try:
        assert read_json(server)["what"] == "ready"
        client = subprocess.Popen([sys.executable, peer, "client", dev, "hold"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=daemon_env())
        read_json(server)  # its BR_TRANSACTION
        read_json(server)  # the payload: the call is now in flight
        pids = {str(server.pid): "147", str(client.pid): "150"}
        want = load_sample("A_inflight")
        for name, text in want.items():
            # The client's pread reaches its wait (l 10) a moment after its pwrite queued the
            # call, which the server may have read already (on the kernel one ioctl does both).
            deadline = time.monotonic() + TIMEOUT
            while True:
                path = vbinder_mount / DEBUGFS / name.replace("147", str(server.pid)).replace(
                    "150", str(client.pid))
                try:
                    got = path.read_text()
                except FileNotFoundError:
                    # Seen once under load in a full run (its cause not found yet): the proc
                    # file was not there; the check waits for it as for the text, to the deadline.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
                    continue
                got = re.sub(r"\b\d{3,7}\b", lambda m: pids.get(m.group(), m.group()), got)
                if normalize(got) == normalize(text) or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            # the transaction log's l= is the source line of a failure; 0 for a success, as here
            assert normalize(got) == normalize(text), f"{name}:\n{got}"
        server.stdin.write("\n")  # type: ignore[union-attr]
        server.stdin.flush()  # type: ignore[union-attr]
        assert client.wait(TIMEOUT) == 0
    finally:
        stop(server, *([client] if client else []))


def test_proc_files_appear_and_disappear(vbinder_mount: Path) -> None:
    proc_dir = vbinder_mount / DEBUGFS / "proc"
    p = spawn("""
        import os, sys
        fd = os.open(sys.argv[1], os.O_RDWR)
        print("open", flush=True)
        os.read(0, 1)                # unbuffered: parent and child share stdin
        if os.fork() == 0:           # a child holds the fd: the proc lingers (binder_release waits)
            os.read(0, 1)
            os._exit(0)
        os.close(fd)
        print("closed", flush=True)
        os.read(0, 1)
    """, str(vbinder_mount / "dev" / "binder"))
    try:
        assert p.stdout.readline().strip() == "open"  # type: ignore[union-attr]
        assert os.listdir(proc_dir) == [str(p.pid)]
        text = (proc_dir / str(p.pid)).read_text()
        assert text == f"binder proc state:\nproc {p.pid}\ncontext binder\n"
        p.stdin.write("\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
        assert p.stdout.readline().strip() == "closed"  # type: ignore[union-attr]
        assert os.listdir(proc_dir) == [str(p.pid)]  # the child still holds the open file
        p.stdin.write("\n\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
        p.wait(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while os.listdir(proc_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.listdir(proc_dir) == []
        assert f"proc {p.pid}" not in (vbinder_mount / DEBUGFS / "state").read_text()
    finally:
        stop(p)


def test_parameters_from_a_shell(vbinder_mount: Path) -> None:
    m = vbinder_mount / PARAMS
    # samples/stock/module_params.txt: debug_mask 7, stop_on_user_error 0; binder_alloc's mask 1
    assert (m / "debug_mask").read_text() == "7\n"
    assert (m / "stop_on_user_error").read_text() == "0\n"
    assert (m / "devices").read_text() == "binder,hwbinder,vndbinder\n"
    assert (vbinder_mount / "sys/module/binder_alloc/parameters/debug_mask").read_text() == "1\n"
    assert sh(f"echo 8 > {m}/debug_mask").returncode == 0
    assert (m / "debug_mask").read_text() == "8\n"
    assert sh(f"echo 0x18 > {m}/debug_mask").returncode == 0
    assert (m / "debug_mask").read_text() == "24\n"
    assert sh(f"echo 010 > {m}/debug_mask").returncode == 0  # base 0: octal
    assert (m / "debug_mask").read_text() == "8\n"
    bad = sh(f"echo garbage > {m}/debug_mask")
    assert bad.returncode != 0 and "Invalid argument" in bad.stderr
    assert (m / "debug_mask").read_text() == "8\n"
    big = sh(f"echo 4294967296 > {m}/debug_mask")
    assert big.returncode != 0 and "Numerical result out of range" in big.stderr
    ro = sh(f"echo x > {m}/devices")  # read-only even for root (decided at open)
    assert ro.returncode != 0 and "Permission denied" in ro.stderr


def test_non_root_writes_to_parameters_fail(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    mnt = Path(tempfile.mkdtemp(prefix="vbinder-allow-other-"))  # pytest's tmp dirs are 0700
    os.chmod(mnt, 0o755)
    d = Daemon(mnt, tmp_path / "d.log", [sys.executable, "-m", "vbinder", "mount", str(mnt), "--foreground",
                                          "--allow-other"])
    try:
        r = sh(f"cat {mnt}/{PARAMS}/debug_mask; echo 8 > {mnt}/{PARAMS}/debug_mask", user="65534")
        assert r.stdout == "7\n"
        assert "Permission denied" in r.stderr
        assert (mnt / PARAMS / "debug_mask").read_text() == "7\n"
    finally:
        d.stop()
        mnt.rmdir()


def test_kmsg_streams_new_lines(vbinder_mount: Path) -> None:
    (vbinder_mount / PARAMS / "debug_mask").write_text("8\n")  # OPEN_CLOSE
    lines: list[str] = []
    reader = subprocess.Popen(["cat", str(vbinder_mount / "proc" / "kmsg")], stdout=subprocess.PIPE, text=True)
    t = threading.Thread(target=lambda: lines.extend(iter(reader.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    t.start()
    try:
        time.sleep(0.2)
        fd = os.open(vbinder_mount / "dev" / "binder", os.O_RDWR)
        os.close(fd)
        deadline = time.monotonic() + TIMEOUT
        pid = os.getpid()
        while time.monotonic() < deadline and not any("binder_deferred_release" in x for x in lines):
            time.sleep(0.05)
        text = "".join(lines)
        # 6.1's lines for an open and close, as samples/stock/dmesg_B_debug_mask_0x8.txt shows them
        assert re.search(rf"^<6>\[ *\d+\.\d{{6}}\] binder: binder_open: {pid}:\d+$", text, re.M), text
        assert re.search(rf"binder: binder_flush: {pid} woke 0 threads$", text, re.M)
        assert re.search(rf"binder: binder_deferred_release: {pid} threads 0, nodes 0 \(ref 0\), refs 0, "
                         r"active transactions 0$", text, re.M)
    finally:
        reader.kill()
        reader.wait()
    # O_NONBLOCK readers get EAGAIN once they have read everything
    fd = os.open(vbinder_mount / "proc" / "kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                if not os.read(fd, 65536):
                    break
            except BlockingIOError:
                break
    finally:
        os.close(fd)


def test_stop_on_user_error_holds_and_releases_calls(vbinder_mount: Path) -> None:
    dev = str(vbinder_mount / "dev" / "binder")
    (vbinder_mount / PARAMS / "stop_on_user_error").write_text("1\n")
    p = spawn("""
        import sys, time
        from tests.driver.harness import Client, FdFile, cmd
        from vbinder import uapi
        import threading
        c = Client(None, threading.get_native_id(), file=FdFile(sys.argv[1]))
        c.write_read(cmd(uapi.BC_FREE_BUFFER, 0xDEAD000, fmt="Q"), 0)   # a user error
        print("erred", flush=True)
        t = time.monotonic()
        f = c.ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0))         # held until released
        print(f.code, round(time.monotonic() - t, 2), flush=True)
    """, dev)
    try:
        assert p.stdout.readline().strip() == "erred"  # type: ignore[union-attr]
        assert (vbinder_mount / PARAMS / "stop_on_user_error").read_text() == "2\n"
        time.sleep(0.5)
        assert p.poll() is None  # still held
        (vbinder_mount / PARAMS / "stop_on_user_error").write_text("0\n")
        code, waited = p.stdout.readline().split()  # type: ignore[union-attr]
        assert code == "0" and float(waited) >= 0.4
    finally:
        stop(p)


def test_vbinder_commands(vbinder_mount: Path) -> None:
    def vb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vbinder", *args, "--mount", str(vbinder_mount)]
                              if args[0] != "param" else
                              [sys.executable, "-m", "vbinder", "param", "--mount", str(vbinder_mount), *args[1:]],
                              capture_output=True, text=True, env=daemon_env(), timeout=TIMEOUT)

    assert vb("state").stdout == (vbinder_mount / DEBUGFS / "state").read_text()
    r = vb("param")
    assert re.search(r"^debug_mask\s+7\s+\(USER_ERROR \| FAILED_TRANSACTION \| DEAD_TRANSACTION\)$", r.stdout, re.M)
    assert vb("param", "debug_mask", "0x8").returncode == 0
    assert (vbinder_mount / PARAMS / "debug_mask").read_text() == "8\n"
    bad = vb("param", "debug_mask", "nope")
    assert bad.returncode == 1 and "not a valid value" in bad.stderr
    os.close(os.open(vbinder_mount / "dev" / "binder", os.O_RDWR))
    log = vb("log", "--grep", "binder_open")
    assert f"binder_open: {os.getpid()}:" in log.stdout
