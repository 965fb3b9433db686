"""``manage.py instructor add <username> [--password-stdin]`` and ``manage.py instructor list``.

An instructor is a Django staff user: they sign in at /accounts/login/ and run workshops at
/workshops/ (docs/workshops.md)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Add an instructor (a staff user who runs workshops), or list them."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="create an instructor")
        add.add_argument("username")
        add.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input's first line"
        )
        actions.add_parser("list", help="list the instructors")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "add":
            self.add(options["username"], options["password_stdin"])
        else:
            self.list()

    def add(self, username: str, from_stdin: bool) -> None:
        """Create the staff user ``username``; a CommandError (exit 1) when the name is taken or the
        password is empty or mistyped."""
        users = get_user_model()
        username = username.strip()
        if not username:
            raise CommandError("The user name is empty; give a name such as 'alice'.")
        if users.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} already exists; choose another name.")
        password = self.read_password(from_stdin)
        users.objects.create_user(username=username, password=password, is_staff=True)
        self.stdout.write(f"Instructor {username!r} created; they sign in at /accounts/login/.")

    def read_password(self, from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("The two passwords differ; run the command again.")
        if not password:
            raise CommandError("The password is empty; give one (on standard input with --password-stdin).")
        return password

    def list(self) -> None:
        instructors = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
        for user in instructors:
            mark = " (superuser)" if user.is_superuser else ""
            self.stdout.write(f"{user.get_username()}{mark}")
        if not instructors:
            self.stdout.write("No instructors yet; add one with: manage.py instructor add <username>")
