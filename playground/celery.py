"""The Celery application: provisioning, destruction and the reaper (beat)."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from playground.metrics.instruments import WORKER_PROCESSES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def count_worker_process(**_: Any) -> None:
    """Each pool process counts itself in ``playground_celery_worker_processes`` while it lives
    (docs/metrics.md: /metrics forgets the processes that are gone)."""
    WORKER_PROCESSES.set(1)
