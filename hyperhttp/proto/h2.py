"""HTTP/2 (RFC 9113) over one ``asyncio.BufferedProtocol`` per connection, framed by ``h2``.

One connection carries many concurrent streams. The owner (the pool) reserves a stream with
``reserve()`` while ``available`` is above zero, then ``send()``s the request on it; when the
stream is finished (response complete and request sent, or reset) its place is given back through
the ``on_idle`` callback, which the pool uses to hand the place to a queued request.

Until the server's first SETTINGS frame arrives the connection offers one stream (the request that
opened it); then as many as the server's SETTINGS_MAX_CONCURRENT_STREAMS allows (capped).

Flow control on receipt: the stream windows start at 1 MiB and the connection window at 16 MiB,
and bytes are handed back to the server as the application *consumes* them (``BodyStream`` tells
us), not as they arrive: a slow reader of a large download holds at most a stream window in memory.
On sending, DATA frames never exceed the server's windows; the sender waits for WINDOW_UPDATE.
What the requests of one loop iteration queue (their HEADERS, and bytes bodies as far as the windows
allow) goes out in one write. A complete response (END_STREAM) while the request body still waits
for window ends the upload, and our half of the stream is reset.

Lifecycle: a GOAWAY stops new streams; streams above its last_stream_id were not processed and fail
with ``StreamNotProcessed`` (the pool may replay them elsewhere). RST_STREAM fails that stream only.
A connection error (a protocol violation, the socket closing) fails every stream with a typed error.
A request cancelled mid-flight resets its own stream (CANCEL) and leaves the others alone. What
each of h2's events does to the streams is in h2_events.py.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from itertools import islice
from time import perf_counter
from typing import Any, Callable

import h2.events
import h2.exceptions
from h2.errors import ErrorCodes

from ..exceptions import (
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    StreamNotProcessed,
    WriteError,
)
from .base import (
    DEFAULT_HEAD_LIMITS,
    Callback,
    ConnectionNotAvailable,
    HeadLimits,
    OutgoingRequest,
    RequestBody,
    ResponseHead,
    Timeouts,
    lost_error,
)
from .deadline import LazyTimer
from .h2_events import H2Events
from .h2_fast import H2Fast
from .h2_fields import request_fields
from .h2_internals import client_connection, start
from .h2_stream import H2Body, StreamState
from .sending import DeclaredLength, WriteFlow, pieces, wait_to_write, wake
from .stream import BodyStream

__all__ = ["H2Connection"]

STREAM_WINDOW = 1 << 20
CONNECTION_WINDOW = 1 << 24
MAX_FRAME = (
    1 << 18
)  # the largest frame we accept: fewer, larger DATA frames from servers that use it
_WRITE_BATCH = 256 * 1024  # DATA queued in h2 before it is written out
_HIGHEST_STREAM_ID = 2**31 - 1
_ENDED_KEPT = 1024  # closed fast streams remembered (a late frame on an older one: see h2_fast)

Header = tuple[bytes, bytes]


class H2Connection(H2Events, H2Fast, asyncio.BufferedProtocol):
    """One HTTP/2 connection: many concurrent requests, each on its own stream."""

    multiplexed = True
    fast_path = True  # requests without a body, and what comes back for them, skip h2 (h2_fast)
    index_fields = True  # :authority and a Client's default fields indexed (h2_hpack.request_block)

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        buffer: memoryview,
        on_idle: Callback,
        on_lost: Callback,
        limits: HeadLimits = DEFAULT_HEAD_LIMITS,
        scheme: bytes = b"https",
        timed: bool = False,
    ) -> None:
        self._timed = timed  # note when each request was sent and its response began
        self._loop = loop
        self._buffer = buffer
        self._limits = limits
        self._on_idle = on_idle
        self._on_lost = on_lost
        self._transport: Any = None
        self._scheme = scheme  # :scheme of its requests
        self._h2 = client_connection(limits.max_size)
        self._h2.encoder.indexing = self.index_fields
        self._remote_limit = self._h2.remote_settings.max_concurrent_streams
        self._stream_window = STREAM_WINDOW
        self._pending: bytearray | None = None  # the start of a frame not all received yet
        self._h2_block = False
        self._fast_block: list[Any] | None = None
        self._ended: dict[int, Any] = {}  # fast streams closed, and how, until h2 needs to know
        self._streams: dict[int, StreamState] = {}
        self._max_streams = 1  # until the server's SETTINGS say otherwise
        self._settings_received = False
        self._in_use = 0  # reserved plus open streams
        self._closing = False  # GOAWAY received or sent: no new streams
        self._closed = False
        self._flush_pending = False
        self._queued = 0  # DATA bytes h2 holds that are not written yet
        self._flow = WriteFlow(loop)
        self._connection_unacked = 0
        self._timer = LazyTimer(loop, self._check_deadlines)
        self._handlers: dict[type, Callable[[Any], None]] = {
            h2.events.ResponseReceived: self._response_received,
            h2.events.DataReceived: self._data_received,
            h2.events.StreamEnded: self._stream_ended,
            h2.events.TrailersReceived: self._trailers_received,
            h2.events.StreamReset: self._stream_reset,
            h2.events.WindowUpdated: self._window_updated,
            h2.events.RemoteSettingsChanged: self._settings_changed,
            h2.events.ConnectionTerminated: self._terminated,
        }
        self.socket_closed = False

    # -- state seen by the owner --------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def is_idle(self) -> bool:
        return self._in_use == 0 and not self._closing and not self._closed

    @property
    def available(self) -> int:
        """How many more streams may be reserved now."""
        if self._closing or self._closed:
            return 0
        return self._max_streams - self._in_use

    @property
    def ready(self) -> bool:
        """Whether the server's SETTINGS have arrived (until then one stream is offered)."""
        return self._settings_received or self._closed

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def capacity(self) -> int:
        """How many streams the server allows at once (1 until its SETTINGS came)."""
        return self._max_streams

    @property
    def http_version(self) -> str:
        return "HTTP/2"

    def reserve(self) -> None:
        self._in_use += 1

    def unreserve(self) -> None:
        """Give back a place that was reserved but not used."""
        self._in_use -= 1
        self._place_freed()

    def drain(self) -> None:
        """Take no new streams and close once those in flight have ended (the owner needs the
        room this connection takes)."""
        if self._closing or self._closed:
            return
        self._closing = True
        self._on_lost()  # leaves the owner's shared set; the streams in flight go on
        self._place_freed()  # closing with no stream left: the socket closes now

    def close(self) -> None:
        """Close now (GOAWAY, then the socket); whatever is in flight fails."""
        if not self._closed and self._transport is not None:
            try:
                self._h2.close_connection()
            except h2.exceptions.ProtocolError:
                pass
            self._write_out()
        self._shut(ReadError("connection closed by the client"))

    # -- sending ------------------------------------------------------------------------------

    async def send(self, request: OutgoingRequest, timeout: Timeouts) -> ResponseHead:
        """Send one request on a stream reserved with ``reserve()``; return its response head.

        Raises ConnectionNotAvailable when the connection takes no new streams (GOAWAY, closed),
        StreamNotProcessed when the server did not process the request."""
        if self._closing or self._closed or self._transport is None:
            self.unreserve()
            raise ConnectionNotAvailable()
        content = request.content
        body: RequestBody = content if content is not None else request.stream
        read_timeout = timeout.read
        conn = self._h2
        stream_id = conn.get_next_available_stream_id()
        if stream_id >= _HIGHEST_STREAM_ID - 2:
            self._closing = True  # stream ids run out: this connection takes no more
            self._on_lost()
        waiter = self._loop.create_future()
        stream = StreamState(stream_id, waiter)
        stream.is_head = request.method_bytes == b"HEAD"
        stream.read_timeout = read_timeout
        self._streams[stream_id] = stream
        try:
            if body is None and self.fast_path:
                self._open_fast(stream, request)
            else:
                conn.counted = len(self._streams) - 1  # the others open, for h2's limit check
                headers = request_fields(request, self._scheme)
                conn.send_headers(stream_id, headers, end_stream=body is None)
        except h2.exceptions.TooManyStreamsError as exc:  # the server lowered its limit
            self._release(stream)
            raise StreamNotProcessed(f"the server allows no more streams now: {exc}") from exc
        except h2.exceptions.ProtocolError as exc:
            self._release(stream)
            raise LocalProtocolError(f"the request could not be sent over HTTP/2: {exc}") from exc
        try:
            if body is None:
                stream.sending = False
                self._schedule_flush()
            else:
                if not isinstance(body, (bytes, bytearray, memoryview)):
                    self._write_out()  # the head goes before a streamed body's first piece
                await self._send_body(stream, body, timeout.write, request.stream_length)
            if self._timed:
                stream.written_at = perf_counter()
            if read_timeout is not None and stream.waiter is not None:
                stream.deadline = self._loop.time() + read_timeout
                self._timer.arm(stream.deadline)
            head: ResponseHead = await waiter
            return head
        except BaseException as exc:
            if stream.id in self._streams:
                # Cancelled, timed out or failed while sending: reset this stream only.
                code = ErrorCodes.CANCEL
                if isinstance(exc, (LocalProtocolError, TypeError)):
                    code = ErrorCodes.INTERNAL_ERROR
                self._reset(stream, code)
            raise

    def start(
        self, request: OutgoingRequest, timeout: Timeouts, waiter: asyncio.Future[ResponseHead]
    ) -> int:
        """Never without a task: 0 (see proto/base.py; streams are handed out by ``reserve``)."""
        return 0

    def failed(
        self, exc: BaseException, exchange: int, waiter: asyncio.Future[ResponseHead]
    ) -> BaseException:
        """See ``start``: there is no exchange started without a task to fail."""
        return exc

    async def _send_body(
        self, stream: StreamState, body: RequestBody, timeout: float | None, length: int | None
    ) -> None:
        if isinstance(body, (bytes, bytearray, memoryview)):
            # One piece: what fits in the windows is queued, to go out with the other streams'
            # frames of this loop iteration in one write (see _schedule_flush).
            if not await self._send_piece(stream, body, timeout, last=True):
                self._cut_upload(stream)
                return
        else:
            declared = DeclaredLength(length)
            # Stopped early, the body's own iterator is closed too (see pieces()).
            async with aclosing(pieces(body)) as source:  # type: ignore[arg-type]
                async for chunk in source:
                    declared.take(chunk)
                    if not await self._send_piece(stream, chunk, timeout):
                        self._cut_upload(stream)
                        return
            declared.check_complete()
        if stream.id not in self._streams or not stream.sending:
            return
        stream.sending = False
        try:
            self._h2.end_stream(stream.id)
        except h2.exceptions.StreamClosedError:
            pass  # the server ended or reset the stream meanwhile
        self._schedule_flush()
        if stream.received_end:
            self._release(stream)

    async def _send_piece(
        self, stream: StreamState, data: Any, timeout: float | None, last: bool = False
    ) -> bool:
        """Send one piece within the flow-control windows; False when the stream went away or
        the server ended it (a complete response before the whole request: the upload stops).
        ``last``: no piece follows, so what is queued may wait for this iteration's flush."""
        view = memoryview(data).cast("B")
        conn = self._h2
        stream_id = stream.id
        while view.nbytes:
            if stream_id not in self._streams or not stream.sending or stream.received_end:
                return False
            if self._closed:
                raise WriteError("connection lost while sending the request body")
            window = conn.local_flow_control_window(stream_id)
            if window <= 0:
                self._write_out()
                await self._wait_window(stream, timeout)
                continue
            size = min(view.nbytes, window, conn.max_outbound_frame_size)
            conn.send_data(stream_id, view[:size])
            view = view[size:]
            self._queued += size
            if self._queued >= _WRITE_BATCH:
                self._write_out()
                if self._flow.paused:
                    await self._flow.drain(timeout)
        if self._queued:
            if last:
                self._schedule_flush()
            else:
                self._write_out()  # before the next piece is awaited
        return True

    def _cut_upload(self, stream: StreamState) -> None:
        """The server ended the stream before the request body was all sent, and did not reset
        it (RFC 9113 section 8.1 allows a complete response early): the response stands, and
        our half of the stream is reset (CANCEL) rather than left open with nothing to come."""
        if stream.id not in self._streams or not stream.received_end or not stream.sending:
            return
        stream.sending = False
        try:
            self._h2.reset_stream(stream.id, ErrorCodes.CANCEL)
        except h2.exceptions.ProtocolError:
            pass
        self._schedule_flush()
        self._release(stream)

    async def _wait_window(self, stream: StreamState, timeout: float | None) -> None:
        waiter = stream.window_waiter = self._loop.create_future()
        try:
            await wait_to_write(self._loop, waiter, timeout)
        finally:
            stream.window_waiter = None

    def pause_writing(self) -> None:
        self._flow.paused = True

    def resume_writing(self) -> None:
        self._flow.resume()

    def _schedule_flush(self) -> None:
        """Write what h2 has queued once this loop iteration is over: the requests of many
        tasks resumed together go out in one write (one TLS record, one syscall)."""
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self._write_out()

    def _write_out(self) -> None:
        self._queued = 0
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # -- timers -------------------------------------------------------------------------------

    def _check_deadlines(self) -> float:
        """Every stream's response-head deadline, on one timer (proto/deadline.py): fail the
        late ones; the earliest still to watch."""
        now = self._loop.time()
        next_due = 0.0
        for stream in list(self._streams.values()):
            if stream.waiter is None or not stream.deadline:
                continue
            if stream.deadline <= now:
                waiter = stream.waiter
                stream.waiter = None
                if not waiter.done():
                    waiter.set_exception(
                        ReadTimeout(
                            f"no response within the read timeout of {stream.read_timeout}s"
                        )
                    )
                self._reset(stream, ErrorCodes.CANCEL)
            elif not next_due or stream.deadline < next_due:
                next_due = stream.deadline
        return next_due

    # -- asyncio.BufferedProtocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        start(
            self._h2,
            max_concurrent_streams=100,
            stream_window=STREAM_WINDOW,
            connection_window=CONNECTION_WINDOW,
            max_frame=MAX_FRAME,
            max_header_list_size=self._limits.max_size,
        )
        self._write_out()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._receive(self._buffer[:nbytes])  # frame by frame: h2_fast.py
        if self._h2.queued:
            self._schedule_flush()

    def _protocol_error(self, exc: h2.exceptions.ProtocolError, sent: bool = False) -> None:
        """A protocol error found on the fast path (or by h2 there, which ``sent`` its GOAWAY):
        GOAWAY as h2 sends it, every stream fails."""
        if not sent:
            self._h2.terminate(exc)
        self._write_out()
        self._shut(RemoteProtocolError(f"HTTP/2 protocol error from the server: {exc}"))

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.socket_closed = True
        if exc is None:
            self._shut(lost_error("the server closed the HTTP/2 connection", None))
        else:
            self._shut(lost_error("HTTP/2 connection lost", exc))
        self._on_lost()

    # -- streams ending -----------------------------------------------------------------------

    def _consumed(self, stream_id: int, size: int) -> None:
        """``size`` flow-controlled bytes of ``stream_id`` were read (or dropped): grant them."""
        if self._closed:
            return
        self._connection_unacked += size
        conn = self._h2
        granted = False
        if self._connection_unacked >= CONNECTION_WINDOW // 4:
            conn.increment_flow_control_window(self._connection_unacked)
            self._connection_unacked = 0
            granted = True
        stream = self._streams.get(stream_id) if stream_id else None
        if stream is not None and not stream.received_end:
            stream.unacked += size
            if stream.unacked >= STREAM_WINDOW // 4:
                if stream.fast:
                    self._grant_fast(stream, stream.unacked)
                    granted = True
                else:
                    try:
                        conn.increment_flow_control_window(stream.unacked, stream_id)
                        granted = True
                    except (KeyError, h2.exceptions.ProtocolError):
                        pass
                stream.unacked = 0
        if granted:
            self._schedule_flush()

    def _reset(self, stream: StreamState, code: ErrorCodes) -> None:
        """We give up on a stream: RST_STREAM, and its place is free."""
        if stream.id not in self._streams:
            return
        if not self._closed:
            if stream.fast:
                self._reset_fast(stream, code)
            else:
                try:
                    self._h2.reset_stream(stream.id, code)
                except h2.exceptions.ProtocolError:
                    pass
            self._schedule_flush()
        body = stream.body
        if body is not None:
            self._consumed(0, body._buffered)  # noqa: SLF001 - what is dropped unread
        self._fail_stream(stream, ReadError(f"stream {stream.id} was reset by the client"))

    def _fail_stream(self, stream: StreamState, error: Exception) -> None:
        waiter = stream.waiter
        stream.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        body = stream.body
        stream.body = None
        if body is not None:
            body.fail(error)
        wake(stream.window_waiter, error)
        self._release(stream)

    def _release(self, stream: StreamState) -> None:
        if self._streams.pop(stream.id, None) is None:
            return
        if not stream.fast:
            self._h2.forget(stream.id)  # a closed stream: late frames get the same answers
        elif stream.closed_by is not None:  # kept for h2 to answer late frames
            ended = self._ended
            ended[stream.id] = stream.closed_by
            if len(ended) > _ENDED_KEPT:
                for stream_id in list(islice(ended, _ENDED_KEPT // 2)):
                    del ended[stream_id]
        wake(stream.window_waiter)  # a body waiting for window stops: the stream is over
        self._in_use -= 1
        self._place_freed()

    def _place_freed(self) -> None:
        if self._closing:
            if not self._streams and self._transport is not None and not self._closed:
                self._transport.close()
            return
        if not self._closed:
            self._on_idle()

    def _shut(self, error: Exception) -> None:
        """The connection is finished: every stream fails with ``error``."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._timer.cancel()
        transport = self._transport
        if transport is not None:
            transport.close()
        for stream in list(self._streams.values()):
            self._fail_stream(stream, error)
        self._flow.fail(WriteError(f"connection lost while sending the request: {error}"))
        self._on_lost()

    # -- StreamOwner --------------------------------------------------------------------------

    def pause_body(self) -> None:
        """Nothing to do: the stream's flow-control window bounds what the server may send."""

    def resume_body(self) -> None:
        """See pause_body."""

    def abandon_body(self, stream: BodyStream) -> None:
        if isinstance(stream, H2Body):
            state = self._streams.get(stream.stream_id)
            if state is not None and state.body is stream:
                self._reset(state, ErrorCodes.CANCEL)
