"""``manage.py hosts``: the sandbox hosts of other machines the site places sessions on (docs/hosts.md).

``hosts list``                      each host: address, state, sandboxes and limit, live sessions, last answer
``hosts add NAME ADDRESS``          a host whose agent listens at ADDRESS (host:port); asked at once
``hosts drain NAME``                no new sessions there; its sessions live on
``hosts resume NAME``               new sessions there again
``hosts remove NAME``               forget it; refused while a session lives there (drain it first)
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from playground.hosts.models import HOST_NAME, NAME_RULE, SandboxHost
from playground.sandboxes import agentclient, queues, tasks
from playground.sandboxes.models import Session
from sandbox.wire import tls
from sandbox.wire.envparse import ConfigError
from sandbox.wire.protocol import AgentError

NAME_HELP = "the host's name: lowercase letters, digits and '-', as given to 'manage.py hostcerts host'"


class Command(BaseCommand):
    help = "List, add, drain, resume or remove the sandbox hosts of other machines (docs/hosts.md)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="each host and its state")
        add = actions.add_parser("add", help="a host whose agent listens at ADDRESS")
        add.add_argument("name", help=NAME_HELP)
        add.add_argument("address", help="host:port, PLAYGROUND_AGENT_LISTEN on that host")
        for action, words in (
            ("drain", "no new sessions there"),
            ("resume", "new sessions there again"),
            ("remove", "forget it"),
        ):
            actions.add_parser(action, help=words).add_argument("name", help=NAME_HELP)

    def handle(self, *args, action: str, **options) -> None:
        if action == "list":
            self._list()
        elif action == "add":
            self._add(options["name"], options["address"])
        else:
            host = SandboxHost.objects.filter(name=options["name"]).first()
            if host is None:
                raise CommandError(f"there is no sandbox host {options['name']!r}; 'manage.py hosts list' lists them")
            getattr(self, f"_{action}")(host)

    def _list(self) -> None:
        hosts = list(SandboxHost.objects.all())
        if not hosts:
            self.stdout.write("no sandbox host of another machine: every session runs on this machine")
            return
        for host in hosts:
            live = Session.objects.filter(host=host).exclude(state=Session.State.ENDED).count()
            seen = host.last_seen.isoformat(timespec="seconds") if host.last_seen else "never"
            missed = host.missed_since.isoformat(timespec="seconds") if host.missed_since else ""
            self.stdout.write(
                f"{host.name}\t{host.address}\t{host.state}\t{host.sandboxes}/{host.limit} sandboxes\t"
                f"{live} live session(s)\tlast answered {seen}"
                + (f"\tnot answering since {missed}: no new session goes there" if missed else "")
            )

    def _add(self, name: str, address: str) -> None:
        try:
            tls.parse_address(address, "ADDRESS")
        except ConfigError as exc:
            raise CommandError(str(exc))
        if SandboxHost.objects.filter(name=name).exists() or SandboxHost.objects.filter(address=address).exists():
            raise CommandError(f"a sandbox host named {name!r} or at {address} is already known; 'hosts list'")
        if not HOST_NAME.match(name):
            raise CommandError(f"{name!r} is not a host name: {NAME_RULE}")
        host = SandboxHost.objects.create(name=name, address=address)
        self._announce(name, added=True)
        try:
            agent = agentclient.client(host)
            warm = agent.call("warm")
            listed = agent.call("list")
        except AgentError as exc:
            self.stdout.write(
                f"added sandbox host {name} at {address}; it does not answer yet ({exc.message}): sessions go "
                "there once it does (the reaper asks every PLAYGROUND_REAPER_INTERVAL)"
            )
            return
        tasks.host_answered(host, int(warm["limit"]), len(listed["sandboxes"]), timezone.now())  # as the reaper does
        self.stdout.write(f"added sandbox host {name} at {address}: it answers, room for {warm['limit']} sandboxes")

    def _drain(self, host: SandboxHost) -> None:
        changed = self._mark(host, drained=True)
        self.stdout.write(
            f"sandbox host {host.name} is draining: no new sessions go there; its sessions live on"
            if changed
            else f"sandbox host {host.name} is lost; once it answers again it drains, taking no session"
        )

    def _resume(self, host: SandboxHost) -> None:
        changed = self._mark(host, drained=False)
        self.stdout.write(
            f"sandbox host {host.name} takes new sessions again"
            if changed
            else f"sandbox host {host.name} is lost; it takes new sessions once it answers again"
        )

    def _mark(self, host: SandboxHost, drained: bool) -> bool:
        """Record the operator's drain (or its end) and, unless the host is lost, its state now;
        whether the state changed (False: lost, it takes the drain's state once it answers)."""
        SandboxHost.objects.filter(pk=host.pk).update(drained=drained)
        state = SandboxHost.State.DRAINING if drained else SandboxHost.State.ACTIVE
        return bool(SandboxHost.objects.filter(pk=host.pk).exclude(state=SandboxHost.State.LOST).update(state=state))

    def _remove(self, host: SandboxHost) -> None:
        live = Session.objects.filter(host=host).exclude(state=Session.State.ENDED).count()
        if live:
            raise CommandError(
                f"sandbox host {host.name} still has {live} live session(s): drain it ('hosts drain "
                f"{host.name}') and remove it once they have ended"
            )
        Session.objects.filter(host=host).update(host=None)  # ended sessions keep their history, not the host
        host.delete()
        self._announce(host.name, added=False)
        self.stdout.write(f"sandbox host {host.name} removed")

    def _announce(self, name: str, added: bool) -> None:
        """Have the running workers take (or stop taking) the host's queue; say so if they cannot be told."""
        why = queues.announce([name], added=added)
        if why is not None:
            self.stdout.write(
                f"the workers cannot be told of {name}'s queue now ({why}); they take it at their next start"
            )
