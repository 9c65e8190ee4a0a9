"""The ``hyperhttp`` command (also ``python -m hyperhttp``): ``load`` and ``get``.

``hyperhttp load URL``: a load generator in the manner of wrk2 and oha (see engine.py for the
closed and open models, workers.py for processes and Ray). ``hyperhttp get URL``: one request,
curl-like. Without a URL, ``--serve`` starts an embedded server (127.0.0.1, its own process) to
aim at; with no arguments at all, ``hyperhttp`` runs the main job: ``load --serve`` for 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from .._version import __version__

__all__ = ["MAIN_JOB", "main"]

MAIN_JOB = ["load", "--serve", "-d", "5"]  # ``hyperhttp`` with no arguments (``make run``)


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", nargs="?", help="the URL (omit it with --serve)")
    parser.add_argument("-m", "--method", default="GET")
    parser.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value', repeatable"
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", help="the request body, as text")
    body.add_argument("--body-file", help="the request body, read from this file")
    version = parser.add_mutually_exclusive_group()
    version.add_argument("--http2", action="store_true", help="offer HTTP/2 (https:// only)")
    version.add_argument("--http1", action="store_true", help="HTTP/1.1 only (the default)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--insecure", "-k", action="store_true", help="do not verify TLS")
    parser.add_argument("--cacert", help="a CA bundle to verify the server with")
    parser.add_argument(
        "--serve", action="store_true", help="aim at an embedded local server (no URL needed)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperhttp", description="hyperhttp's load generator and one-shot client"
    )
    parser.add_argument("--version", action="version", version=f"hyperhttp {__version__}")
    commands = parser.add_subparsers(dest="command")
    load = commands.add_parser("load", help="generate load against a URL")
    _add_request_options(load)
    load.add_argument("-c", "--connections", type=int, default=64, help="default 64")
    ending = load.add_mutually_exclusive_group()
    ending.add_argument("-n", "--requests", type=int, help="send exactly this many requests")
    ending.add_argument("-d", "--duration", type=float, help="seconds (default 10)")
    load.add_argument(
        "--rate", type=float, help="requests/s on a constant schedule (open model, wrk2's -R)"
    )
    load.add_argument(
        "--workers", type=int, help="processes (or Ray actors), one loop each; default: cores"
    )
    load.add_argument("--ray", metavar="ADDRESS", help="run the workers on Ray ('auto', host:port)")
    load.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    get = commands.add_parser("get", help="send one request and print the response")
    _add_request_options(get)
    get.add_argument("-v", "--verbose", action="store_true", help="connection, TLS and timings")
    return parser


def _headers(values: list[str]) -> list[tuple[str, str]]:
    headers = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"hyperhttp: a header is 'Name: value', not {value!r}")
        headers.append((name.strip(), rest.strip()))
    return headers


def _body(args: argparse.Namespace) -> bytes | None:
    if args.body is not None:
        return str(args.body).encode("utf-8")
    if args.body_file is not None:
        with open(args.body_file, "rb") as handle:
            return handle.read()
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        argv = MAIN_JOB
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    server = None
    if args.url is None:
        if not args.serve:
            raise SystemExit(f"hyperhttp {args.command}: give a URL, or --serve")
        from .._demo_server import start_demo_server

        base, server = start_demo_server()
        args.url = f"{base}/"
    try:
        if args.command == "get":
            return _get(args)
        return _load(args)
    finally:
        if server is not None:
            server.terminate()
            server.join(5)


def _load(args: argparse.Namespace) -> int:
    from .engine import Plan, Result
    from .report import Progress, summary, text_report, write_json
    from .workers import run_here, run_processes, run_ray, split

    duration = args.duration
    if args.requests is None and duration is None:
        duration = 10.0
    if args.connections < 1 or (args.requests is not None and args.requests < 0):
        raise SystemExit("hyperhttp load: -c must be at least 1, -n not negative")
    if args.rate is not None and args.rate <= 0:
        raise SystemExit("hyperhttp load: --rate must be positive")
    plan = Plan(
        url=args.url,
        method=args.method.upper(),
        headers=_headers(args.header),
        body=_body(args),
        connections=args.connections,
        requests=args.requests,
        duration=duration,
        rate=args.rate,
        http2=bool(args.http2),
        timeout=args.timeout,
        insecure=args.insecure,
        cacert=args.cacert,
    )
    progress = Progress(plan.requests, plan.duration)
    try:
        if args.ray:
            count = args.workers or _ray_cpus(args.ray)
            plans = split(plan, count)
            results = run_ray(plans, args.ray, progress)
        else:
            count = args.workers or os.cpu_count() or 1
            plans = split(plan, count)
            if len(plans) == 1:
                results = [run_here(plans[0], progress=progress)]
            else:
                results = run_processes(plans, progress)
    finally:
        progress.close()
    merged = Result.merge(results)
    model = f"open model, {plan.rate:g} req/s" if plan.rate else "closed model"
    where = f"Ray {args.ray}" if args.ray else "processes" if len(plans) > 1 else "process"
    title = (
        f"hyperhttp {__version__} load: {plan.method} {plan.url}, {plan.connections} connections, "
        f"{len(plans)} worker {where}, {model}"
    )
    document = summary(merged, plan={**plan.to_wire(), "body": None, "workers": len(plans)})
    if args.json != "-":
        print(text_report(document, title))
    if args.json:
        write_json(document, args.json)
    return 0


def _ray_cpus(address: str) -> int:
    """The CPUs of the Ray cluster at ``address``: one worker each, by default."""
    import importlib

    try:
        ray: Any = importlib.import_module("ray")
    except ImportError:
        raise SystemExit("--ray needs Ray: pip install 'hyperhttp[ray]'") from None
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _get(args: argparse.Namespace) -> int:
    from .. import Client, HyperHTTPError

    class _Say(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(f"* {record.getMessage()}", file=sys.stderr)

    logger = logging.getLogger("hyperhttp")
    handler = _Say()
    if args.verbose:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    verify: Any = args.cacert or (not args.insecure)

    async def fetch() -> int:
        async with Client(
            http2=bool(args.http2), verify=verify, timeout=args.timeout, timings=args.verbose
        ) as client:
            response = await client.request(
                args.method.upper(), args.url, headers=_headers(args.header), content=_body(args)
            )
            body = await response.aread()
        print(f"{response.http_version} {response.status_code} {response.reason_phrase}")
        for name, value in response.headers.multi_items():
            print(f"{name}: {value}")
        print()
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        if args.verbose:
            timings = (response.extensions or {}).get("timings", {})
            shown = ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in timings.items())
            print(f"\n* timings: {shown}", file=sys.stderr)
        return 0

    try:
        return asyncio.run(fetch())
    except HyperHTTPError as exc:
        print(f"hyperhttp get: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        logger.removeHandler(handler)
