"""``manage.py endsessions --reason shutdown``: end every live session and destroy its sandboxes.

Used by the launcher when it starts (reason ``host_lost``, ``--this-machine``: this machine's agent
removed whatever an earlier run left, while other sandbox hosts' sessions live on) and when it stops
(reason ``shutdown``). Viewers are told why.
"""

from django.core.management.base import BaseCommand

from playground.sandboxes import agentclient, events
from playground.sandboxes.models import EndReason, Instance, Session
from sandbox.wire.protocol import AgentError


class Command(BaseCommand):
    help = "End every session that is not ended yet, destroying its sandboxes."

    def add_arguments(self, parser):
        parser.add_argument("--reason", choices=[r.value for r in EndReason], default=EndReason.SHUTDOWN)
        parser.add_argument(
            "--this-machine", action="store_true", help="only the sessions on this machine's own agent (docs/hosts.md)"
        )

    def handle(self, *args, reason: str, this_machine: bool, **options) -> None:
        count = 0
        sessions = Session.objects.select_related("host").exclude(state=Session.State.ENDED)
        for session in sessions.filter(host=None) if this_machine else sessions:
            if session.claim_end(reason):
                events.session_ended(session.id, reason)
            left = 0
            for instance in session.instances.exclude(state=Instance.State.DESTROYED):
                try:
                    agentclient.of_session(session).call("destroy", id=instance.sandbox_id)
                except AgentError as exc:
                    self.stderr.write(f"could not destroy {instance.sandbox_id}: {exc.message}")
                    left += 1
                    continue
                Instance.objects.filter(pk=instance.pk).update(state=Instance.State.DESTROYED)
            if left:
                continue  # stays ENDING: the reaper (or the next start) retries its destruction
            Session.objects.filter(pk=session.pk).update(state=Session.State.ENDED)
            count += 1
        self.stdout.write(f"ended {count} session(s) ({reason})")
