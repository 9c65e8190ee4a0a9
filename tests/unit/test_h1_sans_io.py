"""H1Connection driven without sockets: bytes in through buffer_updated, writes recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hyperhttp.exceptions import ReadError, ReadTimeout, RemoteProtocolError, WriteTimeout
from hyperhttp.proto.base import FieldBlock, HeadLimits, StaleConnection
from hyperhttp.proto.h1 import H1Connection, encode_request_head
from hyperhttp.proto.stream import HIGH_WATER
from tests.unit.fakes import FakeTransport, Timeouts, WireRequest


class Harness:
    def __init__(self, limits: HeadLimits | None = None) -> None:
        self.buffer = memoryview(bytearray(1 << 16))
        self.idle: list[H1Connection] = []
        self.lost: list[H1Connection] = []
        self.conn = H1Connection(
            asyncio.get_running_loop(),
            self.buffer,
            lambda: self.idle.append(self.conn),
            lambda: self.lost.append(self.conn),
            limits or HeadLimits(),
        )
        self.transport = FakeTransport()
        self.transport.protocol = self.conn
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]

    def feed(self, data: bytes) -> None:
        for start in range(0, len(data), len(self.buffer)):
            piece = data[start : start + len(self.buffer)]
            buffer = self.conn.get_buffer(len(piece))
            buffer[: len(piece)] = piece
            self.conn.buffer_updated(len(piece))

    def send(
        self,
        method: bytes = b"GET",
        body: Any = None,
        *,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        request = WireRequest(method, body, **kwargs)
        timeouts = Timeouts(read_timeout, write_timeout)
        return asyncio.ensure_future(self.conn.send(request, timeouts))


async def _head(harness: Harness, response: bytes, **kwargs: Any) -> Any:
    task = harness.send(**kwargs)
    await asyncio.sleep(0)
    harness.feed(response)
    return await task


async def test_content_length_response_and_keep_alive_release() -> None:
    h = Harness()
    status, version, headers, stream = await _head(
        h, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"
    )
    assert (status, version) == (200, "HTTP/1.1")
    assert headers == [(b"Content-Length", b"5"), (b"X-A", b"1")]
    assert stream.complete and stream.take_all() == b"hello"
    assert h.idle == [h.conn] and h.conn.is_idle
    assert h.transport.writes == [b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"]


async def test_response_split_byte_by_byte() -> None:
    h = Harness()
    task = h.send()
    await asyncio.sleep(0)
    for byte in b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n":
        h.feed(bytes([byte]))
    status, _, _, stream = await task
    assert status == 200
    assert await stream.read_all() == b"abc"
    assert h.idle == [h.conn]


async def test_connection_close_closes_instead_of_release() -> None:
    h = Harness()
    _, _, _, stream = await _head(
        h, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    )
    assert stream.take_all() == b"ok"
    assert h.transport.closed and h.idle == [] and h.conn in h.lost


async def test_head_response_completes_at_headers_and_parser_is_replaced() -> None:
    h = Harness()
    _, _, _, stream = await _head(
        h, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", method=b"HEAD"
    )
    assert stream.complete and stream.take_all() == b""
    assert h.idle == [h.conn]
    _, _, _, stream = await _head(h, b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nnext")
    assert stream.take_all() == b"next"


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
async def test_204_and_304_have_no_body(status: bytes) -> None:
    h = Harness()
    _, _, _, stream = await _head(h, b"HTTP/1.1 " + status + b"\r\nContent-Length: 9\r\n\r\n")
    assert stream.complete and stream.take_all() == b""
    assert h.idle == [h.conn]


async def test_interim_responses_are_skipped() -> None:
    h = Harness()
    status, _, headers, stream = await _head(
        h, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    )
    assert status == 200 and headers == [(b"Content-Length", b"1")]
    assert stream.take_all() == b"x"


async def test_malformed_status_line_is_remote_protocol_error() -> None:
    h = Harness()
    with pytest.raises(RemoteProtocolError):
        await _head(h, b"HTTP/1.1 abc OK\r\n\r\n")
    assert h.transport.closed and h.conn in h.lost


async def test_bytes_on_an_idle_connection_close_it() -> None:
    h = Harness()
    await _head(h, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    h.feed(b"surprise")
    assert h.transport.closed and h.conn in h.lost and not h.conn.is_idle


async def test_connection_lost_mid_body_fails_the_stream() -> None:
    h = Harness()
    _, _, _, stream = await _head(h, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    h.conn.connection_lost(None)
    with pytest.raises(RemoteProtocolError, match="received 3 bytes"):
        await stream.read_all()


async def test_connection_lost_ends_a_close_delimited_body() -> None:
    h = Harness()
    _, _, _, stream = await _head(h, b"HTTP/1.1 200 OK\r\n\r\nuntil close")
    assert not stream.complete
    h.conn.connection_lost(None)
    assert await stream.read_all() == b"until close"
    assert h.idle == []


async def test_back_pressure_pauses_and_resumes_reading() -> None:
    h = Harness()
    total = HIGH_WATER * 3
    _, _, _, stream = await _head(h, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
    h.feed(b"x" * (HIGH_WATER + 10))
    assert h.transport.paused
    received = await stream.read()
    assert len(received) == HIGH_WATER + 10
    assert not h.transport.paused
    h.feed(b"y" * (total - len(received)))
    assert len(await stream.read_all()) == total - len(received)
    assert h.idle == [h.conn] and not h.transport.paused


@pytest.mark.parametrize(
    "fed",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart"],
    ids=["waiting-for-the-head", "head-arrived"],
)
async def test_cancelling_the_request_aborts_the_connection(fed: bytes) -> None:
    """Cancelled while its head is awaited, or once it has reached the waiter but not the
    caller (issue 12): nobody will read that response, so the connection is dropped."""
    h = Harness()
    task = h.send()
    await asyncio.sleep(0)
    if fed:
        h.feed(fed)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.transport.aborted and h.conn in h.lost


async def test_read_timeout_waiting_for_the_head() -> None:
    h = Harness()
    task = h.send(read_timeout=0.05)
    with pytest.raises(ReadTimeout):
        await asyncio.wait_for(task, 2)
    assert h.transport.aborted


async def test_small_body_goes_out_with_the_head_in_one_write() -> None:
    h = Harness()
    task = h.send(b"POST", b"small body")
    await asyncio.sleep(0)
    assert h.transport.writes == [b"POST / HTTP/1.1\r\nHost: test\r\n\r\nsmall body"]
    h.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    await task


async def test_large_body_is_written_in_slices_not_joined_to_the_head() -> None:
    h = Harness()
    body = bytes(200 * 1024)
    task = h.send(b"POST", body)
    await asyncio.sleep(0)
    assert h.transport.writes[0] == b"POST / HTTP/1.1\r\nHost: test\r\n\r\n"
    assert b"".join(h.transport.writes[1:]) == body
    h.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    await task


async def test_iterator_body_is_framed_as_chunks() -> None:
    h = Harness()
    task = h.send(b"POST", iter([b"ab", b"", b"cde"]), chunked=True)
    await asyncio.sleep(0)
    assert b"".join(h.transport.writes[1:]) == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    h.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    await task


# -- issue 12 -----------------------------------------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_reset_inside_a_close_delimited_body_is_a_read_error() -> None:
    """Item 7: only a clean close ends a body delimited by the close (RFC 9112 section 6.3)."""
    h = Harness()
    _, _, _, stream = await _head(h, b"HTTP/1.1 200 OK\r\n\r\ncut short")
    h.conn.connection_lost(ConnectionResetError(104, "Connection reset by peer"))
    with pytest.raises(ReadError, match="reset"):
        await stream.read_all()
    assert h.idle == [] and h.conn.is_closed


async def test_a_cancelled_request_never_aborts_the_next_owners_request() -> None:
    """Item 10: task A's response completes and the connection goes back to the pool; task B,
    scheduled before A resumes, takes it and sends; then A's cancellation arrives. A's error
    path must not abort what is now B's exchange."""
    h = Harness()
    first = h.send()
    await asyncio.sleep(0)
    go = asyncio.get_running_loop().create_future()

    async def next_owner() -> Any:
        await go
        return await h.conn.send(WireRequest(target=b"/b"), Timeouts())

    second = asyncio.ensure_future(next_owner())
    await asyncio.sleep(0)
    go.set_result(None)  # the next owner runs before the first task resumes...
    h.feed(OK)  # ...the first response completes: the connection is idle again...
    first.cancel()  # ...and the first task is cancelled (a timeout of the caller's, say)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not h.transport.aborted and not h.conn.is_closed
    assert h.transport.writes[-1].startswith(b"GET /b HTTP/1.1")
    h.feed(OK)
    status, _, _, stream = await second
    assert status == 200 and stream.take_all() == b"ok"


async def test_trailers_are_kept_apart_from_the_head() -> None:
    """Item 9: httptools reports trailer fields through on_header, like header fields."""
    h = Harness()
    _, _, headers, stream = await _head(
        h,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Sum: 7\r\nSet-Cookie: t=1\r\n\r\n",
    )
    assert headers == [(b"Transfer-Encoding", b"chunked"), (b"Trailer", b"X-Sum")]
    assert stream.trailers == [(b"X-Sum", b"7"), (b"Set-Cookie", b"t=1")]
    assert stream.take_all() == b"ok" and h.idle == [h.conn]


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 11 + b"\r\n", "more than 10 fields"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 2000 + b"\r\n\r\n", "larger than 1024 bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
         + b"T: 1\r\n" * 11 + b"\r\n", "trailer section has more than 10"),
    ],
    ids=["fields", "size", "trailers"],
)  # fmt: skip
async def test_the_head_limits(response: bytes, match: str) -> None:
    """Item 8: past either limit, RemoteProtocolError and the connection closed."""
    h = Harness(HeadLimits(max_size=1024, max_fields=10))
    if b"trailer" in match.encode():
        _, _, _, stream = await _head(h, response)
        with pytest.raises(RemoteProtocolError, match=match):
            await stream.read_all()
    else:
        with pytest.raises(RemoteProtocolError, match=match):
            await _head(h, response)
    assert h.transport.closed and h.conn in h.lost


async def test_a_head_that_never_ends_is_refused_once_past_the_limit() -> None:
    h = Harness(HeadLimits(max_size=4096))
    task = h.send()
    await asyncio.sleep(0)
    fed = 0
    h.feed(b"HTTP/1.1 200 OK\r\n")
    while not h.conn.is_closed and fed < 1 << 20:  # bounded: the limit must end it long before
        h.feed(b"X-Filler: " + b"z" * 500)  # one field value that never ends
        fed += 510
    assert h.conn.is_closed and fed <= 4096 + 510
    with pytest.raises(RemoteProtocolError, match="larger than 4096"):
        await task


async def test_an_endless_chunk_line_or_trailer_section_is_refused() -> None:
    h = Harness(HeadLimits(max_size=4096))
    _, _, _, stream = await _head(h, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    h.feed(b"2\r\nok\r\n0\r\nX-T: ")
    for _ in range(20):
        h.feed(b"t" * 500)
    with pytest.raises(RemoteProtocolError, match="larger than 4096"):
        await stream.read_all()


LENIENT = (
    b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n second\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'3 ; a=1\r\nabc\r\n4; b = "x y" ;c\r\ndefg\r\n2\r\nhi\r\n1;\td\r\nj\r\n'
    b"0 ; last\r\nX-T: 1\r\n\r\n"
)
LENIENT_LENGTH = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Folded: a\r\n\tb\r\ncontent-length: 5, 5\r\n"
    b"\r\nhello"
)


@pytest.mark.parametrize("message", [LENIENT, LENIENT_LENGTH], ids=["chunked", "length"])
async def test_what_rfc_9112_lets_a_client_accept_at_every_split(message: bytes) -> None:
    """Item 12: obs-fold, a repeated Content-Length of one value, BWS around chunk extensions,
    whichever way the response is cut into reads (every split point, and byte by byte)."""
    splits: list[list[bytes]] = [[message[:i], message[i:]] for i in range(1, len(message))]
    splits.append([message[i : i + 1] for i in range(len(message))])
    for pieces in splits:
        h = Harness()
        task = h.send()
        await asyncio.sleep(0)
        for piece in pieces:
            assert not h.conn.is_closed, pieces
            h.feed(piece)
        status, _, headers, stream = await task
        assert status == 200
        fields = {name.lower(): value for name, value in headers}
        if message is LENIENT:
            assert fields[b"x-folded"] == b"first second"
            assert await stream.read_all() == b"abcdefghij"
            assert stream.trailers == [(b"X-T", b"1")]
        else:
            assert fields[b"x-folded"] == b"a b" and fields[b"content-length"] == b"5"
            assert await stream.read_all() == b"hello"
        assert h.idle == [h.conn], pieces
        h.idle.clear()
        _, _, _, stream = await _head(h, OK)  # the next response: a fresh, strict parser
        assert stream.take_all() == b"ok"


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
        b"HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
    ],
    ids=["differing-lengths", "differing-list", "length-and-chunked", "fold-after-status",
         "fold-then-differing"],
)  # fmt: skip
async def test_real_ambiguity_stays_refused(response: bytes) -> None:
    h = Harness()
    with pytest.raises(RemoteProtocolError, match="malformed response"):
        await _head(h, response)
    assert h.transport.closed and h.idle == []


@pytest.mark.parametrize(
    "body",
    [b"5 6\r\nhello\r\n0\r\n\r\n", b"5;a=1 \r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n"],
    ids=["two-sizes", "trailing-space", "no-crlf-after-data"],
)
async def test_a_malformed_chunked_body_stays_refused(body: bytes) -> None:
    h = Harness()
    _, _, _, stream = await _head(h, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    h.feed(body)
    with pytest.raises(RemoteProtocolError):
        await stream.read_all()
    assert h.transport.closed and h.idle == []


async def test_an_early_response_ends_the_upload_and_is_returned() -> None:
    """Item 5: the server answers while the body is still being sent and stops reading: the
    writer, waiting for the transport to drain, stops; the response is returned; the
    connection closes once that response is complete."""
    h = Harness()
    closed: list[str] = []

    async def body() -> Any:
        try:
            yield b"x" * 1000
            h.conn.pause_writing()  # the server stopped reading: the transport's buffer is full
            yield b"y" * 1000
            yield b"never sent"
        finally:
            closed.append("closed")

    task = h.send(b"POST", body(), chunked=True, write_timeout=5)
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    h.feed(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig")
    status, _, _, stream = await asyncio.wait_for(task, 2)
    assert status == 413 and stream.take_all() == b"big"
    assert b"never sent" not in b"".join(h.transport.writes)
    assert closed == ["closed"]  # the body's iterator was closed when the upload stopped
    assert h.transport.closed and h.idle == [] and h.conn in h.lost


async def test_an_early_response_then_a_reset_is_still_returned() -> None:
    h = Harness()
    task = h.send(b"POST", bytes(300 * 1024), write_timeout=5)
    h.conn.pause_writing()
    await asyncio.sleep(0)
    h.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
    h.conn.connection_lost(ConnectionResetError(104, "Connection reset by peer"))
    status, _, _, stream = await asyncio.wait_for(task, 2)
    assert status == 401 and stream.complete


async def test_without_an_early_response_a_stalled_upload_is_a_write_timeout() -> None:
    h = Harness()
    task = h.send(b"POST", bytes(300 * 1024), write_timeout=0.05)
    h.conn.pause_writing()
    with pytest.raises(WriteTimeout):
        await asyncio.wait_for(task, 2)
    assert h.transport.aborted


# -- the request's wire form and the typed failures the owner decides from --------------------------


def test_encode_request_head_keeps_a_shared_blocks_lines_on_it() -> None:
    block = FieldBlock([(b"Accept", b"*/*"), (b"User-Agent", b"u")])
    request = WireRequest(b"POST", b"abc", target=b"/p?q=1", host=b"h:8080")
    request.fields = (b"h:8080", block, [(b"Content-Length", b"3")])
    head = encode_request_head(request)  # type: ignore[arg-type]
    assert head == (
        b"POST /p?q=1 HTTP/1.1\r\nHost: h:8080\r\nAccept: */*\r\nUser-Agent: u\r\n"
        b"Content-Length: 3\r\n\r\n"
    )
    assert block.h1 == b"Accept: */*\r\nUser-Agent: u\r\n"
    block.pairs = []  # the lines are not made again: what is kept is used
    assert encode_request_head(request) == head  # type: ignore[arg-type]


@pytest.mark.parametrize("reused", [False, True])
async def test_a_failure_before_the_response_is_stale_only_on_a_reused_connection(
    reused: bool,
) -> None:
    h = Harness()
    if reused:
        await _head(h, OK)
        assert h.idle == [h.conn]
    task = h.send()
    await asyncio.sleep(0)
    h.conn.connection_lost(None)
    if reused:
        with pytest.raises(StaleConnection) as info:
            await task
        assert isinstance(info.value.error, RemoteProtocolError)
    else:
        with pytest.raises(RemoteProtocolError):
            await task


async def test_a_failure_after_a_response_byte_is_not_stale() -> None:
    h = Harness()
    await _head(h, OK)
    task = h.send()
    await asyncio.sleep(0)
    h.feed(b"HTTP/1.1 200")
    h.conn.connection_lost(None)
    with pytest.raises(RemoteProtocolError):
        await task


async def test_drain_closes_after_the_response_in_flight() -> None:
    h = Harness()
    task = h.send()
    await asyncio.sleep(0)
    h.conn.drain()
    assert not h.transport.closed
    h.feed(OK)
    _, _, _, stream = await task
    assert h.transport.closed and h.conn.is_closed and h.idle == []
    assert stream.take_all() == b"ok"
    idle = Harness()
    idle.conn.drain()
    assert idle.transport.closed
