"""HTTP/1.1 to a forward proxy, for ``http://`` URLs: each request goes to the proxy in absolute
form (``GET http://example.com/path HTTP/1.1``, RFC 9112 section 3.2.2), with the proxy's
credentials in Proxy-Authorization, a field meant for the proxy alone (RFC 9110 section 11.7.2),
which it does not pass on. The connection is otherwise an ``H1Connection``; a direct one never
pays for any of this.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterable, Iterable, Protocol

from ..exceptions import ProxyError
from .base import FieldBlock, Header, OutgoingRequest, ResponseHead, Timeouts
from .h1 import H1Connection

__all__ = ["ForwardingH1Connection"]


class _Origin(Protocol):
    """What the absolute form is made of: the URL's scheme, authority and target."""

    scheme: str
    host_header: bytes
    target: bytes


class _AbsoluteTarget:
    __slots__ = ("target",)

    def __init__(self, target: bytes) -> None:
        self.target = target


class _Forwarded:
    """``request`` as a forward proxy gets it: its target in absolute form, the proxy's
    Proxy-Authorization (if any) among its fields."""

    __slots__ = ("method_bytes", "content", "stream", "chunked", "stream_length", "fields", "url")

    def __init__(self, request: OutgoingRequest, authorization: Header | None) -> None:
        origin: _Origin = request.url  # type: ignore[assignment]
        self.method_bytes = request.method_bytes
        self.content: bytes | bytearray | memoryview | None = request.content
        self.stream: Iterable[bytes] | AsyncIterable[bytes] | None = request.stream
        self.chunked = request.chunked
        self.stream_length = request.stream_length
        host, block, own = request.fields
        fields: tuple[bytes, FieldBlock, list[Header]] = (host, block, own)
        if authorization is not None:
            fields = (host, block, [*own, authorization])
        self.fields = fields
        self.url = _AbsoluteTarget(
            b"%s://%s%s" % (origin.scheme.encode("ascii"), origin.host_header, origin.target)
        )


class ForwardingH1Connection(H1Connection):
    """An HTTP/1.1 connection to a forward proxy (see the module). A 407 from the proxy (its
    credentials missing or refused) is a ProxyError rather than a response: no origin sent it.
    ``proxy`` names the proxy in that error, without its credentials."""

    __slots__ = ("_authorization", "_proxy")

    def __init__(
        self,
        *args: object,
        authorization: bytes | None = None,
        proxy: str = "the proxy",
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._authorization: Header | None = (
            (b"Proxy-Authorization", authorization) if authorization is not None else None
        )
        self._proxy = proxy

    async def send(self, request: OutgoingRequest, timeout: Timeouts) -> ResponseHead:
        head = await super().send(_Forwarded(request, self._authorization), timeout)
        if head[0] == 407:
            raise self._refused(head)
        return head

    def start(
        self,
        request: OutgoingRequest,
        timeout: Timeouts,
        waiter: asyncio.Future[ResponseHead],
    ) -> int:
        """Never: a request to a proxy goes through ``send``, where a 407 becomes an error."""
        return 0

    def _refused(self, head: ResponseHead) -> ProxyError:
        head[3].close()  # the rest of the 407's body, if any, goes with the connection
        given = "were refused" if self._authorization is not None else "are needed"
        return ProxyError(
            f"{self._proxy} answered 407 Proxy Authentication Required: its credentials {given}",
            status_code=407,
        )
