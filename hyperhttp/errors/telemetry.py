"""Error telemetry: failures and successes per domain, in totals and over recent windows.

The Client calls ``record`` on every failed attempt and ``record_success`` on every successful
one; both are synchronous and O(1) amortised. Memory is bounded whatever the traffic:

- per domain, totals are counters, and recent activity is kept as one-second buckets (failures,
  successes) for the last 15 minutes only, pruned as new buckets are added: at most ~900 buckets
  per domain, however many requests per second;
- at most ``max_domains`` domains are held; recording a new one past the bound drops the least
  recently seen. The global totals keep counting what dropped domains recorded.

Windows are measured at one-second resolution: a window of ``w`` seconds counts every bucket that
overlaps the last ``w`` seconds, so it may include events up to one second older. Windows longer
than 15 minutes see only the last 15.

A replay (the pool re-sending a request on a fresh connection after a stale keep-alive
connection, a GOAWAY or a refused HTTP/2 stream) is counted as a replay only: it is ordinary
connection hygiene, not a failure of the host, so it stays out of the error counts and rates.

2.x's coroutine methods (``record_error``, ``get_error_rate``, ``get_domain_report``,
``get_all_domains``, ``get_global_stats``) are kept; they do no I/O. Not thread-safe: one
event loop, like the Client that owns it.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

__all__ = ["ErrorTelemetry"]

_RETENTION = 900  # seconds of buckets kept: the longest report window
_REPORT_WINDOWS = (60, 300, 900)
_TOP_DOMAINS = 10


class _Counts:
    """Totals and one-second buckets ``[second, failures, successes]`` for the last 15 minutes."""

    __slots__ = ("errors", "successes", "retries", "replays", "by_category", "statuses", "buckets")

    def __init__(self) -> None:
        self.errors = 0
        self.successes = 0
        self.retries = 0
        self.replays = 0
        self.by_category: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.buckets: deque[list[int]] = deque()

    def bucket(self, now: float) -> list[int]:
        second = math.floor(now)
        buckets = self.buckets
        if buckets:
            last = buckets[-1]
            if last[0] == second:
                return last
            oldest = second - _RETENTION
            while buckets and buckets[0][0] < oldest:
                buckets.popleft()
        last = [second, 0, 0]
        buckets.append(last)
        return last

    def fail(self, now: float, category: str, retried: bool, status: int | None) -> None:
        self.errors += 1
        self.by_category[category] = self.by_category.get(category, 0) + 1
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        if retried:
            self.retries += 1
        self.bucket(now)[1] += 1

    def window(self, now: float, seconds: float) -> tuple[int, int]:
        """(failures, successes) in the buckets that overlap the last ``seconds`` seconds."""
        start = now - seconds - 1  # bucket b covers [b, b + 1)
        errors = successes = 0
        for second, failed, succeeded in reversed(self.buckets):
            if second <= start:
                break
            errors += failed
            successes += succeeded
        return errors, successes

    def summary(self, now: float) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "total_errors": self.errors,
            "total_successes": self.successes,
            "total_attempts": self.errors + self.successes,
            "error_rate": _rate(self.errors, self.successes),
            "retries": self.retries,
            "replays": self.replays,
            "errors_by_category": dict(self.by_category),
            "status_codes": dict(self.statuses),
        }
        for seconds in _REPORT_WINDOWS:
            errors, successes = self.window(now, seconds)
            summary[f"last_{seconds}s"] = {
                "errors": errors,
                "successes": successes,
                "error_rate": _rate(errors, successes),
            }
        return summary


def _rate(errors: int, successes: int) -> float:
    attempts = errors + successes
    return errors / attempts if attempts else 0.0


def _window_seconds(window_seconds: float) -> float:
    if not isinstance(window_seconds, (int, float)) or not window_seconds > 0:
        raise ValueError(f"window_seconds must be a number > 0, got {window_seconds!r}")
    return min(float(window_seconds), float(_RETENTION))


class ErrorTelemetry:
    """Counts failed and successful attempts per domain, bounded in memory.

    :param clock: a monotonic clock in seconds (tests pass a fake one).
    :param max_domains: the most domains held; past it the least recently seen is dropped.
    :raises ValueError: when ``max_domains`` is not an int >= 1.
    """

    __slots__ = ("_clock", "_max_domains", "_domains", "_last_seen", "_global", "_dropped")

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_domains: int = 10_000
    ) -> None:
        if not isinstance(max_domains, int) or isinstance(max_domains, bool) or max_domains < 1:
            raise ValueError(f"max_domains must be an int >= 1, got {max_domains!r}")
        self._clock = clock
        self._max_domains = max_domains
        self._domains: OrderedDict[str, _Counts] = OrderedDict()
        self._last_seen: dict[str, float] = {}
        self._global = _Counts()
        self._dropped = 0

    def record(
        self,
        domain: str,
        category: str,
        *,
        retried: bool = False,
        replay: bool = False,
        status: int | None = None,
    ) -> None:
        """Record one failed attempt to ``domain`` in error ``category``.

        :param domain: the host the attempt went to.
        :param category: its error category (``"TIMEOUT"``, ``"SERVER"``, ...).
        :param retried: the retry policy will try again.
        :param replay: the pool's own re-send (stale connection, GOAWAY); counted as a replay
            only.
        :param status: the response status, when the failure is an HTTP status.
        """
        now = self._clock()
        counts = self._touch(domain, now)
        if replay:
            counts.replays += 1
            self._global.replays += 1
        else:
            counts.fail(now, category, retried, status)
            self._global.fail(now, category, retried, status)

    def record_success(self, domain: str) -> None:
        """Record one successful attempt to ``domain``.

        :param domain: the host the attempt went to.
        """
        now = self._clock()
        counts = self._touch(domain, now)
        counts.successes += 1
        counts.bucket(now)[2] += 1
        self._global.successes += 1
        self._global.bucket(now)[2] += 1

    async def record_error(self, domain: str, error_category: str, response: Any = None) -> None:
        """Record one failed attempt (the 2.x coroutine); ``response`` gives its status code.

        :param domain: the host the attempt went to.
        :param error_category: its error category.
        :param response: the response, for a status failure; None otherwise.
        """
        status = getattr(response, "status_code", None) if response is not None else None
        self.record(domain, error_category, status=status if isinstance(status, int) else None)

    async def get_error_rate(self, domain: str, window_seconds: float = 60.0) -> float:
        """Return the failures per attempt to ``domain`` over the last ``window_seconds``.

        0.0 when nothing was recorded. The window is capped at the seconds the counts are kept.

        :param domain: the host.
        :param window_seconds: how far back to count, in seconds.
        :raises ValueError: when ``window_seconds`` is not a number > 0.
        """
        seconds = _window_seconds(window_seconds)
        counts = self._domains.get(domain)
        if counts is None:
            return 0.0
        return _rate(*counts.window(self._clock(), seconds))

    async def get_domain_report(self, domain: str) -> dict[str, Any] | None:
        """Return the totals, counts by category and status, and recent windows of ``domain``.

        The windows are the last 60, 300 and 900 seconds.

        None for a domain never recorded (or dropped past ``max_domains``).

        :param domain: the host.
        """
        return self._report(domain, self._clock())

    async def get_all_domains(self) -> list[str]:
        """Return the domains held, sorted."""
        return sorted(self._domains)

    async def get_global_stats(self) -> dict[str, Any]:
        """Return totals over every domain ever recorded, recent windows, and top error domains."""
        return self._global_stats(self._clock())

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-serialisable copy of everything.

        The shape is ``{"global": ..., "domains": {domain: ...}}``.
        """
        now = self._clock()
        return {
            "global": self._global_stats(now),
            "domains": {domain: self._report(domain, now) for domain in self._domains},
        }

    def _touch(self, domain: str, now: float) -> _Counts:
        domains = self._domains
        counts = domains.get(domain)
        if counts is None:
            counts = domains[domain] = _Counts()
            if len(domains) > self._max_domains:
                dropped, _ = domains.popitem(last=False)
                del self._last_seen[dropped]
                self._dropped += 1
        else:
            domains.move_to_end(domain)
        self._last_seen[domain] = now
        return counts

    def _report(self, domain: str, now: float) -> dict[str, Any] | None:
        counts = self._domains.get(domain)
        if counts is None:
            return None
        report = {"domain": domain, **counts.summary(now)}
        report["seconds_since_last_event"] = max(0.0, now - self._last_seen[domain])
        return report

    def _global_stats(self, now: float) -> dict[str, Any]:
        stats = self._global.summary(now)
        stats["domains"] = len(self._domains)
        stats["domains_dropped"] = self._dropped
        top = heapq.nlargest(_TOP_DOMAINS, self._domains.items(), key=lambda item: item[1].errors)
        stats["top_error_domains"] = [[domain, c.errors] for domain, c in top if c.errors]
        return stats
