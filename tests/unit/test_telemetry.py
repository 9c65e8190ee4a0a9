"""ErrorTelemetry on a hand-driven clock: counts, windows, rates, reports, the snapshot and the
memory bounds."""

from __future__ import annotations

import json

import pytest

from hyperhttp.errors.telemetry import ErrorTelemetry
from tests.unit.fakes import FakeClock


class FakeResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def telemetry(clock: FakeClock) -> ErrorTelemetry:
    return ErrorTelemetry(clock=clock)


async def test_unknown_domain(telemetry: ErrorTelemetry) -> None:
    assert await telemetry.get_domain_report("nowhere.example") is None
    assert await telemetry.get_error_rate("nowhere.example") == 0.0
    assert await telemetry.get_all_domains() == []
    stats = await telemetry.get_global_stats()
    assert stats["total_attempts"] == 0
    assert stats["error_rate"] == 0.0


async def test_counts_by_category_retries_and_status(telemetry: ErrorTelemetry) -> None:
    telemetry.record("a.example", "TIMEOUT", retried=True)
    telemetry.record("a.example", "TIMEOUT")
    telemetry.record("a.example", "SERVER", retried=True, status=503)
    telemetry.record_success("a.example")
    report = await telemetry.get_domain_report("a.example")
    assert report is not None
    assert report["domain"] == "a.example"
    assert report["errors_by_category"] == {"TIMEOUT": 2, "SERVER": 1}
    assert report["status_codes"] == {503: 1}
    assert report["retries"] == 2
    assert report["total_errors"] == 3
    assert report["total_successes"] == 1
    assert report["total_attempts"] == 4
    assert report["error_rate"] == 0.75


async def test_replays_are_counted_apart_from_errors(telemetry: ErrorTelemetry) -> None:
    telemetry.record("a.example", "CONNECTION", replay=True)
    telemetry.record("a.example", "CONNECTION", replay=True)
    telemetry.record_success("a.example")
    report = await telemetry.get_domain_report("a.example")
    assert report is not None
    assert report["replays"] == 2
    assert report["total_errors"] == 0
    assert report["errors_by_category"] == {}
    assert await telemetry.get_error_rate("a.example") == 0.0
    assert (await telemetry.get_global_stats())["replays"] == 2


async def test_record_error_is_the_2x_coroutine(telemetry: ErrorTelemetry) -> None:
    await telemetry.record_error("a.example", "CLIENT", FakeResponse(429))
    await telemetry.record_error("a.example", "DNS")
    report = await telemetry.get_domain_report("a.example")
    assert report is not None
    assert report["errors_by_category"] == {"CLIENT": 1, "DNS": 1}
    assert report["status_codes"] == {429: 1}
    assert report["retries"] == 0


async def test_error_rate_is_failures_per_attempt_in_the_window(
    telemetry: ErrorTelemetry, clock: FakeClock
) -> None:
    for _ in range(3):
        telemetry.record("a.example", "SERVER")
    clock.advance(100)
    telemetry.record("a.example", "SERVER")
    for _ in range(3):
        telemetry.record_success("a.example")
    assert await telemetry.get_error_rate("a.example", window_seconds=60) == 0.25
    assert await telemetry.get_error_rate("a.example", window_seconds=300) == pytest.approx(4 / 7)
    clock.advance(120)
    assert await telemetry.get_error_rate("a.example", window_seconds=60) == 0.0


async def test_window_edges_at_one_second_resolution(
    telemetry: ErrorTelemetry, clock: FakeClock
) -> None:
    telemetry.record("a.example", "TIMEOUT")  # at 10000.0
    clock.advance(60.5)
    assert await telemetry.get_error_rate("a.example", 60) == 1.0  # its bucket overlaps
    clock.advance(0.5)
    assert await telemetry.get_error_rate("a.example", 60) == 0.0  # 61 s: out


async def test_error_rate_rejects_a_non_positive_window(telemetry: ErrorTelemetry) -> None:
    with pytest.raises(ValueError):
        await telemetry.get_error_rate("a.example", window_seconds=0)
    with pytest.raises(ValueError):
        await telemetry.get_error_rate("a.example", window_seconds=float("nan"))


async def test_report_windows_60_300_900(telemetry: ErrorTelemetry, clock: FakeClock) -> None:
    telemetry.record("a.example", "TIMEOUT")
    clock.advance(600)
    telemetry.record("a.example", "TIMEOUT")
    telemetry.record_success("a.example")
    clock.advance(200)
    telemetry.record("a.example", "SERVER")
    report = await telemetry.get_domain_report("a.example")
    assert report is not None
    assert report["last_60s"] == {"errors": 1, "successes": 0, "error_rate": 1.0}
    assert report["last_300s"] == {"errors": 2, "successes": 1, "error_rate": pytest.approx(2 / 3)}
    assert report["last_900s"] == {"errors": 3, "successes": 1, "error_rate": 0.75}
    assert report["seconds_since_last_event"] == 0.0
    clock.advance(5)
    report = await telemetry.get_domain_report("a.example")
    assert report is not None
    assert report["seconds_since_last_event"] == 5.0


async def test_old_buckets_leave_windows_but_not_totals(
    telemetry: ErrorTelemetry, clock: FakeClock
) -> None:
    telemetry.record("a.example", "TIMEOUT")
    clock.advance(3600)
    telemetry.record_success("a.example")
    report = await telemetry.get_domain_report("a.example")
    assert report is not None
    assert report["last_900s"]["errors"] == 0
    assert report["total_errors"] == 1
    assert await telemetry.get_error_rate("a.example", window_seconds=86_400) == 0.0


def test_buckets_are_bounded_to_fifteen_minutes(
    telemetry: ErrorTelemetry, clock: FakeClock
) -> None:
    for _ in range(5000):
        for _ in range(20):  # many events in the same second share one bucket
            telemetry.record("a.example", "SERVER")
        telemetry.record_success("a.example")
        clock.advance(1)
    counts = telemetry._domains["a.example"]
    assert len(counts.buckets) <= 902
    assert len(telemetry._global.buckets) <= 902
    assert counts.errors == 100_000


async def test_domains_are_bounded_least_recently_seen_first(clock: FakeClock) -> None:
    telemetry = ErrorTelemetry(clock=clock, max_domains=3)
    telemetry.record("a.example", "TIMEOUT")
    telemetry.record("b.example", "TIMEOUT")
    telemetry.record("c.example", "TIMEOUT")
    telemetry.record_success("a.example")  # a is now the most recently seen
    telemetry.record("d.example", "TIMEOUT")
    assert await telemetry.get_all_domains() == ["a.example", "c.example", "d.example"]
    assert await telemetry.get_domain_report("b.example") is None
    stats = await telemetry.get_global_stats()
    assert stats["domains"] == 3
    assert stats["domains_dropped"] == 1
    assert stats["total_errors"] == 4  # the dropped domain's error still counts globally


def test_max_domains_is_validated() -> None:
    with pytest.raises(ValueError):
        ErrorTelemetry(max_domains=0)


async def test_global_stats(telemetry: ErrorTelemetry) -> None:
    for _ in range(3):
        telemetry.record("bad.example", "CONNECTION", retried=True)
    telemetry.record("meh.example", "SERVER", status=500)
    telemetry.record_success("meh.example")
    telemetry.record_success("good.example")
    stats = await telemetry.get_global_stats()
    assert stats["total_errors"] == 4
    assert stats["total_successes"] == 2
    assert stats["error_rate"] == pytest.approx(4 / 6)
    assert stats["retries"] == 3
    assert stats["errors_by_category"] == {"CONNECTION": 3, "SERVER": 1}
    assert stats["status_codes"] == {500: 1}
    assert stats["last_60s"]["errors"] == 4
    assert stats["domains"] == 3
    assert stats["top_error_domains"] == [["bad.example", 3], ["meh.example", 1]]


async def test_snapshot_is_a_json_copy_of_everything(
    telemetry: ErrorTelemetry, clock: FakeClock
) -> None:
    telemetry.record("a.example", "SERVER", status=502, retried=True)
    telemetry.record_success("b.example")
    snapshot = telemetry.snapshot()
    decoded = json.loads(json.dumps(snapshot))
    assert set(decoded["domains"]) == {"a.example", "b.example"}
    assert decoded["domains"]["a.example"]["errors_by_category"] == {"SERVER": 1}
    assert decoded["domains"]["a.example"]["status_codes"] == {"502": 1}
    assert decoded["global"]["total_attempts"] == 2
    assert snapshot["domains"]["a.example"] == await telemetry.get_domain_report("a.example")
    snapshot["domains"]["a.example"]["errors_by_category"]["SERVER"] = 99  # a copy
    report = await telemetry.get_domain_report("a.example")
    assert report is not None
    assert report["errors_by_category"] == {"SERVER": 1}
