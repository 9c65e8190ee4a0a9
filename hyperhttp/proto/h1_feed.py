"""Feeding httptools: what the parser is given, what it reports, and what it leaves to us.

Each read goes to ``ParserFeed.buffer_updated``. Around the parser this notes the little a
lenient re-parse needs later (the bytes of a head that spans reads, the callbacks of a chunked
body in the current read, the start of a chunk-size line that spans reads), bounds what
httptools would otherwise read without end (a response head, a chunk-size line or a trailer
section: ``HeadLimits``), and, when httptools refuses what RFC 9112 asks a client to accept,
re-parses leniently (proto/lenient.py). Trailer fields, which httptools reports like header
fields, go to the body's own list. None of the lenient path runs unless httptools reports an
error; on the hot path this costs a few tests per read.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any, Callable, cast

import httptools

from ..exceptions import RemoteProtocolError
from . import lenient
from .base import HeadLimits

__all__ = [
    "BODY",
    "CLOSED",
    "IDLE",
    "VERSIONS",
    "WAITING",
    "ParserFeed",
    "keep_alive_from_fields",
]

IDLE = 0  # no request in flight; may sit in a pool
WAITING = 1  # request sent (or being sent), response head not complete
BODY = 2  # head handed over, body arriving
CLOSED = 3

VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "0.9": "HTTP/0.9"}
# A response head stands in for the one a chunked body's resumed parser never saw.
_RESUME_PRIMER = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


class ParserFeed:
    """The parser-facing half of an HTTP/1.1 connection: a mixin of ``H1Connection``, holding
    the parser's state (its slots are the connection's)."""

    __slots__ = (
        "_parser",
        "_parser_stale",
        "_limits",
        "_fields",
        "_read_size",
        "_release_pending",
        "_response_started",
        "_timed",
        "_written_at",
        "_first_byte_at",
        "_keep_alive",
        "_heads",
        "_head_carry",
        "_events",
        "_chunked",
        "_in_line",
        "_line_tail",
        "_quiet",
        "_relaxed",
        "_holding",
        "_pending",
    )

    _parser: Any
    _parser_stale: bool  # a fresh parser is due before the next request
    _limits: HeadLimits
    _fields: list[tuple[bytes, bytes]]  # where on_header puts a field: the head's, then trailers
    _read_size: int  # of the read being parsed
    _response_started: bool  # a byte of the response arrived (see StaleConnection)
    _timed: bool  # stamps kept for the owner's timings
    _written_at: float
    _first_byte_at: float
    _release_pending: bool  # the response completed: hand the connection back after this read
    _keep_alive: bool
    # What a lenient re-parse needs to know of what was fed (set up by the connection per request):
    _heads: int  # interim (1xx) heads completed since the request was sent
    _head_carry: bytes  # bytes of a response whose head spans reads, until it ends
    _events: list[int]  # a chunked body's callbacks in this read (lenient.CHUNK_HEADER, ...)
    _chunked: bool  # the body is chunked (a chunk-size line was complete)
    _in_line: bool  # this read began at the start of a chunk-size line...
    _line_tail: bytes  # ...whose first bytes came in earlier reads
    _quiet: int  # body bytes read without a callback (chunk-size lines, trailers)
    _relaxed: bool  # this response's head was re-parsed leniently already
    _holding: bool  # bytes are held until a lenient re-parse has a whole head or line
    _pending: bytes
    # The connection's own, read here:
    _state: int
    _headers: list[tuple[bytes, bytes]]
    _buffer: memoryview
    _stream: Any
    _on_idle: Callable[[], None]

    def _protocol_error(self, message: str) -> None:
        raise NotImplementedError

    def _unexpected_data(self) -> None:
        raise NotImplementedError

    def _message_complete(self) -> None:
        raise NotImplementedError

    def on_message_begin(self) -> None:
        raise NotImplementedError

    def on_body(self, body: bytes) -> None:
        raise NotImplementedError

    def buffer_updated(self, nbytes: int) -> None:
        """One read, handed to the parser; what a lenient re-parse would need is noted around it
        (the fast path, a response in one read, notes nothing)."""
        state = self._state
        if state == IDLE or state == CLOSED:
            self._unexpected_data()
            return
        if not self._response_started:
            self._response_started = True
            if self._timed:
                self._first_byte_at = perf_counter()
        data = self._buffer[:nbytes]
        if self._holding:
            self._feed_lenient(bytes(data))
        else:
            self._read_size = nbytes
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._protocol_error("the server switched protocols, which was not asked for")
            except httptools.HttpParserCallbackError as exc:
                cause = exc.__context__
                if isinstance(cause, RemoteProtocolError):
                    self._protocol_error(str(cause))
                else:
                    self._protocol_error(f"malformed response: {exc}")
            except httptools.HttpParserError as exc:
                # (_in_line is as it was before this read: only _body_read changes it)
                if not self._recover(data, state == WAITING, self._in_line):
                    self._protocol_error(f"malformed response: {exc}")
            else:
                after = self._state
                if after == BODY:
                    self._body_read(data, state == WAITING)
                elif after == WAITING:
                    self._head_read(data)
                elif self._head_carry:
                    self._head_carry = b""
        if self._release_pending:  # the response is complete: the connection may serve again
            self._release_pending = False
            if self._state == IDLE:
                self._on_idle()

    def _head_read(self, data: Any) -> None:
        """The head goes on in the next read: keep what came (a lenient re-parse needs it),
        within the limit on a head's size."""
        carry = self._head_carry = self._head_carry + bytes(data)
        if len(carry) > self._limits.max_size:
            self._protocol_error(f"the response head is larger than {self._limits.max_size} bytes")

    def _body_read(self, data: Any, in_head: bool) -> None:
        """The body goes on in the next read: note where this read left a chunked body (a body
        is known to be chunked from its first complete chunk-size line on: before that, the
        bytes after the head are kept, as they may be the start of one)."""
        if in_head:
            self._head_carry = b""
            self._quiet = 0
        if not self._chunked:
            if self._stream.received:  # a body of known length, or delimited by the close
                self._in_line = False
            elif in_head or self._in_line:  # nothing of it yet: a first chunk-size line may be
                self._in_line = True
                self._keep_line_tail(data)
                if len(self._line_tail) > self._limits.max_size:
                    self._protocol_error(
                        f"a chunk-size line is larger than {self._limits.max_size} bytes"
                    )
            return
        events = self._events
        if events:
            self._in_line = events[-1] == lenient.CHUNK_COMPLETE
            self._quiet = 0
            events.clear()
        elif in_head:
            self._in_line = True  # the body (or its first chunk-size line) begins next
        else:
            # Nothing the parser reported: a chunk-size line or a trailer section going on.
            self._quiet += len(data)
            if self._quiet > self._limits.max_size:
                self._protocol_error(
                    "a chunk-size line or trailer section is larger than "
                    f"{self._limits.max_size} bytes"
                )
                return
        if self._in_line:
            self._keep_line_tail(data)
        elif self._line_tail:
            self._line_tail = b""

    def _keep_line_tail(self, data: Any) -> None:
        """A chunk-size line may go on in the next read: keep its start, in case it is refused
        and must be read again (the bytes after the last line feed)."""
        whole = cast("bytes | bytearray", data.obj if isinstance(data, memoryview) else data)
        newline = whole.rfind(b"\n", 0, len(data))  # in place: no copy of the read
        tail = bytes(data[newline + 1 :])
        self._line_tail = tail if newline >= 0 else self._line_tail + tail

    def _refeed(self, data: bytes) -> None:
        """Feed bytes of our own (a head or a chunk-size line read leniently, and what followed
        it) as reads, through the receive buffer."""
        size = len(self._buffer)
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            self._buffer[: len(piece)] = piece
            self.buffer_updated(len(piece))
            if self._state == CLOSED:
                return

    def check_fields(self, fields: list[tuple[bytes, bytes]], what: str) -> None:
        """A head (or trailer section) within the limits: its number of fields and its size.
        (For a head, the connection calls this only when either could be exceeded: it has too
        many fields, it spanned reads, or it came in a read larger than the size limit.)"""
        limits = self._limits
        if len(fields) > limits.max_fields:
            raise RemoteProtocolError(f"the {what} has more than {limits.max_fields} fields")
        if sum(len(name) + len(value) + 4 for name, value in fields) > limits.max_size:
            raise RemoteProtocolError(f"the {what} is larger than {limits.max_size} bytes")

    def _recover(self, data: Any, in_head: bool, in_line: bool) -> bool:
        """After httptools refused what it was fed: re-parse leniently what RFC 9112 allows
        (proto/lenient.py). False when there is nothing to recover."""
        if in_head and self._state == WAITING:
            if self._relaxed:
                return False  # refused again after it was fixed
            # The head (or an interim one before it) was refused: parse it again, fixed.
            self._pending = self._head_carry + bytes(data)
            self._head_carry = b""
            return self._resume_head()
        if self._state != BODY:
            return False
        if in_head:
            fed, heads, in_line = self._head_carry + bytes(data), self._heads + 1, False
            self._head_carry = b""
        else:
            fed, heads = (self._line_tail if in_line else b"") + bytes(data), 0
        start = lenient.resume_offset(fed, in_line, heads, self._events)
        self._events.clear()
        if start < 0 or not self._chunked_by_fields():
            return False
        self._keep_alive = self._head_keep_alive()
        self._pending = fed[start:]
        return self._resume_chunks()

    def _feed_lenient(self, data: bytes) -> None:
        self._pending += data
        if self._state == WAITING:
            recovered = self._resume_head()
        else:
            recovered = self._resume_chunks()
        if not recovered:
            self._protocol_error("malformed response: refused even when read leniently")

    def _resume_head(self) -> bool:
        """A fresh parser for the response, fed its heads normalised; True while that works."""
        fixed = lenient.normalise_heads(self._pending, self._heads + 1)  # interim ones, then it
        if fixed is None:  # the refused head is not complete yet
            self._holding = True
            return len(self._pending) <= self._limits.max_size
        if fixed == self._pending:
            return False  # nothing there that RFC 9112 lets us accept
        self._holding = False
        self._relaxed = True
        self._pending = b""
        self._heads = 0
        self._parser = httptools.HttpResponseParser(self)
        self._parser_stale = True
        self._refeed(fixed)
        return True

    def _resume_chunks(self) -> bool:
        """The rest of a chunked body from a refused chunk-size line on: the line read here, the
        rest by a fresh parser primed to be inside a chunked body."""
        pending = self._pending
        newline = pending.find(b"\n")
        if newline < 0:
            self._holding = True
            return len(pending) <= lenient.MAX_CHUNK_LINE
        try:
            size = lenient.chunk_size(pending[: newline + 1])
        except RemoteProtocolError:
            return False
        self._holding = False
        self._pending = b""
        parser = httptools.HttpResponseParser(_Resumed(self))
        parser.feed_data(_RESUME_PRIMER)
        self._parser = parser
        self._parser_stale = True
        self._in_line = True
        self._line_tail = b""
        self._refeed(b"%x\r\n" % size + pending[newline + 1 :])
        return True

    def _chunked_by_fields(self) -> bool:
        for name, value in self._headers:
            if name.lower() == b"transfer-encoding":
                return value.lower().rstrip(b" \t").endswith(b"chunked")
        return False

    def _head_keep_alive(self) -> bool:
        version = VERSIONS.get(self._parser.get_http_version(), "HTTP/1.1")
        return keep_alive_from_fields(self._headers, version)

    # -- httptools callbacks that are bookkeeping only ---------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))  # the limits are checked when the head is complete

    def on_chunk_header(self) -> None:
        self._chunked = True  # from here on the body's callbacks are noted (see _body_read)
        self._events.append(lenient.CHUNK_HEADER)

    def on_chunk_complete(self) -> None:
        self._events.append(lenient.CHUNK_COMPLETE)


class _Resumed:
    """The callbacks of a parser that resumes a chunked body after a lenient chunk-size line:
    those of the connection, except for the stand-in head it is primed with."""

    __slots__ = ("_connection", "_primed")

    def __init__(self, connection: ParserFeed) -> None:
        self._connection = connection
        self._primed = False

    def on_headers_complete(self) -> None:
        self._primed = True

    def on_message_begin(self) -> None:
        if self._primed:
            self._connection.on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._primed:
            self._connection.on_header(name, value)  # trailers

    def on_body(self, body: bytes) -> None:
        self._connection.on_body(body)

    def on_chunk_header(self) -> None:
        self._connection.on_chunk_header()

    def on_chunk_complete(self) -> None:
        self._connection.on_chunk_complete()

    def on_message_complete(self) -> None:
        connection = self._connection
        if connection._state == BODY:  # noqa: SLF001 - the connection's own helpers
            if connection._fields:  # noqa: SLF001
                connection.check_fields(connection._fields, "trailer section")  # noqa: SLF001
            connection._message_complete()  # noqa: SLF001 - keep-alive decided from its head


def keep_alive_from_fields(headers: list[tuple[bytes, bytes]], version: str) -> bool:
    """RFC 9112 section 9.3: persistence from the Connection field and the protocol version."""
    tokens: list[bytes] = []
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.extend(token.strip().lower() for token in value.split(b","))
    if b"close" in tokens:
        return False
    if version == "HTTP/1.1":
        return True
    return b"keep-alive" in tokens
