"""The HTTP/2 fast path (proto/h2_fast.py) against h2 itself: the same scripted exchanges, run
once with the fast path on and once with every stream through h2, give the same bytes on the
wire and the same results (response heads, bodies, trailers, errors, the connection's state).

The server's side is raw frames built with hyperframe and a plain hpack encoder, so that a script
can send what no well-behaved server sends (padding, CONTINUATION, lies about lengths, frames on
closed streams). Each script runs whole, fed in one read per step, and again fed a few bytes at a
time (frames split across reads).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import hpack
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from hyperhttp.proto.h2 import MAX_FRAME, STREAM_WINDOW, H2Connection
from tests.unit.fakes import FakeTransport, Timeouts, WireRequest

KIB = 1024
Fields = list[tuple[bytes, bytes]]


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


class Side:
    """One client connection (fast path on or off) and the scripted server's frames."""

    def __init__(self, fast: bool, step: int | None) -> None:
        self.lost = 0
        self.conn = H2Connection(
            asyncio.get_running_loop(),
            memoryview(bytearray(256 * KIB)),
            lambda: None,
            self._lose,
        )
        self.conn.fast_path = fast
        self.shut: str | None = None
        self._connection_shut = self.conn._shut
        self.conn._shut = self._shut  # type: ignore[method-assign]
        # The fast path indexes :authority and shared fields in HPACK's dynamic table, where h2's
        # path encodes every block alone: compared byte for byte, both encode alone here (the
        # indexing is checked against a real decoder in test_requests_index_their_constant_fields).
        self.conn._h2.encoder.indexing = False
        self.transport = FakeTransport()
        self.transport.protocol = self.conn
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]
        self.step = step  # bytes per read (None: a step's frames in one read)
        self.encoder = hpack.Encoder()
        self.tasks: list[asyncio.Future[Any]] = []

    def _lose(self) -> None:
        self.lost += 1

    def _shut(self, error: Exception) -> None:
        """The connection's own ``_shut``, recording why it ended (the first reason)."""
        if self.shut is None:
            self.shut = f"{type(error).__name__}: {error}"
        self._connection_shut(error)

    # -- the client ---------------------------------------------------------------------------

    async def request(
        self, count: int = 1, method: bytes = b"GET", body: Any = None, fields: Fields | None = None
    ) -> list[asyncio.Future[Any]]:
        started = []
        for _ in range(count):
            request = WireRequest(method, body, host=b"example.com", fields=fields)
            self.conn.reserve()
            task = asyncio.ensure_future(self.conn.send(request, Timeouts(None, None)))
            started.append(task)
        self.tasks += started
        await settle()
        return started

    async def read(self, task: asyncio.Future[Any]) -> None:
        """The reader takes what the body holds (its credit goes back to the server)."""
        body = task.result()[3]
        body.take_all()
        await settle()

    async def cancel(self, task: asyncio.Future[Any]) -> None:
        task.cancel()
        await settle()

    # -- the server ---------------------------------------------------------------------------

    def block(self, fields: Fields) -> bytes:
        return bytes(self.encoder.encode(fields))

    async def feed(self, *frames: Any) -> None:
        data = b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames)
        step = self.step or 256 * KIB
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            buffer = self.conn.get_buffer(len(piece))
            buffer[: len(piece)] = piece
            self.conn.buffer_updated(len(piece))
        await settle()

    async def handshake(self, **settings: int) -> None:
        codes = {"max_concurrent_streams": 3, "initial_window_size": 4}
        values = {codes[name]: value for name, value in settings.items()}
        await self.feed(SettingsFrame(0, settings=values), SettingsFrame(0, flags=["ACK"]))

    # -- what came of it ----------------------------------------------------------------------

    def record(self) -> dict[str, Any]:
        outcomes = []
        for task in self.tasks:
            if not task.done():
                outcomes.append("pending")
            elif task.cancelled():
                outcomes.append("cancelled")
            elif task.exception() is not None:
                exc = task.exception()
                outcomes.append((type(exc).__name__, str(exc)))
            else:
                status, version, fields, body = task.result()
                error = body._error  # noqa: SLF001
                outcomes.append(
                    (
                        status,
                        fields,
                        b"".join(body._chunks),  # noqa: SLF001
                        body.complete,
                        (type(error).__name__, str(error)) if error is not None else None,
                        list(body.trailers),
                    )
                )
        conn = self.conn
        return {
            "wire": b"".join(self.transport.writes),
            "outcomes": outcomes,
            "state": (conn.in_use, conn.available, conn.is_closed, self.transport.closed),
            "shut": self.shut,
        }


Script = Callable[[Side], Awaitable[None]]


async def both(script: Script) -> dict[str, Any]:
    """Run ``script`` with the fast path on and off, whole and in small reads; all four must
    agree. The fast path's record."""
    records = {}
    for fast in (True, False):
        for step in (None, 7):
            side = Side(fast, step)
            await script(side)
            await settle()
            records[fast, step] = side.record()
            for task in side.tasks:
                if not task.done():
                    task.cancel()
            side.conn.close()
            await settle()
    first = records[True, None]
    for key, record in records.items():
        assert record["outcomes"] == first["outcomes"], key
        assert record["state"] == first["state"], key
        assert record["shut"] == first["shut"], key
        assert record["wire"] == first["wire"], key
    return first


OK: Fields = [(b":status", b"200"), (b"content-type", b"text/plain")]


def ok(length: int | None = None) -> Fields:
    return OK + ([(b"content-length", str(length).encode())] if length is not None else [])


# -- normal exchanges ---------------------------------------------------------------------------


async def test_responses_ending_in_every_way() -> None:
    async def script(s: Side) -> None:
        await s.handshake(max_concurrent_streams=10)
        await s.request(3)
        await s.request(1, method=b"HEAD")
        await s.feed(
            HeadersFrame(1, s.block(ok(0)), flags=["END_HEADERS", "END_STREAM"]),
            HeadersFrame(3, s.block(ok(5)), flags=["END_HEADERS"]),
            DataFrame(3, b"hello", flags=["END_STREAM"]),
            HeadersFrame(5, s.block(OK), flags=["END_HEADERS"]),
            DataFrame(5, b"a"),
            DataFrame(5, b"b"),
            HeadersFrame(7, s.block(ok(1234)), flags=["END_HEADERS"]),
        )
        await s.feed(DataFrame(5, b"", flags=["END_STREAM"]), DataFrame(7, flags=["END_STREAM"]))

    record = await both(script)
    bodies = [(o[0], o[2], o[3]) for o in record["outcomes"]]
    assert bodies == [(200, b"", True), (200, b"hello", True), (200, b"ab", True), (200, b"", True)]
    assert record["state"] == (0, 10, False, False)


async def test_many_streams_and_a_request_with_a_body_in_between() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(2)
        await s.request(1, method=b"POST", body=b"payload")
        await s.request(2)
        for sid in (9, 1, 5, 3, 7):
            await s.feed(
                HeadersFrame(sid, s.block(ok(2)), flags=["END_HEADERS"]),
                DataFrame(sid, b"%02d" % sid, flags=["END_STREAM"]),
            )

    record = await both(script)
    assert [o[2] for o in record["outcomes"]] == [b"01", b"03", b"05", b"07", b"09"]
    wire = record["wire"]
    assert wire.index(b"payload") > 0  # the POST's DATA went out, after the HEADERS before it


async def test_informational_responses_and_trailers() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(2)
        await s.feed(
            HeadersFrame(
                1, s.block([(b":status", b"103"), (b"link", b"</a>")]), flags=["END_HEADERS"]
            ),
            HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]),
            DataFrame(1, b"body"),
            HeadersFrame(1, s.block([(b"grpc-status", b"0")]), flags=["END_HEADERS", "END_STREAM"]),
            HeadersFrame(3, s.block(OK), flags=["END_HEADERS"]),
        )
        await s.feed(
            HeadersFrame(3, s.block([(b"x-sum", b"1")]), flags=["END_HEADERS", "END_STREAM"])
        )

    record = await both(script)
    first, second = record["outcomes"]
    assert first[2] == b"body" and first[5] == [(b"grpc-status", b"0")]
    assert second[3] and second[5] == [(b"x-sum", b"1")]


# -- flow control -------------------------------------------------------------------------------


async def test_credit_goes_back_as_the_reader_takes_bytes() -> None:
    chunk = MAX_FRAME // 2

    async def script(s: Side) -> None:
        await s.handshake(initial_window_size=1 << 20)
        (t1, t3) = await s.request(2)
        await s.feed(
            HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]),
            HeadersFrame(3, s.block(OK), flags=["END_HEADERS"]),
        )
        for _ in range(3):
            await s.feed(DataFrame(1, b"x" * chunk), DataFrame(3, b"y" * chunk))
            await s.read(t1)
        await s.feed(DataFrame(1, b"", flags=["END_STREAM"]))
        await s.read(t3)  # taken after the response ended: no stream credit, connection's only

    record = await both(script)
    assert record["wire"].count(b"\x00\x00\x04\x08\x00\x00\x00\x00\x01") >= 1  # stream 1's update


async def test_a_server_past_the_stream_window_is_a_connection_error() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(2)
        await s.feed(HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]))
        for _ in range(STREAM_WINDOW // MAX_FRAME + 1):
            await s.feed(DataFrame(1, b"z" * MAX_FRAME))

    record = await both(script)
    assert record["outcomes"][1][0] == "RemoteProtocolError"
    assert "window" in record["outcomes"][1][1]


async def test_window_updates_for_a_stream_and_their_overflow() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(2)
        await s.feed(
            WindowUpdateFrame(1, window_increment=1000), WindowUpdateFrame(0, window_increment=5)
        )
        await s.feed(WindowUpdateFrame(3, window_increment=2**31 - 1))  # past 2^31-1: reset
        await s.feed(HeadersFrame(1, s.block(ok(0)), flags=["END_HEADERS", "END_STREAM"]))

    record = await both(script)
    assert record["outcomes"][0][0] == 200
    assert record["outcomes"][1] == (
        "RemoteProtocolError",
        "the server reset stream 3 (FLOW_CONTROL_ERROR)",
    )


async def test_the_servers_initial_window_changing_mid_stream() -> None:
    async def script(s: Side) -> None:
        await s.handshake(initial_window_size=100)
        await s.request(1)
        await s.feed(SettingsFrame(0, settings={4: 1000}))
        await s.feed(WindowUpdateFrame(1, window_increment=2**31 - 1001))
        await s.feed(SettingsFrame(0, settings={4: 1001}))  # the stream's window overflows

    record = await both(script)
    assert record["outcomes"][0][0] == "RemoteProtocolError"
    assert record["state"][2]  # a connection error


# -- resets and GOAWAY --------------------------------------------------------------------------


async def test_server_resets_before_and_after_the_head() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(3)
        await s.feed(
            RstStreamFrame(1, error_code=ErrorCodes.REFUSED_STREAM),
            HeadersFrame(3, s.block(OK), flags=["END_HEADERS"]),
            DataFrame(3, b"part"),
            RstStreamFrame(3, error_code=ErrorCodes.CANCEL),
            RstStreamFrame(5, error_code=0x777),  # an unknown code
        )
        # Late frames on streams the server reset: ignored, or answered with RST_STREAM.
        await s.feed(RstStreamFrame(1, error_code=0), DataFrame(3, b"late"))

    record = await both(script)
    refused, cancelled, unknown = record["outcomes"]
    assert refused == ("StreamNotProcessed", "the server refused stream 1 (REFUSED_STREAM)")
    assert cancelled[2] == b"part" and cancelled[4][0] == "RemoteProtocolError"
    assert unknown == ("RemoteProtocolError", "the server reset stream 5 (1911)")


async def test_a_cancelled_request_resets_its_stream_and_late_frames_are_answered() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        t1, _t3 = await s.request(2)
        await s.cancel(t1)
        await s.feed(
            HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]),  # crossed our RST_STREAM
            DataFrame(1, b"late"),
            RstStreamFrame(1, error_code=0),
            HeadersFrame(3, s.block(ok(0)), flags=["END_HEADERS", "END_STREAM"]),
        )

    record = await both(script)
    assert record["outcomes"][0] == "cancelled" and record["outcomes"][1][0] == 200
    assert b"\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x08" in record["wire"]  # CANCEL


async def test_frames_after_a_stream_ended() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(3)
        await s.feed(HeadersFrame(1, s.block(ok(0)), flags=["END_HEADERS", "END_STREAM"]))
        await s.feed(WindowUpdateFrame(1, window_increment=10), RstStreamFrame(1, error_code=0))
        await s.feed(DataFrame(1, b"late", flags=["END_STREAM"]))  # RST_STREAM(STREAM_CLOSED)
        await s.feed(HeadersFrame(3, s.block(ok(0)), flags=["END_HEADERS", "END_STREAM"]))
        await s.feed(HeadersFrame(3, s.block(OK), flags=["END_HEADERS"]))  # connection error

    record = await both(script)
    assert record["outcomes"][0][0] == 200 and record["outcomes"][1][0] == 200
    assert record["outcomes"][2][0] == "RemoteProtocolError"
    assert b"\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x05" in record["wire"]


async def test_goaway_fails_the_streams_above_its_last_stream_id() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(3)
        await s.feed(GoAwayFrame(0, last_stream_id=1, error_code=0))
        await s.feed(
            HeadersFrame(1, s.block(ok(3)), flags=["END_HEADERS"]),
            DataFrame(1, b"yes", flags=["END_STREAM"]),
        )

    record = await both(script)
    done, *refused = record["outcomes"]
    assert done[2] == b"yes"
    assert [o[0] for o in refused] == ["StreamNotProcessed"] * 2
    assert record["state"] == (0, 0, True, True)


async def test_ping_and_settings_between_responses() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(1)
        await s.feed(
            HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]),
            PingFrame(0, opaque_data=b"12345678"),
            DataFrame(1, b"a"),
            SettingsFrame(0, settings={3: 5}),
            DataFrame(1, b"b", flags=["END_STREAM"]),
        )

    record = await both(script)
    assert record["outcomes"][0][2] == b"ab" and record["state"][1] == 5
    assert b"12345678" in record["wire"]


# -- padding, priority, CONTINUATION ------------------------------------------------------------


async def test_padding_and_priority() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(1)
        head = HeadersFrame(
            1, s.block(OK), flags=["END_HEADERS", "PADDED", "PRIORITY"], pad_length=7
        )
        head.depends_on, head.stream_weight = 0, 15
        await s.feed(
            head,
            DataFrame(1, b"padded", flags=["PADDED"], pad_length=200),
            DataFrame(1, b"", flags=["PADDED"], pad_length=0),
            DataFrame(1, b"!", flags=["PADDED", "END_STREAM"], pad_length=3),
        )

    record = await both(script)
    assert record["outcomes"][0][2] == b"padded!"


async def test_a_head_over_continuation_frames() -> None:
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(2)
        block = s.block(OK + [(b"x-long", b"v" * 300)])
        await s.feed(
            HeadersFrame(1, block[:10], flags=["PADDED"], pad_length=4),
            ContinuationFrame(1, block[10:100]),
            ContinuationFrame(1, block[100:], flags=["END_HEADERS"]),
            DataFrame(1, b"ok", flags=["END_STREAM"]),
        )
        head = s.block(OK)
        trailers = s.block([(b"x-t", b"1")])
        await s.feed(
            HeadersFrame(3, head, flags=["END_HEADERS"]),
            HeadersFrame(3, trailers[:1], flags=["END_STREAM"]),
            ContinuationFrame(3, trailers[1:], flags=["END_HEADERS"]),
        )

    record = await both(script)
    first, second = record["outcomes"]
    assert first[2] == b"ok" and (b"x-long", b"v" * 300) in first[1]
    assert second[5] == [(b"x-t", b"1")]


async def test_a_header_block_of_a_stream_reset_halfway_is_still_decoded() -> None:
    # The server's HPACK table changes with every block it sends: a block for a stream the
    # client reset while its CONTINUATION frames were on the way must still go through the
    # decoder, or the next response's indexes point at the wrong fields.
    async def script(s: Side) -> None:
        await s.handshake()
        t1, _t3 = await s.request(2)
        block = s.block(OK + [(b"x-one", b"1")])
        await s.feed(HeadersFrame(1, block[:3]))
        await s.cancel(t1)
        await s.feed(ContinuationFrame(1, block[3:], flags=["END_HEADERS"]))
        await s.feed(
            HeadersFrame(3, s.block(OK + [(b"x-one", b"1")]), flags=["END_HEADERS", "END_STREAM"])
        )

    record = await both(script)
    assert record["outcomes"][0] == "cancelled"
    assert record["outcomes"][1][:2] == (200, [(b"content-type", b"text/plain"), (b"x-one", b"1")])


async def test_closed_fast_streams_are_remembered_within_a_bound() -> None:
    from hyperhttp.proto.h2 import _ENDED_KEPT

    s = Side(True, None)
    await s.handshake(max_concurrent_streams=100)
    total = 0
    while total <= _ENDED_KEPT + 100:
        tasks = await s.request(64)
        ids = range(2 * total + 1, 2 * (total + 64), 2)
        await s.feed(
            *(HeadersFrame(i, s.block(ok(0)), flags=["END_HEADERS", "END_STREAM"]) for i in ids)
        )
        assert all(task.result()[0] == 200 for task in tasks)
        total += 64
    assert _ENDED_KEPT // 2 <= len(s.conn._ended) <= _ENDED_KEPT
    last = 2 * total - 1
    s.transport.writes.clear()
    await s.feed(DataFrame(last, b"late"))  # a recent one: RST_STREAM(STREAM_CLOSED)
    assert b"\x00\x00\x04\x03\x00" + last.to_bytes(4, "big") + b"\x00\x00\x00\x05" in b"".join(
        s.transport.writes
    )
    assert not s.conn.is_closed
    s.conn.close()
    await settle()


# -- protocol errors ----------------------------------------------------------------------------

_ERRORS: dict[str, Callable[[Side], list[Any]]] = {
    "data before the head": lambda s: [DataFrame(1, b"x")],
    "more data than content-length": lambda s: [
        HeadersFrame(1, s.block(ok(2)), flags=["END_HEADERS"]),
        DataFrame(1, b"abc"),
    ],
    "less data than content-length": lambda s: [
        HeadersFrame(1, s.block(ok(9)), flags=["END_HEADERS"]),
        DataFrame(1, b"abc", flags=["END_STREAM"]),
    ],
    "a content-length that is not a number": lambda s: [
        HeadersFrame(1, s.block(OK + [(b"content-length", b"1x")]), flags=["END_HEADERS"]),
    ],
    "two content-lengths": lambda s: [
        HeadersFrame(
            1,
            s.block(OK + [(b"content-length", b"1"), (b"content-length", b"2")]),
            flags=["END_HEADERS"],
        ),
    ],
    "informational with END_STREAM": lambda s: [
        HeadersFrame(1, s.block([(b":status", b"100")]), flags=["END_HEADERS", "END_STREAM"]),
    ],
    "informational after the final head": lambda s: [
        HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]),
        HeadersFrame(1, s.block([(b":status", b"100")]), flags=["END_HEADERS"]),
    ],
    "trailers without END_STREAM": lambda s: [
        HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]),
        HeadersFrame(1, s.block([(b"x", b"1")]), flags=["END_HEADERS"]),
    ],
    "a stream depending on itself": lambda s: [
        HeadersFrame(1, s.block(OK), flags=["END_HEADERS", "PRIORITY"], depends_on=1),
    ],
    "padding as long as the frame": lambda s: [
        HeadersFrame(1, s.block(OK), flags=["END_HEADERS"]),
        b"\x00\x00\x03\x00\x08\x00\x00\x00\x01\x03ab",
    ],
    "PADDED with no pad length": lambda s: [b"\x00\x00\x00\x01\x0c\x00\x00\x00\x01"],
    "PRIORITY too short": lambda s: [b"\x00\x00\x02\x01\x24\x00\x00\x00\x01\x00\x00"],
    "a header block that does not decode": lambda s: [
        HeadersFrame(1, b"\xff\xff\xff\xff\xff\xff\xff", flags=["END_HEADERS"]),
    ],
    "a frame inside a header block": lambda s: [
        HeadersFrame(1, s.block(OK)),
        DataFrame(3, b"x"),
    ],
    "CONTINUATION of another stream": lambda s: [
        HeadersFrame(1, s.block(OK)),
        ContinuationFrame(3, b"", flags=["END_HEADERS"]),
    ],
    "a naked CONTINUATION": lambda s: [ContinuationFrame(1, b"", flags=["END_HEADERS"])],
    "a zero window increment": lambda s: [b"\x00\x00\x04\x08\x00\x00\x00\x00\x01\x00\x00\x00\x00"],
    "RST_STREAM of bad length": lambda s: [b"\x00\x00\x03\x03\x00\x00\x00\x00\x01\x00\x00\x00"],
    "a frame larger than allowed": lambda s: [
        (MAX_FRAME + 1).to_bytes(3, "big") + b"\x00\x00\x00\x00\x00\x01" + b"\x00" * (MAX_FRAME + 1)
    ],
}


@pytest.mark.parametrize("frames", list(_ERRORS.values()), ids=list(_ERRORS))
async def test_protocol_errors(frames: Callable[[Side], list[Any]]) -> None:
    # The frames in one read (and, in both(), in 7-byte reads): those before the bad one take
    # effect either way.
    async def script(s: Side) -> None:
        await s.handshake()
        await s.request(2)
        await s.feed(*frames(s))

    record = await both(script)
    assert record["outcomes"][1][0] == "RemoteProtocolError"  # the stream not named fails too
    assert record["state"][2:] == (True, True)  # a connection error: GOAWAY, and the socket closes
    assert b"\x07\x00\x00\x00\x00\x00" in record["wire"]  # a GOAWAY frame went out


# -- any sequence of frames -----------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_STREAMS = st.sampled_from([1, 3, 5, 7])  # 1, 3, 5 opened by the client; 7 never
_FRAMES = st.one_of(
    st.tuples(
        st.just("headers"),
        _STREAMS,
        st.sampled_from(["ok", "length", "info", "fields"]),
        st.booleans(),  # END_STREAM
        st.integers(0, 3),  # CONTINUATION frames
        st.sampled_from([0, 4]),  # padding
    ),
    st.tuples(
        st.just("data"), _STREAMS, st.integers(0, 40), st.booleans(), st.sampled_from([0, 5])
    ),
    st.tuples(st.just("rst"), _STREAMS, st.sampled_from([0, 7, 8])),
    st.tuples(st.just("window"), st.sampled_from([0, 1, 3, 7]), st.integers(1, 2**31 - 1)),
    st.tuples(st.just("cancel"), st.sampled_from([0, 1, 2])),
    st.tuples(st.just("ping")),
    st.tuples(st.just("goaway"), st.sampled_from([0, 1, 3, 5])),
)


async def _replay(s: Side, steps: list[tuple[Any, ...]]) -> None:
    await s.handshake()
    tasks = await s.request(3)
    for step in steps:
        kind = step[0]
        if kind == "headers":
            _, sid, what, end, continuations, pad = step
            fields = {
                "ok": OK,
                "length": ok(10),
                "info": [(b":status", b"103")],
                "fields": [(b"x-a", b"1"), (b"x-b", b"2")],
            }[what]
            block = s.block(fields)
            cut = [len(block) * i // (continuations + 1) for i in range(continuations + 2)]
            pieces = [block[a:b] for a, b in zip(cut, cut[1:], strict=False)]
            flags = ["END_STREAM"] if end else []
            if not continuations:
                flags.append("END_HEADERS")
            if pad:
                flags.append("PADDED")
            frames: list[Any] = [HeadersFrame(sid, pieces[0], flags=flags, pad_length=pad)]
            for i, piece in enumerate(pieces[1:], 1):
                last = ["END_HEADERS"] if i == continuations else []
                frames.append(ContinuationFrame(sid, piece, flags=last))
            for frame in frames:
                await s.feed(frame)
        elif kind == "data":
            _, sid, size, end, pad = step
            flags = (["END_STREAM"] if end else []) + (["PADDED"] if pad else [])
            await s.feed(DataFrame(sid, b"d" * size, flags=flags, pad_length=pad))
        elif kind == "rst":
            await s.feed(RstStreamFrame(step[1], error_code=step[2]))
        elif kind == "window":
            await s.feed(WindowUpdateFrame(step[1], window_increment=step[2]))
        elif kind == "cancel":
            await s.cancel(tasks[step[1]])
        elif kind == "ping":
            await s.feed(PingFrame(0, opaque_data=b"abcdefgh"))
        else:
            await s.feed(GoAwayFrame(0, last_stream_id=step[1], error_code=0))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_FRAMES, max_size=12))
def test_any_sequence_of_frames_gives_the_same_results_both_ways(steps: list[Any]) -> None:
    async def run(fast: bool) -> dict[str, Any]:
        side = Side(fast, None)
        await _replay(side, steps)
        await settle()
        record = side.record()
        for task in side.tasks:
            if not task.done():
                task.cancel()
        side.conn.close()
        await settle()
        return record

    fast, slow = asyncio.run(run(True)), asyncio.run(run(False))
    assert fast["shut"] == slow["shut"]
    assert fast["outcomes"] == slow["outcomes"]
    assert fast["state"] == slow["state"]
    assert fast["wire"] == slow["wire"]
