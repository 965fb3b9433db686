"""Celery tasks: provision an instance, destroy a session, reap expired sessions.

Every task takes primary keys, claims its work with a conditional update, is safe to run
twice, and never waits on another task's result.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import Task, shared_task
from django.utils import timezone
from kombu.exceptions import OperationalError

from playground.sandboxes import events
from playground.sandboxes.agent import client
from playground.sandboxes.models import EndReason, Instance, Session
from sandbox.protocol import AgentError

log = logging.getLogger("playground.tasks")


def enqueue(task: Task, *args: str) -> bool:
    """Queue a task; False (logged) when the broker cannot be reached, so callers can answer 503."""
    try:
        task.apply_async(args=args, retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2})
    except OperationalError as exc:
        log.error("cannot queue %s%s: %s", task.name, args, exc)
        return False
    return True


@shared_task(acks_late=True, reject_on_worker_lost=True)
def provision_instance(instance_pk: str) -> None:
    """Create the instance's sandbox through the agent (REQUESTED -> PROVISIONING -> RUNNING).

    Only this task moves an instance out of PROVISIONING, and it claims the instance only while
    its session is ACTIVE; a session that ends meanwhile is destroyed once the sandbox exists.
    """
    claimed = Instance.objects.filter(pk=instance_pk, state=Instance.State.REQUESTED,
                                      session__state=Session.State.ACTIVE).update(state=Instance.State.PROVISIONING)
    if not claimed:
        return
    instance = Instance.objects.select_related("session").get(pk=instance_pk)
    session = instance.session
    try:
        client().call("create", id=instance.sandbox_id, hostname=instance.name, image=session.image)
    except AgentError as exc:
        log.error("provisioning %s of session %s failed: %s", instance.name, session.id, exc.message)
        instance.transition(Instance.State.PROVISIONING, Instance.State.FAILED, error=exc.message)
        events.instance_status(instance.id, Instance.State.FAILED, exc.message)
        end_session(session.pk, EndReason.FAILED)
        return
    instance.transition(Instance.State.PROVISIONING, Instance.State.RUNNING)
    events.instance_status(instance.id, Instance.State.RUNNING)
    if Session.objects.filter(pk=session.pk).exclude(state=Session.State.ACTIVE).exists():
        enqueue(destroy_session, str(session.pk))  # ended while we were creating it


def end_session(session_pk: uuid.UUID | str, reason: str) -> bool:
    """Claim the end of an ACTIVE session, tell its viewers, and queue its destruction."""
    session = Session.objects.filter(pk=session_pk).first()
    if session is None or not session.claim_end(reason):
        return False
    events.session_ended(session.id, reason)
    enqueue(destroy_session, str(session.pk))
    return True


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(AgentError,),
             retry_backoff=2, retry_backoff_max=60, max_retries=10)
def destroy_session(session_pk: str) -> None:
    """Destroy every sandbox of an ENDING session, then mark it ENDED. Safe to repeat."""
    session = Session.objects.filter(pk=session_pk).first()
    if session is None or session.state == Session.State.ACTIVE:
        return
    agent = client()
    for instance in session.instances.exclude(state=Instance.State.DESTROYED):
        if instance.state == Instance.State.PROVISIONING:
            continue  # provision_instance sees the ended session and queues us again
        if instance.state != Instance.State.REQUESTED:
            agent.call("destroy", id=instance.sandbox_id)
        instance.transition(instance.state, Instance.State.DESTROYED)
    if session.instances.exclude(state__in=[Instance.State.DESTROYED, Instance.State.FAILED]).exists():
        return
    Session.objects.filter(pk=session.pk).update(state=Session.State.ENDED)
    log.info("session %s ended (%s); its sandboxes are destroyed", session.id, session.ended_reason)


@shared_task
def reap_expired() -> int:
    """End every session past its expiry; re-queue destruction of sessions stuck ENDING."""
    now = timezone.now()
    reaped = 0
    for session in Session.objects.filter(state=Session.State.ACTIVE, expires_at__lte=now):
        age = now - session.created_at
        if end_session(session.pk, EndReason.EXPIRED):
            reaped += 1
            log.info("reaping session %s (age %s): expired", session.id, _duration(age.total_seconds()))
    stuck = Session.objects.filter(state=Session.State.ENDING, ended_at__lte=now - timedelta(minutes=1))
    for session in stuck:
        log.info("re-queueing destruction of session %s (still ending)", session.id)
        enqueue(destroy_session, str(session.pk))
    return reaped


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"
