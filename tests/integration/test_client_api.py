"""The public API's shapes against a real server: ``client.stream`` both ways, the 2.x keys of
``get_pool_stats``, and the verbs' real signatures."""

from __future__ import annotations

import inspect
from typing import Callable, get_type_hints

import pytest

import hyperhttp
from hyperhttp import Client
from hyperhttp._client import RequestOptions
from tests.servers.faults import Conn, Script, ScriptedServer
from tests.servers.hypercorn_app import HypercornServer, pattern


async def test_async_with_client_stream_without_await(hypercorn: HypercornServer) -> None:
    async with Client() as client:
        async with client.stream("GET", f"{hypercorn.url}/chunked/200000") as response:
            assert response.status_code == 200
            received = b"".join([piece async for piece in response.aiter_bytes()])
        assert received == pattern(200_000)
        assert response.is_closed
        assert client.get_pool_stats()[hypercorn.url]["idle"] == 1  # the connection came back


async def test_leaving_async_with_early_releases_the_connection(hypercorn: HypercornServer) -> None:
    async with Client() as client:
        async with client.stream("GET", f"{hypercorn.url}/bytes/1000000") as response:
            async for _ in response.aiter_raw():
                break
        assert response.is_closed
        stats = client.get_pool_stats()[hypercorn.url]
        assert stats["in_use"] == 0  # closed unread: not held, and not returned half-read
        again = await client.get(f"{hypercorn.url}/bytes/10")
        assert await again.aread() == pattern(10)


async def test_async_with_await_client_stream_as_the_seed_writes_it(
    hypercorn: HypercornServer,
) -> None:
    async with Client() as client:
        async with await client.stream("POST", f"{hypercorn.url}/echo", json={"a": 1}) as response:
            await response.aread()
        assert response.json()["body"] == '{"a":1}'
        response = await client.stream("GET", f"{hypercorn.url}/bytes/5")  # awaited alone
        assert await response.aread() == pattern(5)


async def test_a_stream_failing_to_start_raises_from_async_with(closed_port: int) -> None:
    async with Client() as client:
        with pytest.raises(hyperhttp.ConnectError):
            async with client.stream("GET", f"http://127.0.0.1:{closed_port}/"):
                pytest.fail("not reached")  # pragma: no cover


def _half_a_body(conn: Conn) -> None:
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        conn.stall()  # the rest never comes: the response holds its connection


async def test_pool_stats_have_the_2x_keys(scripted: Callable[[Script], ScriptedServer]) -> None:
    server = scripted(_half_a_body)
    async with Client() as client:
        response = await client.get(server.url)
        entry = client.get_pool_stats()[server.url]
        assert (entry["active"], entry["idle"], entry["in_use"]) == (1, 0, 1)
        assert (entry["pending"], entry["waiters"], entry["total_connections"]) == (0, 0, 1)
        await response.aclose()
        entry = client.get_pool_stats()[server.url]
        assert (entry["active"], entry["total_connections"], entry["connections"]) == (0, 0, 0)


async def test_pool_stats_are_found_by_the_2x_host_port_key(hypercorn: HypercornServer) -> None:
    async with Client() as client:
        await (await client.get(f"{hypercorn.url}/bytes/10")).aread()
        stats = client.get_pool_stats()
        authority = hypercorn.url.split("://", 1)[1]  # "127.0.0.1:port", the 2.x key
        assert stats[authority] is stats[hypercorn.url]
        assert authority in stats and stats.get(authority) is stats[hypercorn.url]
        assert stats[authority]["idle"] == 1 and stats[authority]["total_connections"] == 1
        assert "127.0.0.1:1" not in stats and stats.get("127.0.0.1:1") is None
        with pytest.raises(KeyError):
            stats["127.0.0.1:1"]
        assert list(stats) == [hypercorn.url]  # iteration shows the origins as they are


def test_the_verbs_have_the_options_of_request_as_their_signature() -> None:
    request = inspect.signature(Client.request)
    options = [name for name in request.parameters if name not in ("self", "method", "url")]
    assert sorted(options) == sorted(get_type_hints(RequestOptions))  # no option left out
    for verb in ("get", "head", "options", "delete", "post", "put", "patch"):
        signature = inspect.signature(getattr(Client, verb))
        assert list(signature.parameters) == ["self", "url", *options], verb
        assert signature.parameters["retry"].default is True
    assert repr(request.parameters["timeout"].default) == "<the Client's setting>"
    assert get_type_hints(Client.stream)["return"] is hyperhttp._client.StreamContext
