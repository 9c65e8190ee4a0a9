"""One HTTP/2 stream as the connection keeps it, and the body that hands its credit back.

``StreamState`` is a stream's bookkeeping beside h2's own state (the waiter for its response
head, its body, its read deadline, whether our side is still sending), and for a stream of the
fast path, which h2 does not run, the state h2 would keep (windows, content length); ``H2Body`` is a response
body that grants flow-control credit back to the server as the reader takes bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .base import ResponseHead
from .stream import BodyStream

__all__ = ["H2Body", "StreamState"]


class H2Body(BodyStream):
    """A response body that hands flow-control credit back as the reader takes bytes."""

    __slots__ = ("stream_id", "connection")
    holds_credit = True  # what it buffers is the connection's credit until read or closed

    def __init__(self, connection: Any, stream_id: int, read_timeout: float | None) -> None:
        super().__init__(connection, connection._loop, read_timeout)
        self.connection = connection
        self.stream_id = stream_id

    def _taken(self, size: int) -> None:
        self._buffered -= size
        if size:
            self.connection._consumed(self.stream_id, size)

    def close(self) -> None:
        dropped = self._buffered
        super().close()
        if dropped:  # discarded unread: the server may send that much again
            self.connection._consumed(0, dropped)


class StreamState:
    __slots__ = (
        "id",
        "waiter",
        "body",
        "deadline",
        "read_timeout",
        "sending",
        "received_end",
        "window_waiter",
        "unacked",
        "is_head",
        "written_at",
        "fast",
        "recv_window",
        "send_window",
        "head_seen",
        "expected",
        "received",
        "closed_by",
    )

    def __init__(self, stream_id: int, waiter: asyncio.Future[ResponseHead]) -> None:
        self.id = stream_id
        self.waiter: asyncio.Future[ResponseHead] | None = waiter
        self.body: H2Body | None = None
        self.deadline = 0.0
        self.read_timeout: float | None = None
        self.sending = True  # the request is not completely sent yet
        self.received_end = False
        self.window_waiter: asyncio.Future[None] | None = None
        self.unacked = 0
        self.is_head = False
        self.written_at = 0.0  # when the request was sent, for the owner's timings
        # The fast path's own accounts of a stream h2 does not run (proto/h2_fast.py):
        self.fast = False
        self.recv_window = 0  # flow control: what the server may still send
        self.send_window = 0  # what the server allows us to send (tracked for its overflow check)
        self.head_seen = False  # the final response head came
        self.expected: int | None = None  # its content-length
        self.received = 0  # DATA bytes received
        self.closed_by: Any = None  # how it closed (h2's StreamClosedBy)
