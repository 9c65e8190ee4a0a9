"""Servers that misbehave: every fault surfaces as a typed error and never poisons the pool."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any, Callable

import pytest

import hyperhttp
from tests.servers.faults import Conn, answer_once, close_on_second_request, keep_answering, respond


async def test_read_timeout_on_a_stalled_server(scripted) -> None:
    server = scripted(answer_once(then="stall"))
    async with hyperhttp.Client(timeout=hyperhttp.Timeout(5.0, read=0.2)) as client:
        with pytest.raises(hyperhttp.ReadTimeout):
            await client.get(server.url)
        assert client.get_pool_stats()[server.url]["in_use"] == 0


async def test_read_timeout_while_waiting_for_more_body(scripted) -> None:
    server = scripted(
        answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", then="stall")
    )
    async with hyperhttp.Client(timeout=hyperhttp.Timeout(5.0, read=0.2)) as client:
        response = await client.get(server.url)
        with pytest.raises(hyperhttp.ReadTimeout):
            await response.aread()


async def test_connect_error_on_a_closed_port(closed_port: int) -> None:
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.ConnectError) as caught:
            await client.get(f"http://127.0.0.1:{closed_port}/")
        assert f"127.0.0.1:{closed_port}" in str(caught.value)
        stats = client.get_pool_stats()[f"http://127.0.0.1:{closed_port}"]
        assert stats["connections"] == 0


async def test_server_closing_mid_body_is_a_remote_protocol_error_and_not_reused(scripted) -> None:
    server = scripted(answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"))
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        with pytest.raises(hyperhttp.RemoteProtocolError, match="received 9 bytes"):
            await response.aread()
        response = await client.get(server.url)
        with pytest.raises(hyperhttp.RemoteProtocolError):
            await response.aread()
        assert client.get_pool_stats()[server.url]["idle"] == 0
    assert server.accepted == 2


async def test_chunked_body_cut_short_is_an_error(scripted) -> None:
    server = scripted(answer_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"))
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        with pytest.raises(hyperhttp.RemoteProtocolError):
            await response.aread()


async def test_reset_before_response_is_a_typed_error(scripted) -> None:
    server = scripted(answer_once(then="reset"))
    async with hyperhttp.Client() as client:
        with pytest.raises((hyperhttp.ReadError, hyperhttp.RemoteProtocolError)):
            await client.get(server.url)
        assert client.get_pool_stats()[server.url]["connections"] == 0


async def test_close_without_response_is_a_remote_protocol_error(scripted) -> None:
    server = scripted(answer_once())
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.RemoteProtocolError, match="without sending a response"):
            await client.get(server.url)


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTX/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    ],
    ids=["bad-version", "bad-status", "conflicting-lengths", "header-without-colon"],
)
async def test_malformed_response_head_is_a_remote_protocol_error(scripted, garbage: bytes) -> None:
    server = scripted(keep_answering(garbage))
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.RemoteProtocolError):
            response = await client.get(server.url)
            await response.aread()
        assert client.get_pool_stats()[server.url]["idle"] == 0


async def test_more_bytes_than_content_length_means_no_reuse(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"12345") + b"GARBAGE AFTER THE BODY"))
    async with hyperhttp.Client() as client:
        first = await client.get(server.url)
        assert await first.aread() == b"12345"
        second = await client.get(server.url)
        assert await second.aread() == b"12345"
    assert server.accepted == 2


async def test_connection_closed_by_server_while_idle_is_not_reused(scripted) -> None:
    closed = threading.Event()

    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(respond(body=b"once"))
        conn.close()
        closed.set()

    server = scripted(script)
    async with hyperhttp.Client() as client:
        assert await (await client.get(server.url)).aread() == b"once"
        for _ in range(200):  # bounded: until the close has been seen by the client
            if closed.is_set() and client.get_pool_stats()[server.url]["idle"] == 0:
                break
            await asyncio.sleep(0.005)
        assert client.get_pool_stats()[server.url]["idle"] == 0
        assert await (await client.get(server.url)).aread() == b"once"
    assert server.accepted == 2


async def test_stale_keep_alive_race_retries_idempotent_request_once(scripted) -> None:
    server = scripted(close_on_second_request(threading.Event()))
    async with hyperhttp.Client() as client:
        assert await (await client.get(server.url)).aread() == b"first"
        assert await (await client.get(server.url)).aread() == b"fresh"
    assert server.accepted == 2


async def test_stale_keep_alive_race_never_replays_post(scripted) -> None:
    server = scripted(close_on_second_request(threading.Event()))
    async with hyperhttp.Client() as client:
        assert await (await client.get(server.url)).aread() == b"first"
        with pytest.raises(hyperhttp.RemoteProtocolError):
            await client.post(server.url, content=b"once")
    assert server.accepted == 1


async def test_cancelled_while_waiting_for_head_keeps_pool_consistent(scripted) -> None:
    arrived = threading.Event()

    def script(conn: Conn) -> None:
        if conn.read_request() is not None and b"/stall" in conn.requests[-1]:
            arrived.set()
            conn.stall()
            return
        conn.send(respond(body=b"ok"))
        keep_answering(respond(body=b"ok"))(conn)

    server = scripted(script)
    async with hyperhttp.Client(max_connections=1) as client:
        task = asyncio.ensure_future(client.get(server.url + "/stall"))
        for _ in range(400):
            if arrived.is_set():
                break
            await asyncio.sleep(0.005)
        assert arrived.is_set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        response = await client.get(server.url + "/next")  # max_connections=1: needs the slot back
        assert await response.aread() == b"ok"
        stats = client.get_pool_stats()[server.url]
        assert stats["in_use"] == 0 and stats["connections"] == 1


async def test_cancelled_mid_body_keeps_pool_consistent(scripted) -> None:
    def script(conn: Conn) -> None:
        request = conn.read_request()
        if request is not None and b"/partial" in request:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
            conn.stall()
            return
        conn.send(respond(body=b"ok"))
        keep_answering(respond(body=b"ok"))(conn)

    server = scripted(script)
    async with hyperhttp.Client(max_connections=1) as client:
        response = await client.get(server.url + "/partial")
        reader = asyncio.ensure_future(response.aread())
        await asyncio.sleep(0)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        response = await client.get(server.url + "/next")
        assert await response.aread() == b"ok"
        assert client.get_pool_stats()[server.url]["in_use"] == 0


def _big_body_then_stall(conn: Conn) -> None:
    """/big: the head of a 10 MB body and its first 1000 bytes, then nothing; else 200 "ok"."""
    while (request := conn.read_request()) is not None:
        if b"/big" in request:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 1000)
            conn.stall()
            return
        conn.send(respond(body=b"ok"))


async def test_closing_a_response_early_drops_its_connection(scripted) -> None:
    server = scripted(_big_body_then_stall)
    async with hyperhttp.Client() as client:
        async with await client.get(server.url + "/big") as response:
            assert response.status_code == 200
        assert (await (await client.get(server.url + "/small")).aread()) == b"ok"
    assert server.accepted == 2


# -- issue 12 -----------------------------------------------------------------------------------


def _answer_early(status: bytes, then: str, body: bytes = b"") -> Callable[[Conn], None]:
    """Reads the request head only, answers at once, then stops reading: ``then`` is "stall"
    (the socket stays open, unread) or "reset"."""

    def script(conn: Conn) -> None:
        if conn.read_head() is None:
            return
        conn.send(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        getattr(conn, then)()

    return script


@pytest.mark.parametrize("then", ["stall", "reset"])
@pytest.mark.parametrize("kind", ["bytes", "iterator"])
async def test_an_early_response_during_an_upload_is_returned(
    scripted, then: str, kind: str
) -> None:
    """Item 5: a 413 arrives while the body is still being sent and the server stops reading
    (or resets): the caller gets the 413, not WriteTimeout or WriteError; the upload stops and
    the connection is closed afterwards. (The body is larger than any socket buffer.)"""
    server = scripted(_answer_early(b"413 Content Too Large", then, b"too big"))
    closed = asyncio.Event()

    async def chunks() -> Any:
        try:
            for _ in range(4096):
                yield b"x" * 16384
        finally:
            closed.set()

    content: Any = bytes(64 << 20) if kind == "bytes" else chunks()
    timeout = hyperhttp.Timeout(10.0, write=5.0)
    async with hyperhttp.Client(max_connections=1, timeout=timeout) as client:
        try:
            response = await client.post(server.url, content=content)
        except hyperhttp.TransportError as exc:
            # A reset can overtake the response on its way: the client saw only the reset.
            assert then == "reset" and isinstance(exc, (hyperhttp.ReadError, hyperhttp.WriteError))
        else:
            assert response.status_code == 413
            if then == "stall":
                assert await response.aread() == b"too big"
            else:
                await response.aclose()
        if kind == "iterator":
            await asyncio.wait_for(closed.wait(), 5)  # the body's iterator was closed
        stats = client.get_pool_stats()[server.url]
        assert stats["idle"] == 0 and stats["in_use"] == 0


async def test_an_early_response_is_returned_without_a_reset_racing_it(scripted) -> None:
    """The deterministic form of the reset case: the response head is read before the reset."""
    received = threading.Event()

    def script(conn: Conn) -> None:
        if conn.read_head() is None:
            return
        conn.send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        conn.wait(received)
        conn.reset()

    server = scripted(script)
    async with hyperhttp.Client(timeout=hyperhttp.Timeout(10.0, write=5.0)) as client:
        task = asyncio.ensure_future(client.post(server.url, content=bytes(64 << 20)))
        response = await asyncio.wait_for(task, 8)
        received.set()
        assert response.status_code == 401 and await response.aread() == b""
        assert client.get_pool_stats()[server.url]["connections"] == 0


async def test_a_response_dropped_unread_releases_its_connection(scripted) -> None:
    """Item 6: dropped without being read or closed, a response's connection is closed (it was
    pinned until the server closed it), with a ResourceWarning naming the URL."""

    server = scripted(_big_body_then_stall)
    async with hyperhttp.Client(max_connections=1, timeout=5.0) as client:
        with pytest.warns(ResourceWarning, match=f"GET {server.url}/big"):
            response = await client.get(server.url + "/big")
            assert response.status_code == 200
            del response
            gc.collect()
        # max_connections=1: this waits for the dropped response's place (PoolTimeout before).
        assert await (await client.get(server.url + "/small")).aread() == b"ok"
    assert server.accepted == 2


async def test_a_reset_inside_a_close_delimited_body_is_a_read_error(scripted) -> None:
    """Item 7: a body delimited by the connection closing ends only with a clean close."""
    headed = threading.Event()

    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n\r\nthe first part of a body")
        conn.wait(headed)
        conn.reset()

    server = scripted(script)
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        headed.set()
        with pytest.raises(hyperhttp.ReadError, match="(?i)reset"):
            await response.aread()


@pytest.mark.parametrize(
    ("head", "options", "match"),
    [
        (b"HTTP/1.1 200 OK\r\n" + b"X-Field: v\r\n" * 101, {}, "more than 100 fields"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"v" * 70000 + b"\r\n", {}, "larger than 65536"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Field: v\r\n" * 20, {"max_headers": 10}, "more than 10"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"v" * 5000 + b"\r\n", {"max_header_size": 4096},
         "larger than 4096"),
    ],
    ids=["fields", "size", "configured-fields", "configured-size"],
)  # fmt: skip
async def test_the_response_head_is_limited(
    scripted, head: bytes, options: Any, match: str
) -> None:
    """Item 8: past the size (64 KiB) or field count (100) of a head, RemoteProtocolError and
    the connection closed; both limits are the Client's to set."""
    server = scripted(keep_answering(head + b"Content-Length: 2\r\n\r\nok"))
    async with hyperhttp.Client(**options) as client:
        with pytest.raises(hyperhttp.RemoteProtocolError, match=match):
            await client.get(server.url)
        assert client.get_pool_stats()[server.url]["connections"] == 0
    roomy = {"max_headers": 200, "max_header_size": 128 * 1024}
    async with hyperhttp.Client(**roomy) as client:  # the same head within larger limits
        assert await (await client.get(server.url)).aread() == b"ok"


async def test_a_head_that_never_ends_is_refused_at_the_limit_not_the_timeout(scripted) -> None:
    """A server sending header lines without end: before, the whole read timeout (a 64 MiB head
    was read in full)."""

    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n")
        try:
            for _ in range(1 << 14):  # 16 MiB at most, if nothing stops it
                conn.send(b"X-Filler: " + b"z" * 1000 + b"\r\n")
        except OSError:
            pass  # the client closed the connection

    server = scripted(script)
    async with hyperhttp.Client(timeout=30.0) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(hyperhttp.RemoteProtocolError, match="larger than 65536"):
            await client.get(server.url)
        assert asyncio.get_running_loop().time() - started < 10  # not the read timeout
