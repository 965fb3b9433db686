"""A node's port in the API (docs/ports.md), with the session's key (header or cookie):

- ``GET /api/sessions/<id>/instances/<name>/ports/<port>/``: the port JSON (any port 1..65535,
  listening or not: "open a port by number");
- ``PATCH`` the same with ``{"shared": bool, "https": bool}`` (either): its options, then the port JSON;
- ``GET .../ports/<port>/open/``: the owner's way in. A redirect to the host-form link with a
  one-minute token that the proxy turns into a cookie for that host (``?form=path``, or a visitor
  from another machine while the ports domain is the default ``localhost``: to the path form
  with the owner's pass of that port in its path, see :func:`handoff.path_pass`).

Errors as in :mod:`playground.sandboxes.api`: ``400 bad_port`` (0, 70000, not a number),
``404 unknown_instance``, ``409 session_ended`` for a PATCH after the end; never a 500.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.request import split_domain_port
from django.views.decorators.csrf import csrf_exempt

from playground.ports import handoff
from playground.ports.links import PortOptions, host_name, host_url, parse_port, path_url, port_json, port_options
from playground.ports.routing import TOKEN_PARAMETER
from playground.sandboxes import access
from playground.sandboxes.api import _authorized_session, _json_body, error, method_not_allowed
from playground.sandboxes.models import Instance, Session
from playground.sandboxes.nodesapi import _ended, _stats

OPTIONS = ("shared", "https")


def _node_and_port(
    request: HttpRequest, session_id: str, name: str, raw_port: str
) -> tuple[Instance, int, None] | tuple[None, None, JsonResponse]:
    """The session's live node ``name`` and the port number, or the refusal that says what is wrong."""
    session, problem = _authorized_session(request, session_id)
    if problem:
        return None, None, problem
    assert session is not None
    instance = session.instances.exclude(state=Instance.State.DESTROYED).filter(name=name).first()
    if instance is None:
        return None, None, error(404, "unknown_instance", f"This session has no node named {name!r}.")
    port = parse_port(raw_port)
    if port is None:
        return (
            None,
            None,
            error(400, "bad_port", f"The port {raw_port!r} is not a port number; use a port from 1 to 65535."),
        )
    instance.session = session
    return instance, port, None


def _listening(instance: Instance, port: int) -> bool:
    """Whether the agent sees ``port`` listening in the node (False when it cannot say)."""
    if instance.state != Instance.State.RUNNING:
        return False
    found = _stats(instance.session, [instance.sandbox_id]).get(instance.sandbox_id)
    return found is not None and port in found["ports"]


@csrf_exempt
def port_detail(request: HttpRequest, session_id: str, name: str, port: str) -> HttpResponse:
    """GET: the port JSON; PATCH: change its options (``shared``, ``https``), then the port JSON."""
    if request.method not in ("GET", "PATCH"):
        return method_not_allowed(request, ["GET", "PATCH"])
    instance, number, problem = _node_and_port(request, session_id, name, port)
    if problem:
        return problem
    assert instance is not None and number is not None
    if request.method == "PATCH":
        if access.cross_site(request):
            return error(403, "cross_site", "A port's options can only be changed from this site's own pages.")
        problem = _change_options(request, instance, number)
        if problem:
            return problem
    return JsonResponse(port_json(instance, number, _listening(instance, number), request))


def _change_options(request: HttpRequest, instance: Instance, port: int) -> JsonResponse | None:
    """Apply the PATCH body to ``instance.port_options`` (only non-default options are kept)."""
    body, problem = _json_body(request, accepted=OPTIONS)
    if problem:
        return problem
    for option in OPTIONS:
        if option in body and not isinstance(body[option], bool):
            return error(400, "bad_option", f"The option {option!r} must be true or false.")
    if _ended(instance.session):
        return error(409, "session_ended", "This session has ended, and its ports with it; start a new one.")
    with transaction.atomic():  # the node's row locked: two PATCHes of different ports both count
        locked = Instance.objects.select_for_update().get(pk=instance.pk)
        current = port_options(locked.port_options, port)
        changed = PortOptions(
            shared=body.get("shared", current.shared), https=body.get("https", current.https)
        ).as_json()
        options = {key: value for key, value in locked.port_options.items() if key != str(port)}
        if changed:
            options[str(port)] = changed
        locked.port_options = options
        locked.save(update_fields=["port_options"])
    instance.port_options = options
    return None


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def host_form_reachable(request: HttpRequest) -> bool:
    """Whether the visitor's browser can reach host-form links: always with a real ports domain;
    with the default ``localhost`` only when the visitor is on the machine itself (the main site
    reached at a loopback name), since ``*.localhost`` is the browser's own loopback."""
    if settings.PLAYGROUND.ports_domain != "localhost":
        return True
    name, _ = split_domain_port(request.get_host())
    return name in LOOPBACK_NAMES or name.endswith(".localhost")


def open_port(request: HttpRequest, session_id: str, name: str, port: str) -> HttpResponse:
    """GET (the owner, on the main site): a redirect into the port link, the host form by default."""
    if request.method != "GET":
        return method_not_allowed(request, ["GET"])
    instance, number, problem = _node_and_port(request, session_id, name, port)
    if problem:
        return problem
    assert instance is not None and number is not None
    session: Session = instance.session
    if request.GET.get("form") == "path" or not host_form_reachable(request):
        owner_pass = handoff.path_pass(session.id.hex, instance.name, number)
        return HttpResponseRedirect(path_url(request, session.short_id, instance.name, number, owner_pass))
    site = request.build_absolute_uri("/").rstrip("/")
    token = handoff.make_token(session.id, host_name(session.short_id, instance.name, number), site)
    response = HttpResponseRedirect(
        f"{host_url(session.short_id, instance.name, number)}?{urlencode({TOKEN_PARAMETER: token})}"
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
