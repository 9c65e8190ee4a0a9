"""The cookie store of RFC 6265: Set-Cookie parsed (section 5.2), stored (5.3), sent back (5.4).

Three things a crawler needs that ``http.cookiejar`` lacks:

- A Domain attribute that is a public suffix (``com``, ``co.uk``, ``github.io``: the public
  suffix list, through ``publicsuffixlist``) is refused unless it is the request host itself, in
  which case the cookie is host-only (5.3 step 5). ``http.cookiejar`` only asks for an embedded
  dot, so ``Domain=co.uk`` passes there.
- Limits (6.1): at most ``max_cookies_per_domain`` cookies per registrable domain (eTLD+1, the
  way browsers count, so that a thousand subdomains cannot each claim fifty) and
  ``max_cookies`` in all; the expired go first, then the least recently used (5.3). A cookie
  whose name and value pass 4096 bytes is ignored.
- A request's cost does not grow with the number of sites in the jar. Cookies are filed by the
  registrable domain of their domain (their "site"); a site is always a suffix of every host its
  cookies can match, so a request for ``a.b.example.co.uk`` looks up that host and each parent
  domain in the index (a few dict lookups) and examines the one site's cookies and the
  every-host ones, never the rest of the jar. The public suffix list is consulted when a cookie
  is stored, not per request. ``http.cookiejar`` walks every domain on every request.

Hosts that are IP addresses match only themselves: a Domain attribute must equal the address
(the cookie is then host-only) or the cookie is ignored, and no parent domains are looked up.
Secure cookies are sent over https only; SameSite, HttpOnly and unknown attributes are kept on
the cookie (a client without a browser's notion of the page behind a request has no use for
SameSite).
"""

from __future__ import annotations

import functools
import heapq
import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import NamedTuple

from publicsuffixlist import PublicSuffixList

from ._url import URL, international_host
from .exceptions import InvalidURL

__all__ = ["Cookie", "CookieJar", "MAX_COOKIE_SIZE", "parse_cookie_date", "parse_set_cookie"]

MAX_COOKIE_SIZE = 4096  # name and value, RFC 6265 section 6.1 (RFC 6265bis 5.6 step 3)
_MAX_ATTRIBUTE_VALUE = 1024  # RFC 6265bis 5.6: a longer attribute value is ignored
_MAX_AGE_CAP = 10**10  # seconds (three centuries): keeps now + Max-Age a finite float

_Key = tuple[str, str, bool, str]  # name, domain, host-only, path: a cookie's identity


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    """The public suffix list bundled with ``publicsuffixlist``, parsed once per process (about
    40 ms) and only when a cookie is first stored: an immutable table, not jar state."""
    return PublicSuffixList()


def _is_address(host: str) -> bool:
    """An IP address, or a name whose last label is numeric, which URL parsers read as IPv4
    (WHATWG URL): neither gets parent domains."""
    return ":" in host or host.rpartition(".")[2].isdigit()


def _site_of(domain: str) -> str:
    """The index key of a cookie domain: its registrable domain, or the domain itself when it
    has none (an address, a public suffix a host set for itself, a dotless name)."""
    if not domain or _is_address(domain):
        return domain
    site = _public_suffixes().privatesuffix(domain)
    return site if site is not None and domain.endswith(site) else domain  # "a.com." stays


class Cookie:
    """One stored cookie: the fields of RFC 6265 section 5.3's storage model.

    ``domain`` is lower case without a leading dot: the host that set a ``host_only`` cookie, or
    the Domain attribute (the cookie then also matches subdomains); ``""`` is a cookie the user
    set for every host. ``expires`` is a Unix time, None for a session cookie. HttpOnly,
    SameSite and unknown attributes are in ``attributes`` by lower-case name (None for a flag);
    ``has_nonstandard_attr`` and ``get_nonstandard_attr`` read them as ``http.cookiejar`` users
    expect. ``created`` and ``accessed`` order cookies (the jar's clock, not wall time). The jar
    files a cookie by its fields: to change one, set a new cookie rather than edit it in place.
    """

    __slots__ = (
        "name",
        "value",
        "domain",
        "path",
        "expires",
        "secure",
        "host_only",
        "attributes",
        "created",
        "accessed",
        "site",
    )

    def __init__(
        self,
        name: str,
        value: str,
        domain: str = "",
        path: str = "/",
        *,
        expires: float | None = None,
        secure: bool = False,
        host_only: bool = False,
        attributes: dict[str, str | None] | None = None,
    ) -> None:
        self.name = name
        self.value = value
        self.domain = domain
        self.path = path
        self.expires = expires
        self.secure = secure
        self.host_only = host_only
        self.attributes = attributes if attributes is not None else {}
        self.created = 0
        self.accessed = 0
        self.site = ""

    @property
    def http_only(self) -> bool:
        return "httponly" in self.attributes

    @property
    def same_site(self) -> str | None:
        return self.attributes.get("samesite")

    def has_nonstandard_attr(self, name: str) -> bool:
        return name.lower() in self.attributes

    def get_nonstandard_attr(self, name: str, default: str | None = None) -> str | None:
        return self.attributes.get(name.lower(), default)

    def is_expired(self, now: float | None = None) -> bool:
        if self.expires is None:
            return False
        return self.expires <= (time.time() if now is None else now)

    def copy(self) -> Cookie:
        return Cookie(
            self.name,
            self.value,
            self.domain,
            self.path,
            expires=self.expires,
            secure=self.secure,
            host_only=self.host_only,
            attributes=dict(self.attributes),
        )

    def __repr__(self) -> str:
        scope = self.domain if self.host_only else f".{self.domain}" if self.domain else "*"
        return f"<Cookie {self.name}={self.value} for {scope}{self.path}>"


def _key(cookie: Cookie) -> _Key:
    # RFC 6265bis 5.7 step 22: name, domain, host-only flag and path (as browsers do).
    return (cookie.name, cookie.domain, cookie.host_only, cookie.path)


def _send_order(cookie: Cookie) -> tuple[int, int]:
    return (-len(cookie.path), cookie.created)  # RFC 6265 5.4 step 2


def _last_access(cookie: Cookie) -> int:
    return cookie.accessed


# -- parsing (RFC 6265 section 5.1.1 and 5.2) -----------------------------------------------------

_DATE_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\D|$)")
_DAY = re.compile(r"(\d{1,2})(?:\D|$)")
_YEAR = re.compile(r"(\d{2,4})(?:\D|$)")
_MAX_AGE = re.compile(r"-?\d+")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def parse_cookie_date(text: str) -> float | None:
    """The Unix time of an Expires value, or None if it is not a date.

    RFC 6265 5.1.1's algorithm rather than one format: the first token that looks like a time,
    a day, a month and a year, in any order, so RFC 1123 (``Wed, 21 Oct 2015 07:28:00 GMT``),
    RFC 850 (``Wednesday, 21-Oct-15 07:28:00 GMT``) and asctime (``Wed Oct 21 07:28:00 2015``)
    all parse, with two-digit years 70-99 in the 1900s and 00-69 in the 2000s.
    """
    clock: tuple[int, int, int] | None = None
    day = month = year = None
    for token in _DATE_DELIMITERS.split(text):
        if not token:
            continue
        if clock is None and (found := _TIME.match(token)):
            clock = (int(found[1]), int(found[2]), int(found[3]))
        elif day is None and (found := _DAY.match(token)):
            day = int(found[1])
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS[token[:3].lower()]
        elif year is None and (found := _YEAR.match(token)):
            year = int(found[1])
    if clock is None or day is None or month is None or year is None:
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = clock
    if not 1 <= day <= 31 or year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()
    except ValueError:  # 31 June, 29 February of a common year
        return None


class SetCookie(NamedTuple):
    """A Set-Cookie field as parsed, before the request decides its scope (RFC 6265 5.2)."""

    name: str
    value: str
    domain: str | None  # the Domain attribute, lower case, leading dot removed
    path: str | None  # the Path attribute, if it is one (starts with "/")
    expires: float | None  # from Max-Age if present, else from Expires
    secure: bool
    attributes: dict[str, str | None]


def parse_set_cookie(field: str, now: float) -> SetCookie | None:
    """Parse one Set-Cookie value, or None to ignore it: no ``=`` in the name-value pair, an
    empty name, or name and value longer than ``MAX_COOKIE_SIZE``. Attribute names are case
    insensitive; the last valid one of each kind wins; Max-Age wins over Expires (5.3 step 3)."""
    pair, _, rest = field.partition(";")
    name, equals, value = pair.partition("=")
    if not equals:
        return None
    name = name.strip(" \t")
    value = value.strip(" \t")
    if not name or len(name) + len(value) > MAX_COOKIE_SIZE:
        return None
    expires: float | None = None
    max_age: float | None = None
    domain: str | None = None
    path: str | None = None
    secure = False
    attributes: dict[str, str | None] = {}
    for attribute in rest.split(";") if rest else ():
        key, has_value, raw = attribute.partition("=")
        key = key.strip(" \t").lower()
        text = raw.strip(" \t")
        if len(text) > _MAX_ATTRIBUTE_VALUE:
            continue
        if key == "expires":
            date = parse_cookie_date(text)
            if date is not None:  # 0.0, the epoch, is a common way to delete
                expires = date
        elif key == "max-age":
            if _MAX_AGE.fullmatch(text):
                seconds = int(text)
                max_age = now + min(seconds, _MAX_AGE_CAP) if seconds > 0 else 0.0
        elif key == "domain":
            if text:  # an empty Domain is ignored (5.2.3)
                domain = text[1:].lower() if text.startswith(".") else text.lower()
        elif key == "path":
            path = text if text.startswith("/") else None  # else the default path (5.2.4)
        elif key == "secure":
            secure = True
        elif key:
            attributes[key] = text if has_value else None
    return SetCookie(
        name, value, domain, path, expires if max_age is None else max_age, secure, attributes
    )


def default_path(request_path: str) -> str:
    """The directory of the request path (RFC 6265 5.1.4): ``/docs/page`` -> ``/docs``."""
    if not request_path.startswith("/"):
        return "/"
    directory = request_path[: request_path.rfind("/")]
    return directory or "/"


def _scope(parsed: SetCookie, url: URL) -> Cookie | None:
    """The cookie ``url``'s host may set from ``parsed``, or None (RFC 6265 5.3 steps 4-7).

    A Secure cookie set over plain http is refused (RFC 6265bis section 5.7 step 16): a network
    attacker could otherwise plant one that https pages would then trust."""
    if parsed.secure and url.scheme != "https":
        return None
    host = url.host
    domain = parsed.domain
    if domain is None:
        domain, host_only = host, True
    else:
        if not domain.isascii():
            try:
                domain = international_host(domain)
            except InvalidURL:
                return None
        if domain == host:
            # An address matches only itself; a public suffix may be set by that very host,
            # for it alone (step 5).
            host_only = _is_address(host) or _public_suffixes().is_public(domain)
        elif (
            _is_address(host)
            or not host.endswith(domain)
            or host[-len(domain) - 1] != "."
            or _public_suffixes().is_public(domain)
        ):
            return None  # not the host's own domain, or a public suffix above it
        else:
            host_only = False
    return Cookie(
        parsed.name,
        parsed.value,
        domain,
        parsed.path or default_path(url.path or "/"),
        expires=parsed.expires,
        secure=parsed.secure,
        host_only=host_only,
        attributes=parsed.attributes,
    )


# -- the store --------------------------------------------------------------------------------------


class CookieJar:
    """Cookies indexed by site, with RFC 6265's limits and eviction order.

    ``_cookies`` maps a site (see the module docstring) to its cookies by identity; a site with
    no cookies left is removed, so the mapping is empty exactly when the jar is (the Client's
    fast path tests it). ``_recency`` holds every cookie, least recently used first;
    ``_expiries`` is a heap of (expiry, tie-breaker, cookie) from which the expired are purged
    before a request is matched or the jar is read. ``examined`` counts the cookies
    ``header_for`` has looked at, a measure of its cost.
    """

    def __init__(self, *, max_cookies: int = 3000, max_cookies_per_domain: int = 50) -> None:
        if max_cookies < 1 or max_cookies_per_domain < 1:
            raise ValueError("cookie limits must be at least 1")
        self.max_cookies = max_cookies
        self.max_cookies_per_domain = max_cookies_per_domain
        self._cookies: dict[str, dict[_Key, Cookie]] = {}
        self._recency: OrderedDict[Cookie, None] = OrderedDict()
        self._expiries: list[tuple[float, int, Cookie]] = []
        self._clock = 0
        self.examined = 0

    # -- requests and responses ---------------------------------------------------------------

    def header_for(self, url: URL) -> str | None:
        """The Cookie field value for a request to ``url``, or None (RFC 6265 5.4)."""
        sites = self._cookies
        if not sites:
            return None
        now = time.time()
        if self._expiries and self._expiries[0][0] <= now:
            self.purge_expired(now)
        host = url.host
        path = url.path or "/"
        secure = url.scheme == "https"
        address = _is_address(host)
        matched: list[Cookie] = []
        # The host's own site and every parent domain's: its site is one of them. An address
        # has no parents. Then the cookies the user set for every host.
        suffix = host
        while True:
            cookies = sites.get(suffix)
            if cookies:
                self.examined += len(cookies)
                for cookie in cookies.values():
                    domain = cookie.domain
                    if domain != host and (
                        cookie.host_only
                        or domain  # "" is every host
                        and (not host.endswith(domain) or host[-len(domain) - 1] != ".")
                    ):
                        continue
                    cookie_path = cookie.path
                    if cookie_path != path and not (
                        path.startswith(cookie_path)
                        and (cookie_path[-1] == "/" or path[len(cookie_path)] == "/")
                    ):
                        continue
                    if cookie.secure and not secure:
                        continue
                    matched.append(cookie)
            if not suffix:
                break
            dot = suffix.find(".")
            suffix = "" if dot < 0 or address else suffix[dot + 1 :]
        if not matched:
            return None
        if len(matched) > 1:
            matched.sort(key=_send_order)
        self._clock += 1
        recency = self._recency
        for cookie in matched:
            cookie.accessed = self._clock
            recency.move_to_end(cookie)
        return "; ".join([f"{cookie.name}={cookie.value}" for cookie in matched])

    def extract(self, url: URL, fields: list[str]) -> None:
        """Store what the Set-Cookie ``fields`` of a response to ``url`` ask for."""
        now = time.time()
        for field in fields:
            parsed = parse_set_cookie(field, now)
            if parsed is not None:
                cookie = _scope(parsed, url)
                if cookie is not None:
                    self._store(cookie, now)

    # -- the store, by hand -------------------------------------------------------------------

    def set_cookie(self, cookie: Cookie) -> None:
        """Store ``cookie`` (replacing the one with its name, domain and path), within the
        limits; an expired cookie only deletes its namesake."""
        if not cookie.path.startswith("/"):
            cookie.path = "/"
        self._store(cookie, time.time())

    def clear(
        self, domain: str | None = None, path: str | None = None, name: str | None = None
    ) -> None:
        """Remove every cookie, or those of ``domain`` (``""`` for the every-host ones), and
        of ``path`` and ``name`` within it. Missing cookies are not an error."""
        for cookie in list(self._recency):
            if (
                (domain is None or cookie.domain == domain)
                and (path is None or cookie.path == path)
                and (name is None or cookie.name == name)
            ):
                self._remove(cookie)

    def clear_session_cookies(self) -> None:
        """Remove the cookies without Expires or Max-Age, as at the end of a browser session."""
        for cookie in list(self._recency):
            if cookie.expires is None:
                self._remove(cookie)

    def purge_expired(self, now: float | None = None) -> None:
        """Remove the cookies whose expiry has passed (RFC 6265 5.3: at any time)."""
        now = time.time() if now is None else now
        heap = self._expiries
        while heap and heap[0][0] <= now:
            cookie = heapq.heappop(heap)[2]
            if cookie in self._recency and cookie.is_expired(now):
                self._remove(cookie)

    def __iter__(self) -> Iterator[Cookie]:
        self.purge_expired()
        return iter([cookie for cookies in self._cookies.values() for cookie in cookies.values()])

    def __len__(self) -> int:
        self.purge_expired()
        return len(self._recency)

    def __repr__(self) -> str:
        return f"<CookieJar {len(self._recency)} cookies, {len(self._cookies)} sites>"

    # -- storing, limits and eviction ---------------------------------------------------------

    def _store(self, cookie: Cookie, now: float) -> None:
        site = _site_of(cookie.domain)
        key = _key(cookie)
        cookies = self._cookies.get(site)
        old = cookies.get(key) if cookies else None
        self._clock += 1
        cookie.created = self._clock
        if old is not None:
            cookie.created = old.created  # RFC 6265 5.3 step 11.3
            self._remove(old)
        if cookie.is_expired(now):
            return  # Max-Age=0 or a past Expires: a deletion
        cookie.site = site
        cookie.accessed = self._clock
        cookies = self._cookies.setdefault(site, {})
        cookies[key] = cookie
        self._recency[cookie] = None
        if cookie.expires is not None:
            self._push_expiry(cookie.expires, cookie)
        if len(cookies) > self.max_cookies_per_domain:
            self._evict_from_site(cookies, now)
        if len(self._recency) > self.max_cookies:
            self.purge_expired(now)
            recency = self._recency
            while len(recency) > self.max_cookies:
                self._remove(next(iter(recency)))

    def _evict_from_site(self, cookies: dict[_Key, Cookie], now: float) -> None:
        """Bring one site back to its limit: its expired cookies first, then its least recently
        used (RFC 6265 5.3, "excess cookies")."""
        for cookie in [cookie for cookie in cookies.values() if cookie.is_expired(now)]:
            self._remove(cookie)
        while len(cookies) > self.max_cookies_per_domain:
            self._remove(min(cookies.values(), key=_last_access))

    def _push_expiry(self, expires: float, cookie: Cookie) -> None:
        heap = self._expiries
        if len(heap) > 2 * len(self._recency) + 64:  # mostly replaced or removed cookies
            heap[:] = [entry for entry in heap if entry[2] in self._recency]
            heapq.heapify(heap)
        self._clock += 1
        heapq.heappush(heap, (expires, self._clock, cookie))

    def _remove(self, cookie: Cookie) -> None:
        del self._recency[cookie]
        cookies = self._cookies[cookie.site]
        del cookies[_key(cookie)]
        if not cookies:
            del self._cookies[cookie.site]
