"""Client: the public entry point. Resolves configuration once, builds requests, owns the pool.

The per-request path is short on purpose: a cached URL, the default header block encoded once per
Client, one bytes concatenation for the request's fields, and the transport. Per-request headers or
cookies take a slower path that merges and validates them.
"""

from __future__ import annotations

import ssl
from typing import Any, AsyncIterable, Iterable, Mapping, Sequence, Union
from urllib.parse import urlencode

from ._compat import json_dumps
from ._decoders import accept_encoding
from ._headers import Headers, HeadersInput, encode_header_lines
from ._models import (
    BodyLimits,
    Request,
    RequestContent,
    Response,
    body_framing,
    declared_length,
    method_bytes,
)
from ._multipart import MultipartEncoder, stream_for
from ._timeout import Timeout, TimeoutTypes, to_timeout
from ._transport import Transport
from ._url import URL, QueryParams
from ._version import __version__
from .exceptions import InvalidURL, PoolClosed
from .net.dns import Resolver
from .net.pool import ConnectionPool
from .net.tls import create_ssl_context

__all__ = ["Client", "CookiesInput"]

CookiesInput = Union[Mapping[str, str], Sequence[tuple[str, str]], None]

_UNSET: Any = object()
_URL_CACHE_MAX = 4096
_FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
_JSON = b"Content-Type: application/json\r\n"


def _not_yet(name: str, issue: str) -> NotImplementedError:
    return NotImplementedError(f"{name} is not implemented yet ({issue})")


class Client:
    """An HTTP client. Reuse one for the life of the program: it owns the connection pool.

    ``async with Client() as client`` closes it on exit; otherwise call ``await client.aclose()``.
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
        keepalive_expiry: float = 120.0,
        http2: bool = True,
        verify: bool | str = True,
        cert: tuple[str, str] | str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float | None = 10.0,
        happy_eyeballs_delay: float = 0.25,
        follow_redirects: bool = False,
        max_redirects: int = 20,
        retry: Any = None,
        circuit_breaker_manager: Any = None,
        telemetry: Any = None,
        user_agent: str | None = None,
        accept_compressed: bool = True,
        proxies: Any = None,
        trust_env: bool = True,
        auth: Any = None,
        event_hooks: Mapping[str, Iterable[Any]] | None = None,
        transport: Transport | None = None,
        resolver: Resolver | None = None,
        max_response_size: int | None = None,
        max_decompressed_size: int | None = None,
        max_decompression_ratio: float | None = 500.0,
    ) -> None:
        for name, value, issue in (
            ("follow_redirects", follow_redirects, "redirects"),
            ("retry", retry, "retry policy"),
            ("circuit_breaker_manager", circuit_breaker_manager, "circuit breakers"),
            ("telemetry", telemetry, "retry telemetry"),
            ("proxies", proxies, "proxies"),
            ("auth", auth, "authentication"),
            ("event_hooks", event_hooks, "event hooks"),
        ):
            if value:
                raise _not_yet(name, issue)
        self.http2 = http2
        self.happy_eyeballs_delay = happy_eyeballs_delay
        self.max_redirects = max_redirects
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
        self.cookies: dict[str, str] = dict(
            cookies.items() if isinstance(cookies, Mapping) else cookies or ()
        )
        self._default_lines = self._encode_defaults()
        limits = BodyLimits(max_response_size, max_decompressed_size, max_decompression_ratio)
        self._limits = limits if limits.active else None

        if transport is None:
            transport = ConnectionPool(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
                keepalive_expiry=keepalive_expiry,
                connect_timeout=connect_timeout,
                happy_eyeballs_delay=happy_eyeballs_delay,
                resolver=resolver,
                # ALPN offers h2 once proto/h2.py exists; until then only http/1.1.
                ssl_context=create_ssl_context(
                    verify, cert, ssl_context, http2=False, warn_stacklevel=2
                ),
            )
        self._transport = transport
        self._closed = False

    # -- configuration resolved once ------------------------------------------------------

    @staticmethod
    def _parse_base_url(base_url: str | URL) -> str:
        if not base_url:
            return ""
        URL(base_url)  # validates: scheme and host are required
        return str(base_url).rstrip("/")

    def _encode_defaults(self) -> bytes:
        """The Client's default fields (and cookies) as encoded lines, validated once."""
        pairs = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.multi_items()
        ]
        if self.cookies and "cookie" not in self.headers:
            pairs.append((b"Cookie", _cookie_header(self.cookies).encode("latin-1")))
        return encode_header_lines(pairs)

    @property
    def base_url(self) -> str:
        return self._base_url

    # -- the verbs ------------------------------------------------------------------------

    async def get(self, url: str | URL, **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str | URL, **kwargs: Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str | URL, **kwargs: Any) -> Response:
        return await self.request("OPTIONS", url, **kwargs)

    async def delete(self, url: str | URL, **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def post(self, url: str | URL, **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str | URL, **kwargs: Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str | URL, **kwargs: Any) -> Response:
        return await self.request("PATCH", url, **kwargs)

    async def stream(self, method: str, url: str | URL, **kwargs: Any) -> Response:
        """Same as ``request``: every response's body is lazy; use it with ``async with``."""
        return await self.request(method, url, **kwargs)

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        headers: HeadersInput = None,
        cookies: CookiesInput = None,
        content: RequestContent | None = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        json: Any = _UNSET,
        timeout: TimeoutTypes = _UNSET,
        follow_redirects: bool = _UNSET,
        retry: bool = True,
        auth: Any = _UNSET,
    ) -> Response:
        """Send a request and return its response as soon as the head has arrived."""
        if follow_redirects is not _UNSET and follow_redirects:
            raise _not_yet("follow_redirects", "redirects")
        if auth is not _UNSET and auth is not None:
            raise _not_yet("auth", "authentication")
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
        return await self.send(request)

    async def send(self, request: Request) -> Response:
        """Send a Request built by ``build_request`` (or by hand)."""
        if self._closed:
            raise PoolClosed("the client has been closed")
        response = await self._transport.handle_async_request(request)
        if self._limits is not None:
            response.limits = self._limits
        return response

    def build_request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        headers: HeadersInput = None,
        cookies: CookiesInput = None,
        content: RequestContent | None = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        json: Any = _UNSET,
        timeout: TimeoutTypes = _UNSET,
    ) -> Request:
        """Merge the Client's defaults into a Request, ready for ``send``."""
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            method = method.upper()
        method_b = method_bytes(method)
        url_obj = self._url(url, params)

        body: bytes | bytearray | memoryview | None = None
        stream: Iterable[bytes] | AsyncIterable[bytes] | None = None
        length: int | None = None  # of a stream, when known: sent as Content-Length
        content_type = b""
        if files is not None:
            if content is not None or json is not _UNSET:
                raise TypeError("files= goes with data= only, not with content= or json=")
            content = MultipartEncoder(data, files)  # type: ignore[assignment]
            data = None
        if content is not None:
            if json is not _UNSET or data is not None:
                raise TypeError("pass only one of content=, data= and json=")
            if isinstance(content, (bytes, bytearray, memoryview)):
                body = content
            elif isinstance(content, str):
                body = content.encode("utf-8")
            elif (special := stream_for(content)) is not None:
                stream, length, implied_type = special
                if implied_type is not None:
                    content_type = b"Content-Type: %s\r\n" % implied_type.encode("latin-1")
            elif hasattr(content, "__aiter__") or hasattr(content, "__iter__"):
                stream = content
            else:
                raise TypeError(
                    "content must be bytes, a file or an iterable of bytes, "
                    f"not {type(content).__name__}"
                )
        elif json is not _UNSET:
            if data is not None:
                raise TypeError("pass only one of content=, data= and json=")
            body = json_dumps(json)
            content_type = _JSON
        elif data is not None:
            if not isinstance(data, Mapping):
                raise TypeError(
                    "data= takes a mapping of form fields; send raw bytes with content="
                )
            body = urlencode(
                [
                    (k, v)
                    for k, vs in data.items()
                    for v in (vs if isinstance(vs, (list, tuple)) else [vs])
                ]
            ).encode("ascii")
            content_type = _FORM

        request_timeout = self.timeout if timeout is _UNSET else to_timeout(timeout)
        if headers is None and cookies is None:
            lines = b"".join(
                (
                    b"Host: ",
                    url_obj.host_header,
                    b"\r\n",
                    self._default_lines,
                    content_type,
                    body_framing(method, body, stream, length),
                )
            )
            return Request.prepared(
                method, method_b, url_obj, lines, body, stream, request_timeout, length
            )
        return self._merged_request(
            method,
            method_b,
            url_obj,
            headers,
            cookies,
            body,
            stream,
            content_type,
            request_timeout,
            length,
        )

    def _merged_request(
        self,
        method: str,
        method_b: bytes,
        url: URL,
        headers: HeadersInput,
        cookies: CookiesInput,
        body: bytes | bytearray | memoryview | None,
        stream: Iterable[bytes] | AsyncIterable[bytes] | None,
        content_type: bytes,
        timeout: Timeout,
        length: int | None = None,
    ) -> Request:
        """The slow path: per-request headers or cookies merged over the Client's defaults."""
        merged = Headers([("Host", url.host_header.decode("ascii"))])
        merged.update(self.headers)
        if content_type:
            name, _, value = content_type.rstrip(b"\r\n").partition(b": ")
            merged[name.decode()] = value.decode()
        if headers is not None:
            merged.update(headers)
        if "cookie" not in merged and (self.cookies or cookies):
            jar = dict(self.cookies)
            if cookies is not None:
                jar.update(cookies.items() if isinstance(cookies, Mapping) else cookies)
            merged["Cookie"] = _cookie_header(jar)
        if "content-length" not in merged and "transfer-encoding" not in merged:
            framing = body_framing(method, body, stream, length)
            if framing:
                name, _, value = framing.rstrip(b"\r\n").partition(b": ")
                merged[name.decode()] = value.decode()
        lines = encode_header_lines(merged.raw)
        request = Request.prepared(method, method_b, url, lines, body, stream, timeout)
        if stream is not None:
            request.stream_length = declared_length(merged)
            request.chunked = request.stream_length is None
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
        """Per origin (``"http://host:port"``): connections, idle, in_use/active, waiting, requests."""
        return self._transport.get_stats()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _cookie_header(cookies: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())
