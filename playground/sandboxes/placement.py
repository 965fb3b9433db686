"""Where a new session's nodes run: this machine's agent or another sandbox host (docs/hosts.md).

All the nodes of one session go on one host, so their private network stays local to it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from playground.hosts.models import SandboxHost
from playground.sandboxes.models import Instance


def choose(nodes: int = 1, here_first: bool = False) -> SandboxHost | None:
    """The host with the most room for a new session; None for this machine, which wins a tie.
    With ``here_first``, this machine while it has room for the session's ``nodes``, and only past
    that the host with the most room: a workshop's learners, whose sandboxes were prepared on this
    machine's agent (:mod:`playground.workshops.preparing`), take them there before any other host.

    Another host is a candidate while ACTIVE (not draining, not lost), having answered within
    PLAYGROUND_HOST_LOST_AFTER, and not having missed the reaper's last heartbeat (a host that
    hangs takes no new session from its first missed heartbeat on, long before it is lost). A
    host's room is its limit (PLAYGROUND_HOST_MAX_SANDBOXES there, as its agent last said; this
    machine's own setting here) less the live nodes the database places on it, so starts made
    since it last answered count. With no room anywhere, this machine: its
    agent then refuses the create as at capacity, as on a single box. Call it inside the start's
    transaction, so that the counts and the new session are one step.
    """
    recent = timezone.now() - timedelta(seconds=settings.PLAYGROUND.host_lost_after)
    candidates = SandboxHost.objects.filter(state=SandboxHost.State.ACTIVE, last_seen__gte=recent)
    hosts = list(candidates.filter(missed_since__isnull=True))
    placed = dict(
        Instance.objects.filter(state__in=Instance.LIVE_STATES)
        .values_list("session__host")
        .annotate(n=Count("id"))
        .values_list("session__host", "n")
    )
    best: SandboxHost | None = None
    best_room = settings.PLAYGROUND.host_max_sandboxes - placed.get(None, 0)
    if here_first and best_room >= nodes:
        return None
    for host in hosts:
        room = host.limit - placed.get(host.pk, 0)
        if room > best_room:
            best, best_room = host, room
    return best
