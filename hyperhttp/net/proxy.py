"""Proxy URLs, and which proxy (if any) a request goes through.

Pure policy, no I/O: ``ProxyRoutes.build`` reads the Client's ``proxies=`` or, when that is left
out and ``trust_env`` is on, the conventional environment variables (``http_proxy``,
``https_proxy``, ``all_proxy``, ``no_proxy`` and their upper-case forms, as curl, urllib and
requests read them). It is resolved once per Client; per request only ``key`` runs, and its answer
is cached per origin.

A proxy URL's credentials are secrets: no repr, str or error message here ever shows them.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping as AbcMapping
from typing import Any, Mapping, Sequence, Tuple, Union
from urllib.parse import unquote, urlsplit

from .._url import URL, international_host
from ..exceptions import InvalidURL

__all__ = [
    "ProxyURL",
    "ProxyRoutes",
    "ProxiesInput",
    "PoolKey",
    "DEFAULT_PROXY_PORTS",
    "parse_no_proxy",
    "no_proxy_matches",
    "ssl_paths_from_env",
]

DEFAULT_PROXY_PORTS = {
    "http": 80,
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}
_SCHEME_LIST = "http, https, socks4, socks4a, socks5 or socks5h"
_HTTP_SCHEMES = frozenset({"http", "https"})
_REMOTE_DNS_SCHEMES = frozenset({"socks4a", "socks5h"})
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+-.")
# Never valid in a host: RFC 3986 gen-delims other than ":" (IPv6), and what no name holds.
_HOST_FORBIDDEN = frozenset(' "<>\\^`{|}/?#@[]*,')
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_KEY_CACHE_LIMIT = 4096

ProxiesInput = Union[str, "ProxyURL", Mapping[str, Union[str, "ProxyURL", None]], None]
Origin = Tuple[str, str, int]
# The pool key: the origin alone when direct (as without proxies), else the origin and the proxy.
PoolKey = Union[Tuple[str, str, int], Tuple[str, str, int, "ProxyURL"]]


def _shown(value: str) -> str:
    """``value`` for an error message, unless it may hold credentials (userinfo needs an "@")."""
    return repr(value) if "@" not in value else "(not shown: it may hold credentials)"


def _normalise_host(host: str) -> str:
    """Lower case, IPv6 without brackets, international names in IDNA form (as ``URL`` does)."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise InvalidURL("proxy URL has no host")
    if not host.isascii():
        try:
            host = international_host(host)
        except InvalidURL:
            raise InvalidURL("proxy URL has an invalid international host") from None
    if any(c in _HOST_FORBIDDEN or c < " " or c == "\x7f" for c in host):
        raise InvalidURL("proxy URL has an invalid host")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidURL("proxy URL has an invalid host") from None
    return host


class ProxyURL:
    """A proxy: scheme (how to talk to it), host and port, and optional credentials.

    Immutable and hashable, since it is part of a pool key: connections through different proxies,
    or through one proxy with different credentials, are never shared. ``username`` and
    ``password`` are decoded (``user%40corp`` in a URL is ``user@corp`` here). ``raw`` is accepted
    for 2.x compatibility and not kept: it would be one more copy of the credentials.

    :param scheme: ``http``, ``https``, ``socks4``, ``socks4a``, ``socks5`` or ``socks5h``.
    :param host: the proxy's host name or IP address.
    :param port: the proxy's port.
    :param username: the user name, decoded; None for none.
    :param password: the password, decoded; None for none.
    :param raw: ignored (2.x compatibility).
    :raises InvalidURL: when the scheme is not supported, or the host or port is invalid.
    """

    __slots__ = ("scheme", "host", "port", "username", "password", "_authorization")

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    _authorization: bytes | None

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        raw: str | None = None,
    ) -> None:
        scheme = scheme.lower()
        if scheme not in DEFAULT_PROXY_PORTS:
            raise InvalidURL(f"unsupported proxy scheme {scheme!r}: use {_SCHEME_LIST}")
        host = _normalise_host(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidURL("proxy URL has an invalid port")
        authorization = None
        if scheme in _HTTP_SCHEMES and (username is not None or password is not None):
            # RFC 7617 section 2: base64 of user-id ":" password; section 2.1: UTF-8.
            userpass = f"{username or ''}:{password or ''}".encode()
            authorization = b"Basic " + base64.b64encode(userpass)
        set_slot = object.__setattr__
        set_slot(self, "scheme", scheme)
        set_slot(self, "host", host)
        set_slot(self, "port", port)
        set_slot(self, "username", username)
        set_slot(self, "password", password)
        set_slot(self, "_authorization", authorization)

    @classmethod
    def from_url(cls, value: str | ProxyURL) -> ProxyURL:
        """Parse a proxy URL such as ``http://user:secret@proxy.corp:3128``.

        Without a scheme (``proxy.corp:8080``) it is an HTTP proxy, as curl takes it. The port
        defaults to the scheme's (80, 443, 1080 for SOCKS). A proxy is addressed by scheme, host
        and port only, so a path (other than "/"), query or fragment is refused rather than
        silently dropped: it is more likely a mistake than a wish.

        :param value: the URL; a ``ProxyURL`` is returned as it is.
        :raises TypeError: when ``value`` is neither a str nor a ProxyURL.
        :raises InvalidURL: when the URL is empty, holds control characters, has an unsupported
            scheme, an invalid host or port, or a path, query or fragment.
        """
        if isinstance(value, ProxyURL):
            return value
        if not isinstance(value, str):
            raise TypeError(f"a proxy URL must be a str or ProxyURL, not {type(value).__name__}")
        text = value.strip()
        if not text:
            raise InvalidURL("empty proxy URL")
        if any(c < " " or c == "\x7f" for c in text):
            raise InvalidURL("proxy URL contains control characters")
        scheme, sep, _ = text.partition("://")
        if not sep:
            text = "http://" + text
            scheme = "http"
        scheme = scheme.lower()
        if scheme not in DEFAULT_PROXY_PORTS:
            named = repr(scheme) if scheme and set(scheme) <= _SCHEME_CHARS else "(malformed)"
            raise InvalidURL(f"unsupported proxy scheme {named}: use {_SCHEME_LIST}")
        try:
            split = urlsplit(text)
        except ValueError:  # "[" without "]"
            raise InvalidURL(f"proxy URL {_shown(value)} has an invalid host") from None
        try:
            port = split.port
        except ValueError:
            raise InvalidURL(f"proxy URL {_shown(value)} has an invalid port") from None
        if split.path not in ("", "/") or split.query or split.fragment:
            raise InvalidURL(
                f"proxy URL {_shown(value)} has a path, query or fragment:"
                " a proxy is addressed by scheme, host and port only"
            )
        if not split.hostname:
            raise InvalidURL(f"proxy URL {_shown(value)} has no host")
        username = split.username
        password = split.password
        if username == "" and password is None:  # "http://@host": an empty userinfo
            username = None
        return cls(
            scheme,
            split.hostname,
            DEFAULT_PROXY_PORTS[scheme] if port is None else port,
            None if username is None else unquote(username),
            None if password is None else unquote(password),
        )

    # -- derived -------------------------------------------------------------------------------

    @property
    def authority(self) -> str:
        """``host:port``, an IPv6 host in brackets (RFC 3986 section 3.2.2)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_secure(self) -> bool:
        """Whether the connection to the proxy itself is TLS (an ``https://`` proxy)."""
        return self.scheme == "https"

    @property
    def is_socks(self) -> bool:
        """Whether the proxy is a SOCKS proxy (any SOCKS scheme)."""
        return self.scheme.startswith("socks")

    @property
    def rdns(self) -> bool:
        """Whether the proxy resolves the target's name (socks4a, socks5h); else we resolve it."""
        return self.scheme in _REMOTE_DNS_SCHEMES

    @property
    def has_auth(self) -> bool:
        """Whether a user name or a password was given."""
        return self.username is not None or self.password is not None

    @property
    def authorization(self) -> bytes | None:
        """The ``Proxy-Authorization`` value for an HTTP proxy with credentials, else None.

        It is Basic (RFC 7617), sent as RFC 9110 section 11.7.2 says; a SOCKS proxy carries
        credentials itself, so it has None.
        """
        return self._authorization

    @property
    def safe(self) -> str:
        """``scheme://host:port``: the proxy without its credentials, for logs and messages."""
        return f"{self.scheme}://{self.authority}"

    # -- dunder --------------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ProxyURL is immutable (it is part of pool keys): {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ProxyURL is immutable (it is part of pool keys): {name}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProxyURL, (self.scheme, self.host, self.port, self.username, self.password))

    def _identity(self) -> tuple[str, str, int, str | None, str | None]:
        return (self.scheme, self.host, self.port, self.username, self.password)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ProxyURL):
            return self._identity() == other._identity()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._identity())

    def __str__(self) -> str:
        return self.safe

    def __repr__(self) -> str:
        if self.has_auth:
            return f"ProxyURL({self.safe!r}, with credentials)"
        return f"ProxyURL({self.safe!r})"


# -- NO_PROXY ------------------------------------------------------------------------------------


def parse_no_proxy(value: str) -> list[str]:
    """The entries of a ``NO_PROXY`` value: separated by commas and/or whitespace, lower case."""
    return value.replace(",", " ").lower().split()


def _entry_port(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()):
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def _split_entry(entry: str) -> tuple[str, int | None] | None:
    """``(host pattern, port or None)`` of a NO_PROXY entry; None when it is malformed."""
    if entry.startswith("["):  # "[v6]", "[v6]:port", "[v6]/len"
        end = entry.find("]")
        if end < 0:
            return None
        inside, rest = entry[1:end], entry[end + 1 :]
        if not rest:
            return inside, None
        if rest.startswith("/"):
            return inside + rest, None
        if rest.startswith(":"):
            port = _entry_port(rest[1:])
            return None if port is None else (inside, port)
        return None
    if entry.count(":") == 1:  # "name:port" or "v4:port"; two or more is bare IPv6
        pattern, _, port_text = entry.partition(":")
        port = _entry_port(port_text)
        return None if port is None or not pattern else (pattern, port)
    return entry, None


def _pattern_matches(
    pattern: str, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> bool:
    if "/" in pattern:  # a CIDR range: IP literals only, names are never resolved for it
        if ip is None:
            return False
        try:
            network = ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
        return ip.version == network.version and ip in network
    try:
        address = ipaddress.ip_address(pattern)
    except ValueError:
        pass
    else:
        return ip is not None and ip == address
    if ip is not None:
        return False  # a name never matches an address ("2.3" is not a suffix of "10.1.2.3")
    # "*.example.com" and ".example.com" mean what "example.com" does (curl: it and subdomains).
    if pattern.startswith("*."):
        pattern = pattern[2:]
    pattern = pattern.lstrip(".").rstrip(".")
    if not pattern.isascii():
        try:
            pattern = international_host(pattern)
        except InvalidURL:
            return False
    if not pattern or not set(pattern) <= _NAME_CHARS:
        return False
    return host == pattern or host.endswith("." + pattern)


def no_proxy_matches(host: str, port: int, entries: Sequence[str]) -> bool:
    """Whether ``NO_PROXY`` ``entries`` send a request to ``host:port`` direct.

    The conventions curl settled (there is no standard): ``*`` is everything; a name matches
    itself and its subdomains, with or without a leading dot (so ``example.com`` matches
    ``sub.example.com`` but not ``notexample.com``); an IP address matches that literal host; a
    CIDR range matches IP-literal hosts inside it; ``host:port`` and ``[v6]:port`` match that port
    only. Entries are case-insensitive; a malformed one is ignored, so that one typo does not make
    the whole variable fatal.
    """
    if not entries:
        return False
    host = host.lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in entries:
        entry = entry.strip().lower()
        if entry == "*":
            return True
        if not entry:
            continue
        split = _split_entry(entry)
        if split is None:
            continue
        pattern, entry_port = split
        if entry_port is not None and entry_port != port:
            continue
        if _pattern_matches(pattern, host, ip):
            return True
    return False


# -- routes ----------------------------------------------------------------------------------------


def _env(environ: Mapping[str, str], name: str, *, upper: bool = True) -> tuple[str, str] | None:
    """``(variable, value)`` of ``name`` (lower case) or else ``NAME``; empty counts as unset."""
    names = (name, name.upper()) if upper else (name,)
    for variable in names:
        value = environ.get(variable, "").strip()
        if value:
            return variable, value
    return None


class ProxyRoutes:
    """Which proxy each request goes through: built once per Client, asked on every request.

    Routes are looked up by the request's scheme, host and port: a host key
    (``scheme://host:port``, ``scheme://host``, ``all://host:port``, ``all://host``), then the
    scheme's key, then ``all``. The first key present decides, and a None value there means
    direct; it does not fall through to a less specific key. ``no_proxy`` entries (from the
    environment only) then send matching requests direct.
    """

    __slots__ = ("_scheme_routes", "_host_routes", "_no_proxy", "_keys")

    def __init__(
        self,
        scheme_routes: Mapping[str, ProxyURL | None],
        host_routes: Mapping[tuple[str, str, int | None], ProxyURL | None] | None = None,
        no_proxy: Sequence[str] = (),
    ) -> None:
        self._scheme_routes: dict[str, ProxyURL | None] = dict(scheme_routes)
        self._host_routes: dict[tuple[str, str, int | None], ProxyURL | None] = dict(
            host_routes or {}
        )
        self._no_proxy: tuple[str, ...] = tuple(no_proxy)
        self._keys: dict[Origin, PoolKey] = {}

    @classmethod
    def build(
        cls,
        proxies: ProxiesInput,
        *,
        trust_env: bool,
        environ: Mapping[str, str] | None = None,
    ) -> ProxyRoutes | None:
        """The routes of a Client, or None when no request can go through a proxy (so that the
        Client keeps its direct path).

        ``proxies``, when given, is the whole configuration: the environment is not read, so that
        what the code says is what happens. Else, with ``trust_env``, the environment decides.
        """
        if proxies is not None:
            routes = cls._from_config(proxies)
        elif trust_env:
            routes = cls._from_environ(os.environ if environ is None else environ)
        else:
            return None
        return routes if routes._may_proxy() else None

    @classmethod
    def _from_config(cls, proxies: ProxiesInput) -> ProxyRoutes:
        if isinstance(proxies, (str, ProxyURL)):
            return cls({"all": ProxyURL.from_url(proxies)})
        if not isinstance(proxies, AbcMapping):
            raise TypeError(
                "proxies must be a URL string, a ProxyURL or a mapping,"
                f" not {type(proxies).__name__}"
            )
        scheme_routes: dict[str, ProxyURL | None] = {}
        host_routes: dict[tuple[str, str, int | None], ProxyURL | None] = {}
        for key, value in proxies.items():
            if not isinstance(key, str):
                raise TypeError(f"a proxies key must be a str, not {type(key).__name__}")
            route = _parse_route_key(key)
            try:
                proxy = None if value is None else ProxyURL.from_url(value)
            except InvalidURL as exc:
                raise InvalidURL(f"proxies[{_shown(key)}]: {exc}") from None
            if route in scheme_routes or route in host_routes:
                raise ValueError(f"proxies key {_shown(key)} repeats another key's route")
            if isinstance(route, str):
                scheme_routes[route] = proxy
            else:
                host_routes[route] = proxy
        return cls(scheme_routes, host_routes)

    @classmethod
    def _from_environ(cls, environ: Mapping[str, str]) -> ProxyRoutes:
        # httpoxy (CVE-2016-5385): in a CGI script the server puts a request's "Proxy:" header
        # in HTTP_PROXY, so only the lower-case form can be trusted there (as urllib does).
        cgi = "REQUEST_METHOD" in environ
        scheme_routes: dict[str, ProxyURL | None] = {}
        for scheme in ("http", "https", "all"):
            found = _env(environ, f"{scheme}_proxy", upper=not (cgi and scheme == "http"))
            if found is None:
                continue
            variable, value = found
            try:
                scheme_routes[scheme] = ProxyURL.from_url(value)
            except InvalidURL as exc:
                raise InvalidURL(f"environment variable {variable}: {exc}") from None
        no_proxy = _env(environ, "no_proxy")
        entries = parse_no_proxy(no_proxy[1]) if no_proxy else []
        return cls(scheme_routes, no_proxy=entries)

    @property
    def secure(self) -> bool:
        """Whether some route goes to an ``https://`` proxy, so the Client needs a TLS context for
        the proxy itself (a proxy speaks HTTP/1.1, whatever the origin speaks)."""
        routes = (*self._scheme_routes.values(), *self._host_routes.values())
        return any(proxy is not None and proxy.is_secure for proxy in routes)

    def _may_proxy(self) -> bool:
        if "*" in self._no_proxy:
            return False
        routes = (*self._scheme_routes.values(), *self._host_routes.values())
        return any(proxy is not None for proxy in routes)

    def _resolve(self, scheme: str, host: str, port: int) -> ProxyURL | None:
        host_routes = self._host_routes
        if host_routes:
            for route in (
                (scheme, host, port),
                (scheme, host, None),
                ("all", host, port),
                ("all", host, None),
            ):
                if route in host_routes:
                    return host_routes[route]
        scheme_routes = self._scheme_routes
        if scheme in scheme_routes:
            proxy = scheme_routes[scheme]
        else:
            proxy = scheme_routes.get("all")
        if proxy is not None and self._no_proxy and no_proxy_matches(host, port, self._no_proxy):
            return None
        return proxy

    def key(self, url: URL) -> PoolKey:
        """The pool key of a request: ``url.origin`` when direct (keyed as without proxies),
        else ``(*url.origin, proxy)``. Cached per origin, since every request asks."""
        origin = url.origin
        found = self._keys.get(origin)
        if found is None:
            proxy = self._resolve(*origin)
            found = origin if proxy is None else (origin[0], origin[1], origin[2], proxy)
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()  # a crawler meets millions of origins: stay bounded
            self._keys[origin] = found
        return found

    def proxy_for(self, url: URL) -> ProxyURL | None:
        """The proxy a request to ``url`` goes through, or None for direct."""
        last = self.key(url)[-1]
        return last if isinstance(last, ProxyURL) else None


_ROUTE_FORMS = (
    "'http', 'https', 'all', 'http://host', 'https://host:port' or 'all://host'"
    " (or 'http://', 'https://', 'all://')"
)


def _parse_route_key(key: str) -> str | tuple[str, str, int | None]:
    """A ``proxies`` key: a scheme route (``"http"``) or a host route (``(scheme, host, port)``).

    ``"http://"`` and ``"all://"`` (httpx's spelling) are the scheme routes."""
    text = key.strip().lower()
    if text.endswith("://"):
        text = text[:-3]
    if text in ("http", "https", "all"):
        return text
    scheme, sep, rest = text.partition("://")
    unknown = ValueError(f"unknown proxies key {_shown(key)}: use {_ROUTE_FORMS}")
    if not sep or scheme not in ("http", "https", "all") or not rest or "@" in rest:
        raise unknown
    try:
        split = urlsplit(text)
    except ValueError:
        raise unknown from None
    if split.path not in ("", "/") or split.query or split.fragment or not split.hostname:
        raise unknown
    try:
        port = split.port
        host = _normalise_host(split.hostname)
    except (ValueError, InvalidURL):
        raise unknown from None
    if port == 0:
        raise unknown
    return (scheme, host, port)


def ssl_paths_from_env(environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``(SSL_CERT_FILE, SSL_CERT_DIR)``, None where unset or empty: the variables OpenSSL itself
    reads, for a Client with ``trust_env`` and the default ``verify``."""
    if environ is None:
        environ = os.environ
    return (environ.get("SSL_CERT_FILE") or None, environ.get("SSL_CERT_DIR") or None)
