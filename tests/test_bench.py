"""The benchmark harness's own logic: where a report goes, how aggregate rounds combine, the bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import SECTIONS, parser, report_path
from bench.report import bound
from bench.run import Results, combine_rounds


@pytest.mark.parametrize(("argv", "quick", "interrupted", "expected"), [
    ([], False, False, "results.md"),  # a full run of every section replaces bench/results.md
    (["--only", "aggregate"], False, False, None),  # a partial run would blank the other sections
    (["--only", ",".join(sorted(SECTIONS))], False, False, "results.md"),
    ([], True, False, None),  # --quick
    ([], False, True, None),  # interrupted
    (["--only", "aggregate", "-o", "x.md"], False, False, "x.md"),
    (["--quick", "-o", "x.md"], True, False, "x.md"),
])
def test_report_path(argv: list[str], quick: bool, interrupted: bool, expected: str | None) -> None:
    out = report_path(parser().parse_args(argv), quick, interrupted)
    if expected == "results.md":
        assert out is not None and Path(out) == Path(__file__).parent.parent / "bench" / "results.md"
    else:
        assert out == expected


def test_combine_rounds_takes_medians_of_rates_and_pools_latencies() -> None:
    rounds = [([1000, 3000], 10.0, 5.0), ([2000], 30.0, 7.0), ([4000, 5000], 20.0, 6.0)]
    stats = combine_rounds(rounds)
    assert stats["cps"] == 20.0  # the median round, not the mean (20.0 too) nor the sum
    assert stats["cpu_us"] == 6.0
    assert stats["count"] == 5
    assert stats["p50"] == 3.0  # µs, over all five calls
    assert stats["p99"] == 5.0
    one_slow = [([1000], 1000.0, 100.0), ([1000], 4000.0, 200.0), ([1000], 4100.0, 210.0)]
    assert combine_rounds(one_slow)["cps"] == 4000.0  # one slow window does not drag the point


def _results(p50: dict[str, float]) -> Results:
    r = Results()
    for key, v in p50.items():
        r.rtt[key] = {0: {"p50": v, "cpu_us": v}}
    return r


def test_bound_leaves_room_between_the_four_request_floor_and_each_target() -> None:
    text = "\n".join(bound(_results({"floor": 100.0, "floor5": 120.0, "floor2": 60.0, "dbus": 250.0,
                                     "vbinder": 130.0, "vbinder_v1": 150.0})))
    assert "as many as the floor's round trip, 100 µs" in text
    assert "adds 30.0 µs" in text
    assert "(25.0 µs per request of pyfuse3 + trio alone), so 30.0 µs of it is vbinder's own" in text
    assert "the chained wait saves 20.0 µs per call and 20.0 µs of the daemon's CPU" in text
    assert "the floor takes 60.0 µs, 0.60 × the four-request floor" in text
    assert "1.4 × the floor = 140 µs leaves 40.0 µs per call for that work (0.75 × what it takes now)" in text
    assert "0.6 × D-Bus = 150 µs leaves 50.0 µs" in text


def test_bound_says_when_a_target_is_below_the_four_request_floor() -> None:
    text = "\n".join(bound(_results({"floor": 100.0, "dbus": 160.0, "vbinder": 200.0})))
    assert "0.6 × D-Bus = 96.0 µs is below the four-request floor itself" in text
    assert "1.4 × the floor = 140 µs leaves 40.0 µs" in text
    assert bound(_results({"floor": 100.0})) == ["not measured (needs the floor and vbinder)"]
