"""The JSON API: ``/api/sessions/`` (and ``<id>/extend/``), ``/api/images/`` and ``/api/schema/``.

Every error is JSON ``{"error": code, "message": sentence}`` with a 4xx or 503 status; no
request a client can send produces a 500. Contract: docs/architecture.md, "HTTP API (public contract)".
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from playground import wording
from playground.config import Quotas
from playground.i18n import request_language
from playground.labs import sessions as lab_sessions
from playground.labs.models import Progress
from playground.metrics.instruments import SESSIONS_CREATED
from playground.registry import push
from playground.sandboxes import access, events, openapi, parts, placement, ratelimit, tasks, timings
from playground.sandboxes.agentclient import client
from playground.sandboxes.models import EndReason, Instance, Session
from playground.sessiontemplates import start as template_start
from playground.sessiontemplates.tasks import add_nodes, begin_setup, run_setup
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.api")

MAX_BODY = 16 * 1024
AT_CAPACITY_RETRY = 30  # seconds; sessions end at any time, and the reaper frees slots every interval
TOO_MANY_RETRY = 10  # seconds; the visitor frees a slot by ending one of their sessions (in another tab)
MAX_LISTED_COOKIES = 32  # session cookies a listing of the visitor's sessions looks at
# The key of the PostgreSQL advisory lock over the host's places (lock_places): "play" in ASCII, a
# number no other lock of this database uses.
PLACES_LOCK = 0x706C6179


def error(status: int, code: str, message: str, retry_after: int | None = None, **extra: Any) -> JsonResponse:
    response = JsonResponse({"error": code, "message": message, **extra}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    response = error(405, "method_not_allowed", f"{request.method} is not supported here; use {' or '.join(allowed)}.")
    response["Allow"] = ", ".join(allowed)
    return response


def session_json(session: Session, language: str) -> dict[str, Any]:
    """The API's view of a session, as the database has it, for a reader of ``language``."""
    return describe_session(session, list(session.instances.all()), lab_sessions.progress_json(session), language)


def ended_message(reason: str, language: str) -> str:
    """The sentence of a session's end, in ``language`` (the ``exit`` event's, as the terminal says it)."""
    return wording.sentence(language, f"exit.{reason}", events.end_message(reason), {})


def describe_session(
    session: Session, instances: list[Instance], lab: dict[str, Any] | None, language: str, key: str | None = None
) -> dict[str, Any]:
    """The API's view of ``session`` with its ``instances`` and ``lab`` part (None: started without
    a lab), its template's title in ``language`` (the request's); ``key`` only in the reply that
    created it."""
    cfg = settings.PLAYGROUND
    quotas = cfg.quotas_for(session.image, recommended_quotas(session.image))
    idle_expires_at = session.last_activity + timedelta(seconds=cfg.idle_timeout)
    if session.idle_exempt_until is not None:  # a workshop's session: no end for idleness before then
        idle_expires_at = max(idle_expires_at, session.idle_exempt_until)
    body: dict[str, Any] = {
        "id": str(session.id),
        "image": session.image,
        "state": session.state,
        "ended_reason": session.ended_reason or None,
        "ended_message": ended_message(session.ended_reason, language) if session.ended_reason else None,
        "created_at": session.created_at.isoformat(),
        "expires_at": session.expires_at.isoformat(),
        "max_expires_at": session.max_expires_at(cfg.session_max_ttl).isoformat(),
        "idle_expires_at": idle_expires_at.isoformat(),
        "limits": limits_json(quotas),
        "instances": [instance_json(i) for i in instances],
    }
    if lab is not None:
        body["lab"] = lab  # a session started with a lab: where its reader is
    template = template_start.template_json(session, language)
    if template is not None:
        body["template"] = template  # a session started from a template: its setup's progress
    if session.state == Session.State.ACTIVE:
        body["registry"] = registry_json(session)  # the session registry's login (docs/registry.md, Pushing)
    parts.add_parts(body, session, language)  # e.g. the workshop a learner's session belongs to
    if key is not None:
        body["key"] = key
    return body


def registry_json(session: Session) -> dict[str, Any]:
    """Where and how the session's sandboxes push: ``docker login <address>`` with ``user`` and
    ``password``, images named ``<address>/<user>/...``; only its visitor sees this."""
    cfg = settings.PLAYGROUND
    address = f"{push.PUSH_NAME}:{cfg.registry_port}"
    namespace = push.namespace_of(session.short_id)
    return {
        "address": address,
        "user": namespace,
        "password": push.password_for(settings.SECRET_KEY, session.key_hash),
        "prefix": f"{address}/{namespace}/",
        "quota_bytes": cfg.registry_push_quota,
    }


def instance_json(instance: Instance) -> dict[str, Any]:
    """The API's view of one node (in the session's ``instances`` and the nodes API)."""
    return {
        "name": instance.name,
        "state": instance.state,
        "image": instance.image,
        "address": instance.address if instance.state == Instance.State.RUNNING else None,
        "terminal": instance.terminal_path,
        "created_at": instance.created_at.isoformat(),
    }


def limits_json(quotas: Quotas) -> dict[str, Any]:
    return {
        "memory_bytes": quotas.memory_bytes,
        "cpus": quotas.cpus,
        "pids": quotas.pids,
        "disk_bytes": quotas.disk_bytes,
    }


_images_cache: tuple[float, list[str], str, dict[str, dict[str, Any]]] = (0.0, [], "", {})
IMAGES_CACHE_SECONDS = 5.0


def available_images(refresh: bool = False) -> tuple[list[str], str]:
    """The agent's image names and default, asked at most every IMAGES_CACHE_SECONDS unless ``refresh``."""
    names, default, _details = _agent_images(refresh)
    return names, default


def _agent_images(refresh: bool = False) -> tuple[list[str], str, dict[str, dict[str, Any]]]:
    """Names, default and each ready image's metadata by name, from the agent (cached)."""
    global _images_cache
    fetched_at, names, default, details = _images_cache
    if refresh or time.monotonic() - fetched_at > IMAGES_CACHE_SECONDS:
        reply = client().call("images")
        names, default = reply["images"], reply["default"]
        details = {d["name"]: d for d in reply.get("details", [])}
        _images_cache = (time.monotonic(), names, default, details)
    return names, default, details


def offered_images() -> tuple[list[str], str]:
    """The images the landing page offers, with the one preselected: the ready images and the
    default (which may be built on first use); the configured default alone while the agent
    does not answer."""
    try:
        names, default, details = _agent_images()
    except AgentError:
        default = settings.PLAYGROUND.default_image
        return [default], default
    return [name for name in names if name in details or name == default], default


def recommended_quotas(image: str) -> dict[str, object]:
    """The quotas ``image``'s metadata recommends (Quotas fields), as the agent last told this
    process, however long ago: a session's JSON, which its pages read every few seconds, never waits
    for a busy agent (starts and the landing page ask again after IMAGES_CACHE_SECONDS). Only a
    process told nothing yet asks; none when the agent cannot say."""
    fetched_at, _names, _default, details = _images_cache
    if not fetched_at:
        try:
            details = _agent_images()[2]
        except AgentError:
            return {}
    return dict(details.get(image, {}).get("quotas", {}))


@csrf_exempt
def sessions(request: HttpRequest) -> HttpResponse:
    """POST: start a session (201); GET: the visitor's live sessions (200)."""
    if request.method == "GET":
        language = request_language(request)
        return JsonResponse({"sessions": [session_json(s, language) for s in visitor_sessions(request)]})
    if request.method != "POST":
        return method_not_allowed(request, ["GET", "POST"])
    return _start(request)


def visitor_sessions(request: HttpRequest) -> list[Session]:
    """The active sessions whose keys the request's cookies hold (each start sets one), newest
    first: what a browser started and can still resume, with no listing by address. At most
    MAX_LISTED_COOKIES cookies are looked at."""
    keys = access.keys_from_cookies(request.COOKIES, MAX_LISTED_COOKIES)
    found = Session.objects.filter(pk__in=keys, state=Session.State.ACTIVE).prefetch_related("instances")
    return [session for session in found if session.key_matches(keys[session.pk])]


def _start(request: HttpRequest) -> HttpResponse:
    """Start a session: 201 with its key, or a refusal that says why."""
    if access.cross_site(request):
        return error(403, "cross_site", "Sessions can only be started from this site's own pages.")
    body, problem = _json_body(request, accepted=("image", "lab", "language", "template"))
    if problem:
        return problem
    try:
        started = start_session(request, body)
    except StartRefused as refused:
        return refused.response
    lab_part = lab_sessions.describe(started.progress) if started.progress is not None else None
    language = request_language(request)
    body = describe_session(started.session, started.instances, lab_part, language, started.key)
    response = JsonResponse(body, status=201)
    response["Location"] = f"/api/sessions/{started.session.id}/"
    set_session_cookie(request, response, started.session, started.key)
    return response


class StartRefused(Exception):
    """A start that did not happen; ``response`` is the API's JSON refusal (``{"error", "message"}``)."""

    def __init__(self, response: JsonResponse) -> None:
        super().__init__(response.content.decode())
        self.response = response


@dataclass(frozen=True)
class Started:
    """A session just started: its secret ``key`` (shown once), its instances and its lab progress."""

    session: Session
    key: str
    instances: list[Instance]
    progress: Progress | None


def start_session(
    request: HttpRequest,
    body: dict[str, Any],
    address_limits: bool = True,
    claim: Callable[[Session, str], None] | None = None,
    here_first: bool = False,
) -> Started:
    """Start a session as ``POST /api/sessions/`` asks with ``body`` (``image``, ``lab``,
    ``language``, ``template``; already checked to be a JSON object of those fields).

    ``address_limits`` False: the client address's start rate and session count are not applied
    (a workshop's join, which its capacity bounds instead); the host's capacity always is.
    ``here_first``: the session goes to this machine while it has room (a workshop's join: its
    sandboxes were prepared here), not to the host with the most room (``placement.choose``).
    ``claim`` is called with the new session and its key inside the transaction that creates it; it
    may change the session, or raise (StartRefused or its own exception, which reaches the caller) to
    take the start back. Raises StartRefused with the API's refusal.
    """
    try:
        template = template_start.template_of(body)
        lab = lab_sessions.lab_of(body)
    except (lab_sessions.LabChoiceError, template_start.TemplateChoiceError) as exc:
        raise StartRefused(error(exc.status, exc.code, exc.message, **exc.extra)) from None
    if lab is not None:
        body.setdefault("image", lab.image)  # the lab's image unless the body names one
    image, problem = _chosen_image(body)
    if problem:
        raise StartRefused(problem)
    images = template.images(image) if template else lab_sessions.node_images(lab, image) if lab else [image]
    if len(images) > settings.PLAYGROUND.max_nodes:  # a template's or a lab's nodes
        limit = settings.PLAYGROUND.max_nodes
        message = f"This start has {len(images)} nodes, more than the {limit} a session may have."
        raise StartRefused(error(409, "too_many_nodes", message, limit=limit))
    for other in sorted(set(images) - {image}):
        problem = _chosen_image({"image": other})[1]  # a template's node of another image
        if problem:
            raise StartRefused(problem)
    cfg = settings.PLAYGROUND
    address = access.client_address(request, cfg.proxy_count)
    limited = address_limits and access.limited(address, cfg.limit_exempt)
    counted = address if limited else None  # the address limits count
    mark = uuid.uuid4().hex  # this start in the address's start rate, taken out again if it is refused
    problem = _rate_problem(counted, mark) if counted else None
    if problem:
        raise StartRefused(problem)
    try:
        with transaction.atomic():  # the counts and the inserts are one step (lock_places)
            problem = _capacity_problem(counted, len(images))
            if problem:
                raise StartRefused(problem)
            host = placement.choose(len(images), here_first=here_first)
            session, key = Session.start(images[0], cfg.session_ttl, address, host=host)
            add_nodes(session, images)
            if template is not None:
                begin_setup(session, template)
            progress = lab_sessions.start_progress(session, lab) if lab is not None else None
            if claim is not None:
                claim(session, key)
    except Exception:
        ratelimit.forget_start(counted, mark)
        raise
    instances = list(session.instances.all())
    queued = all(tasks.enqueue(tasks.provision_instance, str(i.pk)) for i in instances)
    if not queued or (template is not None and not tasks.enqueue(run_setup, str(session.pk))):
        tasks.end_session(session.pk, EndReason.FAILED)
        ratelimit.forget_start(counted, mark)
        raise StartRefused(
            error(
                503,
                "queue_unavailable",
                "Playground cannot start sandboxes right now; try again shortly.",
                retry_after=10,
            )
        )
    SESSIONS_CREATED.inc()
    log.info("session %s started (image %s) for %s", session.id, image, address)
    return Started(session, key, instances, progress)


def set_session_cookie(request: HttpRequest, response: HttpResponse, session: Session, key: str) -> None:
    """Give ``response``'s browser the cookie that opens ``session`` (its value the key), kept for the
    session's longest lifetime (or until its expiry, when that is later: a workshop's session), and
    ``Secure`` when the browser came over https (behind a proxy: see SECURE_PROXY_SSL_HEADER)."""
    cfg = settings.PLAYGROUND
    lasting = max(cfg.session_max_ttl, int((session.expires_at - timezone.now()).total_seconds()))
    secure = request.is_secure()
    response.set_cookie(session.cookie_name, key, max_age=lasting, httponly=True, samesite="Lax", secure=secure)


def _chosen_image(body: dict[str, Any]) -> tuple[str, JsonResponse | None]:
    """The image the body names (the default when none), or a 400 when the agent has no such
    image, or a 503 when the agent cannot say."""
    try:
        images, default = available_images()
        if body.get("image", default) not in images:  # an image imported within the cache's lifetime
            images, default = available_images(refresh=True)
    except AgentError as exc:
        log.error("cannot list images: %s", exc.message)
        return "", error(
            503, "agent_unavailable", "The sandbox host is not available right now; try again shortly.", retry_after=10
        )
    image = body.get("image", default)
    if image not in images:
        return image, error(
            400,
            "unknown_image",
            f"There is no image named {image!r}; choose one of: {', '.join(images)}.",
            images=images,
        )
    return image, None


def _rate_problem(address: str, mark: str) -> JsonResponse | None:
    """429 when this address has started its most sessions within the last minute; else the
    start is counted, as ``mark`` (which ``ratelimit.forget_start`` takes back)."""
    limit = settings.PLAYGROUND.creations_per_minute
    wait = ratelimit.start_allowed(address, limit, mark)
    if not wait:
        return None
    return error(
        429,
        "too_many_starts",
        f"You started {limit} playgrounds within a minute, the most one visitor "
        f"may; please wait {timings.humanize(wait)} and try again.",
        retry_after=wait,
    )


def _capacity_problem(address: str | None, nodes: int = 1) -> JsonResponse | None:
    """429 when ``address`` (None: not limited) has its most sessions running, 503 when the host
    has no room for ``nodes`` more nodes; call it in the transaction that adds them (lock_places)."""
    lock_places()
    cfg = settings.PLAYGROUND
    mine = Session.objects.filter(state=Session.State.ACTIVE, client_address=address).count() if address else 0
    if mine >= cfg.max_sessions_per_address:
        return error(
            429,
            "too_many_sessions",
            f"You already have {mine} playground{'s' if mine != 1 else ''} running, the most one visitor "
            "may have at once; end one of them and try again.",
            retry_after=TOO_MANY_RETRY,
        )
    return _host_room_problem(nodes)


def lock_places() -> None:
    """Hold the host's places until the current transaction ends, so that transactions which count
    sessions or nodes and then add some take turns: two cannot both count the last place free and
    take it (nor a workshop's last seat, which a join counts in the same transaction). SQLite's
    IMMEDIATE transactions (settings.py) take turns already; PostgreSQL's run side by side, each
    seeing only what the others committed, so there a transaction-scoped advisory lock does it."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("lock_places() outside a transaction: the lock would end with the statement")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PLACES_LOCK])


def host_full_problem(adding: int = 1) -> JsonResponse | None:
    """503 when ``adding`` more nodes would take the host beyond PLAYGROUND_MAX_SESSIONS live nodes,
    of all sessions (their sandboxes being made, running or being destroyed); call it in the
    transaction that adds them (lock_places)."""
    lock_places()
    return _host_room_problem(adding)


def _host_room_problem(adding: int) -> JsonResponse | None:
    """:func:`host_full_problem` for a caller that holds the host's places already."""
    live = Instance.objects.filter(state__in=Instance.LIVE_STATES).count()
    if live + adding > settings.PLAYGROUND.max_sessions:
        return error(
            503,
            "at_capacity",
            "All playgrounds are in use right now; please try again in a minute.",
            retry_after=AT_CAPACITY_RETRY,
        )
    return None


@csrf_exempt
def session_detail(request: HttpRequest, session_id: str) -> HttpResponse:
    """GET: the session; DELETE: end it (204, repeatable)."""
    if request.method not in ("GET", "DELETE"):
        return method_not_allowed(request, ["GET", "DELETE"])
    session, problem = _authorized_session(request, session_id)
    if problem:
        return problem
    assert session is not None
    if request.method == "GET":
        return JsonResponse(session_json(session, request_language(request)))
    if access.cross_site(request):
        return error(403, "cross_site", "Sessions can only be ended from this site's own pages.")
    if tasks.end_session(session.pk, EndReason.DELETED):
        log.info("session %s ended by its visitor", session.id)
    return HttpResponse(status=204)


@csrf_exempt
def session_extend(request: HttpRequest, session_id: str) -> HttpResponse:
    """POST: add PLAYGROUND_SESSION_EXTEND seconds, up to PLAYGROUND_SESSION_MAX_TTL after its start (200).

    409 when the session has ended or already ends at its longest; viewers get an ``expiry`` event.
    """
    if request.method != "POST":
        return method_not_allowed(request, ["POST"])
    session, problem = _authorized_session(request, session_id)
    if problem:
        return problem
    assert session is not None
    if access.cross_site(request):
        return error(403, "cross_site", "Sessions can only be extended from this site's own pages.")
    _body, problem = _json_body(request, accepted=())
    if problem:
        return problem
    cfg = settings.PLAYGROUND
    if not session.extend(cfg.session_extend, cfg.session_max_ttl):
        return _not_extendable(session)
    events.session_extended(session.id, session.expires_at)
    log.info("session %s extended to %s", session.id, session.expires_at.isoformat(timespec="seconds"))
    return JsonResponse(session_json(session, request_language(request)))


def _not_extendable(session: Session) -> JsonResponse:
    if session.state != Session.State.ACTIVE or session.expires_at <= timezone.now():
        return error(409, "session_ended", "This session has already ended, so it cannot be extended; start a new one.")
    longest = timings.humanize(settings.PLAYGROUND.session_max_ttl)
    return error(
        409,
        "longest_lifetime",
        f"This session already runs until the longest a session may last "
        f"({longest} from its start), so it cannot be extended further.",
        expires_at=session.expires_at.isoformat(),
    )


@csrf_exempt
def images(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed(request, ["GET"])
    try:
        names, default, details = _agent_images()
    except AgentError:
        return error(
            503, "agent_unavailable", "The sandbox host is not available right now; try again shortly.", retry_after=10
        )
    return JsonResponse({"images": [image_json(n, n == default, details.get(n)) for n in names]})


def image_json(name: str, default: bool, details: dict[str, Any] | None) -> dict[str, Any]:
    """One entry of ``GET /api/images/``: name and default, plus metadata once the image is ready."""
    body: dict[str, Any] = {"name": name, "default": default, "ready": details is not None}
    if details is not None:
        quotas = settings.PLAYGROUND.quotas_for(name, details.get("quotas"))
        body.update(
            {key: details[key] for key in ("tag", "digest", "size", "layers", "created", "source")},
            limits=limits_json(quotas),
        )
    return body


@csrf_exempt
def schema(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed(request, ["GET"])
    return JsonResponse(openapi.document(), json_dumps_params={"indent": 2})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error(404, "not_found", f"There is nothing at {request.path}.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error(403, "csrf", "This form was not sent by this site's own page; reload the page and try again.")


def server_error(request: HttpRequest) -> HttpResponse:
    return error(500, "server_error", "Something went wrong on our side; it has been logged.")


def _json_body(
    request: HttpRequest, accepted: tuple[str, ...] = ("image",)
) -> tuple[dict[str, Any], JsonResponse | None]:
    """The request's JSON object (``{}`` when empty), or a 4xx for anything else; ``accepted`` names its fields."""
    raw = request.body
    if len(raw) > MAX_BODY:
        return {}, error(413, "too_large", f"The request body is larger than {MAX_BODY} bytes.")
    if not raw.strip():
        return {}, None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}, error(400, "bad_json", "The request body is not valid JSON; send a JSON object such as {}.")
    if not isinstance(body, dict):
        return {}, error(400, "bad_json", "The request body must be a JSON object such as {}.")
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        allowed = f"only {', '.join(repr(f) for f in accepted)} is accepted" if accepted else "send no fields"
        return {}, error(400, "unknown_field", f"Unknown field(s): {', '.join(unknown)}; {allowed}.")
    if "image" in body and not isinstance(body["image"], str):
        return {}, error(400, "bad_image", "'image' must be a string naming an image.")
    return body, None


def _authorized_session(request: HttpRequest, raw_id: str) -> tuple[Session, None] | tuple[None, JsonResponse]:
    session_id = access.parse_session_id(raw_id)
    session = Session.objects.filter(pk=session_id).first() if session_id else None
    if session is None:
        return None, error(404, "unknown_session", "There is no session with that id.")
    if not session.key_matches(access.key_from_request(request, session.cookie_name)):
        return None, error(
            403,
            "forbidden",
            "That key does not open this session; send 'Authorization: Session <key>' with the key you were given.",
        )
    return session, None
