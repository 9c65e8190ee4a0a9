"""The cookie jar: the standard library's ``http.cookiejar`` behind a small dict-like ``Cookies``.

``http.cookiejar`` parses Set-Cookie (Domain, Path, Expires, Max-Age, Secure, HttpOnly and the
rest kept as attributes), refuses a Domain that is a bare top-level domain or not a suffix of the
host, deletes a cookie whose Max-Age is 0 or whose Expires is past, and matches cookies to requests
by domain, path and Secure. Its policy is set to RFC 6265 behaviour where its default differs: a
cookie without a Domain attribute is host-only (sent back to that host alone).

The jar talks to ``urllib``-shaped request and response objects; the two adapters below present a
hyperhttp Request and Response that way. Nothing else of urllib is used.
"""

from __future__ import annotations

import email.message
import http.cookiejar
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Union

from ._models import Response
from ._request import Request

__all__ = ["Cookies", "CookiesInput"]

CookiesInput = Union["Cookies", Mapping[str, str], Sequence[tuple[str, str]], None]


def _host_of(request: Any) -> str:
    return str(getattr(request, "origin_req_host", "")).lower()


class _Policy(http.cookiejar.DefaultCookiePolicy):
    """The standard policy, plus RFC 6265 5.1.3's "identical" case for a host without a dot:
    ``Domain=localhost`` set by localhost is stored as ``.localhost``, which the standard policy
    then never sends back to localhost itself."""

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        if domain.startswith(".") and _host_of(request) == domain[1:]:
            return True
        return super().domain_return_ok(domain, request)

    def return_ok_domain(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        domain = cookie.domain
        if domain.startswith(".") and _host_of(request) == domain[1:]:
            return True
        return super().return_ok_domain(cookie, request)


def _policy() -> http.cookiejar.DefaultCookiePolicy:
    policy = _Policy()
    # RFC 6265 5.3 step 6: no Domain attribute means host-only.
    policy.strict_ns_domain = http.cookiejar.DefaultCookiePolicy.DomainStrictNonDomain
    return policy


class _RequestAdapter:
    """What ``http.cookiejar`` reads of a request (the ``urllib.request.Request`` interface)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        url = request.url
        self.type = url.scheme
        self.host = url.host_header.decode("ascii")
        self.origin_req_host = url.host
        self.unverifiable = False
        self.cookie: str | None = None

    def get_full_url(self) -> str:
        url = self._request.url  # without userinfo, which would confuse the jar's host parsing
        return f"{url.scheme}://{self.host}{url.target.decode('latin-1')}"

    def get_host(self) -> str:
        return self.host

    def get_type(self) -> str:
        return self.type

    def is_unverifiable(self) -> bool:
        return False

    def has_header(self, name: str) -> bool:
        return name.lower() == "cookie" and self.cookie is not None

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.cookie if name.lower() == "cookie" and self.cookie is not None else default

    def header_items(self) -> list[tuple[str, str]]:
        return [("Cookie", self.cookie)] if self.cookie is not None else []

    def add_unredirected_header(self, name: str, value: str) -> None:
        if name.lower() == "cookie":
            self.cookie = value


class _ResponseAdapter:
    """What ``http.cookiejar`` reads of a response: its Set-Cookie fields."""

    def __init__(self, values: list[str]) -> None:
        self._message = email.message.Message()
        for value in values:
            self._message["Set-Cookie"] = value

    def info(self) -> email.message.Message:
        return self._message


class Cookies:
    """Cookies by name, kept in an ``http.cookiejar.CookieJar`` (``.jar``).

    ``Cookies({"a": "1"})`` or ``cookies.set("a", "1")`` makes a cookie for every host
    (``domain=""``); ``set(name, value, domain="example.com", path="/")`` scopes one. Reading by
    name (``cookies["a"]``, ``get``) looks across domains; ``clear()`` empties the jar, or one
    domain (and path) of it.
    """

    jar: http.cookiejar.CookieJar

    def __init__(self, cookies: CookiesInput = None) -> None:
        if isinstance(cookies, Cookies):
            self.jar = cookies.jar
            return
        self.jar = http.cookiejar.CookieJar(_policy())
        if cookies is not None:
            items = cookies.items() if isinstance(cookies, Mapping) else cookies
            for name, value in items:
                self.set(name, value)

    # -- the client's side ----------------------------------------------------------------------

    def header_for(self, request: Request) -> str | None:
        """The Cookie value the jar has for this request's URL, or None."""
        if not self.jar._cookies:  # type: ignore[attr-defined]
            return None
        adapter = _RequestAdapter(request)
        self.jar.add_cookie_header(adapter)  # type: ignore[arg-type]
        return adapter.cookie

    def extract(self, response: Response, request: Request, values: list[str]) -> None:
        """Store what the response's Set-Cookie fields (``values``) ask for."""
        self.jar.extract_cookies(
            _ResponseAdapter(values),  # type: ignore[arg-type]
            _RequestAdapter(request),  # type: ignore[arg-type]
        )

    # -- the user's side ------------------------------------------------------------------------

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        cookie = http.cookiejar.Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain=domain,
            domain_specified=True,  # "" matches every host; a name, that domain and below
            domain_initial_dot=domain.startswith("."),
            path=path,
            path_specified=bool(path),
            secure=False,
            expires=None,
            discard=True,
            comment=None,
            comment_url=None,
            rest={},
        )
        self.jar.set_cookie(cookie)

    def get(
        self,
        name: str,
        default: str | None = None,
        domain: str | None = None,
        path: str | None = None,
    ) -> str | None:
        found = None
        for cookie in self.jar:
            if cookie.name == name and domain in (None, cookie.domain):
                if path is None or cookie.path == path:
                    if found is not None and found != cookie.value:
                        raise KeyError(f"several cookies named {name!r}: give domain= or path=")
                    found = cookie.value
        return found if found is not None else default

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        doomed = [
            cookie
            for cookie in self.jar
            if cookie.name == name
            and domain in (None, cookie.domain)
            and path in (None, cookie.path)
        ]
        for cookie in doomed:
            self.jar.clear(cookie.domain, cookie.path, cookie.name)

    def clear(self, domain: str | None = None, path: str | None = None) -> None:
        if domain is None:
            self.jar.clear()
        elif path is None:
            self.jar.clear(domain)
        else:
            self.jar.clear(domain, path)

    def update(self, cookies: CookiesInput) -> None:
        for cookie in Cookies(cookies).jar:
            self.jar.set_cookie(cookie)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.delete(name)

    def __contains__(self, name: object) -> bool:
        return any(cookie.name == name for cookie in self.jar)

    def __iter__(self) -> Iterator[str]:
        return (cookie.name for cookie in self.jar)

    def __len__(self) -> int:
        return len(self.jar)

    def __bool__(self) -> bool:
        return bool(self.jar._cookies)  # type: ignore[attr-defined]

    def items(self) -> list[tuple[str, str]]:
        return [(cookie.name, cookie.value or "") for cookie in self.jar]

    def __repr__(self) -> str:
        shown = ", ".join(f"{c.name}={c.value} for {c.domain or '*'}{c.path}" for c in self.jar)
        return f"<Cookies[{shown}]>"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other)
        return NotImplemented
