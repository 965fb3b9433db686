"""The launcher itself: starts every part in order, watches them, restarts the ones that die, and stops
them all in reverse order, ending the sessions while the web tier can still tell viewers."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from playground import config
from playground.hosts import certificates
from playground.launcher import commands
from playground.launcher.checks import (
    LaunchError,
    check_traversable,
    http_answers,
    redis_answers,
    socket_answers,
    user_exists,
)
from playground.launcher.supervision import STOP_TIMEOUT, Child, RestartPolicy, Restarts, say
from playground.registry.paths import hosts_authority, mirror_root, push_root
from sandbox.wire import tls
from sandbox.wire.shared_settings import keeper_socket

BEAT_STOP_TIMEOUT = 5.0  # beat keeps nothing worth waiting for; a hung beat is killed sooner


def own_tree(top: Path, uid: int, gid: int) -> None:
    """Make ``top`` and everything below it (no symbolic link followed) owned by ``uid:gid``."""
    for dirpath, dirs, files in os.walk(top):
        for name in [dirpath, *(os.path.join(dirpath, f) for f in [*dirs, *files])]:
            st = os.lstat(name)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.lchown(name, uid, gid)


class Launcher:
    """The parts of one Playground host, started as root (keeper, agent, Redis) or as the web user."""

    def __init__(self, cfg: config.Config, policy: RestartPolicy | None = None) -> None:
        self.cfg = cfg
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self.web = pwd.getpwnam(cfg.web_user) if user_exists(cfg.web_user) else None
        self.policy = policy or RestartPolicy()
        self.restarts: dict[str, Restarts] = {}
        self.migrated = False  # whether startup ran: the database has its tables (sessions can be ended)
        self.web_socket: socket.socket | None = None  # the web processes' shared one (PLAYGROUND_WEB_PROCESSES > 1)
        self.passed_fds: dict[str, tuple[int, ...]] = {}  # descriptors a part is started with, by its name

    # -- starting -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start every part in order, each once the one it needs answers; LaunchError if one cannot.
        A sandbox host (PLAYGROUND_ROLE=sandbox-host) starts the keeper and the agent alone."""
        if self.cfg.role == "sandbox-host":
            self.start_sandbox_host()
            return
        self.prepare_user_and_dirs()
        self.ensure_redis()
        self.start_agent()
        # migrate, the shipped labs (docs/labs.md), and this machine's sessions of an earlier run
        # ended as host_lost, in one Django process
        self.manage("startup", str(config.REPO_DIR / "labs"))
        self.migrated = True
        self.start_registry()
        self.start_web()
        self.spawn("ports", commands.ports())
        self.spawn("worker", commands.worker(self.cfg.worker_concurrency))
        self.spawn("beat", commands.beat(self.cfg.web_dir / "celerybeat-schedule"), stop_timeout=BEAT_STOP_TIMEOUT)
        self.wait_for(lambda: http_answers(f"{self.url()}api/schema/"), "the web server", 60)
        self.wait_for(lambda: http_answers(self.url(self.cfg.ports_port) + "ports/ready"), "the port proxy", 30)
        store = f"http://127.0.0.1:{self.cfg.registry_store_port}/v2/"
        self.wait_for(lambda: http_answers(store), "the registry mirror's store", 30)
        pushes = f"http://127.0.0.1:{self.cfg.registry_push_port}/v2/"
        self.wait_for(lambda: http_answers(pushes), "the sessions' push registry", 30)

    def start_web(self) -> None:
        """Daphne: one process on PLAYGROUND_BIND:PLAYGROUND_PORT, or PLAYGROUND_WEB_PROCESSES of them
        accepting on one socket the launcher listens on and keeps (so a restarted one takes it up
        again): ``daphne``, ``daphne-2``, ... Each visitor's requests and websockets go to whichever
        accepts them; everything they share is in the database and Redis."""
        if self.cfg.web_processes == 1:
            self.spawn("daphne", commands.daphne(self.cfg.bind, self.cfg.port))
            return
        try:
            self.web_socket = socket.create_server((self.cfg.bind, self.cfg.port), family=socket.AF_INET, backlog=1024)
        except OSError as exc:
            raise LaunchError(
                f"cannot listen on {self.cfg.bind}:{self.cfg.port} for the web server ({exc.strerror}); "
                "is another server using that port? Set PLAYGROUND_PORT to a free one."
            ) from None
        self.web_socket.set_inheritable(True)
        fd = self.web_socket.fileno()
        for number in range(1, self.cfg.web_processes + 1):
            name = "daphne" if number == 1 else f"daphne-{number}"
            self.passed_fds[name] = (fd,)
            self.spawn(name, commands.daphne_on(fd))

    def start_sandbox_host(self) -> None:
        """The keeper and the agent, which serves the site of another machine, and the registry
        mirror its sandboxes pull from: its store and its front, pulls only (docs/hosts.md)."""
        self.ensure_web_user()
        self.prepare_data_dirs()
        self.prepare_web_dir()  # the store's configuration
        self.prepare_mirror()
        self.prepare_metrics_dir()  # the front counts its pulls (docs/metrics.md), though no site reads them yet
        self.prepare_hosts_authority()
        assert self.web is not None
        check_traversable(self.cfg.data_dir, self.web)
        self.start_agent()
        self.start_mirror()
        store = f"http://127.0.0.1:{self.cfg.registry_store_port}/v2/"
        self.wait_for(lambda: http_answers(store), "the registry mirror's store", 30)

    def start_agent(self) -> None:
        """The keeper, then the agent, each once the one before answers."""
        # The keeper holds every terminal, so visitors' shells outlive an agent restart.
        self.spawn("keeper", commands.keeper(), as_web=False)
        self.wait_for(lambda: socket_answers(keeper_socket(self.cfg.agent_socket)), "the terminal keeper", 20)
        self.spawn("agent", commands.agent(), as_web=False)
        self.wait_for(lambda: self.cfg.agent_socket.exists(), "the sandbox agent", 60)

    def start_registry(self) -> None:
        """The registry mirror (docs/registry.md): its store on loopback, its front on the sandboxes'
        gateway, and the sessions' push registry behind the front."""
        self.spawn("registry-push", commands.registry_push())
        self.start_mirror()

    def start_mirror(self) -> None:
        """The registry mirror's store and front; a sandbox host's front takes pulls only."""
        if shutil.which("docker-registry") is None:
            raise LaunchError("docker-registry (the registry mirror's store) is not installed; run 'make deps'.")
        self.spawn("registry", commands.registry_store())
        self.spawn("registry-front", commands.registry_front())

    def url(self, port: int | None = None) -> str:
        """Where the web server (or what listens on ``port`` of PLAYGROUND_BIND) answers on this host."""
        host = "127.0.0.1" if self.cfg.bind in ("0.0.0.0", "::") else self.cfg.bind
        return f"http://{host}:{port or self.cfg.port}/"

    def prepare_user_and_dirs(self) -> None:
        """Create the web user if missing, and the data directories with the web user's rights."""
        self.ensure_web_user()
        assert self.web is not None
        data = self.cfg.data_dir
        self.prepare_data_dirs()
        self.prepare_web_dir()
        self.prepare_mirror()
        pushes = push_root(data)  # the sessions' push registry's (docs/registry.md, Pushing)
        pushes.mkdir(parents=True, exist_ok=True)
        own_tree(pushes, self.web.pw_uid, self.web.pw_gid)
        self.prepare_metrics_dir()
        self.prepare_site_keys()
        check_traversable(data, self.web)

    def prepare_data_dirs(self) -> None:
        """The data directory and the agent's socket's, traversable by all (the agent makes its own below)."""
        for path in (self.cfg.data_dir, self.cfg.agent_socket.parent):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)

    def prepare_web_dir(self) -> None:
        """The web user's own directory (PLAYGROUND_WEB_DIR), its alone: its files, and its parts' configurations."""
        assert self.web is not None
        self.cfg.web_dir.mkdir(parents=True, exist_ok=True)
        for dirpath, _dirs, files in os.walk(self.cfg.web_dir):
            for name in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                os.chown(name, self.web.pw_uid, self.web.pw_gid)
        self.cfg.web_dir.chmod(0o700)

    def prepare_site_keys(self) -> None:
        """The site's TLS keys (``manage.py hostcerts site``, docs/hosts.md), the web user's: its
        processes dial the sandbox hosts with one and serve their registry link with the other.
        hostcerts gives them to the web user when that user exists; on a web host whose first start
        comes after the certificates, this start does."""
        assert self.web is not None
        for name in certificates.give_site_keys(self.cfg.tls_dir, self.web.pw_uid, self.web.pw_gid):
            key = self.cfg.tls_dir / name
            say(f"[launcher] {key} is now the web user's ({self.cfg.web_user}), as 'hostcerts site' leaves it")

    def prepare_hosts_authority(self) -> None:
        """On a sandbox host that passes the sessions' pushes to the web host: a copy of the hosts'
        authority's certificate (public) its registry front can read, to check the web host's."""
        if self.cfg.registry_push_via is None:
            return
        authority = self.cfg.tls_dir / tls.CA_CERT
        try:
            pem = authority.read_bytes()
        except OSError as exc:
            raise LaunchError(
                f"cannot read {authority} ({exc.strerror}), which checks the web host's registry for "
                "PLAYGROUND_REGISTRY_PUSH_VIA; copy it from the web host with this host's certificate (docs/hosts.md)"
            ) from None
        copy = hosts_authority(self.cfg.data_dir)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(pem)
        copy.chmod(0o644)

    def prepare_mirror(self) -> None:
        """The mirror's storage, the web user's: its store (a cache) writes what it fetches there,
        beside what a seeding run as root may have left."""
        assert self.web is not None
        mirror = mirror_root(self.cfg.data_dir)
        mirror.mkdir(parents=True, exist_ok=True)
        os.chown(mirror.parent, self.web.pw_uid, self.web.pw_gid)
        own_tree(mirror, self.web.pw_uid, self.web.pw_gid)

    def ensure_web_user(self) -> None:
        """Create the web user (a system user without a home or a shell) if it is missing."""
        if self.web is None:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    self.cfg.web_user,
                ],
                check=True,
            )
            self.web = pwd.getpwnam(self.cfg.web_user)

    @property
    def metrics_dir(self) -> Path:
        """The processes' metric files (PROMETHEUS_MULTIPROC_DIR, docs/metrics.md)."""
        return self.cfg.data_dir / "metrics"

    def prepare_metrics_dir(self) -> None:
        """An empty metrics directory, the web user's: the counters start from 0 with every start,
        and no file of an earlier run's processes is added to this run's."""
        assert self.web is not None
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(mode=0o700)
        os.chown(self.metrics_dir, self.web.pw_uid, self.web.pw_gid)

    def ensure_redis(self) -> None:
        """Use the Redis at PLAYGROUND_REDIS_URL, or start one if none answers at a local address."""
        url = urlsplit(self.cfg.redis_url)
        host, port = url.hostname or "127.0.0.1", url.port or 6379
        if redis_answers(host, port):
            say(f"[launcher] using the Redis at {host}:{port}")
            return
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise LaunchError(
                f"Redis at {host}:{port} (PLAYGROUND_REDIS_URL) does not answer; start it or "
                "point PLAYGROUND_REDIS_URL at a local address so Playground can start its own."
            )
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise LaunchError("redis-server is not installed; run 'make deps' (apt-get install redis-server).")
        redis_dir = self.cfg.data_dir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.spawn("redis", commands.redis(redis_server, port, redis_dir), as_web=False)
        self.wait_for(lambda: redis_answers(host, port), "Redis", 20)

    def spawn(self, name: str, argv: list[str], as_web: bool = True, stop_timeout: float = STOP_TIMEOUT) -> None:
        """Start a part; from now on it is supervised (restarted if it dies) and stopped by stop()."""
        self.children.append(self._launch(name, argv, as_web, stop_timeout))
        self.restarts[name] = Restarts(self.policy)

    def _launch(self, name: str, argv: list[str], as_web: bool, stop_timeout: float) -> Child:
        env = dict(
            os.environ,
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="playground.settings",
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
        )
        kwargs: dict[str, object] = {}
        if as_web:
            assert self.web is not None
            env["HOME"] = str(self.cfg.web_dir)
            kwargs = {"user": self.web.pw_uid, "group": self.web.pw_gid, "extra_groups": []}
        # If the launcher itself dies (SIGKILL), the kernel sends each child SIGTERM, and the
        # agent destroys every sandbox on SIGTERM: nothing outlives it. (The signal follows the
        # death of the launcher's thread that started the child: only the main thread starts them.)
        wrapped = ["setpriv", "--pdeathsig", "TERM", "--", *argv]
        proc = subprocess.Popen(
            wrapped,
            pass_fds=self.passed_fds.get(name, ()),
            cwd=config.REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )  # type: ignore[call-overload]
        return Child(name, argv, as_web, proc, stop_timeout)

    def manage(self, *args: str) -> None:
        """Run a management command as the web user; LaunchError if it fails."""
        assert self.web is not None
        env = dict(os.environ, HOME=str(self.cfg.web_dir), PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir))
        result = subprocess.run(
            commands.manage(*args),
            cwd=config.REPO_DIR,
            env=env,
            user=self.web.pw_uid,
            group=self.web.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
        )
        for line in (result.stdout + result.stderr).splitlines():
            say(f"[manage {args[0]}] {line}")
        if result.returncode != 0:
            raise LaunchError(f"'manage.py {' '.join(args)}' failed (exit {result.returncode}); see above.")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        """Wait until ``ready()``; LaunchError if asked to stop, if a part died meanwhile, or at ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise LaunchError(f"interrupted while waiting for {what}")
            if ready():
                return
            dead = [c for c in self.children if c.proc.poll() is not None]
            if dead:
                dead[0].pump.join(1)  # its last words, which say why, come first
                raise LaunchError(
                    f"{dead[0].name} exited with status {dead[0].proc.returncode} while "
                    f"waiting for {what}; see its output above."
                )
            time.sleep(0.1)
        raise LaunchError(f"{what} was not ready within {timeout:.0f}s; see the output above.")

    # -- running and stopping -------------------------------------------------------------------
    def supervise(self, poll: float = 0.2) -> int:
        """Serve until asked to stop (0), restarting parts that die; 1 after giving up on one.

        A dead part is started again with its own command line after its restart delay; the
        others are watched meanwhile. Nothing else is re-run: sessions are ended as host_lost
        only at the launcher's start.
        """
        due: dict[str, float] = {}  # name of a dead part -> when to start it again
        while not self.stopping.wait(poll):
            for index, child in enumerate(self.children):
                if child.name in due:
                    if time.monotonic() >= due[child.name]:
                        del due[child.name]
                        self.children[index] = self._launch(child.name, child.argv, child.as_web, child.stop_timeout)
                elif child.proc.poll() is not None:
                    delay = self._died(child)
                    if delay is None:
                        return 1
                    due[child.name] = time.monotonic() + delay
        return 0

    def _died(self, child: Child) -> float | None:
        """Say that ``child`` died and return the delay before its restart, or None to give up."""
        child.pump.join(1)  # its last words first
        now = time.monotonic()
        restarts = self.restarts[child.name]
        delay = restarts.died(now, now - child.started)
        status = child.proc.returncode
        if delay is None:
            say(
                f"[launcher] {child.name} exited {restarts.recent} times within {self.policy.window:.0f} s "
                f"(last status {status}); giving up on it and stopping everything. Its lines above, "
                f"marked [{child.name}], say why it keeps dying."
            )
            return None
        say(
            f"[launcher] {child.name} exited unexpectedly (status {status}); restarting it in {delay:g} s "
            f"(restart {restarts.recent} of at most {self.policy.max_restarts} within "
            f"{self.policy.window:.0f} s)"
        )
        return delay

    def stop(self) -> None:
        """End sessions while the web tier can still tell viewers, then stop in reverse order."""
        names = {c.name for c in self.children}
        self.stop_child("beat")
        if "agent" in names and self.web is not None and self.migrated:
            try:
                self.manage("endsessions", "--reason", "shutdown")
            except (LaunchError, OSError) as exc:
                say(f"[launcher] {exc}")
        webs = [f"daphne-{n}" for n in range(2, self.cfg.web_processes + 1)]
        self.stop_together(("ports", "registry-front", "registry-push", "registry", *webs, "daphne", "worker"))
        for name in ("agent", "keeper", "redis"):  # the worker's last tasks may need the agent and Redis
            self.stop_child(name)
        if self.web_socket is not None:
            self.web_socket.close()

    def stop_together(self, names: tuple[str, ...]) -> None:
        """Stop the parts called ``names`` at once, none of which needs another of them to stop (the
        Celery worker's warm shutdown alone takes over a second); returns once all are gone."""
        stopping = [threading.Thread(target=self.stop_child, args=(name,), name=f"stop {name}") for name in names]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()

    def stop_child(self, name: str) -> None:
        """Stop the part called ``name`` (one SIGTERM, SIGKILL after its deadline), if it runs."""
        for child in self.children:
            if child.name == name:
                child.stop()
