"""The pool's two caps, as a mixin of ConnectionPool: the global ``max_connections`` and the
per-origin ``max_connections_per_host``, and who gets room under them.

A socket counts under both from the moment it is about to open until it is gone
(``_take_place``/``_free_place``). Room goes to the longest-waiting request of an origin that
can use it (``_grant_capacity``): not one at its per-host cap, nor one whose HTTP/2 connection
is being set up (``_blocked``). At the global cap a released connection may be closed for an
older waiter of another origin (``_rival``), and an idle connection makes room for a new waiter
(net/idle.py). Room already coming (sockets the pool closed, not yet gone) is counted against
the requests waiting for it (``_room_coming``), so that one request at the cap closes one
connection, not one per connection released while its room is on the way.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from .origin import Held, Origin, Waiter, fail_late_waiters, oldest_waiter

__all__ = ["GRANT", "GROW", "Caps"]

GRANT = object()  # a waiter's result meaning "capacity is reserved for you: connect"
GROW = object()  # "the origin's HTTP/2 streams ran out: open one more connection" (counted)


class Caps:
    """The cap bookkeeping of ``ConnectionPool``; these attributes are the pool's."""

    max_connections: int
    max_connections_per_host: int | None
    _total: int
    _lru: OrderedDict[Held, None]
    _closing: int
    _room_waiting: int
    _h2_sockets: int
    _origins: dict[tuple[Any, ...], Origin]
    _waiting_origins: set[Origin]
    _loop: asyncio.AbstractEventLoop | None

    def _at_host_cap(self, origin: Origin) -> bool:
        """Whether the origin has as many sockets (HTTP/2: streams in flight) as
        ``max_connections_per_host`` allows."""
        cap = self.max_connections_per_host
        if cap is None:
            return False
        if origin.shared:
            return sum(h.connection.in_use for h in origin.shared) >= cap
        return origin.sockets >= cap

    def _take_place(self, origin: Origin) -> None:
        """A socket is about to open for ``origin``: it counts under both caps from now."""
        self._total += 1
        origin.sockets += 1

    def _free_place(self, origin: Origin) -> None:
        """A socket of ``origin`` is gone (or never opened): its place under both caps is free."""
        self._total -= 1
        origin.sockets -= 1

    def _check_waiters(self) -> float:
        """The pool timer came: fail the waiters past their deadline; the next deadline."""
        assert self._loop is not None
        return fail_late_waiters(self._waiting_origins, self._loop.time())

    def _room_coming(self) -> bool:
        """Whether the sockets the pool closed and that are not gone yet free as many places as
        requests wait for (each place goes to the oldest of them as its socket goes)."""
        return self._closing >= self._room_waiting

    def _h1_out(self) -> bool:
        """Whether some HTTP/1.1 connection is in use or opening: its release will make room.
        (Every socket under the cap is HTTP/2, idle, being closed, or that; connections being
        set up for an origin that may speak HTTP/2 count here until ALPN tells.)"""
        return self._total - self._h2_sockets - len(self._lru) - self._closing > 0

    def _rival(self, origin: Origin) -> Waiter | None:
        """At the cap, the longest-waiting request of another origin that needs room no
        connection being closed will give it."""
        waiting = self._waiting_origins
        if self._total < self.max_connections or not waiting or self._room_coming():
            return None
        if len(waiting) == 1 and origin in waiting:
            return None  # (the common case under load: nothing to look through)
        return oldest_waiter(waiting, origin, self._blocked)

    def _oldest_waiter(self) -> Waiter | None:
        return oldest_waiter(self._waiting_origins, None, self._blocked)

    def _blocked(self, origin: Origin) -> bool:
        """Room under the global cap is of no use to the waiters of an origin at its per-host
        cap, or of one whose HTTP/2 connection is being set up (they get its streams)."""
        if origin.http2 is not False and (
            origin.connecting or any(not h.connection.ready for h in origin.shared)
        ):
            return True
        return self.max_connections_per_host is not None and self._at_host_cap(origin)

    def _grant_capacity(self) -> None:
        """Room under the global cap: the oldest waiter for room (of any origin below its
        per-host cap) may connect."""
        while self._waiting_origins and self._total < self.max_connections:
            waiter = self._oldest_waiter()
            if waiter is None:
                return
            origin = waiter.origin
            origin.waiters.remove(waiter)
            self._take_place(origin)
            if origin.http2 is not False:
                # HTTP/2 may be spoken there: this one connects, counted as connecting at once,
                # and the origin's other waiters wait for its streams (see _blocked).
                origin.connecting += 1
                waiter.future.set_result(GROW)
            else:
                waiter.future.set_result(GRANT)
