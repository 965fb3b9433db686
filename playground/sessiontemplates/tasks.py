"""Starting a template's nodes and running its setup, node by node (docs/templates.md).

``add_nodes`` makes a session's nodes after node1 (a template's or a lab's) and ``begin_setup``
a template's :class:`SetupRun`, in the start's transaction. ``run_setup`` (Celery) waits for
every node to run, then runs one node's setup script through the agent's ``run`` op (as the
node's root, inside it) and queues itself for the next, so no task holds a worker longer than one
script. Each script starts with the session's variables: ``NODE`` and ``ADDRESS`` (its own),
``NODES`` (every name), ``<NAME>_ADDRESS`` per node (``NODE1_ADDRESS``...), and what earlier
scripts set by printing ``@set NAME=value``.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from playground.i18n import DEFAULT_LANGUAGE
from playground.sandboxes import agentclient, queues
from playground.sandboxes.models import Instance, Session, node_number
from playground.sandboxes.tasks import enqueue
from playground.sessiontemplates.loader import MAX_TIMEOUT, Template, available
from playground.sessiontemplates.models import SetupRun
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.templates")

NODES_WAIT = timedelta(minutes=3)  # for every node to be running before the setup gives up
STUCK_AFTER = timedelta(seconds=MAX_TIMEOUT + 60)  # a setup that has not moved for this long lost its task
OUTPUT_LIMIT = 64 * 1024  # bytes of one script's output kept (the script is stopped beyond)
LOG_LIMIT = 256 * 1024  # characters of the run's log kept (its end)
SET_LINE = re.compile(r"^@set ([A-Z][A-Z0-9_]{0,63})=(.*)$")


@dataclass(frozen=True)
class Note:
    """What the setup says: its English sentence, and the key (``setup.<key>`` of
    playground.wording) and holes that translate it. A hole ``index`` names the node whose role
    the translation gives (``role``), in the reader's language, from the template."""

    english: str
    key: str
    holes: dict[str, Any] = field(default_factory=dict)


def add_nodes(session: Session, images: list[str]) -> None:
    """Give ``session`` (made with node1, of ``images[0]``) a node of each other image, node2 on, in
    order: a template's or a lab's nodes. Call it in the transaction that made the session."""
    for image in images[1:]:
        Instance.objects.create(session=session, name=session.next_node_name(), image=image)


def begin_setup(session: Session, template: Template) -> None:
    """Record the setup ``run_setup`` will do for ``session``, started from ``template`` (in the
    start's transaction). Its English title is kept for when the template leaves the host; while
    it is there, the session JSON gives the viewer's (start.template_json)."""
    title = template.title.in_language(DEFAULT_LANGUAGE)
    SetupRun.objects.create(session=session, template=template.name, title=title, total=len(template.nodes))


@shared_task(base=queues.HostTask, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_setup(self: Task, session_pk: str) -> None:
    """One move of the session's setup: wait for the nodes (retrying each second), or run the next
    node's script and queue the next move. Failures end the run with a sentence, never the session."""
    run = SetupRun.objects.select_related("session").filter(pk=session_pk).first()
    if run is None or run.state in SetupRun.FINISHED:
        return
    template = available().get(run.template)
    if template is None:
        gone = Note(
            f"The template {run.template!r} is no longer on this host.", "template_gone", {"template": run.template}
        )
        _finish(run, SetupRun.State.FAILED, gone)
        return
    if run.session.state != Session.State.ACTIVE:
        _finish(run, SetupRun.State.FAILED, Note("The session ended before its setup finished.", "session_ended"))
        return
    nodes = sorted(run.session.instances.all(), key=lambda node: node_number(node.name) or 0)[: run.total]
    problem = _nodes_problem(run, nodes)
    if problem:
        _finish(run, SetupRun.State.FAILED, problem)
        return
    if any(node.state != Instance.State.RUNNING for node in nodes):
        raise self.retry(countdown=1)
    if run.step >= len(nodes):
        _finish(run, SetupRun.State.DONE, Note("The setup is done.", "done"))
        return
    if _run_node(run, template, nodes):
        enqueue(run_setup, session_pk)


def _nodes_problem(run: SetupRun, nodes: list[Instance]) -> Note | None:
    """Why the setup cannot go on with these nodes (one failed or was removed, or they take too long)."""
    kept = (Instance.State.REQUESTED, Instance.State.PROVISIONING, Instance.State.RUNNING)
    gone = next((node for node in nodes if node.state not in kept), None)
    if gone is not None:
        reason = f": {gone.error}" if gone.error else ""
        return Note(
            f"{gone.name} is {gone.state}{reason}, so the setup cannot run on it.", "node_gone", {"node": gone.name}
        )
    if len(nodes) < run.total:
        english = f"The session has {len(nodes)} of the template's {run.total} nodes."
        return Note(english, "nodes_missing", {"count": len(nodes), "total": run.total})
    if run.state == SetupRun.State.WAITING and timezone.now() - run.started_at > NODES_WAIT:
        seconds = int(NODES_WAIT.total_seconds())
        return Note(f"The nodes did not all start within {seconds} seconds.", "nodes_slow", {"seconds": seconds})
    return None


def _run_node(run: SetupRun, template: Template, nodes: list[Instance]) -> bool:
    """Run node ``run.step``'s script (if it has one) and record it; True when the setup goes on."""
    index, node = run.step, nodes[run.step]
    spec = template.nodes[index]
    unfinished = [SetupRun.State.WAITING, SetupRun.State.RUNNING]
    # as read: a copy of this task queued again by requeue_stuck_setups claims the step only once
    role = spec.role.in_language(DEFAULT_LANGUAGE)
    note = Note(f"Setting up {node.name} ({role}).", "running", {"node": node.name, "index": index})
    claimed = SetupRun.objects.filter(pk=run.pk, step=index, state__in=unfinished, updated_at=run.updated_at).update(
        state=SetupRun.State.RUNNING, updated_at=timezone.now(), **_noted(note)
    )
    if not claimed:
        return False  # another copy of this task moved on
    output, values = "", dict(run.values)
    failure: Note | None = None
    if spec.setup:
        script = variables(node, nodes, values) + template.script_of(spec)
        try:
            reply = agentclient.of_session(run.session).call(
                "run", sandbox=node.sandbox_id, script=script, timeout=template.timeout, limit=OUTPUT_LIMIT
            )
        except AgentError as exc:
            reply = {"code": None, "output": "", "timed_out": False, "truncated": False}
            english = f"The host could not run {node.name}'s setup: {exc.message}"
            failure = Note(english, "host_failed", {"node": node.name})
        output = str(reply["output"])
        values.update(set_values(output))
        failure = failure or _script_failure(node.name, template.timeout, reply)
    entry = f"== {node.name} ({role})\n{output}" if spec.setup else ""
    with transaction.atomic():
        current = SetupRun.objects.select_for_update().get(pk=run.pk)
        current.log = (current.log + entry)[-LOG_LIMIT:]
        current.values = values
        current.step = index + 1
        current.updated_at = timezone.now()
        current.save(update_fields=["log", "values", "step", "updated_at"])
    if failure:
        _finish(current, SetupRun.State.FAILED, failure)
        return False
    return True


@shared_task
def requeue_stuck_setups() -> int:
    """Queue again the setups of active sessions that have not moved for longer than their script
    may run (their task was lost: a restarted Redis forgets it); run with the reaper's beat.
    Returns how many."""
    now = timezone.now()
    stuck = SetupRun.objects.filter(
        state__in=[SetupRun.State.WAITING, SetupRun.State.RUNNING],
        session__state=Session.State.ACTIVE,
        updated_at__lte=now - STUCK_AFTER,
    )
    requeued = 0
    for run in stuck[:100]:
        log.warning("re-queueing the setup of %s for session %s (still %s)", run.template, run.session_id, run.state)
        requeued += enqueue(run_setup, str(run.pk))
    return requeued


def _script_failure(name: str, timeout: int, reply: dict[str, Any]) -> Note | None:
    if reply["timed_out"]:
        english = f"{name}'s setup did not finish within {timeout} seconds and was stopped."
        return Note(english, "timed_out", {"node": name, "seconds": timeout})
    if reply["truncated"]:
        kib = OUTPUT_LIMIT // 1024
        return Note(
            f"{name}'s setup printed more than {kib} KiB and was stopped there.",
            "truncated",
            {"node": name, "kib": kib},
        )
    if reply["code"] != 0:
        english = f"{name}'s setup failed (exit status {reply['code']}); its output is in the log."
        return Note(english, "failed", {"node": name, "status": reply["code"]})
    return None


def variables(node: Instance, nodes: list[Instance], values: dict[str, str]) -> str:
    """The lines a node's script starts with, before the template's prelude: its variables, exported
    and quoted for sh."""
    variables = {
        "NODE": node.name,
        "ADDRESS": node.address or "",
        "NODES": " ".join(n.name for n in nodes),
        **{f"{n.name.upper()}_ADDRESS": n.address or "" for n in nodes},
        **values,
    }
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())


def set_values(output: str) -> dict[str, str]:
    """The ``@set NAME=value`` lines of a script's output, as variables for the scripts after it."""
    found = (SET_LINE.match(line.rstrip("\r")) for line in output.splitlines())
    return {match.group(1): match.group(2) for match in found if match}


def _noted(note: Note) -> dict[str, Any]:
    """The SetupRun fields that keep ``note``."""
    return {"message": note.english, "message_key": note.key, "message_holes": note.holes}


def _finish(run: SetupRun, state: str, note: Note) -> None:
    SetupRun.objects.filter(pk=run.pk).exclude(state__in=SetupRun.FINISHED).update(
        state=state, updated_at=timezone.now(), **_noted(note)
    )
    log.log(
        logging.INFO if state == SetupRun.State.DONE else logging.WARNING,
        "setup of %s for session %s: %s",
        run.template,
        run.session_id,
        note.english,
    )
