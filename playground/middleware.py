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

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from playground import i18n, wording


class SynchronousChain:
    """Passes the request on; being synchronous only is its whole purpose (see the module)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


class TranslatedErrors:
    """An API error (a JSON answer of 400 or more, ``{"error": code, "message": ...}``) says its
    message in the request's language (:func:`playground.i18n.request_language`; the sentence's
    translation is ``error.<code>`` in :mod:`playground.wording`, its holes filled from the
    error's other fields). Synchronous only, placed right before :class:`SynchronousChain`."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not response.get("Content-Type", "").startswith("application/json"):
            return response
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        language = i18n.request_language(request)
        if language == i18n.DEFAULT_LANGUAGE:
            return response
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        if isinstance(body, dict):
            response.content = json.dumps(wording.api_error(language, body)).encode()
            response["Content-Language"] = language
        return response
