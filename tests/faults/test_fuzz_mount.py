"""Fuzzing the device ABI through a real mount (issue "Nothing stuck, nothing lost": hostile input).

tests/driver/test_fuzz.py fuzzes the core; this goes through FUSE: hypothesis-drawn random and
mutated frames, split at random, written with ``os.pwrite`` and read back with ``os.pread`` by
three threads of this process on two O_NONBLOCK device files, at their own keys, each other's
and keys of threads that cannot exist; meanwhile two other processes (tests/faults/fuzz_worker.py)
do the same on blocking files, their waiting reads ended by SIGALRM. Every system call must get an
answer: bytes, or an errno meant for that caller (never EIO, a handler's bug, nor ENOTCONN, a dead
daemon). Afterwards the daemon is consistent: its log has no internal error, the debugfs files
(once served) and the test counts read fine, a normal call between two processes works, and once
the fuzzers' files are closed the driver holds nothing. A longer run: ``make faults-long``
(or VBINDER_FUZZ_MOUNT_EXAMPLES=N).
"""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.driver.test_fuzz import frames
from tests.faults.conftest import Server
from tests.faults.support import (
    DEBUGFS,
    HERE,
    FaultDaemon,
    kill_all,
    read_counts,
    read_line,
    spawn_peer,
    wait_for_baseline,
)
from tests.support import daemon_env, fuse_usable
from vbinder import abi

pytestmark = pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))

OK_ERRNOS = {errno.EINVAL, errno.EBUSY, errno.ENOMSG, errno.EAGAIN, errno.ENOMEM, errno.ECANCELED, errno.EFAULT}
NO_TID = 1 << 22  # above pid_max: no thread has it

# One operation: (thread, file, key: 0 own / 1 a sibling thread's / 2 no thread's, frame,
# split points, a read after it: None or (pos, size)).
op = st.tuples(st.integers(0, 2), st.integers(0, 1), st.sampled_from([0, 0, 0, 1, 2]), frames(),
               st.lists(st.integers(1, 400), max_size=3),
               st.none() | st.tuples(st.sampled_from([0, 0, 0, 24, 100]), st.sampled_from([24, 256, 4096, 1 << 16])))


def _run_ops(fds: list[int], ops: list[tuple], tids: list[int], me: int, bad: list[str]) -> None:  # type: ignore[type-arg]
    own = threading.get_native_id()
    tids[me] = own
    for _t, f, key_kind, data, cuts, read in ops:
        tid = own if key_kind == 0 else tids[(me + 1) % len(tids)] if key_kind == 1 else NO_TID + me
        key = abi.key(tid or own)
        chunks = []
        pos = 0
        for end in sorted({c for c in cuts if c < len(data)}) + [len(data)]:
            chunks.append((pos, data[pos:end]))
            pos = end
        for at, chunk in chunks:
            try:
                n = os.pwrite(fds[f], chunk, key + at)
                if n != len(chunk):
                    bad.append(f"short write {n} of {len(chunk)}")
            except OSError as e:
                if e.errno not in OK_ERRNOS:
                    bad.append(f"write: {e!r}")
                break
        if read is not None:
            try:
                os.pread(fds[f], read[1], key + read[0])
            except OSError as e:
                if e.errno not in OK_ERRNOS:
                    bad.append(f"read: {e!r}")


def _fuzz(daemon: FaultDaemon, tmp_path: Path, examples: int) -> None:
    import subprocess
    import sys

    dev = daemon.device
    workers = [subprocess.Popen([sys.executable, str(HERE / "fuzz_worker.py"), dev, str(seed)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=daemon_env()) for seed in (1, 2)]
    fds = [os.open(dev, os.O_RDWR | os.O_NONBLOCK) for _ in range(2)]
    bad: list[str] = []
    try:
        for w in workers:
            assert read_line(w) == "ready\n"
        tids = [0, 0, 0]

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(ops=st.lists(op, max_size=15))
        def run(ops: list[tuple]) -> None:  # type: ignore[type-arg]
            threads = [threading.Thread(target=_run_ops, args=(fds, [o for o in ops if o[0] == i], tids, i, bad))
                       for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
                assert not t.is_alive(), "a fuzzing thread is stuck"
            assert not bad, bad[:10]

        run()
        summaries = []
        for w in workers:
            assert w.stdin is not None
            w.stdin.close()
            line = read_line(w, 60)
            assert w.wait(60) == 0 and line, w.stderr.read() if w.stderr else ""
            summaries.append(json.loads(line))
        for s in summaries:
            assert not s["bad"], s
        print("fuzz workers:", [dict(s["results"]) for s in summaries])
    finally:
        kill_all(*workers)
        for fd in fds:
            os.close(fd)
    # consistent: no handler failed, the files read, the driver back to nothing
    log = daemon.log_text()
    assert "answering EIO" not in log and "Traceback" not in log, log[-3000:]
    read_counts(daemon.mountpoint)
    debugfs = daemon.mountpoint / DEBUGFS
    for name in ("state", "stats", "transactions", "transaction_log", "failed_transaction_log"):
        if (debugfs / name).exists():
            (debugfs / name).read_text()
    wait_for_baseline(daemon.mountpoint)
    # a normal call between two processes works
    server = Server(dev, tmp_path)
    client = spawn_peer("blocked", dev, "0", log=tmp_path / "client.err")
    try:
        assert read_line(client) == "calling\n", (tmp_path / "client.err").read_text()
        assert read_line(client) == "answered\n"
        assert read_line(client) == "retried 2\n"
    finally:
        kill_all(client, server.proc)
    wait_for_baseline(daemon.mountpoint)


def test_fuzz_the_device_abi_through_the_mount(fault_daemon: FaultDaemon, tmp_path: Path) -> None:
    _fuzz(fault_daemon, tmp_path, int(os.environ.get("VBINDER_FUZZ_MOUNT_EXAMPLES", "300")))


@pytest.mark.long
def test_fuzz_the_device_abi_through_the_mount_long(fault_daemon: FaultDaemon, tmp_path: Path) -> None:
    _fuzz(fault_daemon, tmp_path, int(os.environ.get("VBINDER_FUZZ_MOUNT_EXAMPLES", "3000")))


