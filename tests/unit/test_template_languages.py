"""A session template's words for people in several languages (docs/templates.md, "The file
format"): ``title`` and ``description`` are one string (English) or a table of Playground's
languages with English among them; anything else is a problem that says what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.sessiontemplates.loader import TemplateError, read_template

NODES = '\n[[nodes]]\nrole = "node"\n'


def read(directory: Path, text: str) -> tuple[dict[str, str], dict[str, str]]:
    """The title and description of a template file of ``text``, each in English and Korean."""
    path = directory / "words.toml"
    path.write_text(text + NODES, encoding="utf-8")
    template = read_template(path)
    return (
        {language: template.title.in_language(language) for language in ("en", "ko")},
        {language: template.description.in_language(language) for language in ("en", "ko")},
    )


def problems_of(directory: Path, text: str) -> list[str]:
    path = directory / "words.toml"
    path.write_text(text + NODES, encoding="utf-8")
    with pytest.raises(TemplateError) as raised:
        read_template(path)
    return [str(problem) for problem in raised.value.problems]


def test_a_plain_string_title_and_description_are_english_and_answer_every_language(tmp_path: Path) -> None:
    title, description = read(tmp_path, 'title = "Two nodes"\ndescription = "A pair."\n')
    assert title == {"en": "Two nodes", "ko": "Two nodes"}
    assert description == {"en": "A pair.", "ko": "A pair."}


def test_a_table_of_languages_gives_each_language_its_own_text(tmp_path: Path) -> None:
    text = 'title = { en = "Two nodes", ko = "노드 두 개" }\n\n[description]\nen = "A pair."\nko = "한 쌍입니다."\n'
    title, description = read(tmp_path, text)
    assert title == {"en": "Two nodes", "ko": "노드 두 개"}
    assert description == {"en": "A pair.", "ko": "한 쌍입니다."}


def test_a_table_without_korean_falls_back_to_english_and_a_missing_description_is_empty(tmp_path: Path) -> None:
    title, description = read(tmp_path, 'title = { en = "Two nodes" }\n')
    assert title == {"en": "Two nodes", "ko": "Two nodes"}
    assert description == {"en": "", "ko": ""}


def test_a_table_without_english_is_refused_with_its_line(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, 'title = "Two nodes"\ndescription = { ko = "한 쌍입니다." }\n')
    assert "words.toml:2: error: description has no English text" in problem, problem
    assert 'Add en = "..."' in problem and "English is required" in problem, problem


def test_a_language_playground_does_not_have_is_refused_naming_the_ones_it_has(tmp_path: Path) -> None:
    text = 'image = "busybox"\n\n[title]\nen = "Two nodes"\nfr = "Deux nœuds"\n'
    (problem,) = problems_of(tmp_path, text)
    assert "words.toml:3: error: title has a text in 'fr', which is not one of Playground's languages (en, ko)" in (
        problem
    ), problem
    assert "Use only those codes as the table's keys" in problem, problem


def test_an_empty_or_non_string_text_in_the_table_is_refused(tmp_path: Path) -> None:
    found = problems_of(tmp_path, 'title = { en = "Two nodes", ko = " " }\ndescription = { en = 3 }\n')
    assert len(found) == 2, found
    assert "words.toml:1: error: title.ko must be a non-empty string" in found[0], found
    assert "words.toml:2: error: description.en must be a non-empty string" in found[1], found
