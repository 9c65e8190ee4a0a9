"""What the server's frames do to the streams of an HTTP/2 connection: one handler per h2 event.

A mixin of ``H2Connection`` (proto/h2.py), which owns the state and dispatches h2's events here
from ``buffer_updated``. A response head is checked once per distinct field (h2_fields.py) and
limited in its number of fields (``HeadLimits``; its size is SETTINGS_MAX_HEADER_LIST_SIZE, which
the decoder enforces); trailers go to the body's own list; END_STREAM ends a stream once our
side is sent too, and stops an upload still waiting for window; RST_STREAM fails one stream;
GOAWAY fails the streams above its last stream id as not processed.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any, Callable

import h2.connection
import h2.events
import h2.settings
from h2.errors import ErrorCodes

from ..exceptions import RemoteProtocolError, StreamNotProcessed
from .base import HeadLimits
from .h2_fields import response_fields, trailer_fields
from .h2_stream import H2Body, StreamState
from .sending import wake

__all__ = ["H2Events", "MAX_STREAMS"]

MAX_STREAMS = 1000  # our own cap, whatever the server allows

Header = tuple[bytes, bytes]


class H2Events:
    """The event handlers of ``H2Connection``; these attributes and methods are the connection's."""

    _h2: Any
    _streams: dict[int, StreamState]
    _limits: HeadLimits
    _max_streams: int
    _settings_received: bool
    _closing: bool
    _timed: bool
    _transport: Any
    _on_lost: Callable[[], None]
    _remote_limit: int

    def _reset(self, stream: StreamState, code: ErrorCodes) -> None:
        raise NotImplementedError

    def _release(self, stream: StreamState) -> None:
        raise NotImplementedError

    def _fail_stream(self, stream: StreamState, error: Exception) -> None:
        raise NotImplementedError

    def _consumed(self, stream_id: int, size: int) -> None:
        raise NotImplementedError

    def _place_freed(self) -> None:
        raise NotImplementedError

    def _response_received(self, event: h2.events.ResponseReceived) -> None:
        self._on_response(event.stream_id, event.headers, event.stream_ended is not None)

    def _on_response(self, stream_id: int, headers: list[Header], ended: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        waiter = stream.waiter
        stream.waiter = None
        if waiter is None or waiter.done():
            return
        try:
            status, fields = response_fields(headers)
            if len(fields) > self._limits.max_fields:
                self._too_many("response head")
        except RemoteProtocolError as exc:  # a malformed response: a stream error (RFC 9113 8.1.1)
            self._reset(stream, ErrorCodes.PROTOCOL_ERROR)
            waiter.set_exception(exc)
            return
        body = stream.body = H2Body(self, stream.id, stream.read_timeout)
        if self._timed:
            body.stamps = (stream.written_at, perf_counter())
        if stream.is_head or ended:
            # A HEAD response has no content (RFC 9110 9.3.2); its stream is over for h2, and
            # its place free, only once END_STREAM came (maybe in an empty DATA frame).
            body.finish()
            stream.body = None
            if ended:
                self._remote_ended(stream)
        waiter.set_result((status, "HTTP/2", fields, body))

    def _data_received(self, event: h2.events.DataReceived) -> None:
        self._on_data(event.stream_id, event.data, event.flow_controlled_length)

    def _on_data(self, stream_id: int, data: bytes, size: int) -> None:
        stream = self._streams.get(stream_id)
        body = stream.body if stream is not None else None
        if body is None or body.closed:
            self._consumed(0, size)  # nobody will read it: hand the credit back now
            return
        if size != len(data):
            self._consumed(stream_id, size - len(data))  # padding
        if data:
            body.feed(data)

    def _stream_ended(self, event: h2.events.StreamEnded) -> None:
        self._on_end(event.stream_id)

    def _on_end(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.received_end:
            return
        body = stream.body
        if body is not None:
            stream.body = None
            body.finish()
        self._remote_ended(stream)

    def _remote_ended(self, stream: StreamState) -> None:
        """END_STREAM from the server: the stream is over once our side is sent too; a body
        still being sent (waiting for window, say) stops, see _cut_upload."""
        stream.received_end = True
        if not stream.sending:
            self._release(stream)
        else:
            wake(stream.window_waiter)

    def _trailers_received(self, event: h2.events.TrailersReceived) -> None:
        self._on_trailers(event.stream_id, event.headers)

    def _on_trailers(self, stream_id: int, headers: list[Header]) -> None:
        """Trailer fields go to the body's own list, never to the head's (RFC 9110 6.5)."""
        stream = self._streams.get(stream_id)
        body = stream.body if stream is not None else None
        if stream is None or body is None:
            return
        try:
            fields = trailer_fields(headers)
            if len(fields) > self._limits.max_fields:
                self._too_many("trailer section")
        except RemoteProtocolError as exc:
            body.fail(exc)
            self._reset(stream, ErrorCodes.PROTOCOL_ERROR)
            return
        body.trailers.extend(fields)

    def _too_many(self, what: str) -> None:
        """The size of a field block is bounded by SETTINGS_MAX_HEADER_LIST_SIZE (the decoder
        refuses a larger one); its number of fields, here."""
        raise RemoteProtocolError(f"the {what} has more than {self._limits.max_fields} fields")

    def _stream_reset(self, event: h2.events.StreamReset) -> None:
        self._on_reset(event.stream_id, event.error_code)

    def _on_reset(self, stream_id: int, code: Any) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        name = getattr(code, "name", str(code))
        if stream.received_end:
            self._release(stream)  # the response is complete; the server stopped our upload
            return
        if code == ErrorCodes.REFUSED_STREAM and stream.waiter is not None:
            error: Exception = StreamNotProcessed(
                f"the server refused stream {stream_id} (REFUSED_STREAM)"
            )
        else:
            error = RemoteProtocolError(f"the server reset stream {stream_id} ({name})")
        self._fail_stream(stream, error)

    def _window_updated(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                wake(stream.window_waiter)
            return
        for stream in self._streams.values():
            wake(stream.window_waiter)

    def _settings_changed(self, event: h2.events.RemoteSettingsChanged) -> None:
        self._settings_received = True
        limit = self._remote_limit = self._h2.remote_settings.max_concurrent_streams
        previous = self._max_streams
        self._max_streams = min(limit, MAX_STREAMS)
        if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            for stream in self._streams.values():
                wake(stream.window_waiter)
        if self._max_streams > previous:
            self._place_freed()

    def _terminated(self, event: h2.events.ConnectionTerminated) -> None:
        """GOAWAY: no new streams; those above last_stream_id were never processed."""
        last = event.last_stream_id if event.last_stream_id is not None else 0
        was_closing = self._closing
        self._closing = True
        code = getattr(event.error_code, "name", str(event.error_code))
        for stream in list(self._streams.values()):
            if stream.id > last:
                self._fail_stream(
                    stream,
                    StreamNotProcessed(
                        f"the server sent GOAWAY ({code}) before processing stream {stream.id}",
                        progress=last > 0,
                    ),
                )
        if not was_closing:
            self._on_lost()  # leaves the pool's shared set; in-flight streams go on
        if not self._streams and self._transport is not None:
            self._transport.close()
