"""One measurement: a library, an event loop, a URL; C concurrent tasks on ONE client, for D seconds.

Run as a child process by ``perf/run.py`` (``python perf/clients.py --lib hyperhttp ...``): it
pins itself to CPU 0, runs a warm-up, then measures, and prints one JSON line with requests/s,
p50/p99 latency, peak RSS and errors. Every request reads its whole body and checks its length.

For an ``https://`` URL, ``--ca`` names the PEM of the CA that signed the server's certificate:
every client trusts it and verifies the server's certificate and name (127.0.0.1) against it;
none turns verification off. ``--verify-check OTHER_CA`` instead makes one request trusting
``--ca`` (must succeed) and one, from a fresh client, trusting only OTHER_CA (must fail), and
prints the outcome: the proof that the client really verifies.

``--http2`` (the h2 scenario, an ``https://`` URL served with HTTP/2) picks the HTTP/2 clients:
``hyperhttp`` and ``hyperhttp-2.1.0`` (``Client(http2=True)``; 2.1.0 is the release on PyPI,
imported from ``--hyperhttp-dir``), ``httpx`` (``AsyncClient(http2=True)``), ``pyreqwest``
(``ClientBuilder().http2(True)``) and two ceilings on the ``h2`` library (one connection,
``--concurrency`` streams on it, nothing else): ``h2-ceiling`` with header validation and
normalisation off, ``h2-ceiling-default`` with the default ``H2Configuration``. Every client
offers h2 and http/1.1 by ALPN and every response's protocol is checked (the ceilings check ALPN):
before the warm-up one request is made, and a client that did not get HTTP/2 exits with
``not HTTP/2: ...`` instead of measuring; a later response that is not HTTP/2 is an error.

``--max-connections N`` (``perf/waiters.py``) caps each client's connections at N instead of
``--concurrency`` (the tasks): with more tasks than connections, the surplus waits in the client's
pool. ``--count-connections`` adds ``connections_at_end`` to the result: the established TCP
connections of this process to the URL's port, counted from ``/proc/net/tcp`` by socket inode
after the timed tasks finished and before the client is closed.

``hyperhttp@<short sha>`` (``perf/run.py --baseline REV``, see ``perf/baseline.py``) is the
``hyperhttp`` client, in every scenario, importing hyperhttp from the revision's export named by
``--hyperhttp-dir``; like 2.1.0, it refuses to measure if any hyperhttp module came from elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import sys
import time
from array import array
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

Fetch = Callable[[], Awaitable[int]]  # returns the body length
Factory = Callable[[str, int, "str | None"], Awaitable[tuple[Fetch, Callable[[], Awaitable[None]]]]]
LEGACY_VERSION = "2.1.0"
LEGACY = f"hyperhttp-{LEGACY_VERSION}"  # the release on PyPI, installed by perf/bulk.py
BASELINE = "hyperhttp@"  # + a short sha: hyperhttp at an earlier git revision (perf/baseline.py)


class NotHTTP2(Exception):
    """An --http2 client got a response over another protocol (the message is that protocol)."""


def runs_as(lib: str) -> str:
    """The client code ``lib`` runs: a baseline runs ``hyperhttp``'s, only its import differs."""
    return "hyperhttp" if lib.startswith(BASELINE) else lib


def use_hyperhttp_from(lib: str, directory: str | None) -> str | None:
    """For 2.1.0 and a baseline: import ``hyperhttp`` from ``directory``, never the repository's.

    ``directory`` goes first on ``sys.path`` and the repository's editable-install finder comes off
    ``sys.meta_path``; then ``hyperhttp_origin`` checks where it came from. Returns the directory,
    or None for the other clients (they import the repository's).
    """
    if not lib.startswith((LEGACY, BASELINE)):
        return None
    if not directory:
        raise SystemExit(f"{lib} needs --hyperhttp-dir")
    sys.path.insert(0, directory)
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not getattr(finder, "__module__", "").startswith("__editable__")
    ]
    version = hyperhttp_origin(directory)["version"]
    if lib.startswith(LEGACY) and version != LEGACY_VERSION:
        raise SystemExit(f"refusing to measure {lib}: imported hyperhttp {version}")
    return directory


def hyperhttp_origin(directory: str | None) -> dict[str, str]:
    """hyperhttp's version and directory, for the result.

    With ``directory``: exits, refusing to measure, if any hyperhttp module loaded so far came
    from elsewhere (called again after measuring, for the modules imported lazily).
    """
    import hyperhttp

    if directory:
        root = Path(directory).resolve()
        for name, module in list(sys.modules.items()):
            if name != "hyperhttp" and not name.startswith("hyperhttp."):
                continue
            places = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
            where = next((place for place in places if place), None)  # a namespace: its path
            if where is None or not Path(where).resolve().is_relative_to(root):
                raise SystemExit(f"refusing to measure: {name} imported from {where}, not {root}")
    return {"version": hyperhttp.__version__, "module": str(Path(hyperhttp.__file__).parent)}


def pinned_loop(name: str) -> asyncio.AbstractEventLoop:
    """Pin this process to CPU 0 (when there are others) and make an ``asyncio`` or ``uvloop``."""
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def _context(ca: str) -> ssl.SSLContext:
    """The stdlib's defaults (certificate and hostname checks on) trusting only ``ca``."""
    return ssl.create_default_context(cafile=ca)


async def _hyperhttp(
    url: str, concurrency: int, ca: str | None, http2: bool = False
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    """This repository's hyperhttp, or 2.1.0 once ``use_legacy_hyperhttp`` has imported it."""
    import hyperhttp

    client = hyperhttp.Client(
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        timeout=30.0,
        verify=ca if ca else True,
        **({"http2": True} if http2 else {}),
    )

    async def fetch() -> int:
        response = await client.get(url)
        body = await response.aread()
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        if http2 and response.http_version[:6] != "HTTP/2":  # "HTTP/2" (2.1.0 and today's)
            raise NotHTTP2(response.http_version)
        return len(body)

    return fetch, client.aclose


async def _aiohttp(
    url: str, concurrency: int, ca: str | None
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, ssl=_context(ca) if ca else True)
    session = aiohttp.ClientSession(connector=connector)

    async def fetch() -> int:
        async with session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(response.status)
            return len(body)

    return fetch, session.close


async def _httpx(
    url: str, concurrency: int, ca: str | None, http2: bool = False
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(
        limits=limits, timeout=30.0, verify=_context(ca) if ca else True, http2=http2
    )

    async def fetch() -> int:
        response = await client.get(url)
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        if http2 and response.http_version != "HTTP/2":
            raise NotHTTP2(response.http_version)
        return len(response.content)

    return fetch, client.aclose


async def _pyreqwest(
    url: str, concurrency: int, ca: str | None, http2: bool = False
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().max_connections(concurrency).pool_max_idle_per_host(concurrency)
    if ca:  # rustls; verification stays on (danger_accept_invalid_certs is never called)
        builder = builder.add_root_certificate_pem(Path(ca).read_bytes())
    if http2:  # off by default in pyreqwest; on, ALPN offers h2 and http/1.1
        builder = builder.http2(True)
    client = builder.build()

    async def fetch() -> int:
        response = await client.get(url).build().send()
        body = await response.bytes()
        if response.status != 200:
            raise RuntimeError(response.status)
        if http2 and response.version != "HTTP/2.0":
            raise NotHTTP2(response.version)
        return len(body)

    return fetch, client.close


async def _ceiling(
    url: str, concurrency: int, ca: str | None
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    """Raw asyncio + httptools: one keep-alive connection per task, no pool, no objects.

    Over https it is the loop's own TLS (``create_connection(ssl=...)``) with the stdlib context.
    """
    from urllib.parse import urlsplit

    import httptools

    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: ceiling\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()

    class Connection(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.chunks: list[bytes] = []
            self.waiter: asyncio.Future[bytes] | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.chunks.append(body)

        def on_message_complete(self) -> None:
            body = b"".join(self.chunks)
            self.chunks = []
            if self.waiter is not None:
                self.waiter.set_result(body)

        async def get(self) -> int:
            self.waiter = loop.create_future()
            self.transport.write(request)
            return len(await self.waiter)

    context = None
    if parts.scheme == "https":
        context = _context(ca) if ca else ssl.create_default_context()
    idle: list[Connection] = []
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(
            Connection, parts.hostname, parts.port, ssl=context
        )
        idle.append(protocol)

    async def fetch() -> int:
        connection = idle.pop()  # each task holds one connection for one request at a time
        try:
            return await connection.get()
        finally:
            idle.append(connection)

    async def close() -> None:
        for connection in idle:
            connection.transport.close()

    return fetch, close


async def _h2_ceiling(
    url: str, concurrency: int, ca: str | None, validate: bool = False
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    """Raw asyncio ``Protocol`` + the ``h2`` library: ONE TLS connection, a stream per request.

    The loop's own TLS with the stdlib context trusting ``ca``, ALPN must pick h2. Each request is
    ``send_headers(end_stream=True)`` then one write; ``data_received`` feeds ``h2``, keeps each
    stream's body, gives the flow-control window back (``acknowledge_received_data``) and writes
    what ``h2`` has to send. ``validate=False`` turns off ``h2``'s header validation and
    normalisation, inbound and outbound; ``True`` keeps the default ``H2Configuration``.
    """
    from urllib.parse import urlsplit

    import h2.config
    import h2.connection
    import h2.events

    parts = urlsplit(url)
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", parts.netloc.encode()),
        (b":path", parts.path.encode()),
        (b"user-agent", b"h2-ceiling"),
    ]
    config = h2.config.H2Configuration(  # validate=True: these four are h2's defaults
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=validate,
        normalize_outbound_headers=validate,
        validate_inbound_headers=validate,
        normalize_inbound_headers=validate,
    )
    loop = asyncio.get_running_loop()
    DataReceived, ResponseReceived = h2.events.DataReceived, h2.events.ResponseReceived
    StreamEnded = h2.events.StreamEnded

    class Connection(asyncio.Protocol):
        def __init__(self) -> None:
            self.h2 = h2.connection.H2Connection(config=config)
            self.streams: dict[int, tuple[asyncio.Future[bytes], list[bytes]]] = {}

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.h2.initiate_connection()
            transport.write(self.h2.data_to_send())

        def data_received(self, data: bytes) -> None:
            connection = self.h2
            for event in connection.receive_data(data):
                if isinstance(event, DataReceived):
                    self.streams[event.stream_id][1].append(event.data)
                    connection.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, StreamEnded):
                    waiter, chunks = self.streams.pop(event.stream_id)
                    if not waiter.done():  # done: failed on its status
                        waiter.set_result(b"".join(chunks))
                elif isinstance(event, ResponseReceived):
                    if event.headers[0] != (b":status", b"200"):
                        self.streams[event.stream_id][0].set_exception(
                            RuntimeError(event.headers[0])
                        )
                elif isinstance(event, h2.events.StreamReset):
                    self.streams.pop(event.stream_id)[0].set_exception(RuntimeError(event))
            pending = connection.data_to_send()
            if pending:
                self.transport.write(pending)

        def connection_lost(self, exc: Exception | None) -> None:
            for waiter, _ in self.streams.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError("connection lost"))
            self.streams.clear()

        async def get(self) -> int:
            connection = self.h2
            stream_id = connection.get_next_available_stream_id()
            connection.send_headers(stream_id, headers, end_stream=True)
            self.transport.write(connection.data_to_send())
            waiter = loop.create_future()
            self.streams[stream_id] = (waiter, [])
            return len(await waiter)

    context = _context(ca) if ca else ssl.create_default_context()
    context.set_alpn_protocols(["h2", "http/1.1"])  # as the other clients; h2 is required below
    transport, protocol = await loop.create_connection(
        Connection, parts.hostname, parts.port, ssl=context
    )
    selected = transport.get_extra_info("ssl_object").selected_alpn_protocol()
    if selected != "h2":
        transport.close()
        raise NotHTTP2(f"ALPN {selected}")

    async def close() -> None:
        transport.close()

    return protocol.get, close


LIBRARIES: dict[str, Factory] = {
    "hyperhttp": _hyperhttp,
    "aiohttp": _aiohttp,
    "httpx": _httpx,
    "pyreqwest": _pyreqwest,
    "ceiling": _ceiling,
}
H2_LIBRARIES: dict[str, Factory] = {  # --http2
    "hyperhttp": partial(_hyperhttp, http2=True),
    LEGACY: partial(_hyperhttp, http2=True),  # main() imports 2.1.0 first
    "httpx": partial(_httpx, http2=True),
    "pyreqwest": partial(_pyreqwest, http2=True),
    "h2-ceiling": _h2_ceiling,
    "h2-ceiling-default": partial(_h2_ceiling, validate=True),
}


def established_to(port: int) -> int:
    """This process's established TCP connections to ``port`` (IPv4 and IPv6 tables).

    The sockets are this process's file descriptors (``/proc/self/fd`` -> ``socket:[inode]``,
    every thread's, pyreqwest's runtime included); ``/proc/net/tcp`` gives each inode's state and
    remote address.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (listdir's own descriptor)
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as file:
                rows = file.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()  # sl local remote st tx:rx tr:when retrnsmt uid timeout inode
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and inode in inodes and int(remote.rpartition(":")[2], 16) == port:
                count += 1
    return count


async def measure(
    lib: str,
    url: str,
    concurrency: int,
    duration: float,
    warmup: float,
    expected: int,
    ca: str | None = None,
    http2: bool = False,
    max_connections: int | None = None,
    count_connections: bool = False,
) -> dict[str, Any]:
    """``concurrency`` tasks on one client whose pool is capped at ``max_connections`` (default:
    ``concurrency``, one connection per task)."""
    factory = (H2_LIBRARIES if http2 else LIBRARIES)[runs_as(lib)]
    fetch, close = await factory(url, max_connections or concurrency, ca)
    if http2:
        await fetch()  # raises NotHTTP2 when the client did not get HTTP/2
    latencies = array("d")
    errors = 0
    counting = False
    stop_at = 0.0

    async def worker() -> None:
        nonlocal errors
        clock = time.perf_counter
        while True:
            started = clock()
            if started >= stop_at:
                return
            try:
                size = await fetch()
                if size != expected:
                    errors += 1
            except Exception:
                errors += 1
            if counting:
                latencies.append(clock() - started)

    stop_at = time.perf_counter() + warmup
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    counting = True
    errors = 0
    began = time.perf_counter()
    stop_at = began + duration
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    held = None
    if count_connections:  # every task is done: what the client holds now, busy or idle
        from urllib.parse import urlsplit

        held = established_to(urlsplit(url).port or 80)
    await close()
    ordered = sorted(latencies)
    count = len(ordered)
    result = {
        "lib": lib,
        "requests": count,
        "rps": count / elapsed,
        "p50_ms": ordered[count // 2] * 1000 if count else 0.0,
        "p99_ms": ordered[max(0, int(count * 0.99) - 1)] * 1000 if count else 0.0,
        "rss_mib": _peak_rss_mib(),
        "errors": errors,
    }
    if max_connections is not None:
        result.update(concurrency=concurrency, max_connections=max_connections)
    if held is not None:
        result["connections_at_end"] = held
    return result


async def verify_check(
    lib: str, url: str, ca: str, other_ca: str, http2: bool = False
) -> dict[str, Any]:
    """One request trusting ``ca`` (must succeed), one trusting only ``other_ca`` (must fail).

    With ``http2``, a response over another protocol passed TLS all the same: it counts as "ok"
    here (this checks verification), and the measurement reports "not HTTP/2".
    """
    outcome: dict[str, Any] = {"lib": lib}
    for key, trusted in (("trusted_ca", ca), ("other_ca", other_ca)):
        close = None
        try:  # the ceilings connect (and so verify) while being set up
            factory = (H2_LIBRARIES if http2 else LIBRARIES)[runs_as(lib)]
            fetch, close = await factory(url, 1, trusted)
            outcome[key] = f"ok, {await fetch()} bytes"
        except NotHTTP2 as exc:
            outcome[key] = f"ok, but not HTTP/2: {exc}"
        except Exception as exc:
            outcome[key] = f"error: {type(exc).__name__}: {exc}"[:200]
        finally:
            try:
                if close is not None:
                    await close()
            except Exception:
                pass
    outcome["verifies"] = outcome["trusted_ca"].startswith("ok") and outcome["other_ca"].startswith(
        "error"
    )
    return outcome


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would include what fork inherited)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--lib", required=True, help=f"{', '.join(sorted(LIBRARIES | H2_LIBRARIES))}, {BASELINE}SHA"
    )
    parser.add_argument("--loop", default="uvloop", choices=["asyncio", "uvloop"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--expected", type=int, required=True, help="body length")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--ca", help="PEM of the CA to trust for an https URL")
    parser.add_argument("--verify-check", metavar="OTHER_CA", help="see the module's docstring")
    parser.add_argument("--http2", action="store_true", help="the HTTP/2 clients (h2 scenario)")
    parser.add_argument(
        "--hyperhttp-dir", help=f"where {LEGACY} or a {BASELINE}SHA imports hyperhttp from"
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help="the client's connection cap (default: --concurrency); fewer: tasks wait in its pool",
    )
    parser.add_argument(
        "--count-connections",
        action="store_true",
        help="report the established connections to the URL's port when the timed tasks are done",
    )
    args = parser.parse_args()
    if args.max_connections is not None and args.max_connections < args.concurrency:
        if runs_as(args.lib) == "ceiling":  # a connection per task, no pool to wait in
            parser.error("--lib ceiling: no --max-connections below --concurrency")
    if runs_as(args.lib) not in LIBRARIES | H2_LIBRARIES:
        parser.error(f"--lib {args.lib}: no such client")
    if runs_as(args.lib) not in (H2_LIBRARIES if args.http2 else LIBRARIES):
        parser.error(f"--lib {args.lib} is {'not ' if args.http2 else ''}an --http2 client")
    directory = use_hyperhttp_from(args.lib, args.hyperhttp_dir)
    loop = pinned_loop(args.loop)
    if args.verify_check:
        outcome = loop.run_until_complete(
            verify_check(args.lib, args.url, args.ca, args.verify_check, args.http2)
        )
        print(json.dumps(outcome))
        return
    try:
        result = loop.run_until_complete(
            measure(
                args.lib,
                args.url,
                args.concurrency,
                args.duration,
                args.warmup,
                args.expected,
                args.ca,
                args.http2,
                args.max_connections,
                args.count_connections,
            )
        )
    except NotHTTP2 as exc:
        raise SystemExit(f"not HTTP/2: {args.lib} got {exc}") from None
    result["loop"] = args.loop
    if args.lib.startswith("hyperhttp"):
        result.update(hyperhttp_origin(directory))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
