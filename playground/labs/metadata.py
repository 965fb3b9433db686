"""lab.toml: the keys a lab's metadata may hold, each checked, and what it reads into.

:class:`LabSource` is a whole lab as read from its folder (or a Killercoda scenario) and
:class:`StepSource` one of its steps; the functions here fill them from lab.toml's data,
reporting every problem to a :class:`~playground.labs.problems.Reader` with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground import config
from playground.labs.models import Lab
from playground.labs.problems import Problem, Reader, suggest

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
# A language tag (en, ko, pt-BR) of at most 16 characters, what Lab.language keeps (PostgreSQL refuses a
# longer value where SQLite would store it).
LANGUAGE = re.compile(r"^(?=.{2,16}$)[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
LANGUAGE_FIX = "a language tag of at most 16 characters, such as en, ko or pt-BR."
STEP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")
TAG = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,31}$")
MAX_DURATION = 600
TOP_KEYS = ("slug", "languages", "title", "summary", "image", "duration", "difficulty", "tags", "steps", "nodes")
MAX_NODES = 100  # a lab's nodes; PLAYGROUND_MAX_NODES bounds what a start may use
STEP_KEYS = ("name", "foreground")
DIFFICULTIES = tuple(Lab.Difficulty.values)


@dataclass
class StepSource:
    """One step as read from the folder: per-language title and markdown, shared scripts."""

    name: str
    titles: dict[str, str] = field(default_factory=dict)
    markdown: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    foreground: str = ""


@dataclass
class LabSource:
    """A whole lab as read and validated, ready to be rendered and saved."""

    folder: Path
    slug: str
    languages: list[str]
    titles: dict[str, str]
    summaries: dict[str, str]
    image: str
    duration: int
    difficulty: str
    tags: list[str]
    steps: list[StepSource]
    intro: dict[str, str] = field(default_factory=dict)
    finish: dict[str, str] = field(default_factory=dict)
    origin: str = Lab.Origin.PLAYGROUND
    digest: str = ""
    problems: list[Problem] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)  # each node's image, node1 first; empty: one node of image


def known_images() -> set[str]:
    """Images a lab may name: the built-in busybox and every recipe under ``recipes/``."""
    return {"busybox"} | {p.stem for p in (config.REPO_DIR / "recipes").glob("*.toml")}


def read_per_language(
    r: Reader, data: dict[str, Any], key: str, languages: list[str], required: bool
) -> dict[str, str]:
    """A ``title``/``summary`` value: a table of language -> text, or one string for a one-language lab."""
    value = data.get(key)
    if value is None:
        if required:
            r.error(
                r.metadata,
                None,
                f"'{key}' is missing",
                f'Add a [{key}] table with one entry per language, e.g. {languages[0] if languages else "en"} = "...".',
            )
        return {}
    if isinstance(value, str) and len(languages) == 1:
        value = {languages[0]: value}
    if not isinstance(value, dict):
        r.error(
            r.metadata,
            r.at(key),
            f"'{key}' must be a table of language = \"text\"",
            f'Write it as [{key}] with lines like en = "...".',
        )
        return {}
    result: dict[str, str] = {}
    for language in languages:
        text = value.get(language)
        if not isinstance(text, str) or not text.strip():
            r.error(
                r.metadata,
                r.at(key),
                f"'{key}' has no text for language '{language}'",
                f'Add {language} = "..." under [{key}].',
            )
        elif len(text) > (200 if key == "title" else 2000):
            r.error(r.metadata, r.at(key, language), f"'{key}.{language}' is too long", "Shorten it.")
        else:
            result[language] = text.strip()
    for extra in sorted(set(value) - set(languages)):
        r.error(
            r.metadata,
            r.at(key, extra),
            f"'{key}' has text for '{extra}', which is not in 'languages'",
            f"Add '{extra}' to languages, or remove {key}.{extra}.",
        )
    return result


def read_languages(r: Reader, data: dict[str, Any]) -> list[str]:
    """``languages``: distinct language tags, the first the default; empty (with an error) when bad."""
    value = data.get("languages")
    if value is None:
        r.error(r.metadata, None, "'languages' is missing", 'Add e.g. languages = ["en"] (the first is the default).')
        return []
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        r.error(
            r.metadata,
            r.at("languages"),
            "'languages' must be a non-empty list of language tags",
            'Write e.g. languages = ["en", "ko"].',
        )
        return []
    bad = [v for v in value if not LANGUAGE.match(v)]
    if bad or len(set(value)) != len(value):
        r.error(
            r.metadata,
            r.at("languages"),
            f"'languages' has a bad or repeated tag: {bad or value}",
            "Use distinct language tags of at most 16 characters, such as en, ko or pt-BR.",
        )
        return []
    return list(value)


def read_scalars(r: Reader, data: dict[str, Any]) -> tuple[str, str, int, str, list[str]]:
    """slug, image, duration, difficulty and tags, each checked."""
    slug = data.get("slug", r.folder.name)
    if not isinstance(slug, str) or not SLUG.match(slug):
        r.error(
            r.metadata,
            r.at("slug"),
            f"the slug {slug!r} is not valid",
            'Use lower-case letters, digits and dashes (set slug = "..." or rename the folder).',
        )
    image = data.get("image")
    if not isinstance(image, str) or not image:
        r.error(
            r.metadata,
            r.at("image"),
            "'image' is missing or not a string",
            'Add image = "busybox" (or another image the site has).',
        )
        image = ""
    elif image not in known_images():
        r.warn(
            r.metadata,
            r.at("image"),
            f"the image '{image}' is not one this site knows ({', '.join(sorted(known_images()))})",
            f"{suggest(image, known_images())}The lab loads, but starting it fails until the image exists.",
        )
    duration = data.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= MAX_DURATION:
        r.error(
            r.metadata,
            r.at("duration"),
            f"'duration' must be whole minutes from 1 to {MAX_DURATION}, not {duration!r}",
            "Write e.g. duration = 30.",
        )
        duration = 0
    difficulty = data.get("difficulty")
    if difficulty not in DIFFICULTIES:
        r.error(
            r.metadata,
            r.at("difficulty"),
            f"'difficulty' must be one of {', '.join(DIFFICULTIES)}, not {difficulty!r}",
            f'{suggest(str(difficulty), DIFFICULTIES)}Write e.g. difficulty = "beginner".',
        )
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and TAG.match(t) for t in tags):
        r.error(
            r.metadata,
            r.at("tags"),
            "'tags' must be a list of short lower-case words",
            'Write e.g. tags = ["linux", "namespaces"].',
        )
        tags = []
    return str(slug), image, int(duration or 0), str(difficulty), list(tags)


def read_nodes(r: Reader, data: dict[str, Any], image: str) -> list[str]:
    """``nodes``: the image of each of the lab's nodes, node1's first and the lab's ``image``; empty
    when the key is absent (one node)."""
    if "nodes" not in data:
        return []
    nodes = data["nodes"]
    if (
        not isinstance(nodes, list)
        or not 1 <= len(nodes) <= MAX_NODES
        or not all(isinstance(n, str) and n for n in nodes)
    ):
        r.error(
            r.metadata,
            r.at("nodes"),
            f"'nodes' must be a list of 1 to {MAX_NODES} image names, one per node",
            'Write e.g. nodes = ["docker", "docker", "docker"] for three docker nodes.',
        )
        return []
    if image and nodes[0] != image:
        r.error(
            r.metadata,
            r.at("nodes"),
            f"the first of 'nodes' ({nodes[0]!r}) is node1, whose image is the lab's image ({image!r})",
            "Make them the same.",
        )
    for name in sorted(set(nodes) - known_images() - {image}):
        r.warn(
            r.metadata,
            r.at("nodes"),
            f"the image '{name}' in 'nodes' is not one this site knows ({', '.join(sorted(known_images()))})",
            f"{suggest(name, known_images())}The lab loads, but starting it fails until the image exists.",
        )
    return list(nodes)


def report_unknown_keys(r: Reader, data: dict[str, Any], allowed: tuple[str, ...], *where: str | int) -> None:
    """An error for each key of ``data`` (the table at ``where``) not in ``allowed``, with the closest one."""
    for key in data:
        if key not in allowed:
            line = r.at(*where, key) if where else r.at(key)
            r.error(
                r.metadata,
                line,
                f"unknown key '{key}'{' in [[steps]]' if where else ''}",
                f"{suggest(key, allowed)}Known keys: {', '.join(allowed)}.",
            )


def read_step_entries(r: Reader, data: dict[str, Any]) -> list[StepSource]:
    """The ``[[steps]]`` tables in order, each with a valid, distinct name (their files are read later)."""
    entries = data.get("steps")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        r.error(
            r.metadata,
            r.at("steps"),
            "the lab has no steps",
            'Add one [[steps]] table per step, in order, each with name = "01-first-step".',
        )
        return []
    steps: list[StepSource] = []
    for index, entry in enumerate(entries):
        report_unknown_keys(r, entry, STEP_KEYS, "steps", index)
        name, foreground = entry.get("name"), entry.get("foreground", "")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            r.error(
                r.metadata,
                r.at("steps", index, "name"),
                f"step {index + 1} has no valid name ({name!r})",
                'Give it name = "01-something": lower-case letters, digits and dashes, naming its files.',
            )
            continue
        if name in {s.name for s in steps}:
            r.error(
                r.metadata,
                r.at("steps", index, "name"),
                f"step name '{name}' is used twice",
                "Give every step its own name.",
            )
            continue
        if not isinstance(foreground, str):
            r.error(
                r.metadata,
                r.at("steps", index, "foreground"),
                "'foreground' must be a string",
                'Write foreground = "command to type when the step opens".',
            )
            foreground = ""
        steps.append(StepSource(name=name, foreground=foreground.strip()))
    return steps
