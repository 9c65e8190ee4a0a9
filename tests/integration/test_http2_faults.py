"""HTTP/2 faults from a scripted server (tests/servers/h2server.py): RST_STREAM, GOAWAY, refused
streams, MAX_CONCURRENT_STREAMS, hangs, cancellation, connection errors, the request as sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hyperhttp
from hyperhttp import ReadTimeout, RemoteProtocolError, StreamNotProcessed, TransportError
from tests.integration.conftest import Certs
from tests.servers.h2server import H2Server, pattern

Start = Callable[..., H2Server]


@pytest.fixture
def h2server(certs: Certs) -> Iterator[Start]:
    """Start scripted HTTP/2 servers (TLS unless ``tls=False``); all stop when the test ends."""
    servers: list[H2Server] = []

    def start(tls: bool = True, **options: Any) -> H2Server:
        options.setdefault("max_concurrent_streams", 100)
        if tls:
            server = H2Server(certs.server_cert, certs.server_key, **options)
        else:
            server = H2Server(**options)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def client(certs: Certs, **options: Any) -> hyperhttp.Client:
    return hyperhttp.Client(verify=certs.ca_path, timeout=10, **options)


async def test_a_reset_stream_fails_alone(h2server: Start, certs: Certs) -> None:
    server = h2server()
    async with client(certs) as c:
        good = [c.get(f"{server.url}/bytes/{n}") for n in range(1000, 1010)]
        results = await asyncio.gather(c.get(f"{server.url}/rst/2"), *good, return_exceptions=True)
        assert isinstance(results[0], RemoteProtocolError)
        assert "reset stream" in str(results[0]) and "INTERNAL_ERROR" in str(results[0])
        for n, response in zip(range(1000, 1010), results[1:], strict=True):
            assert isinstance(response, hyperhttp.Response)
            assert await response.aread() == pattern(n)
        # A reset in the middle of a body: the head came, the body fails; the connection lives.
        response = await c.get(f"{server.url}/rst-after-headers/2")
        assert response.status_code == 200
        with pytest.raises(RemoteProtocolError, match="reset stream"):
            await response.aread()
        assert await (await c.get(f"{server.url}/bytes/10")).aread() == pattern(10)
        stats = c.get_pool_stats()[server.url]
    assert server.connections == 1 and stats["connections"] == 1 and stats["streams"] == 0


async def test_refused_streams_are_replayed_only_when_idempotent(
    h2server: Start, certs: Certs
) -> None:
    server = h2server()
    async with client(certs) as c:
        with pytest.raises(StreamNotProcessed, match="REFUSED_STREAM"):
            await c.get(f"{server.url}/rst/7")
        assert server.streams == 4  # the request and three replays
        server.reset_counters()
        with pytest.raises(StreamNotProcessed, match="not idempotent"):
            await c.post(f"{server.url}/rst/7", content=b"once")
        assert server.streams == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_goaway_mid_traffic(h2server: Start, certs: Certs, method: str) -> None:
    server = h2server(goaway_after=10)
    content = b"x" if method == "POST" else None
    async with client(certs) as c:
        results = await asyncio.gather(
            *(c.request(method, f"{server.url}/bytes/{n}", content=content) for n in range(20)),
            return_exceptions=True,
        )
        done = [r for r in results if isinstance(r, hyperhttp.Response)]
        failed = [r for r in results if not isinstance(r, hyperhttp.Response)]
        for response in done:
            body = await response.aread()
            assert body == pattern(int(str(response.request.url).rsplit("/", 1)[1]))
    # Streams above the GOAWAY's last_stream_id were in flight and never answered.
    assert server.ignored
    if method == "GET":  # not processed, so sent again on a new connection
        assert len(done) == 20 and server.connections == 2
    else:  # those fail (and any whose HEADERS were still queued); later ones used a new connection
        assert len(failed) >= len(server.ignored) and len(done) == 20 - len(failed)
        assert all(isinstance(e, StreamNotProcessed) for e in failed)
        assert "not idempotent" in str(failed[0]) and "GOAWAY" in str(failed[0])


async def test_streams_below_the_goaway_complete(h2server: Start, certs: Certs) -> None:
    server = h2server(goaway_after=3)
    async with client(certs) as c:
        big = 3_000_000  # several windows: the stream goes on long after the GOAWAY
        responses = await asyncio.gather(*(c.get(f"{server.url}/bytes/{big}") for _ in range(3)))
        for response in responses:
            assert await response.aread() == pattern(big)
        assert await (await c.get(f"{server.url}/bytes/5")).aread() == pattern(5)
    assert server.connections == 2 and not server.ignored and not server.errors


@pytest.mark.parametrize("max_connections", [1, 100])
async def test_max_concurrent_streams_of_five_with_fifty_requests(
    h2server: Start, certs: Certs, max_connections: int
) -> None:
    one = max_connections == 1
    # On one connection /held answers when 5 are open at once: the requests go 5 by 5.
    server = h2server(max_concurrent_streams=5, hold_until=5 if one else None)
    async with client(certs, max_connections=max_connections) as c:
        tasks = [asyncio.ensure_future(c.get(f"{server.url}/held")) for _ in range(50)]
        await asyncio.sleep(0)
        responses = await asyncio.gather(*tasks)
        assert {r.status_code for r in responses} == {200}
        assert {await r.aread() for r in responses} == {b"released"}
        stats = c.get_pool_stats()[server.url]
    assert server.max_open_streams == 5 if one else server.max_open_streams <= 5
    assert not server.refused and not server.hold_timeouts and server.streams == 50
    if one:
        assert server.connections == 1 and stats["max_streams"] == 5
    else:  # streams ran out: more connections, each within the limit
        assert 2 <= server.connections <= 10


async def test_cancelling_a_request_resets_only_its_stream(h2server: Start, certs: Certs) -> None:
    server = h2server()
    async with client(certs) as c:
        hanging = asyncio.ensure_future(c.get(f"{server.url}/hang"))
        others = [asyncio.ensure_future(c.get(f"{server.url}/bytes/{n}")) for n in range(5)]
        assert await asyncio.to_thread(server.wait_until, lambda s: s.streams >= 6)
        hanging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging
        for n, task in enumerate(others):
            assert await (await task).aread() == pattern(n)
        assert await asyncio.to_thread(server.wait_until, lambda s: len(s.resets) == 1)
        assert server.resets[0][1] == 8  # CANCEL
        assert c.get_pool_stats()[server.url]["streams"] == 0
        assert await (await c.get(f"{server.url}/bytes/3")).aread() == pattern(3)
    assert server.connections == 1


async def test_a_read_timeout_resets_the_stream_not_the_connection(
    h2server: Start, certs: Certs
) -> None:
    server = h2server()
    async with client(certs) as c:
        with pytest.raises(ReadTimeout):
            await c.get(f"{server.url}/hang", timeout=hyperhttp.Timeout(10, read=0.2))
        assert await asyncio.to_thread(server.wait_until, lambda s: len(s.resets) == 1)
        assert await (await c.get(f"{server.url}/bytes/7")).aread() == pattern(7)
    assert server.connections == 1


@pytest.mark.parametrize("fault", ["close", "protocol-error"])
async def test_a_connection_error_fails_every_stream(
    h2server: Start, certs: Certs, fault: str
) -> None:
    server = h2server()
    async with client(certs) as c:
        hanging = [asyncio.ensure_future(c.get(f"{server.url}/hang")) for _ in range(3)]
        assert await asyncio.to_thread(server.wait_until, lambda s: s.streams >= 3)
        results = await asyncio.gather(
            c.get(f"{server.url}/{fault}"), *hanging, return_exceptions=True
        )
        assert all(isinstance(r, TransportError) for r in results), results
        if fault == "protocol-error":
            assert all(isinstance(r, RemoteProtocolError) for r in results)
            # We said why we left.
            assert await asyncio.to_thread(server.wait_until, lambda s: len(s.goaways) == 1)
        # The pool let the dead connection go: the next request gets a new one.
        assert await (await c.get(f"{server.url}/bytes/9")).aread() == pattern(9)
    assert server.connections == 2


async def test_the_request_as_sent(h2server: Start, certs: Certs) -> None:
    server = h2server(tls=False)
    async with hyperhttp.Client(http2_prior_knowledge=True) as c:
        response = await c.get(
            f"{server.url}/echo-headers?x=1",
            headers={"X-Mixed-Case": "v", "Connection": "keep-alive", "TE": "trailers"},
        )
        sent = json.loads(await response.aread())
    names = [name for name, _ in sent]
    assert names[:4] == [":method", ":scheme", ":authority", ":path"]
    fields = dict(sent)
    assert fields[":method"] == "GET" and fields[":scheme"] == "http"
    assert fields[":authority"] == server.url.split("//")[1]
    assert fields[":path"] == "/echo-headers?x=1"
    assert fields["x-mixed-case"] == "v" and fields["te"] == "trailers"
    assert "host" not in fields and "connection" not in fields


async def test_trailers_are_ignored_and_uploads_follow_a_tiny_window(
    h2server: Start, certs: Certs
) -> None:
    server = h2server(initial_window_size=1024)
    async with client(certs) as c:
        response = await c.get(f"{server.url}/trailers")
        assert await response.aread() == b"body before trailers\n"
        assert "x-checksum" not in response.headers
        body = pattern(300_000)
        response = await c.post(f"{server.url}/upload", content=body)
        assert json.loads(await response.aread()) == {
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    assert not server.errors
