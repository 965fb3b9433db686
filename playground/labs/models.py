"""Labs as loaded into the database, and a session's progress through one.

A lab folder (see docs/labs.md) is validated and loaded by ``manage.py labs load``; the
database keeps one ``Lab`` per (slug, language) with its ``Step`` rows, markdown already
rendered to sanitised HTML. Scripts (setup, check, solve) are kept as text and run only
inside the visitor's own sandbox, through the agent.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from playground.choices import TextChoices
from playground.sandboxes.models import Session


class Lab(models.Model):
    """One lab in one language."""

    class Difficulty(TextChoices):
        BEGINNER = "beginner"
        INTERMEDIATE = "intermediate"
        ADVANCED = "advanced"

    class Origin(TextChoices):
        PLAYGROUND = "playground", "Playground lab folder"
        KILLERCODA = "killercoda", "Killercoda/Katacoda scenario"
        PWD = "pwd", "Play with Docker training post"

    slug = models.SlugField(max_length=80)
    language = models.CharField(max_length=16, help_text="BCP 47 tag, e.g. en or ko")
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    image = models.CharField(max_length=64)
    duration_minutes = models.PositiveIntegerField(default=15)
    difficulty = models.CharField(max_length=16, choices=Difficulty.choices, default=Difficulty.BEGINNER)
    tags = models.JSONField(default=list, blank=True)
    nodes = models.JSONField(default=list, blank=True, help_text="each node's image, node1 first; empty: one node")
    intro_html = models.TextField(blank=True, help_text="sanitised HTML shown before step 1")
    finish_html = models.TextField(blank=True, help_text="sanitised HTML of the finish page")
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.PLAYGROUND)
    source = models.CharField(max_length=500, blank=True, help_text="folder it was loaded from")
    digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the loaded files")
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug", "language"]
        constraints = [models.UniqueConstraint(fields=["slug", "language"], name="unique_lab_language")]

    def __str__(self) -> str:
        return f"{self.slug} ({self.language})"


class Step(models.Model):
    """One step of a lab: its text and its scripts (each runs in the visitor's sandbox)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField(help_text="1-based position in the lab")
    title = models.CharField(max_length=200)
    html = models.TextField(help_text="sanitised HTML, runnable code blocks marked for run buttons")
    setup_script = models.TextField(blank=True, help_text="shell script run when the step opens")
    check_script = models.TextField(blank=True, help_text="shell script; exit 0 passes, its output is the hint")
    solve_script = models.TextField(blank=True, help_text="shell script that does the step (skip to a later step)")
    foreground = models.TextField(blank=True, help_text="command typed into the terminal when the step opens")

    class Meta:
        ordering = ["lab", "number"]
        constraints = [models.UniqueConstraint(fields=["lab", "number"], name="unique_step_number")]

    def __str__(self) -> str:
        return f"{self.lab} step {self.number}: {self.title}"


class Progress(models.Model):
    """A session's run through a lab: the step it is on and the steps it has passed."""

    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="lab_progress")
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="runs")
    current = models.PositiveIntegerField(default=1, help_text="step number being worked on")
    passed = models.JSONField(default=list, blank=True, help_text="step numbers whose check passed")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    step_started_at = models.DateTimeField(default=timezone.now, help_text="when the reader came to the current step")
    failed_checks = models.JSONField(
        default=dict, blank=True, help_text="failed checks per step number (a string key), the reader's tries"
    )
    changed_at = models.DateTimeField(default=timezone.now, help_text="the last step opened or checked")

    def __str__(self) -> str:
        return f"{self.session_id} in {self.lab} at step {self.current}"

    def failures(self, step: int) -> int:
        """How many checks of step ``step`` failed."""
        return int(self.failed_checks.get(str(step), 0))
