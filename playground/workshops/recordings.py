"""Recordings of the learners' terminals (docs/workshops.md, Recordings): which sessions are
recorded, the markers at lab steps, the files of a session, and their deletion after the retention.

The agent writes them (``sandbox.agent.recordings``): every terminal of a learner's node, as
asciicast v2, in ``<data>/recordings/<session id hex>/<node>-<terminal>.cast``, bounded by
PLAYGROUND_RECORDING_MAX_BYTES. The web tier only asks for them (``"record": true`` at ``create``),
puts markers into them (the agent's ``mark`` op, when a learner opens or checks a lab step), lists
and serves them, and deletes a session's directory PLAYGROUND_RECORDING_RETENTION_DAYS after its
workshop ended (the beat task :func:`playground.workshops.tasks.delete_old_recordings`), or once its
learner is gone (the workshop deleted).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError, transaction

from playground.labs import signals
from playground.labs.models import Progress
from playground.sandboxes import agentclient, recording
from playground.sandboxes.models import Instance, Session
from playground.workshops.models import Learner
from sandbox.wire import asciicast
from sandbox.wire.protocol import AgentError

log = logging.getLogger("playground.workshops")


@dataclass(frozen=True)
class Recording:
    """One terminal's recording file."""

    name: str  # node1-0.cast
    node: str
    terminal: int
    size: int  # bytes
    path: Path


def connect() -> None:
    """Have learners' sessions recorded and their lab steps marked (called when the app is ready)."""
    recording.register("workshop-learners", learner_session)
    signals.progress_changed.connect(progress_changed, dispatch_uid="workshops-recordings")


def learner_session(session: Session) -> bool:
    """The recording policy (``playground.sandboxes.recording``): a learner's session is recorded."""
    return Learner.objects.filter(session=session).exists()


def recordings_path(workshop_id: int, learner_pk: int) -> str:
    """The page where the workshop's instructor replays a learner's recordings."""
    return f"/workshops/{workshop_id}/learners/{learner_pk}/recordings/"


def session_dir(session_id: uuid.UUID) -> Path:
    """Where the recordings of ``session_id`` are."""
    return asciicast.recordings_dir(settings.PLAYGROUND.data_dir) / session_id.hex


def session_recordings(session_id: uuid.UUID) -> list[Recording]:
    """The session's recordings, by node and terminal number (none: an empty list)."""
    found = []
    try:
        entries = list(session_dir(session_id).iterdir())
    except OSError:
        return []
    for path in entries:
        match = asciicast.NAME.match(path.name)
        if match is None or path.is_symlink() or not path.is_file():
            continue
        found.append(Recording(path.name, match["node"], int(match["terminal"]), path.stat().st_size, path))
    return sorted(found, key=lambda r: (r.node, r.terminal))


def find_recording(session_id: uuid.UUID, name: str) -> Recording | None:
    """The session's recording called ``name``, or None (an unknown or malformed name)."""
    return next((r for r in session_recordings(session_id) if r.name == name), None)


# -- markers ---------------------------------------------------------------------------------
def marker_label(kind: str, step: int, passed: bool | None) -> str:
    """What a marker says: ``step 3`` for an opened (or skipped to) step, ``check step 3: passed``."""
    if kind == "check":
        return f"check step {step}: {'passed' if passed else 'failed'}"
    return f"step {step}"


def progress_changed(sender: Any, progress: Progress, **details: Any) -> None:
    """``playground.labs.signals.progress_changed``: put a marker into a learner's recordings once
    the change commits. Never raises: the labs API answers its reader whatever happens here."""
    try:
        if not Learner.objects.filter(session_id=progress.session_id).exists():
            return
    except (DatabaseError, SynchronousOnlyOperation) as exc:
        log.warning("cannot find the learner of session %s for a recording marker (%s)", progress.session_id, exc)
        return
    label = marker_label(
        str(details.get("kind", "open")), int(details.get("step", progress.current)), details.get("passed")
    )
    transaction.on_commit(lambda: mark(progress.session_id, label))


def mark(session_id: uuid.UUID, label: str) -> int:
    """Ask the agent to put the marker ``label`` into every recorded terminal of the session's
    running nodes; how many terminals were marked. Failures are logged, never raised."""
    marked = 0
    try:
        running = Instance.objects.filter(session_id=session_id, state=Instance.State.RUNNING)
        sandbox_ids = [i.sandbox_id for i in running]
        session = Session.objects.select_related("host").filter(pk=session_id).first()
        if session is None:
            return 0
        agent = agentclient.of_session(session)
    except (DatabaseError, AgentError) as exc:
        log.warning("no marker %r for session %s: %s", label, session_id, exc)
        return 0
    for sandbox_id in sandbox_ids:
        try:
            marked += int(agent.call("mark", id=sandbox_id, label=label).get("marked", 0))
        except AgentError as exc:
            log.warning("no marker %r in the recordings of sandbox %s: %s", label, sandbox_id, exc.message)
        except RuntimeError as exc:  # called on a running event loop: the synchronous client cannot run there
            log.warning("no marker %r in the recordings of sandbox %s: %s", label, sandbox_id, exc)
    return marked


# -- retention -------------------------------------------------------------------------------
def delete_old(now: datetime) -> int:
    """Delete the recordings of sessions whose workshop ended more than
    PLAYGROUND_RECORDING_RETENTION_DAYS before ``now``, and of sessions that belong to no learner
    any more (their workshop was deleted) and are not running; how many sessions' were deleted."""
    root = asciicast.recordings_dir(settings.PLAYGROUND.data_dir)
    try:
        names = [p.name for p in root.iterdir() if asciicast.SESSION.match(p.name)]
    except OSError:
        return 0
    ids = [uuid.UUID(name) for name in names]
    kept_until = {
        session_id: ends_at + timedelta(days=settings.PLAYGROUND.recording_retention_days)
        for session_id, ends_at in Learner.objects.filter(session_id__in=ids).values_list(
            "session_id", "workshop__ends_at"
        )
    }
    live = set(Session.objects.filter(pk__in=ids, state=Session.State.ACTIVE).values_list("pk", flat=True))
    deleted = 0
    for session_id in ids:
        until = kept_until.get(session_id)
        if (until is not None and until > now) or (until is None and session_id in live):
            continue
        shutil.rmtree(root / session_id.hex, ignore_errors=True)
        deleted += 1
    if deleted:
        log.info("deleted the recordings of %d session(s) past their retention", deleted)
    return deleted
