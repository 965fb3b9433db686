"""The server's sentences in the visitor's language.

The server writes its sentences in English, in the code that knows why it speaks: an API error's
``message`` beside its ``error`` code, a terminal event's ``message`` beside its ``reason`` or
``code``. This module gives them in another language from that language's translations,
``playground/translations/<language>.json``: flat ``key: sentence`` with ``{name}`` holes, keyed
by what the sentence is about (``error.<code>``, ``exit.<reason>``, ``warning.extendable``...).
English needs no file: the code's sentence is the English one, written once.

A sentence stays English when its language has no translation of its key, or when the
translation names a hole the sentence's fields do not give: a visitor reads every sentence, in
their language where it is translated. The pages' own words (the front end's) are in the
catalogues of :mod:`playground.i18n`; these are only the server's.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from playground import config, i18n
from playground.sandboxes import timings

TRANSLATIONS_DIR = config.REPO_DIR / "playground" / "translations"
HOLE = re.compile(r"\{(\w+)\}")
TAB_REASONS = ("shell_exited", "closed")  # a tab's own end, told apart from terminal 0's by ``terminal``


@functools.cache
def translations(language: str) -> dict[str, str]:
    """The server's sentences in ``language`` (none for English, or a language without a file)."""
    path = TRANSLATIONS_DIR / f"{language}.json"
    if language == i18n.DEFAULT_LANGUAGE or not path.is_file():
        return {}
    with open(path, encoding="utf-8") as file:
        sentences: dict[str, str] = json.load(file)
    return sentences


def sentence(language: str, key: str, english: str, holes: Mapping[str, Any]) -> str:
    """``english`` in ``language``: the translation of ``key`` with its holes filled from ``holes``;
    ``english`` itself when there is no translation or it needs a hole ``holes`` lacks."""
    translated = translations(language).get(key)
    if translated is None or any(name not in holes for name in HOLE.findall(translated)):
        return english
    return HOLE.sub(lambda hole: str(holes[hole.group(1)]), translated)


def duration(language: str, seconds: float) -> str:
    """A time to come, in words ('8 hours', '1 minute'; '8시간', '1분'; see timings.duration_parts)."""
    count, unit = timings.duration_parts(seconds)
    return sentence(language, f"duration.{unit}s", timings.humanize(seconds), {"count": count})


def api_error(language: str, body: dict[str, Any]) -> dict[str, Any]:
    """An API error's body (``error``, ``message`` and its other fields) with its message in ``language``."""
    code, message = body.get("error"), body.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return body
    return {**body, "message": sentence(language, f"error.{code}", message, body)}


def event(language: str, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A terminal event's fields with its ``message`` (if any) in ``language``."""
    message = fields.get("message")
    if not isinstance(message, str) or not message or language == i18n.DEFAULT_LANGUAGE:
        return fields
    holes = dict(fields)
    if type_ == "exit":
        reason = fields.get("reason")
        key = f"exit.tab_{reason}" if reason in TAB_REASONS and fields.get("terminal") else f"exit.{reason}"
    elif type_ == "warning":
        key = "warning.extendable" if fields.get("extendable") else "warning.final"
        holes["when"] = duration(language, float(fields.get("seconds_left", 0)))
    elif type_ == "error":
        key = f"error.{fields.get('code')}"
    elif type_ == "status":
        key = f"status.{fields.get('state')}"
    else:
        return fields
    return {**fields, "message": sentence(language, key, message, holes)}
