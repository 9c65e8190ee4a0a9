"""HTTP/2 against a real nginx (tests/servers/nginx.py): TLS + ALPN, many streams on one
connection, a slow reader of 50 MB, uploads past nginx's 64 KiB window, a server allowing 5
streams, GOAWAY after ``keepalive_requests``, HEAD, 404 and HTTP/1.1 on the same port.

nginx logs every request with its ``$connection`` (serial number of the TCP connection) and
``$server_protocol``: the tests count connections and prove HTTP/2.0 from nginx's side, and check
the pool's own stats against them. Skipped when nginx is not installed (``make test`` installs it
when it can).
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import hyperhttp
from hyperhttp.proto.h2 import STREAM_WINDOW
from tests.integration.conftest import Certs
from tests.servers.hypercorn_app import pattern
from tests.servers.nginx import BIG, LogEntry, NginxServer, nginx_binary, pattern_pieces
from tests.servers.process import read_slowly, rss

MB = 1_000_000


@pytest.fixture(scope="session")
def nginx_h2(certs: Certs) -> Iterator[NginxServer]:
    """nginx serving TLS + HTTP/2 with ``certs``' server certificate (see tests/servers/nginx.py)."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip(
            "nginx is not installed (no `nginx` on PATH, no /usr/sbin/nginx): `make test` "
            "installs Debian's nginx when run as root, or `apt-get install nginx`"
        )
    server = NginxServer(certs.server_cert, certs.server_key, binary)
    if not server.has_http2:
        server.stop()
        pytest.skip(f"{binary} ({server.description}) was built without http_v2_module")
    server.start()
    yield server
    server.stop()


def client(certs: Certs, **options: Any) -> hyperhttp.Client:
    return hyperhttp.Client(verify=certs.ca_path, timeout=10, **options)


def connections(entries: list[LogEntry]) -> set[int]:
    return {entry.connection for entry in entries}


async def test_two_hundred_concurrent_requests_on_one_connection(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    sizes = [n * 53 for n in range(200)]  # 0 to 10.5 KB: one or two DATA frames, all different
    mark = nginx_h2.log_mark()
    async with client(certs) as c:
        responses = await asyncio.gather(*(c.get(f"{nginx_h2.url}/bytes/{n}") for n in sizes))
        assert {r.http_version for r in responses} == {"HTTP/2"}
        for n, response in zip(sizes, responses, strict=True):
            assert response.status_code == 200
            assert await response.aread() == pattern(n)
        stats = c.get_pool_stats()[nginx_h2.url]
    entries = await nginx_h2.wait_for_entries(mark, 200)
    assert len(entries) == 200
    assert {(e.protocol, e.method, e.status) for e in entries} == {("HTTP/2.0", "GET", 200)}
    assert len(connections(entries)) == 1
    assert stats["connections"] == 1 and stats["requests"] == 200
    assert stats["streams"] == 0 and stats["max_streams"] == 256


def _pattern_crc32(size: int) -> int:
    crc = 0
    for piece in pattern_pieces(size):
        crc = zlib.crc32(piece, crc)
    return crc


async def test_a_slow_reader_of_50_mb_holds_at_most_a_window(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    expected = _pattern_crc32(BIG)
    mark = nginx_h2.log_mark()
    async with client(certs) as c:
        baseline = rss()
        response = await c.get(f"{nginx_h2.url}/bytes/{BIG}")
        assert response.http_version == "HTTP/2"
        assert response.headers["content-length"] == str(BIG)
        seen = await read_slowly(response)
    assert seen.read == BIG and seen.crc32 == expected
    # Credit goes back only as bytes are read: while the reader paused, nginx sent what the
    # stream's window allowed and no more; and the reader was the slow side (the window filled).
    assert STREAM_WINDOW // 2 < seen.peak_buffered <= STREAM_WINDOW, seen.peak_buffered
    assert seen.peak_rss - baseline < 24 * MB, seen.peak_rss - baseline
    assert seen.chunks < 2000  # large DATA frames (http2_chunk_size 256k), or this test is slow
    (entry,) = await nginx_h2.wait_for_entries(mark, 1)
    assert (entry.protocol, entry.status, entry.sent) == ("HTTP/2.0", 200, BIG)


async def _pieces(data: bytes, piece: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


@pytest.mark.parametrize("kind", ["bytes", "iterator"])
async def test_uploads_larger_than_the_initial_window(
    nginx_h2: NginxServer, certs: Certs, kind: str
) -> None:
    if not nginx_h2.has_dav:
        pytest.skip(f"{nginx_h2.description} was built without http_dav_module (PUT)")
    size = 3 * MB  # nginx's stream windows start at 64 KiB: the upload waits for WINDOW_UPDATEs
    data = pattern(size)
    url = f"{nginx_h2.url}/dav/{kind}-{uuid.uuid4().hex}.bin"
    mark = nginx_h2.log_mark()
    async with client(certs) as c:
        # An iterator has no length: over HTTP/2 it goes as DATA frames, no Transfer-Encoding.
        content = data if kind == "bytes" else _pieces(data)
        put = await c.put(url, content=content)
        assert put.http_version == "HTTP/2"
        assert put.status_code == 201, await put.aread()  # Created
        await put.aread()
        got = await c.get(url)
        assert got.status_code == 200
        assert got.headers["content-length"] == str(size)
        assert await got.aread() == data
    entries = await nginx_h2.wait_for_entries(mark, 2)
    assert [(e.protocol, e.method, e.status) for e in entries] == [
        ("HTTP/2.0", "PUT", 201),
        ("HTTP/2.0", "GET", 200),
    ]
    assert len(connections(entries)) == 1


async def test_five_streams_with_one_connection(nginx_h2: NginxServer, certs: Certs) -> None:
    mark = nginx_h2.log_mark()
    errors = nginx_h2.error_mark()
    async with client(certs, max_connections=1) as c:
        responses = await asyncio.gather(
            *(c.get(f"{nginx_h2.limited_url}/bytes/10000") for _ in range(50))
        )
        for response in responses:
            assert response.http_version == "HTTP/2" and response.status_code == 200
            assert await response.aread() == pattern(10_000)
        stats = c.get_pool_stats()[nginx_h2.limited_url]
    assert stats["connections"] == 1 and stats["max_streams"] == 5 and stats["requests"] == 50
    entries = await nginx_h2.wait_for_entries(mark, 50)
    assert len(entries) == 50 and len(connections(entries)) == 1
    assert {(e.protocol, e.status) for e in entries} == {("HTTP/2.0", 200)}
    # nginx refuses (REFUSED_STREAM) and logs a stream beyond its limit: there was none.
    assert "concurrent streams exceeded" not in nginx_h2.errors_since(errors)


async def test_five_streams_with_default_limits(nginx_h2: NginxServer, certs: Certs) -> None:
    mark = nginx_h2.log_mark()
    errors = nginx_h2.error_mark()
    async with client(certs) as c:
        responses = await asyncio.gather(
            *(c.get(f"{nginx_h2.limited_url}/bytes/10000") for _ in range(50))
        )
        for response in responses:
            assert response.http_version == "HTTP/2" and response.status_code == 200
            assert await response.aread() == pattern(10_000)
        stats = c.get_pool_stats()[nginx_h2.limited_url]
    entries = await nginx_h2.wait_for_entries(mark, 50)
    assert len(entries) == 50
    assert {(e.protocol, e.status) for e in entries} == {("HTTP/2.0", 200)}
    used = connections(entries)
    # Streams ran out: more connections (at most 10 for 50 requests, 5 at a time on each), all
    # still open in the pool, each allowing 5 streams.
    assert 2 <= len(used) <= 10, used
    assert stats["connections"] == len(used) and stats["max_streams"] == 5 * len(used)
    assert "concurrent streams exceeded" not in nginx_h2.errors_since(errors)


async def _goaway_round(nginx_h2: NginxServer, certs: Certs, count: int) -> list[LogEntry]:
    mark = nginx_h2.log_mark()
    async with client(certs) as c:
        urls = [f"{nginx_h2.goaway_url}/bytes/{(100, 1000, 10_000)[n % 3]}" for n in range(count)]
        responses = await asyncio.gather(*(c.get(url) for url in urls))
        for url, response in zip(urls, responses, strict=True):
            assert response.http_version == "HTTP/2" and response.status_code == 200
            assert await response.aread() == pattern(int(url.rsplit("/", 1)[1]))
    entries = await nginx_h2.wait_for_entries(mark, count)
    assert len(entries) == count  # each request processed once
    assert {(e.protocol, e.status) for e in entries} == {("HTTP/2.0", 200)}
    per_connection = [e.connection for e in entries]
    assert max(per_connection.count(n) for n in set(per_connection)) == 10
    return entries


async def test_goaway_after_keepalive_requests_with_30_concurrent(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    # nginx answers 10 streams per connection and sends GOAWAY; the others were not processed
    # and go again on a new connection (twice for the last 10).
    entries = await _goaway_round(nginx_h2, certs, 30)
    assert len(connections(entries)) == 3


async def test_goaway_after_keepalive_requests_with_50_concurrent(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    # The last 10 go out five times: each GOAWAY came after served streams, so none of those
    # replays counts against the limit of three for a server that refuses without progress.
    entries = await _goaway_round(nginx_h2, certs, 50)
    assert len(connections(entries)) >= 5


async def test_goaway_after_keepalive_requests_sequential(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    mark = nginx_h2.log_mark()
    async with client(certs) as c:
        for n in range(30):
            response = await c.get(f"{nginx_h2.goaway_url}/bytes/1000")
            assert response.http_version == "HTTP/2" and response.status_code == 200, n
            assert await response.aread() == pattern(1000)
        assert c.get_pool_stats()[nginx_h2.goaway_url]["requests"] == 30
    entries = await nginx_h2.wait_for_entries(mark, 30)
    assert len(entries) == 30
    assert {(e.protocol, e.status) for e in entries} == {("HTTP/2.0", 200)}
    # 10 requests on each connection, in order: none was lost or sent twice.
    used = [e.connection for e in entries]
    assert len(set(used)) == 3 and all(used.count(n) == 10 for n in set(used))


async def test_head_404_and_http11_on_the_same_port(nginx_h2: NginxServer, certs: Certs) -> None:
    mark = nginx_h2.log_mark()
    async with client(certs) as c:
        head = await c.head(f"{nginx_h2.url}/bytes/100000")
        assert head.http_version == "HTTP/2" and head.status_code == 200
        assert head.headers["content-length"] == "100000"
        assert await head.aread() == b""
        missing = await c.get(f"{nginx_h2.url}/bytes/12345")
        assert missing.http_version == "HTTP/2" and missing.status_code == 404
        assert b"404 Not Found" in await missing.aread()
        after = await c.get(f"{nginx_h2.url}/bytes/100")  # the connection is still good
        assert await after.aread() == pattern(100)
        assert c.get_pool_stats()[nginx_h2.url]["connections"] == 1
    async with client(certs, http2=False) as c:
        response = await c.get(f"{nginx_h2.url}/bytes/1000")
        assert response.http_version == "HTTP/1.1" and response.status_code == 200
        assert await response.aread() == pattern(1000)
        assert "streams" not in c.get_pool_stats()[nginx_h2.url]
    entries = await nginx_h2.wait_for_entries(mark, 4)
    assert [(e.protocol, e.method, e.uri, e.status) for e in entries] == [
        ("HTTP/2.0", "HEAD", "/bytes/100000", 200),
        ("HTTP/2.0", "GET", "/bytes/12345", 404),
        ("HTTP/2.0", "GET", "/bytes/100", 200),
        ("HTTP/1.1", "GET", "/bytes/1000", 200),
    ]
    assert entries[0].sent == 0 and entries[3].sent == 1000
    h2_connections = connections(entries[:3])
    assert len(h2_connections) == 1 and entries[3].connection not in h2_connections
