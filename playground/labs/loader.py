"""Reading, validating and loading lab folders (the format is described in docs/labs.md).

A lab folder is ``lab.toml`` (metadata and the list of steps, :mod:`~playground.labs.metadata`),
``steps/<name>.<language>.md`` per step and language, the scripts ``steps/<name>.setup.sh``,
``.check.sh`` and ``.solve.sh`` shared by every language, and optional ``intro.<language>.md``
and ``finish.<language>.md`` (:mod:`~playground.labs.steps`).

Validation collects every problem it can find before giving up (:mod:`~playground.labs.problems`).
Loading renders the markdown to sanitised HTML and upserts one :class:`~playground.labs.models.Lab`
per language, with its steps, in one transaction. A folder holding a Killercoda ``index.json``
instead is imported by :mod:`playground.labs.killercoda`.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from playground.labs import metadata, render, steps
from playground.labs.metadata import LabSource
from playground.labs.models import Lab, Step
from playground.labs.problems import METADATA, LabError, Problem, Reader

KILLERCODA = "index.json"


def digest_of(folder: Path) -> str:
    """SHA-256 over every file of the folder (names and contents), to tell what was loaded."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def read_folder(folder: Path) -> LabSource:
    """Read and validate a lab folder; raises :class:`LabError` listing every error (and warning)."""
    r = Reader(Path(folder))
    if not r.metadata.is_file():
        raise LabError(
            [
                Problem(
                    r.metadata,
                    None,
                    "there is no lab.toml",
                    "A lab folder needs lab.toml (see docs/labs.md); a Killercoda scenario needs index.json.",
                )
            ]
        )
    r.text = r.read_text(r.metadata, steps.MAX_MARKDOWN) or ""
    try:
        data = tomllib.loads(r.text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise LabError(
            [
                Problem(
                    r.metadata,
                    int(found.group(1)) if found else None,
                    f"TOML syntax error: {exc}",
                    "Fix the syntax (strings need quotes; see docs/labs.md).",
                )
            ]
        )
    metadata.report_unknown_keys(r, data, metadata.TOP_KEYS)
    languages = metadata.read_languages(r, data)
    titles = metadata.read_per_language(r, data, "title", languages, required=True)
    summaries = metadata.read_per_language(r, data, "summary", languages, required=True)
    slug, image, duration, difficulty, tags = metadata.read_scalars(r, data)
    entries = metadata.read_step_entries(r, data)
    for step in entries:
        steps.read_step(r, step, languages)
    intro, finish = steps.read_pages(r, languages)
    steps.report_stray_files(r, entries, languages)
    source = LabSource(
        r.folder,
        slug,
        languages,
        titles,
        summaries,
        image,
        duration,
        difficulty,
        tags,
        entries,
        intro,
        finish,
        digest=digest_of(r.folder),
        problems=r.problems,
        nodes=metadata.read_nodes(r, data, image),
    )
    if any(not p.warning for p in r.problems):
        raise LabError(r.problems)
    return source


# -- loading --------------------------------------------------------------------------------------
def is_lab_folder(path: Path) -> bool:
    return (path / METADATA).is_file() or (path / KILLERCODA).is_file()


def lab_folders(root: Path) -> list[Path]:
    """``root`` itself when it is a lab folder, else its sub-folders that are, sorted."""
    root = Path(root)
    if is_lab_folder(root):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and is_lab_folder(p)) if root.is_dir() else []


def read_any(folder: Path, slug: str | None = None, language: str | None = None, image: str | None = None) -> LabSource:
    """A lab folder or a Killercoda scenario folder (options apply to the latter), read and validated."""
    if (Path(folder) / METADATA).is_file() or not (Path(folder) / KILLERCODA).is_file():
        return read_folder(folder)
    from playground.labs import killercoda

    return killercoda.read_scenario(folder, slug=slug, language=language, image=image)


@transaction.atomic
def save(source: LabSource) -> list[Lab]:
    """Render and upsert one Lab per language (steps replaced), in one transaction."""
    labs = []
    for language in source.languages:
        lab, _ = Lab.objects.update_or_create(
            slug=source.slug,
            language=language,
            defaults={
                "title": source.titles[language],
                "summary": source.summaries.get(language, ""),
                "image": source.image,
                "duration_minutes": source.duration,
                "difficulty": source.difficulty,
                "tags": source.tags,
                "nodes": source.nodes,
                "origin": source.origin,
                "source": str(source.folder)[:500],
                "digest": source.digest,
                "loaded_at": timezone.now(),
                "intro_html": render.render(source.intro[language]) if language in source.intro else "",
                "finish_html": render.render(source.finish[language]) if language in source.finish else "",
            },
        )
        lab.steps.all().delete()
        Step.objects.bulk_create(
            [
                Step(
                    lab=lab,
                    number=number,
                    title=step.titles[language],
                    html=render.render(step.markdown[language]),
                    setup_script=step.scripts.get("setup", ""),
                    check_script=step.scripts.get("check", ""),
                    solve_script=step.scripts.get("solve", ""),
                    foreground=step.foreground,
                )
                for number, step in enumerate(source.steps, 1)
            ]
        )
        labs.append(lab)
    Lab.objects.filter(slug=source.slug).exclude(language__in=source.languages).delete()
    return labs


def load_labs(folder: Path) -> list[Lab]:
    """Validate and load one lab folder (or Killercoda scenario): its Lab in every language."""
    return save(read_any(Path(folder)))


def load_folder(folder: Path, language: str | None = None) -> Lab:
    """Load a lab folder in all its languages; returns the Lab in ``language`` (default: the first)."""
    labs = load_labs(folder)
    return next((lab for lab in labs if lab.language == language), labs[0]) if language else labs[0]


def read_many(folders: Iterable[Path]) -> tuple[list[LabSource], list[Problem]]:
    """Every folder read and validated: the good ones, and every problem (warnings of good ones too)."""
    sources: list[LabSource] = []
    problems: list[Problem] = []
    for folder in folders:
        try:
            sources.append(read_any(folder))
            problems += sources[-1].problems
        except LabError as exc:
            problems += exc.problems
    slugs = [s.slug for s in sources]
    problems += [
        Problem(
            s.folder / METADATA,
            None,
            f"the slug '{s.slug}' is used by another lab folder",
            "Give each lab its own slug.",
        )
        for s in sources
        if slugs.count(s.slug) > 1
    ]
    return sources, problems


def load_all(root: Path) -> list[Lab]:
    """Load every lab folder under ``root``; raises LabError with every folder's errors, loading none."""
    sources, problems = read_many(lab_folders(root))
    if any(not p.warning for p in problems):
        raise LabError(problems)
    with transaction.atomic():
        return [lab for source in sources for lab in save(source)]
