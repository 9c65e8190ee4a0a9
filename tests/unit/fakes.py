"""Fakes for the sans-IO connection tests: a transport that records what a protocol does."""

from __future__ import annotations

import asyncio
from typing import Any


class FakeTransport:
    """Records what the protocol does; like asyncio, a close delivers connection_lost a loop
    iteration later (and once)."""

    def __init__(self, alpn: str | None = None, strict: bool = False) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.paused = False
        self.protocol: Any = None
        self.alpn = alpn  # what the fake TLS session negotiated (None: no TLS)
        self.strict = strict  # a write after close is a test failure

    def write(self, data: Any) -> None:
        assert not (self.strict and (self.closed or self.aborted)), "write after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self._lose()
        self.closed = True

    def abort(self) -> None:
        self._lose()
        self.aborted = True

    def _lose(self) -> None:
        if not (self.closed or self.aborted) and self.protocol is not None:
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object" and self.alpn is not None:
            return FakeSSLObject(self.alpn)
        return default

    def take(self) -> bytes:
        data = b"".join(self.writes)
        self.writes.clear()
        return data


class FakeSSLObject:
    def __init__(self, alpn: str) -> None:
        self.alpn = alpn

    def selected_alpn_protocol(self) -> str | None:
        return self.alpn or None

    def version(self) -> str:
        return "TLSv1.3"


class Timeouts:
    """The read and write timeouts a connection's ``send`` takes (``Timeout`` has more)."""

    def __init__(self, read: float | None = None, write: float | None = None) -> None:
        self.read = read
        self.write = write


class _Target:
    def __init__(self, target: bytes) -> None:
        self.target = target


class WireRequest:
    """What a connection reads from a request (proto/base.py's OutgoingRequest), built by hand:
    ``fields`` are the request's own fields (Host excluded), as ``(bytes, bytes)`` pairs."""

    def __init__(
        self,
        method: bytes = b"GET",
        body: Any = None,
        *,
        target: bytes = b"/",
        host: bytes = b"test",
        fields: list[tuple[bytes, bytes]] | None = None,
        chunked: bool = False,
        length: int | None = None,
    ) -> None:
        from hyperhttp.proto.base import EMPTY_BLOCK

        self.method_bytes = method
        self.url = _Target(target)
        is_bytes = isinstance(body, (bytes, bytearray, memoryview))
        self.content = body if is_bytes else None
        self.stream = None if is_bytes else body
        self.chunked = chunked
        self.stream_length = length
        self.fields = (host, EMPTY_BLOCK, fields if fields is not None else [])


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
