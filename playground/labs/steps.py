"""A lab's files beside lab.toml: each step's markdown per language and its scripts, the intro
and finish pages, and files that belong to no step.

A step is ``steps/<name>.<language>.md`` (starting with its ``# Title``) per language, and the
scripts ``steps/<name>.setup.sh``, ``.check.sh`` and ``.solve.sh`` shared by every language,
each syntax-checked (``sh -n``) and never run here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from playground.labs.metadata import StepSource
from playground.labs.problems import Reader, suggest

SCRIPTS = ("setup", "check", "solve")
MAX_SCRIPT = 64 * 1024  # bytes; the agent's run op takes at most 256 KiB
MAX_MARKDOWN = 256 * 1024


def syntax_check(r: Reader, path: Path, script: str, shell: str = "/bin/sh") -> None:
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


def read_step(r: Reader, step: StepSource, languages: list[str]) -> None:
    """Fill ``step`` with its title and markdown per language and its scripts; a missing check is a warning."""
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
                syntax_check(r, path, script)
                step.scripts[kind] = script
    if "check" not in step.scripts:
        r.warn(
            steps_dir / f"{step.name}.check.sh",
            None,
            f"step '{step.name}' has no check",
            "Add the script (exit 0 when the step is done; its output is the reader's hint).",
        )


def read_pages(r: Reader, languages: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The optional intro and finish pages per language: each in every language, or in none."""
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


def report_stray_files(r: Reader, steps: list[StepSource], languages: list[str]) -> None:
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
                f"{suggest(path.name, expected)}Rename it or list its step in lab.toml.",
            )
