"""One timer per connection for the response-head deadlines of request after request.

The timer is not cancelled when a response arrives in time: when it fires, the connection's
``check`` looks at what is waiting now, fails what is late and names the next deadline to watch,
for which the same timer is armed again. That saves a timer handle per request (arming and
cancelling one is a measurable share of a small request's cost).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

__all__ = ["DEAD_TIMER", "LazyTimer"]


class LazyTimer:
    """Fires at the earliest deadline it was armed for; ``check()`` returns the next one (0.0:
    nothing to watch until ``arm`` is called again)."""

    __slots__ = ("_loop", "_check", "_handle", "_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, check: Callable[[], float]) -> None:
        self._loop = loop
        self._check = check
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0

    def arm(self, deadline: float) -> None:
        handle = self._handle
        if handle is None or deadline < self._at:
            if handle is not None:
                handle.cancel()
            self._at = deadline
            self._handle = self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        handle = self._handle
        if handle is not None:
            self._handle = None
            handle.cancel()

    def _fire(self) -> None:
        self._handle = None
        due = self._check()
        if due:
            self._at = due
            self._handle = self._loop.call_at(due, self._fire)


class _DeadTimer:
    """The timer of a lost connection: arming it does nothing (see H1Connection.connection_lost)."""

    __slots__ = ()

    def arm(self, deadline: float) -> None:
        pass

    def cancel(self) -> None:
        pass


DEAD_TIMER: Any = _DeadTimer()
