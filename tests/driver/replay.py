"""Run the scenarios of ``oracle_scripts/scenarios.py`` on the sans-IO core, and compare debugfs text.

``ReplayEnv`` is the core's twin of ``oracle_scripts/run_scenario.py``: the same actors (with
the oracle run's pids, so that nothing but hashed pointers needs normalizing), fake processes
from ``harness.py``, the same snapshots rendered by :mod:`vbinder.driver.debugfs`, and the same
trace of call results.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

from tests.support import ORACLE_SAMPLES
from vbinder import uapi
from vbinder.driver import Driver, WouldBlock
from vbinder.driver import debugfs as dfs

from .harness import BR, Client, make_driver
from .oracle_scripts import scenarios

EXPECTED = Path(__file__).parent / "expected"
SAMPLES = ORACLE_SAMPLES / "stock"
FILES = ("state", "stats", "transactions", "transaction_log", "failed_transaction_log")

_TR_KEYS = ("target", "cookie", "code", "flags", "sender_pid", "sender_euid", "data_size", "offsets_size",
            "buffer", "offsets")


def _fields(br: BR) -> dict[str, int]:
    """binderlib.parse_returns' fields of one return command."""
    if br.name in ("BR_TRANSACTION", "BR_REPLY", "BR_TRANSACTION_SEC_CTX"):
        return dict(zip(_TR_KEYS, br.tr, strict=True))
    if br.name in ("BR_INCREFS", "BR_ACQUIRE", "BR_RELEASE", "BR_DECREFS"):
        ptr, cookie = uapi.PTR_COOKIE.unpack(br.payload)
        return {"ptr": ptr, "cookie": cookie}
    if br.name in ("BR_DEAD_BINDER", "BR_CLEAR_DEATH_NOTIFICATION_DONE"):
        return {"cookie": uapi.U64.unpack(br.payload)[0]}
    return {}


class _Proc(Client):
    """A harness Client opened as binderlib.Binder opens: open and mmap, no ioctl yet."""

    def __init__(self, driver: Driver, pid: int, device: str, euid: int) -> None:  # noqa: D107
        self.driver = driver
        self.pid = pid
        self.file = driver.open(device, pid, pid, euid)
        self.mem = {}
        self.heap = 0x1000_0000 + pid * 0x100_0000
        self.pending = []
        self.map_addr = 0
        self.mmap()


class Pending:
    def __init__(self, file: File, tid: int, res: dict | None, wb: WouldBlock | None) -> None:
        self.file = file
        self.tid = tid
        self.res = res
        self.wb = wb

    def result(self) -> dict:
        res = self.res
        if res is None:
            assert self.wb is not None
            self.file.actor.env.who = self.tid
            res = self.file.convert(self.file.client.finish(self.wb, self.tid))
        self.file.actor.env.trace.append([self.file.actor.name, "wr_async result", _summary(res)])
        return res


def _summary(r: dict) -> dict:
    return {"rc": r["rc"], "errno": r["errno"], "write_consumed": r["write_consumed"],
            "read_consumed": r["read_consumed"], "returns": [n for n, _ in r["returns"]]}


class File:
    def __init__(self, actor: Actor, client: _Proc) -> None:
        self.actor = actor
        self.client = client

    def _log(self, op: str, res: object) -> object:
        self.actor.env.trace.append([self.actor.name, op, _summary(res) if isinstance(res, dict) and "returns" in res
                                     else res])
        return res

    def _ioctl(self, cmd: int, arg: bytes, thread: int = 0) -> tuple[int, bytes]:
        self.actor.env.who = self.actor.tids[thread]
        f = self.client.ioctl(cmd, arg, self.actor.tids[thread])
        return f.code, f.arg

    def version(self, thread: int = 0) -> object:
        code, arg = self._ioctl(uapi.BINDER_VERSION, uapi.VERSION.pack(0), thread)
        return self._log("version", uapi.VERSION.unpack(arg)[0] if code == 0 else code)

    def max_threads(self, n: int) -> object:
        return self._log("max_threads", self._ioctl(uapi.BINDER_SET_MAX_THREADS, uapi.U32.pack(n))[0])

    def ctx_mgr(self) -> object:
        return self._log("ctx_mgr", self._ioctl(uapi.BINDER_SET_CONTEXT_MGR, uapi.S32.pack(0))[0])

    def extended_error(self) -> object:
        code, arg = self._ioctl(uapi.BINDER_GET_EXTENDED_ERROR, bytes(uapi.EXTENDED_ERROR.size))
        i, command, param = uapi.EXTENDED_ERROR.unpack(arg)
        return self._log("extended_error", {"id": i, "command": command, "param": param} if code == 0 else code)

    def node_info_for_ref(self, handle: int) -> object:
        code, arg = self._ioctl(uapi.BINDER_GET_NODE_INFO_FOR_REF, uapi.NODE_INFO_FOR_REF.pack(handle, 0, 0, 0, 0, 0))
        if code:
            return self._log("node_info_for_ref", code)
        h, s, w, *_ = uapi.NODE_INFO_FOR_REF.unpack(arg)
        return self._log("node_info_for_ref", {"handle": h, "strong_count": s, "weak_count": w})

    def ioctl(self, cmd: int, arg: bytes) -> object:
        code, out = self._ioctl(cmd, arg)
        return self._log("ioctl", [code, out.hex() if code == 0 else arg.hex()])

    def poll(self) -> object:
        self.actor.env.who = self.actor.tids[0]
        return self._log("poll", [1] if self.client.file.poll(self.actor.tids[0]) else [])

    def thread_exit(self, thread: int = 0) -> object:
        return self._log("thread_exit", self._ioctl(uapi.BINDER_THREAD_EXIT, uapi.S32.pack(0), thread)[0])

    def flush(self) -> None:
        self.actor.env.who = "kworker"  # binder_flush's work is deferred to a kworker
        self.client.file.flush()
        self._log("flush", 0)

    def convert(self, r: object) -> dict:
        ret = r.ret  # type: ignore[attr-defined]
        return {"rc": -1 if ret < 0 else ret, "errno": errno.errorcode[-ret] if ret < 0 else 0,
                "write_consumed": r.bwr[1], "read_consumed": r.bwr[4],  # type: ignore[attr-defined]
                "returns": [(br.name, _fields(br)) for br in r.brs]}  # type: ignore[attr-defined]

    def _start(self, cmds: list[tuple], read_size: int, tid: int) -> object:
        self.actor.env.who = tid
        return self.client.write_read(scenarios.encode(cmds, self.client.put), read_size, tid)

    def wr(self, cmds: list[tuple], read_size: int = 0, thread: int = 0) -> dict:
        return self._log("wr", self.convert(self._start(cmds, read_size, self.actor.tids[thread])))  # type: ignore[return-value]

    def wr_async(self, cmds: list[tuple], read_size: int = 256, thread: int = 0) -> Pending:
        tid = self.actor.tids[thread]
        try:
            return Pending(self, tid, self.convert(self._start(cmds, read_size, tid)), None)
        except WouldBlock as wb:
            return Pending(self, tid, None, wb)

    def close(self) -> None:
        self.actor.env.who = "kworker"  # binder_flush and binder_release: deferred to a kworker
        self.client.file.flush()
        self.client.file.release()
        self._log("close", 0)


class Actor:
    def __init__(self, env: ReplayEnv, name: str, tids: list[int], euid: int | None) -> None:
        self.env = env
        self.name = name
        self.pid = tids[0]
        self.tids = tids
        self.euid = euid or 0

    def open(self, device: str = "binder") -> File:
        f = File(self, _Proc(self.env.driver, self.pid, device, self.euid))
        self.env.trace.append([self.name, "open " + device, 0])
        return f


class ReplayEnv:
    """A scenario environment on a fresh core, actors numbered as in the oracle run."""

    def __init__(self, tids: dict[str, list[int]], devices: tuple[str, ...] = ("binder",),
                 debug_mask: int | None = None, ratelimit: bool | None = None) -> None:
        self.driver = make_driver(devices=devices, ratelimit=ratelimit) if debug_mask is None else \
            make_driver(devices=devices, ratelimit=ratelimit, debug_mask=debug_mask)
        self.tids = tids
        self.snapshots: list[list[object]] = []
        self.trace: list[list[object]] = []
        # Who runs in the driver now (a tid, "kworker" for deferred work, "reader" for debugfs),
        # and the log lines each printed.
        self.who: int | str = 0
        self.lines: list[tuple[int | str, str]] = []
        self.driver.log.listeners.append(lambda line: self.lines.append((self.who, line.split("] ", 1)[1])))

    def actor(self, name: str, euid: int | None = None, threads: int = 1) -> Actor:
        tids = self.tids[name]
        assert len(tids) == threads
        return Actor(self, name, tids, euid)

    def start(self) -> None:
        pass

    def snapshot(self, tag: str) -> None:
        self.who = "reader"
        files = dfs.render_all(self.driver)
        snap = {k: files[k] for k in FILES}
        pids = dfs.proc_pids(self.driver)
        snap["proc/"] = " ".join(map(str, pids))
        for pid in pids:
            snap[f"proc/{pid}"] = files[f"proc/{pid}"]
        self.snapshots.append([tag, snap])


def run(name: str, tids: dict[str, list[int]], devices: tuple[str, ...] = ("binder",),
        debug_mask: int | None = None, ratelimit: bool | None = None) -> ReplayEnv:
    """Run scenario ``name`` on a fresh core; ``tids`` gives each actor's thread ids (pid first);
    ``debug_mask`` and ``ratelimit`` as the driver's (None: its defaults)."""
    env = ReplayEnv(tids, devices, debug_mask, ratelimit)
    scenarios.SCENARIOS[name](env)
    return env


def load_expected(name: str) -> dict:
    return json.loads((EXPECTED / f"{name}.json").read_text())


def load_sample(tag: str) -> dict[str, str]:
    """A samples/stock/debugfs_<tag>.txt snapshot of smoke.py, by file."""
    text = (SAMPLES / f"debugfs_{tag}.txt").read_text()
    out: dict[str, str] = {}
    for part in re.split(r"^===== /sys/kernel/debug/binder/", text, flags=re.M)[1:]:
        head, _, body = part.partition(" =====\n")
        out[head] = body
    return out


_H = r"(?:0000000000000000|00000000[0-9a-f]{8})"
_HASHES = re.compile(rf"(?P<pre>transaction \d+: |data |buffer \d+: | d )(?P<h>{_H})\b")
_LINE = re.compile(r"\bl=(\d+)")


def normalize(text: str) -> str:
    """Replace what differs between two runs of one scenario by tokens.

    Hashed pointers (``%pK``) become tokens numbered by first appearance: transactions ``T1``...,
    death notifications ``D1``... (NULL stays 16 zeros), and buffer addresses ``B1``... counted
    per proc block, because the kernel maps every process's area at the same virtual address
    (equal hashes across procs) while vbinder gives each area its own addresses. The source line of
    a failed transaction (``l=3063``: the kernel's, or vbinder's own) becomes ``l=L``.
    """
    seen: dict[tuple[str, int, str], str] = {}
    counts: dict[tuple[str, int], int] = {}
    out = []
    block = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("proc "):
            block += 1

        def token(m: re.Match[str], block: int = block) -> str:
            pre, v = m.group("pre"), m.group("h")
            if v == "0000000000000000":
                return pre + v
            kind = "T" if pre.startswith("transaction") else "D" if pre == " d " else "B"
            scope = block if kind == "B" else 0
            key = (kind, scope, v)
            if key not in seen:
                counts[(kind, scope)] = counts.get((kind, scope), 0) + 1
                seen[key] = f"{kind}{counts[(kind, scope)]}"
            return pre + seen[key]

        line = _HASHES.sub(token, line)
        out.append(_LINE.sub(lambda m: "l=0" if m.group(1) == "0" else "l=L", line))
    return "".join(out)
