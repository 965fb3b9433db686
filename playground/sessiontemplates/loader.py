"""Reading and validating session templates: ``<name>.toml`` files in PLAYGROUND_TEMPLATES_DIR.

The format is described in docs/templates.md: ``title`` and ``description``, words for people,
are each one string (English) or a table of languages (:class:`Localized`). Reading a file
collects every problem it can find (each a :class:`~playground.labs.problems.Problem`: the file,
the line when knowable, what is wrong and what to do) before giving up with :class:`TemplateError`.
``available()`` reads the directory again only when a file in it changed, so the API may call it
on every request.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from playground.i18n import DEFAULT_LANGUAGE, LANGUAGES
from playground.labs.problems import Problem

log = logging.getLogger("playground.templates")

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a template's name: its file's name without .toml
TOP_KEYS = ("title", "description", "image", "timeout", "prelude", "nodes")
NODE_KEYS = ("role", "count", "image", "setup")
MAX_NODES = 100  # a template's nodes; PLAYGROUND_MAX_NODES bounds what a start may use
MAX_TIMEOUT = 300  # seconds one node's setup may run (the agent's own bound for a script)
DEFAULT_TIMEOUT = 60
MAX_SCRIPT = 64 * 1024  # bytes of one setup script


@dataclass(frozen=True)
class Localized:
    """Words for people in each language they are written in: ``(language, text)`` pairs, English
    always among them (its text empty for an optional one the file leaves out)."""

    texts: tuple[tuple[str, str], ...]

    def in_language(self, language: str) -> str:
        """The text in ``language`` (one of playground.i18n.LANGUAGES), else the English one."""
        texts = dict(self.texts)
        return texts.get(language) or texts[DEFAULT_LANGUAGE]


@dataclass(frozen=True)
class NodeSpec:
    """One node of a template: its role (a word for people), image (None: the template's or the
    host's default) and setup script (empty: none)."""

    role: Localized
    image: str | None
    setup: str


@dataclass(frozen=True)
class Template:
    """A validated template: its nodes in order (node1 first), each group of ``count`` expanded, and
    its prelude (empty: none), the shell every node's setup script starts with."""

    name: str
    title: Localized
    description: Localized
    timeout: int
    nodes: tuple[NodeSpec, ...]
    prelude: str = ""

    def script_of(self, node: NodeSpec) -> str:
        """What ``node``'s setup runs: the prelude, then its own script; empty when it has none."""
        if not node.setup:
            return ""
        return f"{self.prelude.rstrip()}\n{node.setup}" if self.prelude.strip() else node.setup

    def images(self, default: str) -> list[str]:
        """Each node's image, ``default`` where the template names none."""
        return [node.image or default for node in self.nodes]


class TemplateError(Exception):
    """A template file that cannot be used; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def read_template(path: Path) -> Template:
    """Read and validate one template file; raises :class:`TemplateError` listing every problem."""
    problems: list[Problem] = []

    def problem(message: str, fix: str, key: str | None = None) -> None:
        problems.append(Problem(path, _line_of(text, key) if key else None, message, fix))

    text = ""
    name = path.stem
    if not NAME.match(name):
        problem(
            f"the name {name!r} is not a template name",
            "Name the file with lowercase letters, digits and dashes, such as swarm-3m2w.toml.",
        )
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError([Problem(path, None, f"cannot read it: {exc}", "Make it a readable UTF-8 text file.")])
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise TemplateError(
            [
                Problem(
                    path,
                    int(found.group(1)) if found else None,
                    f"TOML syntax error: {exc}",
                    "Fix the syntax (strings need quotes; see docs/templates.md).",
                )
            ]
        )
    for key in sorted(set(data) - set(TOP_KEYS)):
        problem(f"unknown key {key!r}", f"Use only {', '.join(TOP_KEYS)} (see docs/templates.md).", key)
    title = _localized(data, "title", problem, required=True)
    description = _localized(data, "description", problem)
    image = _string(data, "image", problem) or None
    timeout = data.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT:
        problem(f"timeout = {timeout!r} is not a number of seconds", f"Use 1 to {MAX_TIMEOUT}.", "timeout")
        timeout = DEFAULT_TIMEOUT
    prelude = _string(data, "prelude", problem)
    nodes = _read_nodes(data.get("nodes"), image, len(prelude.encode()), problem)
    if problems:
        raise TemplateError(problems)
    return Template(name, title, description, timeout, tuple(nodes), prelude)


def _read_nodes(groups: Any, image: str | None, prelude_bytes: int, problem: Any) -> list[NodeSpec]:
    """The ``[[nodes]]`` groups expanded into one NodeSpec per node (problems reported); a group's
    setup script and the template's prelude (``prelude_bytes`` long) are at most MAX_SCRIPT bytes."""
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        problem("there are no [[nodes]]", "Add at least one [[nodes]] table (see docs/templates.md).", "nodes")
        return []
    nodes: list[NodeSpec] = []
    for number, group in enumerate(groups, 1):
        where = f"[[nodes]] number {number}"
        for key in sorted(set(group) - set(NODE_KEYS)):
            problem(f"{where} has an unknown key {key!r}", f"Use only {', '.join(NODE_KEYS)}.", key)
        count = group.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_NODES:
            problem(f"{where}: count = {count!r} is not a number of nodes", f"Use 1 to {MAX_NODES}.", "count")
            count = 1
        setup = _string(group, "setup", problem)
        if setup and len(setup.encode()) + prelude_bytes > MAX_SCRIPT:
            together = " with the prelude" if prelude_bytes else ""
            problem(
                f"{where}: the setup script{together} is longer than {MAX_SCRIPT} bytes", "Make it shorter.", "setup"
            )
        role = _localized(group, "role", problem)
        if not role.in_language(DEFAULT_LANGUAGE):
            role = Localized(((DEFAULT_LANGUAGE, "node"),))
        spec = NodeSpec(role, _string(group, "image", problem) or image, setup)
        nodes += [spec] * count
    if len(nodes) > MAX_NODES:
        problem(f"the template has {len(nodes)} nodes", f"Use at most {MAX_NODES}.", "nodes")
    return nodes


def _string(data: dict[str, Any], key: str, problem: Any, required: bool = False) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problem(f"{key} must be a string" + (" and is required" if required else ""), f'Write {key} = "...".', key)
        return ""
    return value


def _localized(data: dict[str, Any], key: str, problem: Any, required: bool = False) -> Localized:
    """``title``, ``description`` or a node's ``role``: one string (English), or a table of language codes of
    playground.i18n.LANGUAGES to texts, English among them (problems reported)."""
    value = data.get(key)
    if not isinstance(value, dict):
        return Localized(((DEFAULT_LANGUAGE, _string(data, key, problem, required)),))
    example = f'{key} = {{ en = "...", ko = "..." }}'
    for code in sorted(set(value) - set(LANGUAGES)):
        problem(
            f"{key} has a text in {code!r}, which is not one of Playground's languages ({', '.join(LANGUAGES)})",
            f"Use only those codes as the table's keys, as in {example}.",
            key,
        )
    if DEFAULT_LANGUAGE not in value:
        problem(f"{key} has no English text", f'Add en = "..." to it, as in {example}: English is required.', key)
    texts: list[tuple[str, str]] = []
    for code in LANGUAGES:
        text = value.get(code)
        if code in value and (not isinstance(text, str) or not text.strip()):
            problem(f"{key}.{code} must be a non-empty string", f'Write {code} = "..." or leave it out.', key)
        elif isinstance(text, str):
            texts.append((code, text))
    return Localized(tuple(texts))


def _line_of(text: str, key: str) -> int | None:
    """The line where ``key = `` (or ``key.<language> =``, ``[key]``, ``[[key]]``) first appears,
    for the problem's location."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith((f"[[{key}]]", f"[{key}]")) or re.match(rf"{re.escape(key)}\s*[.=]", stripped):
            return number
    return None


def template_files(directory: Path) -> list[Path]:
    """The directory's ``*.toml`` files, sorted (none when it does not exist or cannot be read,
    which is logged: a start or the menu must not fail on it)."""
    try:
        return sorted(directory.glob("*.toml")) if directory.is_dir() else []
    except OSError as exc:
        log.error("cannot read the templates directory %s: %s", directory, exc)
        return []


def read_all(directory: Path) -> tuple[dict[str, Template], list[Problem]]:
    """Every template of the directory that reads well, by name, and the problems of the others."""
    found: dict[str, Template] = {}
    problems: list[Problem] = []
    for path in template_files(directory):
        try:
            template = read_template(path)
        except TemplateError as exc:
            problems += exc.problems
            continue
        found[template.name] = template
    return found, problems


_cache: tuple[tuple[object, ...], dict[str, Template]] = ((), {})


def available() -> dict[str, Template]:
    """The good templates of PLAYGROUND_TEMPLATES_DIR by name, read again when a file changed.
    A bad file is left out (``python manage.py check_templates`` lists its problems)."""
    global _cache
    directory = settings.PLAYGROUND.templates_dir
    try:
        stamp = (str(directory), *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in template_files(directory)))
    except OSError:  # a file removed or made unreadable meanwhile: read everything again
        stamp = ()
    if stamp != _cache[0]:
        _cache = (stamp, read_all(directory)[0])
    return _cache[1]
