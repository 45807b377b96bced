"""The tracepoints against the real 6.1 driver: the same scenarios traced in the oracle's VM and
on a vbinder mount, every binder event on, compared thread by thread.

Lines are normalized for what differs between two runs of anything: pids and tids (named by
their order: the roles are forked in order, and each role's threads start in order), times, CPUs,
user pointers (``arg=``, which the daemon never sees), debug ids (one counter the whole system
shares) and binder_wait_for_work's arguments (see ``per_thread``). What is left must be the same
events, with the same arguments, in the same order on each thread.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kernel import vm
from tests.kernel.conftest import need_kernel
from tests.support import daemon_env
from vbinder.tools.events import parse_line

PAYLOAD = vm.REPO / "tests" / "kernel" / "trace_payload.py"
# The scenarios whose every thread does the same on any run: each step waits for the one before.
# (The client's scenarios start looper threads whose timing decides which thread takes a call.)
SCENARIOS = ["raw_sync_call", "raw_refs_and_death", "raw_errors", "raw_spawn_looper", "raw_weak_refs",
             "raw_thread_exit", "raw_flush", "raw_oneway_spam", "sg_buffers", "ioctl_errors", "raw_fds",
             "raw_secctx"]
IDS = re.compile(r"\b(transaction|node|dest_ref|src_ref|dest_node|ref)=(\d+)")


def split(stdout: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    name = None
    for line in stdout.splitlines():
        if line.startswith("TRACE-END"):
            name = None
        elif line.startswith("TRACE "):
            name = line.split()[1]
            out[name] = []
        elif name is not None and not line.startswith("#") and line.strip():
            out[name].append(line)
    return out


def per_thread(lines: list[str]) -> dict[str, list[str]]:
    """Each thread's events, named P<process>.T<thread> by order, with the variable parts out."""
    # The kernel's client names no calls: vbinder's AIDL slices (print events) are left out.
    # binder_transaction_fd_recv names the fd a receiver installed, which on vbinder only the
    # receiver learns: it comes when the receiver reports it, after the transaction's other events
    # (docs/tracing.md), and is left out here (tests/faults/test_fds.py checks its arguments).
    parsed = [p for p in (parse_line(x) for x in lines)
              if p is not None and p.event not in ("tracing_mark_write", "binder_transaction_fd_recv")]
    pids = sorted({p.tgid or p.tid for p in parsed})
    tids: dict[int, list[int]] = {}
    for p in parsed:
        tids.setdefault(p.tgid or p.tid, [])
        if p.tid not in tids[p.tgid or p.tid]:
            tids[p.tgid or p.tid].append(p.tid)
    label: dict[int, str] = {}
    for i, pid in enumerate(pids):
        for j, tid in enumerate(sorted(tids[pid])):
            label[tid] = f"P{i}.T{j}"
        label.setdefault(pid, f"P{i}.T0")
    names = {pid: f"P{i}" for i, pid in enumerate(pids)}

    def normal(text: str) -> str:
        text = re.sub(r"arg=0x[0-9a-f]+", "arg=PTR", text)
        text = re.sub(r"src_fd=\d+", "src_fd=FD", text)  # a process's fd numbers differ from run to run
        text = IDS.sub(lambda m: f"{m.group(1)}={'0' if m.group(2) == '0' else 'ID'}", text)
        text = re.sub(r"(dest_proc|proc)=(\d+)", lambda m: f"{m.group(1)}={names.get(int(m.group(2)), '?')}", text)
        text = re.sub(r"dest_thread=(\d+)", lambda m: f"dest_thread={label.get(int(m.group(1)), m.group(1))}"
                      if m.group(1) != "0" else m.group(0), text)
        return re.sub(r"(\d+):(\d+)", lambda m: f"{names.get(int(m.group(1)), m.group(1))}:"
                      f"{label.get(int(m.group(2)), m.group(2))}" if m.group(1) != "0" else m.group(0), text)

    out: dict[str, list[str]] = {}
    for p in parsed:
        # binder_wait_for_work's arguments are the thread's state when its read phase starts. A
        # vbinder BINDER_WRITE_READ is two requests (its write phase at the pwrite, its read phase
        # at the pread), and another process may answer in between, where the kernel's one
        # syscall seldom leaves the time: so only that the thread looked for work is compared
        # here (tests/driver/test_trace.py compares the arguments, in a replay with no such race).
        args = "" if p.event == "binder_wait_for_work" else normal(p.args)
        out.setdefault(label[p.tid], []).append(f"{p.event}: {args}")
    return out


@pytest.fixture(scope="module")
def kernel_traces() -> dict[str, list[str]]:
    need_kernel()
    r = vm.run([str(PAYLOAD), "--device", "/dev/binder", "--tracing", "/sys/kernel/tracing", *SCENARIOS],
               timeout=600)
    if r.returncode == 125:
        r = vm.run([str(PAYLOAD), "--device", "/dev/binder", "--tracing", "/sys/kernel/tracing", *SCENARIOS],
                   timeout=600)
    traces = split(r.stdout)
    if not traces:
        pytest.fail(f"the VM traced nothing (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return traces


@pytest.fixture(scope="module")
def vbinder_traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    from tests.support import Daemon, fuse_usable

    if fuse_usable():
        pytest.skip(str(fuse_usable()))
    tmp = tmp_path_factory.mktemp("trace")
    mnt = tmp / "mnt"
    mnt.mkdir()
    daemon = Daemon(mnt, tmp / "daemon.log")
    try:
        r = subprocess.run([sys.executable, str(PAYLOAD), "--device", str(mnt / "dev" / "binder"),
                            "--tracing", str(mnt / "sys" / "kernel" / "tracing"), *SCENARIOS],
                           capture_output=True, text=True, env=daemon_env(), timeout=600)
    finally:
        daemon.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    return split(r.stdout)


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_thread_traces_as_on_the_kernel(name: str, kernel_traces: dict[str, list[str]],
                                             vbinder_traces: dict[str, list[str]]) -> None:
    kernel = per_thread(kernel_traces[name])
    mine = per_thread(vbinder_traces[name])
    assert sorted(mine) == sorted(kernel)
    for thread in kernel:
        assert mine[thread] == kernel[thread], thread


def test_the_normalization(tmp_path: Path) -> None:
    """What the comparison leaves out: pids, tids, pointers (here, without a VM)."""
    text = "TRACE x\n# tracer: nop\n          python-150     (    150) [001] .....    22.986699: " \
           "binder_ioctl: cmd=0xc0046209 arg=0x7ffc57d731b0\nTRACE-END\n"
    assert per_thread(split(text)["x"]) == {"P0.T0": ["binder_ioctl: cmd=0xc0046209 arg=PTR"]}
