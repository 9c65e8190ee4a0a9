"""Client: the public entry point. Resolves configuration once, builds requests, owns the pool.

The per-request path is short on purpose: a cached URL, the default header block encoded once per
Client, one bytes concatenation for the request's fields, and the transport. Per-request headers or
cookies take a slower path that merges and validates them.
"""

from __future__ import annotations

import inspect
import os
import ssl
import sys
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    Callable,
    Iterable,
    Mapping,
)
from urllib.parse import urlencode

from ._auth import Auth, AuthTypes, to_auth
from ._compat import json_dumps
from ._cookies import Cookies, CookiesInput, cookie_field
from ._decoders import accept_encoding
from ._headers import Headers, HeadersInput, check_header_name, check_header_value
from ._models import BodyLimits, Response
from ._multipart import MultipartEncoder
from ._options import (
    NO_JSON,
    UNSET,
    EventHooks,
    FilesInput,
    FormData,
    RequestOptions,
    StreamContext,
    form_pairs,
    verb,
)
from ._request import Request, RequestContent, classify, frame_body, method_bytes
from ._resilience import Resilience
from ._sending import Sending
from ._timeout import TimeoutTypes, to_timeout
from ._transport import Transport
from ._url import URL, QueryParams
from ._version import __version__
from .errors.circuit_breaker import DomainCircuitBreakerManager
from .errors.retry import RetryPolicy
from .errors.telemetry import ErrorTelemetry
from .exceptions import (
    InvalidURL,
)
from .net.dns import Resolver
from .net.pool import ConnectionPool
from .net.proxy import ProxiesInput, ProxyRoutes, ssl_paths_from_env
from .net.tls import create_ssl_context
from .proto.base import FieldBlock

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Client", "CookiesInput", "RequestOptions", "StreamContext"]

_URL_CACHE_MAX = 4096
_FORM = (b"Content-Type", b"application/x-www-form-urlencoded")
_JSON = (b"Content-Type", b"application/json")
_NO_FIELDS: list[tuple[bytes, bytes]] = []  # shared, never changed


class Client(Sending):
    """An HTTP client. Reuse one for the life of the program: it owns the connection pool.

    ``async with Client() as client`` closes it on exit; otherwise call ``await client.aclose()``.
    Every argument is keyword-only; the guide's page "The Client" describes each in full.

    :param base_url: the absolute URL that relative request URLs are joined to.
    :param headers: fields for every request, over the defaults (Accept, User-Agent and, with
        ``accept_compressed``, Accept-Encoding).
    :param cookies: cookies for every host, kept in the Client's jar (``cookies``).
    :param timeout: seconds for every phase, a ``Timeout``, or None for no limit.
    :param max_connections: the most open connections, across hosts.
    :param max_keepalive_connections: the idle connections kept per host.
    :param max_connections_per_host: the most open connections per origin; None for no cap.
    :param keepalive_expiry: seconds an idle connection is kept before it is closed.
    :param http2: offer HTTP/2 by ALPN on ``https://`` origins.
    :param verify: True (certifi's bundle), a CA file or directory, or False (no checks).
    :param cert: a client certificate: ``(cert_file, key_file)``, or one PEM file with both.
    :param ssl_context: an ``ssl.SSLContext`` used as given, instead of ``verify`` and ``cert``.
    :param connect_timeout: seconds connecting may take; the less of it and ``timeout``'s
        connect phase applies.
    :param happy_eyeballs_delay: seconds before the next address is tried while one is pending.
    :param follow_redirects: follow redirects unless a request says otherwise.
    :param max_redirects: the most redirects followed for one request.
    :param retry: a ``RetryPolicy``, True for ``RetryPolicy()``, or None or False for none.
    :param circuit_breaker_manager: a ``DomainCircuitBreakerManager``: a breaker per host.
    :param telemetry: an ``ErrorTelemetry`` that counts the attempts per host.
    :param user_agent: the User-Agent value, instead of ``hyperhttp/<version>``.
    :param accept_compressed: send Accept-Encoding for the content codings installed.
    :param proxies: a proxy URL, a ``ProxyURL``, or a mapping of them by scheme or origin.
    :param trust_env: read the proxy and CA bundle settings from environment variables.
    :param auth: the default authentication: an ``Auth``, a ``(username, password)`` tuple or
        a function of the request.
    :param event_hooks: ``{"request": [...], "response": [...]}``, run on every attempt.
    :param transport: a ``Transport`` used instead of the connection pool.
    :param resolver: what resolves host names (by default an ``AiodnsResolver``).
    :param max_response_size: the most body bytes a response may send, or None.
    :param max_decompressed_size: the most body bytes a response may decode to, or None.
    :param max_decompression_ratio: the most decoded bytes per received byte once 10 MiB
        are decoded, or None.
    :param http2_prior_knowledge: speak HTTP/2 without TLS (h2c) to ``http://`` origins.
    :param max_header_size: the largest response head (or trailer section), in bytes.
    :param max_headers: the most fields in a response head (or trailer section).
    :param timings: put each request's phase timings in ``response.extensions["timings"]``.
    :raises InvalidURL: when ``base_url`` or a proxy URL is invalid.
    :raises ValueError: when an event hook name is unknown, or a size, count or timeout is out
        of range.
    :raises TypeError: when ``retry``, ``auth``, ``timeout`` or ``verify`` has the wrong type.
    :raises TLSError: when ``verify`` names no CA file or directory, or TLS cannot be set up.
    :raises LocalProtocolError: when ``headers`` or ``user_agent`` holds an invalid field.
    """

    def __init__(
        self,
        *,
        base_url: str = "",
        headers: HeadersInput = None,
        cookies: CookiesInput = None,
        timeout: TimeoutTypes = 30.0,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        max_connections_per_host: int | None = None,
        keepalive_expiry: float = 120.0,
        http2: bool = True,
        verify: bool | str = True,
        cert: tuple[str, str] | str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float | None = 10.0,
        happy_eyeballs_delay: float = 0.25,
        follow_redirects: bool = False,
        max_redirects: int = 20,
        retry: RetryPolicy | bool | None = None,
        circuit_breaker_manager: DomainCircuitBreakerManager | None = None,
        telemetry: ErrorTelemetry | None = None,
        user_agent: str | None = None,
        accept_compressed: bool = True,
        proxies: ProxiesInput = None,
        trust_env: bool = True,
        auth: AuthTypes = None,
        event_hooks: EventHooks | None = None,
        transport: Transport | None = None,
        resolver: Resolver | None = None,
        max_response_size: int | None = None,
        max_decompressed_size: int | None = None,
        max_decompression_ratio: float | None = 500.0,
        http2_prior_knowledge: bool = False,
        max_header_size: int = 64 * 1024,
        max_headers: int = 100,
        timings: bool = False,
    ) -> None:
        self._resilience = Resilience.of(retry, circuit_breaker_manager, telemetry)
        self.http2 = http2
        self.happy_eyeballs_delay = happy_eyeballs_delay
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.auth = auth
        self.event_hooks = event_hooks
        self.trust_env = trust_env
        self.timeout = to_timeout(timeout)
        self._base_url = self._parse_base_url(base_url)
        self._url_cache: dict[str, URL] = {}

        defaults = Headers(
            [
                ("Accept", "*/*"),
                (
                    "User-Agent",
                    user_agent if user_agent is not None else f"hyperhttp/{__version__}",
                ),
            ]
        )
        if accept_compressed:
            defaults["Accept-Encoding"] = accept_encoding()
        if headers is not None:
            defaults.update(headers)
        self.headers = defaults
        self.cookies = Cookies(cookies)
        self._defaults = self._default_block()
        limits = BodyLimits(max_response_size, max_decompressed_size, max_decompression_ratio)
        self._limits = limits if limits.active else None

        if transport is None:
            routes = ProxyRoutes.build(proxies, trust_env=trust_env)
            cafile = capath = None
            if trust_env and verify is True and ssl_context is None:
                cafile, capath = ssl_paths_from_env(os.environ)
            trusted = cafile or capath or verify
            context = create_ssl_context(trusted, cert, ssl_context, http2=http2, warn_stacklevel=2)
            proxy_context = None  # for TLS with an https:// proxy, which speaks HTTP/1.1
            if routes is not None and routes.secure:
                proxy_context = create_ssl_context(trusted, cert, ssl_context, warn_stacklevel=2)
            if cafile and capath:  # both variables set: both are trusted, as OpenSSL does
                for each in (context, proxy_context):
                    if each is not None:
                        each.load_verify_locations(capath=capath)
            transport = ConnectionPool(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
                max_connections_per_host=max_connections_per_host,
                keepalive_expiry=keepalive_expiry,
                connect_timeout=connect_timeout,
                happy_eyeballs_delay=happy_eyeballs_delay,
                resolver=resolver,
                ssl_context=context,
                http2=http2,
                http2_prior_knowledge=http2_prior_knowledge,
                max_header_size=max_header_size,
                max_headers=max_headers,
                timings=timings,
                routes=routes,
                proxy_ssl_context=proxy_context,
            )
        if (
            self._resilience is not None
            and self._resilience.telemetry is not None
            and isinstance(transport, ConnectionPool)
        ):
            transport.on_replay = self._resilience.replayed
        self._transport = transport
        self._closed = False

    # -- configuration resolved once ------------------------------------------------------

    @staticmethod
    def _parse_base_url(base_url: str | URL) -> str:
        if not base_url:
            return ""
        URL(base_url)  # validates: scheme and host are required
        return str(base_url).rstrip("/")

    def _default_block(self) -> FieldBlock:
        """The Client's default fields, checked once; each wire format encodes them once."""
        pairs = []
        for raw_name, raw_value in self.headers.raw:  # encoded as a request's own fields are
            check_header_name(raw_name)
            check_header_value(raw_name, raw_value)
            pairs.append((raw_name, raw_value.strip(b" \t")))
        return FieldBlock(pairs)

    # -- redirects, auth, cookies and hooks -----------------------------------------------

    @property
    def cookies(self) -> Cookies:
        """The Client's cookie jar; setting it replaces the jar (with ``Cookies(value)``)."""
        return self._cookies

    @cookies.setter
    def cookies(self, value: CookiesInput) -> None:
        self._cookies = value if isinstance(value, Cookies) else Cookies(value)
        self._jar = self._cookies.jar

    @property
    def auth(self) -> Auth | None:
        """The default authentication as an ``Auth``, or None; set it as ``auth=`` takes it.

        Setting it raises TypeError for a value that is not an ``Auth``, a tuple of two or a
        callable.
        """
        return self._auth

    @auth.setter
    def auth(self, value: AuthTypes) -> None:
        self._auth = to_auth(value)

    @property
    def event_hooks(self) -> dict[str, list[Callable[..., Any]]]:
        """The hooks as ``{"request": [...], "response": [...]}``; the lists are the live ones.

        Setting it replaces both lists, and raises ValueError for a key other than these two.
        """
        return {"request": self._request_hooks, "response": self._response_hooks}

    @event_hooks.setter
    def event_hooks(self, hooks: EventHooks | None) -> None:
        hooks = hooks or {}
        unknown = set(hooks) - {"request", "response"}
        if unknown:
            raise ValueError(f"event hooks are 'request' and 'response', not {sorted(unknown)}")
        self._request_hooks = list(hooks.get("request", ()))
        self._response_hooks = list(hooks.get("response", ()))

    @property
    def base_url(self) -> str:
        """The ``base_url`` given, without trailing slashes (``""`` when none was given)."""
        return self._base_url

    # -- the verbs ------------------------------------------------------------------------
    # Without keyword arguments a verb builds and sends itself: one coroutine fewer per request.

    get = verb("GET")
    """``await client.get(url, **options)``: send a GET request; the options are those of
    ``request``."""
    head = verb("HEAD")
    """``await client.head(url, **options)``: send a HEAD request; the options are those of
    ``request``."""
    options = verb("OPTIONS")
    """``await client.options(url, **options)``: send an OPTIONS request; the options are those of
    ``request``."""
    delete = verb("DELETE")
    """``await client.delete(url, **options)``: send a DELETE request; the options are those of
    ``request``."""
    post = verb("POST")
    """``await client.post(url, **options)``: send a POST request; the options are those of
    ``request``."""
    put = verb("PUT")
    """``await client.put(url, **options)``: send a PUT request; the options are those of
    ``request``."""
    patch = verb("PATCH")
    """``await client.patch(url, **options)``: send a PATCH request; the options are those of
    ``request``."""

    def stream(
        self, method: str, url: str | URL, **options: Unpack[RequestOptions]
    ) -> StreamContext:
        """Send a request whose body is to be streamed; nothing is sent until it is used.

        ``async with client.stream("GET", url) as response`` closes the response at the end;
        ``await client.stream(...)`` returns it (every response's body is lazy: ``async with
        await client.stream(...)`` works too). It raises what ``request`` raises.

        :param method: the request method, such as ``"GET"``.
        :param url: an absolute URL, or one relative to ``base_url``.
        :param options: the keyword arguments of ``request``.
        """
        return StreamContext(self, method, url, options)

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        headers: HeadersInput = None,
        cookies: CookiesInput = None,
        content: RequestContent | None = None,
        data: FormData | None = None,
        files: FilesInput | None = None,
        json: Any = NO_JSON,
        timeout: TimeoutTypes = UNSET,
        follow_redirects: bool = UNSET,
        retry: bool = True,
        auth: AuthTypes = UNSET,
    ) -> Response:
        """Send a request and return its response as soon as the head has arrived.

        The body is read later (``await response.aread()`` or the ``aiter_*`` methods); a
        response that is not read to its end must be closed. The guide's page "Requests"
        describes the arguments in full.

        :param method: the request method, such as ``"GET"``; upper-cased.
        :param url: an absolute URL, or one relative to ``base_url``.
        :param params: query parameters, added to the URL's own.
        :param headers: fields for this request, over the Client's.
        :param cookies: cookies for this request, unless the fields already have a Cookie field.
        :param content: the body: bytes, str, a file, an iterable or a ``MultipartEncoder``.
        :param data: form fields, sent as ``application/x-www-form-urlencoded`` (or with
            ``files``, as multipart).
        :param files: file parts, sent as ``multipart/form-data`` with ``data``'s fields.
        :param json: a value sent as an ``application/json`` body.
        :param timeout: the timeouts of this request, instead of the Client's.
        :param follow_redirects: whether to follow redirects, instead of the Client's setting.
        :param retry: False sends the request once, whatever the Client's retry policy.
        :param auth: the authentication of this request, instead of the Client's.
        :raises InvalidURL: when the URL or ``params`` cannot be requested.
        :raises LocalProtocolError: when the method or a field is invalid, or the fields frame
            the body wrongly.
        :raises TypeError: when the body arguments conflict or have the wrong type.
        :raises HyperHTTPError: what ``send`` raises (``PoolClosed``, ``TooManyRedirects``,
            ``CircuitBreakerOpen``, ``RetryError``, a ``TransportError``, ...).
        """
        request = self.build_request(
            method,
            url,
            params=params,
            headers=headers,
            cookies=cookies,
            content=content,
            data=data,
            files=files,
            json=json,
            timeout=timeout,
        )
        return await self.send(request, follow_redirects=follow_redirects, auth=auth, retry=retry)

    def build_request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        headers: HeadersInput = None,
        cookies: CookiesInput = None,
        content: RequestContent | None = None,
        data: FormData | None = None,
        files: FilesInput | None = None,
        json: Any = NO_JSON,
        timeout: TimeoutTypes = UNSET,
    ) -> Request:
        """Merge the Client's defaults into a Request, ready for ``send``.

        The arguments are those of ``request`` (but ``follow_redirects``, ``retry`` and
        ``auth``, which are ``send``'s).

        :raises InvalidURL: when the URL or ``params`` cannot be requested, or a relative URL
            has no ``base_url`` to join.
        :raises LocalProtocolError: when the method or a field is invalid, or the fields frame
            the body wrongly.
        :raises TypeError: when the body arguments conflict or have the wrong type.
        """
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            method = method.upper()
        method_b = method_bytes(method)
        url_obj = self._url(url, params)

        body: bytes | bytearray | memoryview | None = None
        stream: Iterable[bytes] | AsyncIterable[bytes] | None = None
        length: int | None = None  # of a stream, when known: sent as Content-Length
        content_type: tuple[bytes, bytes] | None = None
        if files is not None:
            if content is not None or json is not NO_JSON:
                raise TypeError("files= goes with data= only, not with content= or json=")
            if data is not None and not isinstance(data, Mapping):
                raise TypeError("data= takes a mapping of form fields")
            content = MultipartEncoder(form_pairs(data), files)
            data = None
        if content is not None:
            if json is not NO_JSON or data is not None:
                raise TypeError("pass only one of content=, data= and json=")
            body, stream, length, implied_type = classify(content)
            if implied_type is not None:
                content_type = (b"Content-Type", implied_type.encode("latin-1"))
        elif json is not NO_JSON:
            if data is not None:
                raise TypeError("pass only one of content=, data= and json=")
            body = json_dumps(json)
            content_type = _JSON
        elif data is not None:
            if not isinstance(data, Mapping):
                raise TypeError(
                    "data= takes a mapping of form fields; send raw bytes with content="
                )
            body = urlencode(form_pairs(data)).encode("ascii")
            content_type = _FORM

        request_timeout = self.timeout if timeout is UNSET else to_timeout(timeout)
        if headers is None and cookies is None:
            chunked, stream_length, framing = frame_body(method, body, stream, length)
            own = _NO_FIELDS
            if content_type is not None:
                own = [content_type, framing] if framing is not None else [content_type]
            elif framing is not None:
                own = [framing]
            return Request.prepared(
                method,
                method_b,
                url_obj,
                self._defaults,
                own,
                body,
                stream,
                request_timeout,
                chunked,
                stream_length,
                length,
            )
        merged = Headers([("Host", url_obj.host_header.decode("ascii"))])
        merged.update(self.headers)
        if content_type is not None:
            merged[content_type[0].decode()] = content_type[1].decode()
        if headers is not None:
            merged.update(headers)
        if "cookie" not in merged and cookies:
            items = cookies.items() if isinstance(cookies, (Mapping, Cookies)) else cookies
            merged["Cookie"] = cookie_field(dict(items))
        request = Request.prepared(
            method, method_b, url_obj, self._defaults, _NO_FIELDS, body, stream, request_timeout
        )
        request._headers = merged
        request.stream_size = length
        request.check()  # framing and fields: the caller's may be refused here already
        request._headers = None  # ``fields`` is what is sent, until someone asks for headers
        return request

    def _url(self, url: str | URL, params: QueryParams) -> URL:
        """The absolute URL for ``url`` (joined to base_url when relative), cached per string."""
        if isinstance(url, URL):
            key = str(url)
        elif isinstance(url, str):
            key = url
        else:
            raise InvalidURL(f"URL must be a str or URL, not {type(url).__name__}")
        if params is None:
            cached = self._url_cache.get(key)
            if cached is not None:
                return cached
        parsed = URL(key)
        if not parsed.is_absolute:
            if not self._base_url:
                raise InvalidURL(f"relative URL {key!r} needs a base_url on the Client")
            parsed = URL(f"{self._base_url}/{key.lstrip('/')}" if key else self._base_url)
        if params is not None:
            return parsed.copy_merge_params(params)
        cache = self._url_cache
        if len(cache) >= _URL_CACHE_MAX:
            cache.clear()
        cache[key] = parsed
        return parsed

    # -- lifecycle ------------------------------------------------------------------------

    def get_pool_stats(self) -> dict[str, dict[str, int]]:
        """Return the connection pool's counters per origin.

        The keys are origins (``"http://host:port"``; 2.x's ``"host:port"`` finds them too); the
        counters are connections, idle, in_use/active, connecting, waiting, requests, and 2.x's
        pending, waiters and total_connections (see ``net/origin.py``). A ``transport`` without
        a pool has none.
        """
        return self._transport.get_stats()

    async def aclose(self) -> None:
        """Close the transport and its connections; later requests raise PoolClosed."""
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    @property
    def is_closed(self) -> bool:
        """Whether ``aclose`` has been called."""
        return self._closed

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _signed_verbs() -> None:
    """Give each verb the signature of ``request`` without ``method``, for ``help()`` and the
    tools that read signatures at run time (type checkers read ``Verb``)."""
    signature = inspect.signature(Client.request)
    parameters = [p for name, p in signature.parameters.items() if name != "method"]
    for name in ("get", "head", "options", "delete", "post", "put", "patch"):
        verb = getattr(Client, name)
        verb.__signature__ = signature.replace(parameters=parameters)


_signed_verbs()
