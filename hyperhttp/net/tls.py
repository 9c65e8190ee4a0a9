"""TLS client contexts, built once per Client configuration (never per connection).

By default certifi's bundle is trusted, and certificates and hostnames are checked (an IP-literal
host is checked against the certificate's IP SANs; SNI is sent for names only, as RFC 6066 asks).
``verify`` may instead name a CA file or directory, or be False (with an InsecureRequestWarning);
``cert`` adds a client certificate for mutual TLS, as ``(cert, key)`` or one PEM holding both;
``ssl_context`` is used exactly as given. ALPN offers ``h2`` and ``http/1.1``, or only ``http/1.1``.
"""

from __future__ import annotations

import os
import ssl
import warnings

import certifi

from ..exceptions import InsecureRequestWarning, TLSError

__all__ = ["create_ssl_context"]


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
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(verify, (str, os.PathLike)):
            path = os.fspath(verify)
            if os.path.isdir(path):
                context = ssl.create_default_context(capath=path)
            elif os.path.isfile(path):
                context = ssl.create_default_context(cafile=path)
            else:
                raise TLSError(f"verify={path!r}: no such CA bundle file or directory")
        elif verify is True:
            context = ssl.create_default_context(cafile=certifi.where())
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
