"""Helpers for tests that play several visitors against a stack that trusts one proxy
(``PLAYGROUND_PROXY_COUNT=1``): ``X-Forwarded-For`` names the visitor's address."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
from typing import Any

from tests.stack import Stack
from tests.waiting import eventually

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def visitor() -> dict[str, str]:
    """Headers of a new visitor: an address no other test uses."""
    return {"X-Forwarded-For": next(_addresses)}


def database(stack: Stack) -> sqlite3.Connection:
    """The stack's own SQLite database, read-only: a write as root could leave a root-owned
    journal that the web user then cannot open ("attempt to write a readonly database")."""
    path = stack.data_dir / "web" / "db.sqlite3"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None)


def write_database(stack: Stack, sql: str, *params: object) -> None:
    """Run one statement on the stack's database as the web user, who owns it and its journal."""
    write_database_together(stack, (sql, params))


def write_database_together(stack: Stack, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Run ``(sql, params)`` statements in one transaction on the stack's database, as the web user:
    the stack's processes see all of them or none."""
    web_user = stack.env.get("PLAYGROUND_WEB_USER", "playground")
    code = (
        "import sqlite3, sys, json; db = sqlite3.connect(sys.argv[1], timeout=30)\n"
        "with db:\n"
        "    for sql, params in json.loads(sys.argv[2]): db.execute(sql, params)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(stack.data_dir / "web" / "db.sqlite3"), json.dumps(statements)],
        user=web_user,
        check=True,
        timeout=60,
    )


def live_sessions(stack: Stack) -> int:
    """Sessions not yet ended: what the global cap counts."""
    with database(stack) as db:
        return db.execute("SELECT count(*) FROM sandboxes_session WHERE state != 'ended'").fetchone()[0]


def no_live_sessions(stack: Stack) -> None:
    eventually(lambda: live_sessions(stack) == 0, "the end of earlier tests' sessions", timeout=30)


def start(stack: Stack, who: dict[str, str], extensions: int = 0) -> dict[str, Any]:
    """A session of ``who``, extended ``extensions`` times right away."""
    response = stack.request("POST", "/api/sessions/", {}, headers=who)
    assert response.status == 201, response.body
    session = response.json()
    stack.started_sessions.append(session)
    for _ in range(extensions):
        extended = stack.request(
            "POST", f"/api/sessions/{session['id']}/extend/", headers={"Authorization": f"Session {session['key']}"}
        )
        assert extended.status == 200, extended.body
    return session
