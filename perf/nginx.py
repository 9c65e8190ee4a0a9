"""The benchmark's server: Debian's nginx with one worker, else hyperhttp's own demo server.

Both serve ``/bytes/<n>`` with Content-Length and keep-alive, on 127.0.0.1 only, pinned to the
last CPU so that the client under test has the first one to itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

SIZES = {"200b": 200, "10k": 10 * 1024, "1m": 1024 * 1024}

_CONFIG = """
worker_processes 1;
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    types {{ }}
    default_type application/octet-stream;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root}/www;
    }}
}}
"""


def nginx_binary() -> str | None:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    return found


def ensure_nginx() -> str | None:
    """Install Debian's nginx-light when it is missing and we are root; None when not possible."""
    binary = nginx_binary()
    if binary is not None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return binary
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
    for package in ("nginx-light", "nginx"):
        result = subprocess.run(
            ["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, check=False
        )
        if result.returncode == 0:
            break
    subprocess.run(["pkill", "-x", "nginx"], capture_output=True, check=False)  # no system service
    return nginx_binary()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_cpu() -> list[str]:
    cpus = os.cpu_count() or 1
    if cpus > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpus - 1)]
    return []


def _wait_accepting(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(1000):  # bounded: 10 s
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("server did not start accepting connections")


def start_server(prefer_nginx: bool = True) -> tuple[str, str, Callable[[], None]]:
    """Start a server; return (base URL, description, stop)."""
    binary = nginx_binary() if prefer_nginx else None
    port = _free_port()
    if binary is not None:
        root = Path(tempfile.mkdtemp(prefix="hyperhttp-perf-"))
        (root / "www" / "bytes").mkdir(parents=True)
        (root / "tmp").mkdir()
        for size in SIZES.values():
            (root / "www" / "bytes" / str(size)).write_bytes(bytes(i % 251 for i in range(size)))
        (root / "nginx.conf").write_text(_CONFIG.format(root=root, port=port))
        version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
        process = subprocess.Popen(
            [*_server_cpu(), binary, "-c", str(root / "nginx.conf"), "-p", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        description = f"{version.replace('nginx version: ', '')} (1 worker)"
    else:
        code = (
            "import sys, socket; from hyperhttp._demo_server import _serve\n"
            "class E:\n    def set(self): print('ready', flush=True)\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('127.0.0.1', {port})); s.listen(4096); _serve(s, E())\n"
        )
        process = subprocess.Popen(
            [*_server_cpu(), sys.executable, "-c", code],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        description = "hyperhttp demo server (asyncio+httptools; nginx not installed)"
    _wait_accepting(port, process)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()

    return f"http://127.0.0.1:{port}", description, stop


if __name__ == "__main__":
    print(ensure_nginx() or "nginx is not available: the benchmark will use its own server")
