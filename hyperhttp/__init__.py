"""hyperhttp: a fast, correct async HTTP client for asyncio and uvloop.

async with hyperhttp.Client() as client:
    response = await client.get("https://example.org/")
    body = await response.aread()
"""

from __future__ import annotations

from ._auth import Auth, BasicAuth, BearerAuth, FunctionAuth
from ._client import Client
from ._compat import HAS_BROTLI, HAS_ISAL, HAS_ORJSON, HAS_UVLOOP, HAS_ZSTANDARD, install_uvloop
from ._cookies import Cookies
from ._digest import DigestAuth
from ._headers import Headers
from ._models import Response
from ._multipart import MultipartEncoder, MultipartFile
from ._request import Request
from ._timeout import Timeout
from ._transport import Transport
from ._url import URL
from ._version import __version__
from .errors.circuit_breaker import CircuitBreaker, CircuitBreakerState, DomainCircuitBreakerManager
from .errors.classifier import ErrorClassifier
from .errors.retry import RetryError, RetryPolicy, RetryState
from .errors.telemetry import ErrorTelemetry
from .exceptions import (
    CircuitBreakerOpen,
    ConnectError,
    ConnectTimeout,
    DecompressionError,
    DNSError,
    HTTPStatusError,
    HyperHTTPError,
    InsecureRequestWarning,
    InvalidURL,
    LocalProtocolError,
    PoolClosed,
    PoolTimeout,
    ProtocolError,
    ProxyError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestNotRead,
    ResponseClosed,
    ResponseNotRead,
    ResponseTooLarge,
    StreamConsumed,
    StreamError,
    StreamNotProcessed,
    TimeoutException,
    TLSError,
    TLSHandshakeTimeout,
    TooManyRedirects,
    TransportError,
    WriteError,
    WriteTimeout,
)
from .mock import MockResponse, MockTransport, Router
from .net.dns import AiodnsResolver, CachingResolver, Resolver, SystemResolver
from .net.proxy import ProxyURL
from .utils.backoff import (
    AdaptiveBackoff,
    BackoffStrategy,
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
)

__all__ = [
    "__version__",
    "Client",
    "RetryPolicy",
    "RetryError",
    "RetryState",
    "ErrorClassifier",
    "BackoffStrategy",
    "ExponentialBackoff",
    "DecorrelatedJitterBackoff",
    "AdaptiveBackoff",
    "CircuitBreaker",
    "CircuitBreakerState",
    "DomainCircuitBreakerManager",
    "ErrorTelemetry",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "DigestAuth",
    "FunctionAuth",
    "Cookies",
    "Request",
    "Response",
    "Headers",
    "MultipartEncoder",
    "MultipartFile",
    "URL",
    "Timeout",
    "Transport",
    "MockTransport",
    "MockResponse",
    "Router",
    "ProxyURL",
    "Resolver",
    "CachingResolver",
    "AiodnsResolver",
    "SystemResolver",
    "install_uvloop",
    "HAS_BROTLI",
    "HAS_ISAL",
    "HAS_ORJSON",
    "HAS_UVLOOP",
    "HAS_ZSTANDARD",
    "HyperHTTPError",
    "TransportError",
    "ConnectError",
    "ConnectTimeout",
    "ReadError",
    "ReadTimeout",
    "WriteError",
    "WriteTimeout",
    "PoolTimeout",
    "TimeoutException",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "TLSError",
    "TLSHandshakeTimeout",
    "InsecureRequestWarning",
    "ProxyError",
    "DNSError",
    "InvalidURL",
    "HTTPStatusError",
    "TooManyRedirects",
    "StreamError",
    "StreamNotProcessed",
    "StreamConsumed",
    "ResponseClosed",
    "ResponseNotRead",
    "RequestNotRead",
    "ResponseTooLarge",
    "DecompressionError",
    "CircuitBreakerOpen",
    "PoolClosed",
]
