"""What HTTP/1.1 and HTTP/2 share when they send a request body.

A streamed body's pieces come from a sync or an async iterable (``pieces``), each is checked and
counted against the declared Content-Length (``DeclaredLength``), the transport's
``pause_writing``/``resume_writing`` are followed by ``WriteFlow``, and a wait for the transport or
for flow-control window is bounded by the write timeout (``wait_to_write``).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator, AsyncIterable, Iterable, Union

from ..exceptions import LocalProtocolError, WriteTimeout

__all__ = ["DeclaredLength", "WriteFlow", "pieces", "wait_to_write", "wake"]


async def pieces(body: Union[Iterable[Any], AsyncIterable[Any]]) -> AsyncGenerator[Any, None]:
    """The pieces of a streamed body, whether it iterates synchronously or not.

    Closed early (the server answered before the body was sent, or the send failed), it closes
    the body's iterator too, so a generator's ``finally`` (a file it holds) runs now, not at
    garbage collection."""
    if hasattr(body, "__aiter__"):
        iterator = body.__aiter__()
        try:
            async for piece in iterator:
                yield piece
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
    else:
        sync_iterator = iter(body)
        try:
            for piece in sync_iterator:
                yield piece
        finally:
            close = getattr(sync_iterator, "close", None)
            if close is not None:
                close()


class DeclaredLength:
    """A streamed body's pieces counted against its Content-Length (``None``: not counted)."""

    __slots__ = ("left",)

    def __init__(self, length: int | None) -> None:
        self.left = -1 if length is None else length  # bytes still owed; -1 when not counted

    def take(self, piece: Any) -> int:
        """The size of ``piece``, which must be bytes-like and within what is still owed."""
        if not isinstance(piece, (bytes, bytearray, memoryview)):
            raise TypeError(f"request body chunks must be bytes, not {type(piece).__name__}")
        size = piece.nbytes if isinstance(piece, memoryview) else len(piece)
        if self.left >= 0:
            if size > self.left:
                raise LocalProtocolError("the request body is longer than its Content-Length")
            self.left -= size
        return size

    def check_complete(self) -> None:
        if self.left > 0:
            raise LocalProtocolError(
                f"the request body ended {self.left} bytes short of its Content-Length"
            )


class WriteFlow:
    """Whether the transport asked us to stop writing, and the writers waiting for it to resume."""

    __slots__ = ("_loop", "paused", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.paused = False
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def waiting(self) -> bool:
        """Whether a writer waits for the transport to resume."""
        return bool(self._waiters)

    def resume(self) -> None:
        self.paused = False
        self._wake(None)

    def fail(self, error: BaseException) -> None:
        """The connection is gone: every waiting writer fails with ``error``."""
        self._wake(error)

    def release(self) -> None:
        """Let every waiting writer go on without the transport resuming: each looks again at
        whether there is anything left to send (a response may have ended the upload)."""
        self._wake(None)

    async def drain(self, timeout: float | None) -> None:
        """Until the transport resumes writing, bounded by ``timeout`` (WriteTimeout)."""
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await wait_to_write(self._loop, waiter, timeout)

    def _wake(self, error: BaseException | None) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            wake(waiter, error)


def wake(waiter: asyncio.Future[Any] | None, error: BaseException | None = None) -> None:
    """Let a writer waiting on ``waiter`` go on, or fail with ``error``."""
    if waiter is not None and not waiter.done():
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


async def wait_to_write(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[Any], timeout: float | None
) -> None:
    """Await ``waiter`` (writing may go on); after ``timeout`` seconds it fails with WriteTimeout."""
    timer = None if timeout is None else loop.call_later(timeout, _timed_out, waiter)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()


def _timed_out(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(WriteTimeout("the request body could not be sent in time"))
