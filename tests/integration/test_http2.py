"""HTTP/2 against hypercorn: ALPN, multiplexing on one connection, flow control both ways, h2c.

hypercorn counts the TCP connections it saw (distinct client ports); the pool's stats count
streams. Faults that hypercorn does not produce on demand (RST_STREAM, GOAWAY, refused streams,
hangs) are in test_http2_faults.py against a scripted HTTP/2 server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest

import hyperhttp
from hyperhttp import LocalProtocolError, MultipartFile
from hyperhttp.proto.h2 import STREAM_WINDOW
from tests.integration.conftest import Certs
from tests.servers.faults import Conn, keep_answering, respond
from tests.servers.hypercorn_app import HypercornServer, pattern
from tests.servers.process import hypercorn_process, read_slowly, rss

MB = 1_000_000


async def test_two_hundred_concurrent_requests_use_one_connection(
    hypercorn_h2: HypercornServer, certs: Certs
) -> None:
    hypercorn_h2.reset_connections()
    async with hyperhttp.Client(verify=certs.ca_path) as client:
        responses = await asyncio.gather(
            *(client.get(f"{hypercorn_h2.url}/bytes/{n}") for n in range(200))
        )
        assert {r.http_version for r in responses} == {"HTTP/2"}
        for n, response in enumerate(responses):
            assert await response.aread() == pattern(n)
        stats = client.get_pool_stats()[hypercorn_h2.url]
    assert hypercorn_h2.connections() == 1
    assert stats["connections"] == 1 and stats["requests"] == 200
    assert stats["streams"] == 0 and stats["max_streams"] == 250


async def test_a_second_connection_opens_only_when_streams_run_out(
    hypercorn_tls: HypercornServer, certs: Certs
) -> None:
    hypercorn_tls.reset_connections()  # this server allows 100 streams per connection
    async with hyperhttp.Client(verify=certs.ca_path) as client:
        responses = await asyncio.gather(
            *(client.get(f"{hypercorn_tls.url}/bytes/100") for _ in range(150))
        )
        assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in responses)
        stats = client.get_pool_stats()[hypercorn_tls.url]
        assert stats["connections"] == 2 and stats["max_streams"] == 200
        # Later requests reuse them; no third connection.
        for _ in range(3):
            await asyncio.gather(*(client.get(f"{hypercorn_tls.url}/bytes/10") for _ in range(50)))
        assert client.get_pool_stats()[hypercorn_tls.url]["connections"] == 2
    assert hypercorn_tls.connections() == 2


async def test_http2_false_speaks_http11(hypercorn_tls: HypercornServer, certs: Certs) -> None:
    async with hyperhttp.Client(verify=certs.ca_path, http2=False) as client:
        response = await client.get(f"{hypercorn_tls.url}/bytes/10")
        assert response.http_version == "HTTP/1.1"
        assert "streams" not in client.get_pool_stats()[hypercorn_tls.url]


async def test_h2c_with_prior_knowledge(hypercorn: HypercornServer) -> None:
    hypercorn.reset_connections()
    async with hyperhttp.Client(http2_prior_knowledge=True) as client:
        responses = await asyncio.gather(
            *(client.get(f"{hypercorn.url}/bytes/{n}") for n in (1, 1000, 100_000) * 10)
        )
        assert {r.http_version for r in responses} == {"HTTP/2"}
        for n, response in zip((1, 1000, 100_000) * 10, responses, strict=True):
            assert await response.aread() == pattern(n)
        head = await client.head(f"{hypercorn.url}/bytes/100")
        assert head.headers["content-length"] == "100" and await head.aread() == b""
    assert hypercorn.connections() == 1
    async with hyperhttp.Client() as client:  # without the option: HTTP/1.1
        assert (await client.get(f"{hypercorn.url}/bytes/1")).http_version == "HTTP/1.1"


async def test_request_headers_arrive_lower_cased_without_connection_fields(
    hypercorn_tls: HypercornServer, certs: Certs
) -> None:
    async with hyperhttp.Client(verify=certs.ca_path) as client:
        response = await client.get(
            f"{hypercorn_tls.url}/echo/path?q=1",
            headers={"X-Custom": "Value", "Connection": "keep-alive", "TE": "gzip"},
        )
        echoed = json.loads(await response.aread())
    names = [name for name, _ in echoed["headers"]]
    headers = dict(echoed["headers"])
    assert all(name == name.lower() for name in names)
    assert headers["x-custom"] == "Value"
    assert "connection" not in headers and "te" not in headers
    # Host went as :authority, which hypercorn hands its app as the one host field.
    assert names.count("host") == 1 and headers["host"] == hypercorn_tls.url.split("//")[1]
    assert echoed["path"] == "/echo/path" and echoed["query"] == "q=1"


async def _body(size: int, piece: int = 100_000) -> AsyncIterator[bytes]:
    data = pattern(size)
    for start in range(0, size, piece):
        yield data[start : start + piece]


@pytest.mark.parametrize("kind", ["bytes", "iterator", "multipart"])
async def test_uploads_larger_than_the_initial_window(
    hypercorn_tls: HypercornServer, certs: Certs, kind: str
) -> None:
    size = 3 * MB  # hypercorn's windows are 65,535 bytes: the upload waits for WINDOW_UPDATEs
    async with hyperhttp.Client(verify=certs.ca_path) as client:
        if kind == "multipart":
            files = {"f": MultipartFile(pattern(size), filename="f.bin")}
            response = await client.post(f"{hypercorn_tls.url}/multipart", files=files)
            parts = json.loads(await response.aread())["parts"]
            assert parts[0]["length"] == size
            assert parts[0]["sha256"] == hashlib.sha256(pattern(size)).hexdigest()
            return
        content = pattern(size) if kind == "bytes" else _body(size)
        response = await client.post(f"{hypercorn_tls.url}/hash", content=content)
        assert response.http_version == "HTTP/2"
        result = json.loads(await response.aread())
    assert result["length"] == size
    assert result["sha256"] == hashlib.sha256(pattern(size)).hexdigest()
    assert result["content-length"] == (str(size) if kind == "bytes" else None)


async def test_a_body_shorter_than_its_length_resets_only_its_stream(
    hypercorn_tls: HypercornServer, certs: Certs
) -> None:
    async with hyperhttp.Client(verify=certs.ca_path) as client:
        slow = asyncio.ensure_future(client.get(f"{hypercorn_tls.url}/bytes/1000"))
        with pytest.raises(LocalProtocolError, match="short of its Content-Length"):
            await client.post(
                f"{hypercorn_tls.url}/hash",
                content=_body(1000),
                headers={"Content-Length": "5000"},
            )
        assert await (await slow).aread() == pattern(1000)
        after = await client.get(f"{hypercorn_tls.url}/bytes/10")
        assert await after.aread() == pattern(10)
        assert client.get_pool_stats()[hypercorn_tls.url]["connections"] == 1


@pytest.fixture(scope="module")
def subprocess_server() -> Iterator[str]:
    """hypercorn in its own process, so that its memory is not counted in the test's."""
    with hypercorn_process() as url:
        yield url


async def test_a_slow_reader_of_50_mb_holds_at_most_a_window(subprocess_server: str) -> None:
    size = 50 * MB
    expected = zlib.crc32(pattern(size))
    async with hyperhttp.Client(http2_prior_knowledge=True, timeout=30) as client:
        baseline = rss()
        response = await client.get(f"{subprocess_server}/bytes/{size}")
        assert response.http_version == "HTTP/2"
        seen = await read_slowly(response)
    assert seen.read == size and seen.crc32 == expected
    # Credit goes back only as bytes are read: never more than a stream window waits unread,
    # and the reader was the slow side (the window filled up while it paused).
    assert STREAM_WINDOW // 2 < seen.peak_buffered <= STREAM_WINDOW, seen.peak_buffered
    assert seen.peak_rss - baseline < 24 * MB


async def test_cancelling_one_request_leaves_the_others_alone(
    hypercorn_h2: HypercornServer, certs: Certs
) -> None:
    hypercorn_h2.reset_connections()
    async with hyperhttp.Client(verify=certs.ca_path) as client:
        big = await client.get(f"{hypercorn_h2.url}/bytes/{5 * MB}")  # head in, body pending
        url = f"{hypercorn_h2.url}/bytes/5000"
        others = [asyncio.ensure_future(client.get(url)) for _ in range(20)]
        reader = asyncio.ensure_future(big.aread())
        await asyncio.sleep(0)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        for task in others:
            assert await (await task).aread() == pattern(5000)
        stats = client.get_pool_stats()[hypercorn_h2.url]
        assert stats["connections"] == 1 and stats["streams"] == 0
        again = await client.get(f"{hypercorn_h2.url}/bytes/100")
        assert await again.aread() == pattern(100)
    assert hypercorn_h2.connections() == 1


async def test_idle_http2_connections_make_room_under_the_global_cap(
    hypercorn_h2: HypercornServer, hypercorn_tls: HypercornServer, certs: Certs
) -> None:
    # One socket for two HTTP/2 origins: each request closes the other origin's idle connection
    # instead of waiting for it to expire (the pool timeout here is far below keep-alive expiry).
    timeout = hyperhttp.Timeout(10, pool=2)
    async with hyperhttp.Client(verify=certs.ca_path, max_connections=1, timeout=timeout) as client:
        for url in (hypercorn_h2.url, hypercorn_tls.url, hypercorn_h2.url, hypercorn_tls.url):
            response = await client.get(f"{url}/bytes/10")
            assert response.http_version == "HTTP/2" and await response.aread() == pattern(10)
        stats = client.get_pool_stats()
        assert stats[hypercorn_tls.url]["connections"] == 1
        assert stats[hypercorn_h2.url]["connections"] == 0
        # While one origin's streams are busy, a request to another waits for room and gets it.
        busy = await client.get(f"{hypercorn_tls.url}/bytes/100000")
        other = asyncio.ensure_future(client.get(f"{hypercorn_h2.url}/bytes/10"))
        assert await busy.aread() == pattern(100_000)
        assert await (await other).aread() == pattern(10)


async def test_an_idle_http2_connection_is_kept_while_an_http11_one_will_make_room(
    hypercorn_h2: HypercornServer, scripted, certs: Certs
) -> None:
    """At the cap, a request to a new origin closes an idle HTTP/2 connection (it carries a
    whole origin, and a TLS handshake) only when nothing else will make room: here an
    HTTP/1.1 connection in use does, when its response ends. A crawl made ten times the
    HTTP/2 connections it needed before this."""
    release = threading.Event()

    def hold(conn: Conn) -> None:
        conn.read_request()
        conn.wait(release)
        conn.send(respond(body=b"held"))

    holder = scripted(hold)
    other = scripted(keep_answering(respond(body=b"other")))
    hypercorn_h2.reset_connections()
    async with hyperhttp.Client(verify=certs.ca_path, max_connections=2) as client:
        first = await client.get(f"{hypercorn_h2.url}/bytes/10")
        assert first.http_version == "HTTP/2" and await first.aread() == pattern(10)
        held = asyncio.ensure_future(client.get(holder.url))
        waiting = None
        try:
            for _ in range(500):  # bounded: until the held request reached its server
                if holder.requests:
                    break
                await asyncio.sleep(0.01)
            waiting = asyncio.ensure_future(client.get(other.url))
            for _ in range(500):  # bounded: until that request queues for room
                if client.get_pool_stats().get(other.url, {}).get("waiting"):
                    break
                await asyncio.sleep(0.01)
            assert client.get_pool_stats()[other.url]["waiting"] == 1
            assert client.get_pool_stats()[hypercorn_h2.url]["connections"] == 1  # kept
        finally:
            release.set()
        assert await (await held).aread() == b"held"
        assert await (await waiting).aread() == b"other"  # the HTTP/1.1 one made room
        again = await client.get(f"{hypercorn_h2.url}/bytes/20")
        assert await again.aread() == pattern(20)
    assert hypercorn_h2.connections() == 1


async def test_first_requests_waiting_for_an_http2_connection_close_nothing_elsewhere(
    hypercorn: HypercornServer, hypercorn_h2: HypercornServer, certs: Certs
) -> None:
    async with hyperhttp.Client(verify=certs.ca_path) as client:
        await (await client.get(f"{hypercorn.url}/bytes/1")).aread()  # an idle HTTP/1.1 one
        responses = await asyncio.gather(
            *(client.get(f"{hypercorn_h2.url}/bytes/5") for _ in range(20))
        )
        assert {r.http_version for r in responses} == {"HTTP/2"}
        stats = client.get_pool_stats()
        assert stats[hypercorn.url]["idle"] == 1  # not evicted by the 19 that waited
        assert stats[hypercorn_h2.url]["connections"] == 1
