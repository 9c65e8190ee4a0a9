"""Proxies for tests: pproxy (a real one, in a subprocess) and RecordingProxy (ours, threaded).

``PproxyServer`` runs pproxy (HTTP forwarding and CONNECT, SOCKS4, SOCKS5, optional Basic or
RFC 1929 user:password auth, optional TLS on the listening side) on 127.0.0.1. What pproxy does
that a test must know:

- pproxy 2.7.9's ``python -m pproxy`` installs uvloop when it can import it, then calls
  ``asyncio.get_event_loop()``, which uvloop >= 0.21 refuses without a current loop: it dies at
  start-up in any environment that has uvloop (ours does). We start its ``main()`` with uvloop
  hidden and a plain asyncio loop set instead.
- It remembers an authenticated client *per IP address* for ``--auth`` seconds (30 days by
  default) and then lets every connection from that address through without credentials: on
  loopback, one authenticated test would open the proxy to all that follow. We pass
  ``--auth=-1`` so that every connection must authenticate.
- It reads ``Proxy-Authorization`` only when spelled exactly so (its header dict is case
  sensitive, split on ": "), and strips forwarded fields whose names start with "Proxy-"
  (case sensitive too).
- Its SOCKS4 and SOCKS5 success replies go out *before* it connects to the target: a target that
  refuses shows as a granted tunnel that closes at once, never as a SOCKS error code. A wrong
  SOCKS5 password, or no acceptable method, closes the connection without the RFC 1929 failure
  status (or the 0xFF method reply). An HTTP CONNECT to a target that refuses closes the
  connection without any HTTP response. SOCKS4a (a host name after the user id) is not read.
- Its 407 has ``Connection: close`` and no Content-Length; its 200 to CONNECT carries
  ``Connection: close`` as well (a client must ignore that on a 2xx to CONNECT).

``RecordingProxy`` is an HTTP proxy of our own, threaded like ``faults.ScriptedServer``, that
records the exact bytes of every request head it receives (``heads``) and of every head it
forwards to an origin (``forwarded``), so tests can check what a client sends to a proxy and
what reaches the origin. It only ever connects to 127.0.0.1, ::1 and localhost.
"""

from __future__ import annotations

import base64
import re
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO
from urllib.parse import quote, urlsplit

__all__ = ["PproxyServer", "RecordingProxy", "basic_credentials"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "localhost"})


def basic_credentials(user: str, password: str) -> str:
    """The value of a Basic ``Proxy-Authorization`` field (RFC 7617: UTF-8 user:password)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# pproxy's main() without uvloop (see the module docstring), on a loop of our own.
_PPROXY_MAIN = (
    "import asyncio, sys; sys.modules['uvloop'] = None; "
    "asyncio.set_event_loop(asyncio.new_event_loop()); "
    "from pproxy.server import main; main()"
)


class PproxyServer:
    """pproxy listening on 127.0.0.1 with one scheme: "http", "socks5" or "socks4".

    ``auth=(user, password)`` requires credentials: Basic ``Proxy-Authorization`` for http,
    RFC 1929 username/password for socks5; for socks4 pproxy compares the whole user id with
    "user:password". ``tls=(certfile, keyfile)`` makes the listening side TLS (an https proxy,
    http only). pproxy binds port 0 and prints the port it got: no race for a free port.
    """

    def __init__(
        self,
        scheme: str = "http",
        auth: tuple[str, str] | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        if scheme not in ("http", "socks5", "socks4"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        if tls is not None and scheme != "http":
            raise ValueError("pproxy serves TLS here for http only")
        self.scheme = scheme
        self.auth = auth
        self.tls = tls
        self.username = auth[0] if auth else None
        self.password = auth[1] if auth else None
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def command(self) -> list[str]:
        """The command line (the uvloop-free launcher, then pproxy's own arguments)."""
        listen = f"{self.scheme}{'+ssl' if self.tls else ''}://127.0.0.1:0"
        if self.auth is not None:
            listen += f"#{self.auth[0]}:{self.auth[1]}"
        command = [sys.executable, "-u", "-c", _PPROXY_MAIN, "-l", listen, "--auth=-1"]
        if self.tls is not None:
            command += ["--ssl", ",".join(self.tls)]
        return command

    def start(self, timeout: float = 5.0) -> PproxyServer:
        """Start pproxy and return once it accepts connections; fail with its output if not."""
        self._output = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(rb"Serving on .*?127\.0\.0\.1:(\d+)", self.output())
            if found:
                self.port = int(found.group(1))
                if self._accepts():
                    break
            if self.process.poll() is not None:
                break
            threading.Event().wait(0.01)  # a poll interval, bounded by the deadline
        else:
            self.stop()
            raise RuntimeError(f"pproxy did not start in {timeout} s:\n{self.output().decode()}")
        if not self.port or self.process.poll() is not None:
            output = self.output().decode()
            self.stop()
            raise RuntimeError(f"pproxy did not start:\n{output}")
        scheme = "https" if self.tls else self.scheme
        userinfo = ""
        if self.auth is not None:
            userinfo = f"{quote(self.auth[0], safe='')}:{quote(self.auth[1], safe='')}@"
        self.url = f"{scheme}://{userinfo}127.0.0.1:{self.port}"
        return self

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def output(self) -> bytes:
        """What pproxy printed so far (stdout and stderr)."""
        if self._output is None:
            return b""
        self._output.seek(0)
        return self._output.read()

    def stop(self) -> None:
        """Terminate pproxy (kill it if it does not exit within 5 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._output is not None:
            self._output.close()
            self._output = None


class _Reader:
    """Buffered reads from a blocking socket: heads, lines, exact lengths."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (OSError, ValueError):  # reset, or closed by stop()
            return False
        self.buffer += data
        return bool(data)

    def until(self, delimiter: bytes, limit: int = 65536) -> bytes | None:
        """Everything up to and including ``delimiter``; None at EOF or past ``limit``."""
        while delimiter not in self.buffer:
            if len(self.buffer) > limit or not self._fill():
                return None
        end = self.buffer.index(delimiter) + len(delimiter)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def some(self) -> bytes:
        """What is buffered, or the next read; b"" at EOF."""
        if not self.buffer:
            self._fill()
        data, self.buffer = self.buffer, b""
        return data


class _Head:
    """A parsed message head: the start line's three parts, and the field lines as received."""

    def __init__(self, raw: bytes) -> None:
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        while len(parts) < 3:
            parts.append(b"")
        self.first, self.second, self.third = parts
        self.lines = lines[1:]

    def get(self, name: bytes) -> bytes | None:
        for line in self.lines:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        return None

    def has_token(self, name: bytes, token: bytes) -> bool:
        values = b",".join(
            line.partition(b":")[2]
            for line in self.lines
            if line.partition(b":")[0].strip().lower() == name
        )
        return token in (part.strip().lower() for part in values.split(b","))


def _split_authority(authority: str) -> tuple[str, int] | None:
    """host:port or [v6]:port, as CONNECT and absolute-form targets carry it."""
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host, int(port)


def _response(status: str, *fields: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *fields, "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


PROXY_AUTH_REQUIRED = _response(
    "407 Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="test"'
)


class _Closed(Exception):
    """A side of the exchange closed (or the proxy stopped): end this client connection."""


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1:0 that records what it receives and what it forwards.

    CONNECT opens a tunnel (``200 Connection established``) and relays bytes both ways until
    either side ends, then closes both (a half-close is not carried over). A request in
    absolute form (``GET http://host:port/p``) is forwarded in origin form without
    ``Proxy-Authorization``, body and response relayed by their framing (1xx included), and the
    client connection is kept for the next request (to any origin); the connection to the
    origin is kept too while the next request goes to the same one.

    ``heads`` holds every request head received from clients, byte for byte through the blank
    line; ``forwarded`` every head sent to an origin; ``accepted`` counts client connections and
    ``upstream_connections`` the connections opened to targets (tunnels and forwarding).

    Options: ``require_auth=(user, password)`` answers 407 to requests without that Basic
    ``Proxy-Authorization`` (then closes after a CONNECT; keeps the connection after a
    forwarded request, its body read and dropped). ``refuse_connect="403 Forbidden"`` answers
    every CONNECT with that status and closes. ``tls=(certfile, keyfile)`` makes the listening
    side TLS (an https proxy); ``ca_path`` is the CA that signed it, kept for the test's client.

    Only 127.0.0.1, ::1 and localhost are reached; any other target gets 502.
    """

    def __init__(
        self,
        require_auth: tuple[str, str] | None = None,
        refuse_connect: str | None = None,
        tls: tuple[str, str] | None = None,
        ca_path: str | None = None,
    ) -> None:
        self.require_auth = require_auth
        self.refuse_connect = refuse_connect
        self.ca_path = ca_path
        self.heads: list[bytes] = []
        self.forwarded: list[bytes] = []
        self.accepted = 0
        self.upstream_connections = 0
        self.errors: list[Exception] = []  # unexpected exceptions (bugs) in connection threads
        self.stopped = threading.Event()
        self._expected_auth = (
            basic_credentials(*require_auth).encode("latin-1") if require_auth else None
        )
        self._context: ssl.SSLContext | None = None
        if tls is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(*tls)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        # The certificates of tests/integration/conftest.py cover 127.0.0.1: no name to resolve.
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    # -- bookkeeping -------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        """Remember a socket so stop() can shut it down; refuse new ones once stopping."""
        with self._lock:
            if self.stopped.is_set():
                sock.close()
                raise _Closed
            self._sockets.append(sock)

    def _accept_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self.accepted += 1
                self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Close the listener and shut down every socket: each blocked read then ends."""
        self.stopped.set()
        self._acceptor.join(2)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(2)
        for sock in sockets:
            sock.close()

    # -- one client connection ---------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        origin = _Origin()
        try:
            self._track(sock)
            if self._context is not None:
                sock = self._context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
                self._track(sock)
                sock.do_handshake()
            client = _Reader(sock)
            while self._exchange(client, origin):
                pass
        except (_Closed, OSError, ValueError):
            pass  # a side closed, reset, or the proxy stopped (ssl.SSLError is an OSError)
        except Exception as error:  # a bug here: keep it for the test to see
            if not self.stopped.is_set():  # (stop() can break a connection mid-way)
                self.errors.append(error)
        finally:
            origin.close()
            _close(sock)

    def _exchange(self, client: _Reader, origin: _Origin) -> bool:
        """Serve one request from the client; False when the connection is done."""
        raw = client.until(b"\r\n\r\n")
        if raw is None:
            return False
        with self._lock:
            self.heads.append(raw)
        head = _Head(raw)
        if head.first == b"CONNECT":
            self._connect(client, head)
            return False
        authorised = self._authorised(head)
        target = urlsplit(head.second.decode("latin-1"))
        if target.scheme != "http" or not target.netloc:
            client.sock.sendall(_response("400 Bad Request", "Connection: close"))
            return False
        if not authorised:
            if head.has_token(b"expect", b"100-continue"):
                client.sock.sendall(PROXY_AUTH_REQUIRED)  # the body will not come: close
                return False
            _relay_body(client, head, None)  # read and dropped
            client.sock.sendall(PROXY_AUTH_REQUIRED)
            return not head.has_token(b"connection", b"close")
        address = _split_authority(target.netloc if target.port else target.netloc + ":80")
        if address is None or address[0] not in LOOPBACK_NAMES:
            client.sock.sendall(_response("502 Bad Gateway", "Connection: close"))
            return False
        return self._forward(client, head, target.path or "/", target.query, address, origin)

    def _authorised(self, head: _Head) -> bool:
        if self._expected_auth is None:
            return True
        given = head.get(b"proxy-authorization")
        if given is None:
            return False
        scheme, _, credentials = given.partition(b" ")
        return scheme.lower() == b"basic" and b"Basic " + credentials.strip() == self._expected_auth

    def _connect(self, client: _Reader, head: _Head) -> None:
        if not self._authorised(head):
            client.sock.sendall(PROXY_AUTH_REQUIRED)
            return
        if self.refuse_connect is not None:
            client.sock.sendall(_response(self.refuse_connect))
            return
        address = _split_authority(head.second.decode("latin-1"))
        if address is None or address[0] not in LOOPBACK_NAMES:
            client.sock.sendall(_response("502 Bad Gateway"))
            return
        try:
            remote = self._open(address)
        except OSError:
            client.sock.sendall(_response("502 Bad Gateway"))
            return
        try:
            client.sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _tunnel(client, _Reader(remote))
        finally:
            _close(remote)

    def _open(self, address: tuple[str, int]) -> socket.socket:
        remote = socket.create_connection(address, timeout=2)
        remote.settimeout(None)
        self._track(remote)
        with self._lock:
            self.upstream_connections += 1
        return remote

    def _forward(
        self,
        client: _Reader,
        head: _Head,
        path: str,
        query: str,
        address: tuple[str, int],
        kept: _Origin,
    ) -> bool:
        """Send the request in origin form, relay the response; True to keep the client."""
        if kept.reader is not None and kept.address != address:
            kept.close()
        if kept.reader is None:
            try:
                kept.reader, kept.address = _Reader(self._open(address)), address
            except OSError:
                client.sock.sendall(_response("502 Bad Gateway", "Connection: close"))
                return False
        origin = kept.reader
        remote = origin.sock
        target = path + ("?" + query if query else "")
        lines = [head.first + b" " + target.encode("latin-1") + b" " + head.third]
        lines += [
            line
            for line in head.lines
            if line.partition(b":")[0].strip().lower() != b"proxy-authorization"
        ]
        rewritten = b"\r\n".join(lines) + b"\r\n\r\n"
        with self._lock:
            self.forwarded.append(rewritten)
        remote.sendall(rewritten)
        waits_for_continue = head.has_token(b"expect", b"100-continue")
        if waits_for_continue and _first_readable(client, origin) is client:
            waits_for_continue = False  # the client stopped waiting for 100 (Continue)
        if not waits_for_continue:
            _relay_body(client, head, remote)
        while True:
            raw = origin.until(b"\r\n\r\n")
            if raw is None:
                raise _Closed
            response = _Head(raw)
            client.sock.sendall(raw)
            if not response.second.startswith(b"1") or response.second == b"101":
                break
            if waits_for_continue and response.second == b"100":
                waits_for_continue = False
                _relay_body(client, head, remote)
        if response.second == b"101" or waits_for_continue:
            # No upgrades here; and a final answer before 100 leaves the body unread: close.
            _relay_response_body(origin, head, response, client.sock)
            return False
        keep_origin = _relay_response_body(origin, head, response, client.sock)
        if not keep_origin or response.has_token(b"connection", b"close"):
            kept.close()
            if not keep_origin:
                return False  # a close-delimited body: only the close marked its end
        return not head.has_token(b"connection", b"close")


def _has_pending(reader: _Reader) -> bool:
    """Data that select() cannot see: in our buffer, or decrypted and held by the TLS layer."""
    sock = reader.sock
    return bool(reader.buffer) or (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0)


def _first_readable(*readers: _Reader) -> _Reader:
    """The first of ``readers`` with something to read (or EOF). No timeout: stop() shuts the
    sockets down, which makes them readable."""
    for reader in readers:
        if _has_pending(reader):
            return reader
    ready, _, _ = select.select([reader.sock for reader in readers], [], [])
    return next(reader for reader in readers if reader.sock in ready)


def _tunnel(client: _Reader, remote: _Reader) -> None:
    """Relay bytes both ways until either side ends (or resets); the caller closes both.

    One thread and select(), not a thread per direction: an ssl.SSLSocket (the https proxy's
    client side) must not be read and written from two threads at once."""
    peers = {id(client): remote.sock, id(remote): client.sock}
    while True:
        source = _first_readable(client, remote)
        data = source.some()
        if not data:
            return
        peers[id(source)].sendall(data)


class _Origin:
    """The connection to an origin that a client connection forwards to, kept between requests
    while they go to the same origin."""

    def __init__(self) -> None:
        self.reader: _Reader | None = None
        self.address: tuple[str, int] | None = None

    def close(self) -> None:
        if self.reader is not None:
            _close(self.reader.sock)
        self.reader = self.address = None


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _relay_body(source: _Reader, head: _Head, destination: socket.socket | None) -> None:
    """Relay a request body by its framing (dropped when ``destination`` is None)."""
    if head.has_token(b"transfer-encoding", b"chunked"):
        _relay_chunked(source, destination)
    elif head.get(b"content-length") is not None:
        _relay_length(source, int(head.get(b"content-length") or 0), destination)


def _relay_response_body(
    origin: _Reader, request: _Head, response: _Head, destination: socket.socket
) -> bool:
    """Relay a response body by its framing (RFC 9112 section 6.3); False if it was delimited
    by the origin closing, which leaves nothing to keep."""
    status = response.second
    if request.first == b"HEAD" or status in (b"204", b"304") or status.startswith(b"1"):
        return True
    if response.has_token(b"transfer-encoding", b"chunked"):
        _relay_chunked(origin, destination)
        return True
    length = response.get(b"content-length")
    if length is not None:
        _relay_length(origin, int(length), destination)
        return True
    while True:
        data = origin.some()
        if not data:
            return False
        destination.sendall(data)


def _relay_length(source: _Reader, size: int, destination: socket.socket | None) -> None:
    while size > 0:
        data = source.some()
        if not data:
            raise _Closed
        if len(data) > size:
            data, source.buffer = data[:size], data[size:] + source.buffer
        size -= len(data)
        if destination is not None:
            destination.sendall(data)


def _relay_chunked(source: _Reader, destination: socket.socket | None) -> None:
    """Relay chunked framing as it is, chunk by chunk, through the trailer section."""
    while True:
        line = source.until(b"\r\n")
        if line is None:
            raise _Closed
        if destination is not None:
            destination.sendall(line)
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        _relay_length(source, size + 2, destination)  # the data and its CRLF
    while True:  # trailer fields, then the empty line
        line = source.until(b"\r\n")
        if line is None:
            raise _Closed
        if destination is not None:
            destination.sendall(line)
        if line == b"\r\n":
            return
