"""The report: markdown tables of one run's numbers, and the targets with PASS/FAIL and ratios."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.run import MIB, SIZES, STATE, STRING, Results, _size

GROWTH_DIMS = {
    "processes": "idle, mapped processes (opens of the device)",
    "nodes": "nodes in the called server, each referenced by another process",
    "refs": "refs held by the calling process (to nodes in another process)",
    "pending": "oneway transactions pending on the called node",
}
GROWTH_TOLERANCE = 0.1  # "linear or better": a log-log slope of at most 1 + this (noise)


@dataclass
class Target:
    name: str
    measured: str
    ratio: float | None
    limit: str
    ok: bool | None  # None: could not be measured

    @property
    def result(self) -> str:
        return "n/a" if self.ok is None else "PASS" if self.ok else "FAIL"


# -- formatting --------------------------------------------------------------------------------------


def _ok(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def us(x: float | None) -> str:
    if not _ok(x):
        return "—"
    assert x is not None
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def num(x: float | None) -> str:
    return f"{x:,.0f}" if _ok(x) else "—"


def ratio(x: float | None) -> str:
    return f"{x:.2f}" if _ok(x) else "—"


def kib(x: float | None) -> str:
    if not _ok(x):
        return "—"
    assert x is not None
    return f"{x:,.1f}" if abs(x) < 100 else f"{x:,.0f}"


def _div(a: float | None, b: float | None) -> float | None:
    if not _ok(a) or not _ok(b) or not b:
        return None
    assert a is not None and b is not None
    return a / b


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = "|".join("---" if i == 0 else "---:" for i in range(len(header)))
    out = ["| " + " | ".join(header) + " |", f"|{align}|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def slope(points: list[dict[str, float]], key: str) -> float | None:
    """The log-log slope of ``key`` against n between the last two points (1 = linear growth)."""
    pts = [p for p in points if _ok(p.get(key)) and p.get(key, 0) > 0]
    if len(pts) < 2:
        return None
    a, b = pts[-2], pts[-1]
    ya, yb = a[key], b[key]
    if b["n"] <= a["n"]:
        return None
    return math.log(yb / ya) / math.log(b["n"] / a["n"])


# -- targets -----------------------------------------------------------------------------------------


def targets(r: Results) -> list[Target]:
    out: list[Target] = []
    vb = r.rtt.get("vbinder", {}).get(0, {})
    floor = r.rtt.get("floor", {}).get(0, {})
    dbus = r.rtt.get("dbus", {}).get(0, {})

    x = _div(vb.get("p50"), floor.get("p50"))
    out.append(Target("sync call p50 (0 B) ≤ 1.4 × the floor's round trip",
                      f"{us(vb.get('p50'))} µs vs {us(floor.get('p50'))} µs", x, "≤ 1.4",
                      None if x is None else x <= 1.4))
    x = _div(vb.get("p50"), dbus.get("p50"))
    out.append(Target("sync call p50 (0 B) ≤ 0.6 × the D-Bus call (`ay`)",
                      f"{us(vb.get('p50'))} µs vs {us(dbus.get('p50'))} µs", x, "≤ 0.6",
                      None if x is None else x <= 0.6))
    vbs, dbs = r.rtt.get("vbinder", {}).get(STRING, {}), r.rtt.get("dbus", {}).get(STRING, {})
    x = _div(vbs.get("p50"), dbs.get("p50"))
    out.append(Target(f"sync call p50, a {-STRING}-character string ≤ 0.6 × the D-Bus call (`s`)",
                      f"{us(vbs.get('p50'))} µs vs {us(dbs.get('p50'))} µs", x, "≤ 0.6",
                      None if x is None else x <= 0.6))
    x = _div(vb.get("cpu_us"), floor.get("cpu_us"))
    out.append(Target("daemon CPU per sync call (0 B) ≤ 1.3 × the floor's per round trip",
                      f"{us(vb.get('cpu_us'))} µs vs {us(floor.get('cpu_us'))} µs", x, "≤ 1.3",
                      None if x is None else x <= 1.3))
    vbc = r.rtt.get("vbinder_c", {}).get(0, {})
    x = _div(vbc.get("p50"), floor.get("p50"))
    out.append(Target("C client and server through the preload library, p50 (0 B) ≤ 1.1 × the floor",
                      f"{us(vbc.get('p50'))} µs vs {us(floor.get('p50'))} µs" if vbc else "not measured", x,
                      "≤ 1.1", None if x is None else x <= 1.1))
    big = MIB - 65536
    vbb, flb = r.rtt.get("vbinder", {}).get(big, {}), r.rtt.get("floor", {}).get(big, {})
    x = _div(vbb.get("p50"), flb.get("p50"))
    out.append(Target("1 MiB - 64 KiB payload p50 ≤ 1.3 × the floor's with the same payload",
                      f"{us(vbb.get('p50'))} µs vs {us(flb.get('p50'))} µs", x, "≤ 1.3",
                      None if x is None else x <= 1.3))
    traced = r.rtt.get("vbinder_traced", {}).get(0, {})
    x = _div(traced.get("p50"), vb.get("p50"))
    out.append(Target("sync call p50 (0 B), traced as `trace record` does ≤ 1.2 × tracing off",
                      f"{us(traced.get('p50'))} µs vs {us(vb.get('p50'))} µs" if traced else "not measured", x,
                      "≤ 1.2", None if x is None else x <= 1.2))
    ow = r.oneway.get("mask0", {})
    x = _div(ow.get("cps"), vb.get("cps"))
    out.append(Target("oneway calls/s ≥ 2 × sync calls/s",
                      f"{num(ow.get('cps'))} vs {num(vb.get('cps'))} /s", x, "≥ 2",
                      None if x is None else x >= 2))
    for servers, agg in sorted(r.aggregate.items()):
        one, sixteen = agg.get(1, {}), agg.get(16, {})
        x = _div(sixteen.get("cps"), one.get("cps"))
        label = "1 server" if servers == 1 else f"{servers} servers"
        out.append(Target(f"aggregate calls/s, 16 clients ≥ 0.9 × 1 client ({label})",
                          f"{num(sixteen.get('cps'))} vs {num(one.get('cps'))} /s", x, "≥ 0.9",
                          None if x is None else x >= 0.9))
    if not r.aggregate:
        out.append(Target("aggregate calls/s, 16 clients ≥ 0.9 × 1 client", "not measured", None, "≥ 0.9", None))
    for upto, limit, pick in ((8, 5.0, lambda n: n <= 8), (64, 10.0, lambda n: n == 64)):
        worst: tuple[float, str] | None = None
        for servers, agg in r.aggregate.items():
            for n, st in agg.items():
                q = _div(st.get("p99"), st.get("p50"))
                if pick(n) and q is not None and (worst is None or q > worst[0]):
                    worst = (q, f"{n} client{'s' if n > 1 else ''}, {servers} server{'s' if servers > 1 else ''}")
        name = f"p99 ≤ {limit:.0f} × p50 " + ("up to 8 clients" if upto == 8 else "at 64 clients")
        if worst is None:
            out.append(Target(name, "not measured", None, f"≤ {limit:.0f}", None))
        else:
            out.append(Target(name, f"worst: {worst[1]}", worst[0], f"≤ {limit:.0f}", worst[0] <= limit))
    lim = 1 + GROWTH_TOLERANCE
    for dim in GROWTH_DIMS:
        pts = r.growth.get(dim, [])
        s = slope(pts, "state_ms")
        span = f"n {pts[-2]['n']:.0f} → {pts[-1]['n']:.0f}" if len(pts) >= 2 else "not measured"
        if not r.state_available:
            why = "not measured" if r.state_available is None else f"n/a: no {STATE}"
            out.append(Target(f"`state` time grows linearly or better ({dim})", why, None, f"slope ≤ {lim:.1f}", None))
        else:
            out.append(Target(f"`state` time grows linearly or better ({dim})", f"log-log slope, {span}", s,
                              f"slope ≤ {lim:.1f}", None if s is None else s <= lim))
    for dim in GROWTH_DIMS:
        pts = r.growth.get(dim, [])
        s = slope(pts, "p50")
        span = f"n {pts[-2]['n']:.0f} → {pts[-1]['n']:.0f}" if len(pts) >= 2 else "not measured"
        out.append(Target(f"per-call cost grows linearly or better ({dim})", f"log-log slope, {span}", s,
                          f"slope ≤ {lim:.1f}", None if s is None else s <= lim))
    per = r.resources.get("per_proc_kib")
    nprocs = r.resources.get("procs", 0)
    out.append(Target("daemon memory per idle open, mapped process ≤ 64 KiB",
                      f"{kib(per)} KiB (n = {nprocs:.0f})" if per is not None else "not measured",
                      _div(per, 64.0), "≤ 1 (÷ 64 KiB)", None if per is None else per <= 64))
    return out


def bound(r: Results) -> list[str]:
    """What bounds the sync call: the floor in vbinder's four requests (the chained wait,
    docs/abi-chained.md), vbinder's own work on top, what the chain saved against clients of ABI v1
    (five requests), what a request slot would leave (the two-request floor), and what each latency
    target leaves for vbinder's own work."""
    keys = ("floor", "floor5", "floor2", "dbus", "vbinder", "vbinder_v1", "vbinder_slot")
    p50 = {k: r.rtt.get(k, {}).get(0, {}).get("p50") for k in keys}
    cpu = {k: r.rtt.get(k, {}).get(0, {}).get("cpu_us") for k in keys}
    floor, dbus, vb = p50["floor"], p50["dbus"], p50["vbinder"]
    if not (_ok(floor) and _ok(vb)):
        return ["not measured (needs the floor and vbinder)"]
    assert floor is not None and vb is not None
    own = vb - floor
    out = [f"A sync call takes four FUSE requests with the chained wait, as many as the floor's round trip, "
           f"{us(floor)} µs with nothing in them. vbinder's own work (the driver core, the adapter, the client "
           f"library on both ends) adds {us(own)} µs to that"
           + (f"; its daemon spends {us(cpu['vbinder'])} µs of CPU per call against the floor's "
              f"{us(cpu['floor'])} µs ({us(cpu['floor'] / 4)} µs per request of pyfuse3 + trio alone), so "
              f"{us(cpu['vbinder'] - cpu['floor'])} µs of it is vbinder's own"
              if _ok(cpu["floor"]) and _ok(cpu["vbinder"]) else "") + "."]
    v1, floor5 = p50["vbinder_v1"], p50["floor5"]
    if _ok(v1) and _ok(floor5):
        assert v1 is not None and floor5 is not None
        out.append(f"Clients of ABI v1 only (five requests) take {us(v1)} µs (the five-request floor: "
                   f"{us(floor5)} µs): the chained wait saves {us(v1 - vb)} µs per call"
                   + (f" and {us(cpu['vbinder_v1'] - cpu['vbinder'])} µs of the daemon's CPU"
                      if _ok(cpu["vbinder_v1"]) and _ok(cpu["vbinder"]) else "") + ".")
    floor2 = p50["floor2"]
    if _ok(floor2):
        assert floor2 is not None
        out.append(f"With a request slot (one request for a call's write and read on each side) the floor takes "
                   f"{us(floor2)} µs, {ratio(floor2 / floor)} × the four-request floor"
                   + (f", and its daemon {us(cpu['floor2'])} µs of CPU" if _ok(cpu["floor2"]) else "")
                   + ": what a request slot in vbinder could save at most.")
    slot = p50["vbinder_slot"]
    if _ok(slot):
        assert slot is not None
        out.append(f"vbinder's request slot, every request by it (two requests a call, docs/abi-slot.md): "
                   f"{us(slot)} µs, {ratio(slot / vb)} × the default (which sends small requests by pwrite)"
                   + (f", with {us(cpu['vbinder_slot'])} µs of the daemon's CPU against {us(cpu['vbinder'])} µs"
                      if _ok(cpu["vbinder_slot"]) and _ok(cpu["vbinder"]) else "") + ".")
    limits = [("1.4 × the floor", 1.4 * floor)]
    if dbus is not None and _ok(dbus):
        limits.append(("0.6 × D-Bus", 0.6 * dbus))
    for name, limit in limits:
        room = limit - floor
        if room > 0:
            out.append(f"- {name} = {us(limit)} µs leaves {us(room)} µs per call for that work "
                       f"({ratio(own / room)} × what it takes now).")
        else:
            out.append(f"- {name} = {us(limit)} µs is below the four-request floor itself: with four FUSE "
                       "requests per call (pyfuse3 + trio, DESIGN.md's frames) no implementation meets it.")
    return out


# -- the report --------------------------------------------------------------------------------------


def render(r: Results) -> str:
    m = r.machine
    cfg = r.config
    lines = ["# vbinder benchmark results", ""]
    kind = "quick run (`python -m bench --quick`): small counts, rough numbers" if cfg.quick else \
        "full run (`make bench`)"
    lines.append(f"{kind}; {m.get('date', '?')}; {r.seconds:.0f} s"
                 + (" — **interrupted**" if r.interrupted else "") + ".")
    lines.append("")
    lines.append(f"Machine: {m.get('cores')} cores ({m.get('cpu')}), Linux {m.get('kernel')}, "
                 f"Python {m.get('python')}, pyfuse3 {m.get('pyfuse3')}, trio {m.get('trio')}, "
                 f"jeepney {m.get('jeepney')}, dbus-daemon {m.get('dbus-daemon')}; vbinder: {m.get('vbinder', '?')}. "
                 f"Load average before the run: {m.get('load')}; after: {m.get('load_after', '?')}.")
    lines.append("")

    lines += ["## Targets", ""]
    rows = [[t.name, t.measured, ratio(t.ratio), t.limit, f"**{t.result}**" if t.ok is False else t.result]
            for t in targets(r)]
    lines += table(["target", "measured", "ratio", "limit", "result"], rows)
    lines += ["", "### What bounds the sync call", "", *bound(r), ""]

    lines += ["## Echo round trip: one client process, one server process", "",
              "p50 (p99) in µs of a synchronous echo of the payload. *floor*: a minimal pyfuse3 file system "
              "with vbinder's settings, write + read ping-pong between two processes (four FUSE requests); "
              "*floor, 5 req.*: the same with a sync call's five requests (the callee reads an "
              "acknowledgement after its reply, as binder's BR_TRANSACTION_COMPLETE); *floor, 2 req. (slot)*: the "
              "same with a request slot (each side puts its message in a file of its own, and one pread sends it "
              "and waits for the answer: bench/floorfs.py), the least a call could take with issue 21's request "
              "slot; *Unix socket*: the "
              "same ping-pong over a Unix stream socket; *D-Bus*: a method call with an `ay` argument "
              "through a private dbus-daemon, jeepney on both ends; *vbinder*: an AIDL-style call with a "
              "byte array through `vbinder_client`; the *string* row: a 100-character string argument echoed "
              "(D-Bus `s`, an AIDL `String` as String16 for vbinder, its UTF-8 bytes for the floor and the "
              "socket); *vbinder, C*: the same call between a C client and a "
              "C server on the kernel's ABI (`bench/cecho.c`), through the preload library (`vbinder run`) with its "
              "chained wait turned on (`VBINDER_CHAINED=1`, docs/abi-chained.md); "
              "*v1 only*: the same with both ends keeping to the device ABI version 1 (`VBINDER_CHAINED=0`: "
              "five FUSE requests a call, without the chained wait of docs/abi-chained.md); "
              "*slot always*: `vbinder_client` on both ends sending every request by the request slot "
              "(`VBINDER_SLOT=1`, docs/abi-slot.md: two FUSE requests a call; by default only requests of "
              "16 KiB or more go by the slot). "
              "The transports take turns: each repetition of each payload "
              "runs them one after the other, in a rotated order, so that the machine's load changes hit them "
              "alike.", ""]
    cols = [("floor", "floor (pyfuse3)"), ("floor5", "floor, 5 req."), ("floor2", "floor, 2 req. (slot)"),
            ("unix", "Unix socket"),
            ("dbus", "D-Bus (jeepney)"),
            ("vbinder", "vbinder, mask 0"), ("vbinder_v1", "vbinder, v1 only"),
            ("vbinder_slot", "vbinder, slot always"), ("vbinder_c", "vbinder, C"),
            ("vbinder_c_v1", "vbinder, C, v1 only"),
            ("vbinder_verbose", f"vbinder, mask {cfg.verbose_mask:#x}"), ("vbinder_traced", "vbinder, traced")]
    rows = []
    for size in SIZES:
        row = [_size(size)]
        for key, _title in cols:
            st = r.rtt.get(key, {}).get(size)
            row.append(f"{us(st['p50'])} ({us(st['p99'])})" if st else "—")
        vb = r.rtt.get("vbinder", {}).get(size, {})
        row.append(ratio(_div(vb.get("p50"), r.rtt.get("floor", {}).get(size, {}).get("p50"))))
        row.append(ratio(_div(vb.get("p50"), r.rtt.get("dbus", {}).get(size, {}).get("p50"))))
        row.append(ratio(_div(r.rtt.get("vbinder_verbose", {}).get(size, {}).get("p50"), vb.get("p50"))))
        row.append(ratio(_div(r.rtt.get("vbinder_traced", {}).get(size, {}).get("p50"), vb.get("p50"))))
        rows.append(row)
    lines += table(["payload", *(t for _k, t in cols), "vbinder ÷ floor", "vbinder ÷ D-Bus", "verbose ÷ mask 0",
                    "traced ÷ mask 0"], rows)
    lines.append("")

    lines += ["## Calls per second and CPU, one client", "",
              "Calls/s: the median over repetitions; CPU: the serving daemon's (vbinder's, the floor's, "
              "dbus-daemon's) user + system time per call, from `/proc/PID/stat`.", ""]
    rows = []
    for size in SIZES:
        row = [_size(size)]
        for key in ("floor", "floor5", "floor2", "unix", "dbus", "vbinder", "vbinder_v1", "vbinder_slot",
                    "vbinder_c", "vbinder_verbose"):
            st = r.rtt.get(key, {}).get(size, {})
            row.append(num(st.get("cps")))
        for key in ("floor", "floor5", "floor2", "dbus", "vbinder", "vbinder_v1", "vbinder_slot", "vbinder_c",
                    "vbinder_c_v1", "vbinder_verbose", "vbinder_traced"):
            row.append(us(r.rtt.get(key, {}).get(size, {}).get("cpu_us")))
        rows.append(row)
    lines += table(["payload", "floor /s", "floor 5 req. /s", "floor 2 req. /s", "Unix /s", "D-Bus /s", "vbinder /s",
                    "v1 only /s", "slot always /s", "vbinder C /s", "verbose /s", "floor CPU µs",
                    "floor 5 req. CPU µs", "floor 2 req. CPU µs", "dbus-daemon CPU µs",
                    "vbinder CPU µs", "v1 only CPU µs", "slot always CPU µs", "vbinder C CPU µs", "C v1 only CPU µs",
                    "verbose CPU µs", "traced CPU µs"], rows)
    lines.append("")

    lines += ["## Oneway calls (0 B)", "",
              "Received: calls/s until the server has run the last one; sent: until the caller has sent it "
              f"(the caller stays at most {cfg.oneway_window} calls ahead, within the server's async space).", ""]
    sync0 = r.rtt.get("vbinder", {}).get(0, {})
    syncv = r.rtt.get("vbinder_verbose", {}).get(0, {})
    o0, ov = r.oneway.get("mask0", {}), r.oneway.get("verbose", {})
    rows = [
        ["oneway calls/s, received", num(o0.get("cps")), num(ov.get("cps"))],
        ["oneway calls/s, sent", num(o0.get("send_cps")), num(ov.get("send_cps"))],
        ["daemon CPU µs per oneway call", us(o0.get("cpu_us")), us(ov.get("cpu_us"))],
        ["sync calls/s", num(sync0.get("cps")), num(syncv.get("cps"))],
        ["oneway ÷ sync", ratio(_div(o0.get("cps"), sync0.get("cps"))), ratio(_div(ov.get("cps"), syncv.get("cps")))],
    ]
    lines += table(["", "mask 0", f"mask {cfg.verbose_mask:#x}"], rows)
    lines.append("")

    lines += ["## Aggregate sync calls (0 B), debug_mask 0", "",
              f"N client processes calling for {cfg.agg_seconds:g} s, in {cfg.agg_rounds} rounds of "
              f"{cfg.agg_seconds / cfg.agg_rounds:g} s that take the client counts in a rotated order (so "
              "that the machine's load changes hit them alike); with several servers, client i calls "
              "server i mod S. Calls/s and CPU (the daemon's per call): the median over the rounds; "
              "p50/p99 over all calls.", ""]
    header = ["clients"]
    server_keys = sorted(r.aggregate)
    for s in server_keys:
        tag = "1 server" if s == 1 else f"{s} servers"
        header += [f"{tag}: calls/s", "p50 µs", "p99 µs", "p99/p50", "CPU µs"]
    rows = []
    for n in cfg.clients:
        row = [str(n)]
        for s in server_keys:
            st = r.aggregate[s].get(n, {})
            row += [num(st.get("cps")), us(st.get("p50")), us(st.get("p99")),
                    ratio(_div(st.get("p99"), st.get("p50"))), us(st.get("cpu_us"))]
        rows.append(row)
    if server_keys:
        lines += table(header, rows)
    else:
        lines.append("not measured")
    lines.append("")

    res = r.resources
    lines += ["## The daemon's CPU and memory", "", "Memory: growth of the daemon's RSS (`VmRSS`) divided by "
              "the number of objects added, on a fresh daemon.", ""]
    rows = [
        ["CPU per sync call (1 client, 0 B)", f"{us(sync0.get('cpu_us'))} µs"],
        ["CPU per sync call, 16 clients", f"{us(r.aggregate.get(1, {}).get(16, {}).get('cpu_us'))} µs"],
        ["RSS, fresh", f"{kib(_div(res.get('rss_fresh_kib'), 1024))} MiB"],
        ["RSS with the service manager, the servers and a client",
         f"{kib(_div(res.get('rss_running_kib'), 1024))} MiB"],
        [f"RSS per idle open, mapped process (n = {res.get('procs', 0):.0f})", f"{kib(res.get('per_proc_kib'))} KiB"],
        [f"RSS per thread known to the driver (n = {res.get('idle_threads', 0):.0f})",
         f"{kib(res.get('per_thread_kib'))} KiB"],
        [f"RSS per looper thread waiting in read (n = {res.get('loopers', 0):.0f})",
         f"{kib(res.get('per_looper_kib'))} KiB"],
        ["idle CPU", f"{ratio(res.get('idle_cpu_pct'))} % of a core"],
        [f"idle CPU with {res.get('loopers', 0):.0f} waiting loopers (watchdog scans)",
         f"{ratio(res.get('looper_idle_cpu_pct'))} % of a core"],
    ]
    lines += table(["", ""], rows)
    lines.append("")

    lines += ["## How the cost grows", "",
              "Sync echo calls (0 B) from one client while n objects of each kind exist; the daemon's RSS; "
              f"the time to open and read `{STATE}` (the median of {cfg.state_reads} to 30 reads). "
              "Slopes are log-log, between the last two n (1: linear; 0: flat).", ""]
    rows = []
    for dim, what in GROWTH_DIMS.items():
        pts = r.growth.get(dim, [])
        for p in pts:
            state = f"{us(p['state_ms'])}" if "state_ms" in p else "n/a"
            skib = kib(p.get("state_kib")) if "state_kib" in p else "n/a"
            rows.append([f"{dim}: {what}" if p is pts[0] else "", f"{p['n']:.0f}", num(p.get("cps")), us(p.get("p50")),
                         kib(p["rss_kib"] / 1024), kib(p.get("delta_kib_per")), state, skib])
        if pts:
            rows.append(["", "slope", ratio(slope(pts, "p50")) + " (p50)", "", "", "",
                         ratio(slope(pts, "state_ms")) if r.state_available else "n/a", ""])
    if rows:
        lines += table(["dimension", "n", "calls/s", "p50 µs", "daemon RSS MiB", "Δ RSS KiB per unit",
                        "state ms", "state KiB"], rows)
    else:
        lines.append("not measured")
    if r.state_available is False:
        lines += ["", f"`{STATE}` does not exist in this mount: its times are n/a."]
    lines.append("")

    if r.verbose_how:
        lines += [f"The verbose mask ({cfg.verbose_mask:#x}): {r.verbose_how}.", ""]
    if r.errors or r.skipped:
        lines += ["## Not measured", ""]
        lines += [f"- {label}: {msg.splitlines()[0]}" for label, msg in r.errors]
        lines += [f"- {label}: skipped, the time budget was spent" for label in r.skipped]
        lines.append("")
    return "\n".join(lines)
