"""HTTP/1.1 (RFC 9112) over one ``asyncio.BufferedProtocol`` per connection, parsed by httptools.

The socket is read into a receive buffer that the owner shares between all its connections (reads
are handed to the parser synchronously, so one buffer per event loop is enough) and fed to
``httptools.HttpResponseParser`` as a memoryview. The parser's callbacks build the response head;
the head is handed over as soon as it is complete and the body flows into a ``BodyStream``.

httptools has gaps this module closes itself:

* it cannot be told the request was HEAD, so a HEAD response is completed at headers-complete and
  the parser is replaced before the next request (204, 304 and 1xx it frames correctly itself);
* it has no end-of-input call, so a body delimited by the connection closing is completed in
  ``eof_received`` (a clean close), and a length-delimited body cut short, or any body cut by a
  reset, is an error;
* it cannot pause, so back-pressure is ``transport.pause_reading()``;
* it puts no bound on a response head, so its size and number of fields are limited here;
* it reports trailer fields through the same callback as header fields: they are kept apart;
* it refuses three things RFC 9112 asks a client to accept (obs-fold, a repeated Content-Length
  of one value, whitespace around a chunk extension's ";"): after such an error the head, or the
  chunk-size line, is re-parsed leniently (proto/lenient.py). Nothing of that runs otherwise.

A connection that sees anything unexpected (bytes while idle, a malformed message, a request
abandoned mid-flight) is closed, never handed back for reuse. A response that arrives while the
request body is still being sent (a 413 or 401 from a server that stopped reading) stops the
upload and is returned; the connection is closed once that response is complete.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

import httptools

from ..exceptions import (
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    WriteError,
    WriteTimeout,
)
from .base import (
    DEFAULT_HEAD_LIMITS,
    Callback,
    ConnectionNotAvailable,
    HeadLimits,
    OutgoingRequest,
    RequestBody,
    ResponseHead,
    StaleConnection,
    Timeouts,
    lost_error,
)
from .deadline import DEAD_TIMER, LazyTimer
from .h1_feed import (
    BODY,
    CLOSED,
    IDLE,
    VERSIONS,
    WAITING,
    ParserFeed,
    keep_alive_from_fields,
)
from .h1_write import COALESCE_LIMIT, RequestWriter, encode_request_head, one_write
from .sending import WriteFlow
from .stream import BodyStream

__all__ = ["H1Connection", "encode_request_head"]


def _ignore() -> None:
    """The callbacks of a lost connection: the owner has heard already."""


class H1Connection(ParserFeed, RequestWriter, asyncio.BufferedProtocol):
    """One HTTP/1.1 connection: sends a request, parses its response, then is reusable."""

    multiplexed = False  # one request at a time (HTTP/2 connections say True)
    capacity = 1
    ready = True

    __slots__ = (
        "_loop",
        "_transport",
        "_buffer",
        "_state",
        "_exchange",
        "_waiter",
        "_timer",
        "_deadline",
        "_stream",
        "_headers",
        "_interim",
        "_is_head",
        "_body_unsent",
        "_flow",
        "_reading_paused",
        "_on_idle",
        "_on_lost",
        "_read_timeout",
        "socket_closed",
        "_served",
        "_draining",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        buffer: memoryview,
        on_idle: Callback,
        on_lost: Callback,
        limits: HeadLimits = DEFAULT_HEAD_LIMITS,
        timed: bool = False,
    ) -> None:
        self._loop = loop
        self._timed = timed  # note when each request was written and its response began
        self._written_at = self._first_byte_at = 0.0
        self._transport: Any = None
        self._buffer = buffer
        self._parser = httptools.HttpResponseParser(self)
        self._parser_stale = False
        self._state = IDLE
        self._exchange = 0  # counts requests: an exchange's error path touches only its own
        self._waiter: asyncio.Future[ResponseHead] | None = None
        self._timer = LazyTimer(loop, self._check_read_deadline)
        self._deadline = 0.0
        self._stream: BodyStream | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._fields = self._headers  # where on_header puts a field: the head's, then trailers
        self._read_size = 0
        self._limits = limits
        self._interim = False
        self._is_head = False
        self._release_pending = False
        self._keep_alive = True
        self._body_unsent = False
        self._flow = WriteFlow(loop)
        self._reading_paused = False
        self._on_idle = on_idle
        self._on_lost = on_lost
        self._read_timeout: float | None = None
        self._heads = 0
        self._head_carry = b""
        self._events: list[int] = []
        self._chunked = False
        self._in_line = False
        self._line_tail = b""
        self._quiet = 0
        self._relaxed = False
        self._holding = False
        self._pending = b""
        self._response_started = False
        self.socket_closed = False
        self._served = 0  # requests sent on this connection
        self._draining = False

    # -- state seen by the owner --------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._state == CLOSED

    @property
    def is_idle(self) -> bool:
        return self._state == IDLE

    @property
    def available(self) -> int:
        """1 while the connection can take a request, else 0."""
        return 1 if self._state == IDLE else 0

    @property
    def in_use(self) -> int:
        return 0 if self._state == IDLE else 1

    @property
    def http_version(self) -> str:
        return "HTTP/1.1"

    def reserve(self) -> None:
        """Nothing to count: an idle connection is handed to one request at a time."""

    def unreserve(self) -> None:
        """Handed out but not used: the owner may hand it out again."""
        if self._state == IDLE:
            self._on_idle()

    def drain(self) -> None:
        """Close once the request in flight is done (now, when there is none)."""
        if self._state == IDLE:
            self.close()
        else:
            self._draining = True  # closes the connection when the response completes

    def close(self) -> None:
        """Close now; whatever is in flight fails."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
        state = self._state
        if state == IDLE:  # nothing in flight to fail: no error to make (the pool's usual close)
            self._state = CLOSED
            self._release_pending = False
            self._on_lost()
        elif state != CLOSED:
            self._fail(ReadError("connection closed by the client"))

    def abort(self) -> None:
        """Drop the connection without a graceful close (the request was abandoned mid-flight)."""
        transport = self._transport
        if transport is not None:
            transport.abort()
        if self._state != CLOSED:
            self._fail(ReadError("connection aborted"))

    # -- sending ------------------------------------------------------------------------------

    async def send(self, request: OutgoingRequest, timeout: Timeouts) -> ResponseHead:
        """Write one request and wait for its response head.

        A ``bytes``-like body up to 64 KiB goes out with the head in one write; larger ones in
        memoryview slices; iterables piece by piece. A ``chunked`` request sends every body
        (bytes included, and no body at all) chunk-framed. An iterable sent with a
        Content-Length of ``stream_length`` must produce exactly that many bytes, or the request
        fails with LocalProtocolError and the connection is dropped.

        A response whose head arrives while the body is still being sent ends the upload: it is
        returned (what curl and browsers do), and the connection is closed once it is complete.

        Raises ConnectionNotAvailable when the connection closed before anything was written,
        and StaleConnection (carrying the error) when a reused connection failed before any byte
        of the response came.
        """
        transport = self._transport
        if self._state != IDLE or transport is None or transport.is_closing():
            raise ConnectionNotAvailable()
        head = encode_request_head(request)
        content = request.content
        body: RequestBody = content if content is not None else request.stream
        chunked = request.chunked
        read_timeout = timeout.read
        waiter: asyncio.Future[ResponseHead] = self._loop.create_future()
        exchange = self._begin(request, read_timeout, waiter)
        try:
            if body is None and not chunked:
                transport.write(head)
            elif body is None or (isinstance(body, bytes) and len(body) <= COALESCE_LIMIT):
                transport.write(one_write(head, body, chunked))
            else:
                self._body_unsent = True
                transport.write(head)
                if await self._write_body(body, chunked, timeout.write, request.stream_length):
                    self._body_unsent = False
            if self._timed:
                self._written_at = perf_counter()
            if read_timeout is not None and not waiter.done():
                # The deadline for the response head: see proto/deadline.py.
                self._deadline = self._loop.time() + read_timeout
                self._timer.arm(self._deadline)
            response_head: ResponseHead = await waiter
            return response_head
        except BaseException as exc:
            if (
                self._exchange == exchange
                and isinstance(exc, (WriteError, WriteTimeout))
                and waiter.done()
                and not waiter.cancelled()
                and waiter.exception() is None
            ):
                early: ResponseHead = waiter.result()
                return early  # the server answered, then stopped reading or reset
            error = self.failed(exc, exchange, waiter)
            if error is exc:
                raise
            raise error from exc

    def start(
        self,
        request: OutgoingRequest,
        timeout: Timeouts,
        waiter: asyncio.Future[ResponseHead],
    ) -> int:
        """Send a request without a task of its own, when it goes out in one write (no body,
        or bytes up to 64 KiB): ``waiter`` gets the response head or the failure, which the
        owner passes to ``failed``. Returns the exchange's token for that; 0 (nothing done)
        when the request needs ``send``, or the connection cannot take it now."""
        transport = self._transport
        content = request.content
        if (
            self._state != IDLE
            or transport is None
            or transport.is_closing()
            or request.stream is not None
            or (
                content is not None
                and not (isinstance(content, bytes) and len(content) <= COALESCE_LIMIT)
            )
        ):
            return 0
        head = encode_request_head(request)
        read_timeout = timeout.read
        exchange = self._begin(request, read_timeout, waiter)
        chunked = request.chunked
        transport.write(
            head if content is None and not chunked else one_write(head, content, chunked)
        )
        if self._timed:
            self._written_at = perf_counter()
        if read_timeout is not None:
            self._deadline = self._loop.time() + read_timeout
            self._timer.arm(self._deadline)
        return exchange

    def _begin(
        self,
        request: OutgoingRequest,
        read_timeout: float | None,
        waiter: asyncio.Future[ResponseHead],
    ) -> int:
        """The connection's state for a new exchange; its token."""
        if self._parser_stale:
            self._parser = httptools.HttpResponseParser(self)
            self._parser_stale = False
        self._state = WAITING
        self._exchange = exchange = self._exchange + 1
        self._is_head = request.method_bytes == b"HEAD"
        self._interim = False
        self._keep_alive = True
        self._heads = 0
        self._relaxed = False
        self._response_started = False
        self._served += 1
        self._read_timeout = read_timeout
        self._deadline = 0.0  # armed once the request is written
        self._waiter = waiter
        return exchange

    def failed(
        self, exc: BaseException, exchange: int, waiter: asyncio.Future[ResponseHead]
    ) -> BaseException:
        """What to raise for exchange ``exchange``, which failed (or was cancelled) with
        ``exc``: mid-flight, the connection is dropped (its state is unknown); a reused
        connection that failed before any byte of the response gives StaleConnection."""
        if self._exchange != exchange:
            return exc  # the connection has moved on to another request: not ours to touch
        if self._waiter is waiter:
            self._waiter = None
        waiter.cancel()  # its outcome is nobody's now (and must not be logged as unread)
        if self._state == WAITING or self._state == BODY:
            # Abandoned or failed mid-flight (or a head that nobody will read).
            self.abort()
        if (
            self._served > 1
            and not self._response_started
            and isinstance(exc, (RemoteProtocolError, ReadError))
        ):
            return StaleConnection(exc)
        return exc

    def _check_read_deadline(self) -> float:
        """The timer came: fail a late response head; else the deadline still to watch."""
        waiter = self._waiter
        deadline = self._deadline
        if self._state != WAITING or waiter is None or waiter.done() or not deadline:
            return 0.0  # nothing is waiting for a head yet: the timer lapses until re-armed
        if self._loop.time() < deadline:
            return deadline
        waiter.set_exception(
            ReadTimeout(f"no response within the read timeout of {self._read_timeout}s")
        )
        self._waiter = None
        self.abort()
        return 0.0

    # -- asyncio.BufferedProtocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def _unexpected_data(self) -> None:
        """Bytes nobody asked for: the connection cannot be trusted any more."""
        self._transport.close()
        self._fail(RemoteProtocolError("unexpected data from the server on an idle connection"))

    def eof_received(self) -> bool | None:
        if self._state == BODY:
            self._end_of_input()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.socket_closed = True
        self._timer.cancel()
        if self._state == BODY and exc is None:
            self._end_of_input()  # a clean close; a reset or TLS failure ends no body
        if self._state != CLOSED:
            self._fail(self._lost_error(exc))
        if self._flow.waiting:
            self._flow.fail(WriteError(f"connection lost while sending the request: {exc}"))
        self._on_lost()
        # Nothing calls back into a lost connection: drop what refers back to it (the parser,
        # the timer's bound method, the owner's callbacks), so that it is freed by reference
        # counting. A crawler opens a connection for nearly every page, and left to the cyclic
        # garbage collector these cost it a tenth of its CPU.
        self._parser = None
        self._timer = DEAD_TIMER
        self._on_idle = self._on_lost = _ignore

    def _lost_error(self, exc: Exception | None) -> Exception:
        if self._state == BODY and self._stream is not None:
            message = (
                "server closed the connection before the body was complete "
                f"(received {self._stream.received} bytes)"
            )
        elif self._state == WAITING:
            message = "server disconnected without sending a response"
        else:
            message = "connection closed"
        return lost_error(message, exc)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._state != WAITING:
            raise RemoteProtocolError("the server sent more than one response to one request")
        self._headers = self._fields = []

    def on_headers_complete(self) -> None:
        limits = self._limits
        if (
            len(self._headers) > limits.max_fields
            or self._read_size > limits.max_size
            or self._head_carry
        ):
            self.check_fields(self._headers, "response head")
        parser = self._parser
        status = parser.get_status_code()
        if status < 200:
            # Interim responses (RFC 9110 section 15.2) are skipped; the final one follows.
            self._interim = True
            self._heads += 1
            return
        stream = self._stream = BodyStream(self, self._loop, self._read_timeout)
        if self._timed:
            stream.stamps = (self._written_at, self._first_byte_at)
        self._state = BODY
        self._fields = stream.trailers  # what follows a chunked body is trailer fields
        waiter = self._waiter
        self._waiter = None
        version = VERSIONS.get(parser.get_http_version()) or "HTTP/" + parser.get_http_version()
        if self._is_head:
            # RFC 9110 section 9.3.2: a HEAD response has no content, whatever its fields say.
            self._keep_alive = keep_alive_from_fields(self._headers, version)
            self._parser_stale = True
            self._message_complete()
        if waiter is not None and not waiter.done():
            waiter.set_result((status, version, self._headers, stream))
        if self._body_unsent:
            self._flow.release()  # an early response: a writer waiting to send more stops

    def on_body(self, body: bytes) -> None:
        stream = self._stream
        if self._state != BODY or stream is None:
            raise RemoteProtocolError("the server sent content after a response without content")
        if self._chunked:
            self._events.append(len(body))
        stream.feed(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._state != BODY:
            return  # HEAD: completed at headers-complete already
        trailers = self._fields
        if trailers:
            self.check_fields(trailers, "trailer section")
        self._keep_alive = self._parser.should_keep_alive()
        self._message_complete()

    # -- completion ---------------------------------------------------------------------------

    def _message_complete(self) -> None:
        stream = self._stream
        self._stream = None
        self._state = IDLE
        if self._chunked:
            self._chunked = False
            self._events.clear()
        if not self._keep_alive or self._body_unsent or self._draining:
            self._state = CLOSED
            self._transport.close()
            self._on_lost()
        else:
            if self._reading_paused:
                # The body is complete and belongs to its reader now; an idle connection must
                # keep reading or it would not notice the server closing it.
                self._reading_paused = False
                self._transport.resume_reading()
            self._release_pending = True
        if stream is not None:
            stream.finish()

    def _end_of_input(self) -> None:
        """The server closed its side: that ends a close-delimited body (RFC 9112 section 6.3)."""
        stream = self._stream
        if self._state == BODY and stream is not None and self._close_delimited():
            self._stream = None
            self._state = CLOSED
            stream.finish()
            self._on_lost()

    def _close_delimited(self) -> bool:
        for name, value in self._headers:
            lower = name.lower()
            if lower == b"content-length":
                return False
            if lower == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True

    def _protocol_error(self, message: str) -> None:
        transport = self._transport
        if transport is not None:
            transport.close()
        self._fail(RemoteProtocolError(message))

    def _fail(self, exc: BaseException) -> None:
        """Fail whatever is in flight with ``exc``; the connection is finished.

        The owner hears of it at once (not when the socket's connection_lost arrives), so its
        place under the connection cap is free for the next request straight away.
        """
        previous = self._state
        self._state = CLOSED
        self._release_pending = False
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(exc)
        stream = self._stream
        if stream is not None:
            self._stream = None
            stream.fail(exc)
        if previous != CLOSED:
            self._on_lost()

    # -- StreamOwner --------------------------------------------------------------------------

    def pause_body(self) -> None:
        transport = self._transport
        if not self._reading_paused and transport is not None and not transport.is_closing():
            self._reading_paused = True
            transport.pause_reading()

    def resume_body(self) -> None:
        transport = self._transport
        if self._reading_paused and transport is not None and not transport.is_closing():
            self._reading_paused = False
            transport.resume_reading()

    def abandon_body(self, stream: BodyStream) -> None:
        if stream is self._stream:
            self.abort()
