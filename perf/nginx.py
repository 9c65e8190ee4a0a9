"""The benchmark's server: Debian's nginx with one worker, else hyperhttp's own demo server.

Both serve ``/bytes/<n>`` with Content-Length and keep-alive, on 127.0.0.1 only, pinned to the
last CPU so that the client under test has the first one to itself. With ``tls=True`` the same
paths are also served over TLS (HTTP/1.1 only, no HTTP/2) on a second port, with a CA and a
server certificate for 127.0.0.1 and localhost made by ``trustme`` at start-up; the CA's PEM is
written to a file for the clients to verify against. The TLS server offers no session
resumption (no tickets, no session cache), so every client pays full handshakes alike, and
nginx logs the TLS parameters of the first request on each TLS connection (``tls.log``) so the
benchmark can show how many handshakes each client made and what it negotiated.

With ``h2=True`` (nginx only) the same paths are served over TLS with HTTP/2 on a third port:
the same certificate and CA, the same TLS settings (no resumption), ALPN offering ``h2`` and
``http/1.1`` (a client that does not ask for h2 gets HTTP/1.1 there, and the log shows it). Only
``listen ... ssl http2`` (nginx < 1.25.1) or ``http2 on;`` (later) is added: every ``http2_*``
setting is nginx's default, notably ``http2_max_concurrent_streams 128`` (more than the
benchmark's 64 concurrent requests, so no client waits on the server's stream limit), a 64 KiB
initial stream window and ``http2_chunk_size 8k``; ``keepalive_requests`` and
``keepalive_timeout`` (above) also bound HTTP/2 connections since nginx 1.19.7. Its log,
``h2.log``, has one line per connection (first request only), as ``tls.log``, with the
``$server_protocol`` in front: ``HTTP/2.0`` proves that the client really spoke HTTP/2.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SIZES = {"200b": 200, "10k": 10 * 1024, "1m": 1024 * 1024}

_CONFIG = """
worker_processes 1;
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    types {{ }}
    default_type application/octet-stream;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root}/www;
{locations}    }}
{tls_server}}}
"""

# For the download scenario's big file only: nginx reads it into one 4 MiB buffer and writes that,
# instead of sendfile. On the 2-CPU VM this was written on, a raw client got a 1 GiB body over
# loopback at anywhere from 2 to 6 GiB/s with sendfile, from one download to the next, and at
# 3.8 to 4.5 GiB/s this way, nginx using 0.23-0.25 CPU seconds per GiB instead of 0.29-0.38:
# the benchmark wants the server to be neither the slow nor the noisy side.
_BULK_LOCATION = """\
        location = /bytes/{size} {{
            sendfile off;
            output_buffers 1 4m;
        }}
"""

# perf/waiters.py only (start_server(status=True)): nginx's counters, read before and after each
# measurement; "accepts" is how many connections it accepted, so their difference counts the
# connections a client opened (one more: the read after, on a connection of its own).
_STATUS_LOCATION = """\
        location = /nginx_status {
            stub_status;
        }
"""

# The TLS twins of the server above (HTTP/1.1 only, and HTTP/2). One log line per TLS connection
# (its first request only): a map lookup per request, the only difference from the plain server
# besides TLS itself. Over HTTP/2 each stream's $connection and $connection_requests are those of
# its connection, so the map also picks the connection's first stream.
_TLS_LOGS = """
    log_format tls '$connection $ssl_protocol $ssl_cipher $ssl_curve $ssl_session_reused';
    log_format h2 '$connection $server_protocol $ssl_protocol $ssl_cipher $ssl_curve '
                  '$ssl_session_reused';
    map $connection_requests $first_on_connection { 1 1; default 0; }
"""
_TLS_SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl{listen_http2} backlog=4096;{http2_on}
        root {root}/www;
        ssl_certificate {root}/tls/server.pem;
        ssl_certificate_key {root}/tls/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        access_log {root}/{log}.log {log} if=$first_on_connection;
    }}
"""


@dataclass
class Server:
    http_url: str
    description: str
    stop: Callable[[], None]
    https_url: str | None = None  # set when started with tls=True
    ca_file: str | None = None  # the PEM every client verifies the TLS server against
    tls_log: Path | None = None  # nginx only: one line per TLS connection, see _TLS_LOGS
    tls_description: str = ""
    h2_url: str | None = None  # nginx only, when started with h2=True: TLS with HTTP/2
    h2_log: Path | None = None  # one line per connection, with its protocol first
    h2_description: str = ""
    status_url: str | None = None  # nginx only, when started with status=True: stub_status


def make_certificates(directory: Path) -> dict[str, Path]:
    """A fresh CA, a server certificate for 127.0.0.1 and localhost, and an unrelated CA.

    Returns the paths: ``ca`` (PEM the clients trust), ``cert`` (server chain), ``key``, and
    ``other_ca`` (a CA that did not sign the server's certificate, to check that clients reject it).
    """
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = {
        "ca": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "other_ca": directory / "other-ca.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    paths["cert"].write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    trustme.CA().cert_pem.write_to_path(str(paths["other_ca"]))
    return paths


def nginx_binary() -> str | None:
    """nginx on PATH, else Debian's /usr/sbin/nginx (not on a non-root PATH); None if neither."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def ensure_nginx() -> str | None:
    """Install Debian's nginx when it is missing and we are root; its path, or None.

    The full package (not nginx-light): the tests' server needs its DAV module. The package may
    start the system's nginx (port 80); only that one is stopped, through the pid file of the
    system configuration, never an nginx a benchmark or a test is running."""
    binary = nginx_binary()
    if binary is not None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return binary
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
        env=env,
        capture_output=True,
        check=False,
    )
    binary = nginx_binary()
    if binary is not None:
        subprocess.run([binary, "-s", "stop"], capture_output=True, check=False)
    return binary


def nginx_version(binary: str) -> tuple[int, ...]:
    """(1, 22, 1) from ``nginx -v``'s "nginx version: nginx/1.22.1"; () when not found."""
    text = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr
    number = text.strip().rpartition("/")[2].split(" ")[0] if "/" in text else ""
    return tuple(int(part) for part in number.split(".") if part.isdigit())


def nginx_modules(binary: str) -> str:
    """``nginx -V``'s output: the configure arguments, hence the modules built in."""
    return subprocess.run([binary, "-V"], capture_output=True, text=True, check=False).stderr


def listen_http2(version: tuple[int, ...]) -> tuple[str, str]:
    """What turns HTTP/2 on in a server block of this nginx: the ``listen`` parameter (before
    1.25.1) or the ``http2 on;`` line (from 1.25.1, where the parameter is deprecated)."""
    if version >= (1, 25, 1):
        return "", "\n        http2 on;"
    return " http2", ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_cpu() -> list[str]:
    cpus = os.cpu_count() or 1
    if cpus > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpus - 1)]
    return []


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop a server process: politely, then firmly after 5 s."""
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def wait_accepting(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until ``port`` of 127.0.0.1 accepts connections (bounded: 10 s); RuntimeError when the
    server exits or does not get there."""
    for _ in range(1000):  # bounded: 10 s
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("server did not start accepting connections")


_FALLBACK = """
import asyncio, os, socket, ssl, sys
from hyperhttp._demo_server import _ServerProtocol
try:
    import uvloop
    loop = uvloop.new_event_loop()
except ImportError:
    loop = asyncio.new_event_loop()
cpus = os.cpu_count() or 1
if cpus > 1 and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {{cpus - 1}})
def listen(port):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    return sock
loop.run_until_complete(loop.create_server(_ServerProtocol, sock=listen({port})))
if {tls_port}:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain({cert!r}, {key!r})
    context.options |= ssl.OP_NO_TICKET  # no resumption, as for nginx
    context.num_tickets = 0
    context.set_alpn_protocols(["http/1.1"])
    loop.run_until_complete(
        loop.create_server(_ServerProtocol, sock=listen({tls_port}), ssl=context)
    )
loop.run_forever()
"""


def write_random(path: Path, size: int) -> None:
    """``size`` random bytes (the first 128 MiB unique, then repeated: nothing compresses them)."""
    unique = os.urandom(min(size, 128 * 1024 * 1024))
    with open(path, "wb") as file:
        written = 0
        while written < size:
            piece = unique[: size - written]
            file.write(piece)
            written += len(piece)


def _tls_server(root: Path, port: int, log: str, http2: bool, version: tuple[int, ...]) -> str:
    """A TLS server block for the same files; HTTP/2 with the syntax this nginx takes."""
    listen, http2_on = listen_http2(version) if http2 else ("", "")
    return _TLS_SERVER.format(root=root, port=port, log=log, listen_http2=listen, http2_on=http2_on)


def start_server(
    prefer_nginx: bool = True,
    tls: bool = False,
    extra_sizes: tuple[int, ...] = (),
    h2: bool = False,
    status: bool = False,
) -> Server:
    """Start a server (plain HTTP, and TLS on a second port when ``tls``); return its addresses.

    ``extra_sizes``: nginx only, more ``/bytes/<n>`` files, of random bytes (the download
    scenario's 1 GiB), written to the run's temp directory and removed by ``stop``, and served
    through buffers of 4 MiB rather than sendfile (see ``_BULK_LOCATION``).
    ``h2``: nginx only, the same files over TLS with HTTP/2 on another port (``h2_url``; the
    demo server has no HTTP/2, and leaves ``h2_url`` None).
    ``status``: nginx only, its ``stub_status`` counters at ``status_url`` on the plain port
    (``perf/waiters.py`` counts the connections each client opened from them; None otherwise).
    """
    binary = nginx_binary() if prefer_nginx else None
    h2 = h2 and binary is not None
    port = _free_port()
    tls_port = _free_port() if tls else 0
    h2_port = _free_port() if h2 else 0
    root = Path(tempfile.mkdtemp(prefix="hyperhttp-perf-"))
    certificates = make_certificates(root / "tls") if tls or h2 else {}
    tls_log: Path | None = None
    h2_description = ""
    if binary is not None:
        (root / "www" / "bytes").mkdir(parents=True)
        (root / "tmp").mkdir()
        for size in SIZES.values():
            (root / "www" / "bytes" / str(size)).write_bytes(bytes(i % 251 for i in range(size)))
        for size in extra_sizes:
            write_random(root / "www" / "bytes" / str(size), size)
        version = nginx_version(binary)
        tls_server = _TLS_LOGS if tls or h2 else ""
        if tls:
            tls_server += _tls_server(root, tls_port, "tls", False, version)
        if h2:
            tls_server += _tls_server(root, h2_port, "h2", True, version)
        locations = "".join(_BULK_LOCATION.format(size=size) for size in extra_sizes)
        if status:
            locations += _STATUS_LOCATION
        (root / "nginx.conf").write_text(
            _CONFIG.format(root=root, port=port, tls_server=tls_server, locations=locations)
        )
        process = subprocess.Popen(
            [*_server_cpu(), binary, "-c", str(root / "nginx.conf"), "-p", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        description = f"nginx/{'.'.join(map(str, version))} (1 worker)"
        openssl = _nginx_openssl(binary)
        tls_description = (
            f"TLS 1.2-1.3, HTTP/1.1 only, no session tickets or cache, running with {openssl}"
        )
        tls_log = root / "tls.log" if tls else None
        h2_description = (
            "TLS 1.2-1.3, ALPN h2 and http/1.1, nginx's default http2 settings "
            "(http2_max_concurrent_streams 128), no session tickets or cache, "
            f"running with {openssl}"
        )
    else:
        code = _FALLBACK.format(
            port=port,
            tls_port=tls_port,
            cert=str(certificates.get("cert", "")),
            key=str(certificates.get("key", "")),
        )
        process = subprocess.Popen(
            [*_server_cpu(), sys.executable, "-c", code],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        description = "hyperhttp demo server (asyncio+httptools; nginx not installed)"
        tls_description = "Python ssl module, HTTP/1.1 only, no session tickets"
    for listening in (port, tls_port, h2_port):
        if listening:
            wait_accepting(listening, process)

    def stop() -> None:
        terminate(process)
        shutil.rmtree(root, ignore_errors=True)

    return Server(
        http_url=f"http://127.0.0.1:{port}",
        description=description,
        stop=stop,
        https_url=f"https://127.0.0.1:{tls_port}" if tls else None,
        ca_file=str(certificates["ca"]) if tls or h2 else None,
        tls_log=tls_log,
        tls_description=tls_description if tls else "",
        h2_url=f"https://127.0.0.1:{h2_port}" if h2 else None,
        h2_log=root / "h2.log" if h2 else None,
        h2_description=h2_description if h2 else "",
        status_url=f"http://127.0.0.1:{port}/nginx_status" if status and binary else None,
    )


def _nginx_openssl(binary: str) -> str:
    """The TLS library nginx runs with, from ``nginx -V`` ("built with X (running with Y)")."""
    text = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    for line in text.splitlines():
        if line.startswith("built with "):
            built = line.removeprefix("built with ")
            if "(running with " in built:
                return built.split("(running with ", 1)[1].rstrip(")").strip()
            return built.strip()
    return "an unknown TLS library"


if __name__ == "__main__":
    print(ensure_nginx() or "nginx is not available: the benchmark will use its own server")
