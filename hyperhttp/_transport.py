"""The Transport interface: what the Client hands a prepared Request to.

The connection pool implements it over real sockets; MockTransport implements it over a handler
function. Everything above it (redirects, auth, cookies, hooks, decoding) works the same on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import Response
    from ._request import Request

__all__ = ["Transport"]


class Transport:
    """Sends one request and returns its response as soon as the head has arrived."""

    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request``; the returned Response's body is read lazily from its stream.

        :param request: the request, its fields and framing already merged by the Client.
        :raises NotImplementedError: in this base class; a transport overrides it.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release every resource (connections, sockets, timers) the transport holds."""

    def get_stats(self) -> dict[str, dict[str, int]]:
        """Return counters per origin; transports without a pool have none."""
        return {}
