"""Redirect hops (RFC 9110 section 15.4): the next request, and what is done with the last
response. The loop that follows them is ``Client._send_following``."""

from __future__ import annotations

from typing import Any

from ._headers import Headers
from ._models import Response
from ._request import Request
from .exceptions import HyperHTTPError, InvalidURL, RemoteProtocolError, StreamConsumed

__all__ = ["discard", "redirect_request"]


async def discard(response: Response) -> None:
    """Done with a response the user will not see (a redirect, an auth challenge): a small body
    is read so its connection can be reused; a large or unknown one is dropped with it."""
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= 65536:
        try:
            await response.aread()
            return
        except HyperHTTPError:
            pass
    await response.aclose()


def redirect_request(
    request: Request, response: Response, location: str, user_cookie: str | None
) -> Request:
    """The next hop (RFC 9110 section 15.4)."""
    try:
        url = request.url.join(location)
    except InvalidURL as exc:
        raise RemoteProtocolError(f"redirect to an invalid Location {location!r}: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise RemoteProtocolError(f"redirect to an unsupported URL {location!r}")
    status = response.status_code
    method = request.method
    if (status == 303 and method != "HEAD") or (
        status in (301, 302) and method not in ("GET", "HEAD")
    ):
        method = "GET"  # and the body is dropped; 307 and 308 keep both
    headers = Headers(request.headers)
    headers.pop("host", None)
    content: Any = None
    if method != request.method:
        for name in ("content-length", "content-type", "transfer-encoding"):
            headers.pop(name, None)
    else:
        content = request.content if request.content is not None else request.stream
        if request.stream is not None and not request.replayable:
            raise StreamConsumed(
                f"cannot follow the {status} redirect to {url}: the request body was a stream "
                "that cannot be sent again (pass bytes, a file path or a seekable file instead)"
            )
    old_scheme, old_host, old_port = request.url.origin
    new_scheme, new_host, new_port = url.origin
    upgrade = (old_scheme, new_scheme, old_port, new_port) == ("http", "https", 80, 443)
    headers.pop("cookie", None)
    if url.origin != request.url.origin and not (upgrade and old_host == new_host):
        for name in ("authorization", "proxy-authorization"):
            headers.pop(name, None)
    elif user_cookie:
        headers["Cookie"] = user_cookie
    return Request(method, url, headers=headers, content=content, timeout=request.timeout)
