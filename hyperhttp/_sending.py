"""The Client's send pipeline, as a mixin of Client: redirects, then the auth flow (per hop),
then per network attempt the cookie jar, the event hooks and the transport."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ._auth import Auth, AuthTypes, to_auth, url_auth
from ._cookie_jar import CookieJar
from ._cookies import Cookies, merged_cookie_field
from ._models import BodyLimits, Response
from ._options import UNSET
from ._redirects import discard, redirect_request
from ._request import Request
from ._resilience import Attempt, Resilience
from ._transport import Transport
from .exceptions import PoolClosed, TooManyRedirects

__all__ = ["Sending"]


class Sending:
    """``Client.send`` and what it runs; these attributes are the Client's."""

    follow_redirects: bool
    max_redirects: int
    _closed: bool
    _auth: Auth | None
    _request_hooks: list[Callable[..., Any]]
    _response_hooks: list[Callable[..., Any]]
    _resilience: Resilience | None
    _jar: CookieJar
    _cookies: Cookies
    _transport: Transport
    _limits: BodyLimits | None

    async def send(
        self,
        request: Request,
        *,
        follow_redirects: bool = UNSET,
        auth: AuthTypes = UNSET,
        retry: bool = True,
    ) -> Response:
        """Send a Request built by ``build_request`` (or by hand).

        The pipeline, outermost first: redirects, then the auth flow (per hop), then per network
        attempt the cookie jar, the event hooks and the transport. What is not in use costs a
        flag test.

        :param request: the request to send.
        :param follow_redirects: whether to follow redirects, instead of the Client's setting.
        :param auth: the authentication of this request, instead of the Client's.
        :param retry: False sends the request once, whatever the Client's retry policy.
        :raises PoolClosed: when the Client has been closed.
        :raises LocalProtocolError: when a field set by a hook, an auth flow or the cookie jar is
            invalid.
        :raises TooManyRedirects: when more than ``max_redirects`` redirects are followed.
        :raises StreamConsumed: when a redirect needs the body again and it was a one-shot
            stream.
        :raises CircuitBreakerOpen: when the host's circuit breaker refuses the request.
        :raises RetryError: when the retry policy gives up after retrying, or on a status it
            retries.
        :raises TransportError: when the connection, TLS, the proxy, DNS or a timeout fails.
        """
        if self._closed:
            raise PoolClosed("the client has been closed")
        url = request.url
        follow = self.follow_redirects if follow_redirects is UNSET else follow_redirects
        if (
            auth is UNSET
            and self._auth is None
            and not self._request_hooks
            and not self._response_hooks
            and self._resilience is None
            and not (url.username or url.password)
        ):
            # The jar and the transport, and redirects when they come: no extra coroutine for
            # a response that is not one (a crawler's every page).
            user_cookie = None
            jar = self._jar._cookies
            if jar:
                if follow:
                    user_cookie = request.headers.get("cookie")
                self._add_cookies(request)
            response = await self._transport.handle_async_request(request)
            self._received(request, response)
            if follow and response.is_redirect:
                if not jar:  # the field is still the request's own
                    user_cookie = request.headers.get("cookie")
                return await self._send_following(
                    request, None, self._send_once, response, user_cookie
                )
            return response
        flow = self._auth if auth is UNSET else to_auth(auth)
        if flow is None and (url.username or url.password):
            flow = url_auth(url)
        attempt: Attempt = self._send_once
        if self._resilience is not None:
            attempt = self._resilience.wrap(self._send_once, retry)
        if follow:
            return await self._send_following(request, flow, attempt)
        if flow is not None:
            return await self._send_with_auth(request, flow, attempt)
        return await attempt(request)

    async def _send_once(self, request: Request) -> Response:
        """One network attempt: cookies from the jar, request hooks, transport, Set-Cookie,
        response hooks."""
        self._add_cookies(request)
        if self._request_hooks:
            for hook in self._request_hooks:
                result = hook(request)
                if inspect.isawaitable(result):
                    await result
        response = await self._transport.handle_async_request(request)
        self._received(request, response)
        if self._response_hooks:
            try:
                for hook in self._response_hooks:
                    result = hook(response)
                    if inspect.isawaitable(result):
                        await result
            except BaseException:
                await response.aclose()
                raise
        return response

    def _received(self, request: Request, response: Response) -> None:
        """A response head arrived: the Client's body limits on it, its cookies in the jar."""
        if self._limits is not None:
            response.limits = self._limits
        values = response.field_values(b"set-cookie")
        if values:
            self._cookies.extract(response, request, values)

    def _add_cookies(self, request: Request) -> None:
        """The jar's cookies for ``request`` in its Cookie field; its own win over the jar's of
        the same name."""
        value = self._cookies.header_for(request)
        if value:
            headers = request.headers
            headers["Cookie"] = merged_cookie_field(value, headers.get("cookie"))

    async def _send_with_auth(self, request: Request, auth: Auth, attempt: Attempt) -> Response:
        flow = auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await attempt(request)
                if auth.requires_response_body:
                    await response.aread()
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                except BaseException:
                    await response.aclose()
                    raise
                await discard(response)
        finally:
            await flow.aclose()

    async def _send_following(
        self,
        request: Request,
        auth: Auth | None,
        attempt: Attempt,
        response: Response | None = None,
        user_cookie: str | None = None,
    ) -> Response:
        """Send ``request`` and follow the redirects; ``response``: its first response came
        already (then ``user_cookie`` is the Cookie field it had of its own, before the jar's)."""
        history: list[Response] = []
        first_origin = request.url.origin
        if response is None:
            user_cookie = request.headers.get("cookie")  # sent again on same-origin hops only
        while True:
            if response is None:
                hop_auth = auth if request.url.origin == first_origin else None
                if hop_auth is not None:
                    response = await self._send_with_auth(request, hop_auth, attempt)
                else:
                    response = await attempt(request)
            location = response.headers.get("location") if response.is_redirect else None
            if location is None:
                if history:
                    response.history = history
                return response
            if len(history) >= self.max_redirects:
                await response.aclose()
                raise TooManyRedirects(
                    f"more than {self.max_redirects} redirects, the last to {location!r}"
                )
            await discard(response)
            response.history = list(history)
            history.append(response)
            request = redirect_request(request, response, location, user_cookie)
            response = None
