"""``python -m hyperhttp``: fetch from a server and run a short throughput measurement.

With no ``--url`` an embedded local server is started in a child process (127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

from . import Client, __version__
from ._compat import uvloop


async def _fetch(base_url: str) -> None:
    async with Client() as client:
        response = await client.get(f"{base_url}/")
        body = await response.aread()
        print(
            f"GET {response.url} -> {response.status_code} {response.reason_phrase} "
            f"({response.http_version}, {len(body)} bytes, {response.elapsed * 1000:.2f} ms)"
        )
        for name, value in response.headers.multi_items():
            print(f"    {name}: {value}")
        print(f"    body: {body[:60]!r}")


async def _throughput(url: str, concurrency: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    async with Client(
        max_connections=concurrency, max_keepalive_connections=concurrency, timeout=30
    ) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            perf_counter = time.perf_counter
            while perf_counter() < deadline:
                started = perf_counter()
                try:
                    response = await client.get(url)
                    await response.aread()
                    if response.status_code != 200:
                        errors += 1
                except Exception:
                    errors += 1
                latencies.append(perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        stats = client.get_pool_stats()
    latencies.sort()
    connections = sum(origin["connections"] for origin in stats.values())
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0,
        "errors": errors,
        "connections": connections,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hyperhttp", description=__doc__)
    parser.add_argument("--url", help="base URL of a server to use instead of the embedded one")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=2.0, help="seconds per size")
    parser.add_argument("--sizes", default="200,10240", help="body sizes in bytes (/bytes/<n>)")
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop" if uvloop else "asyncio"
    )
    args = parser.parse_args(argv)

    process = None
    base_url = args.url
    if base_url is None:
        from ._demo_server import start_demo_server

        base_url, process = start_demo_server()
        if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})
    loop_factory = (
        uvloop.new_event_loop if args.loop == "uvloop" and uvloop else asyncio.new_event_loop
    )
    print(
        f"hyperhttp {__version__} on Python {sys.version.split()[0]}, {args.loop} loop; server {base_url}"
    )
    try:
        loop = loop_factory()
        try:
            loop.run_until_complete(_fetch(base_url))
            print(
                f"\nThroughput: {args.concurrency} concurrent tasks, one Client, "
                f"{args.duration:g} s per size, body read in full"
            )
            print("| body | requests | req/s | p50 ms | p99 ms | errors | connections |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for size in (int(s) for s in args.sizes.split(",")):
                result = loop.run_until_complete(
                    _throughput(f"{base_url}/bytes/{size}", args.concurrency, args.duration)
                )
                print(
                    f"| {size} B | {result['requests']} | {result['rps']:,.0f} | "
                    f"{result['p50']:.2f} | {result['p99']:.2f} | {result['errors']} | "
                    f"{result['connections']} |"
                )
        finally:
            loop.close()
    finally:
        if process is not None:
            process.terminate()
            process.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
