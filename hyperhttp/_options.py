"""The options of a request, as the Client's methods take them: ``RequestOptions`` (what
``request`` takes, for the verbs and ``stream`` to be typed by), the ``Verb`` each of
``get``/``post``/... is, and ``StreamContext``, what ``stream`` returns. Kept apart from the
Client so that _client.py holds the Client."""

from __future__ import annotations

import sys
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Mapping,
    Protocol,
    Sequence,
    TypedDict,
    Union,
    cast,
)

from ._auth import AuthTypes
from ._cookies import Cookies, CookiesInput
from ._headers import Headers, HeadersInput
from ._models import Response
from ._multipart import MultipartEncoder
from ._request import RequestContent
from ._timeout import TimeoutTypes
from ._url import URL, QueryParams

# HeadersInput, CookiesInput and RequestContent name these in strings, which
# typing.get_type_hints(RequestOptions) resolves in this module's namespace.
_NAMED_IN_ALIASES = (Cookies, Headers, MultipartEncoder)

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:
    from typing_extensions import Unpack

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "EventHooks",
    "FilesInput",
    "FormData",
    "RequestOptions",
    "StreamContext",
    "Verb",
    "verb",
    "form_pairs",
    "UNSET",
    "NO_JSON",
]

FormData = Mapping[str, Any]
# A file part's shapes are ``FileSpec``; the values are Any because a dict literal mixing shapes
# would not type-check against a union of them (each is checked when the body is built).
FilesInput = Union[Mapping[str, Any], Sequence[tuple[str, Any]]]
EventHooks = Mapping[str, Iterable[Callable[..., Any]]]


class _Unset:
    """The default of an option that was not given (shown in signatures by what it means)."""

    __slots__ = ("meaning",)

    def __init__(self, meaning: str) -> None:
        self.meaning = meaning

    def __repr__(self) -> str:
        return self.meaning


UNSET: Any = _Unset("<the Client's setting>")
NO_JSON: Any = _Unset("<no JSON body>")


class RequestOptions(TypedDict, total=False):
    """The keyword arguments of ``Client.request``, which the verbs and ``stream`` take too."""

    params: QueryParams
    headers: HeadersInput
    cookies: CookiesInput
    content: RequestContent | None
    data: FormData | None
    files: FilesInput | None
    json: Any
    timeout: TimeoutTypes
    follow_redirects: bool
    retry: bool
    auth: AuthTypes


class Verb(Protocol):
    """``client.get(url, **options)`` and its siblings: ``request`` with the method given."""

    def __call__(
        self, url: str | URL, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, Response]: ...


def verb(method: str) -> Verb:
    """A verb. Without keyword arguments it builds and sends itself: one coroutine fewer."""

    async def send(self: Client, url: str | URL, **options: Any) -> Response:
        if options:
            return await self.request(method, url, **options)
        return await self.send(self.build_request(method, url))

    send.__name__ = send.__qualname__ = method.lower()
    article = "an" if method[0] in "AEIOU" else "a"
    send.__doc__ = f"Send {article} {method} request; the options are those of ``request``."
    return cast(Verb, send)


class StreamContext:
    """What ``client.stream(...)`` returns: await it for the Response (``async with await
    client.stream(...)``), or use it as ``async with client.stream(...) as response``, which
    closes the response on the way out. The request is sent when either begins."""

    __slots__ = ("_client", "_method", "_url", "_options", "_response")

    def __init__(
        self, client: Client, method: str, url: str | URL, options: RequestOptions
    ) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._options = options
        self._response: Response | None = None

    def __await__(self) -> Generator[Any, None, Response]:
        return self._client.request(self._method, self._url, **self._options).__await__()

    async def __aenter__(self) -> Response:
        self._response = await self._client.request(self._method, self._url, **self._options)
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def form_pairs(data: FormData | None) -> list[tuple[str, Any]]:
    """Form fields as pairs: a list or tuple value repeats its name."""
    if data is None:
        return []
    return [
        (name, value)
        for name, values in data.items()
        for value in (values if isinstance(values, (list, tuple)) else [values])
    ]
