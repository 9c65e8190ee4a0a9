"""The one exception hierarchy of hyperhttp.

Every layer maps foreign exceptions (OSError, ssl.SSLError, httptools.HttpParserError, h2 errors) at
the boundary where they arise, so callers only ever see these classes::

    HyperHTTPError
    ├── TransportError
    │   ├── ConnectError
    │   ├── ReadError
    │   ├── WriteError
    │   ├── TLSError
    │   ├── ProxyError
    │   ├── DNSError
    │   ├── ProtocolError
    │   │   ├── RemoteProtocolError
    │   │   │   └── StreamNotProcessed
    │   │   └── LocalProtocolError
    │   └── TimeoutException
    │       ├── ConnectTimeout
    │       │   └── TLSHandshakeTimeout (also a TLSError)
    │       ├── ReadTimeout
    │       ├── WriteTimeout
    │       └── PoolTimeout
    ├── InvalidURL
    ├── HTTPStatusError
    ├── TooManyRedirects
    ├── StreamError
    │   ├── StreamConsumed
    │   ├── ResponseClosed
    │   ├── ResponseNotRead
    │   └── RequestNotRead
    ├── ResponseTooLarge
    ├── DecompressionError
    ├── CircuitBreakerOpen
    └── PoolClosed
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Response
    from ._request import Request

__all__ = [
    "HyperHTTPError",
    "TransportError",
    "ConnectError",
    "ReadError",
    "WriteError",
    "TLSError",
    "ProxyError",
    "DNSError",
    "ProtocolError",
    "RemoteProtocolError",
    "StreamNotProcessed",
    "LocalProtocolError",
    "TimeoutException",
    "ConnectTimeout",
    "TLSHandshakeTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "InvalidURL",
    "HTTPStatusError",
    "TooManyRedirects",
    "StreamError",
    "StreamConsumed",
    "ResponseClosed",
    "ResponseNotRead",
    "RequestNotRead",
    "ResponseTooLarge",
    "DecompressionError",
    "CircuitBreakerOpen",
    "PoolClosed",
    "InsecureRequestWarning",
]


class HyperHTTPError(Exception):
    """Root of every exception hyperhttp raises."""


class TransportError(HyperHTTPError):
    """Something went wrong below HTTP semantics: the socket, TLS, DNS, framing or a timer."""


class ConnectError(TransportError):
    """The TCP connection could not be established.

    ``attempts`` lists each address tried with the reason it failed, as ``("ip:port", reason)``.

    :param message: what failed.
    :param attempts: each address tried with the reason it failed; None for none.
    """

    def __init__(self, message: str, attempts: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts or []


class ReadError(TransportError):
    """The connection failed while a response was being received."""


class WriteError(TransportError):
    """The connection failed while the request was being sent."""


class TLSError(TransportError):
    """The TLS handshake or the TLS session failed (unknown CA, hostname mismatch, ...)."""


class ProxyError(TransportError):
    """The proxy refused or broke the tunnel.

    ``status_code`` is the status an HTTP proxy answered with (407: it wants credentials, or
    refused them), None otherwise.

    :param message: what failed.
    :param args: further arguments of the exception.
    :param status_code: the status the proxy answered with, if it answered.
    """

    def __init__(self, message: str, *args: Any, status_code: int | None = None) -> None:
        super().__init__(message, *args)
        self.status_code = status_code


class DNSError(TransportError):
    """The host name could not be resolved."""


class ProtocolError(TransportError):
    """A peer broke the HTTP protocol."""


class RemoteProtocolError(ProtocolError):
    """The server sent something HTTP does not allow (malformed head, bad framing, early close)."""


class StreamNotProcessed(RemoteProtocolError):
    """The HTTP/2 server did not process the request, and it was not sent again.

    The request was above a GOAWAY's last stream, or the stream was refused (REFUSED_STREAM).
    Sending it again is safe whatever the method (RFC 9113 section 8.7); the pool does so when
    the body can be sent again (up to three times), and raises this when it cannot, or when the
    replays ran out.

    ``progress`` is True when the connection's GOAWAY came after the server had processed other
    streams on it (a server that closes connections after N requests): resending then is not a
    retry of something failing, and does not count against the replay limit.

    :param message: what happened.
    :param progress: whether the server had processed other streams on the connection.
    """

    def __init__(self, message: str, *, progress: bool = False) -> None:
        super().__init__(message)
        self.progress = progress


class LocalProtocolError(ProtocolError):
    """The caller asked for something HTTP does not allow (CR/LF in a header, a bad method)."""


class TimeoutException(TransportError):
    """Base of the four timeouts: connect, read, write and pool."""


class ConnectTimeout(TimeoutException):
    """Connecting (DNS, TCP and TLS handshake) took longer than the connect timeout."""


class TLSHandshakeTimeout(TLSError, ConnectTimeout):
    """The TLS handshake did not finish within the connect timeout.

    It is both a TLSError and a ConnectTimeout.
    """


class ReadTimeout(TimeoutException):
    """No response data arrived within the read timeout."""


class WriteTimeout(TimeoutException):
    """The request could not be written within the write timeout."""


class PoolTimeout(TimeoutException):
    """No connection became available within the pool timeout."""


class InvalidURL(HyperHTTPError):
    """The URL cannot be requested: no host, an unknown scheme, a bad port, control characters."""


class HTTPStatusError(HyperHTTPError):
    """Raised by ``Response.raise_for_status()`` for a 4xx or 5xx response.

    Also the ``original_exception`` of a RetryError whose last attempt failed with a status.

    :param message: the status and the URL.
    :param request: the request that was answered.
    :param response: the 4xx or 5xx response.
    """

    def __init__(self, message: str, *, request: Request, response: Response) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


class TooManyRedirects(HyperHTTPError):
    """The redirect chain is longer than ``max_redirects``."""


class StreamError(HyperHTTPError):
    """A request or response body was used in a way its state does not allow."""


class StreamConsumed(StreamError):
    """A body was already streamed and cannot be read or sent again.

    Raised for a response body read after it was streamed, and for a request body that must be
    sent again (a redirect, a Digest challenge, a multipart part) but was a one-shot stream.
    """


class ResponseClosed(StreamError):
    """The response was closed before its body was read."""


class ResponseNotRead(StreamError):
    """``content``, ``text`` or ``json()`` was used before ``await response.aread()``."""


class RequestNotRead(StreamError):
    """``request.read()`` of a streamed body that no transport has received yet."""


class ResponseTooLarge(HyperHTTPError):
    """The response body is larger than the configured maximum."""


class DecompressionError(HyperHTTPError):
    """The body could not be decoded (corrupt data, or it expands past the configured limit)."""


class CircuitBreakerOpen(HyperHTTPError):
    """Requests to this host are refused because its circuit breaker is open.

    Raised by ``CircuitBreaker.check`` (and so by the Client, before anything is sent) while the
    breaker is open, or half-open with every probe slot taken (``remaining`` is then 0.0).

    :param host: the host refused.
    :param remaining: seconds until the breaker admits probes.
    :param args: further arguments of the exception.
    """

    def __init__(self, host: str, remaining: float, *args: Any) -> None:
        super().__init__(f"circuit breaker open for {host}; retry in {remaining:.1f}s", *args)
        self.host = host
        self.remaining = remaining


class PoolClosed(HyperHTTPError):
    """A request was made on a Client that has been closed."""


class InsecureRequestWarning(UserWarning):
    """Issued when a Client is built with ``verify=False``: TLS certificates will not be checked."""
