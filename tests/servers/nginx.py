"""A real nginx with TLS and HTTP/2 on 127.0.0.1, in the foreground of a subprocess, for tests.

``NginxServer(cert, key).start()`` writes a configuration and the files it serves to a temp
directory and runs ``nginx -c ... -p ...`` with ``daemon off; master_process off;`` (one process,
its child: ``stop()`` ends it and removes the directory). Three TLS servers, on free ports of
127.0.0.1, serve the same files with ALPN offering h2 and http/1.1 (``listen ... ssl http2``
before nginx 1.25.1, ``http2 on;`` from it):

  url          ``http2_max_concurrent_streams 256`` (nginx's default is 128)
  limited_url  ``http2_max_concurrent_streams 5``
  goaway_url   ``keepalive_requests 10`` (``http2_max_requests 10`` before nginx 1.19.7): the
               10th request stream of an HTTP/2 connection makes nginx send GOAWAY with that
               stream's id as the last one processed; later streams are not processed

Paths:
  /bytes/<n>   ``pattern(n)`` for each n of ``SIZES`` (static files). ``/bytes/50000000`` goes out
               in DATA frames of up to 256 KiB (``http2_chunk_size 256k``, and output buffers as
               large; nginx's default is 8 KiB frames) when the client allows frames that large.
  /dav/<name>  ``dav_methods PUT DELETE`` (when this nginx has the dav module: ``has_dav``), with
               ``client_max_body_size 64m``: PUT a body, then GET it back.
  /trailers    ``TRAILERS_BODY`` then the trailer fields X-Checksum (its sha256) and
               X-Trailer: done (``add_trailer``).
  /fields      "fields", with ``FIELDS`` extra response fields X-F-<i>: <i> (``add_header``).
  anything else  404.

The access log (``log``) has one line per request, written unbuffered when nginx finishes the
request: ``$server_port $connection $server_protocol $request_method $uri $status
$body_bytes_sent``, parsed into ``LogEntry``. nginx finishes a request after it has handed the
last bytes of the response to the socket, so a client can have its response a moment before the
line is written: ``wait_for_entries`` polls the file (bounded) for the lines a test expects.
``$connection`` is nginx's serial number of the TCP connection: distinct values are connections.

``__main__`` (``python -m tests.servers.nginx``, used by ``make test``) installs Debian's nginx
when it is missing and we are root, best effort, and always exits 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from perf.nginx import (
    ensure_nginx,
    listen_http2,
    nginx_binary,
    nginx_modules,
    nginx_version,
    terminate,
    wait_accepting,
)
from tests.servers.hypercorn_app import pattern_slice

__all__ = [
    "BIG",
    "FIELDS",
    "TRAILERS_BODY",
    "LogEntry",
    "NginxServer",
    "ensure_nginx",
    "nginx_binary",
    "pattern_pieces",
]

BIG = 50_000_000
# n * 53 for 200 concurrent requests with different bodies, some larger than one 8 KiB frame.
SIZES = sorted({n * 53 for n in range(200)} | {1, 100, 1000, 10_000, 100_000, 1_000_000, BIG})

_CONFIG = """\
worker_processes 1;
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 1024; }}
http {{
    types {{ }}
    default_type application/octet-stream;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    log_format h2test '$server_port $connection $server_protocol $request_method $uri $status '
                      '$body_bytes_sent';
    access_log {root}/access.log h2test;
    keepalive_timeout 60s;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    root {root}/www;
{servers}}}
"""

_SERVER = """\
    server {{
        listen 127.0.0.1:{port} ssl{listen_http2};{http2_on}
{settings}        location = /bytes/{big} {{
            http2_chunk_size 256k;
            output_buffers 2 256k;
        }}
        location = /trailers {{
            add_trailer X-Checksum "{checksum}";
            add_trailer X-Trailer done;
            return 200 "{trailers_body}";
        }}
        location = /fields {{
{fields}            return 200 "fields";
        }}
{dav}    }}
"""
TRAILERS_BODY = "body before trailers"
FIELDS = 101  # response fields /fields adds (past the client's default limit of 100)

_DAV = """\
        location /dav/ {{
            dav_methods PUT DELETE;
            client_max_body_size 64m;
        }}
"""


@dataclass(frozen=True)
class LogEntry:
    """One line of the access log: one request."""

    port: int
    connection: int  # nginx's serial number of the TCP connection
    protocol: str  # "HTTP/2.0" or "HTTP/1.1"
    method: str
    uri: str
    status: int
    sent: int  # body bytes sent

    @classmethod
    def parse(cls, line: str) -> LogEntry:
        port, connection, protocol, method, uri, status, sent = line.split(" ")
        return cls(int(port), int(connection), protocol, method, uri, int(status), int(sent))


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports of 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def pattern_pieces(size: int, piece: int = 2_000_000) -> Iterator[bytes]:
    """``pattern(size)`` in pieces (a 50 MB body is never held whole)."""
    for start in range(0, size, piece):
        yield pattern_slice(start, min(piece, size - start))


def write_pattern(path: Path, size: int) -> None:
    with open(path, "wb") as file:
        for piece in pattern_pieces(size):
            file.write(piece)


class NginxServer:
    """See the module docstring."""

    def __init__(self, certfile: str, keyfile: str, binary: str | None = None) -> None:
        found = binary or nginx_binary()
        if found is None:
            raise RuntimeError("nginx is not installed")
        self.binary = found
        self.certfile = certfile
        self.keyfile = keyfile
        self.version = nginx_version(found)
        modules = nginx_modules(found)
        self.has_http2 = "--with-http_v2_module" in modules
        self.has_dav = "--with-http_dav_module" in modules
        self.description = f"nginx {'.'.join(map(str, self.version))}"
        self.root = Path(tempfile.mkdtemp(prefix="hyperhttp-nginx-"))
        self.log = self.root / "access.log"
        self.error_log = self.root / "error.log"
        self.port = self.limited_port = self.goaway_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def limited_url(self) -> str:
        return f"https://127.0.0.1:{self.limited_port}"

    @property
    def goaway_url(self) -> str:
        return f"https://127.0.0.1:{self.goaway_port}"

    # -- starting and stopping --------------------------------------------------------------

    def start(self) -> NginxServer:
        (self.root / "www" / "bytes").mkdir(parents=True)
        (self.root / "www" / "dav").mkdir()
        (self.root / "tmp").mkdir()
        for size in SIZES:
            write_pattern(self.root / "www" / "bytes" / str(size), size)
        for attempt in range(3):  # a free port may be taken between our probe and nginx's bind
            self.port, self.limited_port, self.goaway_port = _free_ports(3)
            (self.root / "nginx.conf").write_text(self._config())
            stderr = open(self.root / "stderr.log", "wb")  # noqa: SIM115 - closed below
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.root / "nginx.conf"), "-p", str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
            stderr.close()
            try:
                self._wait_accepting()
                return self
            except RuntimeError:
                self._terminate()
                if attempt == 2 or "Address already in use" not in self._errors():
                    self.stop()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _config(self) -> str:
        listen, http2_on = listen_http2(self.version)
        new_limits = self.version >= (1, 19, 7)
        servers = ""
        for port, settings in (
            (self.port, "http2_max_concurrent_streams 256;"),
            (self.limited_port, "http2_max_concurrent_streams 5;"),
            # Before 1.19.7 keepalive_requests did not apply to HTTP/2: http2_max_requests did.
            (
                self.goaway_port,
                "keepalive_requests 10;" if new_limits else "http2_max_requests 10;",
            ),
        ):
            servers += _SERVER.format(
                port=port,
                listen_http2=listen,
                http2_on=http2_on,
                settings=f"        {settings}\n",
                big=BIG,
                dav=_DAV.format() if self.has_dav else "",
                checksum=hashlib.sha256(TRAILERS_BODY.encode()).hexdigest(),
                trailers_body=TRAILERS_BODY,
                fields="".join(f"            add_header X-F-{i} {i};\n" for i in range(FIELDS)),
            )
        return _CONFIG.format(root=self.root, cert=self.certfile, key=self.keyfile, servers=servers)

    def _errors(self) -> str:
        text = ""
        for name in ("stderr.log", "error.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def _wait_accepting(self) -> None:
        process = self._process
        assert process is not None
        try:
            for port in (self.port, self.limited_port, self.goaway_port):
                wait_accepting(port, process)
        except RuntimeError as exc:
            raise RuntimeError(f"nginx: {exc}: {self._errors()[-2000:]}") from None

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            terminate(process)

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the logs ---------------------------------------------------------------------------

    def log_mark(self) -> int:
        """Where the access log ends now: pass it to ``entries`` or ``wait_for_entries``."""
        return _size(self.log)

    def error_mark(self) -> int:
        """Where the error log (level info) ends now: pass it to ``errors_since``."""
        return _size(self.error_log)

    def errors_since(self, since: int) -> str:
        """What nginx wrote to its error log after ``since`` (e.g. "concurrent streams exceeded",
        logged when a client opens more streams than http2_max_concurrent_streams)."""
        with open(self.error_log, "rb") as file:
            file.seek(since)
            return file.read().decode(errors="replace")

    def entries(self, since: int = 0) -> list[LogEntry]:
        """The requests logged after ``since`` (complete lines only)."""
        try:
            with open(self.log, "rb") as file:
                file.seek(since)
                data = file.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1].decode()
        return [LogEntry.parse(line) for line in complete.splitlines()]

    async def wait_for_entries(
        self, since: int, count: int, timeout: float = 5.0
    ) -> list[LogEntry]:
        """At least ``count`` requests logged after ``since``, polling the file for at most
        ``timeout`` s (the lines of requests already answered come within milliseconds)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.entries(since)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.005)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


if __name__ == "__main__":
    try:
        found = ensure_nginx()
    except Exception as exc:  # never fail the caller (make test): the tests skip without nginx
        found = None
        print(f"installing nginx failed: {exc!r}", file=sys.stderr)
    print(
        f"nginx for the HTTP/2 tests: {found}"
        if found
        else "nginx is not available (not installed, and not root or no apt-get): "
        "tests/integration/test_http2_nginx.py will be skipped"
    )
