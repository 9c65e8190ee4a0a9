"""The load generator's bookkeeping: histograms merged exactly, plans shared out exactly."""

from __future__ import annotations

import random

import pytest

from hyperhttp.cli.engine import Plan, Result, new_histogram
from hyperhttp.cli.report import PERCENTILES, summary
from hyperhttp.cli.workers import split


def test_histograms_merged_from_two_workers_equal_one_histogram_of_the_same_samples() -> None:
    rng = random.Random(7)
    samples = [int(rng.lognormvariate(6, 1.5)) + 1 for _ in range(20_000)]  # µs, long tail
    one = new_histogram()
    halves = (Result(), Result())
    for index, value in enumerate(samples):
        one.record_value(value)
        halves[index % 2].latency.record_value(value)
        halves[index % 2].status[200] += 1
    wired = [Result.from_wire(half.to_wire()) for half in halves]  # as workers send them
    merged = Result.merge(wired)
    assert merged.latency.get_total_count() == one.get_total_count() == 20_000
    for _, percentile in PERCENTILES:
        assert merged.latency.get_value_at_percentile(percentile) == one.get_value_at_percentile(
            percentile
        )
    assert merged.latency.get_max_value() == one.get_max_value()
    assert merged.latency.get_min_value() == one.get_min_value()
    assert merged.latency.get_mean_value() == pytest.approx(one.get_mean_value())
    assert merged.requests == 20_000


def test_merge_sums_counts_and_takes_the_longest_elapsed_time() -> None:
    a, b = Result(elapsed=2.0, rate=100.0, bytes=10), Result(elapsed=2.5, rate=100.0, bytes=5)
    a.status[200], b.status[200], b.status[503] = 3, 4, 1
    a.errors["ReadError"] = 2
    merged = Result.merge([a, b])
    assert (merged.requests, merged.bytes, merged.elapsed, merged.rate) == (10, 15, 2.5, 200.0)
    assert merged.status == {200: 7, 503: 1} and merged.errors == {"ReadError": 2}
    assert summary(merged)["rps"] == 10 / 2.5


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_a_plan_is_shared_out_exactly(workers: int) -> None:
    plan = Plan("http://x/", connections=10, requests=101, rate=300.0)
    shares = split(plan, workers)
    assert len(shares) == min(workers, 10)
    assert sum(s.connections for s in shares) == 10
    assert sum(s.requests or 0 for s in shares) == 101
    assert sum(s.rate or 0 for s in shares) == pytest.approx(300.0)
    # Worker k's schedule is shifted by k slots, so together they keep the one schedule.
    assert [s.offset for s in shares] == pytest.approx([k / 300.0 for k in range(len(shares))])
    due = sorted(s.offset + i / s.rate for s in shares for i in range(5) if s.rate)
    assert due == pytest.approx([i / 300.0 for i in range(5 * len(shares))])


def test_more_workers_than_connections_or_requests_are_not_started() -> None:
    assert len(split(Plan("http://x/", connections=2), 8)) == 2
    shares = split(Plan("http://x/", connections=8, requests=3), 8)
    assert [s.requests for s in shares] == [1, 1, 1]
