"""Response: returned as soon as its head has arrived; the body is read lazily from its stream:
``aread()`` materialises it, the ``aiter_*`` methods stream it. (Request is in _request.py.)
"""

from __future__ import annotations

import warnings
from http import HTTPStatus
from typing import Any, AsyncIterator, Protocol, Sequence

from ._compat import json_loads
from ._decoders import (
    BodyLimits,
    ByteChunker,
    ContentDecoder,
    LineDecoder,
    TextDecoder,
    charset_from_content_type,
    decoder_for,
)
from ._headers import Headers, HeadersInput
from ._request import Request
from ._url import URL
from .exceptions import (
    HTTPStatusError,
    ResponseClosed,
    ResponseNotRead,
    ResponseTooLarge,
    StreamConsumed,
)

__all__ = ["Response", "ResponseStream", "BodyLimits"]

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class ResponseStream(Protocol):
    """Where a Response's body comes from: a connection's BodyStream, or fixed content."""

    complete: bool

    def take_all(self) -> bytes: ...

    async def read_all(self) -> bytes: ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


_NO_TRAILERS: list[tuple[bytes, bytes]] = []  # shared and never appended to


class _ContentStream:
    """A body that is already in memory (a Response built by hand or by a mock transport)."""

    __slots__ = ("_content", "complete", "trailers")

    def __init__(self, content: bytes) -> None:
        self._content = content
        self.complete = True
        self.trailers = _NO_TRAILERS

    def take_all(self) -> bytes:
        content, self._content = self._content, b""
        return content

    async def read_all(self) -> bytes:
        return self.take_all()

    async def read(self) -> bytes:
        return self.take_all()

    def close(self) -> None:
        self._content = b""


_NO_LIMITS = BodyLimits()


_NO_VALUES: list[str] = []  # shared and never appended to: see Response.field_values


class Response:
    """An HTTP response whose body is read lazily.

    The Client returns one as soon as the head has arrived; ``aread()`` reads the body, the
    ``aiter_*`` methods stream it, and ``aclose()`` (or ``async with``) releases the connection.
    Built by hand (in a test), it holds ``content`` as its body.

    :param status_code: the status code.
    :param http_version: the protocol version, such as ``"HTTP/1.1"`` or ``"HTTP/2"``.
    :param headers: the fields, in any form ``Headers`` takes, or raw ``(bytes, bytes)`` pairs.
    :param stream: where the body comes from; None for ``content``.
    :param request: the request this response answers.
    :param elapsed: seconds the transport took to obtain the head.
    :param content: the body, when there is no ``stream``.
    """

    __slots__ = (
        "status_code",
        "http_version",
        "_raw_headers",
        "_headers",
        "_stream",
        "request",
        "elapsed",
        "_content",
        "_consumed",
        "_closed",
        "_encoding",
        "default_encoding",
        "extensions",
        "limits",
        "history",
    )

    def __init__(
        self,
        status_code: int,
        http_version: str = "HTTP/1.1",
        headers: HeadersInput | list[tuple[bytes, bytes]] = None,
        stream: ResponseStream | None = None,
        *,
        request: Request | None = None,
        elapsed: float = 0.0,
        content: bytes | None = None,
    ) -> None:
        self.status_code = status_code
        self.http_version = http_version
        self._raw_headers = headers
        self._headers: Headers | None = None
        if stream is None:
            stream = _ContentStream(content or b"")
        self._stream = stream
        self.request = request
        self.elapsed = elapsed
        self._content: bytes | None = None
        self._consumed = False
        self._closed = False
        self._encoding: str | None = None
        self.default_encoding = "utf-8"
        self.extensions: dict[str, Any] | None = None
        self.limits: BodyLimits | None = None
        self.history: Sequence[Response] = ()  # the redirect responses that led here, in order

    # -- head -----------------------------------------------------------------------------

    @property
    def headers(self) -> Headers:
        """The fields of the response head, decoded when first asked for."""
        headers = self._headers
        if headers is None:
            raw = self._raw_headers
            if isinstance(raw, list) and (not raw or isinstance(raw[0][0], bytes)):
                headers = Headers.from_raw(raw)
            else:
                headers = Headers(raw)
            self._headers = headers
        return headers

    @property
    def trailers(self) -> Headers:
        """Trailer fields sent after the body (RFC 9110 section 6.5), such as a checksum.

        They arrive with the end of the body, so they are there once it has been read (or
        streamed to its end); before that this is empty. They are never merged into
        ``headers``, and a Set-Cookie among them is not stored."""
        raw = getattr(self._stream, "trailers", _NO_TRAILERS)
        return Headers.from_raw(list(raw)) if raw else Headers()

    @property
    def url(self) -> URL | None:
        """The URL this response answers (the final one, after redirects)."""
        request = self.request
        return request.url if request is not None else None

    @property
    def reason_phrase(self) -> str:
        """The standard phrase of the status code, such as ``"Not Found"``; ``""`` if unknown."""
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        """Whether the status is 301, 302, 303, 307 or 308."""
        return self.status_code in _REDIRECT_CODES

    @property
    def is_error(self) -> bool:
        """Whether the status is 400 or above."""
        return self.status_code >= 400

    @property
    def encoding(self) -> str:
        """The charset of the Content-Type field, else ``default_encoding`` (utf-8).

        Setting it overrides both, for ``text``, ``json()`` and ``aiter_text``.
        """
        encoding = self._encoding
        if encoding is None:
            charset = charset_from_content_type(self.headers.get("content-type"))
            encoding = self._encoding = charset or self.default_encoding
        return encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value

    def raise_for_status(self) -> Response:
        """Raise HTTPStatusError for a 4xx or 5xx response; return the response otherwise.

        :raises HTTPStatusError: when the status is 400 or above.
        """
        status = self.status_code
        if status < 400:
            return self
        kind = "Client error" if status < 500 else "Server error"
        message = f"{kind} '{status} {self.reason_phrase}' for url '{self.url}'"
        raise HTTPStatusError(message, request=self.request, response=self)  # type: ignore[arg-type]

    # -- body -----------------------------------------------------------------------------

    def field_values(self, name: bytes) -> list[str]:
        """Return the values of one field, in order; an empty list when it is absent.

        They come straight from the raw pairs while nobody has asked for ``headers``: a plain
        loop that allocates nothing when the field is absent, as Content-Encoding and Set-Cookie
        are looked up on every response.

        :param name: the field name in lower case, as bytes (``b"set-cookie"``).
        """
        raw = self._raw_headers
        if (
            isinstance(raw, list)
            and self._headers is None
            and (not raw or type(raw[0][0]) is bytes)
        ):
            size = len(name)
            values = _NO_VALUES
            for key, value in raw:
                if len(key) == size and key.lower() == name:
                    if values is _NO_VALUES:
                        values = []
                    values.append(value.decode("latin-1"))
            return values
        return self.headers.get_list(name.decode("ascii"))

    def _decoder(self) -> ContentDecoder | None:
        values = self.field_values(b"content-encoding")
        return decoder_for(values) if values else None

    async def aread(self) -> bytes:
        """Read and return the whole (decoded) body; later calls return the same bytes.

        :raises StreamConsumed: when the body was already streamed.
        :raises ResponseClosed: when the response was closed before its body was read.
        :raises ResponseTooLarge: when the body is larger than ``max_response_size``.
        :raises DecompressionError: when the body cannot be decoded, or decodes past a limit.
        :raises TransportError: when the connection fails or the read timeout passes.
        """
        content = self._content
        if content is not None:
            return content
        decoder = self._decoder()
        limits = self.limits
        if decoder is not None or (limits is not None and limits.max_response_size is not None):
            pieces = [piece async for piece in self._pieces(decoder)]
            content = self._content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            return content
        self._check_readable()
        self._consumed = True
        stream = self._stream
        raw = stream.take_all() if stream.complete else await stream.read_all()
        self._content = raw
        self._closed = True
        stream.close()
        return raw

    async def _pieces(self, decoder: ContentDecoder | None) -> AsyncIterator[bytes]:
        """The decoded body in pieces, with the limits enforced as it arrives."""
        limits = self.limits
        if limits is None:
            limits = _NO_LIMITS
        max_raw = limits.max_response_size
        if max_raw is not None:
            declared = self.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_raw:
                await self.aclose()
                raise ResponseTooLarge(
                    f"the response body ({declared} bytes) is larger than "
                    f"max_response_size ({max_raw} bytes)"
                )
        check = decoder is not None and limits.checks_decoding
        raw_total = 0
        out_total = 0
        async for raw in self.aiter_raw():
            raw_total += len(raw)
            if max_raw is not None and raw_total > max_raw:
                raise ResponseTooLarge(
                    f"the response body is larger than max_response_size ({max_raw} bytes)"
                )
            if decoder is None:
                yield raw
                continue
            for piece in decoder.feed(raw):
                if check:
                    out_total += len(piece)
                    limits.check(out_total, raw_total)
                yield piece
        if decoder is not None:
            for piece in decoder.finish():
                if check:
                    out_total += len(piece)
                    limits.check(out_total, raw_total)
                yield piece

    def _check_readable(self) -> None:
        if self._consumed:
            raise StreamConsumed("the response body was already streamed")
        if self._closed:
            raise ResponseClosed("the response was closed before its body was read")

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives, still content-encoded; the response is closed after.

        :raises StreamConsumed: when the body was already streamed.
        :raises ResponseClosed: when the response was closed before its body was read.
        :raises TransportError: when the connection fails or the read timeout passes.
        """
        self._check_readable()
        self._consumed = True
        stream = self._stream
        try:
            while True:
                chunk = await stream.read()
                if not chunk:
                    break
                yield chunk
        finally:
            await self.aclose()

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the decoded body in pieces of ``chunk_size`` bytes (the last may be shorter).

        After ``aread()`` the pieces come from the body read.

        :param chunk_size: the size of each piece; None yields the pieces as they are decoded.
        :raises StreamConsumed: when the body was already streamed.
        :raises ResponseClosed: when the response was closed before its body was read.
        :raises ResponseTooLarge: when the body is larger than ``max_response_size``.
        :raises DecompressionError: when the body cannot be decoded, or decodes past a limit.
        :raises TransportError: when the connection fails or the read timeout passes.
        """
        chunker = ByteChunker(chunk_size)
        content = self._content
        if content is not None:
            for piece in chunker.decode(content) + chunker.flush():
                yield piece
            return
        async for data in self._pieces(self._decoder()):
            for piece in chunker.decode(data):
                yield piece
        for piece in chunker.flush():
            yield piece

    async def aiter_text(
        self, chunk_size: int | None = None, encoding: str | None = None
    ) -> AsyncIterator[str]:
        """Yield the body decoded to text as it arrives, in pieces of ``chunk_size`` characters.

        It raises what ``aiter_bytes`` raises.

        :param chunk_size: the length of each piece; None yields the text as it is decoded.
        :param encoding: the charset to decode with, instead of ``encoding``.
        """
        decoder = TextDecoder(encoding or self.encoding)
        pending = ""
        async for data in self.aiter_bytes():
            text = decoder.decode(data)
            if chunk_size is None:
                if text:
                    yield text
                continue
            pending += text
            while len(pending) >= chunk_size:
                yield pending[:chunk_size]
                pending = pending[chunk_size:]
        pending += decoder.flush()
        if chunk_size is None:
            if pending:
                yield pending
            return
        while pending:
            yield pending[:chunk_size]
            pending = pending[chunk_size:]

    async def aiter_lines(self, encoding: str | None = None) -> AsyncIterator[str]:
        """Yield the body as lines of text, split on ``\\n``, ``\\r\\n`` or ``\\r`` (not kept).

        It raises what ``aiter_bytes`` raises.

        :param encoding: the charset to decode with, instead of ``encoding``.
        """
        decoder = LineDecoder()
        async for text in self.aiter_text(encoding=encoding):
            for line in decoder.decode(text):
                yield line
        for line in decoder.flush():
            yield line

    async def aclose(self) -> None:
        """Release the connection; an unread remainder of the body is dropped with it."""
        if not self._closed:
            self._closed = True
            self._stream.close()

    @property
    def is_closed(self) -> bool:
        """Whether the response is closed: its body was read to the end, or ``aclose`` ran."""
        return self._closed

    @property
    def content(self) -> bytes:
        """The body read by ``aread()``.

        :raises ResponseNotRead: when the body has not been read with ``aread()``.
        """
        content = self._content
        if content is None:
            raise ResponseNotRead("the body has not been read: call `await response.aread()` first")
        return content

    @property
    def text(self) -> str:
        """The body read by ``aread()``, decoded with ``encoding`` (bad bytes replaced).

        :raises ResponseNotRead: when the body has not been read with ``aread()``.
        """
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (orjson when installed); call after ``aread()``.

        :param kwargs: arguments for ``json.loads``; given any, the stdlib parses ``text``.
        :raises ResponseNotRead: when the body has not been read with ``aread()``.
        :raises ValueError: when the body is not valid JSON.
        """
        content = self.content
        if kwargs:
            import json

            return json.loads(self.text, **kwargs)
        if self.encoding.replace("-", "").replace("_", "").lower() in ("utf8", "ascii", "usascii"):
            return json_loads(content)
        return json_loads(self.text)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"


def received_response(
    status_code: int,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
    stream: ResponseStream,
    request: Request,
    elapsed: float,
) -> Response:
    """The Response for a head a connection received. One whose body still holds something of
    the connection (it is unfinished, or it holds HTTP/2 flow-control credit) is a
    ``_HoldingResponse``, which gives that back if it is dropped; the others cost no finalizer."""
    holds = not stream.complete or (getattr(stream, "holds_credit", False) and _held_bytes(stream))
    cls = _HoldingResponse if holds else Response
    return cls(status_code, http_version, headers, stream, request=request, elapsed=elapsed)


def _held_bytes(stream: ResponseStream) -> int:
    return int(getattr(stream, "_buffered", 0))


class _HoldingResponse(Response):
    """A Response whose body holds part of its connection: see ``__del__``."""

    __slots__ = ()

    def __del__(self) -> None:
        """Dropped without being read to its end or closed: release what the body still holds.

        An unfinished body pins its connection (HTTP/1.1: until the server closes it; HTTP/2: a
        stream, and up to a window of the connection's flow-control credit). Garbage collection
        may run anywhere, so the release (closing the HTTP/1.1 connection, resetting the stream)
        is handed to the connection's event loop; then a ResourceWarning names the URL, as an
        unclosed file does. A complete body held only memory, or credit that is handed back."""
        if getattr(self, "_closed", True):
            return
        stream = self._stream
        loop = getattr(stream, "_loop", None)
        if loop is None:
            return  # fixed content: nothing held
        unfinished = not stream.complete
        if not unfinished and not _held_bytes(stream):
            return
        try:
            loop.call_soon_threadsafe(stream.close)
        except RuntimeError:  # the loop is closed, and the connection with it
            return
        if unfinished:
            request = self.request
            what = f"{request.method} {request.url}" if request is not None else "a request"
            warnings.warn(
                f"the response to {what} was garbage-collected before its body was read or "
                "it was closed; its connection was dropped (read the body, use `async with`, or "
                "call `await response.aclose()`)",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )
