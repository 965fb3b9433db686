"""The Celery application: provisioning, destruction and the reaper (beat)."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from playground.metrics.instruments import WORKER_PROCESSES
from playground.sandboxes import events, queues

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def count_worker_process(**_: Any) -> None:
    """Each pool process counts itself in ``playground_celery_worker_processes`` while it lives
    (docs/metrics.md: /metrics forgets the processes that are gone), and sends its tasks' events
    through a loop of its own, which keeps its Redis connection (events.send_through_own_loop)."""
    WORKER_PROCESSES.set(1)
    events.send_through_own_loop()


@worker_ready.connect
def consume_host_queues(sender: Any, **_: Any) -> None:
    """The worker takes the tasks of every registered sandbox host's queue too (docs/hosts.md)."""
    queues.consume_host_queues(sender)
