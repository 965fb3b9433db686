"""What is wrong with a lab, and where: the problems its reading collects, and the line of a key in lab.toml.

Reading a lab collects every problem it can find before giving up, each naming the file, the
line when it is knowable, what is wrong and what to do (a :class:`Problem`); errors among them
make a :class:`LabError`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

METADATA = "lab.toml"


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


class Reader:
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
        """The line of ``path`` in the lab.toml being read (see :func:`locate`)."""
        return locate(self.text, *path)

    def read_text(self, path: Path, limit: int) -> str | None:
        """The file's text; None (with an error) when it is unreadable, over ``limit`` bytes or not UTF-8."""
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


def suggest(word: str, choices: Iterable[str]) -> str:
    """A "Did you mean 'x'? " sentence for the choice closest to ``word``; empty when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"Did you mean '{close[0]}'? " if close else ""


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
