"""Two starts racing for the host's or a workshop's last place, played in a fixed order on PostgreSQL.

``race(monkeypatch, first, second)`` runs ``first`` in a thread and holds it inside its start's
transaction, its session and nodes inserted but not committed (after ``api.add_nodes``, or the
function that ``held`` names, say the join's last step inside that transaction); then runs
``second`` in another thread until it has ended or waits on a lock (PostgreSQL's
``pg_stat_activity``), and only then lets ``first`` commit. Without a lock over the counts and the
inserts, ``second`` counts the place free (``first``'s rows are not committed) and takes it too;
with one, it waits, then counts ``first``'s rows and is refused. SQLite's IMMEDIATE transactions
take turns already, and its waits cannot be seen from outside: its tests skip this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.http import HttpResponse

from playground.sandboxes import api
from tests.waiting import eventually

HOLD = 30.0  # seconds the first start waits inside its transaction at most


def waiting_on_a_lock() -> bool:
    """Whether a connection of the server waits for a lock (a row's, or an advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def race(
    monkeypatch: pytest.MonkeyPatch,
    first: Callable[[], HttpResponse],
    second: Callable[[], HttpResponse],
    held: tuple[object, str] = (api, "add_nodes"),
) -> tuple[int, int]:
    """The statuses of ``first`` and ``second`` when ``second`` comes while ``first`` is in its
    transaction, just after it called the function ``held`` names (a module and a name in it)."""
    assert connection.vendor == "postgresql", "race() reads PostgreSQL's pg_stat_activity"
    inside, go_on = threading.Event(), threading.Event()
    owner, name = held
    original = getattr(owner, name)

    def holding(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if threading.current_thread().name == "first":
            inside.set()
            go_on.wait(HOLD)
        return result

    monkeypatch.setattr(owner, name, holding)
    statuses: dict[str, int] = {}

    def run(thread: str, request: Callable[[], HttpResponse]) -> None:
        try:
            statuses[thread] = request().status_code
        finally:
            connections.close_all()  # this thread's connection, which the test database's drop would wait for

    runs = {"first": first, "second": second}
    threads = {name: threading.Thread(target=run, args=(name, request), name=name) for name, request in runs.items()}
    try:
        threads["first"].start()
        eventually(inside.is_set, "the first start is inside its transaction")
        threads["second"].start()
        eventually(
            lambda: not threads["second"].is_alive() or waiting_on_a_lock(),
            "the second start has ended or waits on a lock",
        )
    finally:
        go_on.set()
        for thread in threads.values():
            if thread.ident is not None:  # started
                thread.join(HOLD)
    return statuses["first"], statuses["second"]
