"""``Cookies``: the Client's cookie jar as a small dict-like object.

The rules of RFC 6265 (parsing Set-Cookie, Domain and the public suffix list, Path, expiry,
Secure, limits and eviction) live in ``_cookie_jar.py``; this module gives them the Client's
Request and Response and the user's view: cookies by name, scoped by domain and path when asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Union

from ._cookie_jar import Cookie, CookieJar
from ._models import Response
from ._request import Request

__all__ = [
    "Cookie",
    "CookieJar",
    "Cookies",
    "CookiesInput",
    "cookie_field",
    "merged_cookie_field",
]

CookiesInput = Union["Cookies", Mapping[str, str], Sequence[tuple[str, str]], None]


def _domain(domain: str) -> str:
    """A domain as the jar keeps it: lower case, no leading dot (``.example.com`` was
    ``http.cookiejar``'s spelling of a domain cookie)."""
    return domain.lstrip(".").lower()


class Cookies:
    """Cookies by name, kept in a ``CookieJar`` (``.jar``).

    ``Cookies({"a": "1"})`` or ``cookies.set("a", "1")`` makes a cookie for every host
    (``domain=""``); ``set(name, value, domain="example.com", path="/")`` scopes one to that
    domain and its subdomains. Reading by name (``cookies["a"]``, ``get``) looks across domains;
    ``domain=`` selects the cookies of one domain, host-only or not. ``clear()`` empties the jar,
    or one domain (and path) of it. The limits (``max_cookies`` in all,
    ``max_cookies_per_domain`` per registrable domain) apply to every cookie, the user's too;
    ``Cookies(other_cookies)`` shares the other's jar, limits included.

    :param cookies: a ``Cookies`` (its jar is shared), a mapping or ``(name, value)`` pairs,
        each made a cookie for every host; None for none.
    :param max_cookies: the most cookies the jar holds.
    :param max_cookies_per_domain: the most cookies per registrable domain.
    :raises ValueError: when a limit is below 1.
    """

    jar: CookieJar

    def __init__(
        self,
        cookies: CookiesInput = None,
        *,
        max_cookies: int = 3000,
        max_cookies_per_domain: int = 50,
    ) -> None:
        if isinstance(cookies, Cookies):
            self.jar = cookies.jar
            return
        self.jar = CookieJar(max_cookies=max_cookies, max_cookies_per_domain=max_cookies_per_domain)
        if cookies is not None:
            items = cookies.items() if isinstance(cookies, Mapping) else cookies
            for name, value in items:
                self.set(name, value)

    # -- the client's side ----------------------------------------------------------------------

    def header_for(self, request: Request) -> str | None:
        """Return the Cookie value the jar has for this request's URL, or None.

        :param request: the request about to be sent.
        """
        return self.jar.header_for(request.url)

    def extract(self, response: Response, request: Request, values: list[str]) -> None:
        """Store what the response's Set-Cookie fields (``values``) ask for.

        :param response: the response that carried the fields (not read).
        :param request: the request it answers; its URL scopes the cookies.
        :param values: the Set-Cookie field values.
        """
        self.jar.extract(request.url, values)

    # -- the user's side ------------------------------------------------------------------------

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Store a cookie, replacing the one with the same name, domain and path.

        :param name: the cookie's name.
        :param value: the cookie's value.
        :param domain: the domain it is sent to, with its subdomains; ``""`` for every host.
        :param path: the path it is sent under.
        """
        self.jar.set_cookie(Cookie(name, value, _domain(domain), path or "/"))

    def get(
        self,
        name: str,
        default: str | None = None,
        domain: str | None = None,
        path: str | None = None,
    ) -> str | None:
        """Return the value of the cookie called ``name``, or ``default``.

        :param name: the cookie's name.
        :param default: what to return when there is no such cookie.
        :param domain: only a cookie of this domain (``""``: one set for every host).
        :param path: only a cookie of this path.
        :raises KeyError: when several cookies match with different values.
        """
        found = None
        domain = None if domain is None else _domain(domain)
        for cookie in self.jar:
            if cookie.name == name and domain in (None, cookie.domain):
                if path is None or cookie.path == path:
                    if found is not None and found != cookie.value:
                        raise KeyError(f"several cookies named {name!r}: give domain= or path=")
                    found = cookie.value
        return found if found is not None else default

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        """Remove the cookies called ``name``; none matching is not an error.

        :param name: the cookie's name.
        :param domain: only those of this domain (``""``: those set for every host).
        :param path: only those of this path.
        """
        self.jar.clear(None if domain is None else _domain(domain), path, name)

    def clear(self, domain: str | None = None, path: str | None = None) -> None:
        """Remove every cookie, or those of one domain (and path).

        :param domain: only those of this domain (``""``: those set for every host).
        :param path: only those of this path.
        """
        self.jar.clear(None if domain is None else _domain(domain), path)

    def update(self, cookies: CookiesInput) -> None:
        """Store copies of the cookies given, replacing those with the same name, domain and path.

        :param cookies: a ``Cookies``, a mapping or ``(name, value)`` pairs (cookies for every
            host).
        """
        for cookie in Cookies(cookies).jar:
            self.jar.set_cookie(cookie.copy())

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
        return bool(self.jar)

    def items(self) -> list[tuple[str, str]]:
        """Return every cookie as ``(name, value)``, across domains and paths."""
        return [(cookie.name, cookie.value) for cookie in self.jar]

    def __repr__(self) -> str:
        shown = ", ".join(f"{c.name}={c.value} for {c.domain or '*'}{c.path}" for c in self.jar)
        return f"<Cookies[{shown}]>"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other)
        return NotImplemented


def cookie_field(cookies: Mapping[str, str]) -> str:
    """A Cookie field's value for ``cookies``."""
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def merged_cookie_field(jar: str, explicit: str | None) -> str:
    """The Cookie field of a request that had ``explicit`` of its own, with the jar's cookies
    ``jar`` added: its own win over the jar's of the same name."""
    if not explicit:
        return jar
    names = {pair.split("=", 1)[0].strip() for pair in explicit.split(";")}
    kept = [p for p in jar.split("; ") if p.split("=", 1)[0] not in names]
    return "; ".join([*kept, explicit])
