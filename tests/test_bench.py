"""The benchmark harness's own logic: where a report goes, how aggregate rounds combine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import SECTIONS, parser, report_path
from bench.run import combine_rounds


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
