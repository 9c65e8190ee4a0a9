"""Testing without a server: ``Client(transport=MockTransport(handler))``; see docs/testing.md."""

from __future__ import annotations

from ._mock import (
    Handler,
    MockError,
    MockExhausted,
    MockResponse,
    MockTransport,
    UnmatchedRequest,
)
from ._router import Route, Router

__all__ = [
    "Handler",
    "MockError",
    "MockExhausted",
    "MockResponse",
    "MockTransport",
    "Route",
    "Router",
    "UnmatchedRequest",
]
