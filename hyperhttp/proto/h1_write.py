"""The request side of HTTP/1.1: a request's head and body as bytes on the wire (RFC 9112).

``encode_request_head`` is the HTTP/1.1 encoding of a request's fields; ``RequestWriter``, a mixin
of ``H1Connection``, writes a body that does not go out with the head: large ones in memoryview
slices, streamed ones piece by piece (chunk-framed or counted against their Content-Length), each
waiting for the transport to drain when it asks to pause, and stopping when the server answers
early.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from ..exceptions import WriteError, WriteTimeout
from .base import OutgoingRequest, RequestBody
from .h1_feed import CLOSED, WAITING
from .sending import DeclaredLength, WriteFlow, pieces

__all__ = ["COALESCE_LIMIT", "RequestWriter", "encode_chunk", "encode_request_head", "one_write"]

# Bodies up to this size are appended to the head and written with it in one call.
COALESCE_LIMIT = 64 * 1024
# Larger bodies are written in slices of this size, waiting for the transport to drain between.
_WRITE_SLICE = 256 * 1024
_LAST_CHUNK = b"0\r\n\r\n"


def encode_request_head(request: OutgoingRequest) -> bytes:
    """Request line and fields (RFC 9112 section 3), ending with the empty line.

    The lines of a block shared by many requests (a Client's defaults) are encoded once, and
    kept on the block."""
    host, block, own = request.fields
    shared = block.h1
    if shared is None:
        shared = block.h1 = b"".join([b"%s: %s\r\n" % pair for pair in block.pairs])
    return b"".join(
        (
            request.method_bytes,
            b" ",
            request.url.target,
            b" HTTP/1.1\r\nHost: ",
            host,
            b"\r\n",
            shared,
            b"".join([b"%s: %s\r\n" % pair for pair in own]) if own else b"",
            b"\r\n",
        )
    )


def one_write(head: bytes, body: bytes | None, chunked: bool) -> bytes:
    """A request whose body (none, or a small bytes one) goes out with its head."""
    if body is None:
        return head + _LAST_CHUNK if chunked else head
    if chunked:
        return head + (encode_chunk(body) if body else b"") + _LAST_CHUNK
    return head + body


def encode_chunk(data: bytes | bytearray | memoryview) -> bytes:
    """One chunk of a chunked request body (RFC 9112 section 7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class RequestWriter:
    """The body-writing methods of ``H1Connection``; these attributes are the connection's."""

    __slots__ = ()
    _transport: Any
    _state: int
    _flow: WriteFlow

    async def _write_body(
        self, body: RequestBody, chunked: bool, timeout: float | None, length: int | None = None
    ) -> bool:
        """Write the body; False when it stopped early because the server already answered."""
        transport = self._transport
        if isinstance(body, (bytes, bytearray, memoryview)):
            view = memoryview(body).cast("B")
            if chunked and view.nbytes:
                transport.write(b"%x\r\n" % view.nbytes)
            for start in range(0, len(view), _WRITE_SLICE):
                if self._state != WAITING or transport.is_closing():
                    return False  # answered already, or the connection failed: see send()
                transport.write(view[start : start + _WRITE_SLICE])
                if self._flow.paused:
                    await self._drain(timeout)
            if self._state != WAITING:
                return False
            if chunked:
                transport.write(b"\r\n" + _LAST_CHUNK if view.nbytes else _LAST_CHUNK)
            return True
        declared = DeclaredLength(None if chunked else length)
        # Stopped early, the body's own iterator is closed too (see pieces()).
        async with aclosing(pieces(body)) as source:  # type: ignore[arg-type]
            async for chunk in source:
                if not await self._write_piece(chunk, declared, chunked, timeout):
                    return False
        if self._state != WAITING:
            return False
        declared.check_complete()
        if chunked:
            transport.write(_LAST_CHUNK)
        return True

    async def _write_piece(
        self, chunk: Any, declared: DeclaredLength, chunked: bool, timeout: float | None
    ) -> bool:
        transport = self._transport
        if self._state != WAITING or transport.is_closing():
            return False
        size = declared.take(chunk)
        if not size:
            return True
        if not chunked:
            transport.write(chunk)
        elif size <= COALESCE_LIMIT:
            transport.write(encode_chunk(chunk))
        else:  # a large chunk is written as it is, between its framing: no copy
            transport.write(b"%x\r\n" % size)
            transport.write(chunk)
            transport.write(b"\r\n")
        if self._flow.paused:
            await self._drain(timeout)
        return True

    async def _drain(self, timeout: float | None) -> None:
        if self._state == CLOSED:
            raise WriteError("connection lost while sending the request body")
        try:
            await self._flow.drain(timeout)
        except WriteTimeout:
            if self._state == WAITING:
                self._transport.abort()
            raise

    def pause_writing(self) -> None:
        self._flow.paused = True

    def resume_writing(self) -> None:
        self._flow.resume()
