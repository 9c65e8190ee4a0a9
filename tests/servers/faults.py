"""A scripted raw TCP server for faults no real server produces on demand.

Each accepted connection runs ``script(conn)`` in its own thread with a blocking socket, so the
server works the same whichever event loop the client under test runs on. A script reads requests
and writes exactly the bytes it wants: malformed heads, lying lengths, resets, stalls.

Stalls wait on the server's stop event, never on a sleep: stopping the server releases them.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from typing import Callable, Iterator

__all__ = ["ScriptedServer", "Conn"]


class Conn:
    """One accepted connection, as seen by a script."""

    def __init__(self, sock: socket.socket, server: ScriptedServer) -> None:
        self.sock = sock
        self.server = server
        self._buffer = b""
        self.requests: list[bytes] = []

    def read_head(self) -> bytes | None:
        """Read one request head, without its body (what follows stays unread); None at EOF."""
        while b"\r\n\r\n" not in self._buffer:
            data = self._recv()
            if not data:
                return None
            self._buffer += data
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        return head

    def read_request(self) -> bytes | None:
        """Read one request head (and its Content-Length or chunked body); None at EOF."""
        head = self.read_head()
        if head is None:
            return None
        lower = head.lower()
        body = b""
        if b"\r\ncontent-length:" in lower:
            length = int(lower.split(b"\r\ncontent-length:")[1].split(b"\r\n")[0])
            while len(self._buffer) < length:
                data = self._recv()
                if not data:
                    return None
                self._buffer += data
            body, self._buffer = self._buffer[:length], self._buffer[length:]
        elif b"\r\ntransfer-encoding: chunked" in lower:
            while b"\r\n0\r\n\r\n" not in b"\r\n" + self._buffer:
                data = self._recv()
                if not data:
                    return None
                self._buffer += data
            body, _, self._buffer = (b"\r\n" + self._buffer).partition(b"\r\n0\r\n\r\n")
            body = body[2:] + (b"\r\n" if body[2:] else b"") + b"0\r\n\r\n"
        request = head + b"\r\n\r\n" + body
        self.requests.append(request)
        self.server.requests.append(request)
        return request

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def stall(self) -> None:
        """Say nothing until the server is stopped."""
        self.server.stopped.wait()

    def wait(self, event: threading.Event) -> None:
        """Pause until the test sets ``event`` (or the server stops)."""
        while not event.wait(0.05):
            if self.server.stopped.is_set():
                return


Script = Callable[[Conn], None]


def _open_socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def established(*ports: int) -> int:
    """Sockets this process holds open that are connected to these server ports.

    The client's ends, matched by inode against this process's file descriptors: a socket counts
    until the client's close() returns, whatever the TCP state. (TCP states are no measure under
    gVisor, whose network stack moves a closed socket out of ESTABLISHED asynchronously, on
    either end.)
    """
    wanted = {f"{port:04X}" for port in ports}
    # The table first, then the descriptors: neither read is atomic, and a client that closes
    # one socket and opens another during the scan must not have both counted (an overcount
    # seen under churn when the descriptors were read first). Read this way, a socket counts
    # only if it was in the table before, and still open after: never more than were open.
    rows = [fields for fields in _tcp_sockets() if fields[2].rsplit(":", 1)[1] in wanted]
    inodes = _open_socket_inodes()
    return len({fields[9] for fields in rows if fields[9] in inodes})


def _tcp_sockets() -> Iterator[list[str]]:
    """The kernel's TCP socket table rows (IPv4 and IPv6), split into fields.

    Read while sockets come and go, the table can list one socket twice (seen here in a quarter
    of the reads under churn): count sockets by inode (field 9), not by row."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    yield line.split()
        except OSError:
            continue


class ScriptedServer:
    """Listen on 127.0.0.1:0 and run ``script`` for every connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.stopped = threading.Event()
        self.accepted = 0
        self.live = 0
        self.peak = 0
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(512)
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                self.accepted += 1
                self.live += 1
                self.peak = max(self.peak, established(self.port))
                self._connections.append(sock)
            thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            self.script(Conn(sock, self))
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self._lock:
                self.live -= 1

    def stop(self) -> None:
        self.stopped.set()
        self._acceptor.join(2)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(2)


def respond(status: str = "200 OK", body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    """A well-formed HTTP/1.1 response with Content-Length."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def answer_once(data: bytes = b"", then: str = "close") -> Script:
    """A script that reads one request, sends ``data``, then does ``then``: close, reset or stall."""

    def script(conn: Conn) -> None:
        conn.read_request()
        if data:
            conn.send(data)
        getattr(conn, then)()

    return script


def keep_answering(response: bytes) -> Script:
    """A script answering every request on the connection with ``response``."""

    def script(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(response)

    return script


def close_on_second_request(first_connection: threading.Event, body: bytes = b"fresh") -> Script:
    """The stale keep-alive race: the first connection answers one request ("first"), then
    reads the next and closes without answering; later connections answer ``body``."""

    def script(conn: Conn) -> None:
        if not first_connection.is_set():
            first_connection.set()
            conn.read_request()
            conn.send(respond(body=b"first"))
            conn.read_request()  # the next request arrives ...
            conn.close()  # ... and the server closes without answering
            return
        keep_answering(respond(body=body))(conn)

    return script


class HangingListener:
    """A listener whose accept backlog is full: a new connect to it gets no answer and hangs.

    ``listen(0)`` leaves room for one connection, which is taken here and never accepted; the
    kernel then drops further SYNs. On loopback this is the only way to make a connect hang.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.listener.bind((host, port))
        self.listener.listen(0)
        self.port: int = self.listener.getsockname()[1]
        self.filler = socket.socket(family, socket.SOCK_STREAM)
        self.filler.settimeout(5)
        self.filler.connect((host, self.port))  # completes at once: the one free place

    def close(self) -> None:
        self.filler.close()
        self.listener.close()


def syn_sent(port: int) -> int:
    """Connects to this remote port still waiting for the server's SYN-ACK (SYN_SENT)."""
    wanted = f"{port:04X}"
    return len(
        {
            fields[9]
            for fields in _tcp_sockets()
            if fields[3] == "02" and fields[2].endswith(":" + wanted)
        }
    )
