"""Retries, circuit breakers and telemetry against servers that fail on demand."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

import hyperhttp
from hyperhttp.errors.circuit_breaker import CircuitBreakerState, DomainCircuitBreakerManager
from hyperhttp.errors.retry import IDEMPOTENT_METHODS, RetryError, RetryPolicy
from hyperhttp.errors.telemetry import ErrorTelemetry
from hyperhttp.utils.backoff import ExponentialBackoff
from tests.servers.faults import Conn, close_on_second_request, keep_answering, respond
from tests.unit.fakes import FakeClock

FAST = ExponentialBackoff(base=0.001, max_backoff=0.01, jitter=False)


def answers(*responses: bytes):  # type: ignore[no-untyped-def]
    """A script answering the server's requests, across connections, with ``responses`` in
    turn (the last one repeated)."""
    sent = []

    def script(conn: Conn) -> None:
        while conn.read_request() is not None:
            response = responses[min(len(sent), len(responses) - 1)]
            sent.append(response)
            conn.send(response)

    return script


UNAVAILABLE = respond("503 Service Unavailable", body=b"busy")
OK = respond(body=b"ok")


async def test_a_503_then_200_is_retried(scripted) -> None:
    server = scripted(answers(UNAVAILABLE, OK))
    async with hyperhttp.Client(retry=RetryPolicy(backoff_strategy=FAST)) as client:
        response = await client.get(server.url)
        assert response.status_code == 200 and await response.aread() == b"ok"
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("7", 0.05), ("past", 0.0), ("future", 0.05), ("garbage", None)],
)
async def test_retry_after_seconds_and_dates_capped_at_the_backoff_maximum(
    scripted, value: str, expected: float | None
) -> None:
    now = datetime.now(timezone.utc)
    field = {
        "past": format_datetime(now - timedelta(seconds=30), usegmt=True),
        "future": format_datetime(now + timedelta(seconds=30), usegmt=True),
    }.get(value, value)
    server = scripted(
        keep_answering(respond("503 Service Unavailable", headers=(f"Retry-After: {field}",)))
    )
    backoff = ExponentialBackoff(base=0.002, max_backoff=0.05, jitter=False)
    policy = RetryPolicy(max_retries=1, backoff_strategy=backoff)
    async with hyperhttp.Client(retry=policy) as client:
        with pytest.raises(RetryError) as info:
            await client.get(server.url)
    first = info.value.retry_state.attempts[0]
    assert first.status == 503
    if expected is None:  # not a Retry-After value: the backoff's own delay
        assert first.delay == 0.002
    else:
        assert first.delay == pytest.approx(expected, abs=1e-6)


async def test_a_reset_then_success_is_retried(scripted) -> None:
    attempts = []

    def script(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        attempts.append(1)
        if len(attempts) == 1:
            conn.reset()
            return
        conn.send(OK)
        keep_answering(OK)(conn)

    server = scripted(script)
    async with hyperhttp.Client(retry=RetryPolicy(backoff_strategy=FAST)) as client:
        assert await (await client.get(server.url)).aread() == b"ok"
    assert server.accepted == 2


async def test_post_is_not_retried_unless_allowed(scripted) -> None:
    server = scripted(answers(UNAVAILABLE, OK))
    async with hyperhttp.Client(retry=RetryPolicy(backoff_strategy=FAST)) as client:
        response = await client.post(server.url, content=b"x")
        assert response.status_code == 503  # the response is the caller's, not retried
        await response.aread()
    assert len(server.requests) == 1
    server = scripted(answers(UNAVAILABLE, OK))
    allowed = RetryPolicy(backoff_strategy=FAST, allowed_methods={"POST", *IDEMPOTENT_METHODS})
    async with hyperhttp.Client(retry=allowed) as client:
        assert (await client.post(server.url, content=b"x")).status_code == 200
    assert len(server.requests) == 2


async def test_a_streamed_body_is_not_retried(scripted) -> None:
    server = scripted(answers(UNAVAILABLE, OK))

    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    allowed = RetryPolicy(backoff_strategy=FAST, allowed_methods={"PUT"})
    async with hyperhttp.Client(retry=allowed) as client:
        assert (await client.put(server.url, content=body())).status_code == 503
    assert len(server.requests) == 1


async def test_retries_run_out_into_a_retry_error_with_every_attempt(scripted) -> None:
    server = scripted(keep_answering(UNAVAILABLE))
    policy = RetryPolicy(max_retries=2, backoff_strategy=FAST)
    async with hyperhttp.Client(retry=policy) as client:
        with pytest.raises(RetryError) as info:
            await client.get(server.url)
        stats = client.get_pool_stats()[server.url]
    state = info.value.retry_state
    assert state.attempt_count == 3 and len(state.attempts) == 3
    assert [a.status for a in state.attempts] == [503, 503, 503]
    assert state.last_error_category == "SERVER"
    error = info.value.original_exception
    assert isinstance(error, hyperhttp.HTTPStatusError)
    assert error.response.status_code == 503 and error.response.content == b"busy"
    assert len(server.requests) == 3
    assert stats["in_use"] == 0  # every retried response was drained, its connection returned


async def test_an_error_not_retried_is_the_original_typed_exception(scripted) -> None:
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: nonsense\r\n\r\n")

    server = scripted(script)
    async with hyperhttp.Client(retry=RetryPolicy(backoff_strategy=FAST)) as client:
        with pytest.raises(hyperhttp.RemoteProtocolError):  # PROTOCOL: not retried
            await client.get(server.url)
    assert len(server.requests) == 1


async def test_per_request_retry_false_bypasses_the_policy(scripted) -> None:
    server = scripted(answers(UNAVAILABLE, OK))
    async with hyperhttp.Client(retry=True) as client:
        response = await client.get(server.url, retry=False)
        assert response.status_code == 503
        await response.aread()
    assert len(server.requests) == 1


def _refusing_port() -> int:
    """A port on 127.0.0.2 with nothing listening: connects are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return int(sock.getsockname()[1])


async def test_a_breaker_opens_fails_fast_and_closes_again_after_a_probe(scripted) -> None:
    clock = FakeClock()
    breakers = DomainCircuitBreakerManager(
        {"failure_threshold": 3, "recovery_timeout": 30.0, "success_threshold": 1}, clock=clock
    )
    telemetry = ErrorTelemetry()
    port = _refusing_port()
    healthy = scripted(keep_answering(OK))
    async with hyperhttp.Client(circuit_breaker_manager=breakers, telemetry=telemetry) as client:
        for _ in range(3):
            with pytest.raises(hyperhttp.ConnectError):
                await client.get(f"http://127.0.0.2:{port}/")
        breaker = breakers.get_circuit_breaker("127.0.0.2")
        assert breaker.state is CircuitBreakerState.OPEN
        listener = socket.socket()
        listener.bind(("127.0.0.2", port))
        listener.listen(8)
        listener.setblocking(False)
        try:
            with pytest.raises(hyperhttp.CircuitBreakerOpen) as info:
                await client.get(f"http://127.0.0.2:{port}/")
            assert info.value.host == "127.0.0.2" and 0 < info.value.remaining <= 30.0
            with pytest.raises(BlockingIOError):
                listener.accept()  # nothing connected while the breaker was open
        finally:
            listener.close()
        # another host is not affected
        assert await (await client.get(healthy.url)).aread() == b"ok"
        clock.now += 31.0
        assert breaker.state is CircuitBreakerState.HALF_OPEN
        with pytest.raises(hyperhttp.ConnectError):  # the probe fails: open again
            await client.get(f"http://127.0.0.2:{port}/")
        assert breaker.state is CircuitBreakerState.OPEN
        clock.now += 31.0

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(OK)
            await writer.drain()
            writer.close()

        recovered = await asyncio.start_server(answer, "127.0.0.2", port)
        try:  # the probe succeeds: closed again
            assert await (await client.get(f"http://127.0.0.2:{port}/")).aread() == b"ok"
        finally:
            recovered.close()
        assert breaker.state is CircuitBreakerState.CLOSED
    report = await telemetry.get_domain_report("127.0.0.2")
    assert report is not None
    assert (
        report["errors_by_category"]["CONNECTION"] == 4
    )  # the three refusals and the failed probe


async def test_the_pools_own_replay_is_a_replay_for_telemetry_not_a_retry(scripted) -> None:
    """The stale keep-alive race: the pool sends the GET again on a new connection itself.
    Telemetry sees a replay; the retry policy is not involved (no retry counted)."""
    server = scripted(close_on_second_request(threading.Event()))
    telemetry = ErrorTelemetry()
    async with hyperhttp.Client(
        retry=RetryPolicy(backoff_strategy=FAST), telemetry=telemetry
    ) as client:
        assert await (await client.get(server.url)).aread() == b"first"
        assert await (await client.get(server.url)).aread() == b"fresh"
    report = await telemetry.get_domain_report("127.0.0.1")
    assert report is not None
    assert report["replays"] == 1 and report["retries"] == 0 and report["total_errors"] == 0
    assert report["total_successes"] == 2
    assert server.accepted == 2


async def test_a_failing_telemetry_hook_never_fails_the_request(scripted) -> None:
    class Broken(ErrorTelemetry):
        def record(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("exporter down")

    server = scripted(answers(UNAVAILABLE, OK))
    async with hyperhttp.Client(
        retry=RetryPolicy(backoff_strategy=FAST), telemetry=Broken()
    ) as client:
        assert (await client.get(server.url)).status_code == 200
    assert len(server.requests) == 2


async def test_each_redirect_hop_is_retried_on_its_own(scripted) -> None:
    seen: list[bytes] = []

    def script(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            path = request.split(b" ")[1]
            seen.append(path)
            if path == b"/a":
                conn.send(respond("302 Found", headers=("Location: /b",)))
            elif seen.count(b"/b") == 1:
                conn.send(UNAVAILABLE)
            else:
                conn.send(OK)

    server = scripted(script)
    policy = RetryPolicy(backoff_strategy=FAST)
    async with hyperhttp.Client(retry=policy, follow_redirects=True) as client:
        response = await client.get(f"{server.url}/a")
        assert response.status_code == 200 and await response.aread() == b"ok"
        assert [r.status_code for r in response.history] == [302]
    assert seen == [b"/a", b"/b", b"/b"]


async def test_telemetry_counts_what_happened(scripted) -> None:
    server = scripted(answers(UNAVAILABLE, UNAVAILABLE, OK))
    telemetry = ErrorTelemetry()
    async with hyperhttp.Client(
        retry=RetryPolicy(backoff_strategy=FAST), telemetry=telemetry
    ) as client:
        assert (await client.get(server.url)).status_code == 200
        assert (await client.get(server.url)).status_code == 200
    report = await telemetry.get_domain_report("127.0.0.1")
    assert report is not None
    assert report["total_errors"] == 2 and report["retries"] == 2
    assert report["total_successes"] == 2 and report["replays"] == 0
    assert report["errors_by_category"] == {"SERVER": 2}
    assert report["status_codes"] == {503: 2}
    assert report["last_60s"]["errors"] == 2
    assert await telemetry.get_all_domains() == ["127.0.0.1"]
    assert telemetry.snapshot()["domains"]["127.0.0.1"]["total_errors"] == 2


async def test_a_client_status_in_the_force_list_is_retried(scripted) -> None:
    """A 4xx the user lists in status_force_list is retried like a 503 (a 4xx not listed is
    the caller's at once)."""
    server = scripted(answers(respond("404 Not Found"), OK))
    policy = RetryPolicy(backoff_strategy=FAST, status_force_list=[404])
    async with hyperhttp.Client(retry=policy) as client:
        assert (await client.get(server.url)).status_code == 200
    assert len(server.requests) == 2
    server = scripted(answers(respond("404 Not Found"), OK))
    async with hyperhttp.Client(retry=RetryPolicy(backoff_strategy=FAST)) as client:
        assert (await client.get(server.url)).status_code == 404
    assert len(server.requests) == 1
