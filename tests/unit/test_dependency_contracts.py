"""The private parts of h2 and hpack that hyperhttp relies on, checked against what is installed.

hyperhttp/proto/h2_internals.py (every such reach is there) goes past the public API of h2 and hpack: it
replace entries of h2's connection state machine, override methods that h2 calls on itself, set
attributes h2 reads at particular moments, import hpack's private modules and swap the connection's
HPACK encoder and decoder. A new h2 or hpack release may change any of that without notice, and
most such changes would not raise: the workaround would just stop working. Each test here checks
one reliance, by its behaviour where a behaviour is what we rely on (a real client connection and
a real h2 server connection, in memory), and fails with a message that names the internal and the
file of ours that relies on it.

Every test runs in a few milliseconds; nothing here touches a socket or an event loop's run.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import traceback
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any, Iterator

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
import pytest
from h2.connection import ConnectionInputs, ConnectionState
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

H2_PY = "hyperhttp/proto/h2.py"
INTERNALS_PY = "hyperhttp/proto/h2_internals.py"

_OUR_IMPORT_ERROR: BaseException | None = None
try:  # a moved private module must not hide every message below behind one collection error
    from hyperhttp.proto import h2 as h2proto
    from hyperhttp.proto import h2_hpack as _hpack
    from hyperhttp.proto.h2_internals import LeanH2Connection
except Exception as exc:  # pragma: no cover - only with an incompatible h2 or hpack
    _OUR_IMPORT_ERROR = exc


def _versions() -> str:
    return ", ".join(f"{name} {version(name)}" for name in ("h2", "hpack", "hyperframe"))


@contextmanager
def relied_on(internal: str, ours: str) -> Iterator[None]:
    """Turn any failure inside the block into one that names ``internal`` and ``ours``."""
    message = ""
    try:
        yield
    except (Exception, pytest.fail.Exception) as exc:  # asserts, pytest.raises: every way it breaks
        frames = traceback.extract_tb(exc.__traceback__)
        here = [f for f in frames if f.filename == __file__] or frames
        where = f"{here[-1].filename}:{here[-1].lineno}"
        if frames[-1] is not here[-1] and "_pytest" not in frames[-1].filename:
            where += f", raised in {frames[-1].filename}:{frames[-1].lineno}"
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        message = (
            f"DEPENDENCY CONTRACT BROKEN with {_versions()}:\n"
            f"  {internal}\n"
            f"  is relied on by {ours}, and it no longer holds:\n"
            f"  {detail}\n"
            f"  (at {where})\n"
            "  Adapt our code (or cap the version in pyproject.toml) before releasing."
        )
    if message:  # the message alone: no traceback, no chained exception
        raise pytest.fail.Exception(message, pytrace=False) from None


def _ours() -> None:
    if _OUR_IMPORT_ERROR is not None:
        pytest.fail(
            f"DEPENDENCY CONTRACT BROKEN with {_versions()}: importing hyperhttp.proto failed "
            f"({_OUR_IMPORT_ERROR!r}); {INTERNALS_PY} imports hpack.huffman_constants, "
            f"hpack.huffman_table and hpack.table, {INTERNALS_PY} subclasses "
            "h2.connection.H2Connection",
            pytrace=False,
        )


# -- an in-memory client (set up exactly as hyperhttp sets it up) and an h2 server -----------

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"a.test"),
    (b":path", b"/"),
]


class _Transport:
    """What H2Connection.connection_made writes to."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _goaway(last_stream_id: int, error_code: int = 0) -> bytes:
    """A GOAWAY frame (RFC 9113 section 6.8), built by hand so that the server's state is not
    closed by sending it."""
    payload = last_stream_id.to_bytes(4, "big") + error_code.to_bytes(4, "big")
    return len(payload).to_bytes(3, "big") + bytes((0x7, 0, 0, 0, 0, 0)) + payload


def _header_blocks(data: bytes) -> list[bytes]:
    """The header block fragments of the HEADERS frames in ``data``."""
    blocks = []
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i : i + 3], "big")
        kind, flags = data[i + 3], data[i + 4]
        payload = data[i + 9 : i + 9 + length]
        if kind == 0x1:
            pad = 0
            if flags & 0x8:  # PADDED
                pad, payload = payload[0], payload[1:]
            if flags & 0x20:  # PRIORITY
                payload = payload[5:]
            blocks.append(payload[: len(payload) - pad])
        i += 9 + length
    return blocks


class Pair:
    """``client``: the h2 connection inside hyperhttp's H2Connection after ``connection_made``
    (a LeanH2Connection, our HPACK installed, our settings sent). ``server``: a plain h2 one."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, server_settings: dict[Any, int] | None = None
    ) -> None:
        _ours()
        transport = _Transport()
        with relied_on(
            "h2.config.H2Configuration(client_side, header_encoding, validate_outbound_headers, "
            "normalize_outbound_headers, split_outbound_cookies, validate_inbound_headers, "
            "normalize_inbound_headers) keyword options (split_outbound_cookies: h2 >= 4.2)",
            INTERNALS_PY,
        ):
            self.ours = h2proto.H2Connection(loop, memoryview(bytearray(16)), _no, _no)
            self.ours.connection_made(transport)  # type: ignore[arg-type]
        self.client: Any = self.ours._h2
        self._pending = bytes(transport.data)
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        if server_settings is not None:
            self.server.local_settings = h2.settings.Settings(
                client=False, initial_values=server_settings
            )
        self.server.initiate_connection()

    def to_server(self) -> list[h2.events.Event]:
        data, self._pending = self._pending + self.client.data_to_send(), b""
        return self.server.receive_data(data) if data else []

    def to_client(self, extra: bytes = b"") -> list[h2.events.Event]:
        data = self.server.data_to_send() + extra
        return self.client.receive_data(data) if data else []

    def handshake(self) -> list[h2.events.Event]:
        """Both prefaces and SETTINGS, both ACKs; the server's events."""
        events = self.to_server()
        self.to_client()
        return events + self.to_server()

    def two_streams(self) -> Any:
        """The handshake, then streams 1 and 3 opened by h2 (GET, ended) and received by the
        server; the client's h2 connection."""
        self.handshake()
        client = self.client
        client.counted = 0
        client.send_headers(1, REQUEST, end_stream=True)
        client.send_headers(3, REQUEST, end_stream=True)
        self.to_server()
        return client


def _no() -> None:
    pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def pair(loop: asyncio.AbstractEventLoop) -> Pair:
    return Pair(loop)


def _of(events: list[h2.events.Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# -- hyperhttp/proto/h2_internals.py: the configuration -----------------------------------------------------


def test_h2_configuration_takes_the_options_h2py_passes(loop: asyncio.AbstractEventLoop) -> None:
    """``client_connection`` turns h2's checks and rewriting of fields off (we validate requests
    once when they are built and responses once per distinct field): H2Configuration must accept
    each of those keyword options (``split_outbound_cookies`` is new in h2 4.2.0) and keep them."""
    pair = Pair(loop)  # builds hyperhttp's H2Connection, inside relied_on
    with relied_on("h2.config.H2Configuration's options as attributes", INTERNALS_PY):
        config = pair.client.config
        assert config.client_side is True and config.header_encoding is None
        for option in (
            "validate_outbound_headers",
            "normalize_outbound_headers",
            "split_outbound_cookies",
            "validate_inbound_headers",
            "normalize_inbound_headers",
        ):
            assert getattr(config, option) is False, option


# -- hyperhttp/proto/h2_internals.py: LeanH2Connection ---------------------------------------------


def test_state_machine_transition_table_keys_we_replace() -> None:
    """LeanH2Connection.__init__ copies ``self.state_machine._transitions`` (a dict of
    (ConnectionState, ConnectionInputs) -> (side effect or None, ConnectionState), a class attribute
    of H2ConnectionStateMachine) and replaces its (IDLE, RECV_GOAWAY) and (CLIENT_OPEN, RECV_GOAWAY)
    entries. Those keys must still exist with that shape (else the copy adds dead entries), and
    the copy must stay on our instance (h2's class table, shared by every connection, unchanged)."""
    _ours()
    with relied_on(
        "h2.connection.H2ConnectionStateMachine._transitions (a dict with the keys "
        "(ConnectionState.IDLE|CLIENT_OPEN, ConnectionInputs.RECV_GOAWAY)), "
        "H2Connection.state_machine",
        INTERNALS_PY,
    ):
        table = h2.connection.H2ConnectionStateMachine._transitions
        assert isinstance(table, dict)
        before = dict(table)
        for state in (ConnectionState.IDLE, ConnectionState.CLIENT_OPEN):
            entry = table[(state, ConnectionInputs.RECV_GOAWAY)]
            assert isinstance(entry, tuple) and len(entry) == 2, entry
            assert entry[0] is None or callable(entry[0]), entry
            assert isinstance(entry[1], ConnectionState), entry
        conn = LeanH2Connection(h2.config.H2Configuration(client_side=True))
        assert isinstance(conn.state_machine, h2.connection.H2ConnectionStateMachine)
        assert conn.state_machine.state is ConnectionState.IDLE
        assert conn.state_machine._transitions is not table
        assert h2.connection.H2ConnectionStateMachine._transitions == before


def test_received_goaway_leaves_streams_below_last_stream_id_working(pair: Pair) -> None:
    """RFC 9113 6.8: streams at or below a GOAWAY's last_stream_id may complete. h2 moves its state
    machine to CLOSED on RECV_GOAWAY and then rejects every frame (python-hyper/h2 issue 1181);
    LeanH2Connection's transitions keep the state, so the DATA of stream 1 arriving after a GOAWAY
    with last_stream_id 1 is delivered, and we can still reset stream 3 and grant credit. This only
    works while ``_receive_goaway_frame`` goes through ``state_machine.process_input`` and
    ``process_input`` looks the transition up in ``self._transitions``."""
    with relied_on(
        "h2.connection.H2ConnectionStateMachine.process_input reading self._transitions "
        "(the per-instance table LeanH2Connection installs) on RECV_GOAWAY",
        INTERNALS_PY,
    ):
        client = pair.two_streams()
        pair.server.send_headers(1, [(b":status", b"200")])
        pair.to_client()
        events = pair.to_client(_goaway(last_stream_id=1))
        (terminated,) = _of(events, h2.events.ConnectionTerminated)
        assert terminated.last_stream_id == 1 and terminated.error_code == ErrorCodes.NO_ERROR
        assert client.state_machine.state is ConnectionState.CLIENT_OPEN
        pair.server.send_data(1, b"after the goaway", end_stream=True)
        events = pair.to_client()
        assert [e.data for e in _of(events, h2.events.DataReceived)] == [b"after the goaway"]
        assert [e.stream_id for e in _of(events, h2.events.StreamEnded)] == [1]
        client.reset_stream(3, ErrorCodes.CANCEL)
        client.increment_flow_control_window(100)
        events = pair.to_server()
        assert [e.stream_id for e in _of(events, h2.events.StreamReset)] == [3]


def test_received_frames_go_through_receive_frame_and_its_dispatch_table(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LeanH2Connection overrides ``_receive_frame`` (h2 calls it from ``receive_data`` for each
    frame) to skip h2's eager ``repr(frame)``: it dispatches through ``_frame_dispatch_table``
    (frame class -> handler returning (frames to send, events)) and answers a frame on a closed
    stream with ``_stream_is_closed_by_reset``/``_stream_is_closed_by_end`` as h2 does: DATA on
    a stream the client reset gets RST_STREAM(STREAM_CLOSED) and no error; no frame is repr'd."""
    import hyperframe.frame

    reprs: list[str] = []
    for kind in (hyperframe.frame.DataFrame, hyperframe.frame.HeadersFrame):
        monkeypatch.setattr(kind, "__repr__", lambda self: reprs.append("repr") or "frame")
    with relied_on(
        "h2.connection.H2Connection.receive_data calling self._receive_frame(frame), and "
        "_frame_dispatch_table, _stream_is_closed_by_reset, _stream_is_closed_by_end",
        INTERNALS_PY,
    ):
        pair.handshake()
        client = pair.client
        assert type(client)._receive_frame is not h2.connection.H2Connection._receive_frame
        client.counted = 0
        client.send_headers(1, REQUEST, end_stream=True)
        pair.to_server()
        pair.server.send_headers(1, [(b":status", b"200")])
        reprs.clear()  # (the plain h2 server reprs every frame it receives)
        events = pair.to_client()
        assert [e.stream_id for e in _of(events, h2.events.ResponseReceived)] == [1]
        assert reprs == []
        client.reset_stream(1, ErrorCodes.CANCEL)
        pair.to_server()
        reprs.clear()
        late = hyperframe.frame.DataFrame(1, data=b"late")
        events = pair.to_client(late.serialize())  # DATA on the stream the client reset
        assert events == []
        client_sent = client.data_to_send()
        resets = [f for f in _frames(client_sent) if f[0] == 0x3]
        assert resets == [(0x3, 1, int(ErrorCodes.STREAM_CLOSED).to_bytes(4, "big"))]
        assert reprs == []  # h2's own _receive_frame reprs every frame it receives


def _frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, stream id, payload) of each frame in ``data``."""
    found, i = [], 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i : i + 3], "big")
        stream_id = int.from_bytes(data[i + 5 : i + 9], "big") & 0x7FFFFFFF
        found.append((data[i + 3], stream_id, data[i + 9 : i + 9 + length]))
        i += 9 + length
    return found


FAST_PY = "hyperhttp/proto/h2_fast.py (through the hooks of LeanH2Connection)"


def test_a_stream_h2_does_not_run_takes_its_id_and_opens_the_connection(pair: Pair) -> None:
    """``opened``: h2's next stream id is above a fast stream's (``highest_outbound_stream_id``,
    read by ``get_next_available_stream_id`` and by the check of a new stream's id), and the
    connection state machine leaves IDLE as ``send_headers`` would leave it; ``queue``: frames
    appended to ``_data_to_send`` leave after h2's own, from ``data_to_send``."""
    with relied_on(
        "h2.connection.H2Connection.highest_outbound_stream_id, state_machine (IDLE -> "
        "CLIENT_OPEN on SEND_HEADERS), _data_to_send (a bytearray data_to_send empties)",
        FAST_PY,
    ):
        pair.handshake()
        client = pair.client
        assert client.state_machine.state is ConnectionState.IDLE
        client.opened(1)
        assert client.state_machine.state is ConnectionState.CLIENT_OPEN
        assert client.get_next_available_stream_id() == 3
        with pytest.raises(h2.exceptions.StreamIDTooLowError):
            client.send_headers(1, REQUEST, end_stream=True)
        from hyperhttp.proto.h2_frames import headers_frames

        client.ping(b"12345678")  # queued by h2 first
        client.queue(headers_frames(1, client.encoder.encode(REQUEST), True, 16384))
        assert client.queued > 9
        events = pair.to_server()
        assert [type(e).__name__ for e in events] == [
            "PingReceived",
            "RequestReceived",
            "StreamEnded",
        ]
        assert client.queued == 0


def test_a_closed_stream_h2_never_ran_gets_h2s_answers(pair: Pair) -> None:
    """``closed``: a stream recorded in ``_closed_streams`` is, for h2, one it closed and cleaned
    up: late DATA gets RST_STREAM(STREAM_CLOSED) and the connection window back; late HEADERS
    after END_STREAM is a connection error (STREAM_CLOSED)."""
    from h2.stream import StreamClosedBy
    from hyperframe.frame import DataFrame, HeadersFrame

    with relied_on(
        "h2.connection.H2Connection._closed_streams (stream id -> StreamClosedBy) read by "
        "_stream_closed_by for streams h2 does not hold",
        FAST_PY,
    ):
        pair.handshake()
        client = pair.client
        client.opened(3)
        client.closed(1, StreamClosedBy.SEND_RST_STREAM)
        client.closed(3, StreamClosedBy.RECV_END_STREAM)
        events = client.receive_data(DataFrame(1, b"late").serialize())
        assert events == []
        resets = [f for f in _frames(client.data_to_send()) if f[0] == 0x3]
        assert resets == [(0x3, 1, int(ErrorCodes.STREAM_CLOSED).to_bytes(4, "big"))]
        block = pair.server.encoder.encode([(b":status", b"200")])
        with pytest.raises(h2.exceptions.StreamClosedError):
            client.receive_data(HeadersFrame(3, block, flags=["END_HEADERS"]).serialize())


def test_a_stream_h2_ran_is_forgotten_as_h2s_own_sweep_forgets_it(pair: Pair) -> None:
    """``forget``: h2's ``streams`` dict, ``H2Stream.closed`` and ``closed_by``, and
    ``_closed_streams``, as h2's ``_open_streams`` sweep uses them: a closed stream dropped with
    how it closed recorded (late DATA: RST_STREAM(STREAM_CLOSED)); an open one dropped as
    implicitly closed (late HEADERS: a connection error)."""
    from hyperframe.frame import DataFrame, HeadersFrame

    with relied_on(
        "h2.connection.H2Connection.streams, H2Stream.closed / .closed_by, _closed_streams "
        "(h2's _open_streams sweep)",
        FAST_PY,
    ):
        client = pair.two_streams()
        pair.server.send_headers(1, [(b":status", b"204")], end_stream=True)
        pair.to_client()
        assert client.streams[1].closed and not client.streams[3].closed
        client.forget(1)
        client.forget(3)
        assert 1 not in client.streams and 3 not in client.streams
        assert client._stream_is_closed_by_end(1)
        assert client.receive_data(DataFrame(1, b"late").serialize()) == []
        resets = [f for f in _frames(client.data_to_send()) if f[0] == 0x3]
        assert resets == [(0x3, 1, int(ErrorCodes.STREAM_CLOSED).to_bytes(4, "big"))]
        block = pair.server.encoder.encode([(b":status", b"200")])
        with pytest.raises(h2.exceptions.ProtocolError):
            client.receive_data(HeadersFrame(3, block, flags=["END_HEADERS"]).serialize())


def test_the_connection_window_decoder_and_goaway_the_fast_path_uses(
    pair: Pair, loop: asyncio.AbstractEventLoop
) -> None:
    """``consume_window``: h2's ``_inbound_flow_control_window_manager`` refuses more than the
    window; ``decode_block``: ``h2.connection._decode_headers`` maps HPACK errors to
    ProtocolError; ``terminate``: ``_terminate_connection`` queues GOAWAY with the error's code;
    ``naked_continuation``: h2's own message for a CONTINUATION on an open stream."""
    with relied_on(
        "h2.connection.H2Connection._inbound_flow_control_window_manager.window_consumed, "
        "h2.connection._decode_headers, H2Connection._terminate_connection, h2.stream's "
        "StreamInputs.RECV_CONTINUATION refused in HALF_CLOSED_LOCAL",
        FAST_PY,
    ):
        from hyperhttp.proto.h2_internals import naked_continuation

        pair.handshake()
        client = pair.client
        window = client._inbound_flow_control_window_manager.current_window_size
        client.consume_window(window)
        with pytest.raises(h2.exceptions.FlowControlError):
            client.consume_window(1)
        block = pair.server.encoder.encode([(b":status", b"204")])
        assert list(client.decode_block(block)) == [(b":status", b"204")]
        with pytest.raises(h2.exceptions.ProtocolError):
            client.decode_block(b"\xff\xff\xff\xff\xff\xff")
        client.terminate(h2.exceptions.FlowControlError("x"))
        [goaway] = [f for f in _frames(client.data_to_send()) if f[0] == 0x7]
        assert goaway[2][4:8] == int(ErrorCodes.FLOW_CONTROL_ERROR).to_bytes(4, "big")
        other = Pair(loop)
        other.handshake()
        other.client.counted = 0
        other.client.send_headers(1, REQUEST, end_stream=True)
        with pytest.raises(h2.exceptions.ProtocolError) as refused:
            other.client.receive_data(b"\x00\x00\x00\x09\x04\x00\x00\x00\x01")
        assert str(refused.value) == str(naked_continuation())


def test_received_goaway_before_any_stream_keeps_the_idle_state(pair: Pair) -> None:
    """The (IDLE, RECV_GOAWAY) entry we replace: a GOAWAY before our first HEADERS (a server
    shutting down as we connect) must leave the connection able to send (our GOAWAY, credit)."""
    with relied_on(
        "h2.connection.H2ConnectionStateMachine._transitions[(IDLE, RECV_GOAWAY)] as the "
        "transition h2 takes on a GOAWAY before any stream",
        INTERNALS_PY,
    ):
        pair.handshake()
        events = pair.to_client(_goaway(last_stream_id=0))
        assert _of(events, h2.events.ConnectionTerminated)
        assert pair.client.state_machine.state is ConnectionState.IDLE
        pair.client.increment_flow_control_window(100)
        assert _of(pair.to_server(), h2.events.WindowUpdated)


def test_received_goaway_clears_the_outbound_buffer_through_the_method_we_override(
    pair: Pair,
) -> None:
    """h2's ``_receive_goaway_frame`` throws away what is queued to send by calling
    ``self.clear_outbound_data_buffer()``; LeanH2Connection overrides that method with a no-op so
    the WINDOW_UPDATEs, RST_STREAMs and request bodies of streams that may still complete are not
    lost. Checked both ways: a plain H2Connection subclass sees the call (and loses its queue),
    and ours keeps its queued DATA."""

    class Spy(h2.connection.H2Connection):
        calls = 0

        def clear_outbound_data_buffer(self) -> None:
            Spy.calls += 1
            super().clear_outbound_data_buffer()

    with relied_on(
        "h2.connection.H2Connection._receive_goaway_frame calling "
        "self.clear_outbound_data_buffer() (overridden by LeanH2Connection)",
        INTERNALS_PY,
    ):
        spy = Spy(h2.config.H2Configuration(client_side=True, header_encoding=None))
        spy.initiate_connection()
        spy.send_headers(1, REQUEST)
        spy.send_data(1, b"queued body")
        spy.receive_data(_goaway(last_stream_id=1))
        assert Spy.calls == 1
        assert spy.data_to_send() == b""

        pair.handshake()
        pair.client.counted = 0
        pair.client.send_headers(1, REQUEST)
        pair.client.send_data(1, b"queued body")
        pair.to_client(_goaway(last_stream_id=1))
        assert b"queued body" in pair.client.data_to_send()


def test_send_headers_checks_the_server_limit_through_open_outbound_streams(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """h2's ``send_headers`` compares ``self.open_outbound_streams + 1`` with the server's
    SETTINGS_MAX_CONCURRENT_STREAMS before opening a stream; LeanH2Connection overrides that
    property with the owner's count (``counted``) so that h2 does not walk every stream on every
    request. With a server limit of 2: counted=2 must raise TooManyStreamsError, counted=1 not."""
    pair = Pair(loop, {SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    with relied_on(
        "h2.connection.H2Connection.send_headers consulting self.open_outbound_streams "
        "(a property, overridden by LeanH2Connection) against remote max_concurrent_streams",
        INTERNALS_PY,
    ):
        pair.handshake()
        assert isinstance(
            inspect.getattr_static(h2.connection.H2Connection, "open_outbound_streams"), property
        )
        client = pair.client
        client.counted = 2
        with pytest.raises(h2.exceptions.TooManyStreamsError):
            client.send_headers(1, REQUEST, end_stream=True)
        client.counted = 1
        client.send_headers(1, REQUEST, end_stream=True)
        assert [e.stream_id for e in _of(pair.to_server(), h2.events.RequestReceived)] == [1]


def test_h2s_own_count_still_drops_closed_streams(pair: Pair) -> None:
    """When h2 holds more than 2 * counted + 32 streams, LeanH2Connection falls back to h2's
    ``open_outbound_streams`` (``super()``), relying on it both to count the open client streams
    and, as it walks ``self.streams``, to drop the closed ones: that walk is what keeps h2's
    stream dict bounded on a long-lived connection."""
    client = pair.client
    with relied_on(
        "h2.connection.H2Connection.open_outbound_streams (via _open_streams) pruning closed "
        "streams from self.streams",
        INTERNALS_PY,
    ):
        client.counted = 0
        for stream_id in range(1, 81, 2):  # 40 streams
            client.send_headers(stream_id, REQUEST, end_stream=True)
        for stream_id in range(3, 81, 2):  # all but stream 1 closed
            client.reset_stream(stream_id, ErrorCodes.CANCEL)
        assert len(client.streams) == 40
        assert client.open_outbound_streams == 1
        assert list(client.streams) == [1]


# -- hyperhttp/proto/h2_internals.py (start) and h2.py: settings, frame size, the calls made ----------------------------


def test_local_settings_and_max_inbound_frame_size_set_before_initiate_connection(
    pair: Pair,
) -> None:
    """``start`` (from H2Connection.connection_made) replaces ``conn.local_settings`` (built by h2 in __init__) with
    our own Settings and sets ``conn.max_inbound_frame_size`` (copied by h2 from the old settings
    in __init__) before ``initiate_connection``. That relies on the values of
    ``Settings(initial_values=...)`` being in force at once (h2 applies nothing to them when the
    server acknowledges), on h2 advertising whatever ``local_settings`` holds, giving new streams
    ``local_settings.initial_window_size`` as their receive window, and checking inbound frames
    against ``max_inbound_frame_size`` (h2 copies it into its frame buffer on every
    ``receive_data``): a 200 000-byte DATA frame in one piece must be accepted."""
    with relied_on(
        "h2.connection.H2Connection.local_settings replaced before initiate_connection "
        "(the SETTINGS h2 sends; Settings(initial_values=...) in force at once, not on the ACK)",
        INTERNALS_PY,
    ):
        settings = pair.client.local_settings
        assert settings.initial_window_size == h2proto.STREAM_WINDOW
        assert settings.max_frame_size == h2proto.MAX_FRAME
        events = pair.handshake()
        (changed,) = _of(events, h2.events.RemoteSettingsChanged)
        sent = {code: setting.new_value for code, setting in changed.changed_settings.items()}
        assert sent[SettingCodes.ENABLE_PUSH] == 0
        assert sent[SettingCodes.INITIAL_WINDOW_SIZE] == h2proto.STREAM_WINDOW
        assert sent[SettingCodes.MAX_FRAME_SIZE] == h2proto.MAX_FRAME
    size = 200_000
    with relied_on(
        "h2.connection.H2Connection.max_inbound_frame_size (copied into "
        "incoming_buffer.max_frame_size on receive_data) and local_settings.initial_window_size "
        "(the receive window of new streams)",
        INTERNALS_PY,
    ):
        assert h2proto.MAX_FRAME >= size > 16384 and h2proto.STREAM_WINDOW >= size
        pair.client.counted = 0
        pair.client.send_headers(1, REQUEST, end_stream=True)
        pair.to_server()
        assert pair.server.max_outbound_frame_size == h2proto.MAX_FRAME
        pair.server.send_headers(1, [(b":status", b"200")])
        pair.server.send_data(1, b"x" * size, end_stream=True)
        events = pair.to_client()
        assert [len(e.data) for e in _of(events, h2.events.DataReceived)] == [size]
        assert pair.client.max_inbound_frame_size == h2proto.MAX_FRAME  # the ACK changed nothing


def test_the_connection_api_h2py_uses(loop: asyncio.AbstractEventLoop) -> None:
    """What H2Connection reads from h2 to pace its streams and DATA: the next stream id, the
    server's SETTINGS_MAX_CONCURRENT_STREAMS as ``remote_settings.max_concurrent_streams``, its
    SETTINGS_MAX_FRAME_SIZE as ``max_outbound_frame_size``, the send window of a stream as
    ``local_flow_control_window(stream_id)``, and the event attributes its handlers read."""
    pair = Pair(
        loop,
        {
            SettingCodes.MAX_CONCURRENT_STREAMS: 7,
            SettingCodes.MAX_FRAME_SIZE: 32768,
            SettingCodes.INITIAL_WINDOW_SIZE: 1000,
        },
    )
    with relied_on(
        "h2.connection.H2Connection.get_next_available_stream_id, remote_settings."
        "max_concurrent_streams, max_outbound_frame_size, local_flow_control_window, and the "
        "attributes of ResponseReceived, DataReceived and StreamReset",
        H2_PY,
    ):
        pair.handshake()
        client = pair.client
        assert client.remote_settings.max_concurrent_streams == 7
        assert client.max_outbound_frame_size == 32768
        stream_id = client.get_next_available_stream_id()
        assert stream_id == 1
        client.counted = 0
        client.send_headers(stream_id, REQUEST)
        assert client.local_flow_control_window(stream_id) == 1000
        client.send_data(stream_id, b"y" * 10, end_stream=True)
        assert client.local_flow_control_window(stream_id) == 990
        assert client.get_next_available_stream_id() == 3
        pair.to_server()
        pair.server.send_headers(1, [(b":status", b"200")])
        pair.server.send_data(1, b"abc", pad_length=4)
        events = pair.to_client()
        (response,) = _of(events, h2.events.ResponseReceived)
        assert response.stream_id == 1 and response.stream_ended is None
        (data,) = _of(events, h2.events.DataReceived)
        assert (data.stream_id, data.data, data.flow_controlled_length) == (1, b"abc", 8)
        pair.server.reset_stream(1, ErrorCodes.REFUSED_STREAM)
        (reset,) = _of(pair.to_client(), h2.events.StreamReset)
        assert reset.stream_id == 1 and reset.error_code == ErrorCodes.REFUSED_STREAM


# -- hyperhttp/proto/h2_internals.py: h2's use of conn.encoder / conn.decoder ---------------------------


def test_h2_encodes_and_decodes_through_the_connection_attributes(pair: Pair) -> None:
    """``h2_internals.install`` swaps ``conn.encoder`` and ``conn.decoder`` after h2 built them. That
    only takes effect while h2 looks them up on the connection each time: ``send_headers`` calls
    ``self.encoder.encode(headers)`` and h2 decodes HEADERS with ``self.decoder.decode(block,
    raw=True)`` (our decoder's signature) and hands the bytes tuples on unchanged."""
    _ours()
    calls: list[tuple[str, Any]] = []

    class SpyEncoder(_hpack.StatelessEncoder):
        def encode(self, headers: Any, huffman: bool = True) -> bytes:
            calls.append(("encode", huffman))
            return super().encode(headers, huffman)

    class SpyDecoder(_hpack.CachingDecoder):
        def decode(self, data: bytes, raw: bool = False) -> list[hpack.HeaderTuple]:
            calls.append(("decode", raw))
            return super().decode(data, raw)

    with relied_on(
        "h2.connection.H2Connection.encoder / .decoder (swapped by h2_internals.install) used by "
        "send_headers as encoder.encode(headers) and on receipt as decoder.decode(block, raw=True)",
        INTERNALS_PY,
    ):
        client = pair.client
        assert isinstance(client.encoder, _hpack.StatelessEncoder)
        assert isinstance(client.decoder, _hpack.CachingDecoder)
        pair.handshake()
        client.encoder = SpyEncoder()
        client.decoder = SpyDecoder(client.decoder.max_header_list_size)
        client.counted = 0
        client.send_headers(1, REQUEST + [(b"x-ours", b"1")], end_stream=True)
        (request,) = _of(pair.to_server(), h2.events.RequestReceived)
        assert list(request.headers) == REQUEST + [(b"x-ours", b"1")]
        pair.server.send_headers(1, [(b":status", b"200"), (b"x-theirs", b"2")], end_stream=True)
        (response,) = _of(pair.to_client(), h2.events.ResponseReceived)
        assert list(response.headers) == [(b":status", b"200"), (b"x-theirs", b"2")]
        assert all(type(h[0]) is bytes and type(h[1]) is bytes for h in response.headers)
        assert calls == [("encode", True), ("decode", True)]


def test_h2_sets_the_encoders_header_table_size_on_the_servers_settings(pair: Pair) -> None:
    """When the server changes SETTINGS_HEADER_TABLE_SIZE, h2 sets ``self.encoder.
    header_table_size``; StatelessEncoder's setter answers with a table size update to 0 at the
    start of the next block, which the server's decoder requires after shrinking."""
    with relied_on(
        "h2.connection.H2Connection setting encoder.header_table_size when the remote "
        "SETTINGS_HEADER_TABLE_SIZE changes (StatelessEncoder's property setter)",
        INTERNALS_PY,
    ):
        pair.handshake()
        pair.server.update_settings({SettingCodes.HEADER_TABLE_SIZE: 256})
        pair.to_client()
        assert pair.client.encoder.header_table_size == 256
        pair.client.counted = 0
        pair.client.send_headers(1, REQUEST, end_stream=True)
        data = pair.client.data_to_send()
        (block,) = _header_blocks(data)
        assert block[:1] == b"\x20"
        (request,) = _of(pair.server.receive_data(data), h2.events.RequestReceived)
        assert list(request.headers) == REQUEST


def test_h2_sets_the_decoders_limits_when_our_settings_are_acknowledged(pair: Pair) -> None:
    """CachingDecoder enforces ``self.max_header_list_size`` and ``self.max_allowed_table_size``,
    the hpack.Decoder attributes h2 sets when the server acknowledges our SETTINGS; an oversized
    header list must still reach the caller as h2's DenialOfServiceError."""
    with relied_on(
        "h2.connection.H2Connection setting decoder.max_header_list_size and "
        "decoder.max_allowed_table_size on SETTINGS ACK, and mapping hpack's "
        "OversizedHeaderListError to DenialOfServiceError",
        INTERNALS_PY,
    ):
        pair.handshake()
        pair.client.update_settings(
            {SettingCodes.MAX_HEADER_LIST_SIZE: 200, SettingCodes.HEADER_TABLE_SIZE: 0}
        )
        pair.to_server()
        pair.to_client()
        assert pair.client.decoder.max_header_list_size == 200
        assert pair.client.decoder.max_allowed_table_size == 0
        pair.client.counted = 0
        pair.client.send_headers(1, REQUEST, end_stream=True)
        pair.to_server()
        pair.server.send_headers(1, [(b":status", b"200"), (b"x-big", b"v" * 300)])
        with pytest.raises(h2.exceptions.DenialOfServiceError):
            pair.to_client()


# -- hyperhttp/proto/h2_internals.py: hpack's private modules and attributes --------------------------


@pytest.mark.parametrize(
    "module, name",
    [
        ("hpack.huffman_constants", "REQUEST_CODES"),
        ("hpack.huffman_constants", "REQUEST_CODES_LENGTH"),
        ("hpack.huffman_table", "decode_huffman"),
        ("hpack.table", "HeaderTable"),
    ],
)
def test_private_hpack_names_we_import(module: str, name: str) -> None:
    """h2_internals.py imports these from hpack's private modules at import time."""
    with relied_on(f"{module}.{name} (a private module path)", INTERNALS_PY):
        assert getattr(importlib.import_module(module), name) is not None


def test_huffman_code_table_and_decoder() -> None:
    """huffman_encode builds its code from ``REQUEST_CODES`` / ``REQUEST_CODES_LENGTH`` (per
    symbol: the code as an int, its length in bits; 256 symbols and EOS), and _read_string decodes
    with ``decode_huffman``, which must return bytes and raise HPACKDecodingError on a bad string.
    The expected codes are RFC 7541's examples (C.4.1, C.4.2, C.4.3)."""
    _ours()
    rfc = {
        b"www.example.com": "f1e3c2e5f23a6ba0ab90f4ff",
        b"no-cache": "a8eb10649cbf",
        b"custom-key": "25a849e95ba97d7f",
        b"custom-value": "25a849e95bb8e8b4bf",
    }
    with relied_on(
        "hpack.huffman_constants.REQUEST_CODES / REQUEST_CODES_LENGTH (256 symbols + EOS, "
        "int codes and bit lengths)",
        INTERNALS_PY,
    ):
        from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

        assert len(REQUEST_CODES) == len(REQUEST_CODES_LENGTH) == 257
        assert all(
            type(c) is int and 5 <= n <= 30
            for c, n in zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)
        )
        for plain, coded in rfc.items():
            assert _hpack.huffman_encode(plain).hex() == coded
    with relied_on(
        "hpack.huffman_table.decode_huffman(bytes) -> bytes, HPACKDecodingError when invalid",
        INTERNALS_PY,
    ):
        from hpack.huffman_table import decode_huffman

        for plain, coded in rfc.items():
            assert decode_huffman(bytes.fromhex(coded)) == plain
        every = bytes(range(256))
        assert decode_huffman(_hpack.huffman_encode(every)) == every
        assert decode_huffman(b"") == b""
        for bad in (b"\xff\xff\xff\xff", b"\x00"):  # EOS inside; padding that is not all ones
            with pytest.raises(hpack.HPACKDecodingError):
                decode_huffman(bad)


def test_header_table() -> None:
    """CachingDecoder and StatelessEncoder index hpack.table.HeaderTable's ``STATIC_TABLE`` (RFC
    7541 Appendix A, as (bytes, bytes) tuples); the decoder uses the dynamic table's
    ``get_by_index`` (1-based across both tables, InvalidTableIndex when out of range), ``add``
    and the ``maxsize`` setter (which evicts and sets ``resized``)."""
    with relied_on(
        "hpack.table.HeaderTable.STATIC_TABLE, get_by_index, add, maxsize, resized", INTERNALS_PY
    ):
        from hpack.table import HeaderTable

        static = HeaderTable.STATIC_TABLE
        assert len(static) == 61
        assert all(type(n) is bytes and type(v) is bytes for n, v in static)
        assert static[0] == (b":authority", b"")
        assert static[7] == (b":status", b"200")
        assert static[60] == (b"www-authenticate", b"")
        table = HeaderTable()
        assert table.maxsize == 4096 and table.resized is False
        assert table.get_by_index(8) == (b":status", b"200")
        table.add(b"x-a", b"1")
        assert tuple(table.get_by_index(62)) == (b"x-a", b"1")
        for index in (0, 63):
            with pytest.raises(hpack.InvalidTableIndex):
                table.get_by_index(index)
        table.maxsize = 0
        assert table.resized is True
        with pytest.raises(hpack.InvalidTableIndex):
            table.get_by_index(62)


def test_decoder_attributes_and_table_size_check() -> None:
    """install() builds ``CachingDecoder(old.max_header_list_size)`` (positional) and carries over
    ``max_allowed_table_size`` and ``header_table``; CachingDecoder._decode ends with hpack's
    private ``self._assert_valid_table_size()``, which must raise InvalidTableSizeError when the
    table is larger than allowed and no size update came."""
    _ours()
    with relied_on(
        "hpack.Decoder(max_header_list_size) and its attributes header_table, "
        "max_header_list_size, max_allowed_table_size, _assert_valid_table_size()",
        INTERNALS_PY,
    ):
        decoder = hpack.Decoder(1234)
        assert decoder.max_header_list_size == 1234
        assert type(decoder.header_table).__name__ == "HeaderTable"
        assert decoder.max_allowed_table_size == decoder.header_table.maxsize == 4096
        ours = _hpack.CachingDecoder(1234)
        assert ours.decode(b"\x88", raw=True) == [(b":status", b"200")]
        ours.max_allowed_table_size = 100
        with pytest.raises(hpack.InvalidTableSizeError):
            ours._assert_valid_table_size()
        with pytest.raises(hpack.InvalidTableSizeError):
            ours.decode(b"\x89", raw=True)


def test_install_reads_the_encoder_and_decoder_h2_built() -> None:
    """install() reads, from the hpack objects h2 put on the connection: the decoder's
    ``max_header_list_size``, ``max_allowed_table_size`` and ``header_table``, and the encoder's
    ``header_table_size``, ``header_table.resized`` and ``table_size_changes`` (a size change h2
    made before install must still produce a size update)."""
    _ours()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with relied_on(
        "h2.connection.H2Connection.encoder / .decoder being hpack.Encoder / hpack.Decoder with "
        "header_table_size, table_size_changes, header_table.resized; max_header_list_size, "
        "max_allowed_table_size, header_table",
        INTERNALS_PY,
    ):
        old_encoder, old_decoder = conn.encoder, conn.decoder
        assert isinstance(old_encoder, hpack.Encoder) and isinstance(old_decoder, hpack.Decoder)
        assert old_encoder.header_table_size == 4096
        assert old_encoder.table_size_changes == [] and old_encoder.header_table.resized is False
        old_encoder.header_table_size = 100
        assert old_encoder.table_size_changes or old_encoder.header_table.resized
        old_decoder.max_header_list_size = 777
        old_decoder.max_allowed_table_size = 50
        _hpack.install(conn)
        assert isinstance(conn.encoder, _hpack.StatelessEncoder)
        assert conn.encoder.header_table_size == 100
        assert conn.encoder.encode([(b":method", b"GET")])[:1] == b"\x20"
        assert isinstance(conn.decoder, _hpack.CachingDecoder)
        assert conn.decoder.max_header_list_size == 777
        assert conn.decoder.max_allowed_table_size == 50
        assert conn.decoder.header_table is old_decoder.header_table


def test_encoder_base_class() -> None:
    """StatelessEncoder subclasses hpack.Encoder: ``Encoder()`` takes no argument and leaves a
    ``header_table`` whose ``maxsize`` seeds our ``header_table_size``."""
    _ours()
    with relied_on("hpack.Encoder() and its header_table.maxsize", INTERNALS_PY):
        encoder = _hpack.StatelessEncoder()
        assert encoder.header_table_size == hpack.Encoder().header_table.maxsize == 4096
        assert encoder.encode([(b":status", b"200")]) == b"\x88"


def test_header_tuples() -> None:
    """The decoder builds HeaderTuple / NeverIndexedHeaderTuple with ``tuple.__new__(cls, (name,
    value))`` (no per-instance state allowed) and, for ``raw=False``, with ``h.__class__(name,
    value)``; the encoder tells them apart by ``indexable``."""
    with relied_on(
        "hpack.HeaderTuple / NeverIndexedHeaderTuple: tuple subclasses built by "
        "tuple.__new__ or cls(name, value), class attribute indexable",
        INTERNALS_PY,
    ):
        for cls, indexable in ((hpack.HeaderTuple, True), (hpack.NeverIndexedHeaderTuple, False)):
            fast = tuple.__new__(cls, (b"n", b"v"))
            slow = cls(b"n", b"v")
            assert type(fast) is cls and type(slow) is cls
            assert fast == slow == (b"n", b"v")
            assert fast.indexable is indexable and slow.indexable is indexable
        assert issubclass(hpack.NeverIndexedHeaderTuple, hpack.HeaderTuple)


def test_hpack_exception_hierarchy() -> None:
    """CachingDecoder raises hpack's own exception types so that h2 maps them as it maps
    hpack.Decoder's (HPACKError -> ProtocolError, OversizedHeaderListError ->
    DenialOfServiceError)."""
    with relied_on(
        "hpack.HPACKDecodingError, InvalidTableIndex, InvalidTableSizeError, "
        "OversizedHeaderListError exported by hpack, all HPACKError subclasses",
        INTERNALS_PY,
    ):
        for exc in (
            hpack.InvalidTableIndex,
            hpack.InvalidTableSizeError,
            hpack.OversizedHeaderListError,
        ):
            assert issubclass(exc, hpack.HPACKDecodingError)
        assert issubclass(hpack.HPACKDecodingError, hpack.HPACKError)


@pytest.mark.parametrize(
    "block",
    [
        b"\xff\x80\x80\x80\x80\x80\x01",  # 7 octets: too long for hpack >= 4.2
        b"\xff\x80\x80\x80\x80\x00",  # 6 octets: the longest accepted, then a bad index
        b"\xff",  # truncated
    ],
)
def test_integer_limits_match_hpack(block: bytes) -> None:
    """_varint mirrors hpack.hpack.decode_integer, including its limit of 6 octets
    (VARINT_MAX_LENGTH, new in hpack 4.2.0): the same block must fail with the same exception
    type from CachingDecoder and hpack.Decoder."""
    _ours()

    def outcome(decoder: Any) -> type[BaseException] | None:
        try:
            decoder.decode(block, raw=True)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc)
        return None

    with relied_on(
        "hpack.Decoder's integer decoding (hpack.hpack.decode_integer: at most 6 octets)",
        INTERNALS_PY,
    ):
        assert outcome(_hpack.CachingDecoder()) is outcome(hpack.Decoder()) is not None
