"""The list-load bench's reading of wrk's report (bench/listload.py,
docs/performance.md "The 50-row list pages at 32 connections"): req/s, the
percentiles in their units, and the failures it must not pass over."""

import pytest

from bench.listload import parse_wrk

# wrk ends each percentile's line with a space ({t})
REPORT = """Running 5s test @ http://127.0.0.1:33921/api/passports
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    66.38ms   14.24ms   1.30s    76.83%
    Req/Sec   240.46     11.74   300.00     71.43%
  Latency Distribution
     50%  {p50}{t}
     75%   70.19ms{t}
     90%   80.23ms{t}
     99%  {p99}{t}
  2412 requests in 5.08s, 1.36MB read
{extra}Requests/sec:    474.80
Transfer/sec:    454.23KB
"""


@pytest.mark.parametrize(
    ("p50", "p99", "expected"),
    [
        ("850.00us", "61.20ms", (0.85, 61.2)),
        ("62.50ms", "1.30s", (62.5, 1300.0)),
    ],
)
def test_percentiles_in_milliseconds_whatever_the_unit(p50, p99, expected):
    found = parse_wrk(REPORT.format(p50=p50, p99=p99, extra="", t=" "))
    assert (found["p50"], found["p99"]) == pytest.approx(expected)
    assert found["rps"] == 474.8
    assert found["requests"] == 2412
    assert found["failed"] == 0
    assert found["socket_errors"] == 0


def test_error_answers_and_socket_errors_are_counted():
    extra = (
        "  Socket errors: connect 0, read 3, write 0, timeout 2\n"
        "  Non-2xx or 3xx responses: 17\n"
    )
    found = parse_wrk(REPORT.format(p50="62.50ms", p99="99.00ms", extra=extra, t=" "))
    assert found["failed"] == 17
    assert found["socket_errors"] == 5


def test_a_50_row_page_is_judged_by_the_goal_and_the_dispatch_list_is_measured():
    from bench.listload import DISPATCH_PATH, _row

    found = {"workers": 4, "client": "wrk"}
    page = {"rps": 520.0, "p50": 60.0, "p99": 90.0, "failed": 0, "rows": 50}
    assert _row(found, "work orders", "/api/workorders/", page, 800.0).passed
    slow = {**page, "p99": 101.0}
    assert not _row(found, "work orders", "/api/workorders/", slow, 800.0).passed
    few = {**page, "rps": 499.0}
    assert not _row(found, "work orders", "/api/workorders/", few, 800.0).passed
    failing = {**page, "failed": 3}
    assert not _row(found, "work orders", "/api/workorders/", failing, 800.0).passed

    desk = {"rps": 190.0, "p50": 160.0, "p99": 210.0, "failed": 0, "rows": 244}
    row = _row(found, "dispatch list", DISPATCH_PATH, desk, 800.0)
    assert row.passed
    assert row.goal == "(measured: not a 50-row page)"
    assert "244 rows" in row.path
    assert not _row(found, "dispatch list", DISPATCH_PATH, failing, 800.0).passed
