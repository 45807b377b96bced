"""Calls between real processes through a mounted vbinder (issue: end to end).

Each test mounts a daemon (tests/conftest.py) and runs real client processes. Expected BR
sequences are the 6.1 kernel's (shared/oracle/README.md "Key facts", samples/stock/report.txt).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import REPO, daemon_env
from vbinder import abi, uapi

TIMEOUT = 30


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=daemon_env())


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env=daemon_env(), timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def read_json(p: subprocess.Popen[str]) -> dict:
    line = p.stdout.readline()  # type: ignore[union-attr]
    assert line, f"process ended: {p.stderr.read() if p.stderr else ''}"  # type: ignore[union-attr]
    return json.loads(line)


def stop(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(TIMEOUT)


SERVICE_MANAGER = """
    import sys
    from vbinder_client.service_manager import serve
    serve(sys.argv[1])
"""

ECHO_SERVICE = """
    import os, sys
    sys.path.insert(0, os.path.join(sys.argv[2], "examples"))
    from echo_interface import EchoService
    from vbinder_client import ProcessState, default_service_manager
    ps = ProcessState.init(sys.argv[1])
    svc = EchoService()
    default_service_manager().add_service("echo", svc)
    print("ready", os.getpid(), flush=True)
    ps.ipc().join_thread_pool()
"""


@pytest.fixture
def service_manager(vbinder_mount: Path):  # noqa: ANN201
    dev = str(vbinder_mount / "dev" / "binder")
    sm = spawn(SERVICE_MANAGER, dev)
    # ready once handle 0 answers a ping
    deadline = time.monotonic() + TIMEOUT
    while True:
        r = run("""
            import sys
            from vbinder_client import ProcessState
            sys.exit(0 if ProcessState.init(sys.argv[1]).context_proxy().ping() else 1)
        """, dev)
        if r.returncode == 0:
            break
        assert sm.poll() is None, sm.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "service manager did not come up"
        time.sleep(0.1)
    yield dev
    stop(sm)


@pytest.fixture
def echo_service(service_manager: str):  # noqa: ANN201
    svc = spawn(ECHO_SERVICE, service_manager, str(REPO))
    line = svc.stdout.readline()  # type: ignore[union-attr]
    assert line.startswith("ready"), svc.stderr.read()  # type: ignore[union-attr]
    yield service_manager, svc
    stop(svc)


def test_sync_call_br_sequences_match_the_kernel(vbinder_mount: Path) -> None:
    # oracle README "Key facts": client BR_NOOP, BR_TRANSACTION_COMPLETE, BR_REPLY in one read
    # (write_consumed 68, read_consumed 76); server BR_NOOP, BR_TRANSACTION (72); the reply's
    # write of BC_FREE_BUFFER + BC_REPLY consumes 80 and reads BR_NOOP, BR_TRANSACTION_COMPLETE (8).
    dev = str(vbinder_mount / "dev" / "binder")
    peer = str(REPO / "tests" / "integration" / "raw_peer.py")
    server = subprocess.Popen([sys.executable, peer, "server", dev], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=daemon_env())
    try:
        assert read_json(server)["what"] == "ready"
        client = subprocess.run([sys.executable, peer, "client", dev], capture_output=True, text=True,
                                env=daemon_env(), timeout=TIMEOUT)
        assert client.returncode == 0, client.stderr
        out = [json.loads(x) for x in client.stdout.splitlines()]
        call = out[0]
        assert call["brs"] == ["BR_NOOP", "BR_TRANSACTION_COMPLETE", "BR_REPLY"]
        assert (call["write_consumed"], call["read_consumed"]) == (68, 76)
        assert out[1]["data"].startswith("reply!")
        # a transaction to a bad handle: BR_NOOP, BR_FAILED_REPLY; extended error (id, 29201, -22)
        assert out[2]["brs"] == ["BR_NOOP", "BR_FAILED_REPLY"]
        assert out[3]["value"][1:] == [29201, -22]
        srv = read_json(server)
        assert srv["brs"] == ["BR_NOOP", "BR_TRANSACTION"] and srv["read_consumed"] == 72
        payload = read_json(server)
        assert payload["sender_pid"] > 0 and payload["code"] == 1 and payload["flags"] == 0x10
        reply = read_json(server)
        assert reply["brs"] == ["BR_NOOP", "BR_TRANSACTION_COMPLETE"]
        assert (reply["write_consumed"], reply["read_consumed"]) == (80, 8)
    finally:
        stop(server)


def test_echo_example_sync_and_oneway_across_processes(echo_service: tuple[str, subprocess.Popen[str]]) -> None:
    dev, svc = echo_service
    r = subprocess.run([sys.executable, str(REPO / "examples" / "echo_client.py"), "hi there", dev],
                       capture_output=True, text=True, env=daemon_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert "echo('hi there') -> 'hi there'" in r.stdout
    assert "services: echo" in r.stdout
    # dump: the client's stdout went to the service as an fd, and the service wrote to it
    assert "echoes answered (dump args: --counts)" in r.stdout.splitlines()[-1]
    # the one-way shout reaches the service
    line = svc.stdout.readline()  # type: ignore[union-attr]
    assert "someone shouted 'HI THERE'" in line


def test_dumpsys_gets_the_services_own_dump(echo_service: tuple[str, subprocess.Popen[str]]) -> None:
    """dumpsys's DUMP_TRANSACTION carries its pipe's write end; the echo service writes its dump there."""
    dev, _svc = echo_service
    r = subprocess.run([sys.executable, "-m", "vbinder", "dumpsys", "echo", "-a", "--brief"], capture_output=True,
                       text=True, env=dict(daemon_env(), BINDER_DEVICE=dev), timeout=TIMEOUT)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.startswith("echo service: ") and r.stdout.endswith("(dump args: -a --brief)\n"), r.stdout


def test_binder_object_passed_through_service_manager_and_called(vbinder_mount: Path, service_manager: str) -> None:
    """A process sends its own object to another through a call; the other calls it back."""
    holder = spawn("""
        import sys
        from vbinder_client import *
        class Holder(Service):
            descriptor = "test.IHolder"
            @method(FIRST_CALL_TRANSACTION)
            def give(self, data, reply):
                cb = data.read_strong_binder()          # a proxy to the caller's object
                p = Parcel(); p.write_interface_token("test.ICallback"); p.write_int32(41)
                r = cb.transact(FIRST_CALL_TRANSACTION, p)
                r.read_exception()
                reply.write_int32(r.read_int32())
        ps = ProcessState.init(sys.argv[1])
        default_service_manager().add_service("holder", Holder())
        print("ready", flush=True)
        ps.start_thread_pool()
        ps.ipc().join_thread_pool()
    """, service_manager)
    try:
        assert holder.stdout.readline().startswith("ready"), holder.stderr.read()  # type: ignore[union-attr]
        r = run("""
            import sys
            from vbinder_client import *
            class Callback(Service):
                descriptor = "test.ICallback"
                @method(FIRST_CALL_TRANSACTION)
                def plus_one(self, data, reply):
                    reply.write_int32(data.read_int32() + 1)
            ps = ProcessState.init(sys.argv[1])
            ps.start_thread_pool()
            holder = default_service_manager().get_service("holder")
            p = Parcel(); p.write_interface_token("test.IHolder"); p.write_strong_binder(Callback())
            reply = holder.transact(FIRST_CALL_TRANSACTION, p)
            reply.read_exception()
            print(reply.read_int32())
        """, service_manager)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "42"
    finally:
        stop(holder)


def test_invalid_handle_is_failed_reply(service_manager: str) -> None:
    r = run("""
        import sys
        from vbinder_client import *
        ps = ProcessState.init(sys.argv[1])
        try:
            ps.proxy_for_handle(99).transact(FIRST_CALL_TRANSACTION, Parcel())
        except FailedTransactionError as e:
            print("failed:", e)
    """, service_manager)
    assert r.returncode == 0, r.stderr
    assert "BR_FAILED_REPLY" in r.stdout


def test_call_to_exited_process_is_dead_reply(echo_service: tuple[str, subprocess.Popen[str]]) -> None:
    dev, svc = echo_service
    client = spawn("""
        import os, sys
        sys.path.insert(0, os.path.join(sys.argv[2], "examples"))
        from echo_interface import IEcho
        from vbinder_client import *
        ProcessState.init(sys.argv[1])
        echo = IEcho.Stub.as_interface(default_service_manager().get_service("echo"))
        print(echo.echo("alive"), flush=True)
        sys.stdin.readline()
        try:
            echo.echo("dead?")
        except DeadObjectError as e:
            print("dead:", e, flush=True)
    """, dev, str(REPO))
    try:
        assert client.stdout.readline().strip() == "alive", client.stderr.read()  # type: ignore[union-attr]
        svc.send_signal(signal.SIGKILL)
        svc.wait(TIMEOUT)
        client.stdin.write("go\n")  # type: ignore[union-attr]
        client.stdin.flush()  # type: ignore[union-attr]
        line = client.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("dead:") and "BR_DEAD_REPLY" in line, client.stderr.read()  # type: ignore[union-attr]
    finally:
        stop(client)


def test_malformed_frame_is_einval_and_daemon_unharmed(vbinder_mount: Path) -> None:
    dev = vbinder_mount / "dev" / "binder"
    fd = os.open(dev, os.O_RDWR)
    try:
        key = abi.key(os.getpid())
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"GARBAGE!" * 4, key)
        assert e.value.errno == errno.EINVAL
        frame = abi.encode_request(uapi.BINDER_VERSION, uapi.VERSION.pack(0), [(0x1000, b"a" * 16), (0x1008, b"b")])
        with pytest.raises(OSError) as e:
            os.pwrite(fd, frame, key)
        assert e.value.errno == errno.EINVAL
        # the same file still works
        os.pwrite(fd, abi.encode_request(uapi.BINDER_VERSION, uapi.VERSION.pack(0)), key)
        f = abi.decode_reply(os.pread(fd, 4096, key))
        assert f.code == 0 and uapi.VERSION.unpack(f.arg) == (8,)
    finally:
        os.close(fd)


def test_refs_of_a_received_handle_precede_the_free_of_its_buffer(vbinder_mount: Path) -> None:
    """A handle read from a received buffer is kept alive by that buffer until BC_FREE_BUFFER; the
    new proxy's BC_INCREFS/BC_ACQUIRE must reach the driver first. They go in the receiving
    thread's own queue, ahead of the free: queued for the whole process, another thread (a looper
    just spawned, say) could take them and send them after the free, and the driver would delete
    the ref and fail the next call on the handle (BR_FAILED_REPLY, seen in the conformance run)."""
    r = run("""
        import struct, sys
        from vbinder import uapi
        from vbinder_client import IPCThreadState, ProcessState
        ps = ProcessState.init(sys.argv[1])
        st = IPCThreadState.self()
        data = uapi.FLAT_BINDER_OBJECT.pack(uapi.BINDER_TYPE_HANDLE, 0, 7, 0) + struct.pack("<i", 0b001100)
        offsets = struct.pack("<Q", 0)
        ptr = 0x7000_0000_1000  # as the driver delivers it: the data, padded to 8, then the offsets
        st.buffers[ptr] = data + bytes(4) + offsets
        tr = (0, 0, 1, 0, 0, 0, len(data), len(offsets), ptr, ptr + len(data) + 4)
        parcel = st._parcel(tr)
        proxy = parcel.read_strong_binder()
        print(bytes(st.out).hex(), len(ps.pending), proxy.handle)
    """, str(vbinder_mount / "dev" / "binder"))
    assert r.returncode == 0, r.stderr
    out, pending, handle = r.stdout.split()
    u32, u64 = uapi.U32.pack, uapi.U64.pack
    assert bytes.fromhex(out) == (u32(uapi.BC_INCREFS) + u32(7) + u32(uapi.BC_ACQUIRE) + u32(7)
                                  + u32(uapi.BC_FREE_BUFFER) + u64(0x7000_0000_1000))
    assert (pending, handle) == ("0", "7")  # nothing left for another thread to send late


AIDL_SERVICE = """
    import sys
    from vbinder_client import ProcessState, aidl, default_service_manager
    root = sys.argv[2] + "/tests/client/aidl"
    ITypes = aidl.load(root + "/vbinder/test/ITypes.aidl", include=[root])
    class Types(ITypes.Stub):
        def callBack(self, cb, v):
            return cb.plusOne(v) * 10          # a call back into the caller, nested
        def reverseInts(self, v, copy):
            copy[:] = v
            return v[::-1]
        def fail(self, code):
            raise aidl.ServiceSpecificException(code, "no")
    ps = ProcessState.init(sys.argv[1])
    default_service_manager().add_service("types", Types())
    print("ready", flush=True)
    ps.start_thread_pool()
    ps.ipc().join_thread_pool()
"""


def test_aidl_interfaces_across_processes(service_manager: str) -> None:
    """Generated proxies and stubs through the driver: a callback object, out arrays, a
    service-specific error, an unimplemented method."""
    svc = spawn(AIDL_SERVICE, service_manager, str(REPO))
    try:
        assert svc.stdout.readline().startswith("ready"), svc.stderr.read()  # type: ignore[union-attr]
        r = run("""
            import sys
            from vbinder_client import ProcessState, aidl, default_service_manager
            root = sys.argv[2] + "/tests/client/aidl"
            ITypes = aidl.load(root + "/vbinder/test/ITypes.aidl", include=[root])
            ICallback = aidl.load(root + "/vbinder/test/ICallback.aidl", include=[root])
            class Callback(ICallback.Stub):
                def plusOne(self, v):
                    return v + 1
            ps = ProcessState.init(sys.argv[1])
            ps.start_thread_pool()
            types = ITypes.Stub.as_interface(default_service_manager().get_service("types"))
            print(type(types).__name__, types.callBack(Callback(), 4))
            copy = [0, 0]
            print(types.reverseInts([1, 2], copy), copy)
            try:
                types.fail(7)
            except aidl.ServiceSpecificException as e:
                print("service-specific", e.error_code, e.message)
            try:
                types.repeatInt(1)
            except aidl.UnsupportedOperationException as e:
                print("unsupported", e.message)
        """, service_manager, str(REPO))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["_ITypesProxy 50", "[2, 1] [1, 2]", "service-specific 7 no",
                                         "unsupported repeatInt"]
    finally:
        stop(svc)
