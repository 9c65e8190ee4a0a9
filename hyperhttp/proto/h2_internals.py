"""Every reach into h2's internals, in one place (hpack's are in h2_hpack.py); each is pinned by
a test in tests/unit/test_dependency_contracts.py (and the versions by the bounds in pyproject.toml).

* ``LeanH2Connection``: h2's connection with its GOAWAY handling and its open-stream count
  changed, received frames dispatched without h2's trace-log ``repr``, and the hooks through
  which the fast path of proto/h2_fast.py keeps h2's connection state true for the streams it
  runs without h2 (see the class);
* ``start``: the settings we send, set where h2 reads them before ``initiate_connection``, and
  the frame and header-list limits h2 copied at construction;
* ``client_connection``: the configuration, with the HPACK coders of h2_hpack.py installed.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.settings
from h2.stream import StreamClosedBy, StreamInputs, StreamState

from .h2_frames import rst_stream
from .h2_hpack import install

H2Connection = h2.connection.H2Connection
_IDLE = h2.connection.ConnectionState.IDLE
_SEND_HEADERS = h2.connection.ConnectionInputs.SEND_HEADERS
_decode_headers = h2.connection._decode_headers

__all__ = [
    "LeanH2Connection",
    "StreamClosedBy",
    "client_connection",
    "naked_continuation",
    "start",
]


def naked_continuation() -> h2.exceptions.ProtocolError:
    """What h2 raises for a CONTINUATION frame on an open stream (of ours: half-closed) with no
    header block before it: its stream state machine's refusal."""
    return h2.exceptions.ProtocolError(
        f"Invalid input {StreamInputs.RECV_CONTINUATION} in state {StreamState.HALF_CLOSED_LOCAL}"
    )


class LeanH2Connection(h2.connection.H2Connection):
    """h2's connection with three changes, the first two for a client that keeps its own stream
    accounts, and the hooks of the fast path (below).

    * Streams at or below a GOAWAY's last_stream_id can finish (RFC 9113 section 6.8). h2 closes
      its connection state machine on receiving GOAWAY and then rejects every later frame, so the
      streams the server promised to complete could not (python-hyper/h2 issue 1181). Here the
      state stays open on a received GOAWAY, and what is queued to send is kept; the owner opens
      no new stream after it.
    * The open-stream count that ``send_headers`` checks against the server's limit comes from
      the owner (``counted``: its streams open besides the one being opened). h2 counts by
      walking every stream it holds, on every new stream: a tenth of the CPU of a small request
      at 64 concurrent streams. h2's walk, which also drops closed streams, still runs once the
      streams it holds outnumber the open ones by more than 32 (amortised: once per 32 streams).
    * A received frame is dispatched without the ``repr(frame)`` h2 builds for its trace log
      (``_receive_frame``).

    The fast path (proto/h2_fast.py) runs plain streams without h2: it writes their frames and
    reads the server's. What h2 must still know of them goes through these hooks: a stream id
    taken (``opened``: h2's next id, its connection state), frames queued in h2's own send
    buffer so that every frame leaves in order (``queue``), the connection's receive window
    (``consume_window``), the shared HPACK decoder with h2's error mapping (``decode_block``),
    how a stream closed (``closed``: a late frame on it gets h2's answer for a stream it closed
    and forgot), and the GOAWAY h2 sends on a protocol error (``terminate``). Streams h2 runs
    are forgotten as soon as the client is done with them (``forget``), so that late frames get
    the same answers whoever ran the stream.
    """

    counted = 0

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        machine = self.state_machine
        inputs, states = h2.connection.ConnectionInputs, h2.connection.ConnectionState
        machine._transitions = {  # this instance's copy
            **machine._transitions,
            (states.IDLE, inputs.RECV_GOAWAY): (None, states.IDLE),
            (states.CLIENT_OPEN, inputs.RECV_GOAWAY): (None, states.CLIENT_OPEN),
        }

    def clear_outbound_data_buffer(self) -> None:
        """Kept (h2 calls it on a received GOAWAY): see the class's docstring."""

    def _receive_frame(self, frame: Any) -> list[Any]:
        """h2's handling of one received frame, without its trace log's ``repr(frame)``, which
        h2 builds for every frame whether or not anything logs it (about 1 us a frame).

        The same dispatch and the same answers when a frame names a closed stream: RST_STREAM
        for a stream the client reset, a connection error otherwise (raised for h2's
        ``receive_data`` to turn into GOAWAY)."""
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except h2.exceptions.StreamClosedError as exc:
            if not self._stream_is_closed_by_reset(exc.stream_id):
                raise
            self._reset_stream_frame(exc.stream_id, exc.error_code)
            return list(exc._events)
        except h2.exceptions.StreamIDTooLowError as exc:
            if self._stream_is_closed_by_reset(exc.stream_id):
                self._reset_stream_frame(exc.stream_id, h2.errors.ErrorCodes.STREAM_CLOSED)
                return []
            if self._stream_is_closed_by_end(exc.stream_id):
                raise h2.exceptions.StreamClosedError(exc.stream_id) from exc
            raise
        self._prepare_for_sending(frames)
        return events  # type: ignore[no-any-return]

    def _reset_stream_frame(self, stream_id: int, error_code: Any) -> None:
        self.queue(rst_stream(stream_id, error_code))

    def opened(self, stream_id: int) -> None:
        """``stream_id`` is taken by a stream h2 does not run: the next id is above it, and the
        connection is open (h2's state machine, as ``send_headers`` would leave it)."""
        if self.state_machine.state is _IDLE:
            self.state_machine.process_input(_SEND_HEADERS)
        self.highest_outbound_stream_id = stream_id

    @property
    def queued(self) -> int:
        """How many bytes wait in h2's send buffer."""
        return len(self._data_to_send)

    def queue(self, data: bytes) -> None:
        """Frames to send after those h2 has queued (``data_to_send`` returns both)."""
        self._data_to_send += data

    def consume_window(self, size: int) -> None:
        """``size`` flow-controlled bytes received on a stream h2 does not run: the connection's
        receive window shrinks (FlowControlError below 0, as h2's DATA handling)."""
        self._inbound_flow_control_window_manager.window_consumed(size)

    def decode_block(self, block: bytes) -> Any:
        """A complete header block through the connection's HPACK decoder, with h2's errors
        (ProtocolError, DenialOfServiceError for an oversized list)."""
        return _decode_headers(self.decoder, block)

    def closed(self, stream_id: int, by: StreamClosedBy) -> None:
        """A stream h2 did not run is closed ``by`` this: h2 answers a late frame on it as on
        a closed stream of its own that it has cleaned up."""
        self._closed_streams[stream_id] = by

    def forget(self, stream_id: int) -> None:
        """Drop a stream h2 ran that the client is done with, as h2's own sweep does
        (``_open_streams``): if it is closed, how is recorded; if not (a stream above a GOAWAY's
        last stream id), it is dropped as implicitly closed. A late frame on it then gets the
        answer it would get on a fast stream: h2 answers some frames on a stream it still holds
        otherwise than on one it has forgotten (a 1xx block on a closed stream: a connection
        error, or RST_STREAM)."""
        stream = self.streams.pop(stream_id, None)
        if stream is not None and stream.closed:
            self._closed_streams[stream_id] = stream.closed_by

    def terminate(self, error: h2.exceptions.ProtocolError) -> None:
        """GOAWAY for a protocol error found outside h2, as h2's ``receive_data`` sends it."""
        self._terminate_connection(error.error_code)

    @property
    def open_outbound_streams(self) -> int:
        if len(self.streams) > 2 * self.counted + 32:
            return super().open_outbound_streams
        return self.counted


def client_connection(max_header_list_size: int) -> LeanH2Connection:
    """A client connection that leaves the checks of fields to us (requests are built
    lower-cased and checked, responses checked in h2_fields.response_fields, once per distinct
    field), with our HPACK coders installed."""
    config = h2.config.H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        split_outbound_cookies=False,
        validate_inbound_headers=False,
        normalize_inbound_headers=False,
    )
    conn = LeanH2Connection(config)
    install(conn)
    return conn


def start(
    conn: H2Connection,
    *,
    max_concurrent_streams: int,
    stream_window: int,
    connection_window: int,
    max_frame: int,
    max_header_list_size: int,
) -> None:
    """Our SETTINGS, then the connection preface (queued in h2's send buffer).

    h2 sends ``local_settings`` as they are when ``initiate_connection`` runs (these Settings
    count as acknowledged already), and copied the frame and header-list limits from its
    defaults when it was built: they are set here too."""
    conn.local_settings = h2.settings.Settings(
        client=True,
        initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: stream_window,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list_size,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame,
        },
    )
    conn.max_inbound_frame_size = max_frame
    conn.decoder.max_header_list_size = max_header_list_size
    conn.initiate_connection()
    conn.increment_flow_control_window(connection_window - 65535)
