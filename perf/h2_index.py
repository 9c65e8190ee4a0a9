"""HPACK indexing of a connection's constant fields, on and off: bytes per request and req/s.

    python perf/h2_index.py [--rounds 5] [--duration 4]

hyperhttp's HTTP/2 requests send ``:authority`` and the Client's default fields once per
connection as literals with incremental indexing, then as indexes (``H2Connection.index_fields``,
proto/h2_hpack.py ``request_block``). This measures both settings against the same nginx (the h2
scenario of perf/run.py: TLS, 200 B, 64 concurrent streams on one connection, uvloop, pinned to
CPU 0), in interleaved rounds, each in a child process:

* bytes per request: what the client hands to TLS (h2's ``data_to_send``) over 5,000 requests,
  divided by 5,000 (the preface and SETTINGS included, once);
* req/s: perf/clients.py's ``measure``, as perf/run.py runs it, with nothing counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nginx import SIZES, ensure_nginx, start_server  # noqa: E402

MODES = ("indexed", "stateless")
COUNTED = 5000


async def _count_bytes(url: str, ca: str) -> float:
    import hyperhttp
    from hyperhttp.proto.h2_internals import LeanH2Connection

    sent = [0]
    original = LeanH2Connection.data_to_send

    def counting(self: LeanH2Connection, amount: int | None = None) -> bytes:
        data = original(self, amount)
        sent[0] += len(data)
        return data

    LeanH2Connection.data_to_send = counting  # type: ignore[method-assign]
    try:
        async with hyperhttp.Client(http2=True, verify=ca) as client:
            queue = list(range(COUNTED))

            async def worker() -> None:
                while queue:
                    queue.pop()
                    response = await client.get(url)
                    assert response.http_version == "HTTP/2", response.http_version

            await asyncio.gather(*(worker() for _ in range(64)))
    finally:
        LeanH2Connection.data_to_send = original  # type: ignore[method-assign]
    return sent[0] / COUNTED


def _child(mode: str, url: str, ca: str, duration: float) -> None:
    import uvloop
    from clients import measure

    from hyperhttp.proto.h2 import H2Connection

    H2Connection.index_fields = mode == "indexed"
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    loop = uvloop.new_event_loop()
    size = SIZES["200b"]
    per_request = loop.run_until_complete(_count_bytes(f"{url}/bytes/{size}", ca))
    result = loop.run_until_complete(
        measure("hyperhttp", f"{url}/bytes/{size}", 64, duration, 0.5, size, ca=ca, http2=True)
    )
    print(json.dumps({"mode": mode, "bytes": per_request, "rps": result["rps"],
                      "errors": result["errors"]}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "CA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.duration)
        return
    ensure_nginx()
    started = start_server(tls=True, h2=True)
    if started.h2_url is None or started.ca_file is None:
        raise SystemExit("needs nginx with HTTP/2 (perf/nginx.py)")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    try:
        for round_ in range(1, args.rounds + 1):
            for mode in random.sample(MODES, len(MODES)):
                command = [sys.executable, __file__, "--duration", str(args.duration),
                           "--child", mode, started.h2_url, started.ca_file]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                results[mode].append(result)
                print(f"  round {round_} {mode:>9}: {result['rps']:,.0f} req/s, "
                      f"{result['bytes']:.1f} bytes/request, errors {result['errors']}")  # fmt: skip
    finally:
        started.stop()
    print("\n| HPACK | bytes per request (client to server) | req/s (median) | errors |")
    print("|---|---:|---:|---:|")
    for mode in MODES:
        rows = results[mode]
        print(f"| {mode} | {statistics.median(r['bytes'] for r in rows):.1f} "
              f"| {statistics.median(r['rps'] for r in rows):,.0f} "
              f"| {sum(r['errors'] for r in rows)} |")  # fmt: skip
    ratios = [
        i["rps"] / s["rps"] for i, s in zip(results["indexed"], results["stateless"], strict=True)
    ]
    print(f"\nindexed / stateless req/s, per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
