"""HTTP/2 faults from a scripted server (tests/servers/h2server.py): RST_STREAM, GOAWAY, refused
streams, MAX_CONCURRENT_STREAMS, hangs, cancellation, connection errors, the request as sent."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hyperhttp
from hyperhttp import ReadTimeout, RemoteProtocolError, StreamNotProcessed, TransportError
from hyperhttp.proto.h2 import STREAM_WINDOW
from tests.integration.conftest import Certs, crlf_on_bad_path, kept_busy
from tests.servers.h2server import TRAILERS_BODY, H2Server, pattern

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
    options.setdefault("timeout", 10)
    return hyperhttp.Client(verify=certs.ca_path, **options)


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


async def test_refused_streams_are_sent_again_whatever_the_method(
    h2server: Start, certs: Certs
) -> None:
    """A refused stream was not processed (RFC 9113 section 8.7): any method may be sent again,
    if its body can be (issue 12, item 11: a POST used to fail at once)."""
    server = h2server()
    async with client(certs) as c:
        for method in ("GET", "POST"):
            server.reset_counters()
            with pytest.raises(StreamNotProcessed, match="REFUSED_STREAM"):
                await c.request(
                    method, f"{server.url}/rst/7", content=b"x" if method == "POST" else None
                )
            assert server.streams == 4  # the request and three replays

        async def once() -> Any:
            yield b"a body that can be sent once"

        server.reset_counters()
        with pytest.raises(StreamNotProcessed, match="cannot be sent again"):
            await c.post(f"{server.url}/rst/7", content=once())
        assert server.streams == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_goaway_mid_traffic(h2server: Start, certs: Certs, method: str) -> None:
    """GOAWAY at the 10th of 20 streams: those it covers are answered, those above it were not
    processed and are sent again on a new connection, POST included (RFC 9113 section 8.7).

    The server closes the connection as nginx does, lingering until the client closes (see
    H2Server's goaway_after): a server that closed at once while the client still sent could
    have its GOAWAY destroyed by the reset its kernel answers with, and then nothing can tell
    the client which requests were processed (test_goaway_then_close_at_once pins that case)."""
    server = h2server(goaway_after=10)
    content = b"x" if method == "POST" else None
    async with client(certs) as c:
        responses = await asyncio.gather(
            *(c.request(method, f"{server.url}/bytes/{n}", content=content) for n in range(20))
        )
        for response in responses:
            body = await response.aread()
            assert body == pattern(int(str(response.request.url).rsplit("/", 1)[1]))
    # Streams above the GOAWAY's last_stream_id were in flight and never answered: resent.
    assert server.ignored and server.connections == 2
    served = [(number, stream_id) for number, stream_id, _, _ in server.requests]
    assert len([1 for number, _ in served if number == 1]) == 10
    assert len([1 for number, _ in served if number == 2]) == 10


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_goaway_then_close_at_once(h2server: Start, certs: Certs, method: str) -> None:
    """Issue 12, item 11: GOAWAY(last_stream_id=0) and the connection closed at once, none of
    the 5 requests processed: each is sent again on a new connection, POST included; none
    fails with the ReadError of the close."""
    server = h2server(goaway_close_after=5)
    content = b"payload" if method == "POST" else None
    async with client(certs) as c:
        responses = await asyncio.gather(
            *(c.request(method, f"{server.url}/bytes/{n}", content=content) for n in range(5))
        )
        assert [await r.aread() for r in responses] == [pattern(n) for n in range(5)]
    assert server.connections == 2 and len(server.ignored) == 5
    resent = [r for r in server.requests if r[0] == 2]
    assert len(resent) == 5 and all(received == len(content or b"") for *_, received in resent)


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


# -- issue 12 -----------------------------------------------------------------------------------


async def test_framing_is_checked_before_a_stream_is_opened(h2server: Start, certs: Certs) -> None:
    """Item 2: a Content-Length that disagrees with the body is refused before anything is sent
    (over HTTP/2 content-length must match the DATA); a caller's Transfer-Encoding: chunked is
    no field of HTTP/2's, and the body goes as DATA."""
    server = h2server()
    body = b"x" * 46
    async with client(certs) as c:
        with pytest.raises(hyperhttp.LocalProtocolError, match="disagrees"):
            await c.post(f"{server.url}/upload", content=body, headers={"Content-Length": "5"})
        assert server.streams == 0
        response = await c.post(
            f"{server.url}/upload", content=body, headers={"Transfer-Encoding": "chunked"}
        )
        assert json.loads(await response.aread()) == {
            "length": 46,
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        response = await c.post(
            f"{server.url}/echo-headers", content=body, headers={"Content-Length": "46"}
        )
        sent = json.loads(await response.aread())
        assert ["content-length", "46"] in sent
        assert not any(name == "transfer-encoding" for name, _ in sent)


async def test_a_field_refused_after_the_hooks_leaks_no_stream(
    h2server: Start, certs: Certs
) -> None:
    """Item 3: the request used to be encoded after a stream was reserved, and the reservation
    was never given back: with one stream allowed, the next request waited for PoolTimeout."""
    server = h2server(max_concurrent_streams=1)

    timeout = hyperhttp.Timeout(10.0, pool=1.0)
    async with client(
        certs, max_connections=1, timeout=timeout, event_hooks={"request": [crlf_on_bad_path]}
    ) as c:
        assert await (await c.get(f"{server.url}/bytes/5")).aread() == pattern(5)
        for _ in range(3):
            with pytest.raises(hyperhttp.LocalProtocolError, match="invalid header value"):
                await c.get(f"{server.url}/bad")
            assert await (await c.get(f"{server.url}/bytes/7")).aread() == pattern(7)
        stats = c.get_pool_stats()[server.url]
    assert stats["streams"] == 0 and stats["connections"] == 1
    assert server.streams == 4 and server.connections == 1


@pytest.mark.parametrize("kind", ["bytes", "iterator"])
async def test_a_complete_response_while_the_upload_waits_for_window(
    h2server: Start, certs: Certs, kind: str
) -> None:
    """Item 5: the server answers 413 with END_STREAM, without RST_STREAM, and never grants
    window for the body: the response is returned (not WriteTimeout), the upload stops, our
    half of the stream is reset (CANCEL), and the connection goes on serving."""
    server = h2server()
    closed = asyncio.Event()

    async def chunks() -> Any:
        try:
            for _ in range(64):
                yield b"x" * 16384
        finally:
            closed.set()

    content: Any = bytes(1 << 20) if kind == "bytes" else chunks()
    async with client(certs, timeout=hyperhttp.Timeout(10.0, write=3.0)) as c:
        response = await asyncio.wait_for(c.post(f"{server.url}/early-end", content=content), 5)
        assert response.status_code == 413 and await response.aread() == b"too large"
        assert await asyncio.to_thread(
            server.wait_until, lambda s: any(code == 8 for _, code in s.resets)
        )  # our half of the stream was reset: CANCEL
        if kind == "iterator":
            await asyncio.wait_for(closed.wait(), 5)
        assert await (await c.get(f"{server.url}/bytes/5")).aread() == pattern(5)
        stats = c.get_pool_stats()[server.url]
    assert stats["streams"] == 0 and server.connections == 1
    assert next(r for r in server.requests if r[1] == 1)[3] < 1 << 20  # the upload stopped


async def test_a_dropped_response_resets_its_stream(h2server: Start, certs: Certs) -> None:
    """Item 6: a response garbage-collected before its body was read held a stream and up to a
    window of the connection's credit: the stream is reset, the credit handed back, and a
    ResourceWarning names the URL. Twenty such responses, each holding its whole 1 MiB stream
    window, are more than the connection's 16 MiB window: without the credit back, the last
    download would stall."""
    server = h2server()
    url = f"{server.url}/bytes/10000000"
    async with client(certs, timeout=hyperhttp.Timeout(10.0, read=5.0)) as c:
        for number in range(20):
            sent = server.bytes_sent
            with pytest.warns(ResourceWarning, match=f"GET {url}"):
                response = await c.get(url)
                # The server fills the stream's window (the release runs on the loop, which the
                # wait in a thread leaves running), then the response is dropped.
                assert await asyncio.to_thread(
                    server.wait_until, lambda s, sent=sent: s.bytes_sent >= sent + STREAM_WINDOW
                )
                del response
                gc.collect()
            stream_id = 2 * number + 1
            assert await asyncio.to_thread(
                server.wait_until, lambda s, i=stream_id: (i, 8) in s.resets
            )  # RST_STREAM CANCEL
        assert c.get_pool_stats()[server.url]["streams"] == 0
        big = await c.get(f"{server.url}/bytes/3000000")
        assert await big.aread() == pattern(3000000)
    assert server.connections == 1


@pytest.mark.parametrize(
    ("path", "options", "match"),
    [
        ("/fields/101", {}, "response head has more than 100 fields"),
        ("/fields/20", {"max_headers": 10}, "response head has more than 10 fields"),
        ("/big-field/5000", {"max_header_size": 4096}, "(?i)header"),
    ],
    ids=["fields", "configured-fields", "configured-size"],
)
async def test_the_response_head_is_limited(
    h2server: Start, certs: Certs, path: str, options: Any, match: str
) -> None:
    """Item 8 over HTTP/2: the field count (a stream error: the connection goes on) and the
    size of the field block (SETTINGS_MAX_HEADER_LIST_SIZE, enforced by the decoder)."""
    server = h2server()
    async with client(certs, **options) as c:
        with pytest.raises(hyperhttp.RemoteProtocolError, match=match):
            await c.get(f"{server.url}{path}")
        assert await (await c.get(f"{server.url}/bytes/5")).aread() == pattern(5)
    async with client(certs, max_headers=200, max_header_size=1 << 16) as c:
        assert await (await c.get(f"{server.url}{path}")).aread() == b"fields"


async def test_trailers_are_kept_apart_and_limited(h2server: Start, certs: Certs) -> None:
    """Items 9 and 8: trailers go to response.trailers, never to headers; a trailer section
    past the field limit fails the body (and only that stream)."""
    server = h2server()
    async with client(certs) as c:
        response = await c.get(f"{server.url}/trailers")
        assert "x-checksum" not in response.headers
        assert await response.aread() == TRAILERS_BODY
        assert response.trailers["x-checksum"] == hashlib.sha256(TRAILERS_BODY).hexdigest()
        assert response.trailers["x-trailer"] == "done"
        assert "x-checksum" not in response.headers
        response = await c.get(f"{server.url}/trailers/101")
        with pytest.raises(hyperhttp.RemoteProtocolError, match="trailer section"):
            await response.aread()
        assert await (await c.get(f"{server.url}/bytes/5")).aread() == pattern(5)
    assert server.connections == 1


async def test_a_busy_http2_origin_does_not_starve_another_at_the_cap(
    h2server: Start, certs: Certs
) -> None:
    """Issue 12, item 4 over HTTP/2: origin A's one connection (4 streams) is kept full by 16
    tasks, at max_connections=1; origin B's requests, each queued behind A's, are served in
    arrival order: A's connection takes no new streams and closes once its streams end, B
    connects, then A again. (Before: A's connection went on serving A's queue; PoolTimeout.)"""
    busy = h2server(max_concurrent_streams=4)
    quiet = h2server()
    timeout = hyperhttp.Timeout(10.0, pool=3.0)
    async with client(certs, max_connections=1, timeout=timeout) as c:
        async with kept_busy(c, f"{busy.url}/bytes/100", 16):
            for _ in range(5):
                assert await (await c.get(f"{quiet.url}/bytes/7")).aread() == pattern(7)
    assert quiet.connections == 5 and busy.connections >= 5
    assert not busy.errors and not quiet.errors
