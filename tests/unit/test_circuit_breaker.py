"""Circuit breakers on a hand-driven clock: every transition, the half-open probe limit, and the
per-domain manager (isolation, configuration, stats, the transition listener, the bound)."""

from __future__ import annotations

import pytest

import hyperhttp
from hyperhttp.errors.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerState,
    DomainCircuitBreakerManager,
)
from hyperhttp.exceptions import CircuitBreakerOpen
from tests.unit.fakes import FakeClock

CLOSED = CircuitBreakerState.CLOSED
OPEN = CircuitBreakerState.OPEN
HALF_OPEN = CircuitBreakerState.HALF_OPEN


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def tripped(clock: FakeClock, **config: object) -> CircuitBreaker:
    """A breaker opened by its threshold of CONNECTION failures."""
    breaker = CircuitBreaker(clock=clock, **config)  # type: ignore[arg-type]
    for _ in range(breaker.failure_threshold):
        breaker.record_failure("CONNECTION")
    assert breaker.state is OPEN
    return breaker


def refused(breaker: CircuitBreaker, host: str = "example.com") -> CircuitBreakerOpen:
    with pytest.raises(CircuitBreakerOpen) as info:
        breaker.check(host)
    return info.value


# -- the state enum and defaults ---------------------------------------------------------------


def test_state_values_are_the_2x_strings() -> None:
    assert [s.value for s in CircuitBreakerState] == ["closed", "open", "half-open"]
    assert CircuitBreakerState("half-open") is HALF_OPEN


def test_defaults_track_connection_failures_too() -> None:
    breaker = CircuitBreaker()
    assert breaker.failure_threshold == 5
    assert breaker.recovery_timeout == 30.0
    assert breaker.success_threshold == 2
    assert breaker.tracked_categories == {"CONNECTION", "TIMEOUT", "SERVER", "TRANSIENT"}
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0


def test_refusal_is_a_hyperhttp_error(clock: FakeClock) -> None:
    error = refused(tripped(clock))
    assert isinstance(error, hyperhttp.HyperHTTPError)
    assert isinstance(error, hyperhttp.exceptions.CircuitBreakerOpen)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"failure_threshold": 2.5},
        {"failure_threshold": True},
        {"success_threshold": 0},
        {"recovery_timeout": 0},
        {"recovery_timeout": -1.0},
        {"recovery_timeout": float("inf")},
        {"recovery_timeout": float("nan")},
        {"recovery_timeout": "30"},
        {"tracked_categories": ["SERVER", "BOGUS"]},
        {"tracked_categories": "SERVER"},
    ],
)
def test_invalid_arguments_raise_value_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


# -- closed ------------------------------------------------------------------------------------


def test_closed_admits_requests(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock=clock)
    for _ in range(100):
        breaker.check("example.com")
    assert breaker.state is CLOSED
    assert breaker.stats()["rejected_count"] == 0


def test_opens_after_threshold_consecutive_tracked_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    breaker.record_failure("TIMEOUT")
    breaker.record_failure("SERVER")
    assert breaker.state is CLOSED
    assert breaker.failure_count == 2
    breaker.record_failure("CONNECTION")
    assert breaker.state is OPEN
    assert breaker.failure_count == 3
    assert breaker.stats()["opened_count"] == 1


@pytest.mark.parametrize("category", ["CLIENT", "DNS", "TLS", "PROTOCOL", "FATAL"])
def test_untracked_failures_neither_count_nor_reset(clock: FakeClock, category: str) -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)
    breaker.record_failure("SERVER")
    for _ in range(10):
        breaker.record_failure(category)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 1  # not reset by the untracked ones
    breaker.record_failure("SERVER")
    assert breaker.state is OPEN
    assert breaker.stats()["untracked_failures"] == 10


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    for _ in range(5):
        breaker.record_failure("TIMEOUT")
        breaker.record_failure("TIMEOUT")
        breaker.record_success()
        assert breaker.failure_count == 0
    assert breaker.state is CLOSED
    assert breaker.stats()["total_failures"] == 10


def test_custom_tracked_categories_restore_2x_behaviour(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, tracked_categories=["SERVER", "TIMEOUT", "TRANSIENT"], clock=clock
    )
    breaker.record_failure("CONNECTION")
    assert breaker.state is CLOSED
    breaker.record_failure("SERVER")
    assert breaker.state is OPEN


def test_empty_tracked_categories_never_open(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, tracked_categories=(), clock=clock)
    for category in ("CONNECTION", "SERVER", "TIMEOUT"):
        breaker.record_failure(category)
    assert breaker.state is CLOSED


# -- open --------------------------------------------------------------------------------------


def test_open_refuses_with_the_remaining_seconds(clock: FakeClock) -> None:
    breaker = tripped(clock, recovery_timeout=30.0)
    error = refused(breaker, "api.example.com")
    assert error.host == "api.example.com"
    assert error.remaining == pytest.approx(30.0)
    clock.advance(12.5)
    assert refused(breaker).remaining == pytest.approx(17.5)
    assert breaker.stats()["remaining"] == pytest.approx(17.5)
    assert breaker.stats()["rejected_count"] == 2
    assert "17.5s" in str(refused(breaker))


def test_results_of_requests_admitted_before_opening_change_nothing(clock: FakeClock) -> None:
    breaker = tripped(clock, recovery_timeout=30.0)
    clock.advance(10)
    breaker.record_failure("SERVER")  # does not extend the timeout
    breaker.record_success()  # does not close it
    assert breaker.state is OPEN
    assert refused(breaker).remaining == pytest.approx(20.0)
    assert breaker.stats()["opened_count"] == 1


# -- half-open ---------------------------------------------------------------------------------


def test_half_open_once_recovery_timeout_has_passed(clock: FakeClock) -> None:
    breaker = tripped(clock, recovery_timeout=30.0)
    clock.advance(29.999)
    assert breaker.state is OPEN
    clock.advance(0.001)
    assert breaker.state is HALF_OPEN
    assert breaker.stats()["state"] == "half-open"
    assert breaker.stats()["remaining"] == 0.0
    breaker.check("example.com")  # the first probe is admitted
    assert breaker.stats()["probes_in_flight"] == 1


def test_half_open_admits_success_threshold_probes_at_once(clock: FakeClock) -> None:
    breaker = tripped(clock, success_threshold=3, recovery_timeout=5.0)
    clock.advance(5)
    for _ in range(3):
        breaker.check("example.com")
    error = refused(breaker)
    assert error.remaining == 0.0
    assert breaker.stats()["probes_in_flight"] == 3
    assert breaker.state is HALF_OPEN


def test_released_probe_frees_its_slot(clock: FakeClock) -> None:
    breaker = tripped(clock, success_threshold=1, recovery_timeout=5.0)
    clock.advance(5)
    breaker.check("example.com")
    refused(breaker)
    breaker.release()  # cancelled: no verdict
    assert breaker.state is HALF_OPEN
    breaker.check("example.com")
    assert breaker.stats()["probes_in_flight"] == 1


def test_untracked_failure_of_a_probe_frees_its_slot_without_a_verdict(clock: FakeClock) -> None:
    breaker = tripped(clock, success_threshold=1, recovery_timeout=5.0)
    clock.advance(5)
    breaker.check("example.com")
    breaker.record_failure("CLIENT")
    assert breaker.state is HALF_OPEN
    breaker.check("example.com")  # admitted again


def test_release_outside_half_open_changes_nothing(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock=clock)
    breaker.release()
    assert breaker.state is CLOSED
    assert breaker.stats()["probes_in_flight"] == 0


def test_failing_probe_reopens_with_a_fresh_timeout(clock: FakeClock) -> None:
    breaker = tripped(clock, recovery_timeout=30.0)
    clock.advance(45)
    breaker.check("example.com")
    breaker.record_failure("TIMEOUT")
    assert breaker.state is OPEN
    assert refused(breaker).remaining == pytest.approx(30.0)
    assert breaker.stats()["opened_count"] == 2
    clock.advance(30)
    assert breaker.state is HALF_OPEN


def test_failing_probe_refuses_the_other_probes_results(clock: FakeClock) -> None:
    breaker = tripped(clock, success_threshold=2, recovery_timeout=10.0)
    clock.advance(10)
    breaker.check("example.com")
    breaker.check("example.com")
    breaker.record_failure("SERVER")
    breaker.record_success()  # the other probe, late: the breaker stays open
    assert breaker.state is OPEN
    assert breaker.stats()["probes_in_flight"] == 0


def test_success_threshold_successes_close_it(clock: FakeClock) -> None:
    breaker = tripped(clock, success_threshold=2, recovery_timeout=10.0)
    clock.advance(10)
    breaker.check("example.com")
    breaker.check("example.com")
    breaker.record_success()
    assert breaker.state is HALF_OPEN
    assert breaker.stats()["success_count"] == 1
    breaker.record_success()
    assert breaker.state is CLOSED
    stats = breaker.stats()
    assert (stats["failure_count"], stats["success_count"], stats["probes_in_flight"]) == (0, 0, 0)
    breaker.check("example.com")  # closed: no limit
    breaker.check("example.com")
    breaker.check("example.com")


def test_closed_again_needs_the_full_threshold_to_reopen(clock: FakeClock) -> None:
    breaker = tripped(clock, failure_threshold=2, success_threshold=1, recovery_timeout=1.0)
    clock.advance(1)
    breaker.check("example.com")
    breaker.record_success()
    breaker.record_failure("SERVER")
    assert breaker.state is CLOSED
    breaker.record_failure("SERVER")
    assert breaker.state is OPEN


def test_stats_totals(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)
    breaker.record_success()
    breaker.record_failure("SERVER")
    breaker.record_failure("CLIENT")
    breaker.record_failure("SERVER")
    stats = breaker.stats()
    assert stats["state"] == "open"
    assert stats["total_successes"] == 1
    assert stats["total_failures"] == 2
    assert stats["untracked_failures"] == 1
    assert stats["opened_count"] == 1
    assert stats["remaining"] == pytest.approx(30.0)


def test_breaker_listener_sees_every_transition_and_may_raise(clock: FakeClock) -> None:
    seen: list[tuple[CircuitBreakerState, CircuitBreakerState]] = []

    def listener(old: CircuitBreakerState, new: CircuitBreakerState) -> None:
        seen.append((old, new))
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker(
        failure_threshold=1,
        success_threshold=1,
        recovery_timeout=1.0,
        clock=clock,
        on_transition=listener,
    )
    breaker.record_failure("SERVER")
    clock.advance(1)
    breaker.check("example.com")
    breaker.record_failure("SERVER")
    clock.advance(1)
    breaker.check("example.com")
    breaker.record_success()
    assert seen == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    assert breaker.state is CLOSED


# -- the manager -------------------------------------------------------------------------------


def test_manager_gives_each_domain_its_own_breaker(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager({"failure_threshold": 1}, clock=clock)
    a = manager.get_circuit_breaker("a.example")
    b = manager.get_circuit_breaker("b.example")
    assert a is not b
    assert manager.get_circuit_breaker("a.example") is a
    a.record_failure("CONNECTION")
    refused(a, "a.example")
    b.check("b.example")
    assert b.state is CLOSED


def test_manager_default_config_merges_over_the_defaults(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager({"recovery_timeout": 5.0}, clock=clock)
    assert manager.default_config == {
        "failure_threshold": 5,
        "recovery_timeout": 5.0,
        "success_threshold": 2,
    }
    breaker = manager.get_circuit_breaker("example.com")
    assert (breaker.failure_threshold, breaker.recovery_timeout, breaker.success_threshold) == (
        5,
        5.0,
        2,
    )


def test_manager_breakers_use_its_clock(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager(
        {"failure_threshold": 1, "recovery_timeout": 10.0}, clock=clock
    )
    breaker = manager.get_circuit_breaker("example.com")
    breaker.record_failure("TIMEOUT")
    clock.advance(4)
    assert refused(breaker).remaining == pytest.approx(6.0)


def test_configure_domain_applies_to_new_and_replaces_existing_breakers(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager(clock=clock)
    manager.configure_domain("fresh.example", failure_threshold=1)
    assert manager.get_circuit_breaker("fresh.example").failure_threshold == 1
    assert manager.get_circuit_breaker("fresh.example").recovery_timeout == 30.0  # merged

    old = manager.get_circuit_breaker("busy.example")
    for _ in range(5):
        old.record_failure("SERVER")
    assert old.state is OPEN
    manager.configure_domain("busy.example", failure_threshold=2, recovery_timeout=1.0)
    new = manager.get_circuit_breaker("busy.example")
    assert new is not old
    assert new.state is CLOSED
    assert (new.failure_threshold, new.recovery_timeout) == (2, 1.0)
    assert manager.get_circuit_breaker("other.example").failure_threshold == 5


@pytest.mark.parametrize(
    "config", [{"failure_treshold": 3}, {"failure_threshold": 0}, {"recovery_timeout": -1}]
)
def test_manager_rejects_bad_configuration(config: dict[str, object], clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        DomainCircuitBreakerManager(config)
    manager = DomainCircuitBreakerManager(clock=clock)
    with pytest.raises(ValueError):
        manager.configure_domain("example.com", **config)
    assert "example.com" not in manager


def test_manager_stats_per_domain(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager({"failure_threshold": 1}, clock=clock)
    manager.get_circuit_breaker("up.example").record_success()
    manager.get_circuit_breaker("down.example").record_failure("CONNECTION")
    stats = manager.get_stats()
    assert set(stats) == {"up.example", "down.example"}
    assert stats["up.example"]["state"] == "closed"
    assert stats["up.example"]["total_successes"] == 1
    assert stats["down.example"]["state"] == "open"
    assert stats["down.example"]["remaining"] == pytest.approx(30.0)


def test_manager_listener_gets_host_old_new(clock: FakeClock) -> None:
    seen: list[tuple[str, CircuitBreakerState, CircuitBreakerState]] = []
    manager = DomainCircuitBreakerManager(
        {"failure_threshold": 1, "success_threshold": 1, "recovery_timeout": 2.0},
        clock=clock,
        on_transition=lambda host, old, new: seen.append((host, old, new)),
    )
    breaker = manager.get_circuit_breaker("a.example")
    manager.get_circuit_breaker("b.example").record_success()
    breaker.record_failure("SERVER")
    clock.advance(2)
    breaker.check("a.example")
    breaker.record_success()
    assert seen == [
        ("a.example", CLOSED, OPEN),
        ("a.example", OPEN, HALF_OPEN),
        ("a.example", HALF_OPEN, CLOSED),
    ]


def test_manager_listener_raising_never_breaks_the_request(clock: FakeClock) -> None:
    calls: list[str] = []

    def listener(host: str, old: CircuitBreakerState, new: CircuitBreakerState) -> None:
        calls.append(host)
        raise ValueError("broken logging")

    manager = DomainCircuitBreakerManager(
        {"failure_threshold": 1, "recovery_timeout": 1.0}, clock=clock, on_transition=listener
    )
    breaker = manager.get_circuit_breaker("example.com")
    breaker.record_failure("TIMEOUT")  # no exception escapes
    assert breaker.state is OPEN
    clock.advance(1)
    breaker.check("example.com")  # the probe is still admitted
    assert calls == ["example.com", "example.com"]


def test_manager_prunes_idle_closed_breakers_past_its_bound(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager({"failure_threshold": 1}, clock=clock, max_breakers=100)
    down = manager.get_circuit_breaker("down.example")
    down.record_failure("CONNECTION")
    for i in range(1000):
        manager.get_circuit_breaker(f"host{i}.example").record_success()
        assert len(manager) <= 100
    assert manager.get_circuit_breaker("down.example") is down  # open: kept
    assert down.state is OPEN


def test_manager_prunes_breakers_without_a_verdict_when_idle_ones_are_not_enough(
    clock: FakeClock,
) -> None:
    manager = DomainCircuitBreakerManager({"failure_threshold": 3}, clock=clock, max_breakers=50)
    for i in range(500):
        manager.get_circuit_breaker(f"flaky{i}.example").record_failure("TIMEOUT")
        assert len(manager) <= 50


def test_manager_keeps_refusing_breakers_past_its_bound(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager({"failure_threshold": 1}, clock=clock, max_breakers=10)
    for i in range(30):
        manager.get_circuit_breaker(f"down{i}.example").record_failure("CONNECTION")
    assert len(manager) == 30
    assert all(s["state"] == "open" for s in manager.get_stats().values())
    clock.advance(30)  # all recovery timeouts pass: none holds a verdict any more
    sizes = []
    for i in range(20):
        manager.get_circuit_breaker(f"new{i}.example")
        sizes.append(len(manager))
    # The next scan (amortised: once the table has doubled) drops them all.
    assert max(sizes) <= 40
    assert len(manager) <= 10
    assert not any(domain.startswith("down") for domain in manager.get_stats())
    assert "new19.example" in manager


def test_manager_pruned_domain_gets_its_configuration_back(clock: FakeClock) -> None:
    manager = DomainCircuitBreakerManager(clock=clock, max_breakers=5)
    manager.configure_domain("special.example", failure_threshold=9)
    for i in range(20):
        manager.get_circuit_breaker(f"host{i}.example")
    assert "special.example" not in manager
    assert manager.get_circuit_breaker("special.example").failure_threshold == 9


def test_manager_rejects_bad_bound() -> None:
    with pytest.raises(ValueError):
        DomainCircuitBreakerManager(max_breakers=0)
