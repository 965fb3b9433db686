"""Importing Killercoda (and older Katacoda) scenarios: a folder with ``index.json``.

What is read (paths are relative to the scenario folder):

- ``title``, ``description`` (the summary), Katacoda's ``difficulty`` and ``time``;
- ``details.intro`` and ``details.finish``: ``text`` (markdown), ``background`` (a script run
  before step 1, so it goes first in step 1's setup), ``foreground`` (typed into the terminal);
  Katacoda's ``courseData`` and ``code`` are the older names of background and foreground;
- ``details.steps[]``: ``title``, ``text``, ``verify`` (the check), ``background`` (the setup),
  ``foreground``;
- ``backend.imageid``, mapped to one of our images by :data:`IMAGE_MAP`.

Every other field is reported as a warning and ignored. Markdown markers ```` ```{{exec}} ````
and `` `cmd`{{exec}} `` become runnable blocks; ``{{copy}}`` becomes a copy block. Scripts whose
first line asks for bash are run by bash (the image must have it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playground.labs import loader, metadata
from playground.labs.metadata import LabSource, StepSource
from playground.labs.models import Lab
from playground.labs.problems import LabError, Problem, Reader
from playground.labs.steps import MAX_MARKDOWN, MAX_SCRIPT, syntax_check

INDEX = "index.json"
DEFAULT_IMAGE = "busybox"
# (pattern on backend.imageid, our image, warning or ""), first match wins.
IMAGE_MAP: list[tuple[str, str, str]] = [
    (r"^(ubuntu|debian|bash)([-:].*)?$", "debian", ""),
    (r"^(alpine|busybox)([-:].*)?$", "busybox", ""),
    (r"^kubernetes.*$", "debian", "Kubernetes is not available here: steps using kubectl will not work"),
    (r"^docker.*$", "docker", ""),  # Debian with a Docker engine (docker, docker-compose)
]
USED = {
    "": {"title", "description", "details", "backend", "difficulty", "time"},
    "details": {"intro", "steps", "finish"},
    "details.intro": {"text", "background", "foreground", "courseData", "code"},
    "details.finish": {"text"},
    "details.steps[]": {"title", "text", "verify", "background", "foreground", "courseData", "code"},
    "backend": {"imageid"},
}
EXEC = re.compile(r"\{\{\s*(exec|execute)(\s+[^}]*)?\}\}")
COPY = re.compile(r"\{\{\s*copy\s*\}\}")
FENCE_CLOSE = re.compile(r"^(\s*)(```+|~~~+)\s*(\{\{[^}]*\}\})\s*$")
INLINE_EXEC = re.compile(r"`([^`\n]+)`\{\{\s*(?:exec|execute)(?:\s+[^}]*)?\}\}")
INLINE_COPY = re.compile(r"`([^`\n]+)`\{\{\s*copy\s*\}\}")
BASH = re.compile(r"^#!\s*(/usr)?/bin/(env\s+)?bash\b")


def map_image(imageid: str) -> tuple[str, str]:
    """Our image for a Killercoda ``backend.imageid``, and a warning ("" when the match is good)."""
    for pattern, image, warning in IMAGE_MAP:
        if re.match(pattern, imageid):
            return image, warning
    return DEFAULT_IMAGE, f"the image '{imageid}' has no equivalent here; using {DEFAULT_IMAGE}"


def convert_markdown(text: str) -> str:
    """Killercoda markdown to ours: ``{{exec}}`` fences gain ``run``, inline commands become blocks."""
    out: list[str] = []
    opening: int | None = None  # the index in ``out`` of the open fence's first line
    for line in text.splitlines():
        close = FENCE_CLOSE.match(line)
        if opening is None and re.match(r"^\s*(```+|~~~+)", line):
            opening = len(out)
        elif opening is not None and (close or re.match(r"^\s*(```+|~~~+)\s*$", line)):
            if close and EXEC.search(close.group(3)):
                out[opening] = out[opening].rstrip() + (" run" if out[opening].strip().strip("`~") else "sh run")
            line, opening = (close.group(1) + close.group(2)) if close else line, None
        elif opening is None:
            out.extend(_inline_commands(line))
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _inline_commands(line: str) -> list[str]:
    """A line with `` `cmd`{{exec}} ``: the line with plain code, then one runnable block per command."""
    commands = INLINE_EXEC.findall(line)
    line = INLINE_COPY.sub(r"`\1`", INLINE_EXEC.sub(r"`\1`", line))
    if not commands:
        return [line]
    marker = re.match(r"^(\s*(?:[-*+]|\d+[.)])?\s*)", line)
    indent = " " * len(marker.group(1)) if marker else ""
    if line.strip() == " ".join(f"`{c}`" for c in commands):
        before: list[str] = []
    else:
        before = [line, ""]
    blocks = [part for c in commands for part in (f"{indent}```sh run", f"{indent}{c}", f"{indent}```", "")]
    return before + blocks


def _line_of(text: str, key: str, value: Any = None) -> int | None:
    """The line of ``"key":`` in index.json (of ``"key": "value"`` when a string value is given)."""
    exact = rf'\s*"{re.escape(value)}"' if isinstance(value, str) else ""
    found = re.search(rf'"{re.escape(key)}"\s*:{exact}', text) or re.search(rf'"{re.escape(key)}"\s*:', text)
    return text[: found.start()].count("\n") + 1 if found else None


class _Scenario:
    """Reads one scenario folder, collecting problems like the lab loader does."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index = folder / INDEX
        self.text = ""
        self.problems: list[Problem] = []
        self.reader = Reader(folder)
        self.reader.problems = self.problems

    def warn(self, message: str, fix: str, key: str | None = None) -> None:
        self.problems.append(Problem(self.index, _line_of(self.text, key) if key else None, message, fix, True))

    def error(self, message: str, fix: str, key: str | None = None, value: Any = None) -> None:
        self.problems.append(Problem(self.index, _line_of(self.text, key, value) if key else None, message, fix))

    def unknown(self, data: Any, where: str, shown: str) -> None:
        if not isinstance(data, dict):
            return
        for key in data:
            if key not in USED.get(where, set()):
                self.warn(
                    f"the field '{shown + '.' if shown else ''}{key}' is not supported and is ignored",
                    "Nothing to do unless the scenario needs it (see docs/labs.md).",
                    key,
                )

    def file(self, name: Any, what: str, key: str) -> str | None:
        """The text of a file the index names, or None (with an error) when it is missing or bad."""
        if name in (None, ""):
            return None
        path = (self.folder / str(name)).resolve()
        if not isinstance(name, str) or not path.is_relative_to(self.folder.resolve()):
            self.error(
                f"{what} must name a file inside the scenario folder, not {name!r}", "Use a relative path.", key, name
            )
            return None
        if not path.is_file():
            self.error(f"{what} names {name}, which does not exist", f"Create {name} or fix the path.", key, name)
            return None
        limit = MAX_SCRIPT if name.endswith(".sh") else MAX_MARKDOWN
        return self.reader.read_text(path, limit)

    def script(self, name: Any, what: str, key: str) -> str:
        text = self.file(name, what, key)
        if not text or not text.strip():
            return ""
        path = self.folder / str(name)
        if BASH.match(text):
            syntax_check(self.reader, path, text, shell="/bin/bash")
            return f"exec bash -s <<'__PLAYGROUND_SCRIPT__'\n{text.rstrip()}\n__PLAYGROUND_SCRIPT__\n"
        syntax_check(self.reader, path, text)
        return text


def _duration(value: Any) -> int:
    found = re.search(r"\d+", str(value)) if value is not None else None
    return max(1, min(metadata.MAX_DURATION, int(found.group()))) if found else 15


def _difficulty(s: _Scenario, value: Any) -> str:
    if value is None:
        return Lab.Difficulty.BEGINNER
    word = str(value).strip().lower()
    if word in metadata.DIFFICULTIES:
        return word
    s.warn(
        f"the difficulty {value!r} is not one of {', '.join(metadata.DIFFICULTIES)}; using beginner",
        "Set it to beginner, intermediate or advanced.",
        "difficulty",
    )
    return Lab.Difficulty.BEGINNER


def _read_index(folder: Path) -> tuple[_Scenario, dict[str, Any]]:
    s = _Scenario(folder)
    if not s.index.is_file():
        raise LabError([Problem(s.index, None, "there is no index.json", "Point the import at a scenario folder.")])
    s.text = s.reader.read_text(s.index, MAX_MARKDOWN) or ""
    try:
        data = json.loads(s.text)
    except json.JSONDecodeError as exc:
        raise LabError(
            [Problem(s.index, exc.lineno, f"JSON syntax error: {exc.msg} (column {exc.colno})", "Fix the JSON syntax.")]
        )
    if not isinstance(data, dict):
        raise LabError([Problem(s.index, 1, "index.json must hold one JSON object", "See docs/labs.md.")])
    return s, data


def _step(s: _Scenario, index: int, entry: Any, language: str) -> StepSource | None:
    key = f"details.steps[{index}]"
    if not isinstance(entry, dict):
        s.error(f"{key} must be an object", 'Write {"title": "...", "text": "step1/text.md"}.', "steps")
        return None
    s.unknown(entry, "details.steps[]", key)
    title = entry.get("title") or f"Step {index + 1}"
    text = s.file(entry.get("text"), f"{key}.text", "text")
    if entry.get("text") in (None, ""):
        s.error(f"{key} has no text", 'Add "text": "stepN/text.md".', "steps")
    step = StepSource(
        name=f"step{index + 1}", titles={language: str(title)[:200]}, markdown={language: convert_markdown(text or "")}
    )
    for kind, names in (("check", ("verify",)), ("setup", ("background", "courseData"))):
        name = next((entry[n] for n in names if entry.get(n)), None)
        if name:
            step.scripts[kind] = s.script(name, f"{key}.{names[0]}", names[0])
    foreground = next((entry[n] for n in ("foreground", "code") if entry.get(n)), None)
    step.foreground = (s.file(foreground, f"{key}.foreground", "foreground") or "").strip() if foreground else ""
    if "check" not in step.scripts:
        s.warn(f"{key} has no verify script, so readers cannot check it", 'Add "verify": "stepN/verify.sh".', "steps")
    return step


def _intro_into_first_step(s: _Scenario, intro: dict[str, Any], first: StepSource) -> None:
    """The intro's background runs before step 1 and its foreground is typed first."""
    background = next((intro[n] for n in ("background", "courseData") if intro.get(n)), None)
    if background:
        script = s.script(background, "details.intro.background", "background")
        first.scripts["setup"] = script + ("\n" + first.scripts["setup"] if first.scripts.get("setup") else "")
    foreground = next((intro[n] for n in ("foreground", "code") if intro.get(n)), None)
    if foreground:
        typed = (s.file(foreground, "details.intro.foreground", "foreground") or "").strip()
        first.foreground = "\n".join(part for part in (typed, first.foreground) if part)


def read_scenario(
    folder: Path, slug: str | None = None, language: str | None = None, image: str | None = None
) -> LabSource:
    """A scenario folder as a one-language LabSource; raises LabError on errors (warnings kept)."""
    folder = Path(folder)
    language = language or "en"
    s, data = _read_index(folder)
    s.unknown(data, "", "")
    details = _table(data, "details")
    s.unknown(details, "details", "details")
    title = _text(data, "title")
    if not title.strip():
        s.error("the scenario has no title", 'Add "title": "...".', "title")
    entries = details.get("steps")
    if not isinstance(entries, list) or not entries:
        s.error("the scenario has no steps", 'Add "details": {"steps": [{"title": ..., "text": ...}]}.', "details")
        entries = []
    steps = [step for i, entry in enumerate(entries) if (step := _step(s, i, entry, language))]
    intro, finish = _table(details, "intro"), _table(details, "finish")
    s.unknown(intro, "details.intro", "details.intro")
    s.unknown(finish, "details.finish", "details.finish")
    if steps:
        _intro_into_first_step(s, intro, steps[0])
    intro_text = s.file(intro.get("text"), "details.intro.text", "intro")
    finish_text = s.file(finish.get("text"), "details.finish.text", "finish")
    backend = _table(data, "backend")
    s.unknown(backend, "backend", "backend")
    chosen = image or _image(s, backend.get("imageid"))
    slug = slug or re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-")[:80]
    if not metadata.SLUG.match(slug or ""):
        s.error(f"the slug {slug!r} is not valid", "Pass --slug with lower-case letters, digits and dashes.")
    if any(not p.warning for p in s.problems):
        raise LabError(s.problems)
    summary = _text(data, "description")
    return LabSource(
        folder=folder,
        slug=slug,
        languages=[language],
        titles={language: title.strip()[:200]},
        summaries={language: summary.strip()},
        image=chosen,
        duration=_duration(data.get("time")),
        difficulty=_difficulty(s, data.get("difficulty")),
        tags=["killercoda"],
        steps=steps,
        intro={language: convert_markdown(intro_text)} if intro_text else {},
        finish={language: convert_markdown(finish_text)} if finish_text else {},
        origin=Lab.Origin.KILLERCODA,
        digest=loader.digest_of(folder),
        problems=s.problems,
    )


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is an object, else an empty one (what is wrong with it is reported elsewhere)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(data: dict[str, Any], key: str) -> str:
    """``data[key]`` when it is a string, else empty."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _image(s: _Scenario, imageid: Any) -> str:
    if not imageid:
        s.warn(f"backend.imageid is missing; using {DEFAULT_IMAGE}", "Set backend.imageid (e.g. ubuntu).", "backend")
        return DEFAULT_IMAGE
    image, warning = map_image(str(imageid))
    if warning:
        s.warn(warning, "Check the scenario's commands against the table in docs/labs.md.", "imageid")
    return image


def import_scenario(
    folder: Path, slug: str | None = None, language: str | None = None, image: str | None = None
) -> Lab:
    """Validate and load a Killercoda scenario folder as one Lab (origin ``killercoda``)."""
    return loader.save(read_scenario(folder, slug=slug, language=language, image=image))[0]
