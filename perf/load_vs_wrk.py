"""``hyperhttp load`` against wrk: requests/s and CPU per request, one core each.

    python perf/load_vs_wrk.py                       # 3 rounds x 10 s per tool (about 1.5 min)
    python perf/load_vs_wrk.py --rounds 5 --duration 5 --json perf/results/load-vs-wrk.json

Both load generators hit the same local nginx (``perf/nginx.py``: one worker, pinned to the last
CPU, 127.0.0.1 only) for the same ``/bytes/<n>`` file (200 B by default), with the same number
of keep-alive connections (64) for the same duration (10 s), each as a child process pinned to
CPU 0 (``sched_setaffinity`` before it starts):

- ``python -m hyperhttp load URL -c 64 -d 10 --workers 1 --http1 --json -``: one process, one
  uvloop event loop, 64 connections of one Client, each doing GET + read the body in a loop;
- ``wrk -t1 -c64 -d10s --latency URL``: one thread driving the 64 connections through its epoll
  loop (wrk's main thread only sleeps through the run, then collects the figures).

Rounds run the two tools back to back, alternating which goes first, and the table gives medians
over rounds (the machine is shared and noisy). Per run: requests/s (hyperhttp's JSON ``rps``,
wrk's ``Requests/sec:`` line), p50 and p99 latency (hyperhttp's JSON, wrk's ``--latency``
distribution), and the generator's CPU time (user + system, from ``getrusage(RUSAGE_CHILDREN)``
around the child: that process only, not nginx's) divided by the requests it completed. The
whole process is counted, start-up included: for hyperhttp that is Python's start-up and imports,
so the run measures that fixed cost once (``-n <connections>``: one request per connection) and
prints it beside the table. Also shown: the generator's CPU over its wall time (about 100%: it
saturated its core), nginx's CPU over the run divided by the tool's own measured load time
(from ``/proc/<pid>/stat``; about 100%: the server, not the generator, was the limit), and the
time the hypervisor stole from each CPU (``/proc/stat``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nginx import SIZES, ensure_nginx, start_server  # noqa: E402

GENERATOR_CPU = 0
TOOLS = ("hyperhttp", "wrk")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One run of one load generator: what it reported and what it cost."""

    tool: str
    round: int
    command: list[str]
    wall_s: float  # the child process, start to exit
    user_s: float
    system_s: float
    requests: int = 0
    duration_s: float = 0.0  # the tool's own measured time
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0  # failed requests and non-2xx/3xx responses
    error_detail: str = ""
    server_cpu_s: float | None = None  # nginx's user + system over the run
    steal_s: dict[str, float] = field(default_factory=dict)  # per CPU, over the run
    failed: str | None = None  # why the run gave no figures

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6 if self.requests else float("nan")


def ensure_wrk() -> str | None:
    """wrk on PATH; installed from Debian (package ``wrk``) when missing and we are root."""
    binary = shutil.which("wrk")
    if binary is not None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return binary
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        env=env,
        capture_output=True,
        check=False,
    )
    return shutil.which("wrk")


def _pin_to_generator_cpu() -> None:
    """Runs in the child between fork and exec: the generator gets CPU 0 only."""
    os.sched_setaffinity(0, {GENERATOR_CPU})


def _nginx_pid(port: int) -> int | None:
    """The nginx process serving 127.0.0.1:``port`` (perf/nginx.py runs it without a master
    process, so this one process does all the serving), found from its ``-c`` configuration."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not argv or not argv[0].endswith(b"nginx") or b"-c" not in argv:
                continue
            config = Path(argv[argv.index(b"-c") + 1].decode()).read_text()
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        if f"listen 127.0.0.1:{port} " in config:
            return int(entry.name)
    return None


def _process_cpu(pid: int) -> float | None:
    """User + system seconds of a running process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _allowed_cpus(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def _steal() -> dict[str, float]:
    """Seconds the hypervisor stole from each CPU since boot (/proc/stat's 8th column)."""
    stolen = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name.startswith("cpu") and name != "cpu" and len(ticks) >= 8:
            stolen[name] = int(ticks[7]) / CLOCK_TICKS
    return stolen


def hyperhttp_command(url: str, connections: int, length: list[str]) -> list[str]:
    """``length``: ``["-d", "10"]`` or ``["-n", "64"]``."""
    return [
        sys.executable, "-m", "hyperhttp", "load", url, "-c", str(connections), *length,
        "--workers", "1", "--http1", "--json", "-",
    ]  # fmt: skip


def wrk_command(wrk: str, url: str, connections: int, duration: int) -> list[str]:
    return [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]


def _execute(tool: str, round_: int, command: list[str], nginx: int | None, timeout: float) -> Run:
    """Run one generator pinned to CPU 0; its CPU from the children's rusage delta (the only
    child reaped in between), nginx's from /proc, the CPUs' steal from /proc/stat."""
    server_before = _process_cpu(nginx) if nginx else None
    steal_before = _steal()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_pin_to_generator_cpu,
        )
        outcome: subprocess.CompletedProcess[str] | str = result
    except subprocess.TimeoutExpired:
        outcome = f"timed out after {timeout:g} s"
    wall = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = _process_cpu(nginx) if nginx else None
    steal_after = _steal()
    run = Run(
        tool=tool,
        round=round_,
        command=command,
        wall_s=wall,
        user_s=usage_after.ru_utime - usage_before.ru_utime,
        system_s=usage_after.ru_stime - usage_before.ru_stime,
        steal_s={cpu: steal_after[cpu] - steal_before.get(cpu, 0.0) for cpu in steal_after},
    )
    if server_before is not None and server_after is not None:
        run.server_cpu_s = server_after - server_before
    if isinstance(outcome, str):
        run.failed = outcome
    elif outcome.returncode != 0:
        tail = outcome.stderr.strip().splitlines()[-3:]
        run.failed = f"exit {outcome.returncode}: " + " | ".join(tail)
    else:
        try:
            (parse_hyperhttp if tool == "hyperhttp" else parse_wrk)(outcome.stdout, run)
        except (ValueError, KeyError) as exc:
            run.failed = f"could not read its output ({exc}): {outcome.stdout[-300:]!r}"
    return run


def parse_hyperhttp(stdout: str, run: Run) -> None:
    """The JSON document ``hyperhttp load --json -`` prints."""
    document: dict[str, Any] = json.loads(stdout)
    run.requests = int(document["requests"])
    run.duration_s = float(document["duration_s"])
    run.rps = float(document["rps"])
    run.p50_ms = float(document["latency_ms"]["p50"])
    run.p99_ms = float(document["latency_ms"]["p99"])
    bad_status = {
        code: n for code, n in document["status"].items() if not code.startswith(("2", "3"))
    }
    errors: dict[str, int] = {**document["errors"], **bad_status}
    run.errors = sum(errors.values())
    run.error_detail = ", ".join(f"{name}: {n}" for name, n in errors.items())


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _millis(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(stdout: str, run: Run) -> None:
    """wrk's text report: "N requests in Xs", "Requests/sec:", the --latency distribution,
    and its error lines ("Socket errors: ...", "Non-2xx or 3xx responses: N")."""
    done = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", stdout, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", stdout, re.M)
    if done is None or rate is None:
        raise ValueError("no 'requests in' or 'Requests/sec:' line")
    run.requests = int(done.group(1))
    run.duration_s = _millis(done.group(2), done.group(3)) / 1e3
    run.rps = float(rate.group(1))
    for percent, value, unit in re.findall(
        r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", stdout, re.M
    ):
        setattr(run, f"p{percent}_ms", _millis(value, unit))
    errors: dict[str, int] = {}
    socket_errors = re.search(r"Socket errors: (.*)$", stdout, re.M)
    if socket_errors:
        for name, n in re.findall(r"(\w+) (\d+)", socket_errors.group(1)):
            if int(n):
                errors[f"socket {name}"] = int(n)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if non_2xx:
        errors["non-2xx/3xx"] = int(non_2xx.group(1))
    run.errors = sum(errors.values())
    run.error_detail = ", ".join(f"{name}: {n}" for name, n in errors.items())


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Per tool, medians over its runs that gave figures."""
    medians: dict[str, dict[str, Any]] = {}
    for tool in TOOLS:
        good = [run for run in runs if run.tool == tool and run.failed is None]
        if not good:
            continue
        medians[tool] = {
            "runs": len(good),
            "rps": _median([run.rps for run in good]),
            "cpu_us_per_request": _median([run.cpu_us_per_request for run in good]),
            "generator_cpu_share": _median([run.cpu_s / run.wall_s for run in good]),
            "server_cpu_share": _median(
                [run.server_cpu_s / run.duration_s for run in good if run.server_cpu_s is not None]
            ),
            "p50_ms": _median([run.p50_ms for run in good if run.p50_ms is not None]),
            "p99_ms": _median([run.p99_ms for run in good if run.p99_ms is not None]),
            "errors": sum(run.errors for run in good),
        }
    return medians


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def table(medians: dict[str, dict[str, Any]], size: str) -> str:
    lines = [
        f"**GET /bytes/{SIZES[size]} ({size}), medians over rounds**\n",
        "| tool | req/s | CPU µs/request | x wrk req/s | x wrk CPU/request | p50 ms | p99 ms "
        "| generator CPU/wall | nginx CPU/load time | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    wrk = medians.get("wrk")
    for tool, m in medians.items():
        rps_ratio = m["rps"] / wrk["rps"] if wrk else None
        cpu_ratio = m["cpu_us_per_request"] / wrk["cpu_us_per_request"] if wrk else None
        lines.append(
            f"| {tool} | {m['rps']:,.0f} | {m['cpu_us_per_request']:.1f} | "
            f"{_cell(rps_ratio, '.2f')} | {_cell(cpu_ratio, '.2f')} | "
            f"{_cell(m['p50_ms'], '.2f')} | {_cell(m['p99_ms'], '.2f')} | "
            f"{m['generator_cpu_share']:.0%} | {_cell(m['server_cpu_share'], '.0%')} | "
            f"{m['errors']} |"
        )
    return "\n".join(lines)


def paired_ratios(runs: list[Run]) -> dict[str, list[float]]:
    """hyperhttp over wrk within each round where both gave figures (run close in time, so
    most of the machine's drift cancels)."""
    ratios: dict[str, list[float]] = {"rps": [], "cpu_us_per_request": []}
    for round_ in sorted({run.round for run in runs}):
        pair = {run.tool: run for run in runs if run.round == round_ and run.failed is None}
        if "hyperhttp" in pair and "wrk" in pair:
            for key in ratios:
                ratios[key].append(getattr(pair["hyperhttp"], key) / getattr(pair["wrk"], key))
    return ratios


def describe(run: Run) -> str:
    head = f"round {run.round} {run.tool:<9}"
    if run.failed is not None:
        return f"{head} FAILED: {run.failed}"
    server = (
        f", nginx {run.server_cpu_s:.2f} s ({run.server_cpu_s / run.duration_s:.0%} of the load)"
        if run.server_cpu_s is not None
        else ""
    )
    steal = " ".join(f"{cpu} {seconds:.2f} s" for cpu, seconds in run.steal_s.items())
    latency = f"p50 {_cell(run.p50_ms, '.2f')} ms, p99 {_cell(run.p99_ms, '.2f')} ms"
    errors = f"{run.errors} ({run.error_detail})" if run.errors else "0"
    return (
        f"{head} {run.rps:>9,.0f} req/s, {run.requests:,} requests in {run.duration_s:.2f} s, "
        f"CPU {run.cpu_s:.2f} s (user {run.user_s:.2f}, sys {run.system_s:.2f}) over "
        f"{run.wall_s:.2f} s wall ({run.cpu_s / run.wall_s:.0%}), "
        f"{run.cpu_us_per_request:.1f} µs/request; {latency}; errors {errors}{server}; "
        f"steal {steal}"
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _wrk_version(wrk: str) -> str:
    text = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (
        (text.stdout or text.stderr).strip().splitlines()[0] if text.stdout or text.stderr else "?"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (whole)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--size", default="200b", choices=list(SIZES), help="the body")
    parser.add_argument("--json", help="also write the settings and every run here")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        parser.error("--rounds, --duration and --connections must be at least 1")

    wrk = ensure_wrk()
    if wrk is None:
        print(
            "skipped: wrk is not installed and could not be installed here (that needs root and "
            "apt-get: apt-get install wrk, or build it from https://github.com/wg/wrk)"
        )
        return 0
    if ensure_nginx() is None:
        print(
            "skipped: nginx is not installed and could not be installed here (that needs root "
            "and apt-get); the comparison needs a server faster than both generators"
        )
        return 0
    cpus = os.cpu_count() or 1
    server = start_server()
    try:
        url = f"{server.http_url}/bytes/{SIZES[args.size]}"
        port = int(server.http_url.rpartition(":")[2])
        nginx = _nginx_pid(port)
        print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
        print(f"machine: {cpus} CPUs ({_cpu_model()}), shared; Python {platform.python_version()}")
        print(
            f"server: {server.description}, pid {nginx}, "
            f"CPUs allowed: {_allowed_cpus(nginx) if nginx else '?'}; {url}"
        )
        if cpus < 2:
            print("note: one CPU only: the generator and nginx share it")
        print(f"wrk: {_wrk_version(wrk)}")
        print(f"generators pinned to CPU {GENERATOR_CPU} (sched_setaffinity before exec):")
        length = ["-d", str(args.duration)]
        commands = {
            "hyperhttp": hyperhttp_command(url, args.connections, length),
            "wrk": wrk_command(wrk, url, args.connections, args.duration),
        }
        for command in commands.values():
            print(f"  {shlex.join(command)}")
        timeout = args.duration * 3 + 60

        fixed = _execute(
            "hyperhttp",
            0,
            hyperhttp_command(url, args.connections, ["-n", str(args.connections)]),
            nginx,
            timeout,
        )
        print(
            f"hyperhttp's fixed cost (start-up, {args.connections} connections, one request "
            f"each, exit): "
            + (fixed.failed or f"{fixed.cpu_s:.3f} s CPU in {fixed.wall_s:.3f} s wall")
        )
        print()

        runs: list[Run] = []
        for round_ in range(1, args.rounds + 1):
            order = TOOLS if round_ % 2 else tuple(reversed(TOOLS))
            for tool in order:
                run = _execute(tool, round_, commands[tool], nginx, timeout)
                runs.append(run)
                print(describe(run), flush=True)
                time.sleep(0.5)
    finally:
        server.stop()

    medians = summarise(runs)
    print()
    print(table(medians, args.size))
    ratios = paired_ratios(runs)
    if ratios["rps"]:
        print()
        for key, label in (("rps", "req/s"), ("cpu_us_per_request", "CPU/request")):
            values = ratios[key]
            print(
                f"hyperhttp / wrk {label}, per round: "
                + ", ".join(f"{value:.2f}" for value in values)
                + f" (median {statistics.median(values):.2f})"
            )
    if fixed.failed is None and "hyperhttp" in medians:
        good = [run for run in runs if run.tool == "hyperhttp" and run.failed is None]
        steady = _median(
            [
                (run.cpu_s - fixed.cpu_s) / (run.requests - fixed.requests) * 1e6
                for run in good
                if run.requests > fixed.requests
            ]
        )
        wrk_cpu = medians.get("wrk", {}).get("cpu_us_per_request")
        versus = f" (x wrk: {steady / wrk_cpu:.2f})" if steady and wrk_cpu else ""
        print(
            f"hyperhttp CPU µs/request less its fixed cost ({fixed.cpu_s:.3f} s): "
            f"{_cell(steady, '.1f')}{versus}"
        )

    if args.json:
        document = {
            "settings": vars(args),
            "url": url,
            "commands": commands,
            "machine": {"cpus": cpus, "model": _cpu_model(), "server": server.description},
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "fixed_cost": {**asdict(fixed), "cpu_s": fixed.cpu_s},
            "runs": [
                {
                    **asdict(run),
                    "cpu_s": run.cpu_s,
                    "cpu_us_per_request": run.cpu_us_per_request if run.requests else None,
                }
                for run in runs
            ],
            "medians": medians,
            "paired_ratios": ratios,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nraw figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
