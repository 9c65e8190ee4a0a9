"""TLS client contexts, built once per Client configuration (never per connection).

By default certifi's bundle is trusted, and certificates and hostnames are checked (an IP-literal
host is checked against the certificate's IP SANs; SNI is sent for names only, as RFC 6066 asks).
``verify`` may instead name a CA file or directory, or be False (with an InsecureRequestWarning);
``cert`` adds a client certificate for mutual TLS, as ``(cert, key)`` or one PEM holding both;
``ssl_context`` is used exactly as given. ALPN offers ``h2`` and ``http/1.1``, or only ``http/1.1``.

A context built here resumes TLS sessions (``ResumingContext``): a new connection to a host offers
the session (ticket) of an earlier connection to the same host name. With TLS 1.2 that is an
abbreviated handshake (one round trip, no certificate): measured on loopback against nginx, a new
connection with one request cost hyperhttp about 1.0 ms of CPU resumed against 1.25 ms. With
TLS 1.3 the key exchange is done all the same, and the saving was within noise (1.14 against
1.16 ms). A session is only ever offered to the name it was verified for, and a server that
does not take it does a full handshake. A context passed as ``ssl_context`` is used as it is.
"""

from __future__ import annotations

import os
import ssl
import sys
import warnings
from collections import OrderedDict
from typing import Any

import certifi

from ..exceptions import InsecureRequestWarning, TLSError

__all__ = ["ResumingContext", "create_ssl_context"]

_SESSIONS = 1024  # host names whose last session is kept, least recently used first out


class ResumingContext(ssl.SSLContext):
    """A client SSLContext whose new connections offer the TLS session of the last connection to
    the same host name (RFC 8446 section 2.2; RFC 5077 tickets in TLS 1.2).

    Python reads a session from a connection (``SSLObject.session``) but tells nobody when one
    arrives: with TLS 1.3 the server's tickets come after the handshake, with its first
    response. So the last connection to each name is kept, and its session taken when the next
    connection to that name is made, if it has a ticket by then; else the one taken before is
    offered, if any. Both maps are bounded (``_SESSIONS`` names each)."""

    def __new__(cls, protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> ResumingContext:
        return super().__new__(cls, protocol)

    def __init__(self, protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> None:
        super().__init__()
        self._latest: OrderedDict[str, ssl.SSLObject] = OrderedDict()
        self._sessions: OrderedDict[str, ssl.SSLSession] = OrderedDict()

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        name = server_hostname if isinstance(server_hostname, str) else None
        if name is None or server_side:
            return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if session is None:
            session = self._session_for(name)
        try:
            ssl_object = super().wrap_bio(incoming, outgoing, server_side, name, session)
        except ValueError:  # a session this context cannot use: without it
            ssl_object = super().wrap_bio(incoming, outgoing, server_side, name)
        _remember(self._latest, name, ssl_object)
        return ssl_object

    def _session_for(self, name: str) -> ssl.SSLSession | None:
        ssl_object = self._latest.pop(name, None)
        if ssl_object is not None:
            try:
                session: ssl.SSLSession | None = ssl_object.session
            except ValueError:  # still in its handshake ("i2d() failed"): nothing to take
                session = None
            if session is not None and session.has_ticket:
                _remember(self._sessions, name, session)
                return session
        return self._sessions.get(name)


def _remember(kept: OrderedDict[str, Any], name: str, value: Any) -> None:
    """``kept[name] = value``, as the most recently used; the least recently used past
    ``_SESSIONS`` names leaves."""
    kept[name] = value
    kept.move_to_end(name)
    if len(kept) > _SESSIONS:
        kept.popitem(last=False)


def create_ssl_context(
    verify: bool | str = True,
    cert: tuple[str, str] | str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    *,
    http2: bool = False,
    warn_stacklevel: int = 1,
) -> ssl.SSLContext:
    if ssl_context is not None:
        return ssl_context
    try:
        if verify is False:
            warnings.warn(
                "verify=False: TLS certificates and host names will not be checked",
                InsecureRequestWarning,
                stacklevel=warn_stacklevel + 1,
            )
            context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(verify, (str, os.PathLike)):
            path = os.fspath(verify)
            if os.path.isdir(path):
                context = _verifying(capath=path)
            elif os.path.isfile(path):
                context = _verifying(cafile=path)
            else:
                raise TLSError(f"verify={path!r}: no such CA bundle file or directory")
        elif verify is True:
            context = _verifying(cafile=certifi.where())
        else:
            raise TypeError(f"verify must be True, False or a path, not {verify!r}")
        if cert is not None:
            if isinstance(cert, (str, os.PathLike)):
                context.load_cert_chain(cert)
            else:
                context.load_cert_chain(*cert)
    except (ssl.SSLError, OSError) as exc:
        raise TLSError(f"could not set up TLS: {exc}") from exc
    context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    return context


def _verifying(cafile: str | None = None, capath: str | None = None) -> ResumingContext:
    """What ``ssl.create_default_context(cafile=..., capath=...)`` makes for a client, as a
    ResumingContext: certificates and host names checked against those CAs."""
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)  # (CERT_REQUIRED, check_hostname)
    if sys.version_info >= (3, 13):  # as create_default_context sets them from 3.13 on
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    context.load_verify_locations(cafile, capath)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context
