"""A workshop (an instructor's class, one join code) and its learners (a name, a PIN, a session)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from playground.sandboxes.models import Session
from playground.workshops import codes

MAX_CAPACITY = 200
NAME_LENGTH = 40
SENTENCE_LENGTH = 200  # a raised hand's optional sentence
STUCK_CHECKS_DEFAULT = 3  # failed checks on one step that flag a learner stuck, unless the workshop says
STUCK_MINUTES_DEFAULT = 10  # minutes on one step without passing it that flag a learner stuck, likewise
BROADCAST_LENGTH = 300  # an instructor's message to the class
CODE_ATTEMPTS = 20  # fresh codes tried before giving up (31**6 codes: a clash is already rare)


def default_image() -> str:
    """The image a workshop's free sandboxes get unless its instructor chooses: the host's default."""
    return str(settings.PLAYGROUND.default_image)


class CodeExhausted(Exception):
    """No join code free among the workshops not yet ended could be found (CODE_ATTEMPTS tries)."""


class Workshop(models.Model):
    """An instructor's class: who runs it, what learners get (a lab or a free sandbox), how many may
    join, when it is open, and the code they join with (unique among workshops not yet ended)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workshops")
    title = models.CharField(max_length=120)
    lab_slug = models.CharField(max_length=100, blank=True, help_text="empty: free sandboxes of the image")
    lab_language = models.CharField(max_length=16, blank=True)
    image = models.CharField(max_length=64, default=default_image)
    capacity = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(MAX_CAPACITY)])
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True)
    idle_reaping = models.BooleanField(
        default=False, help_text="end a learner's session that nobody has watched for the idle timeout"
    )
    stuck_failed_checks = models.PositiveIntegerField(
        default=STUCK_CHECKS_DEFAULT,
        validators=[MinValueValidator(1)],
        help_text="a learner with this many failed checks on their step is flagged stuck",
    )
    stuck_minutes = models.PositiveIntegerField(
        default=STUCK_MINUTES_DEFAULT,
        validators=[MinValueValidator(1)],
        help_text="a learner this long on their step without passing it is flagged stuck",
    )
    join_code = models.CharField(max_length=codes.CODE_LENGTH, db_index=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    # The last message broadcast to the class (shown to a learner whose page opens later); empty: none.
    broadcast_message = models.CharField(max_length=BROADCAST_LENGTH, blank=True)
    broadcast_from = models.CharField(max_length=150, blank=True)  # its sender's display name
    broadcast_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.join_code})"

    def save(self, *args: object, **kwargs: object) -> None:
        """Save, choosing a join code the first time."""
        if not self.join_code:
            self.join_code = free_code(timezone.now())
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def join_path(self) -> str:
        return f"/join/{self.join_code}"


def free_code(now: datetime) -> str:
    """A fresh join code that no workshop not yet ended (at ``now``) has."""
    for _ in range(CODE_ATTEMPTS):
        code = codes.new_code()
        if not Workshop.objects.filter(join_code=code, ends_at__gt=now).exists():
            return code
    raise CodeExhausted(f"no free join code found in {CODE_ATTEMPTS} tries; try again")


class Learner(models.Model):
    """One learner of a workshop: a display name (unique in the workshop, whatever its case), a PIN
    (hashed; shown to them once) to come back from another browser, and their session.

    A session belongs to at most one learner (a one-to-one key), which marks it as the workshop's.
    ``sealed_key`` is the session's key encrypted with the site's secret key (codes.seal_key): it
    lets the right PIN give the same session's cookie to another browser."""

    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="learners")
    name = models.CharField(max_length=NAME_LENGTH)
    pin_hash = models.CharField(max_length=128)
    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="learner")
    sealed_key = models.CharField(max_length=64)
    joined_at = models.DateTimeField(default=timezone.now)
    wrong_pins = models.PositiveIntegerField(default=0)  # in a row; PIN_TRIES of them lock the name
    locked_until = models.DateTimeField(null=True, blank=True)  # no PIN is tried for the name until then

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint("workshop", Lower("name"), name="unique_learner_name_per_workshop"),
        ]

    def __str__(self) -> str:
        return f"{self.name} in {self.workshop_id}"


class HelpRequest(models.Model):
    """A learner's raised hand: an optional sentence, when it was raised, and when and by whom it was
    resolved. A learner has at most one open request (``resolved_at`` empty): raising again updates it."""

    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="help_requests")
    sentence = models.CharField(max_length=SENTENCE_LENGTH, blank=True)
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["raised_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["learner"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_help_request_per_learner",
            ),
        ]

    def __str__(self) -> str:
        state = "open" if self.resolved_at is None else "resolved"
        return f"{self.learner} raised a hand at {self.raised_at:%H:%M} ({state})"
