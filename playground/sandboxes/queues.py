"""A Celery queue per sandbox host, and a cap on the worker processes one host's tasks hold (docs/hosts.md).

The tasks that talk to one host's agent (creating, removing and destroying its sandboxes, running a
template's setup on them: ``HOST_TASKS``) go to that host's queue, ``sandboxes.<name>``
(:func:`route`, Celery's router); this machine's stay on Celery's default queue with every other
task. Each worker consumes every host's queue besides the default one: at its start
(:func:`consume_host_queues`), when ``hosts add`` registers a host, and at every reaper pass, which
makes up for a worker that missed being told (:func:`announce`). Redis hands
a worker its queues in turn, so one host's backlog does not wait ahead of another's.

A host that hangs would still hold every worker process its tasks reached, each waiting for an
agent that does not answer. So at most :func:`slots` of one host's tasks run at once, across every
worker (a sorted set in Redis, :class:`HostTask`); a task that finds its host's slots taken goes
back to its queue for about ``SLOT_WAIT`` seconds, leaving the process to other hosts and this machine.
The reaper, which asks every host in each pass, runs one pass at a time (:func:`alone`), so that
passes slowed by a hung host do not pile up in the worker either.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import redis
from celery import Task
from django.conf import settings
from kombu.exceptions import OperationalError
from redis.commands.core import Script

log = logging.getLogger("playground.tasks")

PREFIX = "sandboxes."  # a host's queue: PREFIX and its name (a name has no '.': hosts.models.HOST_NAME)
SLOTS_KEY = "playground:host-slots:"  # and the queue's name: the sorted set of its running tasks
ALONE_KEY = "playground:alone:"  # and a name: who runs the one pass of that name now
SLOT_WAIT = 1.0  # seconds (0.5 to 1.5, at random) a task whose host's slots are all taken waits to be tried again
# The tasks bound to one host, by the model their first argument is the primary key of.
HOST_TASKS = {
    "playground.sandboxes.tasks.provision_instance": "instance",
    "playground.sandboxes.tasks.remove_instance": "instance",
    "playground.sandboxes.tasks.destroy_session": "session",
    "playground.sessiontemplates.tasks.run_setup": "session",  # a SetupRun's key is its session's
}

# KEYS[1] the queue's set; ARGV the slots, the seconds a slot is held at most, the task's id. Returns
# 1 when the task holds a slot (it is recorded, until ARGV[2] from now), else 0. Slots of tasks
# that never gave theirs back (a worker killed past its time limit) are freed once expired.
TAKE_SLOT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


def of_host(name: str | None) -> str | None:
    """The queue of the host named ``name``; None for this machine (Celery's default queue)."""
    return None if name is None else PREFIX + name


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any) -> dict[str, str] | None:
    """Celery's router (CELERY_TASK_ROUTES): a task of ``HOST_TASKS`` goes to its host's queue; any
    other task, or one of this machine's sessions, to the default queue (None). A queue given to
    ``apply_async`` wins over this."""
    model = HOST_TASKS.get(name)
    if model is None or not args:
        return None
    queue = of_host(host_name(model, str(args[0])))
    return None if queue is None else {"queue": queue}


def host_name(model: str, pk: str) -> str | None:
    """The name of the host the session (``model`` "session") or node ("instance") ``pk`` is on;
    None for this machine, and for one that does not exist (its task finds nothing to do)."""
    from playground.sandboxes.models import Instance, Session

    if model == "instance":
        found = Instance.objects.filter(pk=pk).values_list("session__host__name", flat=True)
    else:
        found = Session.objects.filter(pk=pk).values_list("host__name", flat=True)
    return found.first()


def slots() -> int:
    """How many tasks of one host run at once at most: half of a worker's processes (at least one).
    Of the other half, the reaper's pass may hold one as long as a hung host's connect takes
    (``sandbox.wire.client.CONNECT_TIMEOUT``), and the rest serve other hosts and this machine."""
    return max(1, settings.PLAYGROUND.worker_concurrency // 2)


def _take_slot_script() -> Script:
    return _redis().register_script(TAKE_SLOT)  # no round trip: it is sent by its digest when run


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.PLAYGROUND.redis_url, socket_timeout=2, socket_connect_timeout=2)


def take_slot(queue: str, task_id: str) -> bool:
    """Record task ``task_id`` of ``queue`` as running if fewer than :func:`slots` are; whether it may
    run. When Redis does not answer (logged) it may: its broker is Redis, so the worker is then
    stalled anyway."""
    hold = settings.CELERY_TASK_TIME_LIMIT + 30
    try:
        return bool(_take_slot_script()(keys=[SLOTS_KEY + queue], args=[slots(), hold, task_id]))
    except redis.RedisError as exc:
        log.warning("cannot count the running tasks of %s (%s); running %s", queue, exc, task_id)
        return True


def give_back(queue: str, task_id: str) -> None:
    """The task ``task_id`` of ``queue`` has ended: its slot is free."""
    try:
        _redis().zrem(SLOTS_KEY + queue, task_id)
    except redis.RedisError as exc:  # its slot then frees itself when it expires
        log.warning("cannot free the slot of %s on %s: %s", task_id, queue, exc)


class HostTask(Task):  # type: ignore[misc]  # Celery has no type hints
    """The base of ``HOST_TASKS``: run from a host's queue, the task holds one of that host's slots
    while it runs, or, with none free, goes back to the queue for about SLOT_WAIT seconds and ends. Run
    from the default queue (this machine's), or eagerly, it runs as any task."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        queue = (self.request.delivery_info or {}).get("routing_key") or ""
        if not queue.startswith(PREFIX):
            return super().__call__(*args, **kwargs)
        task_id = self.request.id
        if not take_slot(queue, task_id):
            wait = SLOT_WAIT * random.uniform(0.5, 1.5)  # spread: a hung host's backlog does not come back at once
            self.apply_async(args=args, kwargs=kwargs, queue=queue, countdown=wait, task_id=task_id)
            log.debug("%s[%s] waits for a slot of %s", self.name, task_id, queue)
            return None
        try:
            return super().__call__(*args, **kwargs)
        finally:
            give_back(queue, task_id)


def consume_host_queues(consumer: Any) -> None:
    """At a worker's start (Celery's ``worker_ready``): ``consumer`` takes tasks from every registered
    host's queue too. If the database does not answer (logged), the reaper's next pass tells it."""
    from django.db import DatabaseError, connections

    from playground.hosts.models import SandboxHost

    try:
        names = list(SandboxHost.objects.values_list("name", flat=True))
    except DatabaseError as exc:
        log.error("cannot read the sandbox hosts (%s); the reaper's next pass has their queues taken", exc)
        return
    finally:
        connections.close_all()  # the worker's main process forks pool processes later: none inherits it
    for name in names:
        consumer.add_task_queue(of_host(name))


def announce(names: Iterable[str], *, added: bool) -> str | None:
    """Tell every running worker to consume (``added``) or stop consuming the queues of the hosts
    ``names`` (a worker already doing so changes nothing); None once told, else why not (Redis does
    not answer: the workers take the queues at their next start or the reaper's next pass)."""
    from playground.celery import app  # which imports this module for its worker_ready

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0)  # else kombu tries again for seconds
            for name in names:
                if added:
                    app.control.add_consumer(of_host(name), reply=False, connection=connection)
                else:
                    app.control.cancel_consumer(of_host(name), reply=False, connection=connection)
    except OperationalError as exc:
        return str(exc)
    return None


@contextmanager
def alone(name: str, hold: float) -> Iterator[bool]:
    """Whether this process runs the pass called ``name`` alone: True while no other process (of any
    worker) runs one, which it then cannot start until this one ends, or ``hold`` seconds have passed
    (a worker killed mid-way). When Redis does not answer (logged), True."""
    key, mine = ALONE_KEY + name, secrets.token_hex(8)
    try:
        first = bool(_redis().set(key, mine, nx=True, ex=max(1, round(hold))))
    except redis.RedisError as exc:
        log.warning("cannot tell whether another %s runs (%s); running this one", name, exc)
        yield True
        return
    try:
        yield first
    finally:
        if first:
            _give_up(key, mine)


def _give_up(key: str, mine: str) -> None:
    """Free ``key`` if it is still held as ``mine`` (not expired and taken by another meanwhile)."""
    try:
        if _redis().get(key) == mine.encode():
            _redis().delete(key)
    except redis.RedisError as exc:  # it then frees itself when it expires
        log.warning("cannot free %s: %s", key, exc)
