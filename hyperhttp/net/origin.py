"""What the pool keeps for one origin, for one connection, and for a request waiting."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable, Iterable

from .._request import Request
from .._url import URL
from ..exceptions import PoolTimeout
from ..proto.base import Connection
from .proxy import ProxyURL

__all__ = [
    "Held",
    "Origin",
    "Waiter",
    "fail_late_waiters",
    "is_empty",
    "next_waiter",
    "oldest_waiter",
    "prune",
    "request_timings",
]


class Held:
    """The pool's record of one connection: the connection (set once it is connected), its
    origin (None once the pool is done with it: later reports are ignored) and since when it
    has been idle (0.0: it is not)."""

    __slots__ = ("connection", "origin", "idle_since", "ended", "closing", "phases")

    connection: Connection

    def __init__(self) -> None:
        self.origin: Origin | None = None
        self.idle_since = 0.0
        self.ended = False  # it reported that it can serve no more requests
        self.closing = False  # the pool closed it while idle; its socket is not gone yet
        self.phases: dict[str, float] | None = None  # its connect timings, for its first request


def is_empty(origin: Origin) -> bool:
    return not (
        origin.connections or origin.idle or origin.connecting or origin.waiting or origin.waiters
    )


class Origin:
    """Everything the pool keeps for one origin (scheme, host, port) on one route (direct, or
    through ``proxy``).

    The triple, and the proxy when there is one, are the whole reuse key because everything else
    that decides whether a connection can serve a request is fixed per pool: its TLS settings
    (one SSLContext, built once per Client; SNI and the certificate check follow the host). So
    connections through a proxy are pooled apart from direct ones and from other proxies', and
    ``label`` (the stats' key) says "... via http://proxy:port" for them.
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
        "proxy",
        "sockets",
    )

    def __init__(self, url: URL, http2: bool, proxy: ProxyURL | None = None) -> None:
        scheme, host, port = url.origin
        self.label = f"{scheme}://{url.host_header.decode('ascii')}"
        if url.port is None:
            self.label = f"{self.label}:{port}"
        self.proxy = proxy  # the route: None is direct
        self.sockets = 0  # open or opening, until the socket is gone: the per-host cap's count
        if proxy is not None:
            self.label = f"{self.label} via {proxy.safe}"
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

    def settle_waiters(self, result: Any) -> None:
        """Give every waiter still waiting ``result``."""
        for waiter in self.waiters:
            if not waiter.future.done():
                waiter.future.set_result(result)

    def stats(self) -> dict[str, int]:
        """connections (open or opening), idle, in_use (= active), connecting, waiting, requests;
        for an origin that speaks HTTP/2 also streams (open) and max_streams (allowed); and the
        2.x names: pending (= connecting), waiters (= waiting), total_connections (= connections)."""
        idle = len(self.idle) + sum(1 for h in self.shared if h.connection.in_use == 0)
        in_use = len(self.connections) - idle
        connections = len(self.connections) + self.connecting
        entry = {
            "connections": connections,
            "idle": idle,
            "in_use": in_use,
            "active": in_use,
            "connecting": self.connecting,
            "waiting": self.waiting,
            "requests": self.requests,
            # the same counts under the names of the 2.x line, which dashboards read
            "pending": self.connecting,
            "waiters": self.waiting,
            "total_connections": connections,
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


def _live_head(waiters: deque[Waiter]) -> Waiter | None:
    """The first live waiter of ``waiters``; served or cancelled ones before it are dropped."""
    while waiters and waiters[0].future.done():
        waiters.popleft()
    return waiters[0] if waiters else None


def next_waiter(origin: Origin, waiting: set[Origin]) -> Waiter | None:
    """The origin's longest-waiting live waiter (served or cancelled ones are dropped; an origin
    with none leaves ``waiting``, the set of waiting origins)."""
    head = _live_head(origin.waiters)
    if head is None:
        waiting.discard(origin)
    return head


def oldest_waiter(
    waiting: set[Origin],
    excluding: Origin | None,
    blocked: Callable[[Origin], bool] | None = None,
) -> Waiter | None:
    """The longest-waiting live waiter for room under the cap, of any origin in ``waiting`` but
    ``excluding`` and those ``blocked`` (at their per-host cap) (served or cancelled ones are
    dropped on the way)."""
    oldest: Waiter | None = None
    done: list[Origin] | None = None
    for origin in waiting:
        if _live_head(origin.waiters) is None:  # it leaves ``waiting`` below, not mid-iteration
            if done is None:
                done = []
            done.append(origin)
            continue
        if origin is excluding:
            continue
        if blocked is not None and blocked(origin):
            continue
        for waiter in origin.waiters:
            if waiter.future.done() or not waiter.room:
                continue
            if oldest is None or waiter.seq < oldest.seq:
                oldest = waiter
            break  # an origin's waiters are in arrival order
    if done is not None:
        waiting.difference_update(done)
    return oldest


def prune(origins: dict[Any, Origin], limit: int) -> int:
    """Drop the records of ``origins`` with nothing open, opening or waiting; the limit to
    prune at next (doubled when most records are still busy: amortised O(1))."""
    for key in [k for k, o in origins.items() if is_empty(o)]:
        del origins[key]
    return limit * 2 if len(origins) > limit // 2 else limit


def request_timings(
    started: float, acquired: float, held: Held | None, stream: Any
) -> dict[str, float]:
    """Seconds per phase of one request: "pool" (waiting for a connection), "dns", "connect"
    and "tls" (when it opened one), "write" (until the request was written) and "first_byte"
    (from then until the response began)."""
    written, first = getattr(stream, "stamps", (0.0, 0.0))
    phases: dict[str, float] = {}
    if held is not None and held.phases:
        phases, held.phases = held.phases, None  # the connection's: its first request's only
    if not acquired:  # an idle connection, or one the pool sent the request on (no held)
        acquired = started if held is not None else written or started
    timings = dict(phases)
    timings["pool"] = max(0.0, acquired - started - sum(phases.values()))
    timings["write"] = max(0.0, written - acquired) if written else 0.0
    timings["first_byte"] = max(0.0, first - written) if written and first else 0.0
    return timings


class PoolStats(dict[str, dict[str, int]]):
    """``get_pool_stats()``: counts per origin, keyed ``"scheme://host:port"``; a key of the 2.x
    line, ``"host:port"``, finds the same entry (``stats["example.com:443"]``, ``in``, ``get``)."""

    def __missing__(self, key: str) -> dict[str, int]:
        for label, entry in self.items():
            if label.partition("://")[2] == key:
                return entry
        raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        if dict.__contains__(self, key):
            return True
        try:
            self[key]
        except KeyError:
            return False
        return True

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default
