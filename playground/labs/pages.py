"""The lab pages: the catalogue (``/labs/``) and a lab's introduction with its Start button
(``/labs/<slug>/``). The lab itself runs on the session page, whose lab panel (frontend
``lab.js``) appears for a session started with a lab."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from playground.labs import api
from playground.labs import sessions as lab_sessions
from playground.labs.models import Lab

# The words of a lab's introduction in each language a lab may have (English for any other); the
# page's own (its title, the header) are the visitor's language's, from the catalogues.
WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "start": "Start the lab",
        "steps": "Steps",
        "minutes": "minutes",
        "languages": "Also in",
        "starting": "Starting your sandbox…",
        "difficulty": {"beginner": "Beginner", "intermediate": "Intermediate", "advanced": "Advanced"},
    },
    "ko": {
        "start": "실습 시작",
        "steps": "단계",
        "minutes": "분",
        "languages": "다른 언어",
        "starting": "샌드박스를 준비하는 중…",
        "difficulty": {"beginner": "입문", "intermediate": "중급", "advanced": "고급"},
    },
}
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}


def catalogue(request: HttpRequest, problem: str = "", status: int = 200) -> HttpResponse:
    """The labs, filtered by ``q`` (words), ``tag`` and ``language``; works without JavaScript too."""
    q, tag, language = (request.GET.get(k, "").strip()[: api.MAX_QUERY] for k in ("q", "tag", "language"))
    tags = sorted({t for tags in Lab.objects.values_list("tags", flat=True) for t in tags})
    languages = sorted(set(Lab.objects.values_list("language", flat=True)))
    return render(
        request,
        "playground/labs.html",
        {
            "labs": [
                {**lab, "language_name": LANGUAGE_NAMES.get(lab["language"], lab["language"])}
                for lab in api.search(q, tag, language)
            ],
            "q": q,
            "tag": tag,
            "language": language,
            "tags": tags,
            "languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in languages],
            "problem": problem,
        },
        status=status,
    )


def lab_page(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        lab = lab_sessions.find_lab(slug, request.GET.get("language") or None)
    except lab_sessions.LabChoiceError as exc:
        return catalogue(request, exc.message, exc.status)
    others = [
        (code, LANGUAGE_NAMES.get(code, code)) for code in lab_sessions.languages_of(slug) if code != lab.language
    ]
    words = WORDS.get(lab.language, WORDS["en"])
    return render(
        request,
        "playground/lab.html",
        {
            "lab": lab,
            "steps": list(lab.steps.values_list("number", "title")),
            "others": others,
            "words": words,
            "difficulty": words["difficulty"].get(lab.difficulty, lab.difficulty),
        },
    )
