"""H2Connection driven without sockets: a fake transport records what the client writes, and a real
server-side ``h2`` connection in memory reads it and answers through ``get_buffer``/``buffer_updated``."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame

from hyperhttp.exceptions import (
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    StreamNotProcessed,
    TLSError,
    WriteTimeout,
)
from hyperhttp.proto import h2 as h2proto
from hyperhttp.proto.base import FieldBlock
from hyperhttp.proto.h2 import CONNECTION_WINDOW, STREAM_WINDOW, H2Connection
from hyperhttp.proto.h2_events import MAX_STREAMS
from hyperhttp.proto.h2_fields import request_fields
from tests.unit.fakes import FakeTransport, Timeouts, WireRequest

KIB = 1024


@pytest.fixture(autouse=True, params=[True, False], ids=["fast", "h2"])
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Every test here runs twice: requests without a body on the fast path (h2_fast.py), and
    every stream through h2; both must give the same results."""
    monkeypatch.setattr(H2Connection, "fast_path", request.param)
    return bool(request.param)


class Harness:
    """A client H2Connection wired to an in-memory h2 server."""

    def __init__(self, server_settings: dict[SettingCodes, int] | None = None) -> None:
        self.buffer = memoryview(bytearray(256 * KIB))
        self.idle: list[H2Connection] = []
        self.lost: list[H2Connection] = []
        self.conn = H2Connection(
            asyncio.get_running_loop(),
            self.buffer,
            lambda: self.idle.append(self.conn),
            lambda: self.lost.append(self.conn),
        )
        self.transport = FakeTransport(strict=True)
        self.transport.protocol = self.conn
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                # lets a test send a malformed response; well-formed ones are unchanged
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        if server_settings is not None:  # else h2's own (MAX_CONCURRENT_STREAMS 100)
            self.server.local_settings = h2.settings.Settings(
                client=False, initial_values=server_settings
            )
        self.server.initiate_connection()  # queued: reaches the client on the first to_client()
        self.events: list[h2.events.Event] = []
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]

    # -- moving bytes ---------------------------------------------------------------------------

    def to_server(self) -> list[h2.events.Event]:
        """What the client wrote so far, into the server; its events (also kept in .events)."""
        data = self.transport.take()
        events = self.server.receive_data(data) if data else []
        self.events.extend(events)
        return events

    def feed(self, data: bytes) -> None:
        size = len(self.buffer)
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            buffer = self.conn.get_buffer(len(piece))
            buffer[: len(piece)] = piece
            self.conn.buffer_updated(len(piece))

    def to_client(self) -> None:
        self.feed(self.server.data_to_send())

    async def exchange(self) -> list[h2.events.Event]:
        """Server to client, let the client's flush run, client to server."""
        self.to_client()
        await asyncio.sleep(0)
        return self.to_server()

    async def handshake(self) -> None:
        self.to_server()
        await self.exchange()
        assert self.conn.ready
        self.events.clear()  # from here on, .events holds what the tests cause

    # -- requests and responses -----------------------------------------------------------------

    def send(
        self,
        body: Any = None,
        *,
        method: bytes = b"GET",
        fields: list[tuple[bytes, bytes]] | None = None,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        length: int | None = None,
    ) -> asyncio.Future[Any]:
        request = WireRequest(method, body, host=b"example.com", fields=fields, length=length)
        self.conn.reserve()
        return asyncio.ensure_future(self.conn.send(request, Timeouts(read_timeout, write_timeout)))

    async def open(self, count: int = 1, **kwargs: Any) -> list[tuple[int, asyncio.Future[Any]]]:
        """Start ``count`` requests; their stream ids (as the server saw them) and tasks."""
        tasks = [self.send(**kwargs) for _ in range(count)]
        await settle()
        events = self.to_server()
        ids = [e.stream_id for e in events if isinstance(e, h2.events.RequestReceived)]
        assert len(ids) == count
        return list(zip(ids, tasks, strict=True))

    def respond(
        self, stream_id: int, status: bytes = b"200", end_stream: bool = False, **fields: str
    ) -> None:
        headers = [(b":status", status)]
        headers += [(k.replace("_", "-").encode(), v.encode()) for k, v in fields.items()]
        self.server.send_headers(stream_id, headers, end_stream=end_stream)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """DATA frames of at most the server's frame size; must fit in its windows."""
        server = self.server
        assert len(data) <= server.local_flow_control_window(stream_id)
        step = server.max_outbound_frame_size
        view = memoryview(data)
        while len(view) > step:
            server.send_data(stream_id, view[:step])
            view = view[step:]
        server.send_data(stream_id, view, end_stream=end_stream)

    def credit(self, stream_id: int) -> int:
        """What the client has handed back on ``stream_id`` (0: the connection) so far."""
        return sum(
            e.delta
            for e in self.events
            if isinstance(e, h2.events.WindowUpdated) and e.stream_id == stream_id
        )

    def received(self, stream_id: int) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def ended(self, stream_id: int) -> bool:
        return any(
            isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in self.events
        )

    def resets(self) -> dict[int, ErrorCodes]:
        return {
            e.stream_id: e.error_code for e in self.events if isinstance(e, h2.events.StreamReset)
        }


async def settle() -> None:
    """Let started tasks run a step, then the client's ``call_soon`` flush."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def _drain(body: Any) -> int:
    """Read what the body holds now (never waits); the number of bytes taken."""
    taken = 0
    while body._chunks:  # noqa: SLF001
        taken += len(await body.read())
    return taken


# -- request_fields ---------------------------------------------------------------------------------


def test_request_fields_pseudo_headers_first_and_connection_fields_dropped() -> None:
    own = [
        (b"User-Agent", b"hyperhttp"),
        (b"Connection", b"keep-alive"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Connection", b"keep-alive"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"h2c"),
        (b"Host", b"second.example"),  # a second Host field is never sent: :authority is
        (b"X-Custom-Thing", b"spaced value"),
        (b"Accept", b"*/*"),
    ]
    request = WireRequest(b"POST", target=b"/a?b=1", host=b"Example.COM:8443", fields=own)
    assert request_fields(request, b"https") == [  # type: ignore[arg-type]
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", b"Example.COM:8443"),
        (b":path", b"/a?b=1"),
        (b"user-agent", b"hyperhttp"),
        (b"x-custom-thing", b"spaced value"),
        (b"accept", b"*/*"),
    ]


@pytest.mark.parametrize(
    ("value", "kept"), [(b"trailers", True), (b"Trailers", True), (b"gzip", False), (b"", False)]
)
def test_request_fields_te_kept_only_for_trailers(value: bytes, kept: bool) -> None:
    request = WireRequest(host=b"h", fields=[(b"TE", value)])
    fields = request_fields(request, b"http")  # type: ignore[arg-type]
    assert ((b"te", value) in fields) is kept
    assert [name for name, _ in fields].count(b"te") == int(kept)


def test_a_shared_blocks_field_list_is_made_once_and_kept_on_it() -> None:
    block = FieldBlock([(b"Accept", b"x"), (b"Connection", b"close"), (b"User-Agent", b"u")])
    first = WireRequest(b"GET", target=b"/1", host=b"a")
    first.fields = (b"a", block, [])
    second = WireRequest(b"PUT", b"body", target=b"/2", host=b"b")
    second.fields = (b"b", block, [(b"Content-Length", b"4")])
    one = request_fields(first, b"https")  # type: ignore[arg-type]
    assert block.h2 == [(b"accept", b"x"), (b"user-agent", b"u")]
    kept = block.h2
    two = request_fields(second, b"https")  # type: ignore[arg-type]
    assert block.h2 is kept  # not made again
    assert one[4:] == [(b"accept", b"x"), (b"user-agent", b"u")]
    assert two == [
        (b":method", b"PUT"),
        (b":scheme", b"https"),
        (b":authority", b"b"),
        (b":path", b"/2"),
        (b"accept", b"x"),
        (b"user-agent", b"u"),
        (b"content-length", b"4"),
    ]
    one.append((b"mutated", b"1"))  # the caller's list is its own
    assert block.h2 == [(b"accept", b"x"), (b"user-agent", b"u")]


# -- capacity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({SettingCodes.MAX_CONCURRENT_STREAMS: 7}, 7),
        ({SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS * 5}, MAX_STREAMS),
        ({}, MAX_STREAMS),  # no limit announced
        (None, 100),  # h2's default
    ],
)
async def test_one_stream_until_server_settings_then_its_limit(
    settings: dict[SettingCodes, int] | None, expected: int
) -> None:
    h = Harness(settings)
    assert h.conn.available == 1 and h.conn.capacity == 1 and not h.conn.ready
    h.to_server()
    h.to_client()  # the server's SETTINGS
    assert h.conn.ready
    assert h.conn.capacity == expected and h.conn.available == expected
    assert h.idle == [h.conn]  # capacity went up: the pool is told


async def test_reserve_unreserve_and_on_idle_when_a_stream_ends() -> None:
    h = Harness({SettingCodes.MAX_CONCURRENT_STREAMS: 3})
    await h.handshake()
    h.idle.clear()
    h.conn.reserve()
    h.conn.reserve()
    assert (h.conn.in_use, h.conn.available, h.conn.is_idle) == (2, 1, False)
    h.conn.unreserve()
    assert (h.conn.in_use, h.conn.available) == (1, 2)
    assert h.idle == [h.conn]
    h.conn.unreserve()
    h.idle.clear()
    assert h.conn.is_idle
    [(sid, task)] = await h.open()
    assert (h.conn.in_use, h.conn.available) == (1, 2)
    h.respond(sid)
    h.to_client()
    _, _, _, body = await task
    assert h.idle == []  # the response is still streaming
    h.send_data(sid, b"done", end_stream=True)
    h.to_client()
    assert h.idle == [h.conn]
    assert (h.conn.in_use, h.conn.available, h.conn.is_idle) == (0, 3, True)
    assert await body.read_all() == b"done"


async def test_head_stream_place_is_not_offered_before_h2_closes_it() -> None:
    h = Harness({SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    await h.handshake()
    [(s1, t1)] = await h.open(method=b"HEAD")
    h.respond(s1, content_length="5")  # HEADERS without END_STREAM; an empty DATA ends it later
    h.to_client()
    _, _, _, body = await t1
    assert body.complete
    if h.conn.available:  # the place is offered again, so a request on it must go out
        task = h.send()
        await settle()
        assert not task.done() or task.exception() is None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await settle()
        h.to_server()
    if s1 not in h.resets():
        h.send_data(s1, b"", end_stream=True)
        h.to_client()
    assert h.conn.available == 1


async def test_h2_holds_no_stream_the_client_is_done_with() -> None:
    # The open-stream count h2 checks comes from our accounts, and a stream h2 ran is dropped
    # from h2's dict once the client is done with it (h2 would sweep closed streams on its
    # own only now and then). The requests have a body, so that h2 runs them on the fast path
    # too.
    h = Harness()
    await h.handshake()
    for _ in range(10):
        opened = await h.open(8, body=b"x")
        assert len(h.conn._h2.streams) == 8
        for sid, _task in opened:
            h.respond(sid, end_stream=True)
        h.to_client()
        for _sid, task in opened:
            status, _, _, body = await task
            assert status == 200 and body.complete
        assert len(h.conn._h2.streams) == 0
    assert h.conn.in_use == 0


async def test_max_concurrent_streams_zero_offers_no_stream() -> None:
    h = Harness({SettingCodes.MAX_CONCURRENT_STREAMS: 0})
    await h.handshake()
    assert h.conn.available == 0


# -- responses --------------------------------------------------------------------------------------


async def test_response_head_fields_and_body_fed_as_data_arrives() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open()
    h.respond(sid, content_type="text/plain", x_a="1")
    h.to_client()
    status, version, fields, body = await task
    assert (status, version) == (200, "HTTP/2")
    assert fields == [(b"content-type", b"text/plain"), (b"x-a", b"1")]
    assert not body.complete
    h.send_data(sid, b"hello ")
    h.to_client()
    assert await body.read() == b"hello "
    assert not body.complete
    reader = asyncio.ensure_future(body.read())
    await asyncio.sleep(0)
    assert not reader.done()  # waits for DATA
    h.send_data(sid, b"world", end_stream=True)
    h.to_client()
    assert await reader == b"world"
    assert body.complete and await body.read() == b""


async def test_response_with_end_stream_on_headers_has_an_empty_complete_body() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open()
    h.respond(sid, b"204", end_stream=True)
    h.to_client()
    status, _, _, body = await task
    assert status == 204 and body.complete and await body.read_all() == b""
    assert h.conn.in_use == 0


async def test_trailers_are_ignored_and_end_the_body() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open()
    h.respond(sid)
    h.send_data(sid, b"abc")
    h.server.send_headers(sid, [(b"x-checksum", b"123")], end_stream=True)
    h.to_client()
    status, _, fields, body = await task
    assert status == 200 and fields == []
    assert await body.read_all() == b"abc" and body.complete
    assert h.conn.in_use == 0


async def test_informational_responses_are_skipped() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open()
    h.respond(sid, b"100")
    h.respond(sid, b"103", link="</s.css>; rel=preload")
    h.to_client()
    await asyncio.sleep(0)
    assert not task.done()
    h.respond(sid, b"200", end_stream=True, x_final="yes")
    h.to_client()
    status, _, fields, _ = await task
    assert status == 200 and fields == [(b"x-final", b"yes")]


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"text/plain")],  # no :status
        [(b":status", b"20x")],
        [(b":status", b"200"), (b"connection", b"close")],
        [(b":status", b"200"), (b"X-Upper", b"1")],
    ],
    ids=["no status", "bad status", "connection field", "upper-case name"],
)
async def test_malformed_response_fails_that_stream_only(
    headers: list[tuple[bytes, bytes]],
) -> None:
    h = Harness()
    await h.handshake()
    (s1, t1), (s3, t3) = await h.open(2)
    h.server.send_headers(s1, headers)
    h.to_client()
    with pytest.raises(RemoteProtocolError, match="malformed|status"):
        await t1
    await settle()
    h.to_server()
    assert h.resets() == {s1: ErrorCodes.PROTOCOL_ERROR}
    h.respond(s3, end_stream=True)
    h.to_client()
    assert (await t3)[0] == 200
    assert h.conn.in_use == 0 and not h.conn.is_closed


async def test_head_response_body_is_complete_at_headers() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open(method=b"HEAD")
    h.respond(sid, content_length="50")
    h.to_client()
    _, _, fields, body = await task
    assert fields == [(b"content-length", b"50")]
    assert body.complete and await body.read_all() == b""


# -- flow control on receipt ------------------------------------------------------------------------


async def test_credit_is_given_back_as_the_body_is_read_not_as_it_arrives() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open()
    h.respond(sid)
    size = 600 * KIB
    h.send_data(sid, b"x" * size)
    h.to_client()
    _, _, _, body = await task
    await h.exchange()
    assert h.credit(sid) == 0 and h.credit(0) == 0
    assert h.server.local_flow_control_window(sid) == STREAM_WINDOW - size
    assert await _drain(body) == size
    await h.exchange()
    # The stream is credited in steps of a quarter of its window; the connection's quarter
    # (4 MiB) is not reached yet.
    quarter = STREAM_WINDOW // 4
    assert h.credit(sid) == size // quarter * quarter > 0
    assert h.server.local_flow_control_window(sid) == STREAM_WINDOW - size + h.credit(sid)
    assert h.credit(0) == 0


async def test_connection_credit_after_a_quarter_of_its_window_is_read() -> None:
    h = Harness()
    await h.handshake()
    streams = await h.open(5)
    bodies = []
    for sid, _ in streams:
        h.respond(sid)
        h.send_data(sid, b"y" * STREAM_WINDOW, end_stream=True)  # each fills its stream window
    h.to_client()
    for _, task in streams:
        bodies.append((await task)[3])
    await h.exchange()
    assert h.credit(0) == 0
    connection_window = h.server.local_flow_control_window(streams[-1][0])
    assert connection_window == 0  # stream window exhausted
    read = 0
    for body in bodies:
        read += len(await body.read_all())
        await h.exchange()
        expected = CONNECTION_WINDOW // 4 if read >= CONNECTION_WINDOW // 4 else 0
        assert h.credit(0) == expected, read
    assert read == 5 * STREAM_WINDOW
    assert (
        h.server.outbound_flow_control_window == CONNECTION_WINDOW - read + CONNECTION_WINDOW // 4
    )


async def test_padding_is_credited_at_once_without_reading() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open()
    h.respond(sid)
    h.to_client()
    _, _, _, body = await task
    frames = STREAM_WINDOW // 4 // 256 + 1  # 1 pad-length byte + 255 of padding each
    for _ in range(frames):
        h.server.send_data(sid, b"d", pad_length=255)
    await h.exchange()
    assert h.credit(sid) >= STREAM_WINDOW // 4  # the padding alone, nothing read
    assert h.credit(sid) <= frames * 256
    assert body._buffered == frames  # noqa: SLF001 - the data bytes are still unread
    assert await _drain(body) == frames


async def test_body_closed_unread_gives_back_what_was_buffered() -> None:
    h = Harness()
    await h.handshake()
    streams = await h.open(4)
    for sid, _ in streams:
        h.respond(sid)
        h.send_data(sid, b"z" * STREAM_WINDOW)
    h.to_client()
    bodies = [(await task)[3] for _, task in streams]
    await h.exchange()
    assert h.credit(0) == 0
    for body in bodies:
        body.close()  # unfinished: the stream is reset
    await h.exchange()
    assert h.resets() == {sid: ErrorCodes.CANCEL for sid, _ in streams}
    assert h.credit(0) == 4 * STREAM_WINDOW  # == CONNECTION_WINDOW // 4: handed back at once
    assert all(h.credit(sid) == 0 for sid, _ in streams)
    assert h.conn.in_use == 0


async def test_complete_body_closed_unread_gives_back_what_was_buffered() -> None:
    h = Harness()
    await h.handshake()
    streams = await h.open(5)
    for sid, _ in streams:
        h.respond(sid)
        h.send_data(sid, b"z" * STREAM_WINDOW, end_stream=True)
    h.to_client()
    bodies = [(await task)[3] for _, task in streams]
    for body in bodies:
        assert body.complete
        body.close()
    await h.exchange()
    assert h.resets() == {}
    assert h.credit(0) == CONNECTION_WINDOW // 4


# -- flow control on sending ------------------------------------------------------------------------


async def test_request_body_is_sent_within_the_server_windows() -> None:
    h = Harness({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    await h.handshake()
    payload = bytes(range(256)) * 40  # 10240 bytes
    task = h.send(payload, method=b"POST")
    await asyncio.sleep(0)
    h.to_server()
    [sid] = [e.stream_id for e in h.events if isinstance(e, h2.events.RequestReceived)]
    assert h.received(sid) == payload[:1000] and not h.ended(sid)
    await asyncio.sleep(0)
    assert h.to_server() == []  # waiting for the window
    sent = 1000
    for grant in (4000, 5240):
        h.server.increment_flow_control_window(grant, stream_id=sid)
        await h.exchange()
        await asyncio.sleep(0)
        h.to_server()
        sent += grant
        assert h.received(sid) == payload[:sent]
    assert h.ended(sid)
    assert not task.done()
    h.respond(sid, end_stream=True)
    h.to_client()
    assert (await task)[0] == 200
    assert h.conn.in_use == 0


async def test_request_body_waits_for_the_connection_window() -> None:
    h = Harness({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    await h.handshake()
    payload = b"p" * 100_000
    task = h.send([payload[:60_000], payload[60_000:]], method=b"POST")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    h.to_server()
    [sid] = [e.stream_id for e in h.events if isinstance(e, h2.events.RequestReceived)]
    assert len(h.received(sid)) == 65535  # the connection's default window
    h.server.increment_flow_control_window(50_000)  # the connection
    await h.exchange()
    await asyncio.sleep(0)
    h.to_server()
    assert h.received(sid) == payload and h.ended(sid)
    h.respond(sid, end_stream=True)
    h.to_client()
    assert (await task)[0] == 200


async def test_write_timeout_while_waiting_for_the_window_resets_the_stream() -> None:
    h = Harness({SettingCodes.INITIAL_WINDOW_SIZE: 10})
    await h.handshake()
    task = h.send(b"x" * 100, method=b"POST", write_timeout=0.02)
    with pytest.raises(WriteTimeout):
        await asyncio.wait_for(task, 1)
    await asyncio.sleep(0)
    h.to_server()
    [sid] = [e.stream_id for e in h.events if isinstance(e, h2.events.RequestReceived)]
    assert h.resets() == {sid: ErrorCodes.CANCEL}
    assert h.conn.in_use == 0 and not h.conn.is_closed


async def test_settings_raising_the_initial_window_lets_a_waiting_body_go() -> None:
    h = Harness({SettingCodes.INITIAL_WINDOW_SIZE: 0})
    await h.handshake()
    task = h.send(b"q" * 3000, method=b"POST")
    await settle()
    h.to_server()
    [sid] = [e.stream_id for e in h.events if isinstance(e, h2.events.RequestReceived)]
    assert h.received(sid) == b""
    h.server.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 5000})
    await h.exchange()
    await settle()
    h.to_server()
    assert h.received(sid) == b"q" * 3000 and h.ended(sid)
    h.respond(sid, end_stream=True)
    h.to_client()
    assert (await task)[0] == 200


async def test_paused_writing_holds_the_body_until_resumed() -> None:
    h = Harness({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    h.server.increment_flow_control_window(1 << 20)  # the connection window
    await h.handshake()
    h.conn.pause_writing()
    payload = b"w" * (700 * KIB)
    task = h.send(payload, method=b"POST")
    await settle()
    h.to_server()
    [sid] = [e.stream_id for e in h.events if isinstance(e, h2.events.RequestReceived)]
    first = len(h.received(sid))
    assert 0 < first < len(payload) and not h.ended(sid)  # one write batch, then it waits
    await settle()
    assert h.to_server() == []
    h.conn.resume_writing()
    await settle()
    h.to_server()
    assert h.received(sid) == payload and h.ended(sid)
    h.respond(sid, end_stream=True)
    h.to_client()
    assert (await task)[0] == 200


async def test_early_response_and_rst_no_error_end_a_body_waiting_for_window() -> None:
    h = Harness({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    await h.handshake()
    task = h.send(b"x" * 10_000, method=b"POST")
    await settle()
    h.to_server()
    [sid] = [e.stream_id for e in h.events if isinstance(e, h2.events.RequestReceived)]
    assert len(h.received(sid)) == 1000  # the sender waits for WINDOW_UPDATE
    # RFC 9113 8.1: a complete response, then RST_STREAM(NO_ERROR) to stop the upload.
    h.respond(sid, b"413", end_stream=True)
    h.server.reset_stream(sid, ErrorCodes.NO_ERROR)
    h.to_client()
    assert h.conn.in_use == 0
    for _ in range(5):
        await asyncio.sleep(0)
    try:
        assert task.done()
        status, _, _, body = await task
        assert status == 413 and body.complete
    finally:
        task.cancel()


@pytest.mark.parametrize(
    ("chunks", "length", "match"),
    [([b"abc", b"de"], 10, "5 bytes short"), ([b"abc", b"defg"], 5, "longer than")],
)
async def test_content_length_not_met_raises_and_resets_the_stream(
    chunks: list[bytes], length: int, match: str
) -> None:
    h = Harness()
    await h.handshake()

    async def body() -> Any:
        for chunk in chunks:
            yield chunk

    task = h.send(body(), method=b"POST", length=length)
    with pytest.raises(LocalProtocolError, match=match):
        await task
    await asyncio.sleep(0)
    h.to_server()
    [sid] = [e.stream_id for e in h.events if isinstance(e, h2.events.RequestReceived)]
    assert h.resets() == {sid: ErrorCodes.INTERNAL_ERROR}
    assert not h.ended(sid)
    assert h.conn.in_use == 0 and not h.conn.is_closed
    [(sid2, task2)] = await h.open()  # the connection goes on
    h.respond(sid2, end_stream=True)
    h.to_client()
    assert (await task2)[0] == 200


# -- resets and GOAWAY ------------------------------------------------------------------------------


async def test_rst_stream_fails_that_stream_only() -> None:
    h = Harness()
    await h.handshake()
    (s1, t1), (s2, t2), (s3, t3) = await h.open(3)
    h.respond(s3)
    h.send_data(s3, b"partial")
    h.to_client()
    _, _, _, body3 = await t3
    h.server.reset_stream(s1, ErrorCodes.INTERNAL_ERROR)
    h.server.reset_stream(s3, ErrorCodes.STREAM_CLOSED)
    h.to_client()
    with pytest.raises(RemoteProtocolError, match="INTERNAL_ERROR") as info:
        await t1
    assert not isinstance(info.value, StreamNotProcessed)
    assert await body3.read() == b"partial"
    with pytest.raises(RemoteProtocolError, match="STREAM_CLOSED"):
        await body3.read()
    assert not t2.done()
    h.respond(s2, end_stream=True)
    h.to_client()
    assert (await t2)[0] == 200
    assert h.conn.in_use == 0 and not h.conn.is_closed and h.conn.available > 0


async def test_refused_stream_before_a_response_is_not_processed() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open()
    h.server.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
    h.to_client()
    with pytest.raises(StreamNotProcessed):
        await task
    assert h.conn.in_use == 0 and not h.conn.is_closed


async def test_goaway_fails_streams_above_last_id_and_lets_the_others_finish() -> None:
    h = Harness()
    await h.handshake()
    (s1, t1), (s3, t3), (s5, t5), (s7, t7) = await h.open(4)
    assert (s1, s3, s5, s7) == (1, 3, 5, 7)
    h.respond(s1)
    h.send_data(s1, b"before ")
    h.to_client()
    _, _, _, body1 = await t1
    h.lost.clear()
    # The server object keeps serving streams 1 and 3 after this GOAWAY.
    h.feed(GoAwayFrame(0, last_stream_id=3, error_code=0).serialize())
    for task in (t5, t7):
        with pytest.raises(StreamNotProcessed):
            await task
    assert h.conn.available == 0 and not h.conn.is_idle
    assert h.lost == [h.conn]
    assert h.conn.in_use == 2 and not h.transport.closed
    h.send_data(s1, b"after", end_stream=True)
    h.respond(s3)
    h.send_data(s3, b"three")
    h.to_client()
    assert await body1.read_all() == b"before after"
    assert not h.transport.closed  # stream 3 still going
    _, _, _, body3 = await t3
    h.send_data(s3, b"", end_stream=True)
    h.to_client()
    assert await body3.read_all() == b"three"
    assert h.transport.closed and h.conn.in_use == 0
    assert h.idle == [h.conn]  # only the handshake's SETTINGS; not once after the GOAWAY


async def test_goaway_without_open_streams_closes_at_once() -> None:
    h = Harness()
    await h.handshake()
    h.feed(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
    assert h.transport.closed and h.lost and h.conn.available == 0
    await asyncio.sleep(0)
    assert h.conn.is_closed


async def test_second_goaway_lowers_last_stream_id() -> None:
    h = Harness()
    await h.handshake()
    (s1, t1), (s3, t3) = await h.open(2)
    h.feed(GoAwayFrame(0, last_stream_id=2**31 - 1, error_code=0).serialize())
    assert not t1.done() and not t3.done() and h.lost == [h.conn]
    h.feed(GoAwayFrame(0, last_stream_id=1, error_code=0).serialize())
    with pytest.raises(StreamNotProcessed):
        await t3
    assert h.lost == [h.conn]
    h.respond(s1, end_stream=True)
    h.to_client()
    assert (await t1)[0] == 200
    assert h.transport.closed


async def test_cancelling_a_request_resets_only_its_stream() -> None:
    h = Harness()
    await h.handshake()
    (s1, t1), (s3, t3) = await h.open(2)
    h.idle.clear()
    t1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t1
    await asyncio.sleep(0)
    h.to_server()
    assert h.resets() == {s1: ErrorCodes.CANCEL}
    assert h.conn.in_use == 1 and h.idle == [h.conn]
    assert not h.transport.closed and not t3.done()
    h.respond(s3, end_stream=True)
    h.to_client()
    assert (await t3)[0] == 200
    [(s5, t5)] = await h.open()
    h.respond(s5)
    h.send_data(s5, b"ok", end_stream=True)
    h.to_client()
    assert await (await t5)[3].read_all() == b"ok"
    assert h.conn.in_use == 0 and not h.conn.is_closed


async def test_read_timeout_fails_the_waiting_stream_and_resets_it() -> None:
    h = Harness()
    await h.handshake()
    [(s1, t1)] = await h.open(read_timeout=0.05)
    [(s3, t3)] = await h.open()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ReadTimeout):
        await asyncio.wait_for(t1, 1)
    assert 0.04 <= loop.time() - started < 0.5
    await asyncio.sleep(0)
    h.to_server()
    assert h.resets() == {s1: ErrorCodes.CANCEL}
    assert not t3.done()
    h.respond(s3, end_stream=True)
    h.to_client()
    assert (await t3)[0] == 200
    assert h.conn.in_use == 0


async def test_read_timeout_does_not_fire_once_the_head_arrived() -> None:
    h = Harness()
    await h.handshake()
    [(sid, task)] = await h.open(read_timeout=0.03)
    h.respond(sid)
    h.to_client()
    _, _, _, body = await task
    await asyncio.sleep(0.06)
    h.send_data(sid, b"late", end_stream=True)
    h.to_client()
    assert await body.read_all() == b"late"
    await asyncio.sleep(0)
    h.to_server()
    assert h.resets() == {}


# -- connection errors ------------------------------------------------------------------------------

_INVALID = {
    "data on stream 0": b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x",
    "settings of bad length": b"\x00\x00\x05\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    # h2 checks a frame's length once the whole frame is in
    "frame larger than allowed": (h2proto.MAX_FRAME + 1).to_bytes(3, "big")
    + b"\x00\x00\x00\x00\x00\x01"
    + b"\x00" * (h2proto.MAX_FRAME + 1),
    "data on an idle stream": b"\x00\x00\x01\x00\x00\x00\x00\x00\x09x",
}


@pytest.mark.parametrize("frame", list(_INVALID.values()), ids=list(_INVALID))
async def test_protocol_violation_fails_every_stream(frame: bytes) -> None:
    h = Harness()
    await h.handshake()
    (s1, t1), (s3, t3) = await h.open(2)
    h.respond(s3)
    h.send_data(s3, b"abc")
    h.to_client()
    _, _, _, body3 = await t3
    h.lost.clear()
    h.feed(frame)
    assert h.transport.closed and h.conn.is_closed and h.conn.available == 0
    assert h.lost == [h.conn]  # at once (and again from connection_lost, below)
    with pytest.raises(RemoteProtocolError, match="protocol error"):
        await t1
    with pytest.raises(RemoteProtocolError):
        await body3.read_all()
    assert h.conn.socket_closed and h.lost == [h.conn, h.conn]
    events = h.to_server()
    [goaway] = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway.error_code in (ErrorCodes.PROTOCOL_ERROR, ErrorCodes.FRAME_SIZE_ERROR)


def _ssl_error(
    cls: type[ssl.SSLError] = ssl.SSLError, reason: str = "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"
) -> ssl.SSLError:
    """An SSLError as the ssl module raises it (the C code sets ``reason``)."""
    exc = cls(1, f"[SSL: {reason}] failure")
    exc.reason = reason  # type: ignore[misc]
    return exc


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (ConnectionResetError("reset by peer"), ReadError),
        (_ssl_error(), TLSError),
        (_ssl_error(ssl.SSLEOFError, "UNEXPECTED_EOF_WHILE_READING"), TLSError),
        (None, RemoteProtocolError),
    ],
)
async def test_connection_lost_fails_every_stream(
    exc: Exception | None, error: type[Exception]
) -> None:
    h = Harness()
    await h.handshake()
    (s1, t1), (s3, t3) = await h.open(2)
    h.respond(s3)
    h.send_data(s3, b"abc")
    h.to_client()
    _, _, _, body3 = await t3
    h.conn.connection_lost(exc)
    with pytest.raises(error):
        await t1
    with pytest.raises(error):
        await body3.read_all()
    assert h.conn.is_closed and h.conn.in_use == 0 and h.conn.available == 0
    assert h.conn.socket_closed and h.conn in h.lost


async def test_connection_lost_tls_error_names_the_reason() -> None:
    h = Harness()
    await h.handshake()
    [(_, task)] = await h.open()
    h.conn.connection_lost(_ssl_error())
    with pytest.raises(TLSError, match="decryption failed or bad record mac"):
        await task


async def test_close_sends_goaway_and_fails_streams() -> None:
    h = Harness()
    await h.handshake()
    [(_, task)] = await h.open()
    h.conn.close()
    with pytest.raises(ReadError):
        await task
    assert h.transport.closed and h.conn.is_closed
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in h.to_server())
