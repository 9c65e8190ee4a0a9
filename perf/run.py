"""Side-by-side HTTP/1.1 benchmark: hyperhttp, aiohttp, httpx, pyreqwest and a raw ceiling client.

    python perf/run.py                 # 3 rounds x {200b, 10k, 1m} x {asyncio, uvloop} x 5 clients
    python perf/run.py --quick         # 1 round, 200b and 10k, uvloop only

One server for the whole run (nginx with one worker when installed, pinned to the last CPU); every
measurement is its own child process pinned to CPU 0, so each client has a core and its own RSS.
Rounds are interleaved (every client once per round, in a shuffled order) and the table shows the
median over rounds, so drift on a shared machine hits every client alike. Ratios compare clients
within this one run only.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nginx import SIZES, ensure_nginx, start_server  # noqa: E402

LIBS = ["hyperhttp", "aiohttp", "httpx", "pyreqwest", "ceiling"]


def _available(lib: str) -> bool:
    module = {"ceiling": "httptools"}.get(lib, lib)
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _measure(lib: str, loop: str, url: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, str(HERE / "clients.py"), "--lib", lib, "--loop", loop, "--url", url,
        "--expected", str(size), "--concurrency", str(args.concurrency),
        "--duration", str(args.duration), "--warmup", str(args.warmup),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration * 10 + 60
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        return {"lib": lib, "loop": loop, "failed": " | ".join(tail)}
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _table(results: list[dict[str, Any]], loop: str, sizes: list[str], libs: list[str]) -> str:
    lines = [
        f"**{loop}**\n",
        "| body | client | req/s | p50 ms | p99 ms | peak RSS MiB | x aiohttp | x ceiling | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        medians: dict[str, dict[str, float]] = {}
        for lib in libs:
            runs = [r for r in results if r["loop"] == loop and r["size"] == size and r["lib"] == lib
                    and "failed" not in r]  # fmt: skip
            if runs:
                medians[lib] = {
                    "rps": statistics.median(r["rps"] for r in runs),
                    "p50": statistics.median(r["p50_ms"] for r in runs),
                    "p99": statistics.median(r["p99_ms"] for r in runs),
                    "rss": max(r["rss_mib"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                }
        base = medians.get("aiohttp", {}).get("rps")
        ceiling = medians.get("ceiling", {}).get("rps")
        for lib in libs:
            m = medians.get(lib)
            if m is None:
                lines.append(f"| {size} | {lib} | failed | | | | | | |")
                continue
            vs_aiohttp = f"{m['rps'] / base:.2f}" if base else "-"
            vs_ceiling = f"{m['rps'] / ceiling:.2f}" if ceiling else "-"
            lines.append(
                f"| {size} | {lib} | {m['rps']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | "
                f"{m['rss']:.0f} | {vs_aiohttp} | {vs_ceiling} | {int(m['errors'])} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round, 200b and 10k, uvloop, 2 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--url", help="base URL of a running server serving /bytes/<n>")
    parser.add_argument("--no-nginx", action="store_true", help="use the built-in server")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.sizes, args.loops = 1, 2.0, "200b,10k", "uvloop"
    libs = [lib for lib in args.libs.split(",") if lib]
    skipped = [lib for lib in libs if not _available(lib)]
    libs = [lib for lib in libs if lib not in skipped]
    sizes = args.sizes.split(",")
    loops = args.loops.split(",")

    stop = None
    if args.url:
        base_url, server = args.url.rstrip("/"), "given by --url"
    else:
        if not args.no_nginx:
            ensure_nginx()
        base_url, server, stop = start_server(prefer_nginx=not args.no_nginx)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"server: {server} at {base_url}; clients pinned to CPU 0, server to the last CPU")
    print(
        f"{args.rounds} rounds x {len(sizes)} sizes x {len(loops)} loops x {len(libs)} clients, "
        f"{args.duration:g} s each after {args.warmup:g} s warm-up, {args.concurrency} concurrent tasks"
    )
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    results: list[dict[str, Any]] = []
    try:
        for round_number in range(args.rounds):
            for size in sizes:
                for loop in loops:
                    order = libs[:]
                    random.shuffle(order)
                    for lib in order:
                        url = f"{base_url}/bytes/{SIZES[size]}"
                        result = _measure(lib, loop, url, SIZES[size], args)
                        result.update(size=size, round=round_number)
                        results.append(result)
                        status = result.get("failed") or f"{result['rps']:,.0f} req/s"
                        print(
                            f"  round {round_number + 1} {size:>5} {loop:>7} {lib:>10}: {status}",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        if stop is not None:
            stop()
    print()
    for loop in loops:
        print(_table(results, loop, sizes, libs))
        print()
    out = Path(args.json) if args.json else HERE / "results" / f"run-{int(time.time())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"raw results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
