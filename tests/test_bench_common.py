"""bench/common.py: ``make bench``'s one table (``Row``, ``print_table``) and
the scale-out bench's CPU reading (``cpu_seconds``)."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from bench.common import Row, cpu_seconds, print_table

# A parent that starts a busy child and waits: the parent spends nothing.
BUSY_GRANDCHILD = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
print(child.pid, flush=True)
child.wait()
"""


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


def test_cpu_seconds_counts_the_process_tree():
    parent = subprocess.Popen(
        [sys.executable, "-c", BUSY_GRANDCHILD], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(parent.stdout.readline())
        start = cpu_seconds([parent.pid])
        # Until the busy child has run a measurable while (however loaded the
        # machine): its time is counted through its parent.
        deadline = time.monotonic() + 60
        while cpu_seconds([child]) < start + 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = cpu_seconds([parent.pid])
        assert tree >= start + 0.2
        assert tree >= cpu_seconds([child])
        assert cpu_seconds([parent.pid]) - cpu_seconds([child]) < 0.2
    finally:
        subprocess.run(["kill", str(child)], check=False)
        parent.wait(timeout=30)
    # A process that has ended counts nothing.
    assert cpu_seconds([parent.pid]) == 0.0
