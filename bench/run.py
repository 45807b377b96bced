"""The benchmark run: what is measured, in which order, with which counts.

Every measurement is one step of the progress bar; a step that fails records its error and the
run goes on; the whole run keeps to a time budget (steps left when it is spent are skipped).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.harness import (
    BenchError,
    Budget,
    OutOfTime,
    Progress,
    Supervisor,
    Worker,
    cpu_seconds,
    cpu_ticks,
    latency,
    median,
    rss_kib,
)
from bench.worker import FLOOR_CHANNELS

MIB = 1 << 20
STRING = -100  # the echo of a 100-character string (D-Bus's `s`, AIDL's String): people's usual call
SIZES = (0, 128, 4096, 65536, MIB - 65536, STRING)
NO_STRINGS = {"vbinder_c", "vbinder_c_v1"}  # bench/cecho.c echoes bytes only
# clients of ABI v1 only (docs/abi-chained.md, docs/abi-slot.md): 5 requests a call
V1_ONLY = {"VBINDER_CHAINED": "0", "VBINDER_SLOT": "0"}
SLOT_ALWAYS = {"VBINDER_SLOT": "1"}  # every request by the request slot (docs/abi-slot.md): 2 requests a call
STATE = "sys/kernel/debug/binder/state"
DEBUG_MASK_FILE = "sys/module/binder/parameters/debug_mask"
VERBOSE_MASK = 0x7FFF  # every binder.c debug_mask bit of 6.1 (USER_ERROR .. SPINLOCKS)


@dataclass
class Config:
    """Counts and durations; ``quick()`` scales them down to a smoke run of about a minute."""

    quick: bool = False
    sizes: tuple[int, ...] = SIZES
    calls_small: int = 1500  # per repetition, payloads up to 4 KiB
    calls_64k: int = 600
    calls_big: int = 60  # 1 MiB - 64 KiB
    reps: int = 5
    oneway_calls: int = 10000
    oneway_window: int = 400  # calls ahead of the server, at most (keeps within its async space)
    clients: tuple[int, ...] = (1, 2, 4, 8, 16, 64)
    servers: int = 4  # "several servers"
    agg_seconds: float = 4.0  # per point, in agg_rounds windows
    agg_rounds: int = 4
    growth: tuple[int, ...] = (1, 10, 100, 1000)
    growth_calls: int = 1500
    mem_procs: int = 1000
    idle_threads: int = 1000
    loopers: int = 200  # below the driver's 256 waiting reads per process
    idle_cpu_seconds: float = 2.0
    state_reads: int = 3
    verbose_mask: int = VERBOSE_MASK
    budget: float = 570.0  # seconds for the whole run

    @classmethod
    def make_quick(cls) -> Config:
        return cls(quick=True, calls_small=150, calls_64k=80, calls_big=8, reps=3, oneway_calls=1000,
                   clients=(1, 4, 16), servers=2, agg_seconds=1.0, agg_rounds=2, growth=(1, 10, 100),
                   growth_calls=200,
                   mem_procs=200, idle_threads=200, loopers=100, idle_cpu_seconds=1.0, budget=150.0)

    def calls(self, size: int) -> tuple[int, int, int]:
        """(calls per repetition, repetitions, warm-up calls) for a payload size."""
        n = self.calls_small if size <= 4096 else self.calls_64k if size <= 65536 else self.calls_big
        return n, self.reps, max(5, n // 5)


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    config: Config = field(default_factory=Config)
    rtt: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)  # transport -> size -> stats
    oneway: dict[str, dict[str, float]] = field(default_factory=dict)  # "mask0" / "verbose"
    aggregate: dict[int, dict[int, dict[str, float]]] = field(default_factory=dict)  # servers -> clients
    resources: dict[str, float] = field(default_factory=dict)
    growth: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    state_available: bool | None = None
    verbose_how: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0


# -- the machine -------------------------------------------------------------------------------------


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return "not installed"


def _vbinder_build() -> str:
    """Which vbinder the workers run: the compiled hot path (scripts/build_native.py) or pure Python."""
    from vbinder import native

    return "compiled hot path (mypyc)" if native.active() else "pure Python"


def machine_info() -> dict[str, str]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dbus = "not installed"
    if shutil.which("dbus-daemon"):
        out = subprocess.run(["dbus-daemon", "--version"], capture_output=True, text=True, check=False).stdout
        dbus = out.splitlines()[0].rsplit(" ", 1)[-1] if out else "?"
    return {
        "load": _loadavg(),
        "cores": str(os.cpu_count()),
        "cpu": cpu or platform.processor() or "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pyfuse3": _version("pyfuse3"),
        "trio": _version("trio"),
        "jeepney": _version("jeepney"),
        "dbus-daemon": dbus,
        "vbinder": _vbinder_build(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


# -- the run -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class Transport:
    """One way of making the echo call: its client, the process whose CPU it costs, and what to do
    around each of its repetitions (the verbose mask is switched on and off there)."""

    key: str  # floor, floor5, unix, dbus, vbinder, vbinder_c, vbinder_verbose
    client: Worker
    cpu_pid: int | None = None
    enter: Callable[[], None] = lambda: None
    leave: Callable[[], None] = lambda: None
    failed: bool = False


VBINDER_SECTIONS = {"vbinder", "aggregate", "growth", "verbose", "traced"}
TRACING = "sys/kernel/tracing"


class Run:
    """The measurements, in order. The single-client echo of every transport is measured in
    interleaved repetitions (floor, floor5, Unix, D-Bus, vbinder, vbinder verbose, then the same rotated),
    so that a change in the machine's load during the run hits all of them alike and their ratios
    hold."""

    def __init__(self, cfg: Config, sup: Supervisor, progress: Progress, results: Results,
                 sections: set[str]) -> None:
        self.cfg = cfg
        self.sup = sup
        self.progress = progress
        self.results = results
        self.sections = sections
        self.budget = Budget(cfg.budget)
        self.work = sup.workdir
        self.daemon: Worker | None = None
        self.mount = self.work / "vbinder"
        self.device = str(self.mount / "dev" / "binder")
        self.counter = str(self.work / "oneway.counter")
        self._others: list[Callable[[], None]] = []  # how to stop the floor, Unix and D-Bus setups

    # -- steps ---------------------------------------------------------------------------------------

    def step(self, label: str, fn: Callable[[], Any], weight: int = 1) -> Any:
        """Run one measurement; record (and survive) its failure. KeyboardInterrupt ends the run."""
        self.progress.begin(label)
        try:
            self.budget.check(label)
            return fn()
        except OutOfTime:
            self.results.skipped.append(label)
            return None
        except BenchError as e:
            self.fail(label, e)
            return None
        finally:
            self.progress.step(weight)

    def fail(self, label: str, e: BenchError) -> None:
        self.results.errors.append((label, str(e)))
        self.progress.note(f"bench: {label}: {str(e).splitlines()[0]}")

    @staticmethod
    def plan_steps(cfg: Config, sections: set[str]) -> int:
        n = len(sections & {"floor", "unix", "dbus"})
        if sections & {"floor", "unix", "dbus", "vbinder", "verbose", "traced"}:
            n += len(cfg.sizes)  # the interleaved echo sweep
        if sections & VBINDER_SECTIONS:
            n += 1  # the daemon, the service manager and the servers
        if sections & {"vbinder", "verbose"}:
            n += 1  # oneway calls
        if "aggregate" in sections:
            n += 1 + 2 * len(cfg.clients) * cfg.agg_rounds
        if "growth" in sections:
            n += 4 * (len(cfg.growth) + 1) + 1
        if "verbose" in sections:
            n += 1 + len(cfg.sizes) + 1  # when the mask cannot be switched in place: a restart
        if "resources" in sections:
            n += 4
        return n + 1  # the final cleanup

    def run(self) -> None:
        c = self.sections
        try:
            self.echo_comparison()
        finally:
            for stop in self._others:
                stop()
            self._others = []
        if "resources" in c:
            try:
                self.resources()
            except BenchError as e:  # outside a step
                self.fail("resources", e)

    # -- the single-client echo, every transport -----------------------------------------------------

    def echo_comparison(self) -> None:
        c = self.sections
        ts: list[Transport] = []
        if "floor" in c:
            self.step("floor: mount, ping-pong processes", lambda: ts.extend(self.start_floor()))
        if "unix" in c:
            self.step("unix: ping-pong processes", lambda: ts.append(self.start_unix()))
        if "dbus" in c:
            self.step("dbus: a private dbus-daemon, jeepney processes", lambda: ts.append(self.start_dbus()))
        procs: dict[str, Any] = {}
        if c & VBINDER_SECTIONS:
            def start() -> None:
                procs.update(self.start_vbinder(0, self.cfg.servers))
                if "vbinder" in c:
                    procs.update(self.start_cecho())
                assert self.daemon is not None
                self.results.resources["rss_running_kib"] = rss_kib(self.daemon.pid)
                self.results.state_available = (self.mount / STATE).exists()

            self.step("vbinder: mount, service manager, servers", start)
        try:
            vb: list[Transport] = []
            if procs:
                assert self.daemon is not None
                if "vbinder" in c:
                    vb.append(Transport("vbinder", procs["client0"], self.daemon.pid))
                    if "client_v1" in procs:
                        vb.append(Transport("vbinder_v1", procs["client_v1"], self.daemon.pid))
                    if "client_slot" in procs:
                        vb.append(Transport("vbinder_slot", procs["client_slot"], self.daemon.pid))
                    if "cclient" in procs:
                        vb.append(Transport("vbinder_c", procs["cclient"], self.daemon.pid))
                    if "cclient_v1" in procs:
                        vb.append(Transport("vbinder_c_v1", procs["cclient_v1"], self.daemon.pid))
                if "verbose" in c and (self.mount / DEBUG_MASK_FILE).exists():
                    vb.append(self.verbose_in_place(procs["client0"]))
                if "traced" in c and (self.mount / TRACING).exists():
                    vb.append(self.traced_in_place(procs["client0"]))
            if ts or vb:
                self.sweep([*ts, *vb])
            for stop in self._others:  # the floor, Unix and D-Bus are done: free the machine
                stop()
            self._others = []
            if vb:
                self.step("vbinder: oneway calls", partial(self.oneway, [t for t in vb if t.key in
                                                                           ("vbinder", "vbinder_verbose")]))
            if procs and "aggregate" in c:
                self.aggregate(procs)
            if procs and "growth" in c:
                procs = self.growth(procs)
            if "verbose" in c:
                if any(t.key == "vbinder_verbose" for t in vb):
                    self.progress.step(1 + len(self.cfg.sizes) + 1)  # measured in place
                else:
                    procs = self.verbose_restart(procs)
        except BenchError as e:  # outside a step: the rest of the section is lost
            self.fail("vbinder", e)
        finally:
            if procs:
                self.stop_vbinder(procs)

    def sweep(self, ts: list[Transport]) -> None:
        """Each payload size: warm-up, then ``reps`` rounds of ``n`` calls per transport, rotated."""
        for size in self.cfg.sizes:
            live = [t for t in ts if not t.failed]
            names = ", ".join(t.key for t in live)
            self.step(f"echo {_size(size)}: {names}", partial(self._sweep_size, live, size))

    def _sweep_size(self, ts: list[Transport], size: int) -> None:
        if size == STRING:
            ts = [t for t in ts if t.key not in NO_STRINGS]
        n, reps, warm = self.cfg.calls(size)
        acc: dict[str, tuple[list[int], list[int], list[int]]] = {t.key: ([], [], []) for t in ts}

        def attempt(t: Transport, what: str, fn: Callable[[], Any]) -> Any:
            if t.failed:
                return None
            t.enter()
            try:
                return fn()
            except BenchError as e:
                t.failed = True
                self.fail(f"{t.key}: echo {_size(size)} ({what})", e)
                return None
            finally:
                t.leave()

        for t in ts:
            if t.cpu_pid:
                settle(t.cpu_pid)
            attempt(t, "warm-up", partial(t.client.request, "warmup", self.budget.timeout(120), size=size, n=warm))
        for rep in range(reps):
            k = rep % len(ts)
            for t in ts[k:] + ts[:k]:
                def one(t: Transport = t) -> None:
                    c0 = cpu_ticks(t.cpu_pid) if t.cpu_pid else 0
                    r = t.client.request("sync", self.budget.timeout(300), size=size, n=n, reps=1)
                    c1 = cpu_ticks(t.cpu_pid) if t.cpu_pid else 0
                    samples, walls, cpu = acc[t.key]
                    samples += r["samples"]
                    walls += r["walls"]
                    cpu.append(c1 - c0)

                attempt(t, "calls", one)
        for t in ts:
            samples, walls, cpu = acc[t.key]
            if t.failed or not walls:
                continue
            stats: dict[str, float] = latency(samples)
            stats["cps"] = median([n / (w / 1e9) for w in walls])
            if t.cpu_pid:
                stats["cpu_us"] = cpu_seconds(sum(cpu)) * 1e6 / len(samples)
            self.results.rtt.setdefault(t.key, {})[size] = stats

    # -- the floor, a Unix socket, D-Bus -------------------------------------------------------------

    def start_floor(self) -> list[Transport]:
        """The floor's ping-pong in four requests (``floor``) and in vbinder's five (``floor5``),
        on one floor file system, on channels of their own (bench.floorfs)."""
        mnt = self.work / "floor"
        path = str(mnt / "pp")
        slots = self.work / "slots"
        slots.mkdir(exist_ok=True)
        fs = self.sup.mount("floorfs", "floorfs", mnt, {"slots": str(slots)})
        ws: list[Worker] = []

        def stop() -> None:
            self.sup.unmount(fs)  # first: it answers the pongs' waiting reads
            self.sup.kill(*ws)

        self._others.append(stop)
        out = []
        for kind in FLOOR_CHANNELS:
            args = {"kind": kind, "path": path, **({"slots": str(slots)} if kind == "floor2" else {})}
            ws.append(self.sup.worker(f"{kind}-pong", "pong", args))
            ws.append(self.sup.worker(f"{kind}-client", "client", args))
            out.append(Transport(kind, ws[-1], fs.pid))
        return out

    def start_unix(self) -> Transport:
        path = str(self.work / "echo.sock")
        ws: list[Worker] = []
        self._others.append(lambda: self.sup.kill(*ws))
        ws.append(self.sup.worker("unix-pong", "pong", {"kind": "unix", "path": path}))
        ws.append(self.sup.worker("unix-client", "client", {"kind": "unix", "path": path}))
        return Transport("unix", ws[1])

    def start_dbus(self) -> Transport:
        if not shutil.which("dbus-daemon"):
            raise BenchError("dbus-daemon is not installed (apt-get install dbus)")
        try:
            import jeepney  # noqa: F401
        except ImportError:
            raise BenchError("jeepney is not installed (pip install jeepney)") from None
        bus: list[subprocess.Popen[bytes]] = []
        ws: list[Worker] = []

        def stop() -> None:
            self.sup.kill(*ws)
            for p in bus:
                p.kill()
                p.wait(5)

        self._others.append(stop)
        address = self._start_dbus_daemon(bus)
        ws.append(self.sup.worker("dbus-pong", "pong", {"kind": "dbus", "address": address}))
        ws.append(self.sup.worker("dbus-client", "client", {"kind": "dbus", "address": address}))
        return Transport("dbus", ws[1], bus[0].pid)

    def _start_dbus_daemon(self, out: list[subprocess.Popen[bytes]]) -> str:
        d = self.work / "dbus"
        d.mkdir(exist_ok=True)
        sock = d / "bus"
        config = d / "bus.conf"
        config.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
  <limit name="max_message_size">67108864</limit>
</busconfig>
""")
        p = self.sup.popen("dbus-daemon", ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile",
                                           "--nosyslog"])
        out.append(p)
        deadline = time.monotonic() + 10
        while not sock.exists():
            if p.poll() is not None or time.monotonic() > deadline:
                raise BenchError("dbus-daemon did not start")
            time.sleep(0.02)
        return f"unix:path={sock}"

    # -- vbinder -------------------------------------------------------------------------------------

    def start_vbinder(self, mask: int, servers: int) -> dict[str, Any]:
        """The daemon, the service manager, ``servers`` echo servers, an aux server and client0.

        Every process speaks Android 14's IServiceManager, as bench/cecho.c does (its codes:
        docs/android-versions.md)."""
        os.environ["VBINDER_ANDROID"] = "14"  # the workers inherit it
        os.environ["VBINDER_CHAINED"] = "1"  # the chained wait (docs/abi-chained.md): the preload library's opt-in
        if self.daemon is not None:  # left by a start that failed half-way
            self.sup.unmount(self.daemon)
            self.daemon = None
        self.daemon = self.sup.mount("vbinder", "daemon", self.mount, {"mask": mask})
        with open(self.counter, "wb") as f:
            f.write(b"\0" * 8)
        sm = self.sup.worker("servicemanager", "sm", {"device": self.device})
        echo = [self.sup.worker(f"echo{i}", "server", {"device": self.device, "name": f"echo{i}",
                                                        "counter": self.counter if i == 0 else None})
                for i in range(servers)]
        aux = self.sup.worker("aux", "server", {"device": self.device, "name": "aux"})
        targets = [f"echo{i}" for i in range(servers)]
        client0 = self.sup.worker("client0", "client", {"kind": "vbinder", "device": self.device,
                                                        "targets": [*targets, "aux"]})
        procs = {"sm": sm, "echo": echo, "aux": aux, "client0": client0, "targets": targets}
        if "vbinder" in self.sections:  # the same call by clients of ABI v1 only, in the same run
            procs["echo_v1"] = self.sup.worker("echo_v1", "server", {"device": self.device, "name": "echo_v1",
                                                                     "counter": None, "env": V1_ONLY})
            procs["client_v1"] = self.sup.worker("client_v1", "client", {
                "kind": "vbinder", "device": self.device, "targets": ["echo_v1"], "env": V1_ONLY})
            procs["echo_slot"] = self.sup.worker("echo_slot", "server", {
                "device": self.device, "name": "echo_slot", "counter": None, "env": SLOT_ALWAYS})
            procs["client_slot"] = self.sup.worker("client_slot", "client", {
                "kind": "vbinder", "device": self.device, "targets": ["echo_slot"], "env": SLOT_ALWAYS})
        return procs

    def start_cecho(self) -> dict[str, Worker]:
        """The C client and server of bench/cecho.c, through the preload library (vbinder run)."""
        exe = self.work / "cecho"
        src = Path(__file__).resolve().parent / "cecho.c"
        r = subprocess.run(["gcc", "-O2", "-o", str(exe), str(src), "-lpthread"], capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"compiling bench/cecho.c failed:\n{r.stderr}")
        args = {"exe": str(exe), "mount": str(self.mount)}
        server = self.sup.worker("cserver", "cserver", {**args, "name": "cecho"})
        client = self.sup.worker("cclient", "client", {"kind": "cecho", **args, "target": "cecho"})
        server_v1 = self.sup.worker("cserver_v1", "cserver", {**args, "name": "cecho_v1", "env": V1_ONLY})
        client_v1 = self.sup.worker("cclient_v1", "client", {"kind": "cecho", **args, "target": "cecho_v1",
                                                              "env": V1_ONLY})
        return {"cserver": server, "cclient": client, "cserver_v1": server_v1, "cclient_v1": client_v1}

    def stop_vbinder(self, procs: dict[str, Any]) -> None:
        ws = [*(procs[k] for k in ("cclient", "cserver", "cclient_v1", "cserver_v1", "client_v1", "echo_v1",
                                   "client_slot", "echo_slot")
                if k in procs),
              procs["client0"], procs["aux"], *procs["echo"], procs["sm"]]
        self.sup.kill(*ws)
        if self.daemon is not None:
            self.sup.unmount(self.daemon)
            self.daemon = None

    def oneway(self, ts: list[Transport]) -> None:
        """Oneway calls/s, in interleaved repetitions when the verbose mask is measured in place."""
        reps = 3
        n = max(50, self.cfg.oneway_calls // reps)
        window = self.cfg.oneway_window
        acc: dict[str, list[int]] = {t.key: [0, 0, 0, 0] for t in ts}  # calls, send ns, drain ns, ticks
        for t in ts:
            t.enter()
            try:
                t.client.request("use", 10, target=0)
                t.client.request("oneway", self.budget.timeout(60), size=0, n=max(50, n // 5),
                                 counter=self.counter, window=window)  # warm-up
            finally:
                t.leave()
        for rep in range(reps):
            k = rep % len(ts)
            for t in ts[k:] + ts[:k]:
                assert t.cpu_pid is not None
                t.enter()
                try:
                    c0 = cpu_ticks(t.cpu_pid)
                    r = t.client.request("oneway", self.budget.timeout(300), size=0, n=n, counter=self.counter,
                                         window=window)
                    c1 = cpu_ticks(t.cpu_pid)
                finally:
                    t.leave()
                a = acc[t.key]
                a[0] += n
                a[1] += r["send_ns"]
                a[2] += r["drain_ns"]
                a[3] += c1 - c0
        for t in ts:
            calls, send_ns, drain_ns, ticks = acc[t.key]
            self.results.oneway["mask0" if t.key == "vbinder" else "verbose"] = {
                "cps": calls / (drain_ns / 1e9), "send_cps": calls / (send_ns / 1e9),
                "cpu_us": cpu_seconds(ticks) * 1e6 / calls,
            }

    def aggregate(self, procs: dict[str, Any]) -> None:
        cfg = self.cfg
        clients: list[Worker] = [procs["client0"]]
        targets = [*procs["targets"], "aux"]
        extra: list[Worker] = []

        def spawn() -> None:
            for i in range(1, max(cfg.clients)):
                extra.append(self.sup.worker(f"client{i}", "client", {"kind": "vbinder", "device": self.device,
                                                                       "targets": targets}, wait=None))
            for w in extra:
                w.recv(self.budget.timeout(120))
            clients.extend(extra)

        self.step(f"aggregate: start {max(cfg.clients)} clients", spawn)
        try:
            for servers in (1, cfg.servers):
                # Rounds of short windows, the client counts in a rotated order in each: a change
                # of the machine's speed during the section hits every count alike (the targets
                # compare 16 clients with 1).
                rounds: dict[int, list[tuple[list[int], float, float]]] = {n: [] for n in cfg.clients}
                counts = list(cfg.clients)
                for r in range(cfg.agg_rounds):
                    for n in counts[r % len(counts):] + counts[:r % len(counts)]:
                        if n > len(clients):
                            self.progress.step()
                            continue
                        label = f"aggregate: {_plural(n, 'client')}, {_plural(servers, 'server')}, round {r + 1}"
                        got = self.step(label, partial(self._aggregate_once, clients[:n], servers))
                        if got is not None:
                            rounds[n].append(got)
                for n, measured in rounds.items():
                    if measured:
                        self.results.aggregate.setdefault(servers, {})[n] = combine_rounds(measured)
        finally:
            self.sup.stop(*extra)
            procs["client0"].request("use", 10, target=0)

    def _aggregate_once(self, clients: list[Worker], servers: int) -> tuple[list[int], float, float]:
        """One window: (latency samples, calls/s, the daemon's CPU µs per call)."""
        assert self.daemon is not None
        duration = self.cfg.agg_seconds / self.cfg.agg_rounds
        settle(self.daemon.pid)
        for i, w in enumerate(clients):
            w.request("use", 30, target=i % servers)
        for w in clients:
            w.send("warmup", size=0, n=20)
        for w in clients:
            w.recv(self.budget.timeout(60))
        start = time.monotonic() + 0.3 + 0.005 * len(clients)
        for w in clients:
            w.send("sync_for", size=0, start=start, duration=duration)
        _sleep_until(start)
        c0 = cpu_ticks(self.daemon.pid)
        _sleep_until(start + duration)
        c1 = cpu_ticks(self.daemon.pid)
        samples: list[int] = []
        for w in clients:
            samples += w.recv(self.budget.timeout(duration + 60))["samples"]
        return samples, len(samples) / duration, cpu_seconds(c1 - c0) * 1e6 / max(1, len(samples))

    def resources(self) -> None:
        """Memory per process and per thread, idle CPU: on a fresh daemon, whose heap has no room
        left over from earlier runs (CPython does not give freed memory back, so it would be reused)."""
        cfg = self.cfg
        res = self.results.resources
        mnt = self.work / "vbinder-mem"
        device = str(mnt / "dev" / "binder")
        daemon: list[Worker] = []
        box: list[Worker] = []

        def start() -> None:
            daemon.append(self.sup.mount("vbinder-mem", "daemon", mnt, {"mask": 0}))
            time.sleep(0.5)
            dpid = daemon[0].pid
            res["rss_fresh_kib"] = rss_kib(dpid)
            c0 = cpu_ticks(dpid)
            time.sleep(cfg.idle_cpu_seconds)
            res["idle_cpu_pct"] = cpu_seconds(cpu_ticks(dpid) - c0) / cfg.idle_cpu_seconds * 100

        def processes() -> None:
            dpid = daemon[0].pid
            w = self.sup.worker("opener-mem", "opener", {"device": device})
            box.append(w)
            r0 = rss_kib(dpid)
            w.request("open", self.budget.timeout(120), n=cfg.mem_procs)
            time.sleep(0.3)
            res["per_proc_kib"] = (rss_kib(dpid) - r0) / cfg.mem_procs
            res["procs"] = cfg.mem_procs

        def idle_threads() -> None:
            dpid = daemon[0].pid
            w = self.sup.worker("threads", "threads", {"device": device})
            box.append(w)
            r0 = rss_kib(dpid)
            w.request("spawn", self.budget.timeout(120), n=cfg.idle_threads, kind="idle")
            res["per_thread_kib"] = (rss_kib(dpid) - r0) / cfg.idle_threads
            res["idle_threads"] = cfg.idle_threads

        def loopers() -> None:
            dpid = daemon[0].pid
            w = self.sup.worker("loopers", "threads", {"device": device})
            box.append(w)
            r0 = rss_kib(dpid)
            w.request("spawn", self.budget.timeout(120), n=cfg.loopers, kind="looper")
            time.sleep(0.5)
            res["per_looper_kib"] = (rss_kib(dpid) - r0) / cfg.loopers
            res["loopers"] = cfg.loopers
            c0 = cpu_ticks(dpid)
            time.sleep(cfg.idle_cpu_seconds)
            res["looper_idle_cpu_pct"] = cpu_seconds(cpu_ticks(dpid) - c0) / cfg.idle_cpu_seconds * 100

        try:
            self.step("resources: a fresh daemon, idle", start)
            for label, fn in ((f"resources: {cfg.mem_procs} idle processes", processes),
                              (f"resources: {cfg.idle_threads} idle threads", idle_threads),
                              (f"resources: {cfg.loopers} waiting loopers", loopers)):
                if daemon:
                    self.step(label, fn)
                else:
                    self.progress.step()
        finally:
            self.sup.kill(*box)
            if daemon:
                self.sup.unmount(daemon[0])

    # -- growth --------------------------------------------------------------------------------------

    def _point(self, dim: str, n: int, client: Worker, base_kib: int) -> None:
        """Calls/s, the daemon's RSS and the time of ``state`` with ``n`` of ``dim``."""
        assert self.daemon is not None
        settle(self.daemon.pid)
        calls = self.cfg.growth_calls
        client.request("warmup", self.budget.timeout(60), size=0, n=max(20, calls // 10))
        r = client.request("sync", self.budget.timeout(120), size=0, n=calls, reps=1)
        point: dict[str, float] = {**latency(r["samples"]), "n": n}
        point["cps"] = calls / (r["walls"][0] / 1e9)
        point["rss_kib"] = rss_kib(self.daemon.pid)
        point["delta_kib_per"] = (point["rss_kib"] - base_kib) / n
        state = self.mount / STATE
        if state.exists():
            times: list[int] = []
            size = 0
            t_end = time.monotonic() + 0.2
            while len(times) < self.cfg.state_reads or (time.monotonic() < t_end and len(times) < 30):
                t0 = time.perf_counter_ns()
                with open(state, "rb", buffering=0) as f:
                    size = 0
                    while chunk := f.read(1 << 20):
                        size += len(chunk)
                times.append(time.perf_counter_ns() - t0)
            point["state_ms"] = median(times) / 1e6
            point["state_kib"] = size / 1024
        self.results.growth.setdefault(dim, []).append(point)

    def growth(self, procs: dict[str, Any]) -> dict[str, Any]:
        """Each dimension on a fresh daemon (RSS growth is then the objects', not refilled slack:
        CPython keeps freed memory for reuse). Returns the processes of the last daemon."""
        vb = {"kind": "vbinder", "device": self.device}
        t = self.budget.timeout

        def add_refs(w: Worker, k: int) -> None:
            w.request("use", 10, target=1)  # aux makes the nodes; the refs stay here
            w.request("make_binders", t(120), n=k)
            w.request("use", 10, target=0)

        # (dimension, start its helper, add k more, measure from the helper rather than client0)
        dims: list[tuple[str, Callable[[], Worker], Callable[[Worker, int], Any], bool]] = [
            ("processes", lambda: self.sup.worker("opener", "opener", {"device": self.device}),
             lambda w, k: w.request("open", t(120), n=k), False),
            ("nodes", lambda: self.sup.worker("holder", "client", {**vb, "targets": ["echo0"]}),
             lambda w, k: w.request("make_binders", t(120), n=k), False),
            ("refs", lambda: self.sup.worker("refclient", "client", {**vb, "targets": ["echo0", "aux"]}),
             add_refs, True),
            ("pending", lambda: self.sup.worker("pender", "client", {**vb, "targets": ["echo0"]}),
             lambda w, k: w.request("block", t(120), n=k), False),
        ]
        for dim, make, add, mine in dims:
            def restart() -> None:
                nonlocal procs
                if procs:
                    self.stop_vbinder(procs)
                    procs = {}
                procs = self.start_vbinder(0, 1)

            self.step(f"growth: {dim}: a fresh daemon", restart)
            if not procs:
                self.progress.step(len(self.cfg.growth) + (dim == "pending"))
                continue
            made = self._grow(dim, make, add, mine, procs["client0"])
            if dim == "pending":
                self.step("growth: release the pending calls", partial(self._release, procs["echo"][0], made))
        return procs

    def _grow(self, dim: str, make: Callable[[], Worker], add: Callable[[Worker, int], Any], mine: bool,
              client0: Worker) -> int:
        """The points of one dimension: a helper process adds objects up to each n. Returns the last n."""
        assert self.daemon is not None
        dpid = self.daemon.pid
        helper: list[Worker] = []
        have = 0
        base = rss_kib(dpid)

        def point(n: int) -> None:
            nonlocal have, base
            if not helper:
                helper.append(make())
                time.sleep(0.2)
                base = rss_kib(dpid)
            add(helper[0], n - have)
            have = n
            self._point(dim, n, helper[0] if mine else client0, base)

        try:
            for n in self.cfg.growth:
                self.step(f"growth: {dim} = {n}", partial(point, n))
        finally:
            self.sup.kill(*helper)
            time.sleep(0.3)
        return have

    def _release(self, server: Worker, total: int) -> None:
        """Let the ``total`` blocked oneway calls run, wait until they have, and block the next ones."""
        server.request("release", 10)
        deadline = time.monotonic() + self.budget.timeout(120)
        while server.request("blocks_done", 10) < total:
            if time.monotonic() > deadline:
                raise BenchError("the pending oneway calls did not drain")
            time.sleep(0.1)
        server.request("block", 10)

    # -- the verbose debug mask ----------------------------------------------------------------------

    def verbose_in_place(self, client: Worker) -> Transport:
        """The verbose mask as a transport of its own: written to the mount's parameter file around
        each of its repetitions (and 0 written back), on the same daemon as mask 0."""
        assert self.daemon is not None
        param = self.mount / DEBUG_MASK_FILE
        mask = self.cfg.verbose_mask
        self.results.verbose_how = (f"written to {DEBUG_MASK_FILE} around its repetitions, interleaved "
                                    "with those of mask 0 on the same daemon")

        def enter() -> None:
            param.write_text(f"{mask}\n")

        def leave() -> None:
            param.write_text("0\n")

        return Transport("vbinder_verbose", client, self.daemon.pid, enter=enter, leave=leave)

    def traced_in_place(self, client: Worker) -> Transport:
        """Tracing on, as ``vbinder trace record`` has it, around each of its repetitions: a tracefs
        instance with the binder events Perfetto reads, its raw pages drained by a thread of this
        process and formatted after the repetition, on the same daemon as mask 0."""
        import threading

        from vbinder.tools.record import PERFETTO_EVENTS, Session

        assert self.daemon is not None
        state: dict[str, Any] = {}

        def drain(session: Session, stop: threading.Event) -> None:
            state["pages"] = session.pages(stop.is_set)  # as trace record reads them

        def enter() -> None:
            session = Session(str(self.mount), "bench", PERFETTO_EVENTS)
            stop = threading.Event()
            thread = threading.Thread(target=drain, args=(session, stop), daemon=True)
            state.update(session=session, stop=stop, thread=thread)
            thread.start()

        def leave() -> None:
            state["stop"].set()
            state["thread"].join()
            state["session"].lines_of(state["pages"])  # and formats them, once the calls are done
            state["session"].close()

        return Transport("vbinder_traced", client, self.daemon.pid, enter=enter, leave=leave)

    def verbose_restart(self, procs: dict[str, Any]) -> dict[str, Any]:
        """The verbose mask on a daemon started with ``--debug-mask`` (no parameter file to write)."""
        mask = self.cfg.verbose_mask

        def restart() -> None:
            nonlocal procs
            if procs:
                self.stop_vbinder(procs)
                procs = {}
            procs = self.start_vbinder(mask, 1)
            self.results.verbose_how = f"daemon restarted with --debug-mask {mask:#x} (no {DEBUG_MASK_FILE})"

        self.step(f"verbose: a daemon with --debug-mask {mask:#x}", restart)
        if not procs or self.daemon is None:
            self.progress.step(len(self.cfg.sizes) + 1)
            return procs
        t = Transport("vbinder_verbose", procs["client0"], self.daemon.pid)
        self.sweep([t])
        self.step("verbose: oneway calls", partial(self.oneway, [t]))
        return procs


def combine_rounds(rounds: list[tuple[list[int], float, float]]) -> dict[str, float]:
    """One aggregate point from its rounds of (latency samples in ns, calls/s, CPU µs per call):
    latency over every call, calls/s and CPU per call the medians over the rounds."""
    stats = latency([s for samples, _cps, _cpu in rounds for s in samples])
    stats["cps"] = median([cps for _s, cps, _cpu in rounds])
    stats["cpu_us"] = median([cpu for _s, _cps, cpu in rounds])
    return stats


def settle(pid: int, timeout: float = 10.0) -> None:
    """Wait until process ``pid`` is idle (under 10 % of a core for 0.2 s), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_ticks(pid)
        if cpu_seconds(now - last) <= 0.02:
            return
        last = now


def _sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _size(n: int) -> str:
    if n == STRING:
        return f"string ({-STRING} chars)"
    if n == 0:
        return "0 B"
    if n == MIB - 65536:
        return "1 MiB - 64 KiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} B"
