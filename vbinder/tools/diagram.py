"""``vbinder trace diagram FILE -o OUT.svg|.html``: a recorded trace as a sequence diagram.

Processes are lifelines (in the order they first appear); every call is an arrow from its
caller to its target and, when answered, an arrow back; one-way calls are dashed, failed calls
red with their BR code, and the time a process spends serving a call is a bar on its lifeline,
bars of nested calls stacked beside each other. Events go one per row in time order, so a few
hundred calls stay readable; the HTML page holds the same SVG with zoom (buttons, Ctrl+wheel)
and scrolling, the lifelines' names staying at the top while it scrolls.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

from .events import Call, CallTracker, read_calls

COL = 190  # px between lifelines
ROW = 24  # px per event
TOP = 60  # room for the names
LEFT = 110


def _label(c: Call) -> str:
    return c.name or f"code {c.code:#x}"


def build_svg(tracker: CallTracker) -> tuple[str, int, int, str]:
    """The diagram as SVG text, its width and height, and its heads alone (the HTML's sticky row)."""
    calls = sorted((c for c in tracker.calls.values()), key=lambda c: (c.ts, c.id))
    pids: list[int] = []
    for c in calls:
        for p in (c.pid, c.dest_pid):
            if p not in pids:
                pids.append(p)
    x = {p: LEFT + i * COL for i, p in enumerate(pids)}
    events: list[tuple[float, int, str, Call]] = []
    for c in calls:
        events.append((c.ts, c.id, "call", c))
        if c.end is not None and not c.oneway:
            events.append((c.end, c.id, "end", c))
        elif c.end is not None and c.failed:
            events.append((c.end, c.id, "end", c))
    events.sort(key=lambda e: (e[0], e[2] != "end", e[1]))
    row_of: dict[tuple[int, str], int] = {}
    for i, (_ts, cid, kind, _c) in enumerate(events):
        row_of[(cid, kind)] = i
    height = TOP + ROW * (len(events) + 1) + 20
    width = LEFT + COL * max(len(pids) - 1, 0) + 200
    t0 = calls[0].ts if calls else 0.0
    out: list[str] = []
    # Bars: a process serving a sync call, from its arrival to its answer; nesting shifts them.
    depth: dict[int, int] = {}
    bars: list[str] = []
    for _ts, cid, kind, c in events:
        if c.oneway or c.failed and c.received is None:
            continue
        if kind == "call":
            d = depth.get(c.dest_pid, 0)
            depth[c.dest_pid] = d + 1
            y0 = TOP + ROW * row_of[(cid, "call")] + ROW / 2
            y1 = TOP + ROW * row_of.get((cid, "end"), len(events)) + ROW / 2
            bx = x[c.dest_pid] - 5 + 8 * d
            bars.append(f'<rect class="bar" x="{bx}" y="{y0}" width="10" height="{max(y1 - y0, 4)}"/>')
        else:
            depth[c.dest_pid] = max(0, depth.get(c.dest_pid, 1) - 1)
    heads: list[str] = []
    for p in pids:
        name = html.escape(tracker.process_name(p))
        out.append(f'<line class="life" x1="{x[p]}" y1="{TOP - 10}" x2="{x[p]}" y2="{height - 10}"/>')
        heads.append(f'<g class="head"><rect x="{x[p] - 80}" y="8" width="160" height="34" rx="5"/>'
                     f'<text x="{x[p]}" y="23" class="pname">{name}</text>'
                     f'<text x="{x[p]}" y="37" class="pid">pid {p}</text></g>')
    out.extend(heads)
    out.extend(bars)
    for i, (ts, _cid, kind, c) in enumerate(events):
        y = TOP + ROW * i + ROW / 2
        out.append(f'<text class="time" x="6" y="{y + 4}">+{(ts - t0) * 1e3:.3f} ms</text>')
        src, dst = (c.pid, c.dest_pid) if kind == "call" else (c.dest_pid, c.pid)
        if kind == "end" and c.failed:
            src = dst = c.pid
        x1, x2 = x[src], x[dst]
        cls = "call" if kind == "call" else "reply"
        if c.oneway and kind == "call":
            cls = "oneway"
        if c.failed:
            cls += " failed"
        label = _label(c) if kind == "call" else (c.result if c.failed else
                                                    f"reply {_label(c)} ({(c.latency or 0) * 1e3:.2f} ms)")
        title = html.escape(f"transaction {c.id}: {c.pid}:{c.tid} -> {c.dest_pid} node {c.dest_node}, "
                            f"code {c.code:#x}, flags {c.flags:#x}, {c.data_size} bytes, {c.result or 'pending'}")
        attrs = f'data-id="{c.id}" data-kind="{kind}" data-result="{html.escape(c.result)}"'
        if x1 == x2:
            path = f"M{x1},{y - 6} h40 v12 h-36"
            out.append(f'<g class="msg {cls}" {attrs}><title>{title}</title>'
                       f'<path d="{path}" marker-end="url(#arrow)"/>'
                       f'<text x="{x1 + 46}" y="{y + 4}" class="label" text-anchor="start">'
                       f'{html.escape(label)}</text></g>')
        else:
            tip = x2 + (-6 if x2 > x1 else 6)
            out.append(f'<g class="msg {cls}" {attrs}><title>{title}</title>'
                       f'<line x1="{x1}" y1="{y}" x2="{tip}" y2="{y}" marker-end="url(#arrow)"/>'
                       f'<text x="{(x1 + x2) / 2}" y="{y - 4}" class="label">{html.escape(label)}</text></g>')
        if kind == "end" and c.failed:
            out.append(f'<text class="cross" x="{x1 - 5}" y="{y + 5}">✕</text>')
    style = """
  .life { stroke: #999; stroke-dasharray: 4 4; }
  .head rect { fill: #eef3fb; stroke: #4a6fa5; }
  .pname { font: bold 12px sans-serif; text-anchor: middle; }
  .pid { font: 10px sans-serif; text-anchor: middle; fill: #555; }
  .bar { fill: #d9e6f7; stroke: #4a6fa5; }
  .time { font: 10px monospace; fill: #777; }
  .label { font: 11px sans-serif; text-anchor: middle; fill: #222; }
  .msg line, .msg path { stroke: #1f4e8c; stroke-width: 1.4; fill: none; }
  .msg.reply line, .msg.reply path { stroke: #5c8a3a; stroke-dasharray: 2 2; }
  .msg.oneway line, .msg.oneway path { stroke-dasharray: 7 4; }
  .msg.failed line, .msg.failed path { stroke: #c0262d; stroke-width: 2; }
  .msg.failed .label { fill: #c0262d; font-weight: bold; }
  .cross { fill: #c0262d; font: bold 14px sans-serif; }
"""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" id="diagram"><style>{style}</style>'
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>'
           f'<rect width="100%" height="100%" fill="white"/>{"".join(out)}</svg>')
    head_svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{TOP - 12}" '
                f'viewBox="0 0 {width} {TOP - 12}" id="heads"><style>{style}</style>'
                f'<rect width="100%" height="100%" fill="white"/>{"".join(heads)}</svg>')
    return svg, width, height, head_svg


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>binder calls: {title}</title>
<style>
  body {{ margin: 0; font: 13px sans-serif; }}
  #bar {{ position: sticky; top: 0; background: #f4f4f4; border-bottom: 1px solid #ccc; padding: 6px 10px;
          z-index: 2; }}
  #bar button {{ margin-right: 4px; }}
  #view {{ overflow: auto; height: calc(100vh - 38px); }}
  #sticky {{ position: sticky; top: 0; z-index: 1; line-height: 0; }}
  #canvas {{ line-height: 0; }}
</style></head>
<body>
<div id="bar">
  <button id="zoom-in">+</button><button id="zoom-out">&minus;</button><button id="zoom-fit">fit</button>
  <span id="zoom-level">100%</span> &middot; {summary}
</div>
<div id="view"><div id="sticky">{heads}</div><div id="canvas">{svg}</div></div>
<script>
  const view = document.getElementById('view'), canvas = document.getElementById('canvas');
  const svg = document.getElementById('diagram'), heads = document.getElementById('heads');
  const w = {width}, h = {height};
  let zoom = 1;
  function apply() {{
    svg.setAttribute('width', w * zoom); svg.setAttribute('height', h * zoom);
    heads.setAttribute('width', w * zoom); heads.setAttribute('height', {head_height} * zoom);
    document.getElementById('zoom-level').textContent = Math.round(zoom * 100) + '%';
  }}
  function setZoom(z, cx, cy) {{
    const old = zoom; zoom = Math.min(8, Math.max(0.05, z));
    if (cx !== undefined) {{
      view.scrollLeft = (view.scrollLeft + cx) * zoom / old - cx;
      view.scrollTop = (view.scrollTop + cy) * zoom / old - cy;
    }}
    apply();
  }}
  document.getElementById('zoom-in').onclick = () => setZoom(zoom * 1.25);
  document.getElementById('zoom-out').onclick = () => setZoom(zoom / 1.25);
  document.getElementById('zoom-fit').onclick = () => setZoom(Math.min(view.clientWidth / w, 1));
  view.addEventListener('wheel', e => {{
    if (!e.ctrlKey) return;
    e.preventDefault();
    const r = view.getBoundingClientRect();
    setZoom(zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1), e.clientX - r.left, e.clientY - r.top);
  }}, {{passive: false}});
  const asked = /zoom=([0-9.]+)/.exec(location.hash);
  if (asked) setZoom(parseFloat(asked[1])); else apply();
</script>
</body></html>
"""


def build_html(tracker: CallTracker, title: str) -> str:
    svg, width, height, heads = build_svg(tracker)
    calls = list(tracker.calls.values())
    failed = sum(1 for c in calls if c.failed)
    summary = html.escape(f"{len(calls)} calls, {failed} failed; Ctrl+wheel zooms")
    return PAGE.format(title=html.escape(title), summary=summary, svg=svg, heads=heads, width=width, height=height,
                       head_height=TOP - 12)


def main(file: str, output: str) -> int:
    try:
        text = Path(file).read_text(errors="replace")
    except OSError as e:
        print(f"vbinder trace diagram: {file}: {e.strerror}", file=sys.stderr)
        return 1
    tracker = read_calls(text.splitlines())
    if not tracker.calls:
        print(f"vbinder trace diagram: {file} has no binder transactions", file=sys.stderr)
        return 1
    if output.endswith(".html"):
        Path(output).write_text(build_html(tracker, Path(file).name))
    elif output.endswith(".svg"):
        Path(output).write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + build_svg(tracker)[0])
    else:
        print("vbinder trace diagram: OUT must end in .svg or .html", file=sys.stderr)
        return 2
    print(f"vbinder trace diagram: {len(tracker.calls)} calls drawn in {output}", file=sys.stderr)
    return 0
