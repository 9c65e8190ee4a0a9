"""Per-phase timings of a request, in response.extensions["timings"] (Client(timings=True))."""

from __future__ import annotations

import asyncio

import pytest

import hyperhttp
from tests.integration.conftest import Certs
from tests.servers.faults import keep_answering, respond
from tests.servers.hypercorn_app import HypercornServer

PHASES = {"pool", "write", "first_byte"}


def _check(timings: dict[str, float], new: set[str]) -> None:
    assert set(timings) == PHASES | new
    assert all(isinstance(v, float) and 0.0 <= v < 5.0 for v in timings.values()), timings


async def test_timings_of_a_new_connection_and_a_reused_one(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client(timings=True) as client:
        first = await client.get(server.url)
        await first.aread()
        second = await client.get(server.url)
        await second.aread()
    _check(first.extensions["timings"], {"dns", "connect"})  # no TLS over http
    _check(second.extensions["timings"], set())  # reused: no connect phases
    assert second.extensions["timings"]["first_byte"] > 0.0
    assert first.extensions["timings"]["connect"] > 0.0


async def test_timings_over_tls_and_http2(
    hypercorn_tls: HypercornServer, hypercorn_h2: HypercornServer, certs: Certs
) -> None:
    async with hyperhttp.Client(verify=certs.ca_path, timings=True, http2=False) as client:
        response = await client.get(f"{hypercorn_tls.url}/bytes/10")
        await response.aread()
        _check(response.extensions["timings"], {"dns", "connect", "tls"})
        assert response.extensions["timings"]["tls"] > 0.0
    async with hyperhttp.Client(verify=certs.ca_path, timings=True) as client:
        responses = await asyncio.gather(
            *(client.get(f"{hypercorn_h2.url}/bytes/{n}") for n in range(8))
        )
        assert {r.http_version for r in responses} == {"HTTP/2"}
        for response in responses:
            await response.aread()
            assert PHASES <= set(response.extensions["timings"])
            assert response.extensions["timings"]["first_byte"] > 0.0


async def test_timings_of_requests_that_waited_for_a_connection(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client(timings=True, max_connections=1) as client:
        responses = await asyncio.gather(*(client.get(server.url) for _ in range(5)))
        for response in responses:
            await response.aread()
            assert PHASES <= set(response.extensions["timings"])
        waited = [r.extensions["timings"]["pool"] for r in responses[1:]]
        assert all(w > 0.0 for w in waited)  # each queued behind the one before it


@pytest.mark.parametrize("timings", [False])
async def test_no_timings_unless_asked(scripted, timings: bool) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client(timings=timings) as client:
        response = await client.get(server.url)
        await response.aread()
    assert "timings" not in (response.extensions or {})
