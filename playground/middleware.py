"""The last entry of ``MIDDLEWARE``: it makes Django run the whole middleware chain in one thread.

Under ASGI, Django runs each middleware that can be asynchronous (most of its own) in async
mode, which calls its ``process_request`` and ``process_response`` through ``sync_to_async``:
two thread hops per middleware and request, about a dozen for ours, and more where WhiteNoise
(synchronous only) sits between them. They cost 0.7 ms per request in-process and several ms
on a busy 2-core host, on the path of a visitor's ``POST /api/sessions/`` to the first prompt
(``make bench``). Django runs every middleware outside a synchronous-only one synchronously,
so with this one innermost the chain runs in the request's thread: one hop in, one out, and
the view's own. Async views (the lab checks) are still awaited on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SynchronousChain:
    """Passes the request on; being synchronous only is its whole purpose (see the module)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
