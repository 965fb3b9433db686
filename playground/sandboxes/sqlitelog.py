"""Keeping SQLite's write-ahead log in place for each web-tier process's life.

Django opens a database connection for each request (and each database call of a consumer or a
task) and closes it afterwards (``conn_max_age=0``, as Django advises under ASGI). When the last
connection to an SQLite database in WAL mode closes, SQLite checkpoints the log into the
database, syncs both to disk and deletes the log; the next connection creates it again. So
every request that wrote paid a checkpoint: four ``fdatasync`` and a few file creations (about
1 ms on an idle disk, several on a busy one), on the path from a visitor's click to the first
prompt. One idle connection held open by the process (it has read the database once, so it
shares the log's index) keeps the log in place: closes no longer checkpoint, and SQLite
checkpoints every 1000 pages instead, as for any long-lived connection. It holds no
transaction, so it never holds a checkpoint back.

:func:`hold_log_open` is a ``connection_created`` receiver (see :mod:`~playground.sandboxes.apps`);
in-memory databases and other engines are left alone.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

# One idle connection per process and database file. Keyed by process id too: a forked child
# (a Celery worker process) opens its own and never touches the one it inherited.
_held: dict[tuple[int, str], sqlite3.Connection] = {}


def hold_log_open(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On the first connection of this process to an SQLite database file, open one more and keep it."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    name = str(connection.settings_dict["NAME"])
    key = (os.getpid(), name)
    if key in _held:
        return
    held = sqlite3.connect(name, timeout=20, isolation_level=None, check_same_thread=False)
    held.execute("SELECT count(*) FROM sqlite_master").fetchall()  # maps the log's index
    _held[key] = held
