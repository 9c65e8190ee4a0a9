"""The fast path of HTTP/2: plain requests and their responses without h2's per-frame machinery.

h2 builds objects for every frame and runs two state machines per stream; for a request with no
body and its response that is most of the CPU of a small request. A *fast* stream (a request
without a body, see ``H2Connection.send``) is run here instead, on bytes:

* out: its HEADERS (and CONTINUATION) frames, encoded by the connection's HPACK encoder, queued
  in h2's send buffer so that every frame leaves in order; h2 is told the stream id is taken;
* in: ``H2Fast._receive`` splits what the socket gave into frames with ``struct``
  (h2_frames.py). A DATA, HEADERS, RST_STREAM or WINDOW_UPDATE frame of an open fast stream is
  handled here, with the checks h2 makes (connection and stream windows, content length, header
  blocks split over CONTINUATION, an informational or trailing block, PRIORITY on itself); every
  other frame (SETTINGS, PING, GOAWAY, the connection's WINDOW_UPDATE, frames of streams with a
  body, frames of closed streams, anything malformed) is handed to h2 on its own, in order, and
  h2's events are dispatched as before. A frame h2 would refuse is handed to h2 to refuse with
  its own error;
* the handlers are the ones h2's events reach (h2_events.py), called in the order h2 would
  emit the events (a response, then its end; data, then its end);
* a fast stream that ends is remembered as closed (by END_STREAM or RST_STREAM; the last 512 to
  1024 of them), and told to h2 when a frame arrives for it later, so that the frame gets h2's
  answer for a stream it closed and forgot. A RST_STREAM for such a stream is ignored, as h2
  ignores one for a closed stream it still holds. (Told at once, each closed stream would cost
  a write into h2's size-limited dict, a few percent of a small request.)

With the fast path off (``H2Connection.fast_path``) every stream is run by h2, and what the
socket gives still goes to h2 one frame at a time through the same loop; the results, and the
bytes on the wire, are the same either way (tests/unit/test_h2_fast.py). Compared with feeding
h2 whole reads, three things differ: a frame longer than our SETTINGS_MAX_FRAME_SIZE is refused
once its header has arrived rather than once all of it has; the frames before a protocol error
in the same read take effect (h2 drops their events); and a stream the client is done with is
dropped from h2's dict at once (``LeanH2Connection.forget``), where h2 sweeps closed streams now
and then and, until it does, answers some late frames otherwise (a 1xx block on a closed stream:
a connection error rather than RST_STREAM).
"""

from __future__ import annotations

from typing import Any, Callable

import h2.exceptions
from h2.errors import ErrorCodes
from h2.utilities import guard_increment_window, is_informational_response

from .base import OutgoingRequest
from .h2_fields import request_block
from .h2_frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADER,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    data_payload,
    headers_frames,
    headers_payload,
    rst_stream,
    window_update,
)
from .h2_internals import LeanH2Connection, StreamClosedBy, naked_continuation
from .h2_stream import StreamState

__all__ = ["H2Fast"]

_CONTINUATION_BACKLOG = 64  # frames in one header block, as h2's FrameBuffer allows
_unpack = HEADER.unpack_from
_BY_END = StreamClosedBy.RECV_END_STREAM
_BY_SENT_RESET = StreamClosedBy.SEND_RST_STREAM
_BY_RECEIVED_RESET = StreamClosedBy.RECV_RST_STREAM
Header = tuple[bytes, bytes]


class H2Fast:
    """The fast path of ``H2Connection``; these attributes and methods are the connection's."""

    _h2: LeanH2Connection
    _streams: dict[int, StreamState]
    _closed: bool
    _scheme: bytes
    _remote_limit: int
    _stream_window: int
    _pending: bytearray | None
    _h2_block: bool  # h2 holds a header block awaiting CONTINUATION: every frame goes to h2
    _fast_block: list[Any] | None  # [stream id, flags, fragments] of a fast block in progress
    _handlers: dict[type, Any]
    _ended: dict[int, Any]  # stream id -> StreamClosedBy of fast streams h2 was not told of yet

    # H2Events's handlers, and H2Connection's end of the connection on a protocol error:
    _on_response: Callable[[int, list[Header], bool], None]
    _on_data: Callable[[int, bytes, int], None]
    _on_end: Callable[[int], None]
    _on_trailers: Callable[[int, list[Header]], None]
    _on_reset: Callable[[int, Any], None]
    _protocol_error: Callable[[h2.exceptions.ProtocolError, bool], None]

    # -- out ----------------------------------------------------------------------------------

    def _open_fast(self, stream: StreamState, request: OutgoingRequest) -> None:
        """Send a request without a body on ``stream``: HEADERS with END_STREAM."""
        conn = self._h2
        others = len(self._streams) - 1
        if others + 1 > self._remote_limit:
            raise h2.exceptions.TooManyStreamsError(
                f"Max outbound streams is {self._remote_limit}, {others} open"
            )
        block = request_block(request, self._scheme, conn.encoder)  # type: ignore[arg-type]
        conn.opened(stream.id)
        conn.queue(headers_frames(stream.id, block, True, conn.max_outbound_frame_size))
        stream.fast = True
        stream.sending = False
        stream.recv_window = self._stream_window
        stream.send_window = conn.remote_settings.initial_window_size
        if stream.is_head:
            stream.expected = 0

    def _grant_fast(self, stream: StreamState, size: int) -> None:
        """WINDOW_UPDATE for ``size`` bytes of a fast stream."""
        stream.recv_window += size
        self._h2.queue(window_update(stream.id, size))

    def _reset_fast(self, stream: StreamState, code: int) -> None:
        """RST_STREAM for a fast stream, unless the server has ended it (our side was ended by
        the request's HEADERS, so the stream is closed: no frame may be sent on it, and h2
        refuses to reset one of its own in that state)."""
        if stream.closed_by is _BY_END:
            return
        stream.closed_by = _BY_SENT_RESET
        self._h2.queue(rst_stream(stream.id, code))

    # -- in -----------------------------------------------------------------------------------

    def _receive(self, data: memoryview) -> None:
        """Frames from the socket: a fast stream's handled here, the rest by h2, in order."""
        pending = self._pending
        if pending is not None:
            pending += data
            view = memoryview(pending)
        else:
            view = data
        used = len(view)
        try:
            used = self._frames(view)
        except h2.exceptions.ProtocolError as exc:
            self._protocol_error(exc, False)
        finally:
            if pending is not None:
                view.release()  # before the bytearray is resized
        if pending is not None:
            if used == len(pending):
                self._pending = None
            else:
                del pending[:used]
        elif used < len(view):
            self._pending = bytearray(view[used:])

    def _frames(self, view: memoryview) -> int:
        """Handle the complete frames at the start of ``view``; return how many bytes they took."""
        conn = self._h2
        streams = self._streams
        max_frame = conn.max_inbound_frame_size
        size = len(view)
        i = 0
        while size - i >= 9 and not self._closed:
            high, low, kind, flags, stream_id = _unpack(view, i)
            length = (high << 16) | low
            if length > max_frame:
                raise h2.exceptions.FrameTooLargeError(
                    f"Received overlong frame: length {length}, max {max_frame}"
                )
            start = i + 9
            end = start + length
            if end > size:
                break
            stream_id &= 0x7FFFFFFF
            stream = streams.get(stream_id)
            if self._fast_block is not None:
                self._continue_block(view, start, end, kind, flags, stream_id)
            elif stream is None or not stream.fast or self._h2_block:
                if stream is None:
                    self._tell_closed(stream_id)
                if kind == RST_STREAM and stream is None and self._forgotten(stream_id):
                    pass  # a closed fast stream: ignored, as h2 ignores it on a closed stream
                else:
                    self._to_h2(view[i:end], kind, flags)
            elif kind == DATA:
                payload = data_payload(view[start:end], flags)
                if payload is None:
                    self._to_h2(view[i:end], kind, flags)  # h2 refuses it
                else:
                    self._data(stream, payload, length, flags)
            elif kind == HEADERS:
                parts = headers_payload(view[start:end], flags)
                if parts is None:
                    self._to_h2(view[i:end], kind, flags)
                else:
                    fragment, depends_on = parts
                    if depends_on == stream_id:
                        raise h2.exceptions.ProtocolError(
                            f"Stream {stream_id} may not depend on itself"
                        )
                    if flags & END_HEADERS:
                        self._block(stream, bytes(fragment), flags)
                    else:
                        self._fast_block = [stream_id, flags, [bytes(fragment)]]
            elif kind == RST_STREAM and length == 4:
                stream.closed_by = _BY_RECEIVED_RESET
                code = int.from_bytes(view[start:end], "big")
                try:
                    code = ErrorCodes(code)
                except ValueError:
                    pass
                self._on_reset(stream_id, code)
            elif kind == WINDOW_UPDATE and length == 4:
                increment = int.from_bytes(view[start:end], "big") & 0x7FFFFFFF
                if not increment:
                    self._to_h2(view[i:end], kind, flags)  # h2 refuses it
                else:
                    self._window_update(stream, increment)
            elif kind == CONTINUATION:
                raise naked_continuation()
            else:
                self._to_h2(view[i:end], kind, flags)
            i = end
        return i

    def _tell_closed(self, stream_id: int) -> None:
        """A frame for a fast stream that closed: h2 learns how it closed (``_ended``), now that
        it must answer for it."""
        closed_by = self._ended.pop(stream_id, None)
        if closed_by is not None:
            self._h2.closed(stream_id, closed_by)

    def _forgotten(self, stream_id: int) -> bool:
        """Whether ``stream_id`` is one of our streams that is closed and that h2 does not hold."""
        conn = self._h2
        return (
            bool(stream_id & 1)
            and stream_id <= conn.highest_outbound_stream_id
            and (stream_id not in conn.streams)
        )

    def _to_h2(self, frame: memoryview, kind: int, flags: int) -> None:
        """One whole frame for h2; its events go to their handlers."""
        if kind == SETTINGS and not flags & ACK:
            self._settings_window(frame[9:])
        if kind in (HEADERS, PUSH_PROMISE) and not flags & END_HEADERS:
            self._h2_block = True
        elif kind == CONTINUATION and flags & END_HEADERS:
            self._h2_block = False
        try:
            events = self._h2.receive_data(bytes(frame))
        except h2.exceptions.ProtocolError as exc:
            self._protocol_error(exc, True)  # h2 has queued its GOAWAY
            return
        handlers = self._handlers
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)

    def _data(self, stream: StreamState, payload: memoryview, length: int, flags: int) -> None:
        """A fast stream's DATA frame: h2's checks, then the handlers."""
        self._h2.consume_window(length)
        if not stream.head_seen:
            raise h2.exceptions.ProtocolError("cannot receive data before headers")
        stream.recv_window -= length
        if stream.recv_window < 0:
            raise h2.exceptions.FlowControlError("Flow control window shrunk below 0")
        received = stream.received = stream.received + len(payload)
        expected = stream.expected
        ended = flags & END_STREAM
        if expected is not None and (expected < received or (ended and expected != received)):
            raise h2.exceptions.InvalidBodyLengthError(expected, received)
        if ended:
            stream.closed_by = _BY_END
        stream_id = stream.id
        self._on_data(stream_id, payload.tobytes(), length)
        if ended:
            self._on_end(stream_id)

    def _continue_block(
        self, view: memoryview, start: int, end: int, kind: int, flags: int, stream_id: int
    ) -> None:
        """A frame while a fast stream's header block awaits CONTINUATION frames."""
        block = self._fast_block
        assert block is not None
        if kind != CONTINUATION or stream_id != block[0]:
            raise h2.exceptions.ProtocolError("Invalid frame during header block.")
        fragments = block[2]
        fragments.append(bytes(view[start:end]))
        if len(fragments) > _CONTINUATION_BACKLOG:
            raise h2.exceptions.ProtocolError("Too many continuation frames received.")
        if flags & END_HEADERS:
            self._fast_block = None
            whole = b"".join(fragments)
            stream = self._streams.get(stream_id)
            if stream is not None:
                self._block(stream, whole, block[1])
                return
            # The stream closed meanwhile (reset by the client): the block still goes through
            # the decoder, whose table follows the server's, by h2, which answers as for a
            # closed stream of its own.
            self._tell_closed(stream_id)
            ended = bool(block[1] & END_STREAM)
            frame = headers_frames(stream_id, whole, ended, len(whole))  # one HEADERS frame
            self._to_h2(memoryview(frame), HEADERS, END_HEADERS)

    def _block(self, stream: StreamState, block: bytes, flags: int) -> None:
        """A fast stream's complete header block: a response head, an informational one, or
        trailers; h2's checks, then the handlers."""
        headers = self._h2.decode_block(block)
        ended = bool(flags & END_STREAM)
        informational = is_informational_response(headers)
        if informational:
            if ended:
                raise h2.exceptions.ProtocolError(
                    "Cannot set END_STREAM on informational responses"
                )
            if stream.head_seen:
                raise h2.exceptions.ProtocolError("Informational response after final response")
        trailers = stream.head_seen and not informational
        if not informational:
            stream.head_seen = True
        if ended:
            stream.closed_by = _BY_END
        if not stream.is_head:
            self._content_length(stream, headers)
        if trailers and not ended:
            raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set")
        stream_id = stream.id
        if trailers:
            self._on_trailers(stream_id, headers)
        elif not informational:
            self._on_response(stream_id, headers, ended)
        if ended:
            self._on_end(stream_id)

    def _content_length(self, stream: StreamState, headers: list[Header]) -> None:
        """The content-length of a block, as h2 reads it (for a HEAD request it stays 0)."""
        found: int | None = None
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    raise h2.exceptions.ProtocolError(f"Invalid content-length header: {value!r}")
                number = int(value, 10)
                if found is None:
                    found = number
                elif number != found:
                    raise h2.exceptions.ProtocolError(
                        f"Conflicting content-length headers: {found} and {number}"
                    )
        stream.expected = found

    def _window_update(self, stream: StreamState, increment: int) -> None:
        """A fast stream's WINDOW_UPDATE: nothing waits for it (no body to send), but a window
        pushed past 2^31-1 resets the stream (FLOW_CONTROL_ERROR), as h2 does."""
        try:
            stream.send_window = guard_increment_window(stream.send_window, increment)
        except h2.exceptions.FlowControlError:
            self._reset_fast(stream, ErrorCodes.FLOW_CONTROL_ERROR)
            self._on_reset(stream.id, ErrorCodes.FLOW_CONTROL_ERROR)

    def _settings_window(self, payload: memoryview) -> None:
        """A SETTINGS frame from the server, before h2 takes it: a new
        SETTINGS_INITIAL_WINDOW_SIZE changes every fast stream's send window too, and one pushed
        past 2^31-1 is a connection error before the frame is acknowledged, as in h2."""
        size = len(payload)
        if size % 6:
            return  # h2 refuses the frame
        value = -1
        for start in range(0, size, 6):
            if payload[start] == 0 and payload[start + 1] == INITIAL_WINDOW_SIZE:
                value = int.from_bytes(payload[start + 2 : start + 6], "big")
        if not 0 <= value <= 0x7FFFFFFF:
            return  # not in the frame, or h2 refuses its value
        delta = value - self._h2.remote_settings.initial_window_size
        fast = [stream for stream in self._streams.values() if stream.fast]
        windows = [guard_increment_window(stream.send_window, delta) for stream in fast]
        for stream, window in zip(fast, windows, strict=True):
            stream.send_window = window
