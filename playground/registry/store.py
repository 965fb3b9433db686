"""``python -m playground.registry.store``: the registry mirror's store, Debian's ``docker-registry``
(Distribution 2.8) on loopback, serving :func:`~playground.registry.paths.mirror_root`.

Two modes (docs/registry.md):

- **pull-through cache** (``proxy.remoteurl``) when PLAYGROUND_REGISTRY_UPSTREAM is a URL and its
  ``/v2/`` answers: what sandboxes pull is fetched from there once and kept; what the store already
  holds (the seeded images) is served when the upstream later refuses;
- **read-only** (``storage.maintenance.readonly``) when it is ``none``, or when the upstream does not
  answer at start: Distribution 2.8 asks the upstream's ``/v2/`` while starting and exits (a Go
  panic) if it cannot reach it, so an offline host would never serve its seeded images. This part
  then serves them read-only and asks the upstream again every ``RETRY_UPSTREAM`` seconds; once it
  answers, the store is started again as a cache (a gap of well under a second).

The same module runs the sessions' push registry (``python -m playground.registry.pushstore``,
part ``registry-push``): a writable ``docker-registry`` on its own loopback port and storage
(:func:`~playground.registry.paths.push_root`), deletes enabled, reached only through the front,
which checks every request (:mod:`playground.registry.push`).

Started by the launcher as the web user; it renders the configuration into the web user's
directory, runs ``docker-registry`` as its child (dying with it) and stops it on SIGTERM. Imports
only the standard library, :mod:`playground.config` and :mod:`playground.stopsignals`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playground import config as web_config
from playground.registry.paths import mirror_root, push_root
from playground.stopsignals import set_on_signals

log = logging.getLogger("playground.registry.store")

PROBE_TIMEOUT = 5.0  # seconds the upstream's /v2/ may take to answer at all
RETRY_UPSTREAM = 60.0  # seconds between asking an unreachable upstream again, serving read-only meanwhile
STOP_TIMEOUT = 10.0  # seconds docker-registry gets to stop after SIGTERM


@dataclass(frozen=True)
class StoreConfig:
    """What the store's configuration depends on."""

    root: Path  # the Distribution filesystem root (docker/registry/v2/... below it)
    address: str  # host:port on loopback
    upstream: str | None  # the pull-through cache's upstream; None: read-only
    writable: bool = False  # the sessions' push registry: written through the API, deletes enabled


def render_config(store: StoreConfig, secret: str) -> str:
    """The ``docker-registry`` configuration (YAML; the strings are JSON, which YAML reads) of ``store``.

    Deletes are off in both modes; a cache purges its abandoned uploads, a read-only store writes
    nothing. ``secret`` signs upload state, which only a cache's own fetches use.
    """
    q = json.dumps
    delete = "false"
    if store.writable:
        mode, delete = "", "true"
        maintenance = (
            "    uploadpurging:\n      enabled: true\n      age: 24h\n      interval: 1h\n      dryrun: false\n"
        )
    elif store.upstream:
        mode = f"proxy:\n  remoteurl: {q(store.upstream)}\n"
        maintenance = (
            "    uploadpurging:\n      enabled: true\n      age: 168h\n      interval: 24h\n      dryrun: false\n"
        )
    else:
        mode = ""
        maintenance = "    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: true\n"
    return (
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {q(str(store.root))}\n"
        f"  delete:\n    enabled: {delete}\n"
        f"  maintenance:\n{maintenance}"
        f"http:\n  addr: {q(store.address)}\n  secret: {q(secret)}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
        f"{mode}"
    )


def upstream_answers(upstream: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None if ``upstream``'s ``/v2/`` answers at all (any HTTP status: 401 is Docker Hub's), else why not."""
    try:
        with urllib.request.urlopen(upstream.rstrip("/") + "/v2/", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # an answer: the registry is there
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


class Store:
    """Runs ``docker-registry`` in the mode the upstream allows, until stopped."""

    def __init__(self, store: StoreConfig, config_path: Path) -> None:
        self.store = store
        self.config_path = config_path
        self.stopping = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, upstream: str | None) -> None:
        """Write the configuration for ``upstream`` (None: read-only) and start docker-registry."""
        cfg = StoreConfig(self.store.root, self.store.address, upstream, self.store.writable)
        self.config_path.write_text(render_config(cfg, secrets.token_hex(16)))
        self.config_path.chmod(0o600)
        mode = "writable" if cfg.writable else f"a pull-through cache of {upstream}" if upstream else "read-only"
        log.info("serving %s on %s, %s", self.store.root, self.store.address, mode)
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "--", "docker-registry", "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """SIGTERM to docker-registry, SIGKILL after STOP_TIMEOUT."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def run(self) -> int:
        """Serve until asked to stop (0), or until docker-registry exits by itself (its status)."""
        upstream = self.store.upstream
        waiting_for = None
        if upstream:
            why = upstream_answers(upstream)
            if why is not None:
                log.warning(
                    "the upstream %s does not answer (%s): serving the mirror's own images read-only, "
                    "asking it again every %.0f s",
                    upstream,
                    why,
                    RETRY_UPSTREAM,
                )
                waiting_for, upstream = upstream, None
        self.start(upstream)
        assert self.proc is not None
        while not self.stopping.wait(RETRY_UPSTREAM if waiting_for else 1.0):
            if self.proc.poll() is not None:
                log.error("docker-registry exited with status %s; see its lines above", self.proc.returncode)
                return self.proc.returncode or 1
            if waiting_for and upstream_answers(waiting_for) is None:
                log.info("the upstream %s answers now: starting the store again as its cache", waiting_for)
                self.stop()
                self.start(waiting_for)
                waiting_for = None
        self.stop()
        return 0


def store_settings(cfg: web_config.Config) -> StoreConfig:
    """The store of this host, from the web tier's settings."""
    return StoreConfig(mirror_root(cfg.data_dir), f"127.0.0.1:{cfg.registry_store_port}", cfg.registry_upstream)


def push_settings(cfg: web_config.Config) -> StoreConfig:
    """The sessions' push registry of this host."""
    return StoreConfig(push_root(cfg.data_dir), f"127.0.0.1:{cfg.registry_push_port}", None, writable=True)


def main(push: bool = False) -> int:
    """The mirror's store, or (``push``) the sessions' push registry, until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
    cfg = web_config.load()
    if push:
        store = Store(push_settings(cfg), cfg.web_dir / "registry-push.yml")
    else:
        store = Store(store_settings(cfg), cfg.web_dir / "registry-store.yml")
    set_on_signals(store.stopping, (signal.SIGTERM, signal.SIGINT))
    os.umask(0o022)
    return store.run()


if __name__ == "__main__":
    sys.exit(main())
