"""The retry policy, the circuit breakers and the telemetry around one network attempt.

The Client's pipeline is redirects -> auth -> this -> cookies -> hooks -> transport, so each hop of
a redirect and each step of an auth flow is retried on its own, and every retry goes through the
jar and the hooks again. Nothing here runs unless one of the three is configured.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ._redirects import discard
from .errors.classifier import CLIENT, ErrorClassifier
from .errors.retry import RetryError, RetryPolicy, RetryState, as_policy
from .exceptions import HTTPStatusError, HyperHTTPError

if TYPE_CHECKING:
    from ._models import Response
    from ._request import Request
    from .errors.circuit_breaker import DomainCircuitBreakerManager
    from .errors.telemetry import ErrorTelemetry

__all__ = ["Attempt", "Resilience"]

Attempt = Callable[["Request"], Awaitable["Response"]]
logger = logging.getLogger("hyperhttp")


class Resilience:
    """What the Client was given of ``retry``, ``circuit_breaker_manager`` and ``telemetry``."""

    __slots__ = ("policy", "breakers", "telemetry")

    def __init__(
        self,
        policy: RetryPolicy | None,
        breakers: DomainCircuitBreakerManager | None,
        telemetry: ErrorTelemetry | None,
    ) -> None:
        self.policy = policy
        self.breakers = breakers
        self.telemetry = telemetry

    @classmethod
    def of(cls, retry: Any, breakers: Any, telemetry: Any) -> Resilience | None:
        """None when none of the three is configured (the Client's fast path)."""
        policy = as_policy(retry)
        if policy is None and breakers is None and telemetry is None:
            return None
        return cls(policy, breakers, telemetry)

    def wrap(self, attempt: Attempt, retry: bool) -> Attempt:
        """``attempt`` under the breakers and telemetry, and the policy unless ``retry`` is
        False (a per-request ``retry=False``)."""

        async def attempts(request: Request) -> Response:
            return await self.send(request, attempt, retry)

        return attempts

    async def send(self, request: Request, attempt: Attempt, retry: bool = True) -> Response:
        """Run ``attempt`` until it succeeds or the policy gives up."""
        policy = self.policy if retry else None
        if policy is not None and (not policy.allows(request.method) or not request.replayable):
            policy = None  # never retried: the breakers and the telemetry still see it
        host = request.url.host
        breaker = self.breakers.get_circuit_breaker(host) if self.breakers is not None else None
        state: RetryState | None = None
        retries = 0
        while True:
            if breaker is not None:
                before = breaker.state
                breaker.check(host)  # CircuitBreakerOpen: nothing is sent
            judged = False
            try:
                response = await attempt(request)
            except HyperHTTPError as exc:
                category = ErrorClassifier.categorize(exc)
                if breaker is not None:
                    breaker.record_failure(category)
                    judged = True
                    _transition(host, before, breaker.state)
                go, delay = (
                    policy.should_retry(exc, None, retries) if policy is not None else (False, 0.0)
                )
                self._tell(host, category, retried=go)
                state = _failed(state, request, retries, category, exc, None, delay if go else 0.0)
                if not go:
                    if retries == 0:
                        raise
                    raise RetryError(
                        f"{request.method} {request.url} failed after {state.attempt_count} "
                        f"attempts: {exc}",
                        exc,
                        state,
                    ) from exc
            except BaseException:
                if breaker is not None and not judged:
                    breaker.release()  # cancelled: no verdict on the host
                raise
            else:
                status = response.status_code
                failure = ErrorClassifier.categorize(None, response) if status >= 400 else None
                forced = policy is not None and status in policy.status_force_list
                if failure is None or (failure == CLIENT and not forced):  # the host is fine
                    if breaker is not None:
                        breaker.record_success()
                        _transition(host, before, breaker.state)
                    self._tell(host, None)
                    return response
                if breaker is not None:
                    breaker.record_failure(failure)
                    _transition(host, before, breaker.state)
                go, delay = (
                    policy.should_retry(None, response, retries)
                    if policy is not None
                    else (False, 0.0)
                )
                self._tell(host, failure, retried=go, status=status)
                if not forced:
                    return response  # a status the policy does not retry: the caller's
                state = _failed(state, request, retries, failure, None, status, delay)
                if not go:
                    # The body is the caller's to see, and the connection goes back.
                    await response.aread()
                    error = HTTPStatusError(
                        f"{status} from {request.url} after {state.attempt_count} attempts",
                        request=request,
                        response=response,
                    )
                    raise RetryError(str(error), error, state)
                await discard(response)  # drained, its connection returned, before the next try
            if logger.isEnabledFor(logging.INFO):  # the host only: never credentials
                logger.info(
                    "retrying %s to %s in %.2fs: attempt %d failed (%s)",
                    request.method,
                    host,
                    delay,
                    retries + 1,
                    state.last_error_category,
                )
            if delay > 0:
                await asyncio.sleep(delay)
            retries += 1

    def replayed(self, host: str) -> None:
        """The pool sent a request again itself (a stale keep-alive connection, or HTTP/2
        streams the server did not process): telemetry counts it as a replay, not a retry."""
        self._tell(host, "TRANSIENT", replay=True)

    def _tell(self, host: str, category: str | None, **flags: Any) -> None:
        """Telemetry of an attempt: a success (``category`` None) or a failure. A failing
        telemetry hook never fails the request."""
        telemetry = self.telemetry
        if telemetry is None:
            return
        try:
            if category is None:
                telemetry.record_success(host)
            else:
                telemetry.record(host, category, **flags)
        except Exception:
            logger.debug("telemetry hook failed", exc_info=True)


def _failed(
    state: RetryState | None,
    request: Request,
    retries: int,
    category: str,
    error: BaseException | None,
    status: int | None,
    delay: float,
) -> RetryState:
    """``state`` (made at the first failure) with attempt ``retries + 1`` noted as failed."""
    if state is None:
        state = RetryState(request.method, str(request.url))
    state.attempt_count = retries + 1
    state.failed(category, error, status, delay)
    return state


def _transition(host: str, before: Any, after: Any) -> None:
    """Breaker transitions are logged at INFO."""
    if after is not before and logger.isEnabledFor(logging.INFO):
        logger.info("circuit breaker for %s: %s -> %s", host, before.value, after.value)
