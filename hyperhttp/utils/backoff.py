"""How long to wait before a retry: exponential, decorrelated jitter and adaptive backoff.

Jitter spreads the retries of many clients that failed together, so they do not come back in
step and fail together again (Brooks, "Exponential Backoff And Jitter", AWS Architecture Blog,
2015). Every strategy takes ``rng`` so that tests can seed it; by default they share one
module-level ``random.Random``, reseeded in a forked child so that the workers of a pre-forking
server do not draw the same delays.
"""

from __future__ import annotations

import math
import os
import random
from abc import ABC, abstractmethod
from collections import deque

__all__ = [
    "BackoffStrategy",
    "ExponentialBackoff",
    "DecorrelatedJitterBackoff",
    "AdaptiveBackoff",
]

_DEFAULT_RNG = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_DEFAULT_RNG.seed)


def _check_bounds(base: float, max_backoff: float) -> None:
    if not math.isfinite(base) or base < 0:
        raise ValueError(f"base must be a finite number >= 0, not {base!r}")
    if not math.isfinite(max_backoff) or max_backoff < base:
        raise ValueError(f"max_backoff must be finite and >= base ({base!r}), not {max_backoff!r}")


def _check_retry_count(retry_count: int) -> None:
    if retry_count < 0:
        raise ValueError(f"retry_count must be >= 0, not {retry_count!r}")


def _grown(base: float, factor: float, retry_count: int, max_backoff: float) -> float:
    """``base * factor ** retry_count``, capped at ``max_backoff`` (also when the power overflows)."""
    try:
        delay = base * factor**retry_count
    except OverflowError:
        return max_backoff if base > 0 else 0.0
    return delay if delay < max_backoff else max_backoff


class BackoffStrategy(ABC):
    """Base of the backoff strategies: the delay before each retry."""

    __slots__ = ()

    @abstractmethod
    def calculate_backoff(self, retry_count: int) -> float:
        """Return the delay in seconds before a retry.

        :param retry_count: retries already made; 0 asks for the delay before the first retry.
        :raises ValueError: when ``retry_count`` is negative.
        """


class ExponentialBackoff(BackoffStrategy):
    """``base * factor ** retry_count`` seconds capped at ``max_backoff``, with full jitter.

    With ``jitter`` (the default) the delay is drawn uniformly from ``[0, capped)``, AWS's "full
    jitter": of the usual variants it spreads competing clients most and does the least work in
    total. The price is that a retry may come almost at once. Without jitter the delay is the
    capped value itself.

    :param base: delay before the first retry without jitter, in seconds (>= 0).
    :param factor: growth per retry (>= 1).
    :param max_backoff: largest delay, in seconds (>= base).
    :param jitter: draw the delay from ``[0, capped)`` instead of using ``capped``.
    :param rng: source of randomness; the module's shared ``random.Random`` when None.
    :raises ValueError: when ``base`` is negative, ``factor`` is below 1, ``max_backoff`` is
        below ``base``, or one of the three is not finite.
    """

    __slots__ = ("base", "factor", "max_backoff", "jitter", "_random")

    def __init__(
        self,
        base: float = 0.5,
        factor: float = 2.0,
        max_backoff: float = 60.0,
        jitter: bool = True,
        *,
        rng: random.Random | None = None,
    ) -> None:
        _check_bounds(base, max_backoff)
        if not factor >= 1 or not math.isfinite(factor):
            raise ValueError(f"factor must be a finite number >= 1, not {factor!r}")
        self.base = float(base)
        self.factor = float(factor)
        self.max_backoff = float(max_backoff)
        self.jitter = jitter
        self._random = (rng or _DEFAULT_RNG).random

    def calculate_backoff(self, retry_count: int) -> float:
        """Return the delay in seconds before retry number ``retry_count + 1``.

        :param retry_count: retries already made; 0 asks for the delay before the first retry.
        :raises ValueError: when ``retry_count`` is negative.
        """
        _check_retry_count(retry_count)
        capped = _grown(self.base, self.factor, retry_count, self.max_backoff)
        if self.jitter:
            return capped * self._random()
        return capped


class DecorrelatedJitterBackoff(BackoffStrategy):
    """AWS's decorrelated jitter: ``sleep = min(max_backoff, uniform(base, 3 * prev))``.

    ``prev`` is the delay this instance returned last; ``retry_count == 0`` starts a new sequence
    with ``prev = base``, and other counts are not used otherwise. The state belongs to the
    instance: a policy whose requests retry concurrently interleaves their sequences (each delay
    still lies in ``[base, min(max_backoff, 3 * prev)]``); use one instance per sequence for
    the textbook behaviour.

    ``jitter_cap``, when given, bounds the width of the draw and keeps its top: with
    ``high = min(max_backoff, 3 * prev)`` the delay is ``uniform(max(base, high - jitter_cap),
    high)``. It grows as before but varies by at most ``jitter_cap`` seconds, also once it
    reaches ``max_backoff`` (where the plain formula returns ``max_backoff`` more and more
    often); ``jitter_cap=0`` gives ``min(max_backoff, base * 3 ** (retry_count + 1))``. With
    ``base == 0`` every delay is 0.

    :param base: smallest delay and the first ``prev``, in seconds (>= 0).
    :param max_backoff: largest delay, in seconds (>= base).
    :param jitter_cap: largest width of the random draw, in seconds (>= 0), or None for no bound.
    :param rng: source of randomness; the module's shared ``random.Random`` when None.
    :raises ValueError: when ``base`` or ``jitter_cap`` is negative, ``max_backoff`` is below
        ``base``, or ``base`` or ``max_backoff`` is not finite.
    """

    __slots__ = ("base", "max_backoff", "jitter_cap", "_random", "_previous")

    def __init__(
        self,
        base: float = 0.5,
        max_backoff: float = 60.0,
        jitter_cap: float | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        _check_bounds(base, max_backoff)
        if jitter_cap is not None and not jitter_cap >= 0:
            raise ValueError(f"jitter_cap must be >= 0 or None, not {jitter_cap!r}")
        self.base = float(base)
        self.max_backoff = float(max_backoff)
        self.jitter_cap = None if jitter_cap is None else float(jitter_cap)
        self._random = (rng or _DEFAULT_RNG).random
        self._previous = self.base

    def calculate_backoff(self, retry_count: int) -> float:
        """Return the next delay in seconds; ``retry_count == 0`` starts a new sequence.

        :param retry_count: retries already made; 0 asks for the delay before the first retry.
        :raises ValueError: when ``retry_count`` is negative.
        """
        _check_retry_count(retry_count)
        previous = self.base if retry_count == 0 else self._previous
        high = previous * 3
        jitter_cap = self.jitter_cap
        low = self.base
        if jitter_cap is not None:
            if high > self.max_backoff:
                high = self.max_backoff
            if high - jitter_cap > low:
                low = high - jitter_cap
        delay = low + (high - low) * self._random()
        if delay > high:  # rounding
            delay = high
        if delay > self.max_backoff:
            delay = self.max_backoff
        self._previous = delay
        return delay


class AdaptiveBackoff(BackoffStrategy):
    """Exponential backoff stretched by the failure rate of the last ``window_size`` outcomes.

    ``ceiling = min(max_backoff, base * 2 ** retry_count * (1 + 3 * failure_rate))``: a host
    whose recent requests all failed waits up to four times as long as one that is healthy
    (failure rate 0, also before any outcome is recorded). The delay is drawn from
    ``[ceiling / 2, ceiling]`` ("equal jitter"), so it never drops to nothing and a higher
    failure rate moves the whole range up.

    :param base: delay ceiling before the first retry at failure rate 0, in seconds (>= 0).
    :param max_backoff: largest delay, in seconds (>= base).
    :param window_size: how many recent outcomes the failure rate counts (>= 1).
    :param rng: source of randomness; the module's shared ``random.Random`` when None.
    :raises ValueError: when ``base`` is negative, ``max_backoff`` is below ``base``, either is
        not finite, or ``window_size`` is below 1.
    """

    __slots__ = ("base", "max_backoff", "window_size", "_random", "_outcomes", "_failures")

    _FAILURE_WEIGHT = 3.0

    def __init__(
        self,
        base: float = 0.5,
        max_backoff: float = 60.0,
        window_size: int = 10,
        *,
        rng: random.Random | None = None,
    ) -> None:
        _check_bounds(base, max_backoff)
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, not {window_size!r}")
        self.base = float(base)
        self.max_backoff = float(max_backoff)
        self.window_size = window_size
        self._random = (rng or _DEFAULT_RNG).random
        self._outcomes: deque[bool] = deque(maxlen=window_size)  # True for a failure
        self._failures = 0

    @property
    def failure_rate(self) -> float:
        """Failures among the recorded outcomes in the window, from 0.0 to 1.0 (0.0 if none)."""
        recorded = len(self._outcomes)
        return self._failures / recorded if recorded else 0.0

    def record_success(self) -> None:
        """Record a request that succeeded; the oldest outcome leaves a full window."""
        self._record(False)

    def record_failure(self) -> None:
        """Record a request that failed; the oldest outcome leaves a full window."""
        self._record(True)

    def _record(self, failed: bool) -> None:
        outcomes = self._outcomes
        if len(outcomes) == self.window_size and outcomes[0]:
            self._failures -= 1
        outcomes.append(failed)
        if failed:
            self._failures += 1

    def calculate_backoff(self, retry_count: int) -> float:
        """Return the delay in seconds before retry number ``retry_count + 1``.

        :param retry_count: retries already made; 0 asks for the delay before the first retry.
        :raises ValueError: when ``retry_count`` is negative.
        """
        _check_retry_count(retry_count)
        stretch = 1.0 + self._FAILURE_WEIGHT * self.failure_rate
        ceiling = _grown(self.base * stretch, 2.0, retry_count, self.max_backoff)
        half = ceiling / 2
        return half + half * self._random()
