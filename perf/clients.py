"""One measurement: a library, an event loop, a URL; C concurrent tasks on ONE client, for D seconds.

Run as a child process by ``perf/run.py`` (``python perf/clients.py --lib hyperhttp ...``): it
pins itself to CPU 0, runs a warm-up, then measures, and prints one JSON line with requests/s,
p50/p99 latency, peak RSS and errors. Every request reads its whole body and checks its length.

For an ``https://`` URL, ``--ca`` names the PEM of the CA that signed the server's certificate:
every client trusts it and verifies the server's certificate and name (127.0.0.1) against it;
none turns verification off. ``--verify-check OTHER_CA`` instead makes one request trusting
``--ca`` (must succeed) and one, from a fresh client, trusting only OTHER_CA (must fail), and
prints the outcome: the proof that the client really verifies.
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
from typing import Any

Fetch = Callable[[], Awaitable[int]]  # returns the body length
Factory = Callable[[str, int, "str | None"], Awaitable[tuple[Fetch, Callable[[], Awaitable[None]]]]]


def _context(ca: str) -> ssl.SSLContext:
    """The stdlib's defaults (certificate and hostname checks on) trusting only ``ca``."""
    return ssl.create_default_context(cafile=ca)


async def _hyperhttp(
    url: str, concurrency: int, ca: str | None
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import hyperhttp

    client = hyperhttp.Client(
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        timeout=30.0,
        verify=ca if ca else True,
    )

    async def fetch() -> int:
        response = await client.get(url)
        body = await response.aread()
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
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
    url: str, concurrency: int, ca: str | None
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(limits=limits, timeout=30.0, verify=_context(ca) if ca else True)

    async def fetch() -> int:
        response = await client.get(url)
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        return len(response.content)

    return fetch, client.aclose


async def _pyreqwest(
    url: str, concurrency: int, ca: str | None
) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    from pathlib import Path

    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().max_connections(concurrency).pool_max_idle_per_host(concurrency)
    if ca:  # rustls; verification stays on (danger_accept_invalid_certs is never called)
        builder = builder.add_root_certificate_pem(Path(ca).read_bytes())
    client = builder.build()

    async def fetch() -> int:
        response = await client.get(url).build().send()
        body = await response.bytes()
        if response.status != 200:
            raise RuntimeError(response.status)
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


LIBRARIES: dict[str, Factory] = {
    "hyperhttp": _hyperhttp,
    "aiohttp": _aiohttp,
    "httpx": _httpx,
    "pyreqwest": _pyreqwest,
    "ceiling": _ceiling,
}


async def measure(
    lib: str,
    url: str,
    concurrency: int,
    duration: float,
    warmup: float,
    expected: int,
    ca: str | None = None,
) -> dict[str, Any]:
    fetch, close = await LIBRARIES[lib](url, concurrency, ca)
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
    await close()
    ordered = sorted(latencies)
    count = len(ordered)
    return {
        "lib": lib,
        "requests": count,
        "rps": count / elapsed,
        "p50_ms": ordered[count // 2] * 1000 if count else 0.0,
        "p99_ms": ordered[max(0, int(count * 0.99) - 1)] * 1000 if count else 0.0,
        "rss_mib": _peak_rss_mib(),
        "errors": errors,
    }


async def verify_check(lib: str, url: str, ca: str, other_ca: str) -> dict[str, Any]:
    """One request trusting ``ca`` (must succeed), one trusting only ``other_ca`` (must fail)."""
    outcome: dict[str, Any] = {"lib": lib}
    for key, trusted in (("trusted_ca", ca), ("other_ca", other_ca)):
        try:
            fetch, close = await LIBRARIES[lib](url, 1, trusted)
        except Exception as exc:  # the ceiling connects (and so verifies) while being set up
            outcome[key] = f"error: {type(exc).__name__}: {exc}"[:200]
            continue
        try:
            outcome[key] = f"ok, {await fetch()} bytes"
        except Exception as exc:
            outcome[key] = f"error: {type(exc).__name__}: {exc}"[:200]
        finally:
            try:
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
    parser.add_argument("--lib", required=True, choices=sorted(LIBRARIES))
    parser.add_argument("--loop", default="uvloop", choices=["asyncio", "uvloop"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--expected", type=int, required=True, help="body length")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--ca", help="PEM of the CA to trust for an https URL")
    parser.add_argument("--verify-check", metavar="OTHER_CA", help="see the module's docstring")
    args = parser.parse_args()
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.SelectorEventLoop()
    if args.verify_check:
        outcome = loop.run_until_complete(
            verify_check(args.lib, args.url, args.ca, args.verify_check)
        )
        print(json.dumps(outcome))
        return
    result = loop.run_until_complete(
        measure(
            args.lib,
            args.url,
            args.concurrency,
            args.duration,
            args.warmup,
            args.expected,
            args.ca,
        )
    )
    result["loop"] = args.loop
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
