"""ConnectionPool: the default Transport. Per-origin idle connections, a global cap, FIFO waiters.

The pool knows connections only through the ``Connection`` interface of proto/base.py and gets
them from the connector it is given (net/connector.py). The hot path is synchronous: an idle
connection for the origin is popped from a deque (LIFO, so hot connections stay warm and surplus
ones age out) and the request is written before anything is awaited. Only a miss awaits: a new
connection when under ``max_connections``, else a place in a FIFO of waiters, whose pool timeouts
one timer watches. A released connection goes straight to the next waiter, with its request sent
from the release when it fits in one write. asyncio is single-threaded, so there are no locks:
plain deques, counters and futures.

Connections report back through two callbacks bound to the pool's record of them (``Held``):
``_on_idle`` when a response completed and the connection can be reused, ``_on_lost`` when it
cannot (once at once, again when its socket is gone; a server closing it while it sat idle
removes it at once rather than on the next failed write).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections import OrderedDict
from functools import partial
from time import perf_counter
from typing import Any, Callable

from .._models import Response, received_response
from .._request import Request
from .._transport import Transport
from .._url import URL
from ..exceptions import PoolClosed, ReadError, StreamNotProcessed
from ..proto.base import ConnectionNotAvailable, HeadLimits, StaleConnection
from ..proto.deadline import LazyTimer
from .caps import GRANT, GROW, Caps
from .connector import Connector, DirectConnector
from .dns import Resolver
from .idle import IdleConnections
from .origin import (
    Held,
    Origin,
    PoolStats,
    Waiter,
    next_waiter,
    prune,
    request_timings,
)
from .proxy import ProxyRoutes
from .tunnel import ProxyConnector

__all__ = ["ConnectionPool"]

# Methods that can be replayed after the stale keep-alive race (RFC 9110 section 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_RETRY = object()  # a waiter's result meaning "what you waited for is not coming: look again"
_REPLAYS = 3  # requests an HTTP/2 server did not process are sent again at most this often,
_PROGRESS_REPLAYS = 100  # or this often when its GOAWAYs came after it served other requests
_ORIGIN_LIMIT = 1024  # origin records kept before idle ones are pruned
logger = logging.getLogger("hyperhttp")


class ConnectionPool(Caps, IdleConnections, Transport):
    """Keeps connections per origin and hands them to requests.

    Connections come from ``connector`` (a ``DirectConnector`` built from the other arguments
    when none is given) and are held through the ``Connection`` interface of proto/base.py only:
    the pool knows no wire format."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        max_connections_per_host: int | None = None,
        keepalive_expiry: float | None = 120.0,
        connect_timeout: float | None = 10.0,
        happy_eyeballs_delay: float = 0.25,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        http2: bool = False,
        http2_prior_knowledge: bool = False,
        max_header_size: int = 64 * 1024,
        max_headers: int = 100,
        connector: Connector | None = None,
        timings: bool = False,
        routes: ProxyRoutes | None = None,
        proxy_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if max_keepalive_connections < 0:
            raise ValueError("max_keepalive_connections must not be negative")
        self.max_connections = max_connections
        self.max_keepalive_connections = max_keepalive_connections
        if max_connections_per_host is not None and max_connections_per_host < 1:
            raise ValueError("max_connections_per_host must be at least 1 (or None: no cap)")
        # Politeness: at most this many sockets to one origin (HTTP/2: streams in flight).
        self.max_connections_per_host = max_connections_per_host
        self.keepalive_expiry = keepalive_expiry
        if connector is None:
            options: dict[str, Any] = dict(
                resolver=resolver,
                ssl_context=ssl_context,
                connect_timeout=connect_timeout,
                happy_eyeballs_delay=happy_eyeballs_delay,
                limits=HeadLimits(max_header_size, max_headers),  # each response's head
                timed=timings,
            )
            if routes is None:
                connector = DirectConnector(**options)
            else:
                connector = ProxyConnector(proxy_ssl_context=proxy_ssl_context, **options)
        # Which proxy, if any, each request goes through (net/proxy.py): part of its origin's
        # key. None when no proxy can apply: the key is then the URL's origin, as it is.
        self._routes = routes
        # Each response gets extensions["timings"] (see _timings); off, it costs a flag test.
        self.timings = timings
        self.connector: Connector = connector
        self.http2 = http2  # HTTP/2 through ALPN for https (the context must offer "h2")
        self.http2_prior_knowledge = http2_prior_knowledge  # HTTP/2 without TLS for http
        self._origins: dict[tuple[Any, ...], Origin] = {}
        self._origin_limit = _ORIGIN_LIMIT
        self._total = 0  # open and opening connections, across origins
        # Idle connections across origins, least recently used first (what makes room at the
        # cap, and what expires: its first, found in O(1) however many origins there are):
        # HTTP/1.1 ones, and HTTP/2 ones apart (each carries a whole origin: the last to go).
        self._lru: OrderedDict[Held, None] = OrderedDict()
        self._lru_h2: OrderedDict[Held, None] = OrderedDict()
        self._closing = 0  # connections the pool closed whose sockets are not gone yet
        self._room_waiting = 0  # requests queued for room under the global cap
        self._h2_sockets = 0  # HTTP/2 connections open (draining ones included)
        # Origins with queued waiters; freed capacity goes to the oldest head among them.
        self._waiting_origins: set[Origin] = set()
        self._arrivals = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool_timer: LazyTimer | None = None  # the waiters' deadlines: see _check_waiters
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._closed = False
        # Told (the host) of each request the pool sends again itself (a stale keep-alive
        # connection, HTTP/2 streams not processed): the Client's telemetry counts them apart
        # from its retry policy's.
        self.on_replay: Callable[[str], None] | None = None
        # Whether the "hyperhttp" logger takes DEBUG: looked at when a connection opens, so a
        # request that reuses one pays a flag test, not a logging call.
        self._debug = False

    # -- Transport ----------------------------------------------------------------------------

    async def handle_async_request(self, request: Request) -> Response:
        if self._closed:
            raise PoolClosed("the client has been closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._pool_timer = LazyTimer(self._loop, self._check_waiters)
        url = request.url
        routes = self._routes
        key = url.origin if routes is None else routes.key(url)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._new_origin(url, key)
        started = perf_counter()
        # Checked (fields and framing) before a connection or a stream is taken: what a hook, an
        # auth flow or the jar put in the headers may be refused, and must leak nothing.
        request.check()
        timeout = request.timeout
        retried = False
        fresh = False
        replays = drained = 0  # not-processed replays: failing ones, and after a served GOAWAY
        # Each pass either returns, raises, or used up one dead connection; the bound is a guard.
        for attempt in range(self.max_connections + 3 + _REPLAYS + _PROGRESS_REPLAYS):
            if attempt:  # after an await: the record may have been pruned meanwhile
                if self._closed:
                    raise PoolClosed("the client was closed")
                origin = self._origins.get(key) or self._new_origin(url, key)
            held = None if fresh else self._take_idle(origin)
            if held is None:
                held = self._take_stream(origin) if origin.shared else None
            acquired = 0.0
            try:
                if held is not None:
                    head = await held.connection.send(request, timeout)
                elif (
                    origin.http2 is False
                    and self._total < self.max_connections
                    and (self.max_connections_per_host is None or not self._at_host_cap(origin))
                ):  # a new HTTP/1.1 connection, with room for it: _acquire's first case, inline
                    self._take_place(origin)
                    held = await self._connect(origin, timeout.connect)
                    if self.timings:
                        acquired = perf_counter()
                    head = await held.connection.send(request, timeout)
                else:
                    got = await self._acquire(origin, request)
                    if type(got) is tuple:  # sent on a released connection: its response head
                        head = got
                    else:
                        held = got
                        if self.timings:
                            acquired = perf_counter()
                        head = await got.connection.send(request, timeout)
            except ConnectionNotAvailable:
                continue  # closed, or GOAWAY, before anything was sent
            except StaleConnection as exc:
                # The stale keep-alive race: the server closed a reused connection just as the
                # request went out. Replay once on a new connection if that is safe.
                error = exc.error
                if retried or request.method not in _IDEMPOTENT or not request.replayable:
                    raise error from error.__cause__
                retried = fresh = True
                if self.on_replay is not None:
                    self.on_replay(url.host)
                continue
            except StreamNotProcessed as exc:
                # Not processed, so safe to send again whatever the method (RFC 9113 section
                # 8.7), if the body can be sent again.
                if exc.progress:  # a server closing connections as it goes is not failing
                    drained += 1
                else:
                    replays += 1
                if replays > _REPLAYS or drained > _PROGRESS_REPLAYS:
                    raise
                if not request.replayable:
                    exc.args = (f"{exc.args[0]}; its body cannot be sent again: not resent",)
                    raise
                if self.on_replay is not None:
                    self.on_replay(url.host)
                continue
            origin.requests += 1
            status, version, headers, stream = head
            response = received_response(
                status, version, headers, stream, request, perf_counter() - started
            )
            if self.timings:
                timings = request_timings(started, acquired, held, stream)
                response.extensions = {**(response.extensions or {}), "timings": timings}
            return response
        raise ReadError("no usable connection could be obtained")  # pragma: no cover

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        if self._pool_timer is not None:
            self._pool_timer.cancel()
        for origin in self._waiting_origins:
            for waiter in origin.waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(PoolClosed("the client was closed"))
        for origin in self._origins.values():
            for held in list(origin.connections):
                held.connection.close()
            origin.idle.clear()
        self._lru.clear()
        self._lru_h2.clear()
        self.connector.close()

    def get_stats(self) -> PoolStats:
        """Per origin: see ``Origin.stats`` and ``PoolStats``."""
        return PoolStats((origin.label, origin.stats()) for origin in self._origins.values())

    # -- origin records -----------------------------------------------------------------------

    def _new_origin(self, url: URL, key: tuple[Any, ...]) -> Origin:
        """A record for a new origin (``key``: its origin, and its proxy when it has one). A
        crawler meets millions: past ``_origin_limit`` records the ones with nothing open,
        opening or waiting are dropped (their stats with them), and the limit doubles if most
        records are still busy, so the pruning stays amortised O(1)."""
        origins = self._origins
        if len(origins) >= self._origin_limit:
            self._origin_limit = prune(origins, self._origin_limit)
        proxy = key[3] if len(key) > 3 else None
        if url.origin[0] == "https":
            http2 = self.http2
        else:  # a forward proxy is spoken to in HTTP/1.1; through SOCKS, as directly
            http2 = self.http2_prior_knowledge and (proxy is None or proxy.is_socks)
        origin = origins[key] = Origin(url, http2, proxy)
        return origin

    # -- acquiring ----------------------------------------------------------------------------

    def _take_stream(self, origin: Origin) -> Held | None:
        """A place on a multiplexed connection of the origin, reserved for the caller."""
        if self.max_connections_per_host is not None and self._at_host_cap(origin):
            return None
        for held in origin.shared:
            connection = held.connection
            if connection.available > 0:
                connection.reserve()
                self._busy(held)
                return held
        return None

    async def _acquire(self, origin: Origin, request: Request) -> Any:
        """A connection (a Held record; for HTTP/2 with a place reserved) to send ``request``
        on, or, when the pool sent it on a released connection itself, its ResponseHead."""
        timeout = request.timeout
        seq = next(self._arrivals)  # the request's place in the queue, whatever it waits for
        while True:
            if origin.http2 is not False and (
                origin.connecting or any(not h.connection.ready for h in origin.shared)
            ):
                # HTTP/2 may be coming: wait for the one connection being set up rather than
                # open another (its places are handed out when its SETTINGS arrive).
                result = await self._wait(origin, request, seq, room=False)
            elif self._at_host_cap(origin):
                # Its own connections (or streams) will free up: wait for one of them.
                result = await self._wait(origin, request, seq, room=not origin.shared)
            elif self._total < self.max_connections:
                self._take_place(origin)
                return await self._connect(origin, timeout.connect)
            else:
                result = await self._wait(origin, request, seq, room=True)
            if result is GRANT or result is GROW:
                return await self._connect(origin, timeout.connect, result is GROW)
            if result is not _RETRY:
                return result
            held_stream = self._take_stream(origin) if origin.shared else None
            if held_stream is not None:
                return held_stream

    async def _wait(self, origin: Origin, request: Request, seq: int, room: bool) -> Any:
        """Queue for a connection; ``room``: for room under the global cap (then an idle
        connection elsewhere is closed to make it), else for a place on an HTTP/2 connection.

        What comes back is what ``_acquire`` returns, or GRANT, GROW or _RETRY. A connection
        released to this waiter may have sent its request already (``_on_idle``): then the
        task wakes once, with the response head, and a failure is the connection's to judge.
        The pool timeout is a deadline on the waiter, watched by one timer for every waiter
        (``_check_waiters``): no timer handle is made and cancelled per wait."""
        loop = self._loop
        assert loop is not None and self._pool_timer is not None
        waiter = Waiter(origin, loop.create_future(), seq, room, request)
        waiters = origin.waiters
        if waiters and waiters[-1].seq > seq:  # waiting again: its place is by arrival
            index = next(i for i, other in enumerate(waiters) if other.seq > seq)
            waiters.insert(index, waiter)
        else:
            waiters.append(waiter)
        self._waiting_origins.add(origin)
        origin.waiting += 1
        if room:
            self._room_waiting += 1
            if self._total >= self.max_connections and not self._room_coming():
                self._evict_idle()
        timeout = request.timeout.pool
        if timeout is not None:
            waiter.deadline = deadline = loop.time() + timeout
            self._pool_timer.arm(deadline)
        try:
            return await waiter.future
        except BaseException as exc:
            held = waiter.held
            if held is not None:  # its request was sent on a released connection
                error = held.connection.failed(exc, waiter.token, waiter.future)
                if error is exc:
                    raise
                raise error from exc
            future = waiter.future
            if (
                isinstance(exc, asyncio.CancelledError)
                and future.done()
                and not future.cancelled()
                and future.exception() is None
            ):
                self._give_back(origin, future.result())
            raise
        finally:
            if waiter.held is None:
                origin.waiting -= 1
            if room:
                self._room_waiting -= 1

    def _give_back(self, origin: Origin, result: Any) -> None:
        """A waiter was cancelled after it was served: pass on what it was given."""
        if result is GRANT or result is GROW:
            self._free_place(origin)
            if result is GROW:
                origin.connecting -= 1
            self._grant_capacity()
        elif result is not _RETRY:
            result.connection.unreserve()

    async def _connect(
        self, origin: Origin, connect_timeout: float | None, counted: bool = False
    ) -> Held:
        """Open a connection; the caller has already reserved its place under the global cap.

        A multiplexed connection comes back with a place reserved for the caller."""
        if not counted:
            origin.connecting += 1
        held = Held()
        try:
            held.phases = {} if self.timings else None
            connection = await self.connector.connect(
                origin,
                http2=origin.http2 is not False,
                timeout=connect_timeout,
                on_idle=partial(self._on_idle, held),
                on_lost=partial(self._on_lost, held),
                phases=held.phases,
            )
        except BaseException:
            origin.connecting -= 1
            self._free_place(origin)
            self._grant_capacity()
            if origin.http2 is not False:
                self._wake_pending(origin)
            raise
        origin.connecting -= 1
        held.connection = connection
        held.origin = origin
        self._debug = logger.isEnabledFor(logging.DEBUG)
        origin.connections.add(held)
        if self._closed:
            connection.close()
            raise PoolClosed("the client was closed")
        if connection.multiplexed:
            origin.http2 = True
            self._h2_sockets += 1
            connection.reserve()
            origin.shared.append(held)
            if connection.available > 0:  # its SETTINGS came already
                self._on_idle(held)
        elif origin.http2 is None:
            origin.http2 = False  # the server chose HTTP/1.1
            self._wake_pending(origin)
        if connection.is_closed:  # lost before it was ours: its report was not heard
            self._on_lost(held)
        return held

    @staticmethod
    def _wake_pending(origin: Origin) -> None:
        """What the waiters of an HTTP/2-capable origin counted on (a connection being set up,
        or places on one) is not coming: they look again."""
        origin.settle_waiters(_RETRY)

    # -- connections reporting back --------------------------------------------------------

    def _on_idle(self, held: Held) -> None:
        """A response completed and the connection may be reused (for a multiplexed one: a
        stream ended, or the server's SETTINGS allowed more streams)."""
        origin = held.origin
        if origin is None:
            return
        if held.connection.multiplexed:
            self._serve_streams(origin, held)
            return
        rival = None
        if self._waiting_origins:  # (nobody waits anywhere: the common case, nothing to look at)
            waiters = origin.waiters
            rival = self._rival(origin)
            waiter = next_waiter(origin, self._waiting_origins)
            if waiter is not None and (rival is None or waiter.seq < rival.seq):
                # Straight to the next waiter of the origin: its request goes out now, and its
                # task wakes once, with the response head (else it sends on this connection).
                waiters.popleft()
                if not waiters:
                    self._waiting_origins.discard(origin)
                request = waiter.request
                token = held.connection.start(request, request.timeout, waiter.future)
                if token:
                    waiter.held = held
                    waiter.token = token
                    origin.waiting -= 1
                else:
                    waiter.future.set_result(held)
                return
        if self._closed or rival is not None:
            # At the cap, waiters are served in arrival order across origins: the oldest is
            # another origin's, so this connection closes to make room for it.
            self._discard(held)
            return
        idle = origin.idle
        if len(idle) >= self.max_keepalive_connections:
            self._discard(held)
            return
        assert self._loop is not None
        held.idle_since = self._loop.time()  # (it was not idle: it served a request)
        self._lru[held] = None
        idle.append(held)
        self._arm_sweep()

    def _serve_streams(self, origin: Origin, held: Held) -> None:
        connection = held.connection
        waiters = origin.waiters
        rival = self._rival(origin)
        while (
            connection.available > 0
            and not self._at_host_cap(origin)
            and (waiter := next_waiter(origin, self._waiting_origins)) is not None
        ):
            if rival is not None and rival.seq < waiter.seq and not self._h1_out():
                # At the cap another origin's request came first, and no HTTP/1.1 connection
                # in use will free a place for it: this connection takes no new streams and
                # closes when those in flight end, to make room. (While one is in use, its
                # release makes the room, and the origin's many requests keep this one.)
                connection.drain()
                return
            waiters.popleft()
            connection.reserve()
            self._busy(held)
            waiter.future.set_result(held)
        if not waiters:
            self._waiting_origins.discard(origin)
        elif (
            not origin.connecting
            and self._total < self.max_connections
            and not self._at_host_cap(origin)
            and not any(h.connection.available > 0 or not h.connection.ready for h in origin.shared)
        ):
            # Every stream is taken and requests queue: the first of them opens a connection
            # (one at a time; those behind it get places when its SETTINGS arrive).
            while waiters:
                waiter = waiters.popleft()
                if not waiter.future.done():
                    self._take_place(origin)
                    origin.connecting += 1
                    waiter.future.set_result(GROW)
                    break
        if connection.in_use == 0 and self._loop is not None:
            if rival is not None and not self._h1_out():
                self._discard(held)  # another origin waits for room, and only this makes it
                return
            self._idle_from(held, self._loop.time())

    def _on_lost(self, held: Held) -> None:
        """The connection can serve no more requests; once its socket is gone, its place is free.

        The connection reports twice: when it stops being usable (it leaves the stats at once)
        and from ``connection_lost``, which asyncio calls just before closing the socket. Only
        then does a waiter get its place, so the cap holds for sockets, not only for objects.
        """
        origin = held.origin
        if origin is None:
            return
        connection = held.connection
        if not held.ended:  # its first report
            held.ended = True
            if self._debug:
                logger.debug("connection to %s closed", origin.label)
            self._retire(held)
        elif connection.multiplexed:  # (a draining one may have gone idle since)
            self._retire(held)
        if connection.multiplexed:
            self._wake_pending(origin)
            if not connection.socket_closed:
                return  # draining after GOAWAY: still a socket under the cap
            origin.connections.discard(held)
        if connection.socket_closed:
            held.origin = None
            if held.closing:
                held.closing = False
                self._closing -= 1
            if connection.multiplexed:
                self._h2_sockets -= 1
            self._free_place(origin)
            self._grant_capacity()
