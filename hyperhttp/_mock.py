"""Testing without a server: ``MockTransport`` replaces the network and nothing else.

``Client(transport=MockTransport(handler))`` runs the whole client stack (auth flows, event hooks,
the cookie jar, redirects, retries and circuit breaking, content decoding, body limits) and hands
each request, its body already received, to ``handler`` instead of a connection pool. The handler
answers with a ``MockResponse``, a status code, or by raising a hyperhttp exception (a
``ConnectError``, a ``ReadTimeout``) to stand for a network failure. Bodies arrive the way a
socket would deliver them: content-encoded when the response says so, a ``stream=`` chunk by chunk.

``Router`` (``_router.py``) dispatches on method, path, host and query; the pytest plugin
(``hyperhttp.pytest_plugin``) puts one in front of every Client of a test. Users import all of it
from ``hyperhttp.mock`` (or ``hyperhttp``).
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import time
import zlib
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence, Union

from ._compat import brotli, json_dumps, zstandard
from ._headers import Headers, HeadersInput
from ._models import Response
from ._request import Request
from ._transport import Transport
from .exceptions import PoolClosed, ReadTimeout
from .proto.sending import DeclaredLength, pieces

__all__ = [
    "Handler",
    "MockError",
    "MockExhausted",
    "MockResponse",
    "MockTransport",
    "UnmatchedRequest",
]

_UNSET: Any = object()
_NO_BODY_STATUSES = frozenset({204, 304})


class MockError(AssertionError):
    """A mock was used in a way its test did not set up: the test is wrong, not the client."""


class MockExhausted(MockError, IndexError):
    """A sequence of responses has run out (an IndexError too, as it was in 2.x)."""


class UnmatchedRequest(MockError):
    """No route of a strict Router matches the request."""


class MockResponse:
    """A canned response: a status, fields, and at most one body.

    The body is one of ``content`` (the bytes on the wire), ``text``, ``json`` or ``stream`` (an
    iterable or async iterator of byte chunks, sent as they come).

    ``text`` and ``json`` set Content-Type when ``headers`` does not, and are compressed with the
    response's Content-Encoding (gzip, deflate, br, zstd) when ``headers`` gives one, so the client
    decodes them as it would a server's; ``content`` and ``stream`` are sent as given, encoded or
    not. A body of known size gets a Content-Length. One MockResponse may answer many requests,
    except one with a ``stream``, which can be sent once.

    :param status_code: the status code, 100 to 999.
    :param headers: the fields, in any form ``Headers`` takes.
    :param content: the body as sent, encoded or not.
    :param text: the body as text, sent as UTF-8.
    :param json: a value sent as a JSON body.
    :param stream: the body as chunks of bytes, sent one by one.
    :param http_version: the protocol version the response reports.
    :raises TypeError: when ``status_code`` is not an int.
    :raises ValueError: when ``status_code`` is out of range, more than one body is given, a
        field value holds CR, LF or NUL, or a Content-Encoding cannot be applied.
    """

    __slots__ = ("status_code", "http_version", "headers", "_body", "_stream")

    def __init__(
        self,
        status_code: int = 200,
        *,
        headers: HeadersInput = None,
        content: bytes | bytearray | memoryview | None = None,
        text: str | None = None,
        json: Any = _UNSET,
        stream: AsyncIterator[bytes] | Iterable[bytes] | None = None,
        http_version: str = "HTTP/1.1",
    ) -> None:
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise TypeError(f"status_code must be an int, not {type(status_code).__name__}")
        if not 100 <= status_code <= 999:
            raise ValueError(f"status_code must be a three-digit number, not {status_code}")
        given = [content is not None, text is not None, json is not _UNSET, stream is not None]
        if sum(given) > 1:
            raise ValueError("MockResponse takes at most one of content=, text=, json= and stream=")
        self.status_code = status_code
        self.http_version = http_version
        self.headers = fields = Headers(headers)
        body: bytes | None = None
        if content is not None:
            body = bytes(content)
        elif text is not None:
            fields.setdefault("Content-Type", "text/plain; charset=utf-8")
            body = _encoded(text.encode("utf-8"), fields.get_list("content-encoding"))
        elif json is not _UNSET:
            fields.setdefault("Content-Type", "application/json")
            body = _encoded(json_dumps(json), fields.get_list("content-encoding"))
        if body is not None and "content-length" not in fields:
            fields["Content-Length"] = str(len(body))
        self._body = body
        self._stream = stream
        for name, value in fields.raw:
            if any(c in value for c in b"\r\n\0"):
                raise ValueError(f"header {name!r} has a value that would break the response")

    def to_response(self, request: Request) -> Response:
        """Return a Response to ``request`` whose body is this one, as a connection delivers it.

        :param request: the request answered.
        :raises MockError: when the body is a ``stream`` that was sent already.
        """
        body: _MockBody
        if request.method == "HEAD" or self.status_code in _NO_BODY_STATUSES:
            body = _MockBody(b"", None, request)
        else:
            stream, self._stream = self._stream, _SENT if self._stream is not None else None
            if stream is _SENT:
                raise MockError(
                    f"{self!r} has a stream= body, which was sent already: build a MockResponse "
                    "per request (a handler function does) to send it again"
                )
            body = _MockBody(self._body or b"", stream, request)
        return Response(
            self.status_code, self.http_version, list(self.headers.raw), body, request=request
        )

    def __repr__(self) -> str:
        return f"<MockResponse [{self.status_code}]>"


_SENT: Any = object()  # a stream= that was handed out already


def _encoded(body: bytes, codings: list[str]) -> bytes:
    """``body`` with the content codings applied in the order they are listed."""
    for value in codings:
        for coding in (c.strip().lower() for c in value.split(",")):
            if coding in ("", "identity"):
                continue
            if coding in ("gzip", "x-gzip"):
                body = gzip.compress(body, mtime=0)
            elif coding == "deflate":
                body = zlib.compress(body)
            elif coding == "br" and brotli is not None:
                body = brotli.compress(body)
            elif coding == "zstd" and zstandard is not None:
                body = zstandard.ZstdCompressor().compress(body)
            else:
                raise ValueError(f"MockResponse cannot apply the content coding {coding!r}")
    return body


class _MockBody:
    """A response body as a connection's stream delivers it: fixed bytes at once, or the chunks
    of a ``stream=`` one by one, each waited for at most the request's read timeout."""

    __slots__ = ("_content", "_chunks", "_timeout", "complete", "trailers")

    def __init__(
        self,
        content: bytes,
        chunks: AsyncIterator[bytes] | Iterable[bytes] | None,
        request: Request,
    ) -> None:
        self._content = content
        self._chunks: Any = None
        if chunks is not None:
            self._chunks = chunks.__aiter__() if hasattr(chunks, "__aiter__") else iter(chunks)
        self._timeout = request.timeout.read
        self.complete = chunks is None
        self.trailers: list[tuple[bytes, bytes]] = []

    def take_all(self) -> bytes:
        content, self._content = self._content, b""
        return content

    async def read(self) -> bytes:
        if self._content:
            return self.take_all()
        chunks = self._chunks
        if chunks is None:
            return b""
        if not hasattr(chunks, "__anext__"):
            chunk = next(chunks, b"")
        else:
            try:
                chunk = await _within(self._timeout, chunks.__anext__(), "a body chunk")
            except StopAsyncIteration:
                chunk = b""
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"a MockResponse stream must yield bytes, not {type(chunk).__name__}")
        if not chunk:
            self._chunks = None
            self.complete = True
        return bytes(chunk)

    async def read_all(self) -> bytes:
        parts: list[bytes] = []
        while True:
            chunk = await self.read()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def close(self) -> None:
        self._content = b""
        chunks, self._chunks = self._chunks, None
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:  # an async generator's ``finally`` runs now, not at collection
            try:
                asyncio.get_running_loop().create_task(aclose())
            except RuntimeError:
                pass
        elif chunks is not None and hasattr(chunks, "close"):
            chunks.close()


async def _within(seconds: float | None, awaitable: Awaitable[Any], what: str) -> Any:
    """``awaitable``, or ReadTimeout after ``seconds`` (the read timeout a server would meet)."""
    if seconds is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise ReadTimeout(
            f"the mock took longer than the read timeout ({seconds} s) for {what}"
        ) from None


# -- handlers ------------------------------------------------------------------------------

Answer = Union[MockResponse, Response, int]
HandlerFunction = Callable[[Request], Union[Answer, Awaitable[Answer]]]
Handler = Union[
    HandlerFunction,
    MockResponse,
    int,
    BaseException,
    Sequence[Any],
    Mapping[Any, Any],
]


def to_handler(handler: Any) -> HandlerFunction:
    """Any handler form as a function of the request: a callable as it is; a MockResponse or a
    status for every request; an exception raised for every request; a sequence answered in
    order, one item per request; a mapping as a Router (see ``Router.from_mapping``)."""
    if isinstance(handler, (MockResponse, int, BaseException)):
        fixed = handler
        return lambda request: _fixed(fixed)
    if isinstance(handler, type) and issubclass(handler, BaseException):
        raise TypeError(
            f"raise an instance, not the class {handler.__name__}: {handler.__name__}(...)"
        )
    if isinstance(handler, Mapping):
        from ._router import Router

        return Router.from_mapping(handler)
    if callable(handler):
        return handler  # type: ignore[no-any-return]
    if isinstance(handler, Sequence) and not isinstance(handler, (str, bytes)):
        return _Replay(handler)
    raise TypeError(
        "a mock handler is a function of the request, a MockResponse, a status code, an "
        f"exception, a sequence of those or a mapping, not {type(handler).__name__}"
    )


def _fixed(answer: Any) -> Any:
    if isinstance(answer, BaseException):
        raise answer
    return answer


class _Replay:
    """A sequence of answers, one per request, in order; running out is a MockExhausted."""

    __slots__ = ("_items", "_next")

    def __init__(self, items: Sequence[Any]) -> None:
        self._items = [to_handler(item) for item in items]
        self._next = 0

    def __call__(self, request: Request) -> Any:
        index = self._next
        if index >= len(self._items):
            raise MockExhausted(
                f"the mock's {len(self._items)} responses were all used; request "
                f"#{index + 1} ({request.method} {request.url}) has none left"
            )
        self._next = index + 1
        return self._items[index](request)


async def answer(handler: HandlerFunction, request: Request) -> Response:
    """``handler``'s answer to ``request`` as a Response; a coroutine handler is waited for at
    most the request's read timeout, as a server's reply would be."""
    result: Any = handler(request)
    if inspect.isawaitable(result):
        result = await _within(request.timeout.read, result, "its answer")
    if isinstance(result, MockResponse):
        return result.to_response(request)
    if isinstance(result, int) and not isinstance(result, bool):
        return MockResponse(result).to_response(request)
    if isinstance(result, Response):
        if result.request is None:
            result.request = request
        return result
    raise TypeError(
        f"the mock handler answered {request.method} {request.url} with "
        f"{type(result).__name__}: return a MockResponse or a status code, or raise"
    )


async def receive_body(request: Request) -> bytes:
    """The request's body as a server receives it: a stream is read to its end (once: an
    iterator is spent, as it would be by a socket) and held to its declared length."""
    content = request.content
    if content is not None:
        return bytes(content)
    stream = request.stream
    if stream is None:
        return b""
    declared = DeclaredLength(request.stream_length)
    received = []
    async for piece in pieces(stream):
        declared.take(piece)
        received.append(bytes(piece))
    declared.check_complete()
    return b"".join(received)


class MockTransport(Transport):
    """A Transport that answers from ``handler`` instead of the network.

    ``handler`` is a function of the Request (sync or async) returning a MockResponse or a status
    code, or raising (any hyperhttp exception stands for the network failure it names); or a
    MockResponse or status for every request; or an exception instance raised for every request;
    or a sequence of those, one per request in order (running out raises ``MockExhausted``); or
    a mapping of ``"METHOD /path"`` (or ``"/path"`` for GET, or an absolute URL) to any of those.

    The handler, and ``calls``, get each request as the server would have received it: a copy
    with the fields as sent and the body read into ``content`` (``request.read()``,
    ``request.json()``), made before the handler runs, so a request the handler failed is
    recorded too and what the client changes later (an auth flow's next step) does not show.
    The Response's ``request`` is the client's own.

    :param handler: the handler, in any of the forms above.
    :raises TypeError: when ``handler`` is none of these forms (an exception class, for one).
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = to_handler(handler)
        self.calls: list[Request] = []
        self.closed = False

    @property
    def call_count(self) -> int:
        """The number of requests received since the start or the last ``reset``."""
        return len(self.calls)

    @property
    def last_request(self) -> Request | None:
        """The last request received, as the server received it; None before the first."""
        calls = self.calls
        return calls[-1] if calls else None

    def reset(self) -> None:
        """Forget the recorded calls (the handler, and where a sequence is, stay as they are)."""
        self.calls.clear()

    async def handle_async_request(self, request: Request) -> Response:
        """Record ``request`` as received and return the handler's answer to it.

        :param request: the request, as the Client sends it.
        :raises PoolClosed: when the transport has been closed.
        :raises LocalProtocolError: when a field is invalid, or the body does not match its
            declared length.
        :raises TypeError: when the handler answers with something other than a MockResponse,
            a Response or a status code, or a body chunk is not bytes.
        :raises ReadTimeout: when an async handler takes longer than the read timeout.
        """
        if self.closed:
            raise PoolClosed("the mock transport has been closed")
        started = time.monotonic()
        request.check()  # the fields as sent, as the pool does before it takes a connection
        received = request.as_received(await receive_body(request))
        self.calls.append(received)
        response = await answer(self.handler, received)
        response.request = request
        response.elapsed = time.monotonic() - started
        return response

    async def aclose(self) -> None:
        """Close the transport; later requests raise PoolClosed."""
        self.closed = True
