"""``manage.py endsessions --reason shutdown``: end every live session and destroy its sandboxes.

Used by the launcher when it starts (reason ``host_lost``: the agent removed whatever an
earlier run left) and when it stops (reason ``shutdown``). Viewers are told why.
"""

from django.core.management.base import BaseCommand

from playground.sandboxes import events
from playground.sandboxes.agentclient import client
from playground.sandboxes.models import EndReason, Instance, Session
from sandbox.wire.protocol import AgentError


class Command(BaseCommand):
    help = "End every session that is not ended yet, destroying its sandboxes."

    def add_arguments(self, parser):
        parser.add_argument("--reason", choices=[r.value for r in EndReason], default=EndReason.SHUTDOWN)

    def handle(self, *args, reason: str, **options) -> None:
        agent = client()
        count = 0
        for session in Session.objects.exclude(state=Session.State.ENDED):
            if session.claim_end(reason):
                events.session_ended(session.id, reason)
            left = 0
            for instance in session.instances.exclude(state=Instance.State.DESTROYED):
                try:
                    agent.call("destroy", id=instance.sandbox_id)
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
