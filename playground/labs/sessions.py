"""A session started with a lab: choosing the lab for ``POST /api/sessions/`` and the ``lab``
part of the session's JSON. Kept apart from :mod:`playground.labs.api` so that the sessions API
can use it without importing the lab views."""

from __future__ import annotations

from typing import Any

from playground.labs.models import Lab, Progress
from playground.sandboxes.models import Session

DEFAULT_LANGUAGE = "en"


class LabChoiceError(Exception):
    """The body names no usable lab; ``status``, ``code`` and ``message`` are the API's answer."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def languages_of(slug: str) -> list[str]:
    return list(Lab.objects.filter(slug=slug).order_by("language").values_list("language", flat=True))


def find_lab(slug: object, language: object = None) -> Lab:
    """The lab ``slug`` in ``language`` (None: English if it has it, else its first language)."""
    if not isinstance(slug, str) or not slug:
        raise LabChoiceError(400, "bad_lab", "'lab' must be a string naming a lab (see GET /api/labs/).")
    if language is not None and (not isinstance(language, str) or not language):
        raise LabChoiceError(400, "bad_language", '\'language\' must be a language tag such as "en" or "ko".')
    available = languages_of(slug)
    if not available:
        raise LabChoiceError(404, "unknown_lab", f"There is no lab named {slug!r}; see GET /api/labs/ for the list.")
    if language is None:
        language = DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in available else available[0]
    if language not in available:
        raise LabChoiceError(
            404,
            "unknown_language",
            f"The lab {slug!r} is not available in {language!r}; choose one of: {', '.join(available)}.",
            languages=available,
        )
    return Lab.objects.get(slug=slug, language=language)


def node_images(lab: Lab, image: str) -> list[str]:
    """The image of each node a session of ``lab`` starts with: node1's is ``image`` (the lab's,
    or the one the start names), the others the lab's ``nodes``."""
    return [image, *lab.nodes[1:]]


def start_progress(session: Session, lab: Lab) -> Progress:
    """Record that ``session`` runs ``lab`` from its first step (inside the session's transaction)."""
    return Progress.objects.create(session=session, lab=lab)


def progress_json(session: Session) -> dict[str, Any] | None:
    """The ``lab`` part of a session's JSON, or None for a session without a lab."""
    progress = Progress.objects.filter(session=session).select_related("lab").first()
    return describe(progress) if progress is not None else None


def describe(progress: Progress) -> dict[str, Any]:
    """Where a session's reader is in its lab: the ``lab`` part of the session's JSON."""
    lab = progress.lab
    return {
        "slug": lab.slug,
        "language": lab.language,
        "title": lab.title,
        "steps": lab.steps.count(),
        "current": progress.current,
        "passed": sorted(progress.passed),
        "read": read_steps(progress),
        "finished": progress.finished_at is not None,
        "finished_at": progress.finished_at.isoformat() if progress.finished_at else None,
    }


def read_steps(progress: Progress) -> list[int]:
    """The steps of ``progress.passed`` that have no check: only read, none of their commands checked."""
    done = progress.lab.steps.filter(check_script="", number__in=progress.passed)
    return sorted(done.values_list("number", flat=True))


def lab_of(body: dict[str, Any]) -> Lab | None:
    """The lab a ``POST /api/sessions/`` body asks for (``lab``, optional ``language``), or None."""
    if "lab" not in body:
        if "language" in body:
            raise LabChoiceError(400, "bad_language", "'language' chooses the language of a lab; name the lab too.")
        return None
    return find_lab(body["lab"], body.get("language"))
