"""Opening a connection: resolve, connect over TCP, optionally TLS, all under one connect timeout.

The addresses are tried in the resolver's order until one connects (Happy Eyeballs replaces this
sequential walk in the network-layer work). Every failure is mapped here, at the boundary where it
arises, to ConnectError, ConnectTimeout or TLSError.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Callable, TypeVar

from ..exceptions import ConnectError, ConnectTimeout, TLSError
from .dns import Resolver

__all__ = ["open_connection", "deadline"]

P = TypeVar("P", bound=asyncio.BaseProtocol)


class deadline:
    """Cancel the current task when ``timeout`` seconds pass; turn that into ``exc_type``.

    A ``loop.call_later`` timer handle around one phase: no extra task, and it composes with an
    outer cancellation (which is re-raised untouched).
    """

    __slots__ = ("_timeout", "_message", "_handle", "_task", "expired")

    def __init__(self, timeout: float | None, message: str) -> None:
        self._timeout = timeout
        self._message = message
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self.expired = False

    def __enter__(self) -> deadline:
        if self._timeout is not None:
            self._task = asyncio.current_task()
            self._handle = asyncio.get_running_loop().call_later(self._timeout, self._expire)
        return self

    def _expire(self) -> None:
        self.expired = True
        if self._task is not None:
            self._task.cancel()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.expired and isinstance(exc, asyncio.CancelledError):
            uncancel = getattr(self._task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            raise ConnectTimeout(self._message) from None


async def open_connection(
    protocol_factory: Callable[[], P],
    host: str,
    port: int,
    *,
    resolver: Resolver,
    ssl_context: ssl.SSLContext | None,
    timeout: float | None,
) -> P:
    """Connect to ``host:port`` and return the protocol instance bound to the new transport."""
    loop = asyncio.get_running_loop()
    with deadline(timeout, f"timed out connecting to {host}:{port} after {timeout}s"):
        addresses = await resolver.resolve(host, port)
        errors: list[str] = []
        for family, address in addresses:
            try:
                _, protocol = await loop.create_connection(
                    protocol_factory,
                    host=address[0],
                    port=address[1],
                    family=family,
                    ssl=ssl_context,
                    server_hostname=host if ssl_context is not None else None,
                    ssl_handshake_timeout=None if ssl_context is None else timeout,
                )
                return protocol
            except ssl.SSLError as exc:  # includes certificate verification failures
                raise TLSError(
                    f"TLS handshake with {host}:{port} failed: {_ssl_reason(exc)}"
                ) from exc
            except (OSError, asyncio.TimeoutError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                errors.append(f"{address[0]}:{address[1]}: {reason}")
    raise ConnectError(f"could not connect to {host}:{port} ({'; '.join(errors)})")


def _ssl_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    return exc.reason or str(exc)
