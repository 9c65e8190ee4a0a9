"""Instructions per request, this tree against a git revision: a before/after that noise cannot move.

    python perf/instructions.py --baseline HEAD~3                  # http 200b and 10k, asyncio
    python perf/instructions.py --baseline 03229e6 --scenario http,https,h2 --loops asyncio,uvloop
    python perf/instructions.py --baseline HEAD~3 --tasks 256    # the pool's waiter path

Wall-clock figures on a shared machine move by 10% from one round to the next; what a change
costs on the hot path is often less than that. ``valgrind --tool=callgrind`` counts the
instructions a process executes, which is the same from run to run for the same code and
inputs, whatever else the machine does. Each figure here is a client process making N requests
(64 at a time, one Client, the benchmark's GET-and-read) against the benchmark's nginx, run twice
(with N1 and N2 requests) so that start-up cancels out: (count(N2) - count(N1)) / (N2 - N1).

The baseline is hyperhttp at the revision, exported as for ``run.py --baseline``
(perf/baseline.py) and imported from there only. Instructions are not time (a cache miss or a
syscall costs more than its count says), so this complements the timed runs; it does not replace
them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baseline import export_baseline  # noqa: E402
from clients import hyperhttp_origin, use_hyperhttp_from  # noqa: E402
from nginx import SIZES, ensure_nginx, start_server  # noqa: E402

REPOSITORY = HERE.parent
CONCURRENCY = 64


def child(tree: str, url: str, requests: int, loop: str, ca: str | None, tasks: int) -> None:
    """The measured process: ``requests`` GETs through one Client (64 connections at most) from
    ``tasks`` tasks (more than 64: the rest wait in the pool, its waiter path)."""
    import asyncio

    if tree != str(REPOSITORY):
        use_hyperhttp_from("hyperhttp@baseline", tree)
    import hyperhttp

    hyperhttp_origin(tree if tree != str(REPOSITORY) else None)

    async def run() -> None:
        left = requests
        options = {"verify": ca} if ca else {}
        async with hyperhttp.Client(
            max_connections=64, max_keepalive_connections=64, **options
        ) as c:

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await (await c.get(url)).aread()

            await asyncio.gather(*(worker() for _ in range(tasks)))

    if loop == "uvloop":
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())


def count(tree: str, url: str, requests: int, loop: str, ca: str | None, tasks: int) -> int:
    """Instructions callgrind counted for one child process."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
            sys.executable, __file__, "--child", tree, url, str(requests), loop, ca or "",
            str(tasks),
        ]  # fmt: skip
        # String hashes are salted per process, and with them the probes of every dict lookup:
        # a fixed seed keeps that from moving the count between runs (and trees).
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed:\n{result.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tree, url, requests, loop, ca, tasks = sys.argv[2:8]
        child(tree, url, int(requests), loop, ca or None, int(tasks))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, metavar="REV", help="a git revision")
    parser.add_argument("--scenario", default="http", help="http, https, h2 (comma-separated)")
    parser.add_argument("--sizes", default="200b,10k", help=f"of {','.join(SIZES)}")
    parser.add_argument("--loops", default="asyncio", help="asyncio, uvloop (comma-separated)")
    parser.add_argument("--requests", default="500,2500", help="N1,N2 (start-up cancels out)")
    parser.add_argument(
        "--tasks",
        type=int,
        default=CONCURRENCY,
        help=f"concurrent tasks on the {CONCURRENCY} connections (more: the pool's waiter path)",
    )
    args = parser.parse_args()
    baseline = export_baseline(args.baseline)
    first, second = (int(n) for n in args.requests.split(","))
    scenarios = args.scenario.split(",")
    ensure_nginx()
    server = start_server(tls="https" in scenarios, h2="h2" in scenarios)
    urls = {"http": server.http_url, "https": server.https_url, "h2": server.h2_url}
    trees = {"hyperhttp": str(REPOSITORY), baseline.name: str(baseline.directory)}
    print(baseline.describe())
    print(
        f"server: {server.description}; {args.tasks} tasks on at most {CONCURRENCY} connections, "
        "one Client\n"
    )
    print(f"| scenario | loop | body | hyperhttp | {baseline.name} | x {baseline.name} |")
    print("|---|---|---|---:|---:|---:|")
    try:
        for scenario in scenarios:
            if urls.get(scenario) is None:
                print(f"| {scenario} | | | not served here | | |")
                continue
            ca = server.ca_file if scenario != "http" else None
            for size in args.sizes.split(","):
                url = f"{urls[scenario]}/bytes/{SIZES[size]}"
                for loop in args.loops.split(","):
                    per_request = {
                        name: (
                            count(tree, url, second, loop, ca, args.tasks)
                            - count(tree, url, first, loop, ca, args.tasks)
                        )
                        / (second - first)
                        for name, tree in trees.items()
                    }
                    now, before = per_request["hyperhttp"], per_request[baseline.name]
                    print(
                        f"| {scenario} | {loop} | {size} | {now:,.0f} | {before:,.0f} | "
                        f"{now / before:.3f} |",
                        flush=True,
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
