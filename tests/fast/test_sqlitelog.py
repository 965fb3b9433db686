"""SQLite's write-ahead log stays in place while a web-tier process runs (see playground.sandboxes.sqlitelog);
on PostgreSQL nothing is held."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from django.db.utils import ConnectionHandler

from playground.sandboxes import sqlitelog
from tests import pgkit

pytestmark = pytest.mark.django_db


def sqlite(name: str) -> ConnectionHandler:
    return ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": name,
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;"},
            }
        }
    )


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    """An SQLite database file; the connection held for it is closed afterwards."""
    path = tmp_path / "db.sqlite3"
    yield path
    held = sqlitelog._held.pop((os.getpid(), str(path)), None)
    if held is not None:
        held.close()


def test_closing_the_last_django_connection_after_a_write_leaves_the_log_in_place(database: Path) -> None:
    connection = sqlite(str(database))["default"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")
        cursor.execute("INSERT INTO t VALUES (1)")
    connection.close()
    # Without the held connection, SQLite checkpoints and deletes the log at this close.
    assert database.with_name("db.sqlite3-wal").exists()


def test_an_in_memory_database_gets_no_held_connection() -> None:
    before = dict(sqlitelog._held)
    connection = sqlite(":memory:")["default"]
    connection.ensure_connection()
    connection.close()
    assert sqlitelog._held == before


@pytest.mark.skipif(not pgkit.wanted(), reason="the tests' database is SQLite (make test-postgres runs this)")
def test_a_postgresql_connection_gets_no_held_connection() -> None:
    before = dict(sqlitelog._held)
    connection = connections["default"]
    connection.close()
    connection.ensure_connection()  # connection_created: hold_log_open sees PostgreSQL and does nothing
    assert connection.vendor == "postgresql" and sqlitelog._held == before
