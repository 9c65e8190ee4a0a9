"""Address interleaving for Happy Eyeballs (RFC 8305 section 4)."""

from __future__ import annotations

import socket

from hyperhttp.net.connect import interleave

V4, V6 = socket.AF_INET, socket.AF_INET6


def test_families_alternate_starting_with_the_first_address() -> None:
    a6, b6 = (V6, ("2001:db8::1", 80)), (V6, ("2001:db8::2", 80))
    a4, b4, c4 = (V4, ("192.0.2.1", 80)), (V4, ("192.0.2.2", 80)), (V4, ("192.0.2.3", 80))
    assert interleave([a6, b6, a4, b4, c4]) == [a6, a4, b6, b4, c4]
    assert interleave([a4, a6, b6]) == [a4, a6, b6]
    assert interleave([a4, b4, c4, a6]) == [a4, a6, b4, c4]


def test_one_family_keeps_its_order() -> None:
    addresses = [(V4, ("192.0.2.1", 80)), (V4, ("192.0.2.2", 80))]
    assert interleave(addresses) == addresses
    assert interleave([]) == []
