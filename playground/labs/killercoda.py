"""Importing Killercoda (and older Katacoda) scenarios: a folder with ``index.json``.

What is read (paths are relative to the scenario folder):

- ``title``, ``description`` (the summary), Katacoda's ``difficulty`` and ``time``;
- ``details.intro`` and ``details.finish``: ``text`` (markdown), ``background`` (a script run
  before step 1, so it goes first in step 1's setup), ``foreground`` (typed into the terminal);
  Katacoda's ``courseData`` and ``code`` are the older names of background and foreground;
- ``details.steps[]``: ``title``, ``text``, ``verify`` (the check), ``background`` (the setup),
  ``foreground``;
- ``details.assets.host01`` (Katacoda ``client``): files of the scenario written by step 1's
  setup before anything else (:func:`_asset_script`, at most :data:`MAX_ASSETS` bytes);
- ``backend.imageid``, mapped to one of our images by :data:`IMAGE_MAP`.

A scenario with an intro but no steps is one step, the intro, with nothing to check. A
foreground loop waiting for a file that no setup makes is dropped (:func:`_drop_endless_waits`).
Every other field is reported as a warning and ignored. Markdown markers ```` ```{{exec}} ````
and `` `cmd`{{exec}} `` become runnable blocks; ``{{copy}}`` becomes a copy block. Scripts whose
first line asks for bash are run by bash (the image must have it).
"""

from __future__ import annotations

import base64
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
# A Docker-capable imageid (Killercoda's ubuntu and kubernetes environments, Katacoda's ubuntu
# and kubernetes ones all had a Docker engine) maps to ``docker`` when the scenario uses Docker
# (DOCKER_USE in its markdown or scripts), else to the lighter ``debian``.
IMAGE_MAP: list[tuple[str, str, str]] = [
    (r"^docker.*$", "docker", ""),  # Debian with a Docker engine (docker, docker-compose)
    (r"^ubuntu([-:].*)?$", "debian|docker", ""),
    (r"^(debian|bash)([-:].*)?$", "debian", ""),
    (r"^(alpine|busybox)([-:].*)?$", "busybox", ""),
    (
        r"^(kubernetes|k3s|k8s).*$",
        "debian|docker",
        "Kubernetes is not available here: steps using kubectl will not work",
    ),
]
DOCKER_USE = re.compile(r"(^|[\s;&|`(])(docker|docker-compose|podman)(\s|$)", re.MULTILINE)
DIFFICULTY_NAMES = {  # Katacoda's and Killercoda's words for our difficulties
    "easy": Lab.Difficulty.BEGINNER,
    "beginner": Lab.Difficulty.BEGINNER,
    "medium": Lab.Difficulty.INTERMEDIATE,
    "intermediate": Lab.Difficulty.INTERMEDIATE,
    "moderate": Lab.Difficulty.INTERMEDIATE,
    "hard": Lab.Difficulty.ADVANCED,
    "difficult": Lab.Difficulty.ADVANCED,
    "advanced": Lab.Difficulty.ADVANCED,
    "expert": Lab.Difficulty.ADVANCED,
}
USED = {
    "": {"title", "description", "details", "backend", "difficulty", "time"},
    "details": {"intro", "steps", "finish", "assets"},
    "details.assets[]": {"file", "target", "chmod"},
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
# A loop of a foreground script that waits for a file: ``while [ ! -f /tmp/done ]; do sleep 1; done``.
WAIT_LOOP = re.compile(r"^\s*(?:while|until)\b.*?(?:\[|\btest)\s+!?\s*-[efds]\s+[\"']?([^\s\"';\]]+)")
ASSET_HOSTS = ("host01", "client")  # Killercoda's first node, and Katacoda's name for it
MAX_ASSETS = 64 * 1024  # bytes of asset files; base64 in step 1's setup, within the agent's 256 KiB
ASSET_MARK = "__PLAYGROUND_ASSET__"
BASH = re.compile(r"^#!\s*(/usr)?/bin/(env\s+)?bash\b")


def map_image(imageid: str, uses_docker: bool = False) -> tuple[str, str]:
    """Our image for a Killercoda ``backend.imageid``, and a warning ("" when the match is good).
    A Docker-capable imageid gives ``docker`` when ``uses_docker`` (the scenario runs docker)."""
    for pattern, image, warning in IMAGE_MAP:
        if re.match(pattern, imageid):
            if "|" in image:
                image = image.split("|")[1 if uses_docker else 0]
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
            return f"bash -s <<'__PLAYGROUND_SCRIPT__'\n{text.rstrip()}\n__PLAYGROUND_SCRIPT__\n"
        syntax_check(self.reader, path, text)
        return text


def _duration(value: Any) -> int:
    found = re.search(r"\d+", str(value)) if value is not None else None
    return max(1, min(metadata.MAX_DURATION, int(found.group()))) if found else 15


def _difficulty(s: _Scenario, value: Any) -> str:
    if value is None:
        return Lab.Difficulty.BEGINNER
    word = str(value).strip().lower()
    if word in DIFFICULTY_NAMES:
        return DIFFICULTY_NAMES[word]
    s.warn(
        f"the difficulty {value!r} is not one of {', '.join(DIFFICULTY_NAMES)}; using beginner",
        "Set it to easy, medium or hard (or beginner, intermediate or advanced).",
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
    intro, finish = _table(details, "intro"), _table(details, "finish")
    s.unknown(intro, "details.intro", "details.intro")
    s.unknown(finish, "details.finish", "details.finish")
    intro_text = s.file(intro.get("text"), "details.intro.text", "intro")
    finish_text = s.file(finish.get("text"), "details.finish.text", "finish")
    entries = details.get("steps")
    if entries in (None, []) and intro_text:
        steps = [_reading_step(title, intro_text, language)]
        intro_text = None
    elif not isinstance(entries, list) or not entries:
        s.error("the scenario has no steps", 'Add "details": {"steps": [{"title": ..., "text": ...}]}.', "details")
        steps = []
    else:
        steps = [step for i, entry in enumerate(entries) if (step := _step(s, i, entry, language))]
    if steps:
        _intro_into_first_step(s, intro, steps[0])
        assets = _asset_script(s, details.get("assets"))
        if assets:
            steps[0].scripts["setup"] = assets + steps[0].scripts.get("setup", "")
        setups = "\n".join(step.scripts.get("setup", "") for step in steps)
        for number, step in enumerate(steps, 1):
            step.foreground = _drop_endless_waits(s, step.foreground, setups, number)
    backend = _table(data, "backend")
    s.unknown(backend, "backend", "backend")
    uses_docker = _uses_docker(steps) or bool(DOCKER_USE.search(intro_text or ""))
    chosen = image or _image(s, backend.get("imageid"), uses_docker)
    slug = slug or re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-")[:80]
    if not metadata.SLUG.match(slug or ""):
        s.error(f"the slug {slug!r} is not valid", "Pass --slug with lower-case letters, digits and dashes.")
    if not metadata.LANGUAGE.match(language):
        s.error(f"the language {language!r} is not valid", f"Pass --language with {metadata.LANGUAGE_FIX}")
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


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _asset_files(s: _Scenario, pattern: str) -> list[tuple[Path, str]]:
    """The files an asset entry's ``file`` names (a glob; a directory brings its files), each with
    its path under the target. Looked up in ``assets/``, then (Katacoda) in the scenario folder."""
    root = s.folder.resolve()
    for base in (root / "assets", root):
        matches = sorted(p for p in base.glob(pattern) if p.resolve().is_relative_to(root)) if pattern else []
        if matches:
            break
    found: list[tuple[Path, str]] = []
    for match in matches:
        inside = sorted(p for p in match.rglob("*") if p.is_file()) if match.is_dir() else [match]
        found += [(p, str(p.relative_to(match.parent))) for p in inside if p.resolve().is_relative_to(root)]
    return found


def _asset_script(s: _Scenario, assets: Any) -> str:
    """``details.assets``: a script writing each asset file to its target in the sandbox (base64
    here-documents, then ``chmod``); "" when there are none. Over MAX_ASSETS bytes is an error."""
    if not isinstance(assets, dict):
        return ""
    lines: list[str] = []
    total = 0
    for host, entries in assets.items():
        if host not in ASSET_HOSTS:
            s.warn(f"assets for '{host}' are not copied: imported labs have one node", "Use host01.", host)
            continue
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            entry = entry if isinstance(entry, dict) else {}
            s.unknown(entry, "details.assets[]", f"details.assets.{host}[{index}]")
            pattern, target = str(entry.get("file", "")), str(entry.get("target", "")).strip()
            files = _asset_files(s, pattern)
            if not files or not target:
                s.error(
                    f"details.assets.{host}[{index}] names no file of the scenario, or no target ({entry!r})",
                    'Write {"file": "name-in-assets/", "target": "/root"} and put the file in assets/.',
                    "file",
                    pattern,
                )
                continue
            target = re.sub(r"^~(?=/|$)", "/root", target).rstrip("/") or "/"
            for path, name in files:
                total += path.stat().st_size
                if total > MAX_ASSETS:
                    break
                dest = _shell_quote(f"{target}/{name}")
                encoded = base64.encodebytes(path.read_bytes()).decode()
                lines += [f'mkdir -p "$(dirname {dest})"', f"base64 -d > {dest} <<'{ASSET_MARK}'", encoded + ASSET_MARK]
                if entry.get("chmod"):
                    lines.append(f"chmod {_shell_quote(str(entry['chmod']))} {dest}")
    if total > MAX_ASSETS:
        s.error(
            f"the assets add up to {total} bytes, over the {MAX_ASSETS} bytes an imported lab may copy in",
            "Make them smaller, or have a setup script fetch or generate the big ones.",
            "assets",
        )
    return "".join(line + "\n" for line in lines)


def _drop_endless_waits(s: _Scenario, foreground: str, setups: str, number: int) -> str:
    """``foreground`` without its loops that wait for a file no setup (background script or asset)
    makes: typed into the reader's terminal, such a loop would hold it forever. Each one dropped is
    a warning. Loops on a file a setup names stay: the setup has run when the foreground is typed."""
    lines = foreground.splitlines()
    kept: list[str] = []
    skipping = False
    for line in lines:
        found = WAIT_LOOP.match(line)
        if found and "$" not in found.group(1) and found.group(1) not in setups:
            s.warn(
                f"step {number}'s foreground waits for {found.group(1)}, which no background script or asset "
                "makes; that wait would hold the terminal forever, so it is not typed",
                "Make the file in a background script (or drop the wait from the foreground script).",
                "foreground",
            )
            skipping = True
        if not skipping:
            kept.append(line)
        elif re.search(r"(^|[;\s])done\b", line):
            skipping = False
    return "\n".join(kept).strip()


def _reading_step(title: str, intro_text: str, language: str) -> StepSource:
    """The one step of an intro-only scenario: the intro's text, nothing to check (a "read" step)."""
    return StepSource(
        name="step1",
        titles={language: (title.strip() or "Introduction")[:200]},
        markdown={language: convert_markdown(intro_text)},
    )


def _uses_docker(steps: list[StepSource]) -> bool:
    """Whether any step's markdown, scripts or foreground command runs docker (or podman)."""
    return any(
        DOCKER_USE.search(text)
        for step in steps
        for text in (*step.markdown.values(), *step.scripts.values(), step.foreground)
    )


def _image(s: _Scenario, imageid: Any, uses_docker: bool) -> str:
    if not imageid:
        s.warn(f"backend.imageid is missing; using {DEFAULT_IMAGE}", "Set backend.imageid (e.g. ubuntu).", "backend")
        return DEFAULT_IMAGE
    image, warning = map_image(str(imageid), uses_docker)
    if warning:
        s.warn(warning, "Check the scenario's commands against the table in docs/labs.md.", "imageid")
    return image


def import_scenario(
    folder: Path, slug: str | None = None, language: str | None = None, image: str | None = None
) -> Lab:
    """Validate and load a Killercoda scenario folder as one Lab (origin ``killercoda``)."""
    return loader.save(read_scenario(folder, slug=slug, language=language, image=image))[0]
