"""The workshops' beat task: recordings past their retention are deleted (docs/workshops.md, Recordings)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from playground.workshops import recordings


@shared_task
def delete_old_recordings() -> int:
    """Delete the recordings kept longer than PLAYGROUND_RECORDING_RETENTION_DAYS after their
    workshop's end (every hour, from beat); how many sessions' were deleted. Safe to repeat."""
    return recordings.delete_old(timezone.now())
