"""Importing a Play with Docker training post: one Jekyll markdown file of
github.com/play-with-docker/play-with-docker.github.io (``_posts/*.md``).

What is read:

- the front matter between ``---`` lines: ``title``, ``tags`` (the lab's tags), ``categories``
  (its difficulty: beginner, intermediate or advanced), ``terms`` (how many nodes, each of the
  ``docker`` image); ``layout``, ``date``, ``author``, ``img``, ``excerpt`` are known and unused,
  any other key is a warning;
- the body, split at its ``##`` headings (``#`` when it has none): the text before the first
  heading is the intro page, each heading a step (its title) with the text under it. Every step
  is a reading (the posts have no checks), so each counts as read.
- ```` ```.termN ```` blocks become run blocks typing into node N (```` ```sh run nodeN ````;
  plain ```` ```sh run ```` for a post of one terminal); other fences stay copy blocks;
- a published-port link, ``[text](/){:data-term=".term1"}{:data-port="80"}``, becomes our port
  link ``[text](port:node1:80)`` (``port:80``, the node on screen, in a post of one terminal);
- Liquid (``{% ... %}``, ``{{ ... }}``) and kramdown attribute lists (``{: ...}``, ``{:toc}``)
  are removed, each kind with one warning.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from playground.labs import loader, metadata
from playground.labs.metadata import LabSource, StepSource
from playground.labs.models import Lab
from playground.labs.problems import LabError, Problem, Reader
from playground.labs.steps import MAX_MARKDOWN

IMAGE = "docker"
KNOWN_KEYS = {"title", "tags", "categories", "terms", "layout", "date", "author", "img", "excerpt"}
JEKYLL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}-")
TERM_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*\.term(\d+)\s*$")
PORT_LINK = re.compile(
    r"\[([^\]]*)\]\([^)]*\)\{:\s*data-term=\"\.term(\d+)\"\s*\}\{:\s*data-port=\"(\d+)\"\s*\}"
    r"|\[([^\]]*)\]\([^)]*\)\{:\s*data-port=\"(\d+)\"\s*\}\{:\s*data-term=\"\.term(\d+)\"\s*\}"
)
# (what, pattern): leftovers removed from the markdown, each kind reported once.
LEFTOVERS = (
    ("a kramdown table of contents ('* TOC' and '{:toc}')", re.compile(r"^\s*[*-]\s*TOC\s*\n\s*\{:toc\}\s*$", re.M)),
    ("Liquid tags ({% ... %})", re.compile(r"\{%-?.*?-?%\}", re.S)),
    ("Liquid expressions ({{ ... }})", re.compile(r"\{\{.*?\}\}", re.S)),
    ("kramdown attribute lists ({: ...})", re.compile(r"\{:[^}\n]*\}")),
)
RAW = re.compile(r"\{%-?\s*(end)?raw\s*-?%\}")
HEADING = re.compile(r"^(#{1,2})\s+(.+?)\s*#*\s*$")


class _Post:
    """One post being read: its path, text and the problems found."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.reader = Reader(path.parent)
        self.reader.problems = self.problems
        self.text = ""

    def line_of(self, needle: str) -> int | None:
        at = self.text.find(needle)
        return self.text[:at].count("\n") + 1 if at >= 0 else None

    def warn(self, message: str, fix: str, needle: str = "") -> None:
        self.problems.append(Problem(self.path, self.line_of(needle) if needle else None, message, fix, True))

    def error(self, message: str, fix: str, needle: str = "") -> None:
        self.problems.append(Problem(self.path, self.line_of(needle) if needle else None, message, fix))


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The front matter's keys (strings, or lists for ``[a, b]`` and ``- a`` items) and the body."""
    found = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if not found:
        return {}, text
    data: dict[str, Any] = {}
    key = ""
    for line in found.group(1).splitlines():
        item = re.match(r"^\s*-\s+(.*)$", line)
        if item and key:
            data[key] = [*(data[key] if isinstance(data.get(key), list) else []), _unquote(item.group(1))]
            continue
        pair = re.match(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$", line)
        if not pair:
            continue
        key, value = pair.group(1), pair.group(2).strip()
        listed = re.match(r"^\[(.*)\]$", value)
        data[key] = [_unquote(v) for v in listed.group(1).split(",") if v.strip()] if listed else _unquote(value)
    return data, text[found.end() :]


def _unquote(value: str) -> str:
    value = value.strip()
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'" else value


def convert_markdown(p: _Post, text: str, terms: int) -> str:
    """A post's markdown to ours: term blocks as run blocks, port links as lines, leftovers gone."""
    text = _without_leftovers(p, PORT_LINK.sub(lambda m: _port_line(m, terms), text))
    out = []
    for line in text.splitlines():
        fence = TERM_FENCE.match(line)
        if fence:
            node = int(fence.group(3))
            if node > terms:
                p.warn(
                    f"a block types into terminal {node} but the post has terms: {terms}",
                    f"Set terms: {node} in the front matter; it runs on node1 meanwhile.",
                    line.strip(),
                )
                node = 1
            line = f"{fence.group(1)}{fence.group(2)}sh run" + (f" node{node}" if terms > 1 else "")
        out.append(line)
    return "\n".join(out).strip() + "\n"


def _without_leftovers(p: _Post, text: str) -> str:
    """``text`` without LEFTOVERS outside code blocks (each kind warned once); inside them only
    ``{% raw %}`` and ``{% endraw %}`` go, so ``docker ps --format '{{.Names}}'`` stays."""
    lines = text.splitlines()
    outside = _outside_code(lines)
    chunks: list[tuple[bool, list[str]]] = []
    for line, out in zip(lines, outside, strict=True):
        if chunks and chunks[-1][0] == out:
            chunks[-1][1].append(line)
        else:
            chunks.append((out, [line]))
    warned: set[str] = set()
    result = []
    for out, chunk in chunks:
        part = "\n".join(chunk)
        for what, pattern in LEFTOVERS if out else ():
            found = pattern.search(part)
            if found and what not in warned:
                warned.add(what)
                p.warn(f"{what} removed", "Nothing to do; check the step reads well without them.", found.group())
            part = pattern.sub("", part)
        result.append(part if out else RAW.sub("", part))
    return "\n".join(result)


def _port_line(found: re.Match[str], terms: int) -> str:
    text, node, port = (
        (found.group(1), found.group(2), found.group(3))
        if found.group(1) is not None
        else (
            found.group(4),
            found.group(6),
            found.group(5),
        )
    )
    target = f"node{node}:" if terms > 1 and int(node) <= terms else ""
    return f"[{text.strip() or f'Open port {port}'}](port:{target}{port})"


def _sections(body: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first heading, and (title, text) per heading of the level used."""
    lines = body.splitlines()
    outside_code = _outside_code(lines)
    levels = [len(m.group(1)) for i, line in enumerate(lines) if outside_code[i] and (m := HEADING.match(line))]
    level = 2 if 2 in levels else 1
    intro: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for i, line in enumerate(lines):
        found = HEADING.match(line) if outside_code[i] else None
        if found and len(found.group(1)) == level:
            sections.append((found.group(2), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            intro.append(line)
    return "\n".join(intro).strip(), [(title, "\n".join(text).strip()) for title, text in sections]


def _outside_code(lines: list[str]) -> list[bool]:
    """For each line, whether it is outside a fenced code block."""
    inside, result = False, []
    for line in lines:
        fence = re.match(r"^\s*(```|~~~)", line)
        result.append(not inside and not fence)
        inside = inside != bool(fence)
    return result


def _difficulty(p: _Post, value: Any) -> str:
    words = value if isinstance(value, list) else [value] if value else []
    for word in words:
        if str(word).lower() in metadata.DIFFICULTIES:
            return str(word).lower()
    if words:
        p.warn(
            f"the categories {words!r} name no difficulty; using beginner", "Add beginner, intermediate or advanced."
        )
    return Lab.Difficulty.BEGINNER


def _terms(p: _Post, value: Any) -> int:
    if value in (None, ""):
        return 1
    if not str(value).isdigit() or not 1 <= int(value) <= metadata.MAX_NODES:
        p.error(f"terms: {value!r} is not a number of terminals", "Write e.g. terms: 2.", "terms:")
        return 1
    return int(value)


def read_post(path: Path, slug: str | None = None, language: str | None = None, image: str | None = None) -> LabSource:
    """A training post as a one-language LabSource; raises LabError on errors (warnings kept)."""
    path = Path(path)
    language = language or "en"
    p = _Post(path)
    if not path.is_file():
        raise LabError([Problem(path, None, "there is no such post", "Point the import at a post's .md file.")])
    p.text = p.reader.read_text(path, MAX_MARKDOWN) or ""
    data, body = front_matter(p.text)
    if not data:
        p.error("the post has no front matter", "Start it with ---, title: ..., --- lines.")
    for key in sorted(set(data) - KNOWN_KEYS):
        p.warn(f"the front matter key '{key}' is not supported and is ignored", "Nothing to do.", f"{key}:")
    title = str(data.get("title") or "").strip()
    if not title:
        p.error("the post has no title", "Add title: ... to its front matter.", "---")
    if not metadata.LANGUAGE.match(language):
        p.error(f"the language {language!r} is not valid", f"Pass --language with {metadata.LANGUAGE_FIX}")
    terms = _terms(p, data.get("terms"))
    intro, sections = _sections(convert_markdown(p, body, terms))
    if not sections:
        p.error("the post has no headings to make steps of", "Start each step with a '## Title' line.")
    steps = [
        StepSource(name=f"step{i}", titles={language: t[:200]}, markdown={language: text + "\n"})
        for i, (t, text) in enumerate(sections, 1)
    ]
    if steps:
        p.warn("the post has no checks: each step counts as read", "Nothing to do (or write the lab as a lab folder).")
    slug = slug or re.sub(r"[^a-z0-9]+", "-", JEKYLL_DATE.sub("", path.stem).lower()).strip("-")[:80]
    if not metadata.SLUG.match(slug or ""):
        p.error(f"the slug {slug!r} is not valid", "Pass --slug with lower-case letters, digits and dashes.")
    if any(not problem.warning for problem in p.problems):
        raise LabError(p.problems)
    tags: list[str] = data["tags"] if isinstance(data.get("tags"), list) else []
    chosen = image or IMAGE
    return LabSource(
        folder=path,
        slug=slug,
        languages=[language],
        titles={language: title[:200]},
        summaries={language: str(data.get("excerpt") or "").strip()},
        image=chosen,
        duration=15,
        difficulty=_difficulty(p, data.get("categories")),
        tags=["play-with-docker", *[t.lower() for t in tags if metadata.TAG.match(t.lower())]],
        steps=steps,
        intro={language: intro + "\n"} if intro else {},
        origin=Lab.Origin.PWD,
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
        problems=p.problems,
        nodes=[chosen] * terms if terms > 1 else [],
    )


def import_post(path: Path, slug: str | None = None, language: str | None = None, image: str | None = None) -> Lab:
    """Validate and load a Play with Docker training post as one Lab (origin ``pwd``)."""
    return loader.save(read_post(path, slug=slug, language=language, image=image))[0]
