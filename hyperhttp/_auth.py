"""Authentication: Basic, Bearer, and any function of a request, as flows (Digest is in
_digest.py).

An auth is a generator that yields requests and is sent the responses to them: it yields the
request it was given (with credentials added), sees the response, and may yield the request once
more (Digest answering a challenge). The Client drives the flow and returns the last response, so
an auth never touches a connection and is tested by feeding it responses built by hand.
"""

from __future__ import annotations

import base64
import inspect
from typing import AsyncGenerator, Callable, Generator, Tuple, Union
from urllib.parse import unquote_to_bytes, urlsplit

from ._models import Response
from ._request import Request
from ._url import URL

__all__ = [
    "Auth",
    "AuthTypes",
    "BasicAuth",
    "BearerAuth",
    "FunctionAuth",
    "to_auth",
    "url_auth",
]


class Auth:
    """Base class. Subclasses override ``auth_flow`` (a sync generator) or ``async_auth_flow``.

    The flow yields a request, is sent its response, and either yields the next request or ends;
    the last response is the one the caller gets. ``requires_response_body``: the Client reads each
    response's body before handing it to the flow (for schemes that look at the body).
    """

    requires_response_body: bool = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Yield the requests to send, receiving each one's response; this base sends ``request``.

        :param request: the request to authenticate; changing it in place is allowed.
        """
        yield request

    async def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        """Drive ``auth_flow``: yield its requests, send it the responses.

        Override it instead of ``auth_flow`` for a flow that must await something.

        :param request: the request to authenticate.
        """
        flow = self.auth_flow(request)
        try:
            request = next(flow)
            while True:
                response = yield request
                try:
                    request = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()


def _utf8(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class BasicAuth(Auth):
    """``Authorization: Basic base64(user ":" password)`` on every request (RFC 7617).

    Text is encoded as UTF-8 (RFC 7617 section 2.1, ``charset="UTF-8"``); bytes are sent as given.
    A user-id with a colon cannot be told apart from the password, so it is refused.

    :param username: the user-id.
    :param password: the password.
    :raises ValueError: when ``username`` holds a colon.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        user = _utf8(username)
        if b":" in user:
            raise ValueError("a Basic auth user-id cannot contain ':' (RFC 7617 section 2)")
        self.username = username
        credentials = base64.b64encode(user + b":" + _utf8(password)).decode("ascii")
        self._header = f"Basic {credentials}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Set the Authorization field of ``request`` and send it.

        :param request: the request to authenticate.
        """
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class BearerAuth(Auth):
    """``Authorization: Bearer <token>`` on every request (RFC 6750 section 2.1).

    :param token: the token: printable ASCII, without spaces.
    :raises TypeError: when ``token`` is not a str.
    :raises ValueError: when ``token`` is empty or holds a space or a character that is not
        printable ASCII.
    """

    def __init__(self, token: str) -> None:
        if not isinstance(token, str):
            raise TypeError(f"a bearer token must be a str, not {type(token).__name__}")
        if not token or not all("!" <= c <= "~" for c in token):
            raise ValueError("a bearer token must be non-empty printable ASCII without spaces")
        self._header = f"Bearer {token}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Set the Authorization field of ``request`` and send it.

        :param request: the request to authenticate.
        """
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class FunctionAuth(Auth):
    """A plain function ``request -> request`` as an auth.

    The function may change the request in place (headers are live) or return another one.
    Async functions need an Auth subclass overriding ``async_auth_flow``.

    :param func: the function, called with each request; it returns the request to send.
    """

    def __init__(self, func: Callable[[Request], Request]) -> None:
        self.func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send what the function returns for ``request``.

        :param request: the request to authenticate.
        :raises TypeError: when the function is async, or returns something other than a
            Request.
        """
        result = self.func(request)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited, on purpose: no RuntimeWarning
            raise TypeError(
                f"auth function {self.func!r} is async; subclass hyperhttp.Auth and override "
                "async_auth_flow instead"
            )
        if not isinstance(result, Request):
            raise TypeError(
                f"auth function {self.func!r} returned {type(result).__name__}, not the Request "
                "(return the request, changed or new)"
            )
        yield result


AuthTypes = Union[
    Auth, Tuple[Union[str, bytes], Union[str, bytes]], Callable[[Request], Request], None
]


def to_auth(value: AuthTypes) -> Auth | None:
    """``auth=`` shorthands: None, an Auth, a ``(username, password)`` tuple (Basic) or a callable."""
    if value is None:
        return None
    if isinstance(value, Auth):
        return value
    if isinstance(value, tuple):
        if len(value) != 2:
            raise TypeError(f"an auth tuple is (username, password), not {len(value)} items")
        return BasicAuth(value[0], value[1])
    if callable(value):
        return FunctionAuth(value)
    raise TypeError(
        "auth must be an Auth, a (username, password) tuple or a callable, "
        f"not {type(value).__name__}"
    )


def url_auth(url: URL | str) -> BasicAuth | None:
    """Basic credentials from a URL's userinfo (``http://user:pass@host/``), percent-decoded.

    ``URL`` keeps userinfo as written, still percent-encoded, so it is decoded here (to text when it
    is UTF-8, else the bytes are kept). A ``str`` is split as it is: use it when the URL has been
    through a ``URL`` round trip, which re-encodes the userinfo. None when there is no userinfo.
    """
    if isinstance(url, URL):
        username, password = url.username, url.password
    else:
        split = urlsplit(url)
        username, password = split.username or "", split.password or ""
    if not username and not password:
        return None
    return BasicAuth(_percent_decoded(username), _percent_decoded(password))


def _percent_decoded(value: str) -> str | bytes:
    raw = unquote_to_bytes(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


# -- challenges (RFC 9110 section 11.6.1) ---------------------------------------------------------
