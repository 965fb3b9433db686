"""A throwaway PostgreSQL server for one test session: Debian's PostgreSQL 15, not its cluster service.

``PostgresServer.running()`` makes a temp dir, initialises a cluster in it (``initdb``), starts
``postgres`` listening only on a unix socket in that dir (no TCP port), yields the server, then
stops it (``pg_ctl stop -m fast``) and removes the dir, also when the tests fail. The tests'
database (``tests/conftest.py``, ``PLAYGROUND_TEST_DATABASE=postgres``) is created on it by
pytest-django. Layout of the temp dir::

    pg-test-XXXX/            owned by the server's user, mode 0700
        data/                the cluster (initdb -D)
        .s.PGSQL.5432        the socket (unix_socket_directories)
        server.log           the server's log, shown when it does not start

``initdb`` refuses to run as root, so a root caller runs the server as Debian's ``postgres`` user
(``nobody`` without the package's user); anyone else runs it as themselves. The cluster's one
role, ``playground``, is a superuser trusted on the socket: only the temp dir's owner (and root)
can reach the socket. Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``):
a crash loses a database thrown away anyway, and the tests' commits cost nothing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")
ROLE = "playground"
START_TIMEOUT = 30  # seconds pg_ctl waits for the server to accept connections
SHOWN_LOG_LINES = 30
INSTALL_HINT = "install Debian's postgresql (deploy/install-deps.sh test, or apt-get install postgresql)"


class PostgresFailed(RuntimeError):
    """The throwaway server could not be set up: the message names the step, its output and the fix."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server: its temp dir (socket and log) and the OS user it runs as."""

    directory: Path
    os_user: str

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def database_settings(self, name: str) -> dict[str, Any]:
        """Django's DATABASES entry for the database ``name`` on this server, over its socket."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": ROLE,
            "PASSWORD": "",
            "HOST": str(self.directory),
            "PORT": "",
            "CONN_MAX_AGE": 0,
            "OPTIONS": {},
            "TEST": {"NAME": f"test_{name}"},
        }

    def end_connections(self, database: str) -> None:
        """End every connection to ``database``, so that dropping it need not wait: threads of the
        tests (``sync_to_async(thread_sensitive=False)``'s pool) keep theirs open, and DROP DATABASE
        waits 5 s for them, then fails."""
        with psycopg.connect(host=str(self.directory), user=ROLE, dbname="postgres", autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            )

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[PostgresServer]:
        """Start a server in a new temp dir; stop it and remove the dir on the way out."""
        os_user = server_user()
        directory = Path(tempfile.mkdtemp(prefix="pg-test-"))
        server = cls(directory, os_user)
        try:
            if os.geteuid() == 0:
                account = pwd.getpwnam(os_user)
                os.chown(directory, account.pw_uid, account.pw_gid)
            server._initdb()
            try:
                server._start()
                yield server
            finally:
                server._stop()  # also after a failed start: a server slow to start may be up by now
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _initdb(self) -> None:
        self._run(
            "initialise the cluster",
            [BIN / "initdb", "-D", self.directory / "data", "-U", ROLE, "--auth=trust", "-E", "UTF8"]
            + ["--locale=C.UTF-8", "--no-sync", "--no-instructions"],
        )

    def _start(self) -> None:
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.directory}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        command = [BIN / "pg_ctl", "start", "-D", self.directory / "data", "-l", self.log, "-w"]
        self._run("start the server", [*command, "-t", str(START_TIMEOUT), "-o", options], show_log=True)

    def _stop(self) -> None:
        if not (self.directory / "data" / "postmaster.pid").exists():
            return  # never started, or gone
        self._run("stop the server", [BIN / "pg_ctl", "stop", "-D", self.directory / "data", "-m", "fast", "-w"])

    def _run(self, step: str, command: list[Any], show_log: bool = False) -> None:
        """Run one step as the server's user; PostgresFailed with its output (and the log's end) if it fails."""
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            as_user = {"user": self.os_user, "group": pwd.getpwnam(self.os_user).pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(part) for part in command],
            cwd=self.directory,  # the server's user may not be able to enter the caller's directory
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 30,
            **as_user,
        )
        if done.returncode == 0:
            return
        message = (
            f"PostgreSQL for the tests: could not {step} as {self.os_user} in {self.directory}: "
            f"{' '.join(str(part) for part in command)} exited with {done.returncode}\n{done.stdout}{done.stderr}"
        )
        if show_log:
            message += f"\nlast lines of {self.log}:\n{tail(self.log, SHOWN_LOG_LINES)}"
        raise PostgresFailed(message)


def server_user() -> str:
    """The OS user the server runs as: the caller, unless root (initdb refuses root), then postgres or nobody."""
    if not (BIN / "initdb").exists():
        raise PostgresFailed(f"PostgreSQL for the tests: {BIN / 'initdb'} not found; {INSTALL_HINT}")
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresFailed("PostgreSQL for the tests: initdb refuses root, and neither postgres nor nobody exists")


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of ``path``, or a note that it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read it: {exc})"


def wanted() -> bool:
    """Whether the tests' database is PostgreSQL: PLAYGROUND_TEST_DATABASE is "postgres" ("sqlite" or unset: SQLite)."""
    value = os.environ.get("PLAYGROUND_TEST_DATABASE", "sqlite")
    if value not in ("sqlite", "postgres"):
        raise PostgresFailed(f"PLAYGROUND_TEST_DATABASE={value!r}: expected 'sqlite' (the default) or 'postgres'")
    return value == "postgres"
