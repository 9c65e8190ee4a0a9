"""The crawl benchmark's farm: a few hundred small web sites on one nginx, all on 127.0.0.1.

Each site is an nginx ``server`` on a port of its own (no names, so nothing is resolved); a
site is a root page (``/``) and ``pages - 1`` more (``/p/<n>.html``), HTML of 5-100 KB
(log-uniform: most pages small, as on the web), stored only gzip-compressed and served by
``gzip_static`` (a client that does not offer gzip gets a 404, which the crawl counts). Pages
link to pages of their own site and of others, to redirects and to missing pages, always by
absolute URL, so the crawler needs no base URL and no client's URL joining is measured.

What a crawler meets, and this farm has:

- **redirects** across origins and schemes: every site has ``/go/0`` .. ``/go/2``; ``/go/0`` is
  a 301 or 302 to a page of another site (http -> https when that site is one of the TLS ones,
  https -> http the other way); a later one may instead point at another site's ``/go/0``, a
  chain of two hops;
- **404s**: some links point at ``/missing/<n>.html``;
- **connections that end**: a tenth of the plain sites have ``keepalive_requests 3`` (nginx
  closes each connection after its third response) and another tenth ``keepalive_timeout 1s``;
- **TLS with HTTP/2**: one site in twenty listens with ``ssl http2``, its certificate for
  127.0.0.1 issued by a CA that trustme makes for the run; the clients trust that CA and
  verify (no client turns verification off).

Deterministic from the seed: the sites' kinds, page sizes, words and links. The port numbers
are the run's (free ports when it starts); they are all five digits (the kernel's ephemeral
range), so every page has the same length from one run to the next. The farm's manifest gives,
for every URL the crawl can reach, the status it must end with after redirects (200 or 404)
and the SHA-256 of the page it must deliver, and the set of URLs a complete crawl fetches.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import random
import socket
import string
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nginx import (
    listen_http2,
    make_certificates,
    nginx_binary,
    nginx_version,
    terminate,
    wait_accepting,
)

REDIRECTS_PER_SITE = 3
MIN_PAGE, MAX_PAGE = 5 * 1024, 100 * 1024
LOG_FORMAT = "$server_port $connection $status $server_protocol $sent_http_content_encoding"

# A reference to a URL before ports are known: ("page", site, page), ("go", site, k) or
# ("missing", site, n). Page 0 is the site's root, "/".
Ref = tuple[str, int, int]

_CONFIG = """
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    types {{ text/html html; }}
    default_type application/octet-stream;
    gzip_static on;
    log_format crawl '{log_format}';
    access_log {root}/access.log crawl;
    ssl_certificate {root}/tls/server.pem;
    ssl_certificate_key {root}/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
{servers}}}
"""

_SERVER = """    server {{
        listen 127.0.0.1:{port}{tls} backlog=4096;{http2_on}
        root {root}/sites/{number};{limits}
        location = / {{
            rewrite ^ /index.html last;
        }}
{redirects}    }}
"""


@dataclass(frozen=True)
class Site:
    """One origin of the farm; ``kind`` is ``tls``, ``closer``, ``idler`` or ``plain``."""

    number: int
    kind: str
    port: int = 0

    @property
    def origin(self) -> str:
        scheme = "https" if self.kind == "tls" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


@dataclass
class Plan:
    """The farm before ports: what each site is, its pages' sizes and links, its redirects."""

    sites: list[Site]
    pages: int
    sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    links: dict[tuple[int, int], list[Ref]] = field(default_factory=dict)
    redirects: dict[tuple[int, int], tuple[int, Ref]] = field(default_factory=dict)


@dataclass
class Farm:
    """A farm on disk: ``manifest`` maps each reachable URL to (final status, page SHA-256 hex or
    None for a 404); ``seeds`` are the sites' roots; ``expected`` is how many URLs a complete
    crawl fetches."""

    root: Path
    sites: list[Site]
    pages: int
    seed: int
    manifest: dict[str, tuple[int, str | None]]
    seeds: list[str]
    ca_file: str
    other_ca_file: str
    html_bytes: int
    gzip_bytes: int

    @property
    def expected(self) -> int:
        return len(self.manifest)

    def describe(self) -> str:
        kinds = {kind: sum(site.kind == kind for site in self.sites) for kind in _KINDS}
        statuses = [status for status, _ in self.manifest.values()]
        redirects = sum(url.rsplit("/", 2)[-2] == "go" for url in self.manifest)
        return (
            f"{len(self.sites)} sites x {self.pages} pages (seed {self.seed}): "
            f"{kinds['tls']} TLS+HTTP/2, {kinds['closer']} with keepalive_requests 3, "
            f"{kinds['idler']} with keepalive_timeout 1s, {kinds['plain']} plain; "
            f"{self.html_bytes / 2**20:.0f} MiB of HTML, {self.gzip_bytes / 2**20:.0f} MiB "
            f"gzipped; a complete crawl fetches {self.expected} URLs: "
            f"{statuses.count(200) - redirects} pages, {redirects} redirects, "
            f"{statuses.count(404)} missing (404)"
        )


_KINDS = ("tls", "closer", "idler", "plain")


def plan_farm(sites: int, pages: int, seed: int) -> Plan:
    """The farm's shape from ``seed`` alone: kinds, sizes, links and redirects."""
    rng = random.Random(seed)
    numbers = list(range(sites))
    rng.shuffle(numbers)
    tls = max(1, sites // 20)
    closers = sites // 10
    kinds = {}
    for position, number in enumerate(numbers):
        if position < tls:
            kinds[number] = "tls"
        elif position < tls + closers:
            kinds[number] = "closer"
        elif position < tls + 2 * closers:
            kinds[number] = "idler"
        else:
            kinds[number] = "plain"
    plan = Plan([Site(number, kinds[number]) for number in range(sites)], pages)
    tls_sites = [n for n in range(sites) if kinds[n] == "tls"]
    plain_sites = [n for n in range(sites) if kinds[n] != "tls"]
    missing = 0

    def other(site: int, pool: list[int]) -> int:
        choices = [n for n in pool if n != site] or [n for n in range(sites) if n != site]
        return rng.choice(choices) if choices else site

    for site in range(sites):
        for k in range(REDIRECTS_PER_SITE):
            status = rng.choice((301, 302))
            if k == 0:  # a page of another site; across schemes for part of them
                crossing = tls_sites if kinds[site] != "tls" else plain_sites
                target = other(site, crossing if rng.random() < 0.4 else list(range(sites)))
                plan.redirects[site, k] = (status, ("page", target, rng.randrange(pages)))
            elif rng.random() < 0.25:  # a chain: another site's /go/0
                plan.redirects[site, k] = (status, ("go", other(site, list(range(sites))), 0))
            else:
                target = other(site, list(range(sites)))
                plan.redirects[site, k] = (status, ("page", target, rng.randrange(pages)))
    for site in range(sites):
        for page in range(pages):
            plan.sizes[site, page] = int(
                math.exp(rng.uniform(math.log(MIN_PAGE), math.log(MAX_PAGE)))
            )
            links: list[Ref] = []
            if page == 0:  # the root: every page and redirect of its site, and three roots
                links += [("page", site, p) for p in range(1, pages)]
                links += [("go", site, k) for k in range(REDIRECTS_PER_SITE)]
                links += [("page", other(site, list(range(sites))), 0) for _ in range(3)]
            else:
                links += [("page", site, rng.randrange(pages)) for _ in range(rng.randint(4, 8))]
                links += [
                    ("page", rng.randrange(sites), rng.randrange(pages))
                    for _ in range(rng.randint(1, 3))
                ]
                if rng.random() < 0.3:
                    links.append(("go", rng.randrange(sites), rng.randrange(REDIRECTS_PER_SITE)))
                if rng.random() < 0.1:
                    links.append(("missing", rng.randrange(sites), missing))
                    missing += 1
            rng.shuffle(links)
            plan.links[site, page] = links
    return plan


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports of 127.0.0.1 (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _url(sites: list[Site], ref: Ref) -> str:
    kind, site, number = ref
    origin = sites[site].origin
    if kind == "page":
        return f"{origin}/" if number == 0 else f"{origin}/p/{number}.html"
    if kind == "go":
        return f"{origin}/go/{number}"
    return f"{origin}/missing/{number}.html"


def _vocabulary(rng: random.Random) -> list[str]:
    letters = string.ascii_lowercase
    return ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(3000)]


def _render(
    rng: random.Random, vocabulary: list[str], title: str, size: int, links: list[str]
) -> bytes:
    """An HTML page of about ``size`` bytes: paragraphs of words with the links spread among
    them (every link is in the page, whatever its size)."""
    head = (
        f"<!doctype html>\n<html><head><meta charset=utf-8><title>{title}</title></head>\n<body>\n"
    )
    anchors = [f'<a href="{url}">{rng.choice(vocabulary)}</a>' for url in links]
    room = size - len(head) - sum(len(a) + 1 for a in anchors) - len("</body></html>\n")
    words = rng.choices(vocabulary, k=max(1, room // 7))
    paragraphs = [words[i : i + 80] for i in range(0, len(words), 80)]
    for index, anchor in enumerate(anchors):
        paragraphs[index * len(paragraphs) // max(1, len(anchors))].append(anchor)
    body = "".join(f"<p>{' '.join(paragraph)}</p>\n" for paragraph in paragraphs)
    return (head + body + "</body></html>\n").encode()


def _final(plan: Plan, ref: Ref) -> Ref:
    """Where a ref ends after following redirects (a page or a missing page)."""
    for _ in range(10):
        if ref[0] != "go":
            return ref
        ref = plan.redirects[ref[1], ref[2]][1]
    raise ValueError(f"redirect loop at {ref}")


def build_farm(directory: Path, sites: int, pages: int, seed: int) -> Farm:
    """Write the farm (pages, certificates, nginx.conf) under ``directory``; return it."""
    plan = plan_farm(sites, pages, seed)
    ports = free_ports(sites)
    plan.sites = [
        Site(site.number, site.kind, port) for site, port in zip(plan.sites, ports, strict=True)
    ]
    certificates = make_certificates(directory / "tls")
    (directory / "tmp").mkdir(exist_ok=True)
    rng = random.Random(seed + 1)
    vocabulary = _vocabulary(rng)
    digests: dict[tuple[int, int], str] = {}
    html_bytes = gzip_bytes = 0
    for site in plan.sites:
        folder = directory / "sites" / str(site.number)
        (folder / "p").mkdir(parents=True)
        for page in range(pages):
            links = [_url(plan.sites, ref) for ref in plan.links[site.number, page]]
            title = f"site {site.number} page {page}"
            html = _render(rng, vocabulary, title, plan.sizes[site.number, page], links)
            digests[site.number, page] = hashlib.sha256(html).hexdigest()
            packed = gzip.compress(html, compresslevel=6, mtime=0)
            name = folder / ("index.html.gz" if page == 0 else f"p/{page}.html.gz")
            name.write_bytes(packed)
            html_bytes += len(html)
            gzip_bytes += len(packed)
    manifest, seeds = _reachable(plan, digests)
    (directory / "nginx.conf").write_text(_config(directory, plan))
    return Farm(
        root=directory,
        sites=plan.sites,
        pages=pages,
        seed=seed,
        manifest=manifest,
        seeds=seeds,
        ca_file=str(certificates["ca"]),
        other_ca_file=str(certificates["other_ca"]),
        html_bytes=html_bytes,
        gzip_bytes=gzip_bytes,
    )


def _reachable(
    plan: Plan, digests: dict[tuple[int, int], str]
) -> tuple[dict[str, tuple[int, str | None]], list[str]]:
    """Every URL a crawl from the roots fetches, with what it must deliver; and the roots."""
    seeds = [("page", site.number, 0) for site in plan.sites]
    manifest: dict[str, tuple[int, str | None]] = {}
    queue: deque[Ref] = deque(seeds)
    seen = {_url(plan.sites, ref) for ref in seeds}
    while queue:
        ref = queue.popleft()
        final = _final(plan, ref)
        url = _url(plan.sites, ref)
        if final[0] == "missing":
            manifest[url] = (404, None)
            continue
        manifest[url] = (200, digests[final[1], final[2]])
        for link in plan.links[final[1], final[2]]:
            target = _url(plan.sites, link)
            if target not in seen:
                seen.add(target)
                queue.append(link)
    return manifest, [_url(plan.sites, ref) for ref in seeds]


def _config(directory: Path, plan: Plan) -> str:
    binary = nginx_binary()
    listen, http2_on = listen_http2(nginx_version(binary) if binary else ())
    servers = []
    for site in plan.sites:
        limits = {
            "closer": "\n        keepalive_requests 3;",
            "idler": "\n        keepalive_timeout 1s;",
        }.get(site.kind, "")
        redirects = ""
        for k in range(REDIRECTS_PER_SITE):
            status, target = plan.redirects[site.number, k]
            redirects += (
                f"        location = /go/{k} {{\n"
                f"            return {status} {_url(plan.sites, target)};\n"
                "        }\n"
            )
        tls = site.kind == "tls"
        servers.append(
            _SERVER.format(
                port=site.port,
                tls=f" ssl{listen}" if tls else "",
                http2_on=http2_on if tls else "",
                root=directory,
                number=site.number,
                limits=limits,
                redirects=redirects,
            )
        )
    return _CONFIG.format(root=directory, log_format=LOG_FORMAT, servers="".join(servers))


def start_farm(farm: Farm, binary: str, cpu: int) -> subprocess.Popen[bytes]:
    """Run the farm's nginx (one worker, pinned to ``cpu``); stop it with ``nginx.terminate``."""

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    process = subprocess.Popen(
        [binary, "-c", str(farm.root / "nginx.conf"), "-p", str(farm.root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pin,
    )
    try:
        for site in farm.sites:
            wait_accepting(site.port, process)
    except RuntimeError:
        terminate(process)
        errors = (farm.root / "error.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the farm's nginx did not start: {errors}") from None
    return process


def served(log: Path, offset: int) -> dict[str, Any]:
    """What nginx's access log says since ``offset``: requests, connections, protocols, gzip.

    One line per request, ``LOG_FORMAT``: port, connection serial number, status, protocol and
    the Content-Encoding nginx sent. A connection is counted once however many requests it
    carried, so ``connections`` is how many the client opened (those it opened without sending a
    request are not in the log).
    """
    with open(log, "rb") as file:
        file.seek(offset)
        lines = file.read().decode().splitlines()
    connections: dict[str, str] = {}  # serial number -> protocol
    statuses: dict[str, int] = {}
    protocols: dict[str, int] = {}
    gzipped = ok = 0
    for line in lines:
        _port, connection, status, protocol, encoding = line.split(" ")
        connections[connection] = protocol
        statuses[status] = statuses.get(status, 0) + 1
        protocols[protocol] = protocols.get(protocol, 0) + 1
        if status == "200":
            ok += 1
            gzipped += encoding == "gzip"
    return {
        "requests": len(lines),
        "connections": len(connections),
        "http2_connections": sum(p == "HTTP/2.0" for p in connections.values()),
        "statuses": statuses,
        "protocols": protocols,
        "ok_gzipped": gzipped,
        "ok": ok,
    }
