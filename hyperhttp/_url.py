"""URL: parsed once, validated once, with the request target and Host field pre-encoded.

Only ``http`` and ``https`` are requestable. Characters that may not appear in a request target
(RFC 3986 section 2, RFC 9112 section 3.2) are percent-encoded; control characters are refused
outright because silently dropping them (as ``urllib.parse`` does) would send a different URL.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping, Sequence, Tuple, Union
from urllib.parse import SplitResult, quote, urlencode, urljoin, urlsplit

from .exceptions import InvalidURL

__all__ = ["URL", "QueryParams", "DEFAULT_PORTS"]

_USERINFO_SAFE = "%!$&'()*+,;="  # RFC 3986 sub-delims and existing escapes

DEFAULT_PORTS = {"http": 80, "https": 443}

_PrimitiveValue = Union[str, int, float, bool, None]
QueryParams = Union[
    Mapping[str, Union[_PrimitiveValue, Sequence[_PrimitiveValue]]],
    Sequence[Tuple[str, _PrimitiveValue]],
    str,
    bytes,
    None,
]

# Characters kept as they are in a path or query: RFC 3986 unreserved, sub-delims, ":" "@" "/" "?"
# and "%" (already percent-encoded input is left alone).
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = _SAFE_PATH + "?"
_CONTROL = frozenset(chr(c) for c in range(0x20)) | {"\x7f"}
_UNSAFE_TARGET = frozenset(' "<>\\^`{|}')


def _needs_quoting(text: str) -> bool:
    return not text.isascii() or any(c in _UNSAFE_TARGET for c in text)


def _primitive(value: _PrimitiveValue) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def encode_query(params: QueryParams) -> str:
    """Render query parameters (a mapping, a list of pairs, or a ready string) as ``a=1&b=2``."""
    if params is None:
        return ""
    if isinstance(params, bytes):
        try:
            params = params.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidURL(f"query string is not ASCII: {params!r}") from None
    if isinstance(params, str):
        if any(c in _CONTROL for c in params):
            raise InvalidURL(f"query string contains control characters: {params!r}")
        return params.lstrip("?")
    pairs: list[tuple[str, str]] = []
    items: Iterable[tuple[str, Any]] = params.items() if isinstance(params, Mapping) else params
    for key, value in items:
        if isinstance(value, (list, tuple)):
            pairs.extend((str(key), _primitive(v)) for v in value)
        else:
            pairs.append((str(key), _primitive(value)))
    return urlencode(pairs)


def _host_as_written(netloc: str) -> str:
    """The host part of ``netloc`` as ``SplitResult.hostname`` finds it, but not lower-cased.

    ``str.lower`` is not the UTS 46 mapping: it turns a final capital sigma into "ς" where UTS 46
    gives "σ", another label. So an international host is mapped from what was written.
    """
    hostinfo = netloc.rpartition("@")[2]
    _, bracket, bracketed = hostinfo.partition("[")
    if bracket:
        return bracketed.partition("]")[0]
    return hostinfo.partition(":")[0]


def international_host(host: str) -> str:
    """The A-label form of a host with non-ASCII characters: IDNA 2008 with UTS 46 mapping.

    Non-transitional processing, as browsers and curl do now (UTS 46 section 4, WHATWG URL): "ß"
    and "ς" stay themselves, so ``faß.de`` is ``xn--fa-hia.de``, not ``fass.de`` (which the
    stdlib's IDNA 2003 codec gives, another domain). The mapping also lower-cases and turns the
    full-width and ideographic full stops into dots. Disallowed code points, the bidi and hyphen
    rules, empty labels and labels over 63 octets are refused.
    """
    import idna  # only here: ASCII hosts, nearly all of them, never need it

    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError and its subclasses are UnicodeErrors
        raise InvalidURL(f"invalid international host {host!r}: {exc}") from None


class URL:
    """An absolute ``http``/``https`` URL (or a relative reference used for joining).

    Parsed and checked once: characters a request target may not hold are percent-encoded, an
    international host is turned into its IDNA A-label form, and the request target and the
    Host field are encoded up front.

    :param url: the URL; a ``URL`` is parsed again from its text.
    :param params: query parameters, added to the URL's own query.
    :raises InvalidURL: when ``url`` is not a str or URL, holds control characters, has an
        unsupported scheme, no host, an invalid host or port, or ``params`` is invalid.
    """

    __slots__ = (
        "_split",
        "scheme",
        "host",
        "port",
        "path",
        "query",
        "fragment",
        "username",
        "password",
        "target",
        "host_header",
        "origin",
        "_str",
    )

    scheme: str
    host: str
    port: int | None
    path: str
    query: str
    fragment: str
    username: str
    password: str
    target: bytes
    host_header: bytes
    origin: tuple[str, str, int]

    def __init__(self, url: str | URL = "", *, params: QueryParams = None) -> None:
        if isinstance(url, URL):
            url = str(url)
        elif not isinstance(url, str):
            raise InvalidURL(f"URL must be a str, not {type(url).__name__}")
        if any(c in _CONTROL for c in url):
            raise InvalidURL(f"URL contains control characters: {url!r}")
        try:
            split = urlsplit(url)
            port = split.port
        except ValueError as exc:
            raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
        scheme = split.scheme.lower()
        path = split.path
        query = split.query
        if params is not None:
            extra = encode_query(params)
            if extra:
                query = f"{query}&{extra}" if query else extra
        if _needs_quoting(path):
            path = quote(path, safe=_SAFE_PATH)
        if _needs_quoting(query):
            query = quote(query, safe=_SAFE_QUERY)
        self.scheme = scheme
        self.port = port
        self.path = path
        self.query = query
        self.fragment = split.fragment
        self.username = split.username or ""
        self.password = split.password or ""
        self.host = ""
        self.origin = ("", "", 0)
        self.host_header = b""
        hostname = split.hostname
        if hostname:
            self.host = self._normalise_host(hostname, split.netloc)
        if scheme or self.host:
            self._check_absolute(url)
            self._split = SplitResult(scheme, self._netloc(), path, query, split.fragment)
        else:
            self._split = SplitResult("", split.netloc, path, query, split.fragment)
        target = path or "/"
        if query:
            target = f"{target}?{query}"
        if not (target.isascii() and target.isprintable()) or " " in target:
            # What the checks and the quoting above let through goes on the wire as it is: a
            # control character there would split the request line (RFC 9112 section 3.2).
            raise InvalidURL(f"invalid characters in the request target {target!r}")
        self.target = target.encode("ascii")
        self._str = self._split.geturl()

    def _check_absolute(self, original: str) -> None:
        if self.scheme not in DEFAULT_PORTS:
            raise InvalidURL(f"unsupported URL scheme {self.scheme!r} in {original!r}")
        if not self.host:
            raise InvalidURL(f"URL has no host: {original!r}")
        if self.port is not None and not 0 < self.port < 65536:
            raise InvalidURL(f"invalid port in {original!r}")
        port = self.port if self.port is not None else DEFAULT_PORTS[self.scheme]
        self.origin = (self.scheme, self.host, port)
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None and self.port != DEFAULT_PORTS[self.scheme]:
            host = f"{host}:{self.port}"
        self.host_header = host.encode("ascii")

    @staticmethod
    def _normalise_host(host: str, netloc: str) -> str:
        host = host.lower()
        if host.isascii():
            if any(c in _UNSAFE_TARGET or c in "/?#@" for c in host):
                raise InvalidURL(f"invalid host {host!r}")
            return host
        return international_host(_host_as_written(netloc))

    def _netloc(self) -> str:
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            netloc = f"{netloc}:{self.port}"
        if self.username or self.password:
            # As written (urlsplit keeps it percent-encoded): quoting again would double-encode.
            userinfo = quote(self.username, safe=_USERINFO_SAFE)
            if self.password:
                userinfo = f"{userinfo}:{quote(self.password, safe=_USERINFO_SAFE)}"
            netloc = f"{userinfo}@{netloc}"
        return netloc

    # -- derived ---------------------------------------------------------------------------

    @property
    def is_absolute(self) -> bool:
        """Whether the URL has a scheme (a relative reference has none)."""
        return bool(self.scheme)

    @property
    def effective_port(self) -> int:
        """The port, else the scheme's default (80 or 443); 0 for a relative reference."""
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.scheme, 0)

    @property
    def netloc(self) -> str:
        """The authority: ``userinfo@host:port``, with only the parts the URL has."""
        return self._split.netloc

    @property
    def raw_path(self) -> str:
        """Path and query as sent in the request line."""
        return self.target.decode("ascii")

    @property
    def is_ip_address(self) -> bool:
        """Whether the host is an IPv4 or IPv6 address."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def join(self, url: str | URL) -> URL:
        """Resolve a reference against this URL (RFC 3986 section 5).

        :param url: the reference, relative or absolute.
        :raises InvalidURL: when the result cannot be parsed as a URL.
        """
        return URL(urljoin(self._str, str(url)))

    def copy_with(self, **components: Any) -> URL:
        """Return a new URL with some of scheme, netloc, path, query or fragment replaced.

        :param components: the parts to replace, by name.
        :raises ValueError: when a name is not one of the five.
        :raises InvalidURL: when the result cannot be parsed as a URL.
        """
        split = self._split._replace(**components)
        return URL(split.geturl())

    def copy_merge_params(self, params: QueryParams) -> URL:
        """Return a new URL with ``params`` added to its query.

        :param params: query parameters: a mapping, ``(name, value)`` pairs, or a query string.
        :raises InvalidURL: when ``params`` is a query string with control characters, or bytes
            that are not ASCII.
        """
        return URL(self._str, params=params)

    # -- dunder ----------------------------------------------------------------------------

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return f"URL({self._str!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, URL):
            return self._str == other._str
        if isinstance(other, str):
            return self._str == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._str)
