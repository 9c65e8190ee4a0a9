"""Where hyperhttp's per-request time goes: pyinstrument over the benchmark's 200 B load on uvloop.

    python perf/profile.py [--seconds 5] [--size 200b]
    python perf/profile.py --h2            # the h2 scenario: HTTP/2 over TLS, 64 streams

Writes perf/results/profile.txt. For a sampling profile that includes C frames, run the same
load under py-spy instead:

    py-spy record --native -o perf/results/flame.svg -- python perf/profile.py --no-pyinstrument
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clients import measure  # noqa: E402
from nginx import SIZES, ensure_nginx, start_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", default="200b", choices=sorted(SIZES))
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-pyinstrument", action="store_true")
    parser.add_argument("--h2", action="store_true", help="HTTP/2 over TLS on one connection")
    args = parser.parse_args()
    ensure_nginx()
    started = start_server(tls=args.h2, h2=args.h2)
    base_url, server, stop = started.http_url, started.description, started.stop
    if args.h2:
        if started.h2_url is None:
            parser.error("--h2 needs nginx (perf/nginx.py)")
        base_url = started.h2_url
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    import uvloop

    loop = uvloop.new_event_loop()
    size = SIZES[args.size]
    run = measure(
        "hyperhttp",
        f"{base_url}/bytes/{size}",
        args.concurrency,
        args.seconds,
        0.5,
        size,
        ca=started.ca_file if args.h2 else None,
        http2=args.h2,
    )
    try:
        if args.no_pyinstrument:
            result = loop.run_until_complete(run)
        else:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            result = loop.run_until_complete(run)
            profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            out = HERE / "results" / "profile.txt"
            out.parent.mkdir(exist_ok=True)
            out.write_text(text)
            print(text)
            print(f"written to {out}")
    finally:
        stop()
    print(f"{server}: {result['rps']:,.0f} req/s under the profiler, errors {result['errors']}")


if __name__ == "__main__":
    main()
