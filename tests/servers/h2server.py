"""A scripted HTTP/2 server (on the ``h2`` library) for faults no real server produces on demand.

It runs in a background thread with its own asyncio loop, so the client under test can run on
asyncio or uvloop. With ``certfile``/``keyfile`` it serves TLS with ALPN ``h2`` only (``url`` is
``https://localhost:<port>``); without, it serves h2c with prior knowledge (``url`` is
``http://127.0.0.1:<port>``). It listens on 127.0.0.1 only. Stalls wait on events, never on sleeps:
a stalled stream ends when the client resets it, the connection goes, or the server stops.

Routes, by ``:path``:
  /bytes/<n>        n bytes of ``pattern(n)`` with Content-Length, sent strictly within the client's
                    flow-control windows: what the windows allow, split to the client's
                    SETTINGS_MAX_FRAME_SIZE, then nothing until a WINDOW_UPDATE (or a SETTINGS
                    change) opens them again. The server never buffers past the window. HEAD: the
                    headers (Content-Length n) and no body.
  /upload           reads the whole request body, handing flow control back (WINDOW_UPDATE) only as
                    it is consumed, and answers JSON {"length": n, "sha256": hex}.
  /echo-headers     JSON list of [name, value] pairs of the request's headers, pseudo-headers
                    included, in the order received (latin-1 decoded).
  /rst/<code>       RST_STREAM(code) straight away, nothing else.
  /rst-after-headers/<code>  response headers (Content-Length 100000), 4096 bytes of pattern(),
                    then RST_STREAM(code).
  /hang             never answers; waits until the client resets the stream (recorded in
                    ``resets``) or the connection goes.
  /held             held until ``hold_until`` streams are open at once on that connection, then
                    every held stream on it is answered (200, b"released"). The hold is bounded
                    by ``hold_timeout`` (5 s): a stream still held then is answered 504 and
                    counted in ``hold_timeouts``, so a client that serializes fails instead of
                    hanging the test. With ``hold_until=None`` /held answers at once.
  /trailers         a body (b"body before trailers\\n") then trailers x-checksum (sha256 of the
                    body) and x-trailer: done; the headers announce them in a Trailer field.
  /trailers/<n>     the same body, then n trailer fields x-t-<i>: <i>.
  /fields/<n>       200 with n extra response fields x-f-<i>: <i> and body b"fields".
  /big-field/<n>    200 with one field x-big of n bytes and body b"fields".
  /early-end        does not read the request body (nor grant window for it): answers at once
                    413 with body b"too large" and END_STREAM, and does not reset the stream.
  /close            aborts the TCP connection (no GOAWAY, no TLS close_notify): a connection
                    error for every stream on it.
  /protocol-error   writes a malformed frame (DATA on stream 0, a connection error of type
                    PROTOCOL_ERROR) and waits; the client's GOAWAY is recorded in ``goaways``.
  anything else     404.

Every route but /rst, /close and /protocol-error reads the request body before answering.

Connection behaviour:
  SETTINGS          the server's first frame advertises MAX_CONCURRENT_STREAMS (when given),
                    INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE as configured; the receive side applies
                    them when the client ACKs (RFC 9113 6.5.3). An initial_window_size above 65535
                    also grows the connection window by a WINDOW_UPDATE on stream 0.
  max_concurrent_streams  enforced by this server, not by h2: a stream beyond the limit still
                    counts in ``max_open_streams`` (so a test sees the violation), is listed in
                    ``refused`` and reset with REFUSED_STREAM.
  goaway_after=N    when the Nth request stream arrives on a connection, GOAWAY(NO_ERROR,
                    last_stream_id=its id) is sent at once. Streams up to it are answered; later
                    ones are never answered (listed in ``ignored``, their DATA still credited to
                    the connection window). When the last stream up to it is done, the server
                    closes the connection as nginx does (a lingering close): it sends everything,
                    then reads and drops what the client still sends until the client closes (or
                    ``linger`` seconds pass), so no reset destroys the GOAWAY or the responses
                    on their way. Without TLS it sends a FIN at once (reading goes on).
  goaway_close_after=N  on the first connection only: once N request streams have fully
                    arrived (the client's END_STREAM), GOAWAY(NO_ERROR, last_stream_id=0) and
                    the connection closes at once (close_notify or FIN), nothing answered. The
                    client is not writing then, so nothing it sent is reset on its way.

Counters, written by the server thread under a lock, safe to read from another thread (use
``wait_until`` when the server may still be processing what the client just sent, e.g. the
RST_STREAM of a cancelled request):
  connections       connections accepted (after the TLS handshake)
  live              connections currently open
  streams           request streams received (HEADERS opening a stream), all of them
  max_open_streams  the most streams open at once on one connection (open: from its HEADERS
                    until both sides ended it, or either reset it)
  resets            (stream_id, error_code) for each RST_STREAM the client sent on an open stream
  window_updates    (stream_id, increment) for each WINDOW_UPDATE the client sent (stream_id 0:
                    the connection); h2 drops updates for streams it has already closed
  requests          (connection number, stream_id, headers, body length) per request handled,
                    recorded when its body ends (or when the stream or connection goes first);
                    headers are (bytes, bytes) pairs including pseudo-headers. Connection numbers
                    start at 1 and are not reset by ``reset_counters``.
  goaways           (connection number, error_code, last_stream_id) for each GOAWAY the client sent
  ignored, refused  (connection number, stream_id) for streams after a GOAWAY / over the limit
  hold_timeouts     /held streams answered 504 because the hold timed out
  pings             PINGs received (h2 answers them itself)
  bytes_sent        DATA payload bytes sent, all streams (with bytes the client consumed and the
                    windows it granted, this bounds what can be in flight or buffered)
  client_settings   {setting code: value} for each SETTINGS frame the client sent
  errors            protocol errors h2 found in what the client sent (the connection was closed
                    with GOAWAY), and anything unexpected inside the server; a clean run has none
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
from typing import Any, Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.errors import ErrorCodes
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from tests.servers.hypercorn_app import pattern, pattern_slice

__all__ = ["H2Server", "pattern", "pattern_slice", "TRAILERS_BODY", "RST_PARTIAL", "RST_DECLARED"]

Header = tuple[bytes, bytes]

TRAILERS_BODY = b"body before trailers\n"
RST_PARTIAL = 4096  # bytes of body /rst-after-headers sends before its RST_STREAM
RST_DECLARED = 100000  # the Content-Length it announces

_END = None  # end of a request body, in a stream's queue


class _Gone(Exception):
    """The stream was reset (either way) or its connection went."""


_GONE = _Gone()  # in a stream's queue: no more body will come


class _Stream:
    def __init__(self, stream_id: int, headers: list[Header]) -> None:
        self.id = stream_id
        self.headers = headers
        fields = dict(headers)
        self.method = fields.get(b":method", b"").decode("latin-1")
        self.path = fields.get(b":path", b"").decode("latin-1")
        self.body: asyncio.Queue[Any] = asyncio.Queue()
        self.consuming = True  # a handler reads (and acknowledges) the body
        self.starved = False  # its DATA is dropped and never credited back (/early-end)
        self.ignored = False  # arrived after our GOAWAY's last_stream_id
        self.refused = False  # over max_concurrent_streams
        self.ended = False  # the client's END_STREAM arrived
        self.responded = False  # our END_STREAM went out
        self.closed = False
        self.recorded = False
        self.received = 0
        self.gone = asyncio.Event()
        self.release: asyncio.Event | None = None  # /held


class _Connection:
    def __init__(
        self,
        server: H2Server,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.number = number
        self.reader = reader
        self.writer = writer
        self.tls = server.tls
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.streams: dict[int, _Stream] = {}
        self.open: set[int] = set()
        self.count = 0  # request streams seen on this connection
        self.goaway_last: int | None = None
        self.finishing = False  # GOAWAY streams done: the connection is being closed
        self.lost = False
        self.ended = 0  # request streams whose END_STREAM arrived
        # goaway_close_after: the first connection serves nothing until it closes
        self.holding = server.goaway_close_after is not None and number == 1
        self._linger: asyncio.TimerHandle | None = None
        self._window = asyncio.Event()  # replaced each time it is set: a broadcast
        self._release = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    # --- the connection ---------------------------------------------------------------------

    async def run(self) -> None:
        server = self.server
        try:
            if self.tls:
                ssl_object = self.writer.get_extra_info("ssl_object")
                alpn = ssl_object.selected_alpn_protocol() if ssl_object else None
                if alpn != "h2":
                    server._record("errors", f"connection {self.number}: ALPN {alpn!r}, not h2")
                    self.writer.close()
                    return
            self._initiate()
            await self._read_loop()
        except (ConnectionError, OSError):
            pass
        except Exception as exc:  # a bug in this server: make it visible to the test
            server._record("errors", f"connection {self.number}: server error {exc!r}")
        finally:
            self._connection_lost()
            for task in list(self.tasks):
                task.cancel()
            if not self.writer.is_closing():
                self.writer.transport.abort()

    def _initiate(self) -> None:
        server = self.server
        values = {SettingCodes.MAX_HEADER_LIST_SIZE: 65536}
        values[SettingCodes.INITIAL_WINDOW_SIZE] = server.initial_window_size
        values[SettingCodes.MAX_FRAME_SIZE] = server.max_frame_size
        if server.max_concurrent_streams is not None:
            values[SettingCodes.MAX_CONCURRENT_STREAMS] = server.max_concurrent_streams
        # The first SETTINGS frame carries every configured value...
        self.h2.local_settings = Settings(client=False, initial_values=values)
        self.h2.initiate_connection()
        # ...but the receive side starts from the defaults and takes the window and frame size
        # when the client ACKs (a value set on Settings stays pending until then). No
        # MAX_CONCURRENT_STREAMS for h2 to enforce: it would make an excess stream a connection
        # error; this server refuses it itself and records it.
        settings = Settings(client=False, initial_values={SettingCodes.MAX_HEADER_LIST_SIZE: 65536})
        settings[SettingCodes.INITIAL_WINDOW_SIZE] = server.initial_window_size
        settings[SettingCodes.MAX_FRAME_SIZE] = server.max_frame_size
        self.h2.local_settings = settings
        if server.initial_window_size > 65535:
            self.h2.increment_flow_control_window(server.initial_window_size - 65535)
        self.flush()

    async def _read_loop(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            if self.finishing:
                continue  # closing after GOAWAY: what the client still sends is dropped
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                # h2 has queued a GOAWAY with the matching error code; send it and close.
                self.server._record("errors", f"connection {self.number}: {exc!r}")
                self.flush()
                self.writer.close()  # after what is buffered
                return
            for event in events:
                self._handle(event)
            self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.finishing and not self.writer.is_closing():
            self.writer.write(data)

    async def _drain(self) -> None:
        if not self.writer.is_closing():
            await self.writer.drain()

    def _wake_window(self) -> None:
        self._window.set()
        self._window = asyncio.Event()

    def _connection_lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        if self._linger is not None:
            self._linger.cancel()
        for stream in self.streams.values():
            self._stream_gone(stream)
        self.open.clear()
        self._wake_window()
        with self.server._cond:
            self.server.live -= 1
            self.server._cond.notify_all()

    # --- events -----------------------------------------------------------------------------

    def _handle(self, event: h2.events.Event) -> None:
        server = self.server
        if isinstance(event, h2.events.RequestReceived):
            self._request_received(event)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                return
            stream.received += len(event.data)
            if stream.starved:
                return  # neither read nor credited: the client's window runs out
            if stream.consuming and not stream.closed:
                stream.body.put_nowait((event.data, event.flow_controlled_length))
            else:  # nobody reads it: hand the window back now
                self._acknowledge(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                return
            stream.ended = True
            stream.body.put_nowait(_END)
            self._record_request(stream)
            if stream.responded:
                self._close_stream(stream)
            self.ended += 1
            if self.holding and self.ended == server.goaway_close_after:
                self._goaway_and_close()
        elif isinstance(event, h2.events.StreamReset):
            if event.remote_reset:
                server._record("resets", (event.stream_id, int(event.error_code)))
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._stream_gone(stream)
                self._close_stream(stream)
        elif isinstance(event, h2.events.WindowUpdated):
            server._record("window_updates", (event.stream_id, event.delta))
            self._wake_window()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            changed = {
                int(code): setting.new_value for code, setting in event.changed_settings.items()
            }
            server._record("client_settings", changed)
            self._wake_window()  # an INITIAL_WINDOW_SIZE or MAX_FRAME_SIZE change
        elif isinstance(event, h2.events.ConnectionTerminated):
            code = int(event.error_code or 0)
            server._record("goaways", (self.number, code, event.last_stream_id))
            # h2 is CLOSED now and will send nothing more: the connection is over.
            self.flush()
            self.writer.close()
        elif isinstance(event, h2.events.PingReceived):
            server._count("pings")

    def _request_received(self, event: h2.events.RequestReceived) -> None:
        server = self.server
        headers = [(bytes(name), bytes(value)) for name, value in event.headers]
        stream = _Stream(event.stream_id, headers)
        self.streams[stream.id] = stream
        self.count += 1
        server._count("streams")
        if self.goaway_last is not None and stream.id > self.goaway_last:
            stream.ignored = True
            stream.consuming = False
            server._record("ignored", (self.number, stream.id))
            return
        self.open.add(stream.id)
        with server._cond:
            server.max_open_streams = max(server.max_open_streams, len(self.open))
            server._cond.notify_all()
        limit = server.max_concurrent_streams
        if limit is not None and len(self.open) > limit:
            server._record("refused", (self.number, stream.id))
            stream.refused = True
            stream.consuming = False
            self.h2.reset_stream(stream.id, ErrorCodes.REFUSED_STREAM)
            self._stream_gone(stream)
            self._close_stream(stream)
        elif not self.holding:
            stream.release = self._release
            self._check_hold()
            task = asyncio.get_running_loop().create_task(self._serve(stream))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        if server.goaway_after is not None and self.count == server.goaway_after:
            self._send_goaway(stream.id)

    def _send_goaway(self, last_stream_id: int) -> None:
        # Written by hand: h2's close_connection() moves its state machine to CLOSED, after which
        # it rejects every frame the client sends (WINDOW_UPDATE, DATA...) as a protocol error,
        # so the streams up to last_stream_id could not be finished.
        self.flush()
        frame = GoAwayFrame(0)
        frame.last_stream_id = last_stream_id
        frame.error_code = ErrorCodes.NO_ERROR
        self.writer.write(frame.serialize())
        self.goaway_last = last_stream_id
        self._maybe_finish()

    def _check_hold(self) -> None:
        hold = self.server.hold_until
        if hold is not None and len(self.open) >= hold:
            self._release.set()
            self._release = asyncio.Event()

    def _stream_gone(self, stream: _Stream) -> None:
        if not stream.gone.is_set():
            stream.gone.set()
            stream.body.put_nowait(_GONE)
        self._record_request(stream)

    def _record_request(self, stream: _Stream) -> None:
        if stream.recorded or stream.ignored or stream.refused:
            return
        stream.recorded = True
        self.server._record(
            "requests", (self.number, stream.id, list(stream.headers), stream.received)
        )

    def _close_stream(self, stream: _Stream) -> None:
        if stream.closed:
            return
        stream.closed = True
        self.open.discard(stream.id)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        last = self.goaway_last
        if last is None or self.finishing or self.lost:
            return
        if any(stream_id <= last for stream_id in self.open):
            return
        self.flush()
        self.finishing = True
        if self.tls:
            # A lingering close (as nginx does): what is written goes out, what the client
            # still sends is read and dropped, and the connection closes when the client closes
            # it, or after ``linger`` seconds. Closing at once would make the kernel answer
            # the client's next bytes with a reset, which can destroy the GOAWAY and the last
            # responses before the client has read them.
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(self.server.linger, self.writer.close)
        else:
            self.writer.write_eof()  # FIN after the data; reading goes on until the client closes

    def _goaway_and_close(self) -> None:
        """GOAWAY(last_stream_id=0): nothing was processed; then the connection closes at once."""
        self.flush()
        frame = GoAwayFrame(0)
        frame.last_stream_id = 0
        frame.error_code = ErrorCodes.NO_ERROR
        self.writer.write(frame.serialize())
        self.goaway_last = 0
        self.finishing = True
        for stream in self.streams.values():
            stream.ignored = True
            self.server._record("ignored", (self.number, stream.id))
        if self.tls:
            self.writer.close()
        else:
            self.writer.write_eof()
            self.writer.close()

    # --- helpers for the routes -------------------------------------------------------------

    def _acknowledge(self, size: int, stream_id: int) -> None:
        if self.lost or self.finishing:
            return
        try:
            self.h2.acknowledge_received_data(size, stream_id)
        except h2.exceptions.ProtocolError:
            pass
        self.flush()

    async def read_body(self, stream: _Stream, sink: Callable[[bytes], None] | None = None) -> int:
        """Consume the request body, acknowledging each piece as it is consumed."""
        length = 0
        while True:
            item = await stream.body.get()
            if item is _END:
                return length
            if item is _GONE:
                raise _Gone()
            data, flow_controlled = item
            if sink is not None:
                sink(data)
            length += len(data)
            self._acknowledge(flow_controlled, stream.id)

    async def wait(
        self, stream: _Stream, event: asyncio.Event, timeout: float | None = None
    ) -> bool:
        """Wait for ``event`` (True), the timeout (False) or the stream going (_Gone)."""
        if not event.is_set() and not stream.gone.is_set():
            waiters = [
                asyncio.ensure_future(event.wait()),
                asyncio.ensure_future(stream.gone.wait()),
            ]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        if stream.gone.is_set() or self.lost:
            raise _Gone()
        return event.is_set()

    def send_headers(
        self, stream: _Stream, headers: list[tuple[str, str]], end: bool = False
    ) -> None:
        if stream.gone.is_set() or self.lost:
            raise _Gone()
        self.h2.send_headers(stream.id, headers, end_stream=end)
        self.flush()
        if end:
            self._responded(stream)

    async def send_body(
        self, stream: _Stream, size: int, source: Callable[[int, int], bytes], end: bool = True
    ) -> None:
        """Send ``size`` bytes from ``source(offset, n)`` within the flow-control windows."""
        offset = 0
        while offset < size:
            if stream.gone.is_set() or self.lost:
                raise _Gone()
            window = self.h2.local_flow_control_window(stream.id)
            if window <= 0:
                await self.wait(stream, self._window)
                continue
            n = min(window, self.h2.max_outbound_frame_size, size - offset)
            last = offset + n == size
            self.h2.send_data(stream.id, source(offset, n), end_stream=end and last)
            offset += n
            self.server._count("bytes_sent", n)
            self.flush()
            await self._drain()
        if end:
            if size == 0:
                self.h2.end_stream(stream.id)
                self.flush()
            self._responded(stream)

    def reset(self, stream: _Stream, code: int) -> None:
        if stream.gone.is_set() or self.lost:
            raise _Gone()
        self.h2.reset_stream(stream.id, code)
        self.flush()
        self._stream_gone(stream)
        self._close_stream(stream)

    def _responded(self, stream: _Stream) -> None:
        stream.responded = True
        if stream.ended:
            self._close_stream(stream)

    async def respond(
        self, stream: _Stream, status: int, body: bytes, content_type: str = "text/plain"
    ) -> None:
        headers = [
            (":status", str(status)),
            ("content-type", content_type),
            ("content-length", str(len(body))),
        ]
        self.send_headers(stream, headers, end=not body)
        if body:
            await self.send_body(stream, len(body), lambda at, n: body[at : at + n])

    # --- routes -----------------------------------------------------------------------------

    async def _serve(self, stream: _Stream) -> None:
        try:
            await self._route(stream)
        except (_Gone, ConnectionError, h2.exceptions.StreamClosedError):
            pass
        except h2.exceptions.ProtocolError as exc:
            # Expected once the client's GOAWAY has closed h2's state machine; a bug otherwise.
            if not self.lost and self.h2.state_machine.state.name != "CLOSED":
                self.server._record("errors", f"stream {stream.id}: server error {exc!r}")
        except Exception as exc:
            self.server._record("errors", f"stream {stream.id}: server error {exc!r}")
        finally:
            # Hand back the window of anything queued that no handler will read.
            stream.consuming = False
            while not stream.body.empty():
                item = stream.body.get_nowait()
                if isinstance(item, tuple):
                    self._acknowledge(item[1], stream.id)

    async def _route(self, stream: _Stream) -> None:
        server = self.server
        path = stream.path.partition("?")[0]
        if path.startswith("/rst/"):
            self.reset(stream, int(path[5:]))
            return
        if path == "/close":
            self.flush()
            self.writer.transport.abort()
            return
        if path == "/protocol-error":
            self.flush()
            # A DATA frame on stream 0: length 5, type DATA, no flags, stream 0, then the payload.
            self.writer.write(b"\x00\x00\x05\x00\x00\x00\x00\x00\x00" + b"oops!")
            await self.wait(stream, asyncio.Event())  # until the client resets or goes
            return

        if path == "/early-end":
            stream.starved = True
            stream.consuming = False
            await self.respond(stream, 413, b"too large")
            return

        if path == "/upload":
            digest = hashlib.sha256()
            length = await self.read_body(stream, digest.update)
            answer = {"length": length, "sha256": digest.hexdigest()}
            await self.respond(stream, 200, json.dumps(answer).encode(), "application/json")
            return

        await self.read_body(stream)
        if path.startswith("/bytes/"):
            try:
                size = int(path[7:])
            except ValueError:
                await self.respond(stream, 400, b"bad size")
                return
            headers = [
                (":status", "200"),
                ("content-type", "application/octet-stream"),
                ("content-length", str(size)),
            ]
            if stream.method == "HEAD" or size == 0:
                self.send_headers(stream, headers, end=True)
                return
            self.send_headers(stream, headers)
            await self.send_body(stream, size, pattern_slice)
        elif path == "/echo-headers":
            pairs = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in stream.headers]
            await self.respond(stream, 200, json.dumps(pairs).encode(), "application/json")
        elif path.startswith("/rst-after-headers/"):
            code = int(path[len("/rst-after-headers/") :])
            headers = [
                (":status", "200"),
                ("content-type", "application/octet-stream"),
                ("content-length", str(RST_DECLARED)),
            ]
            self.send_headers(stream, headers)
            await self.send_body(stream, RST_PARTIAL, pattern_slice, end=False)
            self.reset(stream, code)
        elif path == "/hang":
            await self.wait(stream, asyncio.Event())
        elif path == "/held":
            released = True
            if server.hold_until is not None and stream.release is not None:
                released = await self.wait(stream, stream.release, server.hold_timeout)
            if released:
                await self.respond(stream, 200, b"released")
            else:
                server._count("hold_timeouts")
                message = (
                    f"hold timed out: {len(self.open)} of {server.hold_until} streams open"
                ).encode()
                await self.respond(stream, 504, message)
        elif path.startswith("/fields/"):
            extra = [(f"x-f-{i}", str(i)) for i in range(int(path[len("/fields/") :]))]
            self.send_headers(stream, [(":status", "200"), *extra])
            await self.send_body(stream, 6, lambda at, n: b"fields"[at : at + n])
        elif path.startswith("/big-field/"):
            big = "b" * int(path[len("/big-field/") :])
            self.send_headers(stream, [(":status", "200"), ("x-big", big)])
            await self.send_body(stream, 6, lambda at, n: b"fields"[at : at + n])
        elif path.startswith("/trailers/"):
            self.send_headers(stream, [(":status", "200"), ("content-type", "text/plain")])
            body = TRAILERS_BODY
            await self.send_body(stream, len(body), lambda at, n: body[at : at + n], end=False)
            count = int(path[len("/trailers/") :])
            self.send_headers(stream, [(f"x-t-{i}", str(i)) for i in range(count)], end=True)
        elif path == "/trailers":
            headers = [
                (":status", "200"),
                ("content-type", "text/plain"),
                ("trailer", "x-checksum, x-trailer"),
            ]
            self.send_headers(stream, headers)
            body = TRAILERS_BODY
            await self.send_body(stream, len(body), lambda at, n: body[at : at + n], end=False)
            trailers = [
                ("x-checksum", hashlib.sha256(body).hexdigest()),
                ("x-trailer", "done"),
            ]
            self.send_headers(stream, trailers, end=True)
        else:
            await self.respond(stream, 404, b"not found")


class H2Server:
    """An HTTP/2 server on 127.0.0.1:<free port>, in a thread with its own asyncio loop."""

    _COUNTERS: dict[str, Callable[[], Any]] = {
        "connections": int,
        "streams": int,
        "max_open_streams": int,
        "hold_timeouts": int,
        "pings": int,
        "bytes_sent": int,
        "resets": list,
        "window_updates": list,
        "requests": list,
        "goaways": list,
        "ignored": list,
        "refused": list,
        "client_settings": list,
        "errors": list,
    }

    def __init__(
        self,
        certfile: str | None = None,
        keyfile: str | None = None,
        *,
        max_concurrent_streams: int | None = None,
        initial_window_size: int = 65535,
        max_frame_size: int = 16384,
        goaway_after: int | None = None,
        goaway_close_after: int | None = None,
        hold_until: int | None = None,
        hold_timeout: float = 5.0,
        linger: float = 5.0,
    ) -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        self.tls = certfile is not None
        self.max_concurrent_streams = max_concurrent_streams
        self.initial_window_size = initial_window_size
        self.max_frame_size = max_frame_size
        self.goaway_after = goaway_after
        self.goaway_close_after = goaway_close_after
        self.linger = linger
        self.hold_until = hold_until
        self.hold_timeout = hold_timeout
        # Check the settings here, in the test's thread, rather than in every connection.
        Settings(
            client=False,
            initial_values={
                SettingCodes.INITIAL_WINDOW_SIZE: initial_window_size,
                SettingCodes.MAX_FRAME_SIZE: max_frame_size,
            },
        )

        self._cond = threading.Condition()
        self.connections = 0
        self.live = 0
        self.streams = 0
        self.max_open_streams = 0
        self.hold_timeouts = 0
        self.pings = 0
        self.bytes_sent = 0
        self.resets: list[tuple[int, int]] = []
        self.window_updates: list[tuple[int, int]] = []
        self.requests: list[tuple[int, int, list[Header], int]] = []
        self.goaways: list[tuple[int, int, int]] = []
        self.ignored: list[tuple[int, int]] = []
        self.refused: list[tuple[int, int]] = []
        self.client_settings: list[dict[int, int]] = []
        self.errors: list[str] = []
        self._numbered = 0

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        if self.tls:
            self.url = f"https://localhost:{self.port}"
        else:
            self.url = f"http://127.0.0.1:{self.port}"

        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._connections: set[_Connection] = set()
        self._thread = threading.Thread(target=self._run, name="H2Server", daemon=True)

    # --- counters ---------------------------------------------------------------------------

    def _record(self, name: str, value: Any) -> None:
        with self._cond:
            getattr(self, name).append(value)
            self._cond.notify_all()

    def _count(self, name: str, amount: int = 1) -> None:
        with self._cond:
            setattr(self, name, getattr(self, name) + amount)
            self._cond.notify_all()

    def reset_counters(self) -> None:
        """Zero every counter (``live`` and the connection numbering carry on)."""
        with self._cond:
            for name, make in self._COUNTERS.items():
                setattr(self, name, make())

    def wait_until(self, predicate: Callable[[H2Server], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate(self)`` holds (checked at each counter change) or the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def window_granted(self, stream_id: int | None = None) -> int:
        """Bytes of flow-control window the client granted: on one stream, or (None) the connection."""
        wanted = 0 if stream_id is None else stream_id
        with self._cond:
            return sum(delta for sid, delta in self.window_updates if sid == wanted)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> H2Server:
        self._thread.start()
        if not self._started.wait(15):
            raise RuntimeError("H2Server did not start")
        if self._failure is not None:
            raise RuntimeError("H2Server failed to start") from self._failure
        return self

    def stop(self) -> None:
        if self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread.ident is not None:
            self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> H2Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)  # type: ignore[arg-type]
        context.set_alpn_protocols(["h2"])
        return context

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        try:
            self._sock.listen(512)
            self._sock.setblocking(False)
            server = await asyncio.start_server(
                self._accept,
                sock=self._sock,
                ssl=self._ssl_context() if self.tls else None,
                ssl_handshake_timeout=10 if self.tls else None,
            )
        except BaseException as exc:
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        await self._stopping.wait()
        server.close()
        for connection in list(self._connections):
            connection.writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._cond:
            self._numbered += 1
            number = self._numbered
            self.connections += 1
            self.live += 1
            self._cond.notify_all()
        connection = _Connection(self, number, reader, writer)
        self._connections.add(connection)  # kept until stop(), which aborts any still closing
        try:
            await connection.run()
        except asyncio.CancelledError:
            pass  # stop(): asyncio's stream callback would log a cancelled task as an error
