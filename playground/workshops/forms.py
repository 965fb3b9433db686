"""The instructor's form for a new workshop, checked by hand so that each problem is a catalogue key
(``workshop.invalid_*``) said in the instructor's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import QueryDict
from django.utils import timezone

from playground.workshops.models import MAX_CAPACITY, STUCK_CHECKS_DEFAULT, STUCK_MINUTES_DEFAULT

TITLE_LENGTH = 120
NO_LAB = ""
MAX_STUCK_CHECKS = 100
MAX_STUCK_MINUTES = 600


@dataclass(frozen=True)
class Choices:
    """What the form may choose from: labs as (value "slug:language", label), images, the default image."""

    labs: list[tuple[str, str]]
    images: list[str]
    default_image: str


def parse_time(text: str) -> datetime | None:
    """A ``datetime-local`` input's value (``2026-12-03T14:00``, seconds optional) as an aware UTC time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def whole_number(text: str, default: int, most: int) -> int | None:
    """A whole number from 1 to ``most`` as typed (``default`` when left empty); None for anything else."""
    text = text.strip()
    if not text:
        return default
    return int(text) if text.isdigit() and 1 <= int(text) <= most else None


def parse(post: QueryDict, choices: Choices, now: datetime) -> tuple[dict[str, Any], list[str]]:
    """The new workshop's fields from the form, and the catalogue keys of its problems (none: valid)."""
    problems: list[str] = []
    title = " ".join(post.get("title", "").split())
    if not 1 <= len(title) <= TITLE_LENGTH:
        problems.append("workshop.invalid_title")
    lab = post.get("lab", NO_LAB)
    if lab != NO_LAB and lab not in {value for value, _ in choices.labs}:
        problems.append("workshop.invalid_lab")
    slug, _, language = lab.partition(":")
    image = post.get("image", choices.default_image)
    if image not in choices.images:
        problems.append("workshop.invalid_image")
    capacity_text = post.get("capacity", "").strip()
    capacity = int(capacity_text) if capacity_text.isdigit() else 0
    if not 1 <= capacity <= MAX_CAPACITY:
        problems.append("workshop.invalid_capacity")
    starts_at, ends_at = parse_time(post.get("starts_at", "")), parse_time(post.get("ends_at", ""))
    if starts_at is None or ends_at is None:
        problems.append("workshop.invalid_time")
    elif ends_at <= starts_at or ends_at <= now:
        problems.append("workshop.invalid_times")
    stuck_checks = whole_number(post.get("stuck_failed_checks", ""), STUCK_CHECKS_DEFAULT, MAX_STUCK_CHECKS)
    stuck_minutes = whole_number(post.get("stuck_minutes", ""), STUCK_MINUTES_DEFAULT, MAX_STUCK_MINUTES)
    if stuck_checks is None or stuck_minutes is None:
        problems.append("workshop.invalid_stuck")
    fields = {
        "title": title,
        "lab_slug": slug,
        "lab_language": language,
        "image": image,
        "capacity": capacity,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "idle_reaping": post.get("idle_reaping") == "on",
        "stuck_failed_checks": stuck_checks,
        "stuck_minutes": stuck_minutes,
    }
    return fields, problems
