"""``manage.py templates [validate] [DIRECTORY]``: check session templates (docs/templates.md).

Reads every ``*.toml`` of the directory (default: PLAYGROUND_TEMPLATES_DIR) and prints every
problem, one per line as ``file:line: error: what. What to do.``; exit 1 when there is one, else
``ok`` with the templates' names. Templates are read from disk by the web tier itself (a bad file
is left out of the menu), so there is nothing to load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.sessiontemplates.loader import read_all


class Command(BaseCommand):
    help = "Check the session templates of a directory (default: PLAYGROUND_TEMPLATES_DIR; see docs/templates.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", nargs="?", type=Path, help="a directory of <name>.toml templates")

    def handle(self, *args: Any, directory: Path | None = None, **options: Any) -> None:
        folder = directory or settings.PLAYGROUND.templates_dir
        templates, problems = read_all(folder)
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the templates of {folder}")
        names = ", ".join(sorted(templates)) or "none"
        self.stdout.write(f"ok: {len(templates)} template(s) in {folder}: {names}")
