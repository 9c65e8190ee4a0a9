"""BodyStream: response body bytes on their way from a connection's receive callback to the reader.

The connection ``feed``s chunks as they arrive and ``finish``es or ``fail``s the stream; the reader
takes chunks. When more than ``high_water`` bytes wait unread the stream asks its owner to pause
reading from the socket, and resumes it once the reader has brought them under ``low_water``: so a
slow consumer keeps memory bounded whatever the size of the body.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from ..exceptions import ReadTimeout, ResponseClosed

__all__ = ["BodyStream", "StreamOwner", "HIGH_WATER", "LOW_WATER"]

HIGH_WATER = 1 << 20
LOW_WATER = 1 << 18


class StreamOwner(Protocol):
    """What a BodyStream needs from the connection that feeds it."""

    def pause_body(self) -> None: ...

    def resume_body(self) -> None: ...

    def abandon_body(self, stream: BodyStream) -> None:
        """The reader gave up before the end (closed, cancelled or timed out): drop the connection."""


class BodyStream:
    """A FIFO of body chunks with back-pressure and a read timeout on waiting readers."""

    __slots__ = (
        "_owner",
        "_loop",
        "_chunks",
        "_buffered",
        "complete",
        "closed",
        "_error",
        "_waiter",
        "_paused",
        "read_timeout",
        "received",
        "trailers",
        "stamps",  # (request written, first response byte), perf_counter; set only when timed
    )

    stamps: tuple[float, float]  # only set when the connection is timed: never read otherwise

    def __init__(
        self, owner: StreamOwner, loop: asyncio.AbstractEventLoop, read_timeout: float | None
    ) -> None:
        self._owner = owner
        self._loop = loop
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self.complete = False
        self.closed = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.read_timeout = read_timeout
        self.received = 0
        # Trailer fields (RFC 9110 section 6.5), filled by the connection as they arrive, before
        # the body is complete; never merged into the head's fields.
        self.trailers: list[tuple[bytes, bytes]] = []

    # -- the connection's side --------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        size = len(chunk)
        self._buffered += size
        self.received += size
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._buffered > HIGH_WATER and not self._paused and not self.closed:
            self._paused = True
            self._owner.pause_body()

    def finish(self) -> None:
        self.complete = True
        self._paused = False  # the connection resumes reading itself once the body is complete
        if self._waiter is not None:  # (a small body is complete before anyone reads it)
            self._wake()

    def fail(self, exc: BaseException) -> None:
        if self.complete or self._error is not None:
            return  # the first failure is the one that explains what happened
        self._error = exc
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the reader's side ------------------------------------------------------------------

    def take_all(self) -> bytes:
        """Everything buffered, joined (the one copy of ``aread()``)."""
        chunks = self._chunks
        if len(chunks) == 1:
            data = chunks.popleft()
        else:
            data = b"".join(chunks)
            chunks.clear()
        self._taken(len(data))
        return data

    async def read_all(self) -> bytes:
        """The whole remaining body."""
        if self.complete:
            return self.take_all()
        parts: list[bytes] = []
        while True:
            chunk = await self.read()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    async def read(self) -> bytes:
        """The next chunk as it arrived (at most what the connection has buffered), b"" at the end."""
        while True:
            chunks = self._chunks
            if chunks:
                if self._paused:  # drain everything at once so reading resumes sooner
                    data = b"".join(chunks)
                    chunks.clear()
                else:
                    data = chunks.popleft()
                self._taken(len(data))
                return data
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            if self.closed:
                raise ResponseClosed("the response was closed before its body was read")
            await self._wait()

    def _taken(self, size: int) -> None:
        self._buffered -= size
        if self._paused and self._buffered <= LOW_WATER:
            self._paused = False
            self._owner.resume_body()

    async def _wait(self) -> None:
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        timer = None
        if self.read_timeout is not None:
            timer = loop.call_later(self.read_timeout, self._timed_out, waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            self._abandon()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiter is waiter:
                self._waiter = None
        if self._error is not None and not self._chunks and not self.complete:
            raise self._error

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # data arrived in the same loop iteration
            return
        exc = ReadTimeout(f"no body data within the read timeout of {self.read_timeout}s")
        self.fail(exc)
        self._abandon()

    def _abandon(self) -> None:
        if not self.complete:
            self.closed = True
            self._owner.abandon_body(self)

    def close(self) -> None:
        """The reader is done: drop what is buffered; an unfinished body takes the connection down."""
        if self.closed:
            return
        self._chunks.clear()
        self._buffered = 0
        if not self.complete:
            self.closed = True
            self._owner.abandon_body(self)
        self.closed = True
