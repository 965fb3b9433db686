"""A start's choice of template (``{"template": name}`` in ``POST /api/sessions/``), and the
template part of the session JSON."""

from __future__ import annotations

from typing import Any

from playground import wording
from playground.sandboxes.models import Session
from playground.sessiontemplates.loader import Template, available
from playground.sessiontemplates.models import SetupRun


class TemplateChoiceError(Exception):
    """A start's template that cannot be used: the status, code and sentence to answer with."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def template_of(body: dict[str, Any]) -> Template | None:
    """The template the start's body names (None: it names none); TemplateChoiceError when it is
    not a string, unknown, or given with a lab."""
    if "template" not in body:
        return None
    name = body["template"]
    if not isinstance(name, str):
        raise TemplateChoiceError(400, "bad_template", "The 'template' field must be a string naming a template.")
    if "lab" in body:
        raise TemplateChoiceError(400, "lab_and_template", "Start either a lab or a template, not both.")
    templates = available()
    template = templates.get(name)
    if template is None:
        names = sorted(templates)
        offer = f"choose one of: {', '.join(names)}" if names else "this host has none"
        raise TemplateChoiceError(404, "unknown_template", f"There is no template named {name!r}; {offer}.")
    return template


def template_json(session: Session, language: str) -> dict[str, Any] | None:
    """The session JSON's ``template`` part, or None for a session not started from a template. Its
    title is the template's in ``language`` (else English) while the template is on the host, else
    the English one stored at the start."""
    run = SetupRun.objects.filter(pk=session.pk).first()
    if run is None:
        return None
    template = available().get(run.template)
    title = template.title.in_language(language) if template else run.title
    return {**run.as_json(), "title": title, "message": setup_message(run, template, language)}


def setup_message(run: SetupRun, template: Template | None, language: str) -> str:
    """The run's message in ``language`` (playground.wording's ``setup.<key>``), the role of the
    node it names given in that language while the template is on the host; else English."""
    holes = dict(run.message_holes)
    index = holes.get("index")
    if isinstance(index, int) and template is not None and 0 <= index < len(template.nodes):
        holes["role"] = template.nodes[index].role.in_language(language)
    return (
        wording.sentence(language, f"setup.{run.message_key}", run.message, holes) if run.message_key else run.message
    )
