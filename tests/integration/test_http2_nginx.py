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
import gc
import hashlib
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import hyperhttp
from hyperhttp.proto.h2 import STREAM_WINDOW
from tests.integration.conftest import Certs, crlf_on_bad_path, kept_busy
from tests.servers.hypercorn_app import pattern
from tests.servers.nginx import (
    BIG,
    FIELDS,
    TRAILERS_BODY,
    LogEntry,
    NginxServer,
    nginx_binary,
    pattern_pieces,
)
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
    options.setdefault("timeout", 10)
    return hyperhttp.Client(verify=certs.ca_path, **options)


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


# -- issue 12 -----------------------------------------------------------------------------------


def _needs_dav(nginx_h2: NginxServer) -> None:
    if not nginx_h2.has_dav:
        pytest.skip(f"{nginx_h2.description} was built without http_dav_module (PUT)")


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_requests_not_processed_after_goaway_are_sent_again(
    nginx_h2: NginxServer, certs: Certs, method: str
) -> None:
    """Item 11: a stream above a GOAWAY's last stream id was not processed, so it is safe to
    send again whatever the method (RFC 9113 section 8.7): 30 concurrent PUTs or POSTs (the
    pool used to refuse to resend a POST) each reach nginx once. nginx answers a POST to a
    static file with 405: what matters here is that each lands, once."""
    if method == "PUT":
        _needs_dav(nginx_h2)
    mark = nginx_h2.log_mark()
    if method == "PUT":
        urls = [f"{nginx_h2.goaway_url}/dav/goaway-{uuid.uuid4().hex}" for _ in range(30)]
    else:
        urls = [f"{nginx_h2.goaway_url}/bytes/{n * 53}" for n in range(30)]
    async with client(certs) as c:
        responses = await asyncio.gather(
            *(c.request(method, url, content=url.encode()) for url in urls)
        )
        for response in responses:
            await response.aread()
    expected = 201 if method == "PUT" else 405
    assert {response.status_code for response in responses} == {expected}
    entries = await nginx_h2.wait_for_entries(mark, 30)
    assert sorted(e.uri for e in entries) == sorted("/" + url.split("/", 3)[3] for url in urls)
    assert {(e.method, e.status) for e in entries} == {(method, expected)}
    assert len(connections(entries)) == 3


async def test_framing_against_nginx(nginx_h2: NginxServer, certs: Certs) -> None:
    """Item 2: a Content-Length that disagrees with the body never reaches the server; a
    caller's Transfer-Encoding: chunked sends the body as DATA frames (HTTP/2 has no chunked)."""
    _needs_dav(nginx_h2)
    body = pattern(46)
    url = f"{nginx_h2.url}/dav/framing-{uuid.uuid4().hex}"
    mark = nginx_h2.log_mark()
    async with client(certs) as c:
        with pytest.raises(hyperhttp.LocalProtocolError, match="disagrees"):
            await c.put(url, content=body, headers={"Content-Length": "5"})
        put = await c.put(url, content=body, headers={"Transfer-Encoding": "chunked"})
        assert put.status_code == 201
        await put.aread()
        assert await (await c.get(url)).aread() == body
    entries = await nginx_h2.wait_for_entries(mark, 2)
    assert [(e.method, e.status) for e in entries] == [("PUT", 201), ("GET", 200)]


async def test_a_refused_field_leaks_no_stream_with_nginx(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    """Item 3: on the server allowing 5 streams, with one connection, 10 requests refused after
    their hooks ran must give back the 10 places they took (PoolTimeout before)."""

    timeout = hyperhttp.Timeout(10.0, pool=2.0)
    async with client(
        certs, max_connections=1, timeout=timeout, event_hooks={"request": [crlf_on_bad_path]}
    ) as c:
        for _ in range(10):
            with pytest.raises(hyperhttp.LocalProtocolError):
                await c.get(f"{nginx_h2.limited_url}/bad")
        responses = await asyncio.gather(
            *(c.get(f"{nginx_h2.limited_url}/bytes/100") for _ in range(5))
        )
        assert [await r.aread() for r in responses] == [pattern(100)] * 5
        stats = c.get_pool_stats()[nginx_h2.limited_url]
    assert stats["streams"] == 0 and stats["connections"] == 1


@pytest.mark.parametrize("kind", ["bytes", "iterator"])
async def test_an_upload_past_client_max_body_size_gets_its_413(
    nginx_h2: NginxServer, certs: Certs, kind: str
) -> None:
    """Item 5: nginx answers 413 as soon as it sees a Content-Length past client_max_body_size
    (64m), reads no more of the body and resets the stream (NO_ERROR): the 413 is the response,
    and the connection serves on. (The scripted server's /early-end pins the case of a server
    that ends its stream without a reset.)"""
    _needs_dav(nginx_h2)
    size = 70 << 20
    content: Any = bytes(size) if kind == "bytes" else _pieces(bytes(size), 1 << 20)
    headers = {"Content-Length": str(size)}
    mark = nginx_h2.log_mark()
    async with client(certs, timeout=hyperhttp.Timeout(10.0, write=5.0)) as c:
        response = await c.put(f"{nginx_h2.url}/dav/too-large", content=content, headers=headers)
        assert response.status_code == 413
        await response.aread()
        assert await (await c.get(f"{nginx_h2.url}/bytes/100")).aread() == pattern(100)
    entries = await nginx_h2.wait_for_entries(mark, 2)
    assert [(e.method, e.status) for e in entries] == [("PUT", 413), ("GET", 200)]
    assert len(connections(entries)) == 1


async def test_dropped_responses_give_back_their_streams_and_credit(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    """Item 6: twenty 50 MB responses dropped unread (each holds a stream, and what has arrived
    of its body holds the connection's credit), then a 1 MB download on the same connection.
    (test_http2_faults.py pins the case of each one holding its whole window.)"""
    mark = nginx_h2.log_mark()
    async with client(certs, timeout=hyperhttp.Timeout(10.0, read=5.0)) as c:
        for _ in range(20):
            with pytest.warns(ResourceWarning, match="garbage-collected"):
                response = await c.get(f"{nginx_h2.url}/bytes/{BIG}")
                del response
                gc.collect()
        for _ in range(200):  # the releases run on the loop: let them (bounded)
            if c.get_pool_stats()[nginx_h2.url]["streams"] == 0:
                break
            await asyncio.sleep(0.005)
        assert c.get_pool_stats()[nginx_h2.url]["streams"] == 0
        assert await (await c.get(f"{nginx_h2.url}/bytes/1000000")).aread() == pattern(1_000_000)
    entries = await nginx_h2.wait_for_entries(mark, 21)
    assert len(connections(entries)) == 1


async def test_trailers_and_many_fields_from_nginx(nginx_h2: NginxServer, certs: Certs) -> None:
    """Items 9 and 8: nginx's add_trailer fields land in response.trailers only; a response
    with more fields than the limit fails its own stream, and a larger limit takes it."""
    async with client(certs) as c:
        response = await c.get(f"{nginx_h2.url}/trailers")
        assert await response.aread() == TRAILERS_BODY.encode()
        assert response.trailers["x-checksum"] == hashlib.sha256(response.content).hexdigest()
        assert response.trailers["x-trailer"] == "done"
        assert "x-checksum" not in response.headers and "x-trailer" not in response.headers
        with pytest.raises(hyperhttp.RemoteProtocolError, match="more than 100 fields"):
            await c.get(f"{nginx_h2.url}/fields")
        assert await (await c.get(f"{nginx_h2.url}/bytes/100")).aread() == pattern(100)
        assert c.get_pool_stats()[nginx_h2.url]["connections"] == 1
    async with client(certs, max_headers=FIELDS + 10) as c:
        response = await c.get(f"{nginx_h2.url}/fields")
        assert response.headers[f"x-f-{FIELDS - 1}"] == str(FIELDS - 1)
        assert await response.aread() == b"fields"


async def test_a_busy_origin_does_not_starve_another_at_the_cap(
    nginx_h2: NginxServer, certs: Certs
) -> None:
    """Item 4 against nginx: its 5-stream server (one origin) kept full by 16 tasks at
    max_connections=1 while requests to its other port (another origin) queue behind: each is
    served in its turn (PoolTimeout before), on a connection of its own."""
    mark = nginx_h2.log_mark()
    timeout = hyperhttp.Timeout(10.0, pool=3.0)
    async with client(certs, max_connections=1, timeout=timeout) as c:
        async with kept_busy(c, f"{nginx_h2.limited_url}/bytes/100", 16):
            for _ in range(5):
                assert await (await c.get(f"{nginx_h2.url}/bytes/1000")).aread() == pattern(1000)
    for _ in range(1000):  # the lines of answered requests come within milliseconds (bounded)
        quiet = [e for e in nginx_h2.entries(mark) if e.uri == "/bytes/1000"]
        if len(quiet) >= 5:
            break
        await asyncio.sleep(0.005)
    assert len(quiet) == 5 and len(connections(quiet)) == 5
