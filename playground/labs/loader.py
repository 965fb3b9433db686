"""Reading, validating and loading lab folders (the format is described in docs/labs.md).

A lab folder is ``lab.toml`` (metadata and the list of steps), ``steps/<name>.<language>.md``
per step and language, the scripts ``steps/<name>.setup.sh``, ``.check.sh`` and ``.solve.sh``
shared by every language, and optional ``intro.<language>.md`` and ``finish.<language>.md``.

Validation collects every problem it can find before giving up, each naming the file, the line
when it is knowable, what is wrong and what to do. Loading renders the markdown to sanitised
HTML and upserts one :class:`~playground.labs.models.Lab` per language, with its steps, in one
transaction. A folder holding a Killercoda ``index.json`` instead is imported by
:mod:`playground.labs.killercoda`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from playground import config
from playground.labs import render
from playground.labs.models import Lab, Step

METADATA = "lab.toml"
KILLERCODA = "index.json"
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
STEP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")
TAG = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,31}$")
SCRIPTS = ("setup", "check", "solve")
MAX_SCRIPT = 64 * 1024  # bytes; the agent's run op takes at most 256 KiB
MAX_MARKDOWN = 256 * 1024
MAX_DURATION = 600
TOP_KEYS = ("slug", "languages", "title", "summary", "image", "duration", "difficulty", "tags", "steps")
STEP_KEYS = ("name", "foreground")
DIFFICULTIES = tuple(Lab.Difficulty.values)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a lab: where (file and, when knowable, line), what, and what to do."""

    file: Path
    line: int | None
    message: str
    fix: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {'warning' if self.warning else 'error'}: {self.message}. {self.fix}"


class LabError(Exception):
    """A lab that cannot be loaded; ``problems`` lists every error (and warning) found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]


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


# -- locating keys in lab.toml --------------------------------------------------------------------
_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(?:#.*)?$")


def _tables(text: str) -> list[tuple[str, int, list[tuple[int, str]]]]:
    """``lab.toml`` split into (table header, its line, [(line, text)]); the top level is ``""``."""
    tables: list[tuple[str, int, list[tuple[int, str]]]] = [("", 0, [])]
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            tables.append((header.group(1).replace(" ", ""), number, []))
        else:
            tables[-1][2].append((number, line))
    return tables


def _assignment(lines: list[tuple[int, str]], key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((number for number, line in lines if pattern.match(line)), None)


def locate(text: str, *path: str | int) -> int | None:
    """The line of ``path`` (keys, or an index into ``[[steps]]``) in ``lab.toml``, best effort."""
    tables = _tables(text)
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        entries = [t for t in tables if t[0] == "steps"]
        if path[1] >= len(entries):
            return _assignment(tables[0][2], "steps")
        _, header_line, lines = entries[path[1]]
        return (_assignment(lines, str(path[2])) if len(path) > 2 else None) or header_line
    top, rest = str(path[0]), [str(p) for p in path[1:]]
    for name, header_line, lines in tables:
        if name == top:
            return (_assignment(lines, rest[0]) if rest else None) or header_line
    if rest:
        dotted = _assignment(tables[0][2], f"{top}.{rest[0]}")
        if dotted:
            return dotted
    return _assignment(tables[0][2], top)


# -- reading a folder -----------------------------------------------------------------------------
class _Reader:
    """Collects problems while reading one lab folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problems: list[Problem] = []
        self.text = ""

    def error(self, file: Path, line: int | None, message: str, fix: str) -> None:
        self.problems.append(Problem(file, line, message, fix))

    def warn(self, file: Path, line: int | None, message: str, fix: str) -> None:
        self.problems.append(Problem(file, line, message, fix, warning=True))

    @property
    def metadata(self) -> Path:
        return self.folder / METADATA

    def at(self, *path: str | int) -> int | None:
        return locate(self.text, *path)

    def read_text(self, path: Path, limit: int) -> str | None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.error(path, None, f"cannot read the file ({exc.strerror})", "Check that it exists and is readable.")
            return None
        if len(data) > limit:
            self.error(
                path, None, f"the file is {len(data)} bytes, over the limit of {limit}", "Split it or make it shorter."
            )
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            self.error(path, line, "the file is not valid UTF-8", "Save it as UTF-8.")
            return None


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"Did you mean '{close[0]}'? " if close else ""


def known_images() -> set[str]:
    """Images a lab may name: the built-in busybox and every recipe under ``recipes/``."""
    return {"busybox"} | {p.stem for p in (config.REPO_DIR / "recipes").glob("*.toml")}


def _per_language(r: _Reader, data: dict[str, Any], key: str, languages: list[str], required: bool) -> dict[str, str]:
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


def _languages(r: _Reader, data: dict[str, Any]) -> list[str]:
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
            "Use distinct lower-case language tags such as en, ko or pt-BR.",
        )
        return []
    return list(value)


def _scalars(r: _Reader, data: dict[str, Any]) -> tuple[str, str, int, str, list[str]]:
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
            f"{_suggest(image, known_images())}The lab loads, but starting it fails until the image exists.",
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
            f'{_suggest(str(difficulty), DIFFICULTIES)}Write e.g. difficulty = "beginner".',
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


def _unknown_keys(r: _Reader, data: dict[str, Any], allowed: tuple[str, ...], *where: str | int) -> None:
    for key in data:
        if key not in allowed:
            line = r.at(*where, key) if where else r.at(key)
            r.error(
                r.metadata,
                line,
                f"unknown key '{key}'{' in [[steps]]' if where else ''}",
                f"{_suggest(key, allowed)}Known keys: {', '.join(allowed)}.",
            )


def _step_entries(r: _Reader, data: dict[str, Any]) -> list[StepSource]:
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
        _unknown_keys(r, entry, STEP_KEYS, "steps", index)
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


def _syntax_check(r: _Reader, path: Path, script: str, shell: str = "/bin/sh") -> None:
    """``sh -n``: a script with a syntax error is reported with its line, never run."""
    try:
        result = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[0] if result.stderr.strip() else "a shell syntax error"
        found = re.search(r"(?:line |: )(\d+):", message)
        message = re.sub(r"^(/bin/)?(ba)?sh: (line )?\d+: ", "", message)
        r.error(
            path,
            int(found.group(1)) if found else None,
            f"shell syntax error: {message}",
            "Fix the script; it runs with /bin/sh inside the sandbox.",
        )


def _read_step(r: _Reader, step: StepSource, languages: list[str]) -> None:
    steps_dir = r.folder / "steps"
    for language in languages:
        path = steps_dir / f"{step.name}.{language}.md"
        if not path.exists():
            r.error(
                path,
                None,
                f"step '{step.name}' has no {language} text",
                f"Create {path.relative_to(r.folder)}, starting with a '# Title' line.",
            )
            continue
        text = r.read_text(path, MAX_MARKDOWN)
        if text is None:
            continue
        first = next(((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()), (1, ""))
        if not re.match(r"^# \S", first[1]):
            r.error(
                path,
                first[0],
                "a step file must start with its title as a '# Title' line",
                "Put the step's title on the first line, after '# '.",
            )
            continue
        step.titles[language] = first[1][2:].strip()[:200]
        step.markdown[language] = "\n".join(text.splitlines()[first[0] :])
    for kind in SCRIPTS:
        path = steps_dir / f"{step.name}.{kind}.sh"
        if path.exists():
            script = r.read_text(path, MAX_SCRIPT)
            if script is not None and script.strip():
                _syntax_check(r, path, script)
                step.scripts[kind] = script
    if "check" not in step.scripts:
        r.warn(
            steps_dir / f"{step.name}.check.sh",
            None,
            f"step '{step.name}' has no check",
            "Add the script (exit 0 when the step is done; its output is the reader's hint).",
        )


def _read_pages(r: _Reader, languages: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    pages: dict[str, dict[str, str]] = {"intro": {}, "finish": {}}
    for page, found in pages.items():
        present = [lang for lang in languages if (r.folder / f"{page}.{lang}.md").exists()]
        for language in languages:
            path = r.folder / f"{page}.{language}.md"
            if present and language not in present:
                r.error(
                    path,
                    None,
                    f"the {page} page exists in {', '.join(present)} but not in {language}",
                    f"Create {path.name}, or remove the other {page} pages.",
                )
            elif language in present:
                text = r.read_text(path, MAX_MARKDOWN)
                if text is not None:
                    found[language] = text
    return pages["intro"], pages["finish"]


def _stray_files(r: _Reader, steps: list[StepSource], languages: list[str]) -> None:
    """Files in steps/ that belong to no step: usually a misspelt name, so warn."""
    expected = {f"{s.name}.{lang}.md" for s in steps for lang in languages}
    expected |= {f"{s.name}.{kind}.sh" for s in steps for kind in SCRIPTS}
    steps_dir = r.folder / "steps"
    for path in sorted(steps_dir.iterdir()) if steps_dir.is_dir() else []:
        if path.name not in expected and not path.name.startswith("."):
            r.warn(
                path,
                None,
                "this file belongs to no step in lab.toml",
                f"{_suggest(path.name, expected)}Rename it or list its step in lab.toml.",
            )


def digest_of(folder: Path) -> str:
    """SHA-256 over every file of the folder (names and contents), to tell what was loaded."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def read_folder(folder: Path) -> LabSource:
    """Read and validate a lab folder; raises :class:`LabError` listing every error (and warning)."""
    r = _Reader(Path(folder))
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
    r.text = r.read_text(r.metadata, MAX_MARKDOWN) or ""
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
    _unknown_keys(r, data, TOP_KEYS)
    languages = _languages(r, data)
    titles = _per_language(r, data, "title", languages, required=True)
    summaries = _per_language(r, data, "summary", languages, required=True)
    slug, image, duration, difficulty, tags = _scalars(r, data)
    steps = _step_entries(r, data)
    for step in steps:
        _read_step(r, step, languages)
    intro, finish = _read_pages(r, languages)
    _stray_files(r, steps, languages)
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
        steps,
        intro,
        finish,
        digest=digest_of(r.folder),
        problems=r.problems,
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
