"""``manage.py labs validate|load|import-killercoda``: check and load lab folders (docs/labs.md).

- ``validate FOLDER...``: every problem of every folder (a folder of labs checks each one),
  one per line as ``file:line: error|warning: what. What to do.``; exit 1 when there is an
  error, else 0 with ``ok``.
- ``load FOLDER...``: the same checks, then every lab is rendered and saved in one transaction
  (nothing is loaded when any folder has an error). Killercoda folders (``index.json``) load too.
- ``import-killercoda FOLDER [--slug S] [--language L] [--image I]``: one Killercoda scenario.
- ``import-pwd POST.md [--slug S] [--language L] [--image I]``: one Play with Docker training post.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from playground.labs import killercoda, loader, pwd
from playground.labs.metadata import LabSource
from playground.labs.problems import LabError, Problem


class Command(BaseCommand):
    help = "Validate and load lab folders, or import a Killercoda scenario (see docs/labs.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        validate = actions.add_parser("validate", help="check lab folders and report every problem")
        validate.add_argument("folders", nargs="+", type=Path)
        load = actions.add_parser("load", help="check, render and save lab folders")
        load.add_argument("folders", nargs="+", type=Path)
        imported = actions.add_parser("import-killercoda", help="load one Killercoda/Katacoda scenario")
        imported.add_argument("folder", type=Path)
        imported.add_argument("--slug", help="the lab's slug (default: from the folder's name)")
        imported.add_argument("--language", default="en", help="the scenario's language (default: en)")
        imported.add_argument("--image", help="our image to use, over the mapping of backend.imageid")
        post = actions.add_parser("import-pwd", help="load one Play with Docker training post (a .md file)")
        post.add_argument("folder", type=Path, metavar="post")
        post.add_argument("--slug", help="the lab's slug (default: from the file's name, without its date)")
        post.add_argument("--language", default="en", help="the post's language (default: en)")
        post.add_argument("--image", help="the image of every node (default: docker)")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action in ("import-killercoda", "import-pwd"):
            read = killercoda.read_scenario if action == "import-killercoda" else pwd.read_post
            self.import_one(read, options["folder"], options["slug"], options["language"], options["image"])
            return
        sources = self.read(options["folders"], "nothing was loaded" if action == "load" else "see above")
        if action == "load":
            with transaction.atomic():
                labs = [lab for source in sources for lab in loader.save(source)]
            for lab in labs:
                self.stdout.write(f"loaded {lab.slug} ({lab.language}): {lab.title}, {lab.steps.count()} step(s)")
        else:
            self.stdout.write(f"ok: {len(sources)} lab(s)")

    def read(self, roots: list[Path], outcome: str) -> list[LabSource]:
        """Every lab under ``roots``, validated; prints every problem, raises when there is an error."""
        sources, problems = loader.read_many(folder for root in roots for folder in self.folders(root))
        self.report(problems, outcome)
        return sources

    def folders(self, root: Path) -> list[Path]:
        found = loader.lab_folders(root)
        if not found:
            raise CommandError(f"{root}: no lab here (a lab folder has lab.toml, a Killercoda scenario index.json)")
        return found

    def report(self, problems: list[Problem], outcome: str = "nothing was loaded") -> None:
        for problem in problems:
            (self.stderr if not problem.warning else self.stdout).write(str(problem))
        errors = sum(not p.warning for p in problems)
        if errors:
            raise CommandError(f"{errors} error(s); {outcome}")

    def import_one(
        self, read: Callable[..., LabSource], path: Path, slug: str | None, language: str, image: str | None
    ) -> None:
        """Read one scenario or post with ``read``, print its problems, save it and say so."""
        try:
            source = read(path, slug=slug, language=language, image=image)
        except LabError as exc:
            self.report(exc.problems)
            raise
        self.report(source.problems)
        lab = loader.save(source)[0]
        self.stdout.write(
            f"imported {lab.slug} ({lab.language}): {lab.title}, {lab.steps.count()} step(s), image {lab.image}"
        )
