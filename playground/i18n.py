"""The pages' language: English or Korean, from the same message catalogues as the front end.

The catalogues are `frontend/src/i18n/<language>.json` (one per language, flat `key: sentence`,
`{name}` holes, no plurals), so each sentence of the product has one source, read here for the
Django templates' first paint and bundled by esbuild for the page's code. The language of a
request is the visitor's switch (the `playground_language` cookie, set by frontend/src/i18n.js),
else the first supported language of its Accept-Language header, else English.

Templates use `{% t "key" name=value %}` (a builtin tag, registered in settings.TEMPLATES) and
`{{ page_language }}` (from the `language` context processor).
"""

import functools
import json
import re

from django import template
from django.http import HttpRequest

from playground import config

LANGUAGES = ("en", "ko")
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "playground_language"
CATALOGUE_DIR = config.REPO_DIR / "frontend" / "src" / "i18n"

register = template.Library()


@functools.cache
def catalogue(language: str) -> dict[str, str]:
    """The sentences of `language` (one of LANGUAGES), read once from its JSON file."""
    with open(CATALOGUE_DIR / f"{language}.json", encoding="utf-8") as file:
        sentences: dict[str, str] = json.load(file)
    return sentences


def _accepted(header: str) -> list[str]:
    """The languages of an Accept-Language header, best first (ties keep their order; q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        match = re.search(r"q=([0-9.]+)", params)
        try:
            quality = float(match.group(1)) if match else 1.0
        except ValueError:
            quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    return [tag for _, _, tag in sorted(ranked)]


def choose(chosen: str | None, accept_language: str) -> str:
    """The language to answer in: ``chosen`` (the switch's cookie) when supported, else the first
    supported language of the ``accept_language`` header, else English."""
    if chosen in LANGUAGES:
        return str(chosen)
    for tag in _accepted(accept_language):
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def request_language(request: HttpRequest) -> str:
    """The language to render `request` in: its cookie's choice, else its Accept-Language, else English."""
    return choose(request.COOKIES.get(LANGUAGE_COOKIE), request.headers.get("Accept-Language", ""))


def translate(language: str, key: str, **params: object) -> str:
    """The sentence of `key` in `language` (English when that catalogue lacks it), holes filled from `params`."""
    text = catalogue(language).get(key) or catalogue(DEFAULT_LANGUAGE)[key]
    return re.sub(r"\{(\w+)\}", lambda hole: str(params.get(hole.group(1), hole.group(0))), text)


def language(request: HttpRequest) -> dict[str, object]:
    """Context processor: `page_language` and `page_languages` ((code, name) of each) for the templates."""
    return {
        "page_language": request_language(request),
        "page_languages": [(code, catalogue(code)["lang.name"]) for code in LANGUAGES],
    }


@register.simple_tag(takes_context=True)
def t(context: template.Context, key: str, **params: object) -> str:
    """`{% t "key" name=value %}`: the sentence of `key` in the page's language (escaped by the template)."""
    return translate(context.get("page_language", DEFAULT_LANGUAGE), key, **params)
