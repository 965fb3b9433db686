"""``manage.py startup LABS``: what the launcher runs once the agent answers and before the web tier
starts, in one process (each Django start costs about 0.8 s on a 2-core host):

1. ``migrate``: the database's tables;
2. ``labs load LABS``: the shipped labs (docs/labs.md);
3. ``endsessions --reason host_lost --this-machine``: sessions an earlier run left on this machine
   have lost their sandboxes (the agent removed them as it started); other hosts' live on.

Each step's output is its own command's; the first that fails ends the command with its error.
"""

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

from playground.sandboxes.models import EndReason


class Command(BaseCommand):
    help = "Migrate, load the shipped labs and end this machine's sessions of an earlier run (the launcher's start)."

    def add_arguments(self, parser):
        parser.add_argument("labs", type=Path, help="the folder of the shipped labs")

    def handle(self, *args, labs: Path, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0, stdout=self.stdout, stderr=self.stderr)
        call_command("labs", "load", str(labs), stdout=self.stdout, stderr=self.stderr)
        call_command(
            "endsessions", reason=EndReason.HOST_LOST.value, this_machine=True, stdout=self.stdout, stderr=self.stderr
        )
