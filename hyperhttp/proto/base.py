"""What every connection of proto/ shares: the interface the pool holds it by, and the types of
a request going out and of a response head coming back.

A ``Connection`` (HTTP/1.1 in h1.py, HTTP/2 in h2.py) is an ``asyncio`` protocol that sends a
request and returns the response's head with a lazy body. Each encodes the request's fields in
its own wire form (HTTP/1.1 field lines, an HTTP/2 field list); what a request offers for that is
``OutgoingRequest``. The owner learns that a connection can take a request again, or never will,
through the two callbacks it gave when it made it (``on_idle``, ``on_lost``), and learns what to do
about a failure from the exception's type: ``ConnectionNotAvailable`` (nothing was sent: take
another), ``StaleConnection`` (a reused connection failed before any byte of the response: the
keep-alive race, replayable when the method and body allow) or ``StreamNotProcessed`` (HTTP/2: the
server says it did not process the request).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, AsyncIterable, Callable, Iterable, Protocol, Union

from ..exceptions import ReadError, RemoteProtocolError, TLSError
from .stream import BodyStream

__all__ = [
    "DEFAULT_HEAD_LIMITS",
    "Connection",
    "ConnectionNotAvailable",
    "FieldBlock",
    "EMPTY_BLOCK",
    "Header",
    "HeadLimits",
    "OutgoingRequest",
    "RequestBody",
    "ResponseHead",
    "StaleConnection",
    "Timeouts",
    "lost_error",
]

Header = tuple[bytes, bytes]
RequestBody = Union[bytes, bytearray, memoryview, Iterable[bytes], AsyncIterable[bytes], None]
# status, HTTP version, fields, body
ResponseHead = tuple[int, str, list[Header], BodyStream]
Callback = Callable[[], None]


class ConnectionNotAvailable(Exception):
    """Internal: the connection closed (or stopped taking requests) before any byte of the
    request was written. The owner takes another connection; it never reaches the caller."""


class StaleConnection(Exception):
    """Internal: a connection that had served a request before failed with ``error`` before any
    byte of this request's response arrived: the server may have closed it as the request went
    out (the keep-alive race, RFC 9112 section 9.3.1). The owner sends the request again on a
    new connection when that is safe, else raises ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class HeadLimits:
    """How large a response head (or a trailer section) may be, and how many fields it may have.

    A parser reads a head for as long as it keeps coming; these bound it (and the memory it
    takes) whatever the server sends: past either, RemoteProtocolError and the connection closes.
    """

    __slots__ = ("max_size", "max_fields")

    def __init__(self, max_size: int = 64 * 1024, max_fields: int = 100) -> None:
        if max_size < 1 or max_fields < 1:
            raise ValueError("the response head limits must be at least 1")
        self.max_size = max_size
        self.max_fields = max_fields


DEFAULT_HEAD_LIMITS = HeadLimits()


class FieldBlock:
    """Fields sent with many requests (a Client's defaults), checked once. Each wire format
    keeps its encoding of them here, made the first time it is needed (``h1``: field lines,
    ``h2``: a lower-cased field list without connection-specific fields)."""

    __slots__ = ("pairs", "h1", "h2")

    def __init__(self, pairs: list[Header]) -> None:
        self.pairs = pairs
        self.h1: bytes | None = None
        self.h2: list[Header] | None = None


EMPTY_BLOCK = FieldBlock([])


class Timeouts(Protocol):
    """The phases of a request a connection bounds (seconds, None: no limit)."""

    @property
    def read(self) -> float | None: ...

    @property
    def write(self) -> float | None: ...


class Target(Protocol):
    """Of a request's URL, a connection reads only the request target (path and query)."""

    @property
    def target(self) -> bytes: ...


class OutgoingRequest(Protocol):
    """What a connection reads from a request to send it. ``fields`` holds the checked fields:
    the authority (the Host field's value), a block shared with other requests and the
    request's own fields (Host excluded), each a ``(name, value)`` pair."""

    method_bytes: bytes
    content: bytes | bytearray | memoryview | None
    stream: Iterable[bytes] | AsyncIterable[bytes] | None
    chunked: bool
    stream_length: int | None
    fields: tuple[bytes, FieldBlock, list[Header]]

    @property
    def url(self) -> Target: ...


class Connection(Protocol):
    """One connection as its owner holds it, whatever its wire format.

    ``available`` is how many requests may start on it now (a place is taken with ``reserve()``
    before ``send``, and given back with ``unreserve()`` when it is not used); ``in_use`` how many
    are taken; ``capacity`` how many it allows at once; ``ready`` whether that number is known
    (an HTTP/2 connection learns it from the server's SETTINGS). ``drain()`` takes no new
    requests and closes once those in flight are done; ``close()`` closes now.

    ``start`` sends a request without a task of its own when it can go out at once (HTTP/1.1:
    no body, or a small bytes one): the owner hands a released connection straight to a waiting
    request that way, and the waiter's task wakes once, with the response head in ``waiter``.
    It returns a token (0: not started, use ``send``); a failure of that exchange goes through
    ``failed(exc, token, waiter)``, which gives what to raise (the same as ``send`` raises).
    ``socket_closed``: the socket is gone (asyncio's ``connection_lost`` has run).
    """

    multiplexed: bool
    socket_closed: bool

    @property
    def available(self) -> int: ...

    @property
    def in_use(self) -> int: ...

    @property
    def capacity(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    @property
    def is_idle(self) -> bool: ...

    @property
    def is_closed(self) -> bool: ...

    @property
    def http_version(self) -> str: ...

    def reserve(self) -> None: ...

    def unreserve(self) -> None: ...

    async def send(self, request: OutgoingRequest, timeout: Timeouts) -> ResponseHead: ...

    def start(
        self, request: OutgoingRequest, timeout: Timeouts, waiter: asyncio.Future[ResponseHead]
    ) -> int: ...

    def failed(
        self, exc: BaseException, exchange: int, waiter: asyncio.Future[ResponseHead]
    ) -> BaseException: ...

    def drain(self) -> None: ...

    def close(self) -> None: ...


def tls_reason(exc: ssl.SSLError) -> str:
    """An SSL error's reason in words ("certificate required" for CERTIFICATE_REQUIRED)."""
    reason: Any = getattr(exc, "reason", None)
    return reason.lower().replace("_", " ") if reason else str(exc)


def lost_error(message: str, exc: Exception | None) -> Exception:
    """The typed error for a connection lost with ``exc`` (None: a clean close)."""
    if exc is None:
        return RemoteProtocolError(message)
    if isinstance(exc, ssl.SSLError):  # an alert from the server, e.g. a refused client cert
        return TLSError(f"{message}: TLS failure: {tls_reason(exc)}")
    return ReadError(f"{message}: {exc}")
