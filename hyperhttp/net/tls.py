"""TLS client contexts, built once per Client configuration (never per connection).

By default certifi's bundle is trusted and hostnames are checked. ``verify`` may instead name a CA
file or directory, or be False; ``cert`` adds a client certificate; ``ssl_context`` is used as
given. ALPN offers http/1.1 only until HTTP/2 lands.
"""

from __future__ import annotations

import os
import ssl

import certifi

__all__ = ["create_ssl_context"]


def create_ssl_context(
    verify: bool | str = True,
    cert: tuple[str, str] | str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ssl.SSLContext:
    if ssl_context is not None:
        return ssl_context
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    if cert is not None:
        if isinstance(cert, str):
            context.load_cert_chain(cert)
        else:
            context.load_cert_chain(*cert)
    context.set_alpn_protocols(["http/1.1"])
    return context
