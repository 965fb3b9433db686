"""A session's nodes: ``/api/sessions/<id>/instances/`` (docs/nodes.md).

- ``POST`` adds a node (``{}`` or ``{"image": name}``; the session's image by default), named
  ``node<n>`` with n one more than the highest the session ever used: ``201`` instance JSON.
- ``GET`` lists the nodes not yet destroyed, each with its live ``stats`` (null when the agent
  cannot say) and its ``ports`` (listening ones and ones with options set).
- ``DELETE .../instances/<name>/`` removes one node: ``204``, also when it is already gone;
  the session and its other nodes go on. The last node is not removed (``409 last_node``).

A session has at most PLAYGROUND_MAX_NODES live nodes, and the host at most
PLAYGROUND_MAX_SESSIONS live nodes of all sessions. Adding and removing each check and change
the session's nodes in one transaction with the session's row locked (on SQLite an IMMEDIATE
transaction), an add with the host's places held too (``api.lock_places``), so concurrent
requests cannot take the same slot or remove the last two nodes at once; the session ending
meanwhile (its end is an UPDATE of that row) is seen by one or the other. Errors as in :mod:`api`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from playground.ports.links import port_json
from playground.sandboxes import access, agentclient, tasks
from playground.sandboxes.api import (
    _authorized_session,
    _chosen_image,
    _json_body,
    error,
    host_full_problem,
    instance_json,
    method_not_allowed,
)
from playground.sandboxes.models import Instance, Session
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.api")

STATS_FIELDS = ("memory_bytes", "memory_limit_bytes", "cpu_seconds")


@csrf_exempt
def instances(request: HttpRequest, session_id: str) -> HttpResponse:
    """GET: the session's nodes with their stats and ports; POST: add a node (201)."""
    if request.method not in ("GET", "POST"):
        return method_not_allowed(request, ["GET", "POST"])
    session, problem = _authorized_session(request, session_id)
    if problem:
        return problem
    assert session is not None
    if request.method == "GET":
        return JsonResponse({"instances": _nodes_json(request, session)})
    if access.cross_site(request):
        return error(403, "cross_site", "Nodes can only be added from this site's own pages.")
    return _add(request, session)


def _add(request: HttpRequest, session: Session) -> HttpResponse:
    """Add a node to ``session``: 201 with its JSON, or a refusal that says why."""
    body, problem = _json_body(request, accepted=("image",))
    if problem:
        return problem
    if _ended(session):
        return _session_ended()
    image, problem = _chosen_image({"image": body.get("image", session.image)})
    if problem:
        return problem
    with transaction.atomic():  # the session's row locked: the counts and the insert are one step
        locked = Session.objects.select_for_update().get(pk=session.pk)
        if _ended(locked):
            return _session_ended()
        problem = _node_limit_problem(locked) or host_full_problem()
        if problem:
            return problem
        instance = Instance.objects.create(session=locked, name=locked.next_node_name(), image=image)
    if not tasks.enqueue(tasks.provision_instance, str(instance.pk)):
        instance.transition(Instance.State.REQUESTED, Instance.State.FAILED, error="the task queue was unavailable")
        return error(
            503, "queue_unavailable", "Playground cannot start sandboxes right now; try again shortly.", retry_after=10
        )
    log.info("session %s: %s added (image %s)", session.id, instance.name, image)
    response = JsonResponse(instance_json(instance), status=201)
    response["Location"] = f"/api/sessions/{session.id}/instances/{instance.name}/"
    return response


def _ended(session: Session) -> bool:
    """True once the session is not active or its time has run out (before the reaper comes by)."""
    return session.state != Session.State.ACTIVE or session.expires_at <= timezone.now()


def _session_ended() -> JsonResponse:
    return error(409, "session_ended", "This session has ended, so no node can be added to it; start a new one.")


def _node_limit_problem(session: Session) -> JsonResponse | None:
    """409 when the session already has PLAYGROUND_MAX_NODES nodes (being removed or failed ones aside)."""
    limit = settings.PLAYGROUND.max_nodes
    if session.kept_nodes().count() < limit:
        return None
    return error(
        409,
        "too_many_nodes",
        f"This session already has {limit} node{'s' if limit != 1 else ''}, the most a session may have; "
        "remove one to add another.",
        limit=limit,
    )


@csrf_exempt
def instance_detail(request: HttpRequest, session_id: str, name: str) -> HttpResponse:
    """DELETE: remove the node ``name`` (204, repeatable); 409 for the session's last node."""
    if request.method != "DELETE":
        return method_not_allowed(request, ["DELETE"])
    session, problem = _authorized_session(request, session_id)
    if problem:
        return problem
    assert session is not None
    if access.cross_site(request):
        return error(403, "cross_site", "Nodes can only be removed from this site's own pages.")
    with transaction.atomic():  # the session's row locked: two removals cannot both take the last two nodes
        locked = Session.objects.select_for_update().get(pk=session.pk)
        instance = locked.instances.filter(name=name).first()
        if instance is None:
            return error(404, "unknown_instance", f"This session has no node named {name!r}.")
        if locked.state != Session.State.ACTIVE or instance.state in (
            Instance.State.REMOVING,
            Instance.State.DESTROYED,
        ):
            return HttpResponse(status=204)  # removed already, or going with its session
        if not locked.kept_nodes().exclude(pk=instance.pk).exists():
            return error(
                409,
                "last_node",
                f"This session's last node ({name}) cannot be removed; end the session instead.",
            )
        claimed = instance.transition(instance.state, Instance.State.REMOVING)
    if claimed:
        log.info("session %s: %s removed by its visitor", session.id, name)
        tasks.remove_node(instance)
    return HttpResponse(status=204)


def _nodes_json(request: HttpRequest, session: Session) -> list[dict[str, Any]]:
    """Each node not yet destroyed: its JSON, ``stats`` (null when unknown) and ``ports``."""
    nodes = list(session.instances.exclude(state=Instance.State.DESTROYED))
    stats = _stats(session, [node.sandbox_id for node in nodes if node.state == Instance.State.RUNNING])
    listed = []
    for node in nodes:
        node.session = session  # port_json reads the session's short id
        found = stats.get(node.sandbox_id)
        listening = set(found["ports"]) if found else set()
        ports = sorted(listening | {int(port) for port in node.port_options})
        listed.append(
            {
                **instance_json(node),
                "stats": {key: found[key] for key in STATS_FIELDS} if found else None,
                "ports": [port_json(node, port, port in listening, request) for port in ports],
            }
        )
    return listed


def _stats(session: Session, sandbox_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ``stats`` of these sandboxes of ``session`` by id, from its host's agent; empty when there
    are none or the agent cannot say."""
    if not sandbox_ids:
        return {}
    try:
        return dict(agentclient.of_session(session).call("stats", ids=sandbox_ids)["sandboxes"])
    except AgentError as exc:
        log.warning("cannot read the stats of %d sandboxes: %s", len(sandbox_ids), exc.message)
        return {}
