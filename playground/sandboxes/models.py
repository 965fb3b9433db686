"""Sessions and their sandbox instances: the source of truth that host state is derived from.

State changes that race (the API, the reaper, the worker) are made with conditional updates
(``UPDATE ... WHERE state = ...``) so each transition happens exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import DateTimeField, F
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from playground.choices import TextChoices
from playground.hosts.models import SandboxHost
from playground.metrics.instruments import SESSIONS_ENDED, known


class EndReason(TextChoices):
    DELETED = "deleted", "ended by you"
    EXPIRED = "expired", "its time ran out"
    IDLE = "idle", "it was idle too long"
    FAILED = "failed", "its sandbox could not be started"
    OUT_OF_RESOURCES = "out_of_resources", "its sandbox host ran out of resources"
    HOST_LOST = "host_lost", "its sandbox host was lost"
    SHUTDOWN = "shutdown", "the server was stopped"


known(SESSIONS_ENDED, *EndReason.values)

COOKIE_PREFIX = "pg_"  # a session's cookie is named this and its id in hex; its value is the key
SHORT_ID_LENGTH = 20  # hex digits of the id in a session's port links: about 76 random bits


NODE_PREFIX = "node"  # a session's instances are named node1, node2, ...


def node_number(name: str) -> int | None:
    """n of an instance named ``node<n>``, None for any other name."""
    digits = name.removeprefix(NODE_PREFIX)
    return int(digits) if name.startswith(NODE_PREFIX) and digits.isdigit() else None


class Session(models.Model):
    """One visitor's playground: a secret key, an expiry, and one or more instances."""

    class State(TextChoices):
        ACTIVE = "active"
        ENDING = "ending"
        ENDED = "ended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The first SHORT_ID_LENGTH hex digits of the id, set on the first save: the session's name in port links.
    short_id = models.CharField(max_length=SHORT_ID_LENGTH, unique=True, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64)
    image = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE, db_index=True)
    ended_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # when the end was claimed
    client_address = models.GenericIPAddressField(null=True, blank=True)
    # Last sign of life: a viewer connected, was connected (refreshed periodically) or left.
    last_activity = models.DateTimeField(default=timezone.now, db_index=True)
    # No end for idleness before this time (null: idleness ends it as usual). A workshop without idle
    # reaping sets it to its end for its learners' sessions (playground.workshops).
    idle_exempt_until = models.DateTimeField(null=True, blank=True)
    # The latest it may end however often it is extended (null: PLAYGROUND_SESSION_MAX_TTL after its
    # start). A workshop sets it to its end for its learners' sessions (playground.workshops).
    ends_by = models.DateTimeField(null=True, blank=True)
    # When a viewer was first sent output of it (its prompt; playground.sandboxes.firstprompt).
    first_prompt_at = models.DateTimeField(null=True, blank=True)
    # The sandbox host its nodes run on, all of them (their private network stays on one host); null:
    # this machine's own agent (docs/hosts.md).
    host = models.ForeignKey(
        "hosts.SandboxHost", null=True, blank=True, on_delete=models.PROTECT, related_name="sessions"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"session {self.id} ({self.state})"

    def save(self, *args: object, **kwargs: object) -> None:
        """Save, setting ``short_id`` from the id the first time."""
        if not self.short_id:
            self.short_id = self.id.hex[:SHORT_ID_LENGTH]
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def start(
        cls, image: str, ttl_seconds: int, client_address: str | None, host: SandboxHost | None = None
    ) -> tuple[Session, str]:
        """Create a session with one instance on ``host`` (None: this machine); returns it and its
        secret key (shown once)."""
        key = secrets.token_urlsafe(32)
        now = timezone.now()
        session = cls.objects.create(
            key_hash=cls.hash_key(key),
            image=image,
            client_address=client_address,
            created_at=now,
            last_activity=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            host=host,
        )
        Instance.objects.create(session=session, name=f"{NODE_PREFIX}1", image=image)
        return session, key

    def next_node_name(self) -> str:
        """``node<n>`` with n one more than the highest this session ever used: names are never reused."""
        numbers = [node_number(name) for name in self.instances.values_list("name", flat=True)]
        return f"{NODE_PREFIX}{max((n for n in numbers if n is not None), default=0) + 1}"

    def live_nodes(self) -> models.QuerySet[Instance]:
        """Its instances that have, or are about to have, a sandbox (Instance.LIVE_STATES)."""
        return self.instances.filter(state__in=Instance.LIVE_STATES)

    def kept_nodes(self) -> models.QuerySet[Instance]:
        """Its instances that are, or are about to be, running, and not being removed."""
        return self.instances.filter(state__in=Instance.KEPT_STATES)

    def key_matches(self, key: str | None) -> bool:
        return bool(key) and hmac.compare_digest(self.key_hash, self.hash_key(key or ""))

    @property
    def cookie_name(self) -> str:
        return f"{COOKIE_PREFIX}{self.id.hex}"

    def claim_end(self, reason: str, **conditions: object) -> bool:
        """Move ACTIVE -> ENDING with ``reason``; True only for the one caller that did it.

        ``conditions`` are extra filters checked in the same UPDATE (e.g. ``expires_at__lte=now``),
        so a reaper never ends a session that was extended or used since it looked.
        """
        updated = Session.objects.filter(pk=self.pk, state=Session.State.ACTIVE, **conditions).update(
            state=Session.State.ENDING, ended_reason=reason, ended_at=timezone.now()
        )
        if updated:
            self.state, self.ended_reason = Session.State.ENDING, reason
            SESSIONS_ENDED.labels(reason).inc()
        return updated == 1

    def seconds_left(self) -> int:
        return max(0, int((self.expires_at - timezone.now()).total_seconds()))

    def max_expires_at(self, max_ttl: int) -> datetime:
        """The latest this session may end, however often it is extended: its ``ends_by`` when set (a
        workshop's end), else ``max_ttl`` after its start."""
        return self.ends_by or self.created_at + timedelta(seconds=max_ttl)

    def extend(self, seconds: int, max_ttl: int) -> bool:
        """Add ``seconds`` to the expiry, capped at ``ends_by`` or else ``max_ttl`` after creation, in one
        conditional UPDATE.

        True when the expiry moved (then ``self.expires_at`` is the new one); False when the session
        is not active, has already expired, or is already at its longest lifetime.
        """
        now = timezone.now()
        latest = Coalesce(F("ends_by"), F("created_at") + timedelta(seconds=max_ttl), output_field=DateTimeField())
        updated = Session.objects.filter(
            pk=self.pk,
            state=Session.State.ACTIVE,
            expires_at__gt=now,
            expires_at__lt=latest,
        ).update(expires_at=Least(F("expires_at") + timedelta(seconds=seconds), latest))
        self.refresh_from_db(fields=["state", "expires_at", "ended_reason"])
        return updated == 1

    @staticmethod
    def touch(session_pk: uuid.UUID) -> bool:
        """Record a sign of life; False when the session is no longer active."""
        return (
            Session.objects.filter(pk=session_pk, state=Session.State.ACTIVE).update(last_activity=timezone.now()) == 1
        )


class Instance(models.Model):
    """One sandbox of a session, with its own hostname and terminal."""

    class State(TextChoices):
        REQUESTED = "requested"
        PROVISIONING = "provisioning"
        RUNNING = "running"
        REMOVING = "removing"  # its visitor removed it; its sandbox is being destroyed
        FAILED = "failed"
        DESTROYED = "destroyed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="instances")
    name = models.CharField(max_length=63)
    image = models.CharField(max_length=64)  # node1's is the session's image; a node added later may differ
    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED, db_index=True)
    error = models.TextField(blank=True)
    # The node's address on its session's private network, from the agent's create reply; null until then.
    address = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    # Options of published ports that differ from the defaults (not shared, http upstream), by port number:
    # {"8080": {"shared": true, "https": false}}.
    port_options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    state_since = models.DateTimeField(default=timezone.now)  # when it entered (or was re-queued in) its state

    # States of a node its visitor keeps (not removed, not failed): a session needs one of them.
    KEPT_STATES = (State.REQUESTED, State.PROVISIONING, State.RUNNING)
    # States in which an instance has, or is about to have, a sandbox on the host: what the node limit
    # (PLAYGROUND_MAX_NODES) and the host's cap (PLAYGROUND_MAX_SESSIONS) count.
    LIVE_STATES = (*KEPT_STATES, State.REMOVING)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["session", "name"], name="unique_instance_name")]

    def __str__(self) -> str:
        return f"{self.name} of {self.session_id} ({self.state})"

    @property
    def sandbox_id(self) -> str:
        """The id the agent, runc and the cgroups know this sandbox by."""
        return self.id.hex

    @property
    def terminal_path(self) -> str:
        return f"/ws/sessions/{self.session_id.hex}/{self.name}/"

    def transition(self, from_state: str, to_state: str, **fields: object) -> bool:
        """Conditional update; True when this caller made the transition."""
        now = timezone.now()
        updated = Instance.objects.filter(pk=self.pk, state=from_state).update(
            state=to_state, state_since=now, **fields
        )
        if updated:
            self.state, self.state_since = to_state, now
        return updated == 1


class Image(models.Model):
    """An image of the sandbox host as its agent last described it: a read-only copy for the admin.

    The image store itself belongs to the agent (root); this table is refreshed from the agent's
    ``images`` reply each time the admin lists images, and nothing else reads it.
    """

    name = models.CharField(max_length=64, primary_key=True)
    tag = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=80, blank=True)
    size = models.BigIntegerField(help_text="bytes of its layers")
    layers = models.PositiveIntegerField()
    created = models.CharField(max_length=32, blank=True)
    source = models.TextField(blank=True)
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def refresh(cls, details: list[dict[str, object]]) -> None:
        """Make the table say what ``details`` (the agent's ``images`` reply) says."""
        now = timezone.now()
        fields = ("tag", "digest", "size", "layers", "created", "source")
        with transaction.atomic():
            cls.objects.exclude(name__in=[d["name"] for d in details]).delete()
            for item in details:
                cls.objects.update_or_create(
                    name=item["name"], defaults={**{f: item.get(f, "") for f in fields}, "refreshed_at": now}
                )
