"""What the pool keeps for one origin, for one connection, and for a request waiting."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Iterable

from .._request import Request
from .._url import URL
from ..exceptions import PoolTimeout
from ..proto.base import Connection

__all__ = ["Held", "Origin", "Waiter", "fail_late_waiters", "is_empty"]


class Held:
    """The pool's record of one connection: the connection (set once it is connected), its
    origin (None once the pool is done with it: later reports are ignored) and since when it
    has been idle (0.0: it is not)."""

    __slots__ = ("connection", "origin", "idle_since", "ended")

    connection: Connection

    def __init__(self) -> None:
        self.origin: Origin | None = None
        self.idle_since = 0.0
        self.ended = False  # it reported that it can serve no more requests


def is_empty(origin: Origin) -> bool:
    return not (
        origin.connections or origin.idle or origin.connecting or origin.waiting or origin.waiters
    )


class Origin:
    """Everything the pool keeps for one origin (scheme, host, port).

    That triple is the whole reuse key because everything else that decides whether a connection
    can serve a request is fixed per pool: its TLS settings (one SSLContext, built once per
    Client; SNI and the certificate check follow the host) and, until proxies are built, the
    route (direct). A per-origin proxy will join the key when it arrives.
    """

    __slots__ = (
        "label",
        "host",
        "port",
        "tls",
        "idle",
        "connections",
        "connecting",
        "waiters",
        "waiting",
        "requests",
        "shared",
        "http2",
    )

    def __init__(self, url: URL, http2: bool) -> None:
        scheme, host, port = url.origin
        self.label = f"{scheme}://{url.host_header.decode('ascii')}"
        if url.port is None:
            self.label = f"{self.label}:{port}"
        self.host = host
        self.port = port
        self.tls = scheme == "https"
        self.idle: deque[Held] = deque()  # idle connections of one request at a time
        self.connections: set[Held] = set()
        self.connecting = 0
        self.waiters: deque[Waiter] = deque()
        self.waiting = 0
        self.requests = 0
        # HTTP/2 connections that take new streams; ``http2`` is None while it may be spoken
        # here but no connection has told yet, then what ALPN (or prior knowledge) gave.
        self.shared: list[Held] = []
        self.http2: bool | None = None if http2 else False

    def stats(self) -> dict[str, int]:
        """connections (open or opening), idle, in_use (= active), connecting, waiting, requests;
        for an origin that speaks HTTP/2 also streams (open) and max_streams (allowed)."""
        idle = len(self.idle) + sum(1 for h in self.shared if h.connection.in_use == 0)
        in_use = len(self.connections) - idle
        entry = {
            "connections": len(self.connections) + self.connecting,
            "idle": idle,
            "in_use": in_use,
            "active": in_use,
            "connecting": self.connecting,
            "waiting": self.waiting,
            "requests": self.requests,
        }
        if self.http2:
            entries = [h.connection for h in self.connections if h.connection.multiplexed]
            entry["streams"] = sum(c.in_use for c in entries)
            entry["max_streams"] = sum(h.connection.capacity for h in self.shared)
        return entry


class Waiter:
    """A request waiting for a connection: for room under the global cap (``room``), or for a
    place on an HTTP/2 connection of its origin (being set up, or with every stream taken)."""

    __slots__ = ("origin", "future", "seq", "room", "request", "deadline", "held", "token")

    def __init__(
        self,
        origin: Origin,
        future: asyncio.Future[Any],
        seq: int,
        room: bool,
        request: Request,
    ) -> None:
        self.origin = origin
        self.future = future
        self.seq = seq  # arrival order across origins (kept when a waiter has to wait again)
        self.room = room
        self.request = request
        self.deadline = 0.0  # loop time its pool timeout ends (0.0: none)
        # The connection its request was sent on by the pool (see ConnectionPool._on_idle),
        # and that exchange's token.
        self.held: Held | None = None
        self.token = 0


def fail_late_waiters(origins: Iterable[Origin], now: float) -> float:
    """Fail with PoolTimeout the waiters of ``origins`` whose deadline is past at loop time
    ``now``; the earliest deadline still to watch (0.0: none)."""
    next_due = 0.0
    for origin in list(origins):
        for waiter in origin.waiters:
            deadline = waiter.deadline
            if not deadline or waiter.future.done():
                continue
            if deadline <= now:
                waiter.future.set_exception(
                    PoolTimeout(f"no connection available within {waiter.request.timeout.pool}s")
                )
            elif not next_due or deadline < next_due:
                next_due = deadline
    return next_due
