"""``python -m playground.launcher``: the whole of Playground on one host, for ``make run``.

Starts, in order: Redis (only if none answers at PLAYGROUND_REDIS_URL and it is a local
address), the sandbox agent (root), database migrations, Daphne, a Celery worker and Celery
beat (all three as the unprivileged PLAYGROUND_WEB_USER). Serves until Ctrl-C or SIGTERM,
then ends every session (viewers are told), stops everything it started in reverse order,
and leaves no sandbox behind. If any part dies, everything is stopped and it exits 1.
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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playground import config

PYTHON = sys.executable
STOP_TIMEOUT = 15.0


class LaunchError(Exception):
    """Start-up cannot go on; the message says what to fix."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
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
    def __init__(self, cfg: config.Config) -> None:
        self.cfg = cfg
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self.web = pwd.getpwnam(cfg.web_user) if _user_exists(cfg.web_user) else None

    # -- starting -----------------------------------------------------------------------------
    def start(self) -> None:
        self.prepare_user_and_dirs()
        self.ensure_redis()
        self.spawn("agent", [PYTHON, "-m", "sandbox.agent"], as_web=False)
        self.wait_for(lambda: self.cfg.agent_socket.exists(), "the sandbox agent", 60)
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("endsessions", "--reason", "host_lost")
        self.spawn("daphne", [PYTHON, "-m", "daphne", "-b", self.cfg.bind, "-p", str(self.cfg.port),
                              "--websocket_timeout", "86400", "--websocket_connect_timeout", "10",
                              "--application-close-timeout", "5", "playground.asgi:application"])
        self.spawn("worker", [PYTHON, "-m", "celery", "-A", "playground", "worker", "--loglevel", "INFO",
                              "--concurrency", "4", "--without-gossip", "--without-mingle", "-n",
                              f"worker-{os.getpid()}@%h"])
        self.spawn("beat", [PYTHON, "-m", "celery", "-A", "playground", "beat", "--loglevel", "INFO",
                            "--schedule", str(self.cfg.web_dir / "celerybeat-schedule")])
        self.wait_for(self.http_ready, "the web server", 60)

    def prepare_user_and_dirs(self) -> None:
        if self.web is None:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin", self.cfg.web_user], check=True)
            self.web = pwd.getpwnam(self.cfg.web_user)
        data = self.cfg.data_dir
        for path in (data, self.cfg.images_dir, self.cfg.agent_socket.parent):
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
        if _redis_answers(host, port):
            say(f"[launcher] using the Redis at {host}:{port}")
            return
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise LaunchError(f"Redis at {host}:{port} (PLAYGROUND_REDIS_URL) does not answer; start it or "
                              "point PLAYGROUND_REDIS_URL at a local address so Playground can start its own.")
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise LaunchError("redis-server is not installed; run 'make deps' (apt-get install redis-server).")
        redis_dir = self.cfg.data_dir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.spawn("redis", [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(redis_dir), "--protected-mode", "yes"], as_web=False)
        self.wait_for(lambda: _redis_answers(host, port), "Redis", 20)

    def spawn(self, name: str, argv: list[str], as_web: bool = True) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="playground.settings")
        kwargs: dict[str, object] = {}
        if as_web:
            assert self.web is not None
            env["HOME"] = str(self.cfg.web_dir)
            kwargs = {"user": self.web.pw_uid, "group": self.web.pw_gid, "extra_groups": []}
        # If the launcher itself dies (SIGKILL), the kernel sends each child SIGTERM, and the
        # agent destroys every sandbox on SIGTERM: nothing outlives it.
        argv = ["setpriv", "--pdeathsig", "TERM", "--", *argv]
        proc = subprocess.Popen(argv, cwd=config.REPO_DIR, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                **kwargs)  # type: ignore[call-overload]
        self.children.append(Child(name, proc))

    def manage(self, *args: str) -> None:
        assert self.web is not None
        env = dict(os.environ, HOME=str(self.cfg.web_dir))
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=config.REPO_DIR, env=env,
                                user=self.web.pw_uid, group=self.web.pw_gid, extra_groups=[],
                                capture_output=True, text=True)
        for line in (result.stdout + result.stderr).splitlines():
            say(f"[manage {args[0]}] {line}")
        if result.returncode != 0:
            raise LaunchError(f"'manage.py {' '.join(args)}' failed (exit {result.returncode}); see above.")

    def wait_for(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise LaunchError(f"interrupted while waiting for {what}")
            if ready():
                return
            dead = [c for c in self.children if c.proc.poll() is not None]
            if dead:
                raise LaunchError(f"{dead[0].name} exited with status {dead[0].proc.returncode} while "
                                  f"waiting for {what}; see its output above.")
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
    def supervise(self) -> int:
        while not self.stopping.wait(0.5):
            for child in self.children:
                if child.proc.poll() is not None:
                    say(f"[launcher] {child.name} exited unexpectedly (status {child.proc.returncode}); "
                        "stopping everything")
                    return 1
        return 0

    def stop(self) -> None:
        """End sessions while the web tier can still tell viewers, then stop in reverse order."""
        names = {c.name for c in self.children}
        self.stop_child("beat")
        if "agent" in names and self.web is not None:
            try:
                self.manage("endsessions", "--reason", "shutdown")
            except (LaunchError, OSError) as exc:
                say(f"[launcher] {exc}")
        for name in ("daphne", "worker", "agent", "redis"):
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
            raise LaunchError(f"{parent} is not searchable by other users, so the web user "
                              f"{user.pw_name!r} cannot reach {path}; choose another PLAYGROUND_DATA_DIR "
                              f"or run 'chmod o+x {parent}'.")


def _redis_answers(host: str, port: int) -> bool:
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
        print("playground: 'make run' must run as root (the sandbox agent creates namespaces and cgroups; "
              "the web tier itself drops to the unprivileged user PLAYGROUND_WEB_USER).", file=sys.stderr)
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
