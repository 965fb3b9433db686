"""The setup run of a session started from a template: where it is, and what its scripts printed."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import TextChoices
from django.utils import timezone

from playground.sandboxes.models import Session


class SetupRun(models.Model):
    """One per session started from a template. ``step`` is the index of the next node whose setup
    runs (0: node1); ``values`` the variables earlier scripts set (``@set NAME=value`` lines)."""

    class State(TextChoices):
        WAITING = "waiting"  # for every node to be running
        RUNNING = "running"  # node by node
        DONE = "done"
        FAILED = "failed"

    FINISHED = (State.DONE, State.FAILED)

    session = models.OneToOneField(Session, on_delete=models.CASCADE, primary_key=True, related_name="setup_run")
    template = models.CharField(max_length=63)
    title = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    step = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField()  # the template's nodes
    values = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True)
    message = models.TextField(blank=True)  # in English; message_key and message_holes translate it
    message_key = models.CharField(max_length=40, blank=True)  # setup.<key> of playground.wording
    message_holes = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"setup of {self.template} for session {self.session_id} ({self.state})"

    def as_json(self) -> dict[str, Any]:
        """The session JSON's ``template`` part: what the page shows while the setup runs."""
        return {
            "name": self.template,
            "title": self.title,
            "state": self.state,
            "step": self.step,
            "total": self.total,
            "message": self.message,
            "log": self.log,
        }
