"""Circuit breakers: stop sending requests to a host that keeps failing, then probe it carefully.

A breaker is a three-state machine per host:

- CLOSED: requests pass. ``failure_threshold`` *consecutive* tracked failures open it; a success
  resets the count (a host that fails one request in ten is degraded, not down). A failure in a
  category the breaker does not track is ignored: it neither counts nor resets.
- OPEN: ``check`` raises :class:`~hyperhttp.exceptions.CircuitBreakerOpen` without touching the
  network, with the seconds left until ``recovery_timeout`` has passed since it opened.
- HALF_OPEN: after ``recovery_timeout`` the breaker admits probes, at most ``success_threshold`` in
  flight at once, and refuses the rest with ``CircuitBreakerOpen(host, 0.0)``. One tracked failure
  re-opens it with a fresh ``recovery_timeout``; ``success_threshold`` successes close it.

The default tracked categories are CONNECTION, TIMEOUT, SERVER and TRANSIENT. 2.x tracked only
SERVER, TIMEOUT and TRANSIENT, so a host refusing connections never tripped its breaker; refused and
unreachable connections are exactly what a breaker is for, so CONNECTION is tracked now. Pass
``tracked_categories`` to get the 2.x behaviour back.

The breaker is not thread-safe: it belongs to one event loop, like the Client that owns it.
"""

from __future__ import annotations

import enum
import functools
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..exceptions import CircuitBreakerOpen
from .classifier import ErrorClassifier

__all__ = ["CircuitBreaker", "CircuitBreakerState", "DomainCircuitBreakerManager"]

_CATEGORIES = ErrorClassifier.categories()
_DEFAULT_TRACKED = frozenset(("CONNECTION", "TIMEOUT", "SERVER", "TRANSIENT"))
_CONFIG_KEYS = frozenset(
    ("failure_threshold", "recovery_timeout", "success_threshold", "tracked_categories")
)


class CircuitBreakerState(enum.Enum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


_CLOSED = CircuitBreakerState.CLOSED
_OPEN = CircuitBreakerState.OPEN
_HALF_OPEN = CircuitBreakerState.HALF_OPEN

TransitionListener = Callable[[CircuitBreakerState, CircuitBreakerState], None]
DomainTransitionListener = Callable[[str, CircuitBreakerState, CircuitBreakerState], None]


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _tracked(categories: Iterable[str] | None) -> frozenset[str]:
    if categories is None:
        return _DEFAULT_TRACKED
    if isinstance(categories, str):
        raise ValueError("tracked_categories must be a collection of category names, not a str")
    tracked = frozenset(categories)
    unknown = sorted(c for c in tracked if c not in _CATEGORIES)
    if unknown:
        raise ValueError(f"unknown error categories {unknown}; known: {', '.join(_CATEGORIES)}")
    return tracked


class CircuitBreaker:
    """Refuse requests to one host after consecutive failures; probe it again after a pause.

    :param failure_threshold: consecutive tracked failures that open a closed breaker.
    :param recovery_timeout: seconds an open breaker refuses requests before admitting probes.
    :param success_threshold: successful probes that close a half-open breaker; also the number
        of probes admitted in flight at once.
    :param tracked_categories: the error categories that count as failures (default CONNECTION,
        TIMEOUT, SERVER, TRANSIENT); an empty collection makes a breaker that never opens.
    :param clock: a monotonic clock in seconds (tests pass a fake one).
    :param on_transition: called with ``(old, new)`` on every state change; its exceptions are
        swallowed.
    :raises ValueError: when a threshold is not an int >= 1, ``recovery_timeout`` is not a
        finite number > 0, or ``tracked_categories`` is a str or names an unknown category.
    """

    __slots__ = (
        "_state",
        "_failure_threshold",
        "_recovery_timeout",
        "_success_threshold",
        "_tracked",
        "_clock",
        "_on_transition",
        "_failure_count",
        "_success_count",
        "_probes",
        "_open_until",
        "_opened_count",
        "_rejected_count",
        "_total_failures",
        "_total_successes",
        "_untracked_failures",
    )

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        success_threshold: int = 2,
        tracked_categories: Iterable[str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self._failure_threshold = _positive_int("failure_threshold", failure_threshold)
        self._success_threshold = _positive_int("success_threshold", success_threshold)
        if (
            not isinstance(recovery_timeout, (int, float))
            or isinstance(recovery_timeout, bool)
            or not math.isfinite(recovery_timeout)
            or recovery_timeout <= 0
        ):
            raise ValueError(
                f"recovery_timeout must be a finite number > 0, got {recovery_timeout!r}"
            )
        self._recovery_timeout = float(recovery_timeout)
        self._tracked = _tracked(tracked_categories)
        self._clock = clock
        self._on_transition = on_transition
        self._state = _CLOSED
        self._failure_count = 0
        self._success_count = 0
        self._probes = 0
        self._open_until = 0.0
        self._opened_count = 0
        self._rejected_count = 0
        self._total_failures = 0
        self._total_successes = 0
        self._untracked_failures = 0

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state.value} failures={self._failure_count}>"

    @property
    def state(self) -> CircuitBreakerState:
        """The current state; an open breaker whose recovery_timeout has passed reports HALF_OPEN.

        Reading it changes nothing: the breaker moves to HALF_OPEN at the next ``check``.
        """
        if self._state is _OPEN and self._clock() >= self._open_until:
            return _HALF_OPEN
        return self._state

    @property
    def failure_count(self) -> int:
        """Consecutive tracked failures since the last success or the last close."""
        return self._failure_count

    @property
    def failure_threshold(self) -> int:
        """Consecutive tracked failures that open the breaker."""
        return self._failure_threshold

    @property
    def recovery_timeout(self) -> float:
        """Seconds an open breaker refuses requests."""
        return self._recovery_timeout

    @property
    def success_threshold(self) -> int:
        """Successful probes that close a half-open breaker (and probes admitted at once)."""
        return self._success_threshold

    @property
    def tracked_categories(self) -> frozenset[str]:
        """The error categories that count as failures."""
        return self._tracked

    def check(self, host: str) -> None:
        """Admit a request to ``host`` or refuse it; call before sending.

        An admitted request in HALF_OPEN is a probe: end it with ``record_success``,
        ``record_failure`` or, when it ended without a verdict (cancelled), ``release``.

        :param host: the request's host, named in the exception.
        :raises CircuitBreakerOpen: when the breaker is open (``remaining`` is the seconds left),
            or half-open with ``success_threshold`` probes already in flight (``remaining``
            0.0).
        """
        if self._state is _CLOSED:
            return
        self._check_not_closed(host)

    def _check_not_closed(self, host: str) -> None:
        if self._state is _OPEN:
            remaining = self._open_until - self._clock()
            if remaining > 0.0:
                self._rejected_count += 1
                raise CircuitBreakerOpen(host, remaining)
            self._set_state(_HALF_OPEN)
        if self._probes >= self._success_threshold:
            self._rejected_count += 1
            raise CircuitBreakerOpen(host, 0.0)
        self._probes += 1

    def record_success(self) -> None:
        """Record a successful request.

        CLOSED: resets the consecutive failure count. HALF_OPEN: counts towards
        ``success_threshold`` and frees a probe slot. OPEN: a request admitted before the breaker
        opened; no verdict.
        """
        self._total_successes += 1
        state = self._state
        if state is _CLOSED:
            self._failure_count = 0
        elif state is _HALF_OPEN:
            if self._probes:
                self._probes -= 1
            self._success_count += 1
            if self._success_count >= self._success_threshold:
                self._set_state(_CLOSED)

    def record_failure(self, category: str) -> None:
        """Record a failed request in error ``category`` (``"CONNECTION"``, ``"SERVER"``, ...).

        An untracked category changes no state (in HALF_OPEN it frees the probe's slot, as
        ``release`` does). A tracked one counts towards ``failure_threshold`` in CLOSED and
        re-opens a HALF_OPEN breaker at once with a fresh ``recovery_timeout``. In OPEN it came
        from a request admitted before the breaker opened and does not extend the timeout.

        :param category: the failure's category, one of ``ErrorClassifier.categories()``.
        """
        state = self._state
        if category not in self._tracked:
            self._untracked_failures += 1
            if state is _HALF_OPEN and self._probes:
                self._probes -= 1
            return
        self._total_failures += 1
        if state is _CLOSED:
            self._failure_count += 1
            if self._failure_count >= self._failure_threshold:
                self._open()
        elif state is _HALF_OPEN:
            self._failure_count += 1
            self._open()

    def release(self) -> None:
        """Free the slot of a half-open probe that ended without a verdict (cancelled)."""
        if self._state is _HALF_OPEN and self._probes:
            self._probes -= 1

    def stats(self) -> dict[str, Any]:
        """Return a snapshot: state, counts, times opened, seconds left while open, and totals."""
        state = self.state
        remaining = 0.0
        if state is _OPEN:
            remaining = max(0.0, self._open_until - self._clock())
        return {
            "state": state.value,
            "failure_count": self._failure_count,
            "success_count": self._success_count,
            "probes_in_flight": self._probes,
            "opened_count": self._opened_count,
            "remaining": remaining,
            "rejected_count": self._rejected_count,
            "total_failures": self._total_failures,
            "total_successes": self._total_successes,
            "untracked_failures": self._untracked_failures,
            "failure_threshold": self._failure_threshold,
            "recovery_timeout": self._recovery_timeout,
            "success_threshold": self._success_threshold,
        }

    def _open(self) -> None:
        self._open_until = self._clock() + self._recovery_timeout
        self._opened_count += 1
        self._set_state(_OPEN)

    def _set_state(self, new: CircuitBreakerState) -> None:
        old = self._state
        self._state = new
        self._success_count = 0
        self._probes = 0
        if new is _CLOSED:
            self._failure_count = 0
        if self._on_transition is not None:
            try:
                self._on_transition(old, new)
            except Exception:
                # A listener (logging, metrics) must never fail the request that moved the state.
                pass

    def _holds_verdict(self) -> bool:
        # Open and still refusing, or half-open (probing): dropping it would let full traffic
        # through to a host known to be failing.
        if self._state is _HALF_OPEN:
            return True
        return self._state is _OPEN and self._clock() < self._open_until


class DomainCircuitBreakerManager:
    """One circuit breaker per domain, created on first use.

    The number of breakers is bounded softly by ``max_breakers``: when a new domain would pass it,
    closed breakers with no failures are dropped; if that is not enough, every breaker that holds
    no verdict is dropped too (closed ones with failures below the threshold, and open ones whose
    recovery_timeout has passed). Breakers that are open and refusing, or half-open, are always
    kept. A dropped domain gets a fresh closed breaker (its own configuration, if any) on its next
    request. Fetch the breaker per request rather than holding it: a held breaker may have been
    dropped.

    :param default_config: overrides of ``{"failure_threshold": 5, "recovery_timeout": 30.0,
        "success_threshold": 2}``; may also give ``tracked_categories``.
    :param clock: passed to every breaker (tests pass a fake one).
    :param on_transition: called with ``(domain, old, new)`` on every state change of any
        breaker; its exceptions are swallowed.
    :param max_breakers: the soft bound above.
    :raises ValueError: when a configuration key is unknown, a value is one ``CircuitBreaker``
        rejects, or ``max_breakers`` is not an int >= 1.
    """

    DEFAULT_CONFIG: dict[str, Any] = {
        "failure_threshold": 5,
        "recovery_timeout": 30.0,
        "success_threshold": 2,
    }

    def __init__(
        self,
        default_config: dict[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_transition: DomainTransitionListener | None = None,
        max_breakers: int = 10_000,
    ) -> None:
        self._max_breakers = _positive_int("max_breakers", max_breakers)
        self._clock = clock
        self._on_transition = on_transition
        self._default_config = self._merge(default_config or {})
        CircuitBreaker(**self._default_config)  # validates the values
        self._domain_configs: dict[str, dict[str, Any]] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._prune_at = self._max_breakers

    @property
    def default_config(self) -> dict[str, Any]:
        """A copy of the configuration new breakers get."""
        return dict(self._default_config)

    def get_circuit_breaker(self, domain: str) -> CircuitBreaker:
        """Return the breaker of ``domain``, created on first use.

        A new breaker gets the domain's configuration, else the default one.

        :param domain: the host.
        """
        breaker = self._breakers.get(domain)
        if breaker is None:
            breaker = self._build(domain, self._domain_configs.get(domain, self._default_config))
            self._insert(domain, breaker)
        return breaker

    def configure_domain(self, domain: str, **config: Any) -> None:
        """Give ``domain`` its own configuration (merged over the default).

        An existing breaker of the domain is replaced by a fresh closed one with the new settings.

        :param domain: the host.
        :param config: ``failure_threshold``, ``recovery_timeout``, ``success_threshold`` or
            ``tracked_categories``.
        :raises ValueError: when a key is unknown, or a value is one ``CircuitBreaker`` rejects.
        """
        merged = self._merge(config, self._default_config)
        breaker = self._build(domain, merged)
        self._domain_configs[domain] = merged
        self._insert(domain, breaker)

    def get_stats(self) -> dict[str, dict[str, Any]]:
        """Return ``{domain: breaker.stats()}`` for every breaker held."""
        return {domain: breaker.stats() for domain, breaker in self._breakers.items()}

    def __len__(self) -> int:
        return len(self._breakers)

    def __contains__(self, domain: object) -> bool:
        return domain in self._breakers

    def _merge(self, config: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise ValueError(
                f"unknown circuit breaker settings {unknown}; known: {', '.join(sorted(_CONFIG_KEYS))}"
            )
        return {**(self.DEFAULT_CONFIG if base is None else base), **config}

    def _build(self, domain: str, config: dict[str, Any]) -> CircuitBreaker:
        listener = None
        if self._on_transition is not None:
            listener = functools.partial(self._on_transition, domain)
        return CircuitBreaker(**config, clock=self._clock, on_transition=listener)

    def _insert(self, domain: str, breaker: CircuitBreaker) -> None:
        if domain not in self._breakers and len(self._breakers) >= self._prune_at:
            self._prune()
        self._breakers[domain] = breaker

    def _prune(self) -> None:
        breakers = self._breakers
        for domain in [
            d for d, b in breakers.items() if b._state is _CLOSED and b._failure_count == 0
        ]:
            del breakers[domain]
        if len(breakers) >= self._max_breakers:
            for domain in [d for d, b in breakers.items() if not b._holds_verdict()]:
                del breakers[domain]
        # The next scan waits until the table has grown by as much as it holds now (or back to
        # the bound), so pruning costs O(1) per new domain however many breakers must be kept.
        self._prune_at = max(self._max_breakers, 2 * len(breakers))
