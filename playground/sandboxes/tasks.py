"""Celery tasks: provision an instance, remove one, destroy a session, reap expired sessions, reconcile.

Every task takes primary keys, claims its work with a conditional update, is safe to run
twice, and never waits on another task's result.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from playground.hosts.models import SandboxHost
from playground.metrics.instruments import WARM_POOL
from playground.registry import push
from playground.registry.paths import push_root
from playground.sandboxes import agentclient, events, queues, recording, timings
from playground.sandboxes.models import EndReason, Instance, Session
from sandbox.wire.client import AgentClient, AgentUnavailable
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.tasks")

REAP_BATCH = 500  # sessions (or instances) one reaper pass handles per kind; the next pass takes the rest
REQUEUE_AFTER = timedelta(minutes=2)
# Longer than the task's hard time limit: a provisioning task this old is dead, not slow.
PROVISIONING_STUCK_AFTER = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
HOST_LOST_GRACE = timedelta(seconds=5)  # a sandbox this young may be newer than the agent's listing
# Agent error codes that mean the host is full rather than broken.
OUT_OF_RESOURCES_CODES = frozenset({"at_capacity", "out_of_resources"})
# How long provisioning waits for an agent that does not answer (one being restarted) before failing.
AGENT_RESTART_WAIT = 30.0
HEARTBEAT_THREADS = 16  # other sandbox hosts the reaper asks at once


# Options of the tasks that destroy sandboxes: retried with backoff while the agent fails, up to 10 times.
DESTROYING: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (AgentError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 10,
}


def enqueue(task: Task, *args: str) -> bool:
    """Queue a task; False (logged) when the broker cannot be reached, so callers can answer 503."""
    try:
        task.apply_async(args=args, retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2})
    except OperationalError as exc:
        log.error("cannot queue %s%s: %s", task.name, args, exc)
        return False
    return True


@shared_task(base=queues.HostTask, acks_late=True, reject_on_worker_lost=True)
def provision_instance(instance_pk: str) -> None:
    """Create the instance's sandbox through the agent (REQUESTED -> PROVISIONING -> RUNNING), in its
    session's group (the session's private network), and keep the address the agent gave it.

    It claims the instance only while its session is ACTIVE; a session that ends meanwhile is
    destroyed once the sandbox exists, and a node removed meanwhile (PROVISIONING -> REMOVING) has
    its new sandbox destroyed here. A refused create fails only this node, and ends the session
    only when it has no other node it keeps. If the worker dies mid-way the reaper puts the instance
    back to REQUESTED and queues this task again (the agent's ``create`` is idempotent).
    """
    instance = _claim(instance_pk)
    if instance is None:
        return
    session = instance.session
    try:
        sandbox = _create_waiting_for_agent(agentclient.of_session(session), create_fields(instance))
    except AgentError as exc:
        log.error("provisioning %s of session %s failed: %s", instance.name, session.id, exc.message)
        instance.transition(Instance.State.PROVISIONING, Instance.State.FAILED, error=exc.message)
        events.instance_status(instance.id, Instance.State.FAILED, exc.message)
        if not session.kept_nodes().exists():  # its only node: the session cannot go on
            out_of_resources = exc.code in OUT_OF_RESOURCES_CODES
            end_session(session.pk, EndReason.OUT_OF_RESOURCES if out_of_resources else EndReason.FAILED)
        else:
            _destroy_failed(instance)  # the session goes on without it
        return
    _record_running(instance, sandbox)


def adopt_created(instance_pk: str, sandbox: dict[str, Any]) -> None:
    """Record as the worker's task would the sandbox a viewer's early create made (``bridge``):
    claim the instance (REQUESTED, its session ACTIVE) and move it to RUNNING with the agent's
    ``sandbox`` description. Nothing when the task (or another viewer) has claimed it already, or
    the session ended: the task then finds the sandbox made, or the reaper destroys a sandbox no
    live node wants. The task, queued as ever, finds the instance claimed."""
    instance = _claim(instance_pk)
    if instance is not None:
        _record_running(instance, sandbox)


def _claim(instance_pk: str) -> Instance | None:
    """REQUESTED -> PROVISIONING while the session is ACTIVE: the instance, its session and host
    loaded, if this caller claimed it; None if not (claimed already, or the session ended)."""
    claimed = Instance.objects.filter(
        pk=instance_pk, state=Instance.State.REQUESTED, session__state=Session.State.ACTIVE
    ).update(state=Instance.State.PROVISIONING, state_since=timezone.now())
    if not claimed:
        return None
    return Instance.objects.select_related("session__host").get(pk=instance_pk)


def _record_running(instance: Instance, sandbox: dict[str, Any]) -> None:
    """PROVISIONING -> RUNNING with the address the agent gave, and the viewers told; a node removed
    or a session ended while its sandbox was being made has it destroyed."""
    if not instance.transition(Instance.State.PROVISIONING, Instance.State.RUNNING, address=sandbox.get("address")):
        removed = (Instance.State.REMOVING, Instance.State.DESTROYED)
        if Instance.objects.filter(pk=instance.pk, state__in=removed).exists():
            _destroy_removed(instance)  # removed by its visitor while it was being created
        return  # else the reaper took it back meanwhile (see _recover_stuck_instances)
    events.instance_status(instance.id, Instance.State.RUNNING)
    if Session.objects.filter(pk=instance.session_id).exclude(state=Session.State.ACTIVE).exists():
        enqueue(destroy_session, str(instance.session_id))  # ended while we were creating it


def create_fields(instance: Instance) -> dict[str, Any]:
    """The agent's ``create`` request for ``instance`` (its ``session`` loaded): its sandbox's id,
    hostname and image, its session's group (the private network), and ``record`` when the session's
    terminals are recorded. The worker's task and a viewer's early create (``bridge``) ask the same."""
    session = instance.session
    fields: dict[str, Any] = {"id": instance.sandbox_id, "hostname": instance.name, "image": instance.image}
    fields["group"] = session.id.hex
    if recording.is_recorded(session):  # sent only when true, so an older agent is asked as before
        fields["record"] = True
    return fields


def _create_waiting_for_agent(agent: AgentClient, fields: dict[str, Any]) -> dict[str, Any]:
    """Ask ``agent`` to create the sandbox ``fields`` describe (a ``create`` request); while it does not
    answer (a restart, or killed in the middle of this very create), ask again for up to
    AGENT_RESTART_WAIT: ``create`` is idempotent and the restarted agent has removed any half-made
    sandbox. A full host is asked again too, for as long while a sandbox is due to be destroyed (an
    ended session's, a removed node's: its destruction may reach the agent after this create).
    Other errors are raised at once. Returns the agent's description of the sandbox."""
    deadline, pause = time.monotonic() + AGENT_RESTART_WAIT, 0.2
    while True:
        try:
            return created_sandbox(agent.call("create", **fields))
        except AgentUnavailable as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("%s; asking again in %.1f s", exc.message, pause)
        except AgentError as exc:
            if exc.code != "at_capacity" or time.monotonic() + pause > deadline or not _destruction_pending():
                raise
            log.info("the host is full but sandboxes are due to be destroyed; asking again in %.1f s", pause)
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def created_sandbox(reply: dict[str, Any]) -> dict[str, Any]:
    """The sandbox of an agent's ``create`` reply, counted in the warm pool's hits or misses when
    this create made it (not a repeated create of a sandbox that exists already)."""
    if reply.get("created"):
        WARM_POOL.labels(pool_result(reply["sandbox"])).inc()
    return dict(reply["sandbox"])


def pool_result(sandbox: dict[str, Any]) -> str:
    """``hit`` for a sandbox the agent took from its warm pool, ``miss`` for one it started cold: a pooled
    sandbox keeps the pool's runtime id (``w`` and hex digits), a cold one's is its own id."""
    return "hit" if sandbox.get("runtime_id", sandbox.get("id")) != sandbox.get("id") else "miss"


def _destruction_pending() -> bool:
    """Whether some sandbox is due to be destroyed: a node being removed, or a node of an ending session."""
    return Instance.objects.filter(
        Q(state=Instance.State.REMOVING)
        | Q(session__state=Session.State.ENDING, state__in=(Instance.State.PROVISIONING, Instance.State.RUNNING))
    ).exists()


def remove_node(instance: Instance) -> None:
    """Start removing a node its visitor claimed (-> REMOVING): tell its viewers, queue its destruction.

    A lost queue message is made up for by the reaper (``_requeue_stuck_removals``)."""
    events.instance_removed(instance.id, instance.name)
    enqueue(remove_instance, str(instance.pk))


@shared_task(base=queues.HostTask, **DESTROYING)
def remove_instance(instance_pk: str) -> None:
    """Destroy the sandbox of a REMOVING instance and mark it DESTROYED; its session goes on. Safe to repeat.

    One still being created is destroyed again by ``provision_instance`` once its create returns."""
    removing = Instance.objects.select_related("session__host").filter(pk=instance_pk, state=Instance.State.REMOVING)
    instance = removing.first()
    if instance is not None:
        _destroy_removed(instance)


def _destroy_removed(instance: Instance) -> None:
    """Have the agent destroy a removed node's sandbox, then mark it DESTROYED (from whatever state)."""
    agentclient.of_instance(instance).call("destroy", id=instance.sandbox_id)
    Instance.objects.filter(pk=instance.pk).exclude(state=Instance.State.DESTROYED).update(
        state=Instance.State.DESTROYED, state_since=timezone.now()
    )
    log.info("%s of session %s removed; its sandbox is destroyed", instance.name, instance.session_id)


def _destroy_failed(instance: Instance) -> None:
    """Destroy whatever a failed create left of a node; if the agent cannot, the reaper's sweep of
    sandboxes no instance wants does it later."""
    try:
        agentclient.of_instance(instance).call("destroy", id=instance.sandbox_id)
    except AgentError as exc:
        log.warning("cannot destroy what is left of failed %s: %s", instance, exc.message)


def end_session(session_pk: uuid.UUID | str, reason: str) -> bool:
    """Claim the end of an ACTIVE session, tell its viewers, and queue its destruction.

    True only for the one caller that ended it.
    """
    session = Session.objects.filter(pk=session_pk).first()
    if session is None or not session.claim_end(reason):
        return False
    _announce_end(session, reason)
    return True


def _announce_end(session: Session, reason: str) -> None:
    events.session_ended(session.id, reason)
    enqueue(destroy_session, str(session.pk))


@shared_task(base=queues.HostTask, **DESTROYING)
def destroy_session(session_pk: str) -> None:
    """Destroy every sandbox of an ENDING session (its nodes, however many and whenever added, and
    those being removed), then mark it ENDED. Safe to repeat.

    Instances still REQUESTED are destroyed too: one that was re-queued after a lost worker may
    have a sandbox already (the agent's ``destroy`` of an unknown id only cleans traces).
    """
    session = Session.objects.select_related("host").filter(pk=session_pk).first()
    if session is None or session.state == Session.State.ACTIVE:
        return
    agent = agentclient.of_session(session)
    for instance in session.instances.exclude(state=Instance.State.DESTROYED):
        if instance.state == Instance.State.PROVISIONING:
            continue  # provision_instance (or the reaper, if its worker died) queues us again
        agent.call("destroy", id=instance.sandbox_id)
        instance.transition(instance.state, Instance.State.DESTROYED)
    if session.instances.exclude(state__in=[Instance.State.DESTROYED, Instance.State.FAILED]).exists():
        return
    Session.objects.filter(pk=session.pk).update(state=Session.State.ENDED)
    _remove_pushed_images(session.short_id)
    log.info("session %s ended (%s); its sandboxes are destroyed", session.id, session.ended_reason)


def _remove_pushed_images(short_id: str) -> None:
    """Remove what the ended session pushed to the session registry (its namespace's repositories),
    so pulls of it fail at once; the registry front frees the blobs later, and removes the namespace
    itself if this fails (docs/registry.md, Pushing)."""
    namespace = push.namespace_of(short_id)
    if Session.objects.filter(
        short_id__startswith=short_id[: push.NAMESPACE_DIGITS], state=Session.State.ACTIVE
    ).exists():
        return  # another live session shares the namespace's digits (48 bits): the front decides
    try:
        if push.remove_namespace(push_root(settings.PLAYGROUND.data_dir), namespace):
            log.info("removed the images session %s pushed (%s)", short_id, namespace)
    except OSError as exc:
        log.warning("cannot remove the images of %s yet (the registry front will): %s", namespace, exc)


@shared_task
def reap_expired() -> int:
    """One pass of the reaper (Celery beat): end expired, then idle, sessions; repair what crashes left.

    A session with ``idle_exempt_until`` in the future (a workshop's without idle reaping) is not
    ended for idleness; it ends at its expiry (the workshop's end) as any other.

    Each session is claimed with a conditional UPDATE that re-checks its condition, so two
    reapers (or a retried pass) never end one twice, and an extension or a viewer arriving
    after the query saves the session. Returns how many sessions this pass ended: 0 for a pass
    skipped because the one before still runs (one pass at a time, ``queues.alone``).
    """
    with queues.alone("reaper", hold=settings.CELERY_TASK_TIME_LIMIT) as first:
        if not first:  # the one before still runs (slowed by a host that does not answer)
            log.info("an earlier pass of the reaper still runs; this one is skipped")
            return 0
        return _reaper_pass(timezone.now())


def _reaper_pass(now: datetime) -> int:
    idle_since = now - timedelta(seconds=settings.PLAYGROUND.idle_timeout)
    reaped = _reap(EndReason.EXPIRED, now, expires_at__lte=now)
    reaped += _reap(EndReason.IDLE, now, Q(idle_exempt_until__gt=now), last_activity__lte=idle_since)
    _requeue_stuck_destruction(now)
    _requeue_stuck_removals(now)
    _recover_stuck_instances(now)
    _reconcile_with_agents(now)
    return reaped


def _reconcile_with_agents(now: datetime) -> None:
    """Compare each agent's sandboxes with the database: this machine's, then every other sandbox
    host's, whose answer (or silence) is its heartbeat (``host_answered``, ``_not_answering``).

    The other hosts are asked all at once (HEARTBEAT_THREADS at a time), so that hosts that do not
    answer, each costing its connect's timeout, do not delay the heartbeats of those that do past
    PLAYGROUND_HOST_LOST_AFTER; their answers are then compared one by one."""
    agent = agentclient.client()
    _reconcile_with_agent(None, agent, now, _listing(agent))
    hosts = list(SandboxHost.objects.all())
    if not hosts:
        return
    why = queues.announce([host.name for host in hosts], added=True)  # a worker that missed being told
    if why is not None:
        log.warning("cannot have the workers take the sandbox hosts' queues: %s", why)
    with ThreadPoolExecutor(min(HEARTBEAT_THREADS, len(hosts)), thread_name_prefix="heartbeat") as pool:
        answers = list(pool.map(_ask_host, hosts))
    for host, answer in zip(hosts, answers, strict=True):
        if isinstance(answer, AgentError):
            _not_answering(host, answer.message, now)
            continue
        remote, limit, on_host = answer
        host_answered(host, limit, _reconcile_with_agent(host, remote, now, on_host), now)


def _ask_host(host: SandboxHost) -> tuple[AgentClient, int, set[str] | None] | AgentError:
    """Ask ``host``'s agent for its limit (the heartbeat) and its sandboxes (None if it did not list
    them); the AgentError if it did not answer. Network only: it runs in a thread of its own."""
    try:
        agent = agentclient.client(host)
        limit = int(agent.call("warm")["limit"])
    except AgentError as exc:
        return exc
    return agent, limit, _listing(agent)


def _listing(agent: AgentClient) -> set[str] | None:
    """The ids of the sandboxes ``agent`` runs; None (logged) if it did not say."""
    try:
        return {s["id"] for s in agent.call("list")["sandboxes"]}
    except AgentError as exc:
        log.warning("cannot compare sessions with the agent's sandboxes: %s", exc.message)
        return None


def host_answered(host: SandboxHost, limit: int, sandboxes: int | None, now: datetime) -> None:
    """``host`` answered, with its ``limit`` and how many ``sandboxes`` it runs (None: unknown): it
    is seen now, and a lost host is taken back: active (new sessions may go there), or draining if
    the operator drained it. Conditional updates, so that an operator's drain meanwhile stands."""
    found = {"last_seen": now, "limit": limit, "missed_since": None}
    found |= {"sandboxes": sandboxes} if sandboxes is not None else {}
    SandboxHost.objects.filter(pk=host.pk).update(**found)
    lost = SandboxHost.objects.filter(pk=host.pk, state=SandboxHost.State.LOST)
    if lost.filter(drained=False).update(state=SandboxHost.State.ACTIVE):
        log.warning("sandbox host %s answers again; new sessions may go there", host.name)
    elif lost.filter(drained=True).update(state=SandboxHost.State.DRAINING):
        log.warning("sandbox host %s answers again; it was drained, so no new session goes there", host.name)


def _not_answering(host: SandboxHost, why: str, now: datetime) -> None:
    """``host`` did not answer. Past PLAYGROUND_HOST_LOST_AFTER since it last did (or since it was
    added) it is lost: each of its sessions ends as ``host_lost``, its viewers told, and its nodes
    count as destroyed (its agent cannot be asked; if the host comes back, the sandboxes it still
    runs belong to no session and the next pass destroys them). No other host's session is touched.
    Before that, from the first heartbeat it misses, it takes no new session (``missed_since``,
    :func:`playground.sandboxes.placement.choose`) until it answers again."""
    lost_after = timedelta(seconds=settings.PLAYGROUND.host_lost_after)
    SandboxHost.objects.filter(pk=host.pk, missed_since__isnull=True).update(missed_since=now)
    if host.state == SandboxHost.State.LOST:
        return  # said when it was lost
    if (host.last_seen or host.added) > now - lost_after:
        log.warning("sandbox host %s does not answer: %s", host.name, why)
        return
    SandboxHost.objects.filter(pk=host.pk).update(state=SandboxHost.State.LOST)
    ended = 0
    for session in Session.objects.filter(host=host).exclude(state=Session.State.ENDED):
        if session.claim_end(EndReason.HOST_LOST):
            events.session_ended(session.id, EndReason.HOST_LOST)
            ended += 1
        session.instances.exclude(state__in=[Instance.State.DESTROYED, Instance.State.FAILED]).update(
            state=Instance.State.DESTROYED, state_since=now
        )
        Session.objects.filter(pk=session.pk).update(state=Session.State.ENDED)
    log.error(
        "sandbox host %s has not answered for %d s (%s): lost; %d session(s) on it ended",
        host.name,
        lost_after.total_seconds(),
        why,
        ended,
    )


def _reconcile_with_agent(
    host: SandboxHost | None, agent: AgentClient, now: datetime, on_host: set[str] | None
) -> int | None:
    """Compare ``agent``'s sandboxes, ``on_host`` (its listing; None: it did not say, and nothing is
    compared), with the database's for its host (None: this machine), both ways; how many
    sandboxes the agent runs (None if it did not say).

    A session whose running instance has no sandbox on the host any more (the agent restarted,
    the host rebooted, someone removed it) ends with reason ``host_lost`` and its viewers are
    told; a node its visitor is removing is not RUNNING, so its missing sandbox is no loss (the
    listing comes first, so a node seen RUNNING below was RUNNING when the listing was made).
    A sandbox that no instance still wants (its destroy was lost) is destroyed.
    """
    if on_host is None:
        return None
    running = Instance.objects.filter(
        state=Instance.State.RUNNING,
        session__state=Session.State.ACTIVE,
        session__host=host,
        state_since__lte=now - HOST_LOST_GRACE,
    )
    for instance in running[:REAP_BATCH]:
        if instance.sandbox_id not in on_host and end_session(instance.session_id, EndReason.HOST_LOST):
            log.warning(
                "session %s lost its sandbox %s (%s): host lost",
                instance.session_id,
                instance.name,
                instance.sandbox_id,
            )
    alive = Instance.objects.exclude(state__in=[Instance.State.DESTROYED, Instance.State.FAILED])
    wanted = {i.sandbox_id for i in alive.only("id")}
    for sandbox_id in sorted(on_host - wanted)[:REAP_BATCH]:
        log.warning("destroying sandbox %s, which no live session owns", sandbox_id)
        try:
            agent.call("destroy", id=sandbox_id)
        except AgentError as exc:
            log.error("destroying orphan sandbox %s failed: %s", sandbox_id, exc.message)
    return len(on_host)


def _reap(reason: str, now: datetime, exempt: Q | None = None, **conditions: object) -> int:
    """End the active sessions matching ``conditions`` (at most REAP_BATCH a pass), logging each;
    sessions matching ``exempt`` (one exclusion in the same query) are left alone."""
    reaped = 0
    candidates = Session.objects.filter(state=Session.State.ACTIVE, **conditions)
    if exempt is not None:
        candidates = candidates.exclude(exempt)
    for session in candidates.order_by("expires_at")[:REAP_BATCH]:
        if not session.claim_end(reason, **conditions):
            continue  # extended, used, or ended by someone else since the query
        reaped += 1
        log.info(
            "reaping session %s (age %s, idle %s): %s",
            session.id,
            timings.duration((now - session.created_at).total_seconds()),
            timings.duration((now - session.last_activity).total_seconds()),
            reason,
        )
        _announce_end(session, reason)
    return reaped


def _requeue_stuck_destruction(now: datetime) -> None:
    """Queue again the destruction of sessions ENDING for over PLAYGROUND_ENDING_REQUEUE_AFTER.

    Its task was lost (a worker killed mid-destroy holds it unacknowledged for the broker's
    visibility timeout; a restarted Redis forgets it) or is failing; destroying twice is harmless.
    """
    stuck_since = now - timedelta(seconds=settings.PLAYGROUND.ending_requeue_after)
    stuck = Session.objects.filter(state=Session.State.ENDING, ended_at__lte=stuck_since)
    for session in stuck[:REAP_BATCH]:
        log.info("re-queueing destruction of session %s (still ending)", session.id)
        enqueue(destroy_session, str(session.pk))


def _requeue_stuck_removals(now: datetime) -> None:
    """Queue again the removal of nodes REMOVING for over PLAYGROUND_ENDING_REQUEUE_AFTER in an active
    session (its task was lost or is failing; in an ending session ``destroy_session`` takes them)."""
    stuck_since = now - timedelta(seconds=settings.PLAYGROUND.ending_requeue_after)
    stuck = Instance.objects.filter(
        state=Instance.State.REMOVING, state_since__lte=stuck_since, session__state=Session.State.ACTIVE
    )
    for instance in stuck[:REAP_BATCH]:
        log.info("re-queueing removal of %s of session %s (still removing)", instance.name, instance.session_id)
        enqueue(remove_instance, str(instance.pk))


def _recover_stuck_instances(now: datetime) -> None:
    """Queue provisioning again for instances a lost message or a killed worker left behind.

    An instance REQUESTED for REQUEUE_AFTER (its message lost, e.g. Redis restarted) is queued
    again; one PROVISIONING for longer than the task's hard time limit has lost its worker: it
    goes back to REQUESTED and is queued again if its session is active, else it is marked
    FAILED and its session's destruction queued (which destroys whatever the agent made).
    Each step is a conditional UPDATE on (state, state_since), so only one reaper acts on it.
    """
    stuck = Instance.objects.select_related("session").filter(
        Q(state=Instance.State.REQUESTED, state_since__lte=now - REQUEUE_AFTER)
        | Q(state=Instance.State.PROVISIONING, state_since__lte=now - PROVISIONING_STUCK_AFTER)
    )
    for instance in stuck[:REAP_BATCH]:
        active = instance.session.state == Session.State.ACTIVE
        if instance.state == Instance.State.REQUESTED and not active:
            continue  # destroy_session takes it
        claim = Instance.objects.filter(pk=instance.pk, state=instance.state, state_since=instance.state_since)
        stuck_for = timings.duration((now - instance.state_since).total_seconds())
        if active and claim.update(state=Instance.State.REQUESTED, state_since=now):
            log.warning(
                "re-queueing provisioning of %s of session %s (%s for %s)",
                instance.name,
                instance.session_id,
                instance.state,
                stuck_for,
            )
            enqueue(provision_instance, str(instance.pk))
        elif not active and claim.update(
            state=Instance.State.FAILED, state_since=now, error="its worker was lost while creating it"
        ):
            log.warning(
                "%s of ended session %s was provisioning for %s; destroying it",
                instance.name,
                instance.session_id,
                stuck_for,
            )
            enqueue(destroy_session, str(instance.session_id))
