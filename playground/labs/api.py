"""The labs API: the catalogue, a lab's detail, and a session's run through its lab (open a
step, check it, skip ahead). Errors are JSON ``{"error", "message"}`` as in the sessions API.

Scripts run in the visitor's own sandbox through the agent's ``run`` op (:mod:`sandbox.runtime.labscripts`),
which cuts each at ``PLAYGROUND_CHECK_TIMEOUT`` and ``PLAYGROUND_CHECK_OUTPUT_LIMIT``. The views
that run them are async: the wait for the agent is an ``await`` on Daphne's event loop, bounded by
the agent's own limit, so a check that loops forever holds neither a thread nor a worker, and
every other request is answered meanwhile (see docs/architecture.md, "Lab checks").
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from playground import wording
from playground.labs import sessions as lab_sessions
from playground.labs import signals
from playground.labs.models import Lab, Progress, Step
from playground.metrics.instruments import LAB_CHECK_SECONDS, LAB_CHECKS, known
from playground.sandboxes import access, agentclient
from playground.sandboxes.api import _authorized_session, _json_body, error, method_not_allowed, registry_json
from playground.sandboxes.models import Instance, Session
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.labs")

MAX_QUERY = 200


# -- catalogue --------------------------------------------------------------------------------------
def catalogue_entry(lab: Lab, languages: list[str]) -> dict[str, Any]:
    return {
        "slug": lab.slug,
        "language": lab.language,
        "languages": languages,
        "title": lab.title,
        "summary": lab.summary,
        "image": lab.image,
        "nodes": lab.nodes or [lab.image],  # each node's image, node1 first
        "duration_minutes": lab.duration_minutes,
        "difficulty": lab.difficulty,
        "tags": list(lab.tags),
        "steps": getattr(lab, "step_count", None),
    }


def search(q: str = "", tag: str = "", language: str = "") -> list[dict[str, Any]]:
    """Labs matching the words of ``q`` (title, summary, slug or tag), ``tag`` and ``language``."""
    labs = Lab.objects.annotate(step_count=Count("steps")).order_by("title", "slug", "language")
    if language:
        labs = labs.filter(language=language)
    all_languages: dict[str, list[str]] = {}
    for slug, lang in Lab.objects.order_by("language").values_list("slug", "language"):
        all_languages.setdefault(slug, []).append(lang)
    found = []
    for lab in labs:
        words = q.lower().split()
        haystack = " ".join([lab.title, lab.summary, lab.slug, *lab.tags]).lower()
        if tag and tag not in lab.tags or not all(w in haystack for w in words):
            continue
        found.append(catalogue_entry(lab, all_languages[lab.slug]))
    return found


@csrf_exempt
def catalogue(request: HttpRequest) -> HttpResponse:
    """GET ``?q=&tag=&language=``: the labs, each in each language it has, with every tag and language."""
    if request.method != "GET":
        return method_not_allowed(request, ["GET"])
    q, tag, language = (request.GET.get(k, "").strip() for k in ("q", "tag", "language"))
    if max(len(q), len(tag), len(language)) > MAX_QUERY:
        return error(400, "bad_query", f"Search terms are limited to {MAX_QUERY} characters.")
    tags = sorted({t for tags in Lab.objects.values_list("tags", flat=True) for t in tags})
    languages = sorted(set(Lab.objects.values_list("language", flat=True)))
    return JsonResponse({"labs": search(q, tag, language), "tags": tags, "languages": languages})


def step_json(step: Step) -> dict[str, Any]:
    return {
        "number": step.number,
        "title": step.title,
        "html": step.html,
        "foreground": step.foreground,
        "has_setup": bool(step.setup_script),
        "has_check": bool(step.check_script),
        "has_solve": bool(step.solve_script),
    }


def lab_json(lab: Lab) -> dict[str, Any]:
    """A lab with its steps' text (sanitised HTML) but not their scripts."""
    steps = list(lab.steps.all())
    return {
        **catalogue_entry(lab, lab_sessions.languages_of(lab.slug)),
        "intro_html": lab.intro_html,
        "finish_html": lab.finish_html,
        "steps": [step_json(s) for s in steps],
    }


@csrf_exempt
def detail(request: HttpRequest, slug: str) -> HttpResponse:
    """GET ``?language=``: one lab with its steps (English if it has it, else its first language)."""
    if request.method != "GET":
        return method_not_allowed(request, ["GET"])
    try:
        lab = lab_sessions.find_lab(slug, request.GET.get("language") or None)
    except lab_sessions.LabChoiceError as exc:
        return error(exc.status, exc.code, exc.message, **exc.extra)
    return JsonResponse(lab_json(lab))


# -- a session's run through its lab ----------------------------------------------------------------
@dataclass
class Run:
    """What a step request needs: the session's progress, the step, its sandbox's id and agent."""

    progress: Progress
    step: Step
    sandbox_id: str
    agent: AgentClient  # of the host the session's nodes run on
    body: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)  # exported before each script (registry_env)


def _run_context(
    request: HttpRequest, session_id: str, number: int | None, accepted: tuple[str, ...] = ()
) -> tuple[Run | None, JsonResponse | None]:
    """Authorise the request and find the session's lab progress, step and sandbox, or the 4xx."""
    session, problem = _authorized_session(request, session_id)
    if problem:
        return None, problem
    assert session is not None
    if access.cross_site(request):
        return None, error(403, "cross_site", "Labs can only be driven from this site's own pages.")
    body, problem = _json_body(request, accepted=accepted)
    if problem:
        return None, problem
    progress = Progress.objects.filter(session=session).select_related("lab").first()
    if progress is None:
        return None, error(404, "no_lab", "This session was not started with a lab.")
    if session.state != Session.State.ACTIVE or session.expires_at <= timezone.now():
        return None, error(409, "session_ended", "This session has ended; start the lab again.")
    if number is None:
        number = body.get("to")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= progress.lab.steps.count():
            return None, error(400, "bad_step", f"'to' must be a step number from 1 to {progress.lab.steps.count()}.")
    step = progress.lab.steps.filter(number=number).first()
    if step is None:
        return None, error(404, "unknown_step", f"This lab has no step {number}.")
    # The lab's node: the oldest node the visitor keeps (node1 unless it was removed; "node10" sorts
    # before "node2" by name, so never by name).
    instance = session.instances.filter(state__in=Instance.KEPT_STATES).order_by("created_at").first()
    if instance is None or instance.state != Instance.State.RUNNING:
        return None, error(
            409,
            "not_ready",
            "The sandbox is still starting; try again once the terminal shows its prompt.",
            retry_after=2,
        )
    try:
        agent = agentclient.of_session(session)
    except AgentError as exc:
        return None, agent_problem(exc)
    return Run(progress, step, instance.sandbox_id, agent, body, registry_env(session)), None


def registry_env(session: Session) -> dict[str, str]:
    """What a lab's scripts know of the session registry (docs/labs.md, Scripts): its address, the
    session's user (its namespace) and password, as the session's page shows them."""
    registry = registry_json(session)
    return {
        "PLAYGROUND_REGISTRY": registry["address"],
        "PLAYGROUND_REGISTRY_USER": registry["user"],
        "PLAYGROUND_REGISTRY_PASSWORD": registry["password"],
    }


def with_language(script: str, language: str, env: dict[str, str] | None = None) -> str:
    """``script`` with ``PLAYGROUND_LAB_LANGUAGE`` exported first: the lab's language (``en``,
    ``ko``), so that a check prints its hint in that language alone (docs/labs.md, Scripts); and
    each of ``env``."""
    exports = {"PLAYGROUND_LAB_LANGUAGE": language, **(env or {})}
    lines = "".join(f"{name}={shlex.quote(value)}; export {name}\n" for name, value in exports.items())
    return lines + script


async def run_script(run: Run, script: str, language: str) -> dict[str, Any]:
    """Run ``script`` in the run's sandbox within the configured limits, in the lab's ``language``,
    with the run's ``env`` exported; the agent's reply."""
    cfg = settings.PLAYGROUND
    return await run.agent.request(
        "run",
        sandbox=run.sandbox_id,
        script=with_language(script, language, run.env),
        timeout=cfg.check_timeout,
        limit=cfg.check_output_limit,
    )


def agent_problem(exc: AgentError) -> JsonResponse:
    if exc.code == "busy":
        return error(
            429,
            "busy",
            "Another script is still running in this sandbox; wait for it to finish and try again.",
            retry_after=2,
        )
    if exc.code == "host_busy":
        return error(
            503,
            "host_busy",
            "The sandbox host is running many checks at once; try again in a moment.",
            retry_after=5,
        )
    if exc.code == "unknown_sandbox":
        return error(
            409, "not_ready", "The sandbox is not running; wait for the terminal's prompt and try again.", retry_after=2
        )
    log.error("lab script failed in the agent: %s: %s", exc.code, exc.message)
    return error(
        503, "agent_unavailable", "The sandbox host is not available right now; try again shortly.", retry_after=10
    )


# A check's verdict in playground_lab_checks_total: outcome()'s for a check, read (a step without a check)
# or error (the agent could not run it).
CHECK_VERDICTS = ("passed", "not_yet", "timed_out", "truncated", "read", "error")
known(LAB_CHECKS, *CHECK_VERDICTS)


def outcome(reply: dict[str, Any], kind: str) -> str:
    """How a ``kind`` script (check, setup, solve) ended: ``timed_out``, ``truncated``, ``passed`` or
    ``not_yet`` (a check), ``ran`` or ``failed`` (setup, solve). A check's is its metrics verdict too."""
    if reply["timed_out"]:
        return "timed_out"
    if reply["truncated"]:
        return "truncated"
    if reply["code"] == 0:
        return "passed" if kind == "check" else "ran"
    return "not_yet" if kind == "check" else "failed"


def verdict(reply: dict[str, Any], kind: str, language: str) -> str:
    """A sentence on how a ``kind`` script (check, setup, solve) ended, in the lab's ``language``
    (``script.*`` of playground.wording, else English); its output is shown beside it, as text."""
    cfg = settings.PLAYGROUND
    holes: dict[str, Any] = {"seconds": cfg.check_timeout, "kib": cfg.check_output_limit // 1024}
    holes["kind"] = wording.sentence(language, f"script.kind.{kind}", kind, {})
    ended = outcome(reply, kind)
    english = {
        "timed_out": f"The {kind} did not finish within {cfg.check_timeout} seconds and was stopped.",
        "truncated": f"The {kind} printed more than {holes['kib']} KiB and was stopped there.",
        "passed": "The step is done.",
        "ran": f"The {kind} ran.",
        "not_yet": "Not yet: the check's output says what is missing.",
        "failed": f"The {kind} failed (exit status {reply['code']}).",
    }[ended]
    if ended == "failed":
        holes["status"] = reply["code"]
    return wording.sentence(language, f"script.{ended}", english, holes)


def script_json(reply: dict[str, Any], kind: str, language: str) -> dict[str, Any]:
    return {
        "ok": reply["code"] == 0,
        "code": reply["code"],
        "output": reply["output"],
        "truncated": reply["truncated"],
        "timed_out": reply["timed_out"],
        "message": verdict(reply, kind, language),
    }


def _record(
    progress_pk: int, current: int, passed: list[int], kind: str = "open", failed: bool = False
) -> dict[str, Any]:
    """Move the reader to step ``current`` and add ``passed`` (``failed``: step ``current``'s check
    failed once more); finished once the last step passed. Sends ``progress_changed`` (``kind``)."""
    now = timezone.now()
    with transaction.atomic():
        progress = Progress.objects.select_related("lab").get(pk=progress_pk)
        if current != progress.current:
            progress.step_started_at = now
        progress.current = current
        progress.passed = sorted(set(progress.passed) | set(passed))
        if failed:
            progress.failed_checks[str(current)] = progress.failures(current) + 1
        progress.changed_at = now
        last = progress.lab.steps.order_by("-number").values_list("number", flat=True).first()
        if last in passed and progress.finished_at is None:
            progress.finished_at = now
        progress.save(
            update_fields=["current", "passed", "finished_at", "step_started_at", "failed_checks", "changed_at"]
        )
        checked = None if kind != "check" else current in passed
        signals.progress_changed.send(Progress, progress=progress, kind=kind, step=current, passed=checked)
        return lab_sessions.describe(progress)


record = sync_to_async(_record)


async def step_request(
    request: HttpRequest, session_id: str, number: int | None, accepted: tuple[str, ...] = ()
) -> tuple[Run | None, JsonResponse | None]:
    """A POST's run context (see ``_run_context``), or the 4xx to answer."""
    if request.method != "POST":
        return None, method_not_allowed(request, ["POST"])
    return await sync_to_async(_run_context)(request, session_id, number, accepted)


async def run_setup(run: Run) -> dict[str, Any] | None:
    """Run the step's setup, if it has one (AgentError if the agent cannot)."""
    if not run.step.setup_script:
        return None
    language = run.progress.lab.language
    return script_json(await run_script(run, run.step.setup_script, language), "setup", language)


@csrf_exempt
async def step_open(request: HttpRequest, session_id: str, number: int) -> HttpResponse:
    """POST: the reader opens step ``number``: its setup runs (if it has one); its foreground command."""
    run, problem = await step_request(request, session_id, number)
    if problem:
        return problem
    assert run is not None
    try:
        setup = await run_setup(run)
    except AgentError as exc:
        return agent_problem(exc)
    lab = await record(run.progress.pk, number, [])
    return JsonResponse({"step": number, "foreground": run.step.foreground, "setup": setup, "lab": lab})


@csrf_exempt
async def step_check(request: HttpRequest, session_id: str, number: int) -> HttpResponse:
    """POST: run step ``number``'s check; passed when it exits 0, its output is the hint."""
    run, problem = await step_request(request, session_id, number)
    if problem:
        return problem
    assert run is not None
    if not run.step.check_script:
        LAB_CHECKS.labels("read").inc()
        lab = await record(run.progress.pk, number, [number], "check")
        return JsonResponse(
            {
                "step": number,
                "passed": True,
                "read": True,
                "output": "",
                "truncated": False,
                "timed_out": False,
                "code": 0,
                "message": wording.sentence(
                    run.progress.lab.language, "script.read", "This step has nothing to check: it counts as read.", {}
                ),
                "lab": lab,
            }
        )
    try:
        reply = await run_script(run, run.step.check_script, run.progress.lab.language)
    except AgentError as exc:
        LAB_CHECKS.labels("error").inc()
        return agent_problem(exc)
    LAB_CHECKS.labels(outcome(reply, "check")).inc()
    LAB_CHECK_SECONDS.observe(reply["seconds"])
    passed = reply["code"] == 0
    lab = await record(run.progress.pk, number, [number] if passed else [], "check", failed=not passed)
    log.info(
        "lab %s step %d checked in session %s: %s",
        run.progress.lab,
        number,
        session_id,
        "passed" if passed else "not yet",
    )
    return JsonResponse(
        {
            "step": number,
            "passed": passed,
            "read": False,
            "output": reply["output"],
            "truncated": reply["truncated"],
            "timed_out": reply["timed_out"],
            "code": reply["code"],
            "message": verdict(reply, "check", run.progress.lab.language),
            "lab": lab,
        }
    )


def _not_passed_before(progress: Progress, number: int) -> list[Step]:
    """The lab's steps before step ``number`` that the reader has not passed, in order."""
    return list(progress.lab.steps.filter(number__lt=number).exclude(number__in=progress.passed))


@csrf_exempt
async def skip(request: HttpRequest, session_id: str) -> HttpResponse:
    """POST ``{"to": N}``: do every earlier step not yet passed (its setup, then its solve), then
    open step N. Stops at the first script that fails, with 409 ``solve_failed``."""
    run, problem = await step_request(request, session_id, None, accepted=("to",))
    if problem:
        return problem
    assert run is not None
    target = run.step.number
    earlier = await sync_to_async(_not_passed_before)(run.progress, target)
    done: list[int] = []
    for step in earlier:
        for kind, script in (("setup", step.setup_script), ("solve", step.solve_script)):
            if not script:
                continue
            try:
                reply = await run_script(run, script, run.progress.lab.language)
            except AgentError as exc:
                await record(run.progress.pk, step.number, done, "skip")
                return agent_problem(exc)
            if reply["code"] != 0:
                lab = await record(run.progress.pk, step.number, done, "skip")
                return error(
                    409,
                    "solve_failed",
                    f"Step {step.number}'s {kind} script failed, so the skip stopped "
                    f"there: {verdict(reply, kind, 'en')} Do step {step.number} yourself, or try again.",
                    step=step.number,
                    output=reply["output"],
                    lab=lab,
                )
        done.append(step.number)
    try:
        setup = await run_setup(run)
    except AgentError as exc:
        return agent_problem(exc)
    lab = await record(run.progress.pk, target, done, "skip")
    return JsonResponse({"step": target, "solved": done, "foreground": run.step.foreground, "setup": setup, "lab": lab})
