"""max_connections_per_host: a hard cap per origin beside the global one (politeness for
crawlers), counted from the server's sockets; HTTP/2 counts streams in flight."""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

import pytest

import hyperhttp
from tests.integration.conftest import Certs
from tests.servers.faults import Conn, ScriptedServer, keep_answering, respond
from tests.servers.hypercorn_app import HypercornServer, pattern


async def test_the_cap_holds_under_a_burst(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client(max_connections=100, max_connections_per_host=3) as client:

        async def fetch() -> bytes:
            return await (await client.get(server.url)).aread()

        results = await asyncio.gather(*(fetch() for _ in range(60)))
        stats = client.get_pool_stats()[server.url]
    assert results == [b"ok"] * 60
    assert server.peak == 3  # sockets, as the server counted them: reached, never passed
    assert server.accepted == 3
    assert stats["requests"] == 60 and stats["waiting"] == 0


async def test_both_caps_hold_together(scripted: Callable[..., ScriptedServer]) -> None:
    servers = [scripted(keep_answering(respond(body=b"ok"))) for _ in range(3)]
    async with hyperhttp.Client(max_connections=4, max_connections_per_host=2) as client:

        async def fetch(i: int) -> bytes:
            return await (await client.get(servers[i % 3].url)).aread()

        results = await asyncio.gather(*(fetch(i) for i in range(90)))
    assert results == [b"ok"] * 90
    assert max(server.peak for server in servers) <= 2
    assert (
        sum(server.peak for server in servers) <= 6
    )  # each its own peak; never more than 4 at once


async def test_a_capped_origin_does_not_hold_up_another(
    scripted: Callable[..., ScriptedServer],
) -> None:
    release = threading.Event()

    def slow(conn: Conn) -> None:
        while conn.read_request() is not None:
            release.wait(10)  # held until the other origin has been served
            conn.send(respond(body=b"slow"))

    busy = scripted(slow)
    other = scripted(keep_answering(respond(body=b"fast")))
    async with hyperhttp.Client(max_connections=10, max_connections_per_host=2) as client:
        queued = [asyncio.ensure_future(client.get(busy.url)) for _ in range(6)]
        for _ in range(50):  # bounded: until the two connections are open and the rest wait
            await asyncio.sleep(0)
            if client.get_pool_stats().get(busy.url, {}).get("waiting") == 4:
                break
        assert client.get_pool_stats()[busy.url]["waiting"] == 4
        assert await (await client.get(other.url)).aread() == b"fast"
        release.set()
        bodies = [await (await request).aread() for request in queued]
    assert bodies == [b"slow"] * 6
    assert busy.peak == 2


async def test_http2_counts_streams(hypercorn_h2: HypercornServer, certs: Certs) -> None:
    seen: list[int] = []
    url = f"{hypercorn_h2.url}/bytes/20000"

    async def sample(response: hyperhttp.Response) -> None:
        seen.append(client.get_pool_stats()[hypercorn_h2.url]["streams"])

    client = hyperhttp.Client(
        verify=certs.ca_path, max_connections_per_host=4, event_hooks={"response": [sample]}
    )
    async with client:

        async def fetch() -> bytes:
            response = await client.get(url)
            assert response.http_version == "HTTP/2"
            return await response.aread()

        results = await asyncio.gather(*(fetch() for _ in range(40)))
    assert results == [pattern(20000)] * 40
    assert max(seen) <= 4  # streams in flight whenever a response arrived
    assert max(seen) == 4  # and the cap was reached: the burst did run 4 at a time


def test_the_cap_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_connections_per_host"):
        hyperhttp.Client(max_connections_per_host=0)


async def test_at_the_global_cap_an_http2_origin_still_gets_one_connection(
    scripted: Callable[..., ScriptedServer], hypercorn_h2: HypercornServer, certs: Certs
) -> None:
    """Requests to a new HTTP/2 origin that queue for room under the global cap (held by
    another origin) wait for the one connection the first of them opens, as they would if
    there were room: they do not each open their own."""
    release = threading.Event()

    def slow(conn: Conn) -> None:
        while conn.read_request() is not None:
            release.wait(10)
            conn.send(respond(body=b"slow"))

    busy = scripted(slow)
    hypercorn_h2.reset_connections()
    async with hyperhttp.Client(verify=certs.ca_path, max_connections=2) as client:
        held = [asyncio.ensure_future(client.get(busy.url)) for _ in range(2)]
        h2 = [asyncio.ensure_future(client.get(f"{hypercorn_h2.url}/bytes/100")) for _ in range(20)]
        for _ in range(50):  # bounded: until the h2 requests queue behind the cap
            await asyncio.sleep(0)
            if client.get_pool_stats().get(hypercorn_h2.url, {}).get("waiting") == 20:
                break
        assert client.get_pool_stats()[hypercorn_h2.url]["waiting"] == 20
        release.set()
        for response in await asyncio.gather(*held):
            assert await response.aread() == b"slow"
        bodies = [await (await request).aread() for request in h2]
    assert bodies == [pattern(100)] * 20
    assert hypercorn_h2.connections() == 1
