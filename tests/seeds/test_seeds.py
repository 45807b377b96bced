"""The seeds (../shared/seeds), reproduced: the README's "Reproducing the seeds" commands.

Each seed script (examples/seeds) runs on a fresh vbinder mount of each profile:

- ``--kernel 6.1``: its output must be the real kernel's, recorded on the oracle
  (``expected/<seed>.6.1.txt``, tests/seeds/record.py; tests/kernel/test_seeds_on_kernel.py
  checks the kernel still prints it);
- ``--kernel 3.x``, the README's command for the seed, as written: it must print what the seed
  quotes, verbatim but for pids, times and addresses (:class:`Quote`: a seed's line with those
  tokens marked; the pattern is checked to give back the seed's own line, and must match a line
  of the output).

The 3.4 profile runs on a 64-bit layout: sizes are multiples of 8 and ``struct binder_buffer``
has 80 bytes where the seeds' 32-bit devices had 40 (seed 004 says so); ``pagep`` is x86-64's page
protection where the seeds' ARM devices printed 79f; debug ids past the few a fresh device has
made are a device's history, not the driver's.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.seeds.run_seeds import seed_scripts
from tests.support import REPO, daemon_env, fuse_usable

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"
SEEDS = sorted(seed_scripts())


def readme_commands() -> dict[str, list[str]]:
    """README "Reproducing the seeds": each seed's command as written, by seed (the script and its
    arguments, after the interpreter)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Reproducing the seeds"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README: no commands under Reproducing the seeds"
    out: dict[str, list[str]] = {}
    for line in block.group(1).splitlines():
        argv = shlex.split(line.split("#", 1)[0])
        assert argv[0] == ".venv/bin/python", line
        out[Path(argv[1]).stem] = argv[1:]
    return out


def test_the_readme_has_one_command_per_seed() -> None:
    commands = readme_commands()
    assert sorted(commands) == SEEDS
    for name, argv in commands.items():
        assert (REPO / argv[0]).resolve() == seed_scripts()[name].resolve()
        assert argv[1:] == ["--kernel", "3.x"], argv


def run_seed(name: str, *args: str) -> str:
    """The seed script's output on a fresh mount (``args``: --kernel, --normalize)."""
    reason = fuse_usable()
    if reason:
        pytest.skip(reason)
    r = subprocess.run([sys.executable, str(seed_scripts()[name]), *args], capture_output=True, text=True,
                       env=daemon_env(), stdin=subprocess.DEVNULL, timeout=400, cwd=REPO)
    assert r.returncode == 0, f"{name} {args}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-4000:]}"
    assert " failed\n" not in r.stdout, r.stdout + r.stderr[-4000:]
    return r.stdout


@pytest.mark.parametrize("name", SEEDS)
def test_on_6_1_the_seed_prints_what_the_kernel_prints(name: str) -> None:
    want = (EXPECTED / f"{name}.6.1.txt").read_text()
    got = run_seed(name, "--kernel", "6.1", "--normalize")
    assert got == want, f"{name}: vbinder's 6.1 profile differs from the kernel\n" + "\n".join(
        f"kernel:  {a}\nvbinder: {b}" for a, b in zip(want.splitlines(), got.splitlines(), strict=False) if a != b)


# -- the 3.4 profile against the seeds' own lines ---------------------------------------------------


class Quote:
    """A line a seed quotes, with the tokens that may differ (pids, times, addresses) named
    (``"u+4031b8a8"``: the ``u`` stays, the value after it may differ)."""

    def __init__(self, text: str, *variable: str, count: int = 1) -> None:
        self.text = text
        self.count = count
        pattern = re.escape(text)
        for token in sorted(set(variable), key=len, reverse=True):
            prefix, _plus, value = token.rpartition("+")
            kind = r"\d+" if value.isdigit() else r"[0-9a-f]+"
            pattern = re.sub(rf"(?<![0-9a-zA-Z]){re.escape(re.escape(prefix + value))}(?![0-9a-zA-Z])",
                             lambda _m, kind=kind, prefix=prefix: re.escape(prefix) + kind, pattern)
        self.pattern = re.compile(pattern)
        assert self.pattern.fullmatch(text), f"the pattern of {text!r} does not give back the seed's line"

    def found(self, lines: list[str]) -> int:
        return sum(1 for line in lines if self.pattern.fullmatch(line))


def _check(name: str, quotes: list[Quote]) -> list[str]:
    out = run_seed(name, *readme_commands()[name][1:])  # the README's command: --kernel 3.x
    lines = [line.rstrip("\n") for line in out.splitlines()]
    missing = [f"{q.text!r} x{q.count} (found {q.found(lines)})" for q in quotes if q.found(lines) != q.count]
    assert not missing, f"{name} on 3.4 does not print the seed's lines:\n" + "\n".join(missing) + "\n\n" + out
    return lines


def _collapse(text: str) -> str:
    """Whitespace as the seeds' web pages left it: one space."""
    return " ".join(text.split())


def test_seed_000_no_vma_on_3_4() -> None:
    # 000_d39c990264dd11d3.txt: the log after pid 3057 crashed, twice; "get BR_FAILED_REPLY"
    lines = _check("seed_000_no_vma", [
        Quote("binder: 3057: binder_alloc_buf, no vma", "3057", count=2),
        Quote("binder: 4008:4104 transaction failed 29201, size 124-4", "4008", "4104", count=2),
    ])
    assert "returns [['BR_FAILED_REPLY'], ['BR_FAILED_REPLY']]" in lines


def test_seed_001_proc_outlives_its_process_on_3_4() -> None:
    # 001_fea911540a43435a.txt: `egrep "vma|binder_release"` of /proc/kmsg, and
    # `cat /mnt/binder/proc/131` after pid 131 had died.
    lines = _check("seed_001_proc_outlives_process", [
        # (the victim, pid 131 in the seed, and the other service, 1727, both print these)
        Quote("binder: 1727 close vm area 5d12c000-5d32a000 (2040 K) vma 2220051 pagep 79f",
              "1727", "5d12c000", "5d32a000", "79f", count=2),
        Quote("binder_release: 1727: page 0 at e6e00000 not freed", "1727", "e6e00000", count=2),
        Quote("binder_release: 1727 threads 4, nodes 2 (ref 2), refs 8, active transactions 0, buffers 0, pages 1",
              "1727"),
        # pid 131's proc at its release: one of the seed's other releases' shape, with 131's counts
        Quote("binder_release: 131 threads 2, nodes 1 (ref 0), refs 1, active transactions 0, buffers 0, pages 1",
              "131"),
    ])
    state = _collapse("\n".join(lines[lines.index(next(x for x in lines if x.startswith("== proc/"))) + 1:
                                      lines.index("== log: the holder exits")]))
    # The seed's proc file, but for the name MTK's kernel printed after the node ("(vivo_daemon.service)")
    seed = ("binder proc state: proc 131 thread 131: l 22 thread 176: l 22 node 5: u4031b8a8 c4031b88c hs 1 hw 1 "
            "ls 0 lw 0 is 0 iw 0 ref 3: desc 0 node 1 s 1 w 1 d (null) node work 5: u4031b8a8 c4031b88c")
    assert Quote(seed, "131", "176", "u+4031b8a8", "c+4031b88c").pattern.fullmatch(state), state


def test_seed_002_nested_sync_in_async_on_3_4() -> None:
    # 002_acb4638449bcad88.txt, steps 1-6: the one-way call BC_FREE_BUFFER moved onto the binder
    # thread's todo is read while it waits for its sync call's reply (3); the nested one-way
    # call's wait takes the sync call's BR_TRANSACTION_COMPLETE (4); the sync call gets its
    # BR_REPLY (5); the thread pool reads the BR_TRANSACTION_COMPLETE left over (6), where
    # libbinder aborted ("BAD COMMAND").
    lines = _check("seed_002_nested_sync_in_async", [])
    order = [x for x in lines if x.startswith(("first:", "second:", "client error", "stray"))]
    assert order == [
        "first: begins",
        "second: begins {'inside_first': True}",
        "second: its one-way call to the peer returned",
        "first: its sync call to the peer returned",
        "client error {'text': 'binder: stray BR_TRANSACTION_COMPLETE (29190): no call of this thread waits for it'}",
        "stray answers {'count': 1}",
    ], "\n".join(lines)
    read = next(x for x in lines if x.startswith("the binder thread read"))
    assert read.endswith("'BR_TRANSACTION', 'BR_TRANSACTION', 'BR_TRANSACTION_COMPLETE', 'BR_REPLY', "
                         "'BR_TRANSACTION_COMPLETE']}"), read


def test_seed_003_allocator_on_3_4() -> None:
    # 003_33e93779c4c52a12.txt and 004's 4.3: free_async_space is half the area (520192 for
    # 1 MiB - 8 KiB), each one-way buffer costs size + sizeof(struct binder_buffer) and gives it
    # back when freed ("binder_alloc_buf size 148 async free 520004", "binder_free_buf size 148
    # async free 520192": 40 bytes each on their 32-bit device; "对于64位系统,binder_buffer大小为80 Bytes").
    lines = _check("seed_003_allocator", [
        Quote("binder: 1788: binder_alloc_buf size 152 async free 519960", "1788"),
        Quote("binder: 1788: binder_alloc_buf size 72 async free 519808", "1788"),
        Quote("binder: 1788: binder_free_buf size 152 async free 520040", "1788"),
        Quote("binder: 1788: binder_free_buf size 72 async free 520192", "1788"),
        Quote("binder_release: 1788: page 0 at e6e00000 not freed", "1788", "e6e00000"),
    ])
    # Each buffer's header sits before its data: the first data 80 bytes into the area, the
    # second 80 bytes after the end of the first (152 bytes).
    assert [x for x in lines if x.startswith("received")] == [
        "received 148 bytes at offset 80", "received 72 bytes at offset 312", "received 76 bytes at offset 80"]
    assert "two one-way buffers allocated: free async space 519808" in lines


def test_seed_004_debug_mask_on_3_4() -> None:
    # 004_1fd987d2a853ac43.txt: the table of debug_mask (2.1), the lines of OPEN_CLOSE (3.1),
    # DEAD_BINDER (4.1), FREE_BUFFER (4.2), BUFFER_ALLOC_ASYNC (4.3) and BUFFER_ALLOC (4.4).
    lines = _check("seed_004_debug_mask", [
        Quote("binder_open: 4681:4681", "4681"),
        Quote("binder_mmap: 4681 b6b42000-b6c40000 (1016 K) vma 200071 pagep 79f", "4681", "b6b42000", "b6c40000",
              "79f"),
        Quote("binder: 4681 close vm area b6b42000-b6c40000 (1016 K) vma 2220051 pagep 79f", "4681", "b6b42000",
              "b6c40000", "79f"),
        Quote("binder_flush: 4681 woke 0 threads", "4681"),
        Quote("binder_release: 4681 threads 1, nodes 0 (ref 0), refs 2, active transactions 0, buffers 1, pages 1",
              "4681"),
        Quote("binder: node 1078337 now dead, refs 1, death 0", "1078337"),
        Quote("binder: 13839 delete ref 1078335 desc 1 has death notification", "13839", "1078335"),
        Quote("binder: 1788:1805 BC_DEAD_BINDER_DONE 9ce308c0 found f10a5400", "1788", "1805", "9ce308c0",
              "f10a5400"),
        Quote("binder: 463:5919 BC_FREE_BUFFER ub4641028 found buffer 1183795 for finished transaction", "463",
              "5919", "u+b4641028", "1183795", count=2),
        Quote("binder: 277:2771 BC_FREE_BUFFER ub6c58028 found buffer 1183806 for active transaction", "277", "2771",
              "u+b6c58028", "1183806"),
        Quote("binder: 1788: binder_alloc_buf size 148 async free 520004", "1788", "148", "520004"),
        Quote("binder: 1788: binder_free_buf size 148 async free 520192", "1788", "148"),
        Quote("binder: 1788: binder_alloc_buf size 76 got buffer c7800128 size 208", "1788", "76", "c7800128", "208",
              count=2),
        Quote("binder: 1788: allocate pages c7801000-c7800000", "1788", "c7801000", "c7800000", count=2),
        Quote("binder: 1788: add free buffer, size 92, at c780019c", "1788", "92", "c780019c", count=4),
        Quote("binder: 1788: free pages c7801000-c7800000", "1788", "c7801000", "c7800000", count=2),
        Quote("binder: 1788: merge free, buffer c780019c share page with c7800128", "1788", "c780019c", "c7800128",
              count=2),
    ])
    table = lines[lines.index("== debug_mask") + 1:]
    seed_table = ["USER_ERROR 1", "FAILED_TRANSACTION 2", "DEAD_TRANSACTION 4", "OPEN_CLOSE 8", "DEAD_BINDER 16",
                  "DEATH_NOTIFICATION 32", "READ_WRITE 64", "USER_REFS 128", "THREADS 256", "TRANSACTION 512",
                  "TRANSACTION_COMPLETE 1024", "FREE_BUFFER 2048", "INTERNAL_REFS 4096", "BUFFER_ALLOC 8192",
                  "PRIORITY_CAP 16384", "BUFFER_ALLOC_ASYNC 32768"]  # "BINDER_DEBUG_<name> <value>", 2.1
    assert [" ".join(reversed(x.split())) for x in table[:16]] == seed_table
    assert table[16] == "parameters: debug_mask proc_no_lock stop_on_user_error"  # 2.3
    # 4.3's arithmetic, with this layout's header: the buffer's size and the header come back
    alloc = next(x for x in lines if "async free" in x and "alloc_buf" in x)
    freed = next(x for x in lines if "async free" in x and "free_buf" in x)
    size, left = (int(v) for v in re.findall(r"size (\d+) async free (\d+)", alloc)[0])
    assert int(freed.rsplit(" ", 1)[1]) == 520192 == left + size + 80
