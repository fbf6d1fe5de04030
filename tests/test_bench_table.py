"""``make bench``'s one table (bench/common.py ``Row``, ``print_table``)."""

from __future__ import annotations

import io

from bench.common import Row, print_table


def test_the_ratio_is_figure_over_ceiling_or_the_judged_one():
    rate = Row("lines", "POST", 80.0, "rows/s", ">= 60 %", True, ceiling=100.0)
    time = Row("scale", "p99", 40.0, "ms", "< 50 ms", True, ceiling=2.0)
    time.lower_is_better = True
    judged = Row("lines", "POST", 58.0, "rows/s", ">= 60 %", True, ceiling=100.0)
    judged.judged_ratio = 0.61
    assert rate.ratio == 0.8
    assert time.ratio == 0.05
    assert judged.ratio == 0.61
    out = io.StringIO()
    print_table([rate, judged], out=out)
    lines = out.getvalue().splitlines()
    assert "80%" in lines[2]
    assert "pass" in lines[2]
    # The judged row shows the ratio its pass rests on, not 58 %.
    assert "61%" in lines[3]
    assert "58%" not in lines[3]
