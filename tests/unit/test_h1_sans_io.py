"""H1Connection driven without sockets: bytes in through buffer_updated, writes recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hyperhttp.exceptions import ReadTimeout, RemoteProtocolError
from hyperhttp.proto.h1 import H1Connection, encode_request_head
from hyperhttp.proto.stream import HIGH_WATER
from tests.unit.fakes import FakeTransport


class Harness:
    def __init__(self) -> None:
        self.buffer = memoryview(bytearray(1 << 16))
        self.idle: list[H1Connection] = []
        self.lost: list[H1Connection] = []
        self.conn = H1Connection(
            asyncio.get_running_loop(), self.buffer, self.idle.append, self.lost.append
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

    def send(self, method: bytes = b"GET", body: Any = None, **kwargs: Any) -> asyncio.Future[Any]:
        head = encode_request_head(method, b"/", b"Host: test\r\n")
        options = {"is_head": method == b"HEAD", "chunked": False, "read_timeout": None,
                   "write_timeout": None, **kwargs}  # fmt: skip
        return asyncio.ensure_future(self.conn.send(head, body, **options))


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


async def test_cancelling_the_request_aborts_the_connection() -> None:
    h = Harness()
    task = h.send()
    await asyncio.sleep(0)
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
