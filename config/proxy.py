"""The client's address behind a reverse proxy.

Behind nginx (``deploy/nginx.conf``) every request arrives from the proxy's address, so the per-IP rate limits
would count the whole internet as one client and the internal-network check of ``/metrics`` would let
everyone in. When the direct peer is one of ``TRUSTED_PROXIES``, ``REMOTE_ADDR`` becomes the right-most address
of ``X-Forwarded-For`` that is not itself a trusted proxy: the left part of that header is whatever the client
wrote, so only the hops our own proxies appended are believed. With no trusted proxies (the default) the
header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _trusted(networks: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(remote_addr: str, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The address to believe: ``remote_addr`` unless it is a trusted proxy, else the right-most hop of
    ``forwarded_for`` that is not one (the left-most hop when every hop is trusted)."""
    if not trusted or not forwarded_for or not _is_trusted(remote_addr, trusted):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote_addr  # a malformed hop appended after ours: believe nothing
    return hops[0] if hops else remote_addr


class ForwardedForMiddleware:
    """First in the stack, so rate limits, logs and the metrics check all see the client's address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trusted = _trusted(tuple(settings.TRUSTED_PROXIES))
        if trusted:
            request.META["REMOTE_ADDR"] = client_address(
                request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""), trusted
            )
        return self.get_response(request)
