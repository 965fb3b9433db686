"""Terminals of an instance (the page's tabs): ``/api/sessions/<id>/instances/<name>/terminals/``.

- ``POST`` opens another shell in the instance's sandbox: ``201 {"id": n, "terminal": path}``.
- ``GET`` lists the open ones: ``{"terminals": [{"id", "terminal"}, ...]}``, terminal 0 first.
- ``DELETE .../terminals/<n>/`` closes one: ``204``, also when it was already closed; terminal
  0, the first shell, ends only with the session (``409``).

The agent owns the terminals (they are host state, kept across agent restarts); these views
check the key, the session and the instance, and ask it. Errors as in :mod:`api`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from playground.sandboxes import access, agentclient
from playground.sandboxes.api import _authorized_session, error, method_not_allowed
from playground.sandboxes.models import Instance, Session
from sandbox.wire.client import AgentUnavailable
from sandbox.wire.protocol import MAX_TERMINAL, AgentError

log = logging.getLogger("playground.api")

# The agent's refusals a visitor can provoke, as (status, sentence).
REFUSALS = {
    "unknown_sandbox": (409, "The sandbox is not running yet; try again in a moment."),
    "sandbox_exited": (
        409,
        "The sandbox's first shell has exited, which stopped the sandbox; end this session and start a new one.",
    ),
    "open_failed": (503, "Another shell could not be started in the sandbox right now; try again shortly."),
}


def terminal_path(instance: Instance, number: int) -> str:
    """The websocket path of terminal ``number``; 0 keeps the instance's original path."""
    return instance.terminal_path if number == 0 else f"{instance.terminal_path}{number}/"


@csrf_exempt
def terminals(request: HttpRequest, session_id: str, name: str) -> HttpResponse:
    """GET: the instance's open terminals; POST: open another (201)."""
    if request.method not in ("GET", "POST"):
        return method_not_allowed(request, ["GET", "POST"])
    instance, problem = _live_instance(request, session_id, name)
    if problem:
        return problem
    assert instance is not None
    if request.method == "GET":
        reply, problem = _ask_agent(instance, "terminals", id=instance.sandbox_id)
        if problem:
            return problem
        return JsonResponse(
            {"terminals": [{"id": n, "terminal": terminal_path(instance, n)} for n in reply["terminals"]]}
        )
    if request.body.strip() not in (b"", b"{}"):
        return error(400, "unknown_field", "Opening a terminal takes no fields; send an empty body or {}.")
    reply, problem = _ask_agent(instance, "open_terminal", id=instance.sandbox_id)
    if problem:
        return problem
    number = reply["terminal"]
    log.info("terminal %d of %s opened", number, instance)
    return JsonResponse({"id": number, "terminal": terminal_path(instance, number)}, status=201)


@csrf_exempt
def terminal_detail(request: HttpRequest, session_id: str, name: str, number: int) -> HttpResponse:
    """DELETE: close terminal ``number`` (204, repeatable); 409 for terminal 0."""
    if request.method != "DELETE":
        return method_not_allowed(request, ["DELETE"])
    if number > MAX_TERMINAL:
        return error(404, "unknown_terminal", "There is no terminal with that number.")
    if number == 0:
        return error(
            409,
            "first_terminal",
            "Terminal 0 is the instance's first shell: it cannot be closed, "
            "it ends with the session (DELETE the session to end it).",
        )
    instance, problem = _live_instance(request, session_id, name)
    if problem:
        return problem if problem.status_code != 409 else HttpResponse(status=204)  # ended: closed already
    assert instance is not None
    _reply, problem = _ask_agent(instance, "close_terminal", id=instance.sandbox_id, terminal=number)
    if problem and problem.status_code != 409:  # a sandbox gone meanwhile: its terminals are closed
        return problem
    return HttpResponse(status=204)


def _live_instance(request: HttpRequest, session_id: str, name: str) -> tuple[Instance | None, JsonResponse | None]:
    """The instance ``name`` (any node) of an active session the request holds the key of, or a 4xx
    (409 once the session ended or the node was removed)."""
    session, problem = _authorized_session(request, session_id)
    if problem:
        return None, problem
    assert session is not None
    if request.method != "GET" and access.cross_site(request):
        return None, error(403, "cross_site", "Terminals can only be opened or closed from this site's own pages.")
    instance = session.instances.filter(name=name).first()
    if instance is None:
        return None, error(404, "unknown_instance", f"This session has no instance named {name!r}.")
    if session.state != Session.State.ACTIVE:
        return None, error(409, "session_ended", "This session has ended, and its terminals with it; start a new one.")
    if instance.state in (Instance.State.REMOVING, Instance.State.DESTROYED):
        return None, error(409, "node_removed", f"The node {name} was removed, and its terminals with it.")
    return instance, None


def _ask_agent(instance: Instance, op: str, **fields: object) -> tuple[dict, JsonResponse | None]:
    """``op`` asked of the agent of ``instance``'s host: its reply, or the 4xx/503 to answer."""
    try:
        return agentclient.of_instance(instance).call(op, **fields), None
    except AgentUnavailable:
        return {}, error(
            503, "agent_unavailable", "The sandbox host is not available right now; try again shortly.", retry_after=10
        )
    except AgentError as exc:
        if exc.code == "too_many_terminals":
            limit = settings.PLAYGROUND.max_terminals
            return {}, error(
                409,
                "too_many_terminals",
                f"This instance already has {limit} terminals open, the most it may have; close one and try again.",
            )
        status, message = REFUSALS.get(exc.code, (503, "The sandbox host refused; try again shortly."))
        if exc.code not in REFUSALS:
            log.error("agent refused %s: %s: %s", op, exc.code, exc.message)
        return {}, error(
            status,
            exc.code if exc.code in REFUSALS else "agent_error",
            message,
            retry_after=10 if status == 503 else None,
        )
