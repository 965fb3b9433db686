"""The sandbox hosts of other machines the site places sessions on (docs/hosts.md).

This machine's own agent has no record: a session without a host is on it.
"""

from __future__ import annotations

import re

from django.core.validators import RegexValidator
from django.db import models

from playground.choices import TextChoices

# A host's name: as its certificate's (manage.py hostcerts host NAME), lowercase letters, digits and '-'.
HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NAME_RULE = "use lowercase letters, digits and '-', starting with a letter or digit, e.g. sandbox-2"


class SandboxHost(models.Model):
    """A machine running the keeper and the agent alone, reached over mutual TLS at ``address``."""

    class State(TextChoices):
        ACTIVE = "active", "takes new sessions"
        DRAINING = "draining", "takes no new sessions; its sessions go on"
        LOST = "lost", "did not answer for longer than PLAYGROUND_HOST_LOST_AFTER; its sessions ended"

    name = models.CharField(max_length=63, unique=True, validators=[RegexValidator(HOST_NAME, NAME_RULE)])
    address = models.CharField(max_length=255, unique=True)  # host:port, PLAYGROUND_AGENT_LISTEN there
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    drained = models.BooleanField(default=False)  # the operator's drain: a lost host back drains again
    limit = models.PositiveIntegerField(default=0)  # sandboxes it runs at most (its agent's word)
    sandboxes = models.PositiveIntegerField(default=0)  # sandboxes it ran when it last answered
    last_seen = models.DateTimeField(null=True, blank=True)  # when it last answered
    missed_since = models.DateTimeField(null=True, blank=True)  # the first heartbeat it missed since it last answered
    added = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"sandbox host {self.name} ({self.address}, {self.state})"
