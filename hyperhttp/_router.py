"""Router: a mock handler that dispatches on method, path, host and query, first match wins.

What users of respx and pytest-httpx reach for: an exact path or an absolute URL, a path prefix, a
regular expression, a host, query parameters; every route counts its calls, and an unmatched
request says which request it was and which routes there are. A strict Router raises for it
(``UnmatchedRequest``); a lenient one answers with ``default`` (404 unless given, as in 2.x).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Union
from urllib.parse import parse_qs

from ._mock import (
    Handler,
    HandlerFunction,
    MockError,
    MockResponse,
    UnmatchedRequest,
    to_handler,
)
from ._request import Request
from ._url import URL

__all__ = ["Route", "Router"]

PathPattern = Union[str, "re.Pattern[str]", None]
HostPattern = Union[str, "re.Pattern[str]", None]
ParamsPattern = Union[Mapping[str, Any], None]


def _normal_path(path: str) -> str:
    """``path`` quoted as the client quotes a request's path, so ``/a b`` matches ``/a%20b``."""
    return URL(f"http://h{path}").path or "/"


class Route:
    """One route: what it matches, its handler, and the requests it answered (``calls``).

    Made by ``Router.route`` and the verb shortcuts, which take the same arguments.

    :param method: the method matched, or ``"*"`` for any.
    :param path: an exact path, an absolute URL, a compiled regular expression, or None for any.
    :param handler: the handler of matching requests, in any form MockTransport takes.
    :param host: a host name or a compiled regular expression; None for any.
    :param params: query parameters the request must have, with these values.
    :param prefix: match the paths that start with ``path``.
    :raises TypeError: when ``method``, ``path`` or ``handler`` is of the wrong type.
    :raises ValueError: when ``path`` neither starts with ``/`` nor is an absolute URL, the
        host is given twice, or ``prefix`` goes with a path that is not a string.
    """

    __slots__ = ("method", "scheme", "host", "port", "path", "prefix", "params", "handler", "calls")

    def __init__(
        self,
        method: str,
        path: PathPattern,
        handler: Handler,
        *,
        host: HostPattern = None,
        params: ParamsPattern = None,
        prefix: bool = False,
    ) -> None:
        if not isinstance(method, str) or not method:
            raise TypeError("a route's method is a string such as 'GET', or '*' for any")
        self.method = method.upper()
        self.scheme: str | None = None
        self.port: int | None = None
        query: dict[str, list[str]] = {}
        if isinstance(path, str) and "://" in path:
            if host is not None:
                raise ValueError("give the host in the URL or as host=, not both")
            url = URL(path)
            self.scheme, host, self.port = url.scheme, url.host, url.effective_port
            query = parse_qs(url.query, keep_blank_values=True)
            path = url.path or "/"
        elif isinstance(path, str):
            if not path.startswith("/"):
                raise ValueError(
                    f"a route's path starts with '/' or is an absolute URL, not {path!r}"
                )
            path = _normal_path(path)
        elif path is not None and not isinstance(path, re.Pattern):
            raise TypeError(
                "a route's path is a string, a compiled regular expression or None (any path)"
            )
        if prefix and not isinstance(path, str):
            raise ValueError("prefix=True takes a path string")
        self.path = path
        self.prefix = prefix
        self.host = host.lower() if isinstance(host, str) else host
        for name, value in (params or {}).items():
            values = value if isinstance(value, (list, tuple)) else [value]
            query[name] = [str(v) for v in values]
        self.params = query
        self.handler: HandlerFunction = to_handler(handler)
        self.calls: list[Request] = []

    @property
    def called(self) -> bool:
        """Whether the route answered a request."""
        return bool(self.calls)

    @property
    def call_count(self) -> int:
        """The number of requests the route answered."""
        return len(self.calls)

    def matches(self, request: Request) -> bool:
        """Return whether ``request`` matches the route.

        :param request: the request, as the server received it.
        """
        url = request.url
        if self.method != "*" and self.method != request.method:
            return False
        if self.scheme is not None and (
            self.scheme != url.scheme or self.port != url.effective_port
        ):
            return False
        host = self.host
        if host is not None:
            if isinstance(host, str) and host != url.host:
                return False
            if isinstance(host, re.Pattern) and host.fullmatch(url.host) is None:
                return False
        path = self.path
        if path is not None:
            got = url.path or "/"
            if isinstance(path, re.Pattern):
                if path.fullmatch(got) is None:
                    return False
            elif not (got.startswith(path) if self.prefix else got == path):
                return False
        if self.params:
            query = parse_qs(url.query, keep_blank_values=True)
            return all(query.get(name) == values for name, values in self.params.items())
        return True

    def __repr__(self) -> str:
        target = "(any path)" if self.path is None else _shown(self.path)
        if self.prefix:
            target += "*"
        if self.scheme is not None:
            target = f"{self.scheme}://{self.host}:{self.port}{target}"
        elif self.host is not None:
            target = f"{target} host={_shown(self.host)}"
        query = f" params={self.params}" if self.params else ""
        return f"<Route {self.method} {target}{query}: called {len(self.calls)} times>"


def _shown(pattern: str | re.Pattern[str]) -> str:
    return f"re({pattern.pattern!r})" if isinstance(pattern, re.Pattern) else pattern


class Router:
    """A mock handler that answers each request with the first route that matches it.

    ``route(method, path, handler)`` and the verb shortcuts add routes (each returns the
    router, so they chain).

    ``path`` is an exact path (``"/users"``), an absolute URL (scheme, host, port and path must
    match; its query is a ``params`` pattern), a compiled regular expression matched against the
    whole path, or None for any; ``prefix=True`` matches paths that start with ``path``.
    ``host=`` is a host name or a regular expression; ``params=`` query parameters that must be
    present with these values (others may be there too). ``method`` ``"*"`` is any method.

    An unmatched request is recorded in ``unmatched``; a ``strict`` router raises
    UnmatchedRequest for it, naming the request and the routes; otherwise ``default`` answers
    (a 404 whose text says the same, when not given).

    :param default: the handler of unmatched requests, in any form MockTransport takes.
    :param strict: raise UnmatchedRequest for an unmatched request.
    """

    def __init__(self, *, default: Handler | None = None, strict: bool = False) -> None:
        self.routes: list[Route] = []
        self.calls: list[Request] = []
        self.unmatched: list[Request] = []
        self.strict = strict
        self.default: HandlerFunction | None = None if default is None else to_handler(default)

    @classmethod
    def from_mapping(cls, mapping: Mapping[Any, Handler]) -> Router:
        """Build a Router from ``{"GET /path": handler}``.

        A key is ``"METHOD /path"``, ``"/path"`` (GET, as in 2.x), ``"METHOD https://host/path"``,
        an absolute URL (GET), or a ``(method, path)`` pair.

        :param mapping: the routes, key to handler, in order.
        :raises ValueError: when a string key has more than two words.
        :raises TypeError: when a key is neither a string nor a pair.
        """
        router = cls()
        for key, handler in mapping.items():
            if isinstance(key, tuple) and len(key) == 2:
                method, path = key
            elif isinstance(key, str):
                words = key.split()
                if len(words) == 1:
                    method, path = "GET", words[0]
                elif len(words) == 2:
                    method, path = words
                else:
                    raise ValueError(f"a mock mapping key is 'METHOD /path', not {key!r}")
            else:
                raise TypeError(f"a mock mapping key is a string, not {type(key).__name__}")
            router.route(method, path, handler)
        return router

    def route(
        self,
        method: str,
        path: PathPattern,
        handler: Handler,
        *,
        host: HostPattern = None,
        params: ParamsPattern = None,
        prefix: bool = False,
    ) -> Router:
        """Add a route and return the router.

        :param method: the method matched, or ``"*"`` for any.
        :param path: an exact path, an absolute URL, a compiled regular expression, or None for
            any.
        :param handler: the handler of matching requests.
        :param host: a host name or a compiled regular expression; None for any.
        :param params: query parameters the request must have, with these values.
        :param prefix: match the paths that start with ``path``.
        :raises TypeError: when an argument is of the wrong type (see ``Route``).
        :raises ValueError: when an argument is invalid (see ``Route``).
        """
        self.routes.append(Route(method, path, handler, host=host, params=params, prefix=prefix))
        return self

    def get(self, path: PathPattern, handler: Handler, **match: Any) -> Router:
        """Add a GET route and return the router.

        :param path: the path pattern, as ``route`` takes it.
        :param handler: the handler of matching requests.
        :param match: ``host``, ``params`` or ``prefix``, as ``route`` takes them.
        """
        return self.route("GET", path, handler, **match)

    def post(self, path: PathPattern, handler: Handler, **match: Any) -> Router:
        """Add a POST route and return the router.

        :param path: the path pattern, as ``route`` takes it.
        :param handler: the handler of matching requests.
        :param match: ``host``, ``params`` or ``prefix``, as ``route`` takes them.
        """
        return self.route("POST", path, handler, **match)

    def put(self, path: PathPattern, handler: Handler, **match: Any) -> Router:
        """Add a PUT route and return the router.

        :param path: the path pattern, as ``route`` takes it.
        :param handler: the handler of matching requests.
        :param match: ``host``, ``params`` or ``prefix``, as ``route`` takes them.
        """
        return self.route("PUT", path, handler, **match)

    def patch(self, path: PathPattern, handler: Handler, **match: Any) -> Router:
        """Add a PATCH route and return the router.

        :param path: the path pattern, as ``route`` takes it.
        :param handler: the handler of matching requests.
        :param match: ``host``, ``params`` or ``prefix``, as ``route`` takes them.
        """
        return self.route("PATCH", path, handler, **match)

    def delete(self, path: PathPattern, handler: Handler, **match: Any) -> Router:
        """Add a DELETE route and return the router.

        :param path: the path pattern, as ``route`` takes it.
        :param handler: the handler of matching requests.
        :param match: ``host``, ``params`` or ``prefix``, as ``route`` takes them.
        """
        return self.route("DELETE", path, handler, **match)

    def head(self, path: PathPattern, handler: Handler, **match: Any) -> Router:
        """Add a HEAD route and return the router.

        :param path: the path pattern, as ``route`` takes it.
        :param handler: the handler of matching requests.
        :param match: ``host``, ``params`` or ``prefix``, as ``route`` takes them.
        """
        return self.route("HEAD", path, handler, **match)

    def options(self, path: PathPattern, handler: Handler, **match: Any) -> Router:
        """Add a OPTIONS route and return the router.

        :param path: the path pattern, as ``route`` takes it.
        :param handler: the handler of matching requests.
        :param match: ``host``, ``params`` or ``prefix``, as ``route`` takes them.
        """
        return self.route("OPTIONS", path, handler, **match)

    def __call__(self, request: Request) -> Any:
        self.calls.append(request)
        for route in self.routes:
            if route.matches(request):
                route.calls.append(request)
                return route.handler(request)
        self.unmatched.append(request)
        if self.strict:
            raise UnmatchedRequest(self.describe_unmatched(request))
        if self.default is not None:
            return self.default(request)
        return MockResponse(404, text=self.describe_unmatched(request))

    def describe_unmatched(self, request: Request) -> str:
        """Return a message naming ``request`` and listing the routes.

        :param request: the request no route matched.
        """
        routes = "\n".join(f"  {route!r}" for route in self.routes) or "  (none)"
        return f"no route matches {request.method} {request.url}\nroutes:\n{routes}"

    def assert_all_called(self) -> None:
        """Raise MockError naming every route no request reached."""
        idle = [route for route in self.routes if not route.calls]
        if idle:
            listed = "\n".join(f"  {route!r}" for route in idle)
            raise MockError(f"{len(idle)} route(s) were never called:\n{listed}")

    def reset(self) -> None:
        """Forget every recorded call (the routes stay)."""
        self.calls.clear()
        self.unmatched.clear()
        for route in self.routes:
            route.calls.clear()
