"""debugfs files rendered by vbinder.driver.debugfs against Linux 6.1's text.

Two kinds of expectations, both real 6.1 output:

- ``tests/oracle/samples/stock/debugfs_*.txt``: smoke.py's snapshots. The scenario is
  replayed on the core (``oracle_scripts/scenarios.py`` ``smoke``, with the sample's pids).
- ``expected/<scenario>.json``: scenarios of ``oracle_scripts/scenarios.py`` run on the oracle
  by ``oracle_scripts/run_scenario.py``, replayed on the core with the same pids and tids.

Texts are compared line for line after ``replay.normalize`` (hashed pointers and the source
line of failed transactions); debug ids, pids, counts and everything else must be equal.
"""

from __future__ import annotations

import difflib
import json

import pytest

from vbinder import uapi
from vbinder.driver import debugfs as dfs
from vbinder.driver.transaction_log import LogEntry
from vbinder.driver.work import Work, WorkType

from . import replay
from .harness import Client, cmd, make_driver

SMOKE_TIDS = {"server": [147], **{tag: [150 + i] for i, tag in enumerate("ABCDEF")}}
SAMPLE_TAGS = ("A_inflight", "A_idle", "A_after_client_exit", "C_idle", "Z_final", "Z_after_server_close")

# What each oracle scenario exercises (binder.c functions unless noted).
ORACLE_SCENARIOS = {
    "smoke": "smoke.py on a fresh oracle boot: everything the samples show",
    "objects_death": "print_binder_node_nilocked (proc list, tr), print_binder_ref_olocked (d %pK, dead node), "
                     "state_show's dead nodes (newest first), print_binder_work_ilocked (node work, has dead "
                     "binder, has cleared dead binder, has cleared death notification), print_binder_proc "
                     "(has delivered dead binder), print_binder_transaction_ilocked (buffer free)",
    "queues": "print_binder_proc (pending transaction on the proc todo), print_binder_node_nilocked (pending "
              "async transaction), print_binder_work_ilocked (transaction error), binder_alloc_print_allocated "
              "(active, delivered), transactions_show's node filter (has_async_transaction), failed log",
    "threads": "print_binder_thread_ilocked (tid order, l, need_return, nested outgoing/incoming stacks, pending "
               "transaction on a thread), print_binder_proc_stats (ready threads, requested threads), stats",
    "log_wrap": "transaction_log_show once both rings have wrapped",
    "procfiles": "proc_show (every context of a pid), binder_open/binder_release's proc/<pid> entry",
    "oneway_spam": "print_binder_work_ilocked's default case (ONEWAY_SPAM_SUSPECT: unknown work: type 3), "
                   "free async space, pages, a long async_todo",
    "printers": "files longer than a page: dead nodes with refs from two procs, a call in flight carrying "
                "nodes, two nodes' async_todo (transactions_show prints both), a dead binder pending and "
                "one delivered (their lock lines: test_spinlocks.py)",
}


def _diff(want: str, got: str, where: str) -> str:
    return f"{where} differs from 6.1:\n" + "".join(
        difflib.unified_diff(want.splitlines(True), got.splitlines(True), "6.1", "vbinder"))


def _compare(want: dict[str, str], got: dict[str, str], where: str) -> None:
    assert sorted(got) == sorted(want), f"{where}: files {sorted(got)} != {sorted(want)}"
    for name in want:
        a, b = replay.normalize(want[name]), replay.normalize(got[name])
        assert b == a, _diff(a, b, f"{where} {name}")


# -- smoke.py's samples -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_replay() -> dict[str, dict[str, str]]:
    env = replay.run("smoke", SMOKE_TIDS)
    return {tag: {k: v for k, v in snap.items() if k != "proc/"} for tag, snap in env.snapshots}


def test_before_open_sample() -> None:
    """samples/stock/debugfs_0_before_open.txt: every show function on an empty driver."""
    d = make_driver(devices=("binder",))
    files = dfs.render_all(d)
    _compare(replay.load_sample("0_before_open"), files, "0_before_open")


@pytest.mark.parametrize("tag", SAMPLE_TAGS)
def test_smoke_sample(smoke_replay: dict[str, dict[str, str]], tag: str) -> None:
    """samples/stock/debugfs_<tag>.txt: state_show, stats_show, transactions_show,
    transaction_log_show (both logs) and proc_show, in flight, idle, after exits."""
    _compare(replay.load_sample(tag), smoke_replay[tag], tag)


# -- scenarios run on the oracle ----------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle_replays() -> dict[str, tuple[dict, replay.ReplayEnv]]:
    out = {}
    for name in ORACLE_SCENARIOS:
        exp = replay.load_expected(name)
        devices = tuple(exp["devices"].split(","))
        out[name] = (exp, replay.run(name, exp["tids"], devices))
    return out


def _snapshot_cases() -> list[tuple[str, str]]:
    return [(name, tag) for name in ORACLE_SCENARIOS for tag, _ in replay.load_expected(name)["snapshots"]]


@pytest.mark.parametrize(("name", "tag"), _snapshot_cases())
def test_oracle_snapshot(oracle_replays: dict, name: str, tag: str) -> None:
    """expected/<name>.json: one snapshot of every debugfs file (see ORACLE_SCENARIOS), and the
    proc/ listing."""
    exp, env = oracle_replays[name]
    want = dict(exp["snapshots"])[tag]
    got = dict(env.snapshots)[tag]
    _compare(want, got, f"{name}/{tag}")


@pytest.mark.parametrize("name", list(ORACLE_SCENARIOS))
def test_oracle_trace(oracle_replays: dict, name: str) -> None:
    """The replay is the oracle's scenario: every call returned what it returned on 6.1."""
    exp, env = oracle_replays[name]
    assert [tag for tag, _ in env.snapshots] == [tag for tag, _ in exp["snapshots"]]
    assert json.loads(json.dumps(env.trace)) == exp["trace"]


# -- pieces the scenarios cannot reach ----------------------------------------------------------


def test_incomplete_log_entry_matches_the_oracle_race() -> None:
    """print_binder_transaction_log_entry: " (incomplete)" while debug_id_done is 0.

    expected/incomplete_race.json caught 6.1 printing an entry still inside binder_transaction
    (oracle_scripts/incomplete_race.py); vbinder's transactions never show half done, so the
    entry is built here as it was when the kernel printed it."""
    line = next(iter(json.loads((replay.EXPECTED / "incomplete_race.json").read_text())["incomplete"]))
    line = line.split(": ", 1)[1]
    d = make_driver(devices=("binder",))
    e = d.transaction_log.add()
    e.debug_id, e.call_type, e.from_proc, e.from_thread, e.to_proc = 2, 1, 146, 146, 148
    e.to_node, e.data_size, e.context_name = 1, 262144, "binder"
    assert dfs.render_transaction_log(d) == line + "\n"
    e.debug_id_done = 2
    assert dfs.render_transaction_log(d) == line.removesuffix(" (incomplete)") + "\n"


def test_log_entry_ints_print_as_kernel_ints() -> None:
    """print_binder_transaction_log_entry: the entry's fields are C ints (%d), return_error and
    its param u32 printed with %d."""
    d = make_driver()
    e = d.failed_transaction_log.add(LogEntry())
    e.debug_id = e.debug_id_done = 7
    e.target_handle = 0xFFFFFFFF
    e.data_size = 1 << 32 | 5
    e.return_error, e.return_error_param, e.return_error_line = 29201, -22, 1234
    e.context_name = "hwbinder"
    assert dfs.render_failed_transaction_log(d) == (
        "7: call  from 0:0 to 0:0 context hwbinder node 0 handle -1 size 5:0 ret 29201/-22 l=1234\n")


def test_pk_looks_like_the_kernels_hashed_pointers() -> None:
    """%pK with kptr_restrict 0 (lib/vsprintf.c ptr_to_id): NULL prints as zeros, anything else
    as a 32-bit hash in 16 hex digits, the same for the same address."""
    assert dfs.pk(0) == "0000000000000000"
    values = {dfs.pk(a) for a in range(1, 5000)}
    assert len(values) == 4999
    for v in values:
        assert len(v) == 16 and v.startswith("00000000") and v != "0000000000000000"
        int(v, 16)
    assert dfs.pk(0x7000_0000_0000) == dfs.pk(0x7000_0000_0000)


def test_unknown_work_type() -> None:
    """print_binder_work_ilocked: a work type outside the switch prints "unknown work"."""
    d = make_driver(devices=("binder",))
    c = Client(d, 10)
    w = Work(WorkType.TRANSACTION_ONEWAY_SPAM_SUSPECT)
    c.file.proc.todo.enqueue(w)
    assert "  unknown work: type 3\n" in dfs.render_state(d)


def test_transactions_rolls_back_empty_headers() -> None:
    """print_binder_proc/print_binder_thread_ilocked with print_all 0: a proc or thread with
    nothing under its header is not printed at all; state (print_all 1) prints them."""
    d = make_driver(devices=("binder",))
    a, b = Client(d, 10), Client(d, 20)
    a.mmap()
    b.mmap()
    assert a.ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0)).code == 0
    assert a.write_read(cmd(uapi.BC_ENTER_LOOPER), 0).ret == 0
    assert dfs.render_transactions(d) == "binder transactions:\n"
    assert dfs.render_state(d).count("  thread ") == 2
    # A failed call leaves a return error on b's thread: only that thread is printed.
    assert b.write_read(b.bc_transaction(7, 1, b"x"), 0).ret == 0
    assert dfs.render_transactions(d) == (
        "binder transactions:\nproc 20\ncontext binder\n  thread 20: l 00 need_return 0 tr 0\n"
        "    transaction error: 29201\n")


def test_proc_show_of_a_pid_without_procs_is_empty() -> None:
    """proc_show prints nothing when no proc has the pid (a file read after its last proc went)."""
    assert dfs.render_proc(make_driver(), 1234) == ""


# -- proc/<pid> entries ---------------------------------------------------------------------------


def test_proc_files_follow_binder_open_and_release() -> None:
    """binder_open creates proc/<pid> only when no proc of the pid exists; binder_release of
    the proc that created it removes it (expected/procfiles.json shows the same on 6.1)."""
    d = make_driver()
    p1 = d.open("binder", 5, 5, 0)
    p2 = d.open("hwbinder", 5, 5, 0)
    q = d.open("binder", 7, 7, 0)
    assert dfs.proc_pids(d) == [5, 7]
    assert d.debugfs_procs[5] is p1.proc
    p1.release()
    assert dfs.proc_pids(d) == [7]  # gone, although p2 is a proc of pid 5
    p3 = d.open("binder", 5, 5, 0)
    assert dfs.proc_pids(d) == [7]  # p2 existed at this open
    p2.release()
    p3.release()
    p4 = d.open("vndbinder", 5, 5, 0)
    assert dfs.proc_pids(d) == [5, 7]
    assert d.debugfs_procs[5] is p4.proc
    q.release()
    p4.release()
    assert dfs.proc_pids(d) == []
