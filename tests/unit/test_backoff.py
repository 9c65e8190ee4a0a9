"""Backoff strategies: bounds over many seeds, growth, adaptation and argument checks; pure logic."""

from __future__ import annotations

import math
import os
import random
import sys
from typing import Callable

import pytest

from hyperhttp.utils.backoff import (
    AdaptiveBackoff,
    BackoffStrategy,
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
)

SEEDS = range(200)
RETRY_COUNTS = range(31)

# -- ExponentialBackoff -------------------------------------------------------------------------


def test_exponential_without_jitter_is_base_times_factor_to_the_n_until_the_cap() -> None:
    backoff = ExponentialBackoff(base=0.5, factor=2.0, max_backoff=60.0, jitter=False)
    delays = [backoff.calculate_backoff(n) for n in RETRY_COUNTS]
    for n, delay in enumerate(delays):
        assert delay == min(0.5 * 2.0**n, 60.0)
    assert delays[:8] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert delays[7:] == [60.0] * (len(delays) - 7)


@pytest.mark.parametrize(("base", "factor", "cap"), [(0.1, 3.0, 10.0), (1.0, 1.5, 7.0), (2, 1, 2)])
def test_exponential_without_jitter_other_parameters(
    base: float, factor: float, cap: float
) -> None:
    backoff = ExponentialBackoff(base=base, factor=factor, max_backoff=cap, jitter=False)
    for n in RETRY_COUNTS:
        assert backoff.calculate_backoff(n) == min(base * factor**n, cap)


def test_exponential_full_jitter_stays_in_zero_to_the_capped_delay() -> None:
    for seed in SEEDS:
        backoff = ExponentialBackoff(
            base=0.5, factor=2.0, max_backoff=20.0, rng=random.Random(seed)
        )
        for n in RETRY_COUNTS:
            delay = backoff.calculate_backoff(n)
            assert 0.0 <= delay < min(0.5 * 2.0**n, 20.0)


def test_exponential_full_jitter_is_the_capped_delay_times_the_rng_draw() -> None:
    backoff = ExponentialBackoff(base=0.5, max_backoff=20.0, rng=random.Random(7))
    reference = random.Random(7)
    for n in RETRY_COUNTS:
        assert backoff.calculate_backoff(n) == min(0.5 * 2.0**n, 20.0) * reference.random()


def test_exponential_full_jitter_spreads_over_the_whole_range() -> None:
    backoff = ExponentialBackoff(base=1.0, max_backoff=60.0, rng=random.Random(1))
    draws = [backoff.calculate_backoff(10) for _ in range(2000)]  # capped: uniform on [0, 60)
    assert min(draws) < 3.0 and max(draws) > 57.0
    assert 27.0 < sum(draws) / len(draws) < 33.0


def test_exponential_huge_retry_counts_do_not_overflow() -> None:
    assert ExponentialBackoff(jitter=False).calculate_backoff(5000) == 60.0
    assert ExponentialBackoff(base=0.0, jitter=False).calculate_backoff(5000) == 0.0
    assert 0.0 <= ExponentialBackoff(rng=random.Random(3)).calculate_backoff(10**6) < 60.0


def test_same_seed_gives_the_same_delays() -> None:
    first = ExponentialBackoff(rng=random.Random(42))
    second = ExponentialBackoff(rng=random.Random(42))
    other = ExponentialBackoff(rng=random.Random(43))
    a = [first.calculate_backoff(n) for n in range(10)]
    assert a == [second.calculate_backoff(n) for n in range(10)]
    assert a != [other.calculate_backoff(n) for n in range(10)]


# -- DecorrelatedJitterBackoff ------------------------------------------------------------------


@pytest.mark.parametrize(("base", "cap"), [(0.5, 60.0), (0.01, 1.0), (2.0, 2.0), (1.0, 5.0)])
def test_decorrelated_stays_between_base_and_three_times_the_previous_delay(
    base: float, cap: float
) -> None:
    for seed in SEEDS:
        backoff = DecorrelatedJitterBackoff(base=base, max_backoff=cap, rng=random.Random(seed))
        previous = base
        for n in RETRY_COUNTS:
            delay = backoff.calculate_backoff(n)
            assert base <= delay <= min(cap, 3 * previous)
            previous = delay


def test_decorrelated_is_the_aws_formula() -> None:
    backoff = DecorrelatedJitterBackoff(base=0.5, max_backoff=10.0, rng=random.Random(5))
    reference = random.Random(5)
    sleep = 0.5
    for n in RETRY_COUNTS:
        sleep = min(10.0, reference.uniform(0.5, sleep * 3))
        assert backoff.calculate_backoff(n) == sleep


def test_decorrelated_reaches_the_cap_and_retry_zero_starts_over() -> None:
    backoff = DecorrelatedJitterBackoff(base=0.5, max_backoff=5.0, rng=random.Random(11))
    delays = [backoff.calculate_backoff(n) for n in RETRY_COUNTS]
    assert max(delays) == 5.0  # the plain formula clamps draws above the cap to the cap
    assert backoff.calculate_backoff(0) <= 1.5  # a new sequence: prev is base again


@pytest.mark.parametrize("jitter_cap", [0.0, 0.1, 1.0, 4.0])
def test_decorrelated_jitter_cap_bounds_the_spread_of_each_draw(jitter_cap: float) -> None:
    base, cap = 0.5, 20.0
    for seed in SEEDS:
        backoff = DecorrelatedJitterBackoff(
            base=base, max_backoff=cap, jitter_cap=jitter_cap, rng=random.Random(seed)
        )
        previous = base
        for n in RETRY_COUNTS:
            delay = backoff.calculate_backoff(n)
            high = min(cap, 3 * previous)
            assert max(base, high - jitter_cap) <= delay <= high
            previous = delay


def test_decorrelated_jitter_cap_zero_is_deterministic_growth_by_three() -> None:
    backoff = DecorrelatedJitterBackoff(base=0.5, max_backoff=60.0, jitter_cap=0.0)
    delays = [backoff.calculate_backoff(n) for n in range(6)]
    assert delays == [min(60.0, 0.5 * 3 ** (n + 1)) for n in range(6)]


def test_decorrelated_jitter_cap_keeps_jitter_at_the_cap() -> None:
    backoff = DecorrelatedJitterBackoff(
        base=0.5, max_backoff=10.0, jitter_cap=2.0, rng=random.Random(2)
    )
    delays = [backoff.calculate_backoff(n) for n in range(200)]
    tail = delays[20:]
    assert all(8.0 <= delay <= 10.0 for delay in tail)
    assert len(set(tail)) > 100  # still spread, not pinned at 10.0


def test_decorrelated_base_zero_is_always_zero() -> None:
    backoff = DecorrelatedJitterBackoff(base=0.0, max_backoff=1.0, rng=random.Random(0))
    assert [backoff.calculate_backoff(n) for n in range(5)] == [0.0] * 5


# -- AdaptiveBackoff ----------------------------------------------------------------------------


def _adaptive(failures: int, successes: int = 0, seed: int = 0, **kwargs: float) -> AdaptiveBackoff:
    backoff = AdaptiveBackoff(rng=random.Random(seed), **kwargs)  # type: ignore[arg-type]
    for _ in range(successes):
        backoff.record_success()
    for _ in range(failures):
        backoff.record_failure()
    return backoff


def test_adaptive_with_no_history_is_equal_jitter_exponential() -> None:
    for seed in SEEDS:
        backoff = AdaptiveBackoff(base=0.5, max_backoff=60.0, rng=random.Random(seed))
        for n in RETRY_COUNTS:
            ceiling = min(0.5 * 2.0**n, 60.0)
            assert ceiling / 2 <= backoff.calculate_backoff(n) <= ceiling


def test_adaptive_bounds_for_every_failure_rate() -> None:
    for seed in range(50):
        for failures in range(11):
            backoff = _adaptive(failures, 10 - failures, seed)
            stretch = 1 + 3 * failures / 10
            for n in RETRY_COUNTS:
                delay = backoff.calculate_backoff(n)
                ceiling = min(0.5 * 2.0**n * stretch, 60.0)
                assert 0.0 <= ceiling / 2 <= delay <= ceiling <= 60.0


def test_adaptive_grows_with_the_failure_rate() -> None:
    for seed in range(50):
        delays = [_adaptive(f, 10 - f, seed).calculate_backoff(2) for f in range(11)]
        assert delays == sorted(delays) and delays[-1] > delays[0]
        assert delays[10] == pytest.approx(4 * delays[0])  # all failed: four times as long


def test_adaptive_shrinks_back_as_successes_push_failures_out_of_the_window() -> None:
    rng = random.Random(0)
    state = rng.getstate()
    backoff = AdaptiveBackoff(window_size=4, rng=rng)

    def delay() -> float:
        rng.setstate(state)  # the same draw each time: only the failure rate differs
        return backoff.calculate_backoff(1)

    healthy = delay()
    for _ in range(4):
        backoff.record_failure()
    failing = delay()
    assert failing == pytest.approx(4 * healthy)
    assert backoff.failure_rate == 1.0
    seen = []
    for _ in range(4):
        backoff.record_success()
        seen.append(delay())
    assert all(earlier > later for earlier, later in zip([failing, *seen[:-1]], seen, strict=True))
    assert backoff.failure_rate == 0.0
    assert seen[-1] == healthy


def test_adaptive_window_keeps_only_the_last_outcomes() -> None:
    backoff = AdaptiveBackoff(window_size=3)
    assert backoff.failure_rate == 0.0
    backoff.record_failure()
    assert backoff.failure_rate == 1.0
    backoff.record_success()
    assert backoff.failure_rate == 0.5
    for _ in range(2):
        backoff.record_success()
    assert backoff.failure_rate == 0.0  # the failure left the window
    backoff.record_failure()
    backoff.record_failure()
    assert backoff.failure_rate == pytest.approx(2 / 3)


def test_adaptive_is_bounded_by_max_backoff() -> None:
    backoff = _adaptive(10, base=5.0, max_backoff=6.0)
    for n in RETRY_COUNTS:
        assert 3.0 <= backoff.calculate_backoff(n) <= 6.0
    assert backoff.calculate_backoff(10**6) <= 6.0


# -- shared behaviour ---------------------------------------------------------------------------

Strategy = Callable[
    [random.Random], "ExponentialBackoff | DecorrelatedJitterBackoff | AdaptiveBackoff"
]

STRATEGIES: list[Strategy] = [
    lambda rng: ExponentialBackoff(rng=rng),
    lambda rng: ExponentialBackoff(jitter=False, rng=rng),
    lambda rng: DecorrelatedJitterBackoff(rng=rng),
    lambda rng: DecorrelatedJitterBackoff(jitter_cap=1.0, rng=rng),
    lambda rng: AdaptiveBackoff(rng=rng),
]


@pytest.mark.parametrize("make", STRATEGIES)
def test_never_negative_never_above_max_backoff_and_finite(make: Strategy) -> None:
    for seed in SEEDS:
        backoff = make(random.Random(seed))
        assert isinstance(backoff, BackoffStrategy)
        for n in RETRY_COUNTS:
            delay = backoff.calculate_backoff(n)
            assert isinstance(delay, float) and math.isfinite(delay)
            assert 0.0 <= delay <= backoff.max_backoff == 60.0


@pytest.mark.parametrize("make", STRATEGIES)
def test_negative_retry_count_is_refused(make: Strategy) -> None:
    with pytest.raises(ValueError, match="retry_count"):
        make(random.Random(0)).calculate_backoff(-1)


def test_backoff_strategy_is_abstract() -> None:
    with pytest.raises(TypeError):
        BackoffStrategy()  # type: ignore[abstract]

    class Constant(BackoffStrategy):
        def calculate_backoff(self, retry_count: int) -> float:
            return 1.0

    assert Constant().calculate_backoff(3) == 1.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ExponentialBackoff(base=-0.1), "base"),
        (lambda: ExponentialBackoff(base=2.0, max_backoff=1.0), "max_backoff"),
        (lambda: ExponentialBackoff(factor=0.99), "factor"),
        (lambda: ExponentialBackoff(factor=math.nan), "factor"),
        (lambda: ExponentialBackoff(max_backoff=math.inf), "max_backoff"),
        (lambda: ExponentialBackoff(base=math.nan), "base"),
        (lambda: DecorrelatedJitterBackoff(base=-1.0), "base"),
        (lambda: DecorrelatedJitterBackoff(base=1.0, max_backoff=0.5), "max_backoff"),
        (lambda: DecorrelatedJitterBackoff(jitter_cap=-0.5), "jitter_cap"),
        (lambda: AdaptiveBackoff(base=-1.0), "base"),
        (lambda: AdaptiveBackoff(base=1.0, max_backoff=0.0), "max_backoff"),
        (lambda: AdaptiveBackoff(window_size=0), "window_size"),
    ],
)
def test_invalid_arguments_raise_value_error(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_boundary_arguments_are_accepted() -> None:
    assert ExponentialBackoff(base=0.0, factor=1.0, max_backoff=0.0).calculate_backoff(3) == 0.0
    assert DecorrelatedJitterBackoff(base=1.0, max_backoff=1.0).calculate_backoff(4) == 1.0
    assert AdaptiveBackoff(window_size=1).window_size == 1


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_the_shared_rng_is_reseeded_in_a_forked_child() -> None:
    backoff = ExponentialBackoff(base=1.0, max_backoff=1.0)  # the shared module-level rng
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write_end, repr(backoff.calculate_backoff(0)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child = float(os.read(read_end, 100).decode())
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child != backoff.calculate_backoff(0)  # the parent's next draw, from the same state
