"""``python -m playground.launcher``: the whole of Playground on one host, for ``make run``.

Starts, in order: Redis (only if none answers at PLAYGROUND_REDIS_URL and it is a local
address), the sandbox agent (root), database migrations, Daphne, a Celery worker and Celery
beat (all three as the unprivileged PLAYGROUND_WEB_USER). Serves until Ctrl-C or SIGTERM,
then ends every session (viewers are told), stops everything it started in reverse order,
and leaves no sandbox behind.

A part that dies while serving is started again with the same command line, after a delay
that doubles from 0.5 s to 10 s (and starts over once the part has run for a minute). A part
that dies more than 5 times within 60 s is given up on: everything is stopped and the
launcher exits 1. A part that dies during start-up stops start-up at once (exit 1).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playground import config
from sandbox.keeper.service import KeeperClient
from sandbox.keeper.service import socket_path as keeper_socket

PYTHON = sys.executable
STOP_TIMEOUT = 15.0


class LaunchError(Exception):
    """Start-up cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class RestartPolicy:
    """How the launcher restarts a part that died: when, and when it gives up on it."""

    first_delay: float = 0.5  # seconds before the first restart
    max_delay: float = 10.0  # the delay doubles on each quick death, up to this
    healthy_after: float = 60.0  # a part that ran this long starts over with first_delay
    max_restarts: int = 5  # a part that dies more often than this within `window`...
    window: float = 60.0  # ...is given up on


class Restarts:
    """The recent deaths of one part, and the delay before its next start."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.deaths: deque[float] = deque()
        self.delay = 0.0

    def died(self, now: float, ran_for: float) -> float | None:
        """Record a death at ``now`` after ``ran_for`` seconds of running.

        Returns the seconds to wait before starting the part again, or None when it died more
        than ``max_restarts`` times within ``window`` seconds and must be given up on.
        """
        policy = self.policy
        self.deaths.append(now)
        while self.deaths[0] <= now - policy.window:
            self.deaths.popleft()
        if len(self.deaths) > policy.max_restarts:
            return None
        quick = self.delay > 0 and ran_for < policy.healthy_after
        self.delay = min(self.delay * 2, policy.max_delay) if quick else policy.first_delay
        return self.delay

    @property
    def recent(self) -> int:
        """Deaths within the window, as of the last one."""
        return len(self.deaths)


@dataclass
class Child:
    """A running part: its command line (to start it again), its process and its output pump."""

    name: str
    argv: list[str]
    as_web: bool
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    pump: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.pump = threading.Thread(target=_prefix_output, args=(self.name, self.proc), daemon=True)
        self.pump.start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns once the process is gone."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                say(f"[launcher] {self.name} did not stop within {STOP_TIMEOUT:.0f}s; killing it")
                _signal_group(self.proc, signal.SIGKILL)
                self.proc.wait()
        self.pump.join(2)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def say(text: str) -> None:
    """Print a line; if our own output is gone (a closed pipe or terminal), carry on silently.

    Stopping the children must never fail because nobody is reading the launcher's output.
    """
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _prefix_output(name: str, proc: subprocess.Popen[bytes]) -> None:
    """Copy a child's output with its name in front; keep draining it even if we cannot print."""
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, b""):
        say(f"[{name}] {line.decode(errors='replace')}")


class Launcher:
    def __init__(self, cfg: config.Config, policy: RestartPolicy | None = None) -> None:
        self.cfg = cfg
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self.web = pwd.getpwnam(cfg.web_user) if _user_exists(cfg.web_user) else None
        self.policy = policy or RestartPolicy()
        self.restarts: dict[str, Restarts] = {}

    # -- starting -----------------------------------------------------------------------------
    def start(self) -> None:
        self.prepare_user_and_dirs()
        self.ensure_redis()
        # The keeper holds every terminal, so visitors' shells outlive an agent restart.
        self.spawn("keeper", [PYTHON, "-m", "sandbox.keeper"], as_web=False)
        self.wait_for(KeeperClient(keeper_socket(self.cfg)).available, "the terminal keeper", 20)
        self.spawn("agent", [PYTHON, "-m", "sandbox.agent"], as_web=False)
        self.wait_for(lambda: self.cfg.agent_socket.exists(), "the sandbox agent", 60)
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("labs", "load", str(config.REPO_DIR / "labs"))  # the shipped labs (docs/labs.md)
        self.manage("endsessions", "--reason", "host_lost")
        self.spawn(
            "daphne",
            [
                PYTHON,
                "-m",
                "playground.webserver",
                "-b",
                self.cfg.bind,
                "-p",
                str(self.cfg.port),
                "--websocket_timeout",
                "86400",
                "--websocket_connect_timeout",
                "10",
                "--application-close-timeout",
                "5",
                "playground.asgi:application",
            ],
        )
        self.spawn(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "playground",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "4",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"worker-{os.getpid()}@%h",
            ],
        )
        self.spawn(
            "beat",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "playground",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.cfg.web_dir / "celerybeat-schedule"),
            ],
        )
        self.wait_for(self.http_ready, "the web server", 60)

    def prepare_user_and_dirs(self) -> None:
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
        data = self.cfg.data_dir
        for path in (data, self.cfg.agent_socket.parent):  # the agent makes its own below data
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
        self.cfg.web_dir.mkdir(parents=True, exist_ok=True)
        for dirpath, _dirs, files in os.walk(self.cfg.web_dir):
            for name in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                os.chown(name, self.web.pw_uid, self.web.pw_gid)
        self.cfg.web_dir.chmod(0o700)
        _check_traversable(data, self.web)

    def ensure_redis(self) -> None:
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
        self.spawn(
            "redis",
            [
                redis_server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(redis_dir),
                "--protected-mode",
                "yes",
            ],
            as_web=False,
        )
        self.wait_for(lambda: redis_answers(host, port), "Redis", 20)

    def spawn(self, name: str, argv: list[str], as_web: bool = True) -> None:
        """Start a part; from now on it is supervised (restarted if it dies) and stopped by stop()."""
        self.children.append(self._launch(name, argv, as_web))
        self.restarts[name] = Restarts(self.policy)

    def _launch(self, name: str, argv: list[str], as_web: bool) -> Child:
        env = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="playground.settings")
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
            cwd=config.REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )  # type: ignore[call-overload]
        return Child(name, argv, as_web, proc)

    def manage(self, *args: str) -> None:
        assert self.web is not None
        env = dict(os.environ, HOME=str(self.cfg.web_dir))
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise LaunchError(f"interrupted while waiting for {what}")
            if ready():
                return
            dead = [c for c in self.children if c.proc.poll() is not None]
            if dead:
                raise LaunchError(
                    f"{dead[0].name} exited with status {dead[0].proc.returncode} while "
                    f"waiting for {what}; see its output above."
                )
            time.sleep(0.1)
        raise LaunchError(f"{what} was not ready within {timeout:.0f}s; see the output above.")

    def http_ready(self) -> bool:
        host = "127.0.0.1" if self.cfg.bind in ("0.0.0.0", "::") else self.cfg.bind
        try:
            with urllib.request.urlopen(f"http://{host}:{self.cfg.port}/api/schema/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

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
                        self.children[index] = self._launch(child.name, child.argv, child.as_web)
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
        if "agent" in names and self.web is not None:
            try:
                self.manage("endsessions", "--reason", "shutdown")
            except (LaunchError, OSError) as exc:
                say(f"[launcher] {exc}")
        for name in ("daphne", "worker", "agent", "keeper", "redis"):
            self.stop_child(name)

    def stop_child(self, name: str) -> None:
        for child in self.children:
            if child.name == name:
                child.stop()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Check that the web user can reach ``path`` (every parent must be searchable)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise LaunchError(
                f"{parent} is not searchable by other users, so the web user "
                f"{user.pw_name!r} cannot reach {path}; choose another PLAYGROUND_DATA_DIR "
                f"or run 'chmod o+x {parent}'."
            )


def redis_answers(host: str, port: int) -> bool:
    """Whether a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main() -> int:
    try:
        cfg = config.load()
    except config.ConfigError as exc:
        print(f"playground: {exc}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(
            "playground: 'make run' must run as root (the sandbox agent creates namespaces and cgroups; "
            "the web tier itself drops to the unprivileged user PLAYGROUND_WEB_USER).",
            file=sys.stderr,
        )
        return 2
    launcher = Launcher(cfg)
    signal.signal(signal.SIGINT, lambda *_: launcher.stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: launcher.stopping.set())
    signal.signal(signal.SIGHUP, lambda *_: launcher.stopping.set())
    status = 0
    try:
        launcher.start()
        host = "127.0.0.1" if cfg.bind in ("0.0.0.0", "::") else cfg.bind
        say(f"[launcher] Playground is running at http://{host}:{cfg.port}/ — press Ctrl-C to stop.")
        status = launcher.supervise()
    except LaunchError as exc:
        say(f"playground: {exc}")
        status = 1
    finally:
        say("[launcher] stopping…")
        launcher.stop()
        say("[launcher] stopped; no sandbox is left running.")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
