"""The pool's idle connections, as a mixin of ConnectionPool: kept per origin (an HTTP/1.1
connection in its origin's ``idle`` deque, LIFO, so that hot ones stay warm), and across origins
in least-recently-used order, HTTP/1.1 and HTTP/2 apart (``_lru``, ``_lru_h2``).

The front of the LRU makes room at the global cap (``_evict_idle``) and is the first to expire
(``_sweep``): both in O(1) however many origins the pool has met. An HTTP/2 connection carries
a whole origin (and cost a TLS handshake): it goes only when no HTTP/1.1 one can make room.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Callable

from .origin import Held, Origin

__all__ = ["IdleConnections"]

logger = logging.getLogger("hyperhttp")


class IdleConnections:
    """The idle bookkeeping of ``ConnectionPool``; these attributes are the pool's."""

    keepalive_expiry: float | None
    _lru: OrderedDict[Held, None]
    _lru_h2: OrderedDict[Held, None]
    _closing: int
    _closed: bool
    _debug: bool
    _loop: asyncio.AbstractEventLoop | None
    _sweep_handle: asyncio.TimerHandle | None
    _h1_out: Callable[[], bool]  # (Caps)

    def _idle_from(self, held: Held, now: float) -> None:
        lru = self._lru_h2  # (only multiplexed connections are idle with streams ended)
        if held.idle_since:
            lru.move_to_end(held)  # idle again: to the end
        else:
            lru[held] = None
        held.idle_since = now
        self._arm_sweep()

    def _arm_sweep(self) -> None:
        """The expiry sweep, keepalive_expiry from now, unless one is due already (or nothing
        expires)."""
        if self._sweep_handle is None and self.keepalive_expiry is not None:
            assert self._loop is not None
            self._sweep_handle = self._loop.call_later(self.keepalive_expiry, self._sweep)

    def _busy(self, held: Held) -> None:
        if held.idle_since:
            held.idle_since = 0.0
            del (self._lru_h2 if held.connection.multiplexed else self._lru)[held]

    def _take_idle(self, origin: Origin) -> Held | None:
        idle = origin.idle
        while idle:
            held = idle.pop()
            held.idle_since = 0.0  # (every connection in ``idle`` is counted idle)
            del self._lru[held]
            if held.connection.is_idle:
                if self._debug:
                    logger.debug("reusing a connection to %s", origin.label)
                return held
            self._retire(held)  # closing; its connection_lost has not run yet
        return None

    def _retire(self, held: Held) -> None:
        """Take a connection out of the idle set and the counts; it is not handed out again."""
        origin = held.origin
        assert origin is not None
        was_idle = held.idle_since
        self._busy(held)
        if held.connection.multiplexed:
            if held in origin.shared:
                origin.shared.remove(held)
            return
        if was_idle:
            try:
                origin.idle.remove(held)
            except ValueError:
                pass
        origin.connections.discard(held)

    def _discard(self, held: Held) -> None:
        """Close a connection the pool no longer wants (its place frees when the socket is gone)."""
        connection = held.connection
        if held.origin is not None:
            self._retire(held)
            if not held.closing and connection.in_use == 0 and not connection.socket_closed:
                # Nothing in flight: its socket goes within a turn of the loop, and its place
                # with it (see _room_coming).
                held.closing = True
                self._closing += 1
        connection.close()

    def _sweep(self) -> None:
        """Close connections idle for longer than keepalive_expiry; come back for the rest."""
        self._sweep_handle = None
        expiry = self.keepalive_expiry
        loop = self._loop
        if expiry is None or loop is None or self._closed:
            return
        oldest_kept = loop.time() - expiry
        next_due = 0.0
        for lru in (self._lru, self._lru_h2):
            while lru:  # least recently used first: until the first one to keep
                held = next(iter(lru))
                if held.idle_since > oldest_kept:
                    due = held.idle_since + expiry
                    next_due = min(next_due, due) if next_due else due
                    break
                self._discard(held)
                lru.pop(held, None)  # (discarding took it out: a guard)
        if next_due:
            self._sweep_handle = loop.call_at(next_due, self._sweep)

    def _evict_idle(self) -> None:
        """At the global cap, the least recently used idle connection (of another origin: the
        waiting one has none, or it would not wait) makes room: an HTTP/1.1 one, else an
        HTTP/2 one unless some HTTP/1.1 connection in use will free a place."""
        for held in self._lru:
            self._discard(held)
            return
        if not self._h1_out():
            for held in self._lru_h2:
                self._discard(held)
                return
