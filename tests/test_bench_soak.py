"""The soak's verdicts (bench/soak.py, docs/performance.md "Soak"): what counts
as a lost event and as memory still growing. The soak itself runs minutes
against real servers; these are its pass/fail rules, checked on plain data."""

from bench.soak import MIN_TAIL_SAMPLES, WsClient, memory_verdict, slope_mb_per_min


def curve(values, every=30.0):
    return [(i * every, v) for i, v in enumerate(values)]


def test_a_warm_up_then_a_plateau_is_flat():
    # 40 samples (20 minutes): it grows by 30 MB in the first third, then stays.
    values = [150 + min(i, 13) * 2.3 for i in range(40)]
    slope, verdict = memory_verdict(curve(values))
    assert verdict == "flat"
    assert abs(slope) < 1e-9


def test_a_steady_leak_is_growing():
    # 2 MB a minute for 20 minutes: 13 MB over the last third of a ~240 MB
    # process, more than the 3 % (about 7 MB) allowed.
    values = [180 + i * 1.0 for i in range(40)]
    slope, verdict = memory_verdict(curve(values))
    assert round(slope, 6) == 2.0
    assert verdict == "GROWING"


def test_jitter_around_a_level_is_flat():
    values = [200 + (1.5 if i % 2 else -1.5) for i in range(40)]
    assert memory_verdict(curve(values))[1] == "flat"


def test_a_run_too_short_is_not_judged():
    values = [100 + i * 10 for i in range(3 * MIN_TAIL_SAMPLES - 4)]
    assert memory_verdict(curve(values))[1] == "too short"


def test_slope_is_in_mb_a_minute():
    assert slope_mb_per_min([(0, 10.0), (60, 12.0), (120, 14.0)]) == 2.0


def test_lost_events_are_the_outbox_ids_of_the_clients_topics_not_received():
    by_topic = {"lines": {5, 7, 9}, "alerts": {7, 11}, "dispatch": {8}}
    client = WsClient("operator", ["lines", "alerts"], received={11, 9, 7})
    assert client.expected(by_topic) == {5, 7, 9, 11}
    assert client.lost(by_topic) == {5}
    # An event on a topic it did not follow is neither expected nor lost.
    client.received.add(8)
    assert client.lost(by_topic) == {5}
    client.received.add(5)
    assert client.lost(by_topic) == set()


def test_a_topic_with_no_events_expects_none():
    client = WsClient("auditor", ["audit"])
    assert client.expected({"lines": {1}}) == set()
