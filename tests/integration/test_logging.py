"""The "hyperhttp" logger: connections at DEBUG, retries and breaker transitions at INFO, and
never a credential."""

from __future__ import annotations

import logging

import pytest

import hyperhttp
from hyperhttp.errors.retry import RetryPolicy
from hyperhttp.utils.backoff import ExponentialBackoff
from tests.servers.faults import Conn, keep_answering, respond

FAST = ExponentialBackoff(base=0.001, max_backoff=0.01, jitter=False)


async def test_connections_opened_reused_and_closed_at_debug(
    scripted, caplog: pytest.LogCaptureFixture
) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    with caplog.at_level(logging.DEBUG, logger="hyperhttp"):
        async with hyperhttp.Client() as client:
            for _ in range(3):
                assert await (await client.get(server.url)).aread() == b"ok"
    messages = [r.getMessage() for r in caplog.records if r.name == "hyperhttp"]
    assert any(m.startswith("connected to 127.0.0.1:") and "HTTP/1.1" in m for m in messages)
    assert sum(m == f"reusing a connection to {server.url}" for m in messages) == 2
    assert f"connection to {server.url} closed" in messages


async def test_retries_and_breaker_transitions_at_info_without_credentials(
    scripted, caplog: pytest.LogCaptureFixture
) -> None:
    answered = []

    def script(conn: Conn) -> None:
        while conn.read_request() is not None:
            answered.append(1)
            status = "503 Service Unavailable" if len(answered) <= 2 else "200 OK"
            conn.send(respond(status, body=b"x"))

    server = scripted(script)
    breakers = hyperhttp.DomainCircuitBreakerManager(
        {"failure_threshold": 2, "recovery_timeout": 60.0}
    )
    url = server.url.replace("http://", "http://user:s3cret@")
    with caplog.at_level(logging.DEBUG, logger="hyperhttp"):
        async with hyperhttp.Client(
            retry=RetryPolicy(max_retries=1, backoff_strategy=FAST),
            circuit_breaker_manager=breakers,
        ) as client:
            with pytest.raises(hyperhttp.RetryError):
                await client.get(url)
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("retrying GET to 127.0.0.1 in") for m in info)
    assert "circuit breaker for 127.0.0.1: closed -> open" in info
    assert all("s3cret" not in r.getMessage() for r in caplog.records)
