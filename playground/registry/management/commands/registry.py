"""``manage.py registry seed|import|list``: fill the registry mirror's storage and show it (docs/registry.md).

- ``seed [NAME ...] [--force] [--mirror URL]``: build the seminar's images here from Debian
  packages (hello-world, busybox, debian, httpd, nginx; all by default) and push those not up to
  date as ``library/<name>:<tag>``. Needs root for debian, httpd and nginx (debootstrap).
- ``import ARCHIVE ...``: every tag of ``docker save`` archives, pushed under its Docker Hub name.
- ``list``: each repository of the mirror, its tags, size and whether it was seeded or imported.

Errors end the command with status 1 and a line saying what to do.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.registry import building, distribution, seeding
from playground.registry.paths import mirror_root
from sandbox.wire.envparse import ConfigError, env_path


class Command(BaseCommand):
    help = "Seed the registry mirror with images built here, import docker save archives, or list it."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        seed = actions.add_parser("seed", help="build the seminar's images from Debian packages and push them")
        seed.add_argument(
            "names", nargs="*", metavar="NAME", help=f"seeds to build (default all: {', '.join(seeding.BY_NAME)})"
        )
        seed.add_argument("--force", action="store_true", help="build and push even when up to date")
        seed.add_argument("--mirror", default="", help="Debian mirror URL (default: the one apt uses here)")
        imported = actions.add_parser("import", help="push every tag of docker save archives into the mirror")
        imported.add_argument("archives", nargs="+", type=Path, metavar="ARCHIVE")
        actions.add_parser("list", help="what the mirror holds")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        data_dir: Path = settings.PLAYGROUND.data_dir
        root = mirror_root(data_dir)
        started = time.monotonic()
        try:
            if action == "seed":
                cache = env_path(os.environ, "PLAYGROUND_IMAGE_CACHE", data_dir / "cache")
                seeder = seeding.Seeder(root, cache, self.say, options["mirror"], options["force"])
                seeder.run(seeding.select(options["names"]))
                self.say(f"seeded {root} in {time.monotonic() - started:.1f} s")
            elif action == "import":
                seeding.import_archives(options["archives"], root, self.say)
            else:
                self.list(root)
        except (seeding.SeedError, building.BuildError, distribution.RegistryError, ConfigError) as exc:
            raise CommandError(str(exc)) from None

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def list(self, root: Path) -> None:
        rows = seeding.listing(root)
        if not rows:
            self.say(f"the mirror ({root}) holds no image yet: manage.py registry seed")
            return
        self.say(f"{'NAME':<28} {'TAGS':<24} {'SIZE':>10}  ORIGIN")
        for row in rows:
            self.say(f"{row.name:<28} {','.join(row.tags):<24} {row.size / 2**20:>8.1f}MB  {row.origin}")
