"""``GET /metrics``: every metric in Prometheus's text format, for a scraper allowed to read it.

PLAYGROUND_METRICS_TOKEN empty (the default): only loopback clients may (a request that came
through a proxy is not one, unless PLAYGROUND_PROXY_COUNT says how to find its client); set: a
request from anywhere with ``Authorization: Bearer <token>``, and no other. Refused: 403 JSON
``{"error": "metrics_forbidden", "message"}`` as the API's errors are.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST

from playground.metrics import collectors
from playground.sandboxes.access import client_address
from playground.sandboxes.api import error, method_not_allowed


def refusal(request: HttpRequest) -> str | None:
    """Why ``request`` may not read the metrics, as a sentence for its sender; None if it may."""
    cfg = settings.PLAYGROUND
    if cfg.metrics_token is not None:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {cfg.metrics_token}".encode()):
            return None
        return (
            "The metrics need 'Authorization: Bearer <token>' with PLAYGROUND_METRICS_TOKEN's token; "
            "this request's is missing or wrong."
        )
    proxied = cfg.proxy_count == 0 and "X-Forwarded-For" in request.headers
    if not proxied and is_loopback(client_address(request, cfg.proxy_count)):
        return None
    return (
        "The metrics are served to loopback clients only; scrape from this host, or set "
        "PLAYGROUND_METRICS_TOKEN and send it as 'Authorization: Bearer <token>'."
    )


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:  # not an address (a unix socket's peer): not loopback
        return False


async def metrics(request: HttpRequest) -> HttpResponse:
    """GET: the text format (prometheus_client's), or 403 with a sentence."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request, ["GET"])
    problem = refusal(request)
    if problem is not None:
        return error(403, "metrics_forbidden", problem)
    snapshot = await collectors.gather()
    body = await asyncio.to_thread(collectors.exposition, snapshot)  # reads the processes' files
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
