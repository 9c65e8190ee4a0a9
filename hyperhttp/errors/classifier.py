"""Sort a failed request into one of nine categories, and say which categories are worth a retry.

A category says what went wrong, not whether resending is safe: a ReadError after the request was
written is TRANSIENT, yet replaying a POST may repeat its effect. The retry policy decides that
from the method (RFC 9110 section 9.2.2).
"""

from __future__ import annotations

from typing import Final, Protocol

from ..exceptions import (
    ConnectError,
    DNSError,
    HTTPStatusError,
    LocalProtocolError,
    ProtocolError,
    ProxyError,
    ReadError,
    RemoteProtocolError,
    StreamNotProcessed,
    TimeoutException,
    TLSError,
    WriteError,
)

__all__ = [
    "ErrorClassifier",
    "TRANSIENT",
    "TIMEOUT",
    "PROTOCOL",
    "CONNECTION",
    "TLS",
    "DNS",
    "SERVER",
    "CLIENT",
    "FATAL",
]

TRANSIENT: Final = "TRANSIENT"
TIMEOUT: Final = "TIMEOUT"
PROTOCOL: Final = "PROTOCOL"
CONNECTION: Final = "CONNECTION"
TLS: Final = "TLS"
DNS: Final = "DNS"
SERVER: Final = "SERVER"
CLIENT: Final = "CLIENT"
FATAL: Final = "FATAL"

_CATEGORIES: Final = (TRANSIENT, TIMEOUT, PROTOCOL, CONNECTION, TLS, DNS, SERVER, CLIENT, FATAL)
_RETRYABLE: Final = frozenset((TRANSIENT, TIMEOUT, SERVER, CONNECTION, DNS))

# First match wins: a class must come before its bases, and the order settles the classes with
# two bases (TLSHandshakeTimeout is a TLSError and a ConnectTimeout: TIMEOUT). Everything not
# listed (InvalidURL, TooManyRedirects, StreamError, DecompressionError, ResponseTooLarge,
# CircuitBreakerOpen, PoolClosed, foreign exceptions) is FATAL.
_RULES: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (TimeoutException, TIMEOUT),
    (StreamNotProcessed, TRANSIENT),
    (RemoteProtocolError, PROTOCOL),
    (LocalProtocolError, FATAL),
    (ProtocolError, PROTOCOL),
    (DNSError, DNS),
    (TLSError, TLS),
    (ProxyError, CONNECTION),
    (ConnectError, CONNECTION),
    (ReadError, TRANSIENT),
    (WriteError, TRANSIENT),
)


class HasStatusCode(Protocol):
    """What the classifier reads from a response (``hyperhttp.Response`` is one)."""

    @property
    def status_code(self) -> int: ...


class ErrorClassifier:
    """Class-level functions that sort failures into the nine categories."""

    TRANSIENT: Final = TRANSIENT
    TIMEOUT: Final = TIMEOUT
    PROTOCOL: Final = PROTOCOL
    CONNECTION: Final = CONNECTION
    TLS: Final = TLS
    DNS: Final = DNS
    SERVER: Final = SERVER
    CLIENT: Final = CLIENT
    FATAL: Final = FATAL

    @staticmethod
    def categories() -> tuple[str, ...]:
        """Return the nine categories, in the order they are declared."""
        return _CATEGORIES

    @staticmethod
    def categorize(error: BaseException | None, response: HasStatusCode | None = None) -> str:
        """Return the category of a failed request: its error, or else its response's status.

        The error decides when there is one (an HTTPStatusError by its own response's status);
        foreign exceptions, which hyperhttp maps at its boundaries, are FATAL. Without an error:
        5xx is SERVER; 408 (RFC 9110 section 15.5.9) and 429 (RFC 6585 section 4) are TRANSIENT
        because both ask the client to try again later; other 4xx are CLIENT. A status outside
        100-599 is SERVER, as RFC 9110 section 15 tells a client to treat it like a 5xx.

        :param error: the exception the request raised, or None.
        :param response: the response received, read only for ``status_code``.
        :raises ValueError: when there is no error and no response, or no error and a 1xx-3xx
            response (nothing failed).
        """
        if error is None:
            if response is None:
                raise ValueError("nothing to classify: neither an error nor a response")
            return _categorize_status(response.status_code)
        if isinstance(error, HTTPStatusError):
            return _categorize_status(error.response.status_code)
        for error_type, category in _RULES:
            if isinstance(error, error_type):
                return category
        return FATAL

    @staticmethod
    def is_retryable(category: str) -> bool:
        """Return whether failures of this category may succeed if the request is sent again.

        TRANSIENT (a reset, a close, 408, 429, an unprocessed HTTP/2 stream), TIMEOUT, SERVER
        (5xx), CONNECTION and DNS are conditions of the moment: a later attempt can meet a
        healthy peer, connection or resolver. PROTOCOL, TLS and CLIENT come from what the
        server or the request is, and FATAL from the caller or the client's own state: the
        same request fails the same way.

        :param category: one of ``ErrorClassifier.categories()``.
        :raises ValueError: when ``category`` is not one of the nine.
        """
        if category in _RETRYABLE:
            return True
        if category in _CATEGORIES:
            return False
        raise ValueError(f"unknown error category {category!r}; expected one of {_CATEGORIES}")


def _categorize_status(status: int) -> str:
    if status == 408 or status == 429:
        return TRANSIENT
    if 400 <= status < 500:
        return CLIENT
    if 100 <= status < 400:
        raise ValueError(f"a {status} response is not a failure")
    return SERVER
