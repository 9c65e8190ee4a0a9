"""``hyperhttp load --ray``: Ray actors measure what worker processes measure.

The CLI runs as a user runs it, in a subprocess, against its embedded server (``--serve``), once
with two worker processes and once with two Ray actors on a local Ray head that this module
starts (two CPUs, 127.0.0.1 only, its own temporary directory). Every subprocess has a timeout
and is killed with all it started, so that a stuck Ray cannot hang the suite.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("the Ray head's processes are found through /proc", allow_module_level=True)
pytest.importorskip("ray")
from hdrh.histogram import HdrHistogram  # noqa: E402

pytestmark = pytest.mark.timeout(180)  # a backstop: each step below has a shorter timeout

REQUESTS = 400
ROOT = Path(__file__).resolve().parents[2]
# The processes the CLI's actors ran in, from the GCS's actor table. A private module: Ray's
# public state API (ray.util.state) asks the dashboard, which takes seconds to start.
ACTOR_PIDS = """
import json, sys
import ray
from ray._private import state
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=30)
actors = [a for a in state.actors().values() if a["ActorClassName"] == "_LoadActor"]
jobs = [int.from_bytes(bytes.fromhex(a["JobID"]), "little") for a in actors]  # numbered in order
print(json.dumps([{"job": job, "pid": a["Pid"]} for job, a in zip(jobs, actors)]))
ray.shutdown()
"""


def _ray_env(**extra: str) -> dict[str, str]:
    """No usage reports, and loopback only. On Linux Ray replaces ``--node-ip-address 127.0.0.1``
    by the address of the default route, and its servers listen there or on every interface; in
    its single-machine mode (its default on macOS and Windows) they all listen on 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", **extra)
    return env


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


def _session_members(session: int) -> list[int]:
    """Live processes (not zombies) in ``session``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, _pgrp, sid = stat[stat.rindex(")") + 2 :].split()[:4]
        if int(sid) == session and state != "Z":
            members.append(int(entry.name))
    return members


def _kill_session(leader: subprocess.Popen[Any]) -> None:
    """SIGKILL ``leader`` (started with ``start_new_session``) and every process in its session.

    By session, not by name: ``ray stop`` kills every Ray process on the machine, other people's
    too, and Ray's workers leave the head's process group. The leader is reaped last, so that
    until then its PID, which names the session, cannot be given to anyone else. No graceful
    stop: the cluster holds nothing worth keeping, and gcs_server takes seconds over SIGTERM.
    """
    leader.kill()
    deadline = time.monotonic() + 15
    while members := _session_members(leader.pid):
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {members} outlived SIGKILL")
        time.sleep(0.05)
    leader.wait(timeout=10)


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``subprocess.run``, but a timeout kills everything the command started (the CLI's server
    and worker processes), not just the command."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_ray_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(process)
        stdout, stderr = process.communicate()
        pytest.fail(f"{command} took over {timeout} s\n{stderr}")
    finally:
        if process.poll() is None:  # interrupted
            _kill_session(process)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """A local Ray head with 2 CPUs, its address; killed with all its processes at the end.

    ``ray start --block`` in a session of its own: its daemons and workers stay in that session,
    which is how they are found and killed afterwards (see ``_kill_session``). Ready when it has
    written the GCS address into its temporary directory, which it does once the node is up. Its
    ports are chosen free rather than Ray's fixed defaults, so that runs side by side do not
    collide. The temporary directory is short (/tmp): Ray puts unix sockets in it, and their
    paths are limited to 107 bytes.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="hh-ray-"))
    client, agent, agent_grpc, metrics, dashboard_metrics, autoscaler_metrics = _free_ports(6)
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--num-cpus=2",
        "--num-gpus=0",
        "--object-store-memory=100000000",  # 100 MB, not 30% of memory: the results are small
        "--port=0",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
    ]
    if importlib.util.find_spec("grpc") is not None:  # ray[client]: its server, else none
        command.append(f"--ray-client-server-port={client}")
    env = _ray_env(
        DASHBOARD_METRIC_PORT=str(dashboard_metrics), AUTOSCALER_METRIC_PORT=str(autoscaler_metrics)
    )
    log_path = temp_dir / "ray-start.log"
    with open(log_path, "wb") as log:
        head = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        address_file = temp_dir / "ray_current_cluster"
        deadline = time.monotonic() + 60
        address = ""
        while not re.fullmatch(r"\S+:\d+", address):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not come up:\n{log_path.read_text()}")
            time.sleep(0.1)
            address = address_file.read_text().strip() if address_file.exists() else ""
        assert address.startswith("127.0.0.1:"), address
        yield address
    finally:
        _kill_session(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _load(*options: str) -> dict[str, Any]:
    """``hyperhttp load --serve -n 400 -c 8 --workers 2 ... --json -``: its JSON document, which
    must be all that it writes on stdout."""
    command = [sys.executable, "-m", "hyperhttp", "load", "--serve", "-n", str(REQUESTS)]
    command += ["-c", "8", "--workers", "2", *options, "--json", "-"]
    done = _run(command, timeout=60)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@pytest.fixture(scope="module")
def on_processes() -> dict[str, Any]:
    return _load()


@pytest.fixture(scope="module")
def on_ray(ray_head: str) -> dict[str, Any]:
    return _load("--ray", ray_head)


def _histogram_count(document: dict[str, Any]) -> int:
    count: int = HdrHistogram.decode(document["histogram"].encode()).get_total_count()
    return count


def test_ray_actors_and_processes_count_the_same(
    on_processes: dict[str, Any], on_ray: dict[str, Any]
) -> None:
    for document in (on_processes, on_ray):
        assert document["requests"] == REQUESTS
        assert document["status"] == {"200": REQUESTS}
        assert document["errors"] == {}
        assert document["interrupted"] is False
        assert document["plan"]["workers"] == 2
        assert _histogram_count(document) == REQUESTS  # the merged histogram has every request
    assert on_ray["bytes"] == on_processes["bytes"] > 0


def test_ray_runs_one_actor_per_worker_each_in_its_own_process(
    ray_head: str, on_ray: dict[str, Any]
) -> None:
    done = _run([sys.executable, "-c", ACTOR_PIDS, ray_head], timeout=60)
    assert done.returncode == 0, done.stderr
    actors = json.loads(done.stdout)
    ours = max(a["job"] for a in actors)  # this module's run of the CLI: the latest job
    pids = {a["pid"] for a in actors if a["job"] == ours}
    assert len(pids) == 2, actors
