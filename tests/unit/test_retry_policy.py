"""RetryPolicy's decisions and Retry-After parsing, without a network."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

import hyperhttp
from hyperhttp.errors.retry import IDEMPOTENT_METHODS, RetryPolicy, as_policy, retry_after
from hyperhttp.utils.backoff import ExponentialBackoff

STEADY = ExponentialBackoff(base=0.5, factor=2.0, max_backoff=4.0, jitter=False)


def test_defaults_are_the_2x_ones() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 3
    assert policy.retry_categories == {"TRANSIENT", "TIMEOUT", "SERVER"}
    assert policy.status_force_list == {429, 500, 502, 503, 504}
    assert isinstance(policy.backoff_strategy, ExponentialBackoff)
    assert policy.allowed_methods == IDEMPOTENT_METHODS
    assert not policy.allows("POST") and policy.allows("get")


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (hyperhttp.ReadError("reset"), True),  # TRANSIENT
        (hyperhttp.ReadTimeout("late"), True),  # TIMEOUT
        (hyperhttp.ConnectError("refused"), False),  # CONNECTION: not in the default set
        (hyperhttp.TLSError("bad certificate"), False),
        (hyperhttp.RemoteProtocolError("malformed"), False),
        (hyperhttp.LocalProtocolError("bad header"), False),
    ],
)
def test_errors_are_retried_by_category(error: Exception, retried: bool) -> None:
    go, delay = RetryPolicy(backoff_strategy=STEADY).should_retry(error)
    assert go is retried
    assert delay == (0.5 if retried else 0.0)


def test_the_backoff_grows_to_its_cap_and_retries_stop_at_max_retries() -> None:
    policy = RetryPolicy(max_retries=5, backoff_strategy=STEADY, retry_interval_factor=1.0)
    error = hyperhttp.ReadError("reset")
    delays = [policy.should_retry(error, None, n) for n in range(6)]
    assert delays == [(True, 0.5), (True, 1.0), (True, 2.0), (True, 4.0), (True, 4.0), (False, 0.0)]
    scaled = RetryPolicy(backoff_strategy=STEADY, retry_interval_factor=0.5)
    assert scaled.should_retry(error, None, 1) == (True, 0.5)


@pytest.mark.parametrize(
    ("status", "retried"), [(503, True), (429, True), (500, True), (404, False), (501, False)]
)
def test_statuses_are_retried_from_the_force_list(status: int, retried: bool) -> None:
    response = hyperhttp.Response(status)
    assert RetryPolicy(backoff_strategy=STEADY).should_retry(None, response)[0] is retried


def test_retry_after_replaces_the_backoff_capped_at_its_maximum() -> None:
    policy = RetryPolicy(backoff_strategy=STEADY)
    assert policy.delay(0, hyperhttp.Response(503, headers={"Retry-After": "2"})) == 2.0
    assert policy.delay(0, hyperhttp.Response(503, headers={"Retry-After": "120"})) == 4.0
    assert policy.delay(1, hyperhttp.Response(503, headers={"Retry-After": "soon"})) == 1.0
    ignoring = RetryPolicy(backoff_strategy=STEADY, respect_retry_after=False)
    assert ignoring.delay(0, hyperhttp.Response(503, headers={"Retry-After": "2"})) == 0.5


def test_retry_after_values() -> None:
    now = datetime(2026, 12, 2, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    later = format_datetime(datetime(2026, 12, 2, 12, 0, 30, tzinfo=timezone.utc), usegmt=True)
    earlier = format_datetime(datetime(2026, 12, 2, 11, 0, 0, tzinfo=timezone.utc), usegmt=True)
    assert retry_after("30", now) == 30.0
    assert retry_after(" 0 ", now) == 0.0
    assert retry_after(later, now) == 30.0
    assert retry_after(earlier, now) == 0.0  # a date in the past: now
    assert retry_after("Wed, 02 Dec 2026 12:00:30 GMT", now) == 30.0  # RFC 9110's IMF-fixdate
    for bad in (None, "", "-1", "1.5", "tomorrow", "Wed, 99 Foo 2026"):
        assert retry_after(bad, now) is None


def test_as_policy_and_argument_checks() -> None:
    assert as_policy(None) is None and as_policy(False) is None
    assert isinstance(as_policy(True), RetryPolicy)
    policy = RetryPolicy(max_retries=0)
    assert as_policy(policy) is policy
    assert policy.should_retry(hyperhttp.ReadError("x")) == (False, 0.0)
    with pytest.raises(TypeError):
        as_policy(3)
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(retry_interval_factor=-0.1)


def test_jittered_delays_stay_within_the_backoff(  # seeded: the same run every time
) -> None:
    backoff = ExponentialBackoff(base=0.5, max_backoff=8.0, rng=random.Random(7))
    policy = RetryPolicy(max_retries=10, backoff_strategy=backoff)
    for n in range(10):
        go, delay = policy.should_retry(hyperhttp.ReadError("x"), None, n)
        assert go and 0.0 <= delay <= min(0.5 * 2**n, 8.0)
