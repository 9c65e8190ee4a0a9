"""Retries: which failed attempts are tried again, after how long, and what the caller sees.

``RetryPolicy`` decides per attempt (``should_retry``); the Client runs it around each network
attempt, inside the redirect and auth loops. A request is retried only when every one of these
holds: the failure's category is in ``retry_categories`` (or the response's status is in
``status_force_list``), fewer than ``max_retries`` retries ran, the method is one the policy
allows (by default the idempotent ones, RFC 9110 section 9.2.2), and the body can be sent again.
The delay is the backoff strategy's, scaled by ``retry_interval_factor``; a Retry-After field
(seconds or an HTTP-date, RFC 9110 section 10.2.3) replaces it when ``respect_retry_after``,
capped at the strategy's maximum.

When nothing was retried the caller gets the original typed exception (or the response); when
retries ran out, a ``RetryError`` carrying a ``RetryState`` with every attempt and the last
failure (an ``HTTPStatusError`` holding the response, for a status).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Iterable

from ..exceptions import HyperHTTPError
from ..utils.backoff import BackoffStrategy, ExponentialBackoff
from .classifier import ErrorClassifier

if TYPE_CHECKING:
    from .._models import Response

__all__ = ["Attempt", "RetryError", "RetryPolicy", "RetryState", "IDEMPOTENT_METHODS"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_DEFAULT_CATEGORIES = ("TRANSIENT", "TIMEOUT", "SERVER")
_DEFAULT_STATUSES = (429, 500, 502, 503, 504)


@dataclass
class Attempt:
    """One failed attempt: its number (1 is the first try), the failure's category, the error
    (None for a status), the status (None for an error) and the delay before the next one."""

    number: int
    category: str
    error: BaseException | None
    status: int | None
    delay: float


class RetryState:
    """What happened to one request across its attempts.

    :param method: the request's method.
    :param url: the request's URL, as a string.
    :param original_kwargs: what the request was made with (2.x compatibility; may be empty).
    """

    def __init__(self, method: str, url: str, original_kwargs: dict[str, Any] | None = None):
        self.method = method
        self.url = url
        self.original_kwargs = original_kwargs if original_kwargs is not None else {}
        self.attempts: list[Attempt] = []
        self.attempt_count = 0  # attempts made, the first try included
        self.last_error_category: str | None = None
        self.total_delay = 0.0
        self._started = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the first attempt started."""
        return time.monotonic() - self._started

    def failed(
        self, category: str, error: BaseException | None, status: int | None, delay: float
    ) -> None:
        """Note a failed attempt and the delay before the next one.

        :param category: the failure's category.
        :param error: the exception, or None for a status.
        :param status: the response's status, or None for an exception.
        :param delay: seconds before the next attempt (0.0 when there is none).
        """
        self.attempts.append(Attempt(self.attempt_count, category, error, status, delay))
        self.last_error_category = category
        self.total_delay += delay

    def __repr__(self) -> str:
        return (
            f"<RetryState {self.method} {self.url}: {self.attempt_count} attempts, "
            f"last {self.last_error_category}, waited {self.total_delay:.2f}s>"
        )


class RetryError(HyperHTTPError):
    """Raised when the retry policy gives up after retrying, or on a status it retries.

    ``original_exception`` is the last failure (an HTTPStatusError holding the response, for a
    status); ``retry_state`` has every attempt.

    :param message: the request and the number of attempts.
    :param original_exception: the last failure.
    :param retry_state: every attempt.
    """

    def __init__(
        self, message: str, original_exception: BaseException | None, retry_state: RetryState
    ) -> None:
        super().__init__(message)
        self.original_exception = original_exception
        self.retry_state = retry_state


class RetryPolicy:
    """When and how often a failed request is tried again.

    :param max_retries: retries after the first try (0: none).
    :param retry_categories: failure categories retried (default TRANSIENT, TIMEOUT, SERVER; see
        ErrorClassifier).
    :param status_force_list: response statuses retried (default 429, 500, 502, 503, 504).
    :param backoff_strategy: the delays (default ``ExponentialBackoff()``).
    :param respect_retry_after: a Retry-After field sets the delay (capped at the strategy's
        maximum).
    :param retry_interval_factor: every delay is multiplied by this.
    :param allowed_methods: methods retried (default the idempotent ones; ``None`` keeps that
        default, pass e.g. ``{"POST"} | IDEMPOTENT_METHODS`` to allow more).
    :raises ValueError: when ``max_retries`` or ``retry_interval_factor`` is negative.
    """

    def __init__(
        self,
        max_retries: int = 3,
        retry_categories: Iterable[str] | None = None,
        status_force_list: Iterable[int] | None = None,
        backoff_strategy: BackoffStrategy | None = None,
        respect_retry_after: bool = True,
        retry_interval_factor: float = 1.0,
        *,
        allowed_methods: Iterable[str] | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if retry_interval_factor < 0:
            raise ValueError("retry_interval_factor must not be negative")
        self.max_retries = max_retries
        self.retry_categories = frozenset(
            retry_categories if retry_categories is not None else _DEFAULT_CATEGORIES
        )
        self.status_force_list = frozenset(
            status_force_list if status_force_list is not None else _DEFAULT_STATUSES
        )
        self.backoff_strategy = (
            backoff_strategy if backoff_strategy is not None else ExponentialBackoff()
        )
        self.respect_retry_after = respect_retry_after
        self.retry_interval_factor = retry_interval_factor
        self.allowed_methods = frozenset(
            m.upper()
            for m in (allowed_methods if allowed_methods is not None else IDEMPOTENT_METHODS)
        )

    def allows(self, method: str) -> bool:
        """Return whether requests with ``method`` may be retried at all.

        :param method: the request method, in any case.
        """
        return method.upper() in self.allowed_methods

    def should_retry(
        self,
        error: BaseException | None,
        response: Response | None = None,
        retry_count: int = 0,
    ) -> tuple[bool, float]:
        """Return whether a failed attempt is tried again, and after how many seconds.

        :param error: the exception the attempt raised, or None when it answered ``response``.
        :param response: the response, for a status; read for its status and Retry-After.
        :param retry_count: the retries that have run.
        :raises ValueError: when ``error`` and ``response`` are both None, or ``retry_count`` is
            negative (from the backoff strategy).
        """
        if retry_count >= self.max_retries:
            return False, 0.0
        if error is None and response is not None:
            if response.status_code not in self.status_force_list:
                return False, 0.0
        elif ErrorClassifier.categorize(error, response) not in self.retry_categories:
            return False, 0.0
        return True, self.delay(retry_count, response)

    def delay(self, retry_count: int, response: Response | None = None) -> float:
        """Return the seconds to wait before retry number ``retry_count + 1``.

        :param retry_count: the retries that have run.
        :param response: the failed response, whose Retry-After may set the delay.
        :raises ValueError: when ``retry_count`` is negative (from the backoff strategy).
        """
        cap = float(getattr(self.backoff_strategy, "max_backoff", 60.0))
        if self.respect_retry_after and response is not None:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None:
                return min(after, cap)
        delay = self.backoff_strategy.calculate_backoff(retry_count) * self.retry_interval_factor
        return max(0.0, delay)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a Retry-After value: delay-seconds or an HTTP-date (RFC 9110
    section 10.2.3); None when absent or malformed; a date in the past is 0."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def as_policy(retry: Any) -> RetryPolicy | None:
    """The Client's ``retry=`` argument as a policy: True means ``RetryPolicy()``,
    False or None none.

    Raises:
        TypeError: anything else.
    """
    if retry is None or retry is False:
        return None
    if retry is True:
        return RetryPolicy()
    if isinstance(retry, RetryPolicy):
        return retry
    raise TypeError(f"retry must be a RetryPolicy, True, False or None, not {type(retry).__name__}")
