"""``manage.py hostcerts``: the certificates the site and the agents of other sandbox hosts show
each other (docs/hosts.md). Run on the web host, as root.

``hostcerts site``
    The authority (once; its key stays in PLAYGROUND_TLS_DIR on this host) and the site's client
    certificate, its key readable by the web user (PLAYGROUND_WEB_USER) as well as root; with
    PLAYGROUND_REGISTRY_HOSTS_LISTEN set, also the web host's server certificate for that address
    (the sandbox hosts' link to its registry front), its key the web user's too.
``hostcerts host NAME --address ADDRESS [--address ...] [--out DIR]``
    A sandbox host's server certificate, for the addresses the site dials it by, with a copy of
    the authority's certificate, in DIR (by default ``<PLAYGROUND_TLS_DIR>/hosts/NAME``): copy
    that directory to the host's PLAYGROUND_TLS_DIR.
"""

import os
import pwd
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from playground.hosts import certificates
from playground.hosts.models import HOST_NAME, NAME_RULE
from sandbox.wire import tls


class Command(BaseCommand):
    help = "Make the certificates of the site and of the sandbox hosts (docs/hosts.md)."

    def add_arguments(self, parser):
        kinds = parser.add_subparsers(dest="kind", required=True)
        kinds.add_parser(
            "site",
            help="the authority (once), the site's client certificate and, with PLAYGROUND_REGISTRY_HOSTS_LISTEN "
            "set, the web host's registry certificate for that address",
        )
        host = kinds.add_parser("host", help="a sandbox host's server certificate")
        host.add_argument("name", help="the host's name: lowercase letters, digits and '-'")
        host.add_argument("--address", action="append", required=True, help="an IP address or DNS name the site dials")
        host.add_argument("--out", type=Path, help="where to write it (default <PLAYGROUND_TLS_DIR>/hosts/<name>)")

    def handle(self, *args, kind: str, **options) -> None:
        tls_dir: Path = settings.PLAYGROUND.tls_dir
        try:
            if kind == "site":
                self._site(tls_dir)
            else:
                self._host(tls_dir, options["name"], options["address"], options["out"])
        except certificates.CertificateError as exc:
            raise CommandError(str(exc))

    def _site(self, tls_dir: Path) -> None:
        if certificates.make_authority(tls_dir):
            self.stdout.write(f"made the hosts' certificate authority in {tls_dir} (keep {tls.CA_KEY} here alone)")
        certificates.make_site(tls_dir)
        registry = self._registry(tls_dir)
        user = settings.PLAYGROUND.web_user
        if os.geteuid() == 0:
            try:
                web = pwd.getpwnam(user)
            except KeyError:
                self.stderr.write(
                    f"no user {user} yet: the site's keys are root's until the site's first start gives them to {user}"
                )
            else:
                certificates.give_site_keys(tls_dir, web.pw_uid, web.pw_gid)
        self.stdout.write(f"made the site's certificate {tls_dir / tls.SITE_CERT}")
        if registry is not None:
            self.stdout.write(
                f"made the web host's registry certificate {tls_dir / tls.REGISTRY_CERT} for {registry}, "
                "where the sandbox hosts' registry fronts pass the sessions' pushes"
            )

    def _registry(self, tls_dir: Path) -> str | None:
        """With PLAYGROUND_REGISTRY_HOSTS_LISTEN set, the web host's certificate for it; its address."""
        listen = settings.PLAYGROUND.registry_hosts_listen
        if listen is None:
            return None
        address = listen[0]
        if address in ("0.0.0.0", "::", ""):
            raise CommandError(
                f"PLAYGROUND_REGISTRY_HOSTS_LISTEN listens on {address or 'every address'}: give it the web "
                "host's address on the private network, the one the sandbox hosts dial (e.g. 10.0.0.1:5053)"
            )
        certificates.make_registry(tls_dir, address)
        return address

    def _host(self, tls_dir: Path, name: str, addresses: list[str], out: Path | None) -> None:
        if not HOST_NAME.match(name):
            raise CommandError(f"{name!r} is not a host name: {NAME_RULE}")
        out = out or tls_dir / "hosts" / name
        certificates.make_host(tls_dir, out, name, addresses)
        self.stdout.write(
            f"made host {name}'s certificate for {', '.join(addresses)} in {out}: copy {tls.CA_CERT}, "
            f"{tls.AGENT_CERT} and {tls.AGENT_KEY} to that host's PLAYGROUND_TLS_DIR"
        )
