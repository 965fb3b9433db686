"""Joining a workshop: a code and a name give a learner a session, started as the landing page's
Start starts one (:func:`playground.sandboxes.api.start_session`); the name and its PIN give the
same session again, from any browser.

Every refusal is a :class:`JoinRefused`: an HTTP status and a catalogue key (``workshop.error_*``
in frontend/src/i18n/) with its holes, which the join page says in the visitor's language.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from playground import wording
from playground.sandboxes import access, ratelimit
from playground.sandboxes.api import StartRefused, start_session
from playground.sandboxes.models import Session
from playground.workshops import codes, consumers
from playground.workshops.models import NAME_LENGTH, Learner, Workshop

RATE_PREFIX = "playground:joins:"  # the join attempts' sliding window in Redis, per client address
PIN_TRIES = 5  # wrong PINs in a row for one name, from anywhere, before it is locked
PIN_LOCK = timedelta(minutes=10)  # how long: 5 guesses per 10 minutes make 10,000 PINs take two weeks


class JoinRefused(Exception):
    """A join that did not happen: ``status``, and the sentence as a catalogue ``key`` with ``holes``,
    or as ``message`` already written (a refusal of the session's start, in the visitor's language)."""

    def __init__(
        self,
        status: int,
        key: str,
        retry_after: int | None = None,
        message: str = "",
        **holes: object,
    ) -> None:
        super().__init__(message or key)
        self.status, self.key, self.retry_after, self.message, self.holes = status, key, retry_after, message, holes


@dataclass(frozen=True)
class Joined:
    """A learner in their session: ``key`` opens it; ``pin`` is set only when it was just made (shown once)."""

    learner: Learner
    session: Session
    key: str
    pin: str | None = field(default=None)


def check_rate(request: HttpRequest) -> None:
    """Count a join attempt of the request's client address; JoinRefused 429 over
    PLAYGROUND_WORKSHOP_JOINS_PER_MINUTE in the last minute (exempt addresses and a Redis that does
    not answer let it through, as the start limiter does)."""
    cfg = settings.PLAYGROUND
    address = access.client_address(request, cfg.proxy_count)
    if not access.limited(address, cfg.limit_exempt):
        return
    wait = ratelimit.allowed(RATE_PREFIX, address, cfg.workshop_joins_per_minute, uuid.uuid4().hex)
    if wait:
        raise JoinRefused(429, "workshop.error_too_many", retry_after=wait, seconds=wait)


def clean_name(typed: str) -> str:
    """A display name as typed, spaces around it removed and inner runs of spaces made one; JoinRefused
    400 unless 1 to NAME_LENGTH printable characters remain."""
    name = " ".join(typed.split())
    if not 1 <= len(name) <= NAME_LENGTH or not name.isprintable():
        raise JoinRefused(400, "workshop.error_name", length=NAME_LENGTH)
    return name


def find_workshop(typed_code: str, now: datetime) -> Workshop:
    """The open workshop a code names (any case, spaces and dashes ignored); JoinRefused 404 for no such
    code, 410 for one that is over, 403 for one that has not opened yet."""
    code = codes.normalise_code(typed_code)
    if not codes.is_code(code):
        raise JoinRefused(404, "workshop.error_code", code=typed_code.strip()[:20])
    workshop = Workshop.objects.filter(join_code=code, ends_at__gt=now).first()
    if workshop is None:
        if Workshop.objects.filter(join_code=code).exists():
            raise JoinRefused(410, "workshop.error_over")
        raise JoinRefused(404, "workshop.error_code", code=code)
    if now < workshop.starts_at:
        raise JoinRefused(403, "workshop.error_not_open", when=workshop.starts_at.strftime("%Y-%m-%d %H:%M"))
    return workshop


def join(request: HttpRequest, typed_code: str, typed_name: str, typed_pin: str, language: str) -> Joined:
    """Join the workshop of ``typed_code`` as ``typed_name``: a new name gets a new session and a PIN;
    a taken name with its PIN gets its session back (a new one if it has ended). Raises JoinRefused."""
    now = timezone.now()
    name = clean_name(typed_name)
    workshop = find_workshop(typed_code, now)
    learner = Learner.objects.filter(workshop=workshop, name__iexact=name).select_related("session").first()
    if learner is None:
        return _start(request, workshop, name, language)
    if not typed_pin.strip():
        raise JoinRefused(409, "workshop.error_name_taken", name=learner.name)
    check_pin(learner, typed_pin, now)
    if learner.session.state == Session.State.ACTIVE:
        key = codes.open_key(learner.sealed_key, settings.SECRET_KEY, learner.session.id.hex)
        return Joined(learner, learner.session, key)
    return _start(request, workshop, name, language, learner)


def check_pin(learner: Learner, typed_pin: str, now: datetime) -> None:
    """Let ``typed_pin`` through if it is the learner's; JoinRefused 403 if not, and 429 while the name
    is locked after PIN_TRIES wrong ones in a row (whichever browser or address sent them), so that
    the PIN cannot be guessed faster than PIN_TRIES per PIN_LOCK."""
    if learner.locked_until is not None and learner.locked_until > now:
        wait = max(1, int((learner.locked_until - now).total_seconds()))
        raise JoinRefused(429, "workshop.error_pin_locked", retry_after=wait, name=learner.name, minutes=-(-wait // 60))
    if codes.pin_matches(typed_pin, learner.pin_hash, settings.SECRET_KEY):
        if learner.wrong_pins:
            Learner.objects.filter(pk=learner.pk).update(wrong_pins=0, locked_until=None)
        return
    wrong = learner.wrong_pins + 1
    locked = now + PIN_LOCK if wrong >= PIN_TRIES else None
    Learner.objects.filter(pk=learner.pk).update(wrong_pins=0 if locked else wrong, locked_until=locked)
    raise JoinRefused(403, "workshop.error_wrong_pin", name=learner.name)


def _start(
    request: HttpRequest, workshop: Workshop, name: str, language: str, learner: Learner | None = None
) -> Joined:
    """Start a session for ``name`` in ``workshop`` (for ``learner``, whose session ended, or a new
    learner with a new PIN), with the workshop's lab or image, ending at the workshop's end."""
    body: dict[str, object] = {"image": workshop.image}
    if workshop.lab_slug:
        body = {"lab": workshop.lab_slug, "language": workshop.lab_language or None}
        body = {k: v for k, v in body.items() if v is not None}
    pin = codes.new_pin() if learner is None else None
    made: list[Learner] = []

    def claim(session: Session, key: str) -> None:
        """Inside the start's transaction: take a seat (or refuse), make the session the workshop's."""
        sealed = codes.seal_key(key, settings.SECRET_KEY, session.id.hex)
        if learner is None:
            if Learner.objects.filter(workshop=workshop).count() >= workshop.capacity:
                raise JoinRefused(409, "workshop.error_full", capacity=workshop.capacity)
            try:
                with transaction.atomic():
                    made.append(
                        Learner.objects.create(
                            workshop=workshop,
                            name=name,
                            pin_hash=codes.hash_pin(pin or "", settings.SECRET_KEY),
                            session=session,
                            sealed_key=sealed,
                        )
                    )
            except IntegrityError:  # the same name joined at the same moment
                raise JoinRefused(409, "workshop.error_name_taken", name=name) from None
        else:
            Learner.objects.filter(pk=learner.pk).update(session=session, sealed_key=sealed)
            learner.session, learner.sealed_key = session, sealed
            made.append(learner)
        exempt = None if workshop.idle_reaping else workshop.ends_at
        ends = workshop.ends_at
        Session.objects.filter(pk=session.pk).update(expires_at=ends, ends_by=ends, idle_exempt_until=exempt)
        session.expires_at, session.ends_by, session.idle_exempt_until = ends, ends, exempt
        consumers.learner_changed(workshop.pk, made[0].pk)  # the dashboards show them once committed

    try:
        started = start_session(request, body, address_limits=False, claim=claim, here_first=True)
    except StartRefused as refused:
        raise _start_refusal(refused, language) from None
    return Joined(made[0], started.session, started.key, pin)


def _start_refusal(refused: StartRefused, language: str) -> JoinRefused:
    """A refused start (the host is full, the lab has gone...) as a join refusal with the API's sentence."""
    response = refused.response
    body = json.loads(response.content)
    message = wording.api_error(language, body).get("message") or ""
    retry = response.get("Retry-After")
    return JoinRefused(response.status_code, "", retry_after=int(retry) if retry else None, message=message)
