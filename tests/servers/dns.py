"""A DNS server on loopback for resolver tests (dnslib), answering from a table and counting queries.

Runs a UDP socket on 127.0.0.1 in a thread. Names not in the table get NXDOMAIN; a name in the table
without records of the asked type gets an empty NOERROR answer. ``queries`` counts every question
the server received, per (name, type), so tests can see what the client's cache saved.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord

__all__ = ["DNSServer"]


class DNSServer:
    def __init__(self) -> None:
        self.records: dict[str, list[tuple[str, str, int]]] = {}  # name -> [(type, ip, ttl)]
        self.queries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.nameserver = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        self._running = True
        self._thread.start()

    def add(self, name: str, ip: str, ttl: int = 60) -> None:
        qtype = "AAAA" if ":" in ip else "A"
        with self._lock:
            self.records.setdefault(name.rstrip(".").lower(), []).append((qtype, ip, ttl))

    def set(self, name: str, *ips: str, ttl: int = 60) -> None:
        """Replace the records of ``name``."""
        with self._lock:
            self.records.pop(name.rstrip(".").lower(), None)
        for ip in ips:
            self.add(name, ip, ttl)

    def count(self, name: str, qtype: str | None = None) -> int:
        name = name.rstrip(".").lower()
        with self._lock:
            return sum(n for (q, t), n in self.queries.items() if q == name and qtype in (None, t))

    def _serve(self) -> None:
        while self._running:
            try:
                data, peer = self._sock.recvfrom(4096)
            except OSError:
                return
            try:
                request = DNSRecord.parse(data)
            except Exception:
                continue
            reply = request.reply()
            for question in request.questions:
                name = str(question.qname).rstrip(".").lower()
                qtype = QTYPE[question.qtype]
                with self._lock:
                    self.queries[(name, qtype)] += 1
                    records = self.records.get(name)
                if records is None:
                    reply.header.rcode = RCODE.NXDOMAIN
                    continue
                for rtype, ip, ttl in records:
                    if rtype == qtype:
                        rdata = A(ip) if rtype == "A" else AAAA(ip)
                        reply.add_answer(RR(question.qname, question.qtype, rdata=rdata, ttl=ttl))
            try:
                self._sock.sendto(reply.pack(), peer)
            except OSError:
                return

    def close(self) -> None:
        self._running = False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:  # unblock recvfrom
            waker.sendto(b"", ("127.0.0.1", self.port))
        self._thread.join(timeout=2)
        self._sock.close()
