"""The client's IP address, read through X-Forwarded-For only when the peer is a proxy we trust."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """`["10.0.0.0/8", "::1"]` → networks; a bare address is a /32 (or /128). Raises ValueError."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def client_address(request: web.Request, trusted_proxies: Sequence[IPNetwork] = ()) -> str:
    """The address of whoever sent `request` (see `resolve_client_address`)."""
    return resolve_client_address(
        request.remote or "", request.headers.getall("X-Forwarded-For", []), trusted_proxies
    )


def resolve_client_address(
    peer: str, forwarded_for: Sequence[str], trusted_proxies: Sequence[IPNetwork]
) -> str:
    """The client's address, given the TCP peer and the X-Forwarded-For headers.

    The peer is the client unless it is one of `trusted_proxies` (our load balancers); then the
    X-Forwarded-For chain is walked from the right, skipping our own proxies, and the first other address is
    the client. Entries further left were written by the client itself and prove nothing.
    """
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop if _is_address(hop) else peer
    return peer


def _is_trusted(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
