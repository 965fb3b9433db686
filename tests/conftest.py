"""Shared fixtures, and the ``root`` marker on every test that needs root. ``stack`` is one real
Playground for the whole test session.

The tests' database is SQLite in a temp dir, or with ``PLAYGROUND_TEST_DATABASE=postgres`` a
database on a PostgreSQL server started for the session (:mod:`tests.pgkit`); that run keeps only
the tests that use the database ('make test-postgres')."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

from tests import pgkit
from tests.dockerkit import docker_image, docker_sandbox  # noqa: F401 (fixtures of the docker tests)
from tests.imagekit import CACHE, debian_image, images_stack  # noqa: F401 (fixtures of the image tests)
from tests.seedkit import seeded_stack  # noqa: F401 (the fixture of the seeded images' tests)
from tests.stack import Stack

# Tests that start real sandboxes or touch the host's cgroups, and so need root: every test under
# these directories, every test using a real stack's fixture, and these unit tests (found by
# running tests/unit as an unprivileged user; the image CLI refuses anyone else before it reads
# its settings). Each gets the ``root`` marker.
ROOT_DIRECTORIES = ("integration", "security", "e2e")
ROOT_FIXTURES = frozenset(
    {"stack", "lifecycle_stack", "images_stack", "debian_image", "docker_image", "docker_sandbox", "seeded_stack"}
)
ROOT_UNIT_TESTS = frozenset(
    {
        "test_cgroups.py::test_a_crashed_sandboxs_nested_cgroups_are_found_and_removed_on_a_real_hierarchy",
        "test_cgroups.py::test_delegating_gives_the_sandboxs_root_its_cgroup_directories_but_not_the_limits_in_them",
        "test_cgroups.py::test_the_sandboxes_parent_gets_its_cpu_weight_on_this_hosts_real_cpu_hierarchy",
        "test_cgroups.py::test_a_placed_shell_keeps_its_quota_and_its_other_cgroups_and_goes_with_the_sandbox",
        "test_shells.py::test_an_attached_terminals_shell_moves_to_the_terminals_cpu_group_with_the_sandboxs_quota",
        "test_shells.py::test_a_shell_that_works_beyond_its_cpu_budget_goes_back_to_its_sandboxs_group_and_returns_at_its_prompt",
        "test_image_cli.py::test_a_bad_setting_ends_the_command_with_status_1_and_the_settings_message",
        "test_tab_sessions.py::test_a_shells_session_is_found_in_its_sandbox_unless_its_pid_now_names_another_process",
    }
)
TESTS_DIR = Path(__file__).resolve().parent


def needs_root(item: pytest.Item) -> bool:
    """Whether ``item`` needs root (see ROOT_DIRECTORIES, ROOT_FIXTURES and ROOT_UNIT_TESTS)."""
    try:
        parts = item.path.resolve().relative_to(TESTS_DIR).parts
    except ValueError:
        return False
    if parts[0] in ROOT_DIRECTORIES:
        return True
    name = getattr(item, "originalname", item.name)  # without the parameters
    if parts[0] == "unit" and f"{item.path.name}::{name}" in ROOT_UNIT_TESTS:
        return True
    return not ROOT_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def pytest_configure(config: pytest.Config) -> None:
    """A bad PLAYGROUND_TEST_DATABASE stops the run with its message, before anything is collected."""
    try:
        pgkit.wanted()
    except pgkit.PostgresFailed as exc:
        raise pytest.UsageError(str(exc)) from None


# The fixtures through which a test uses the database without pytest-django's ``django_db`` marker.
DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"})


def uses_database(item: pytest.Item) -> bool:
    """Whether ``item`` uses the test database (the ``django_db`` marker or one of DATABASE_FIXTURES)."""
    fixtures = getattr(item, "fixturenames", ())
    return item.get_closest_marker("django_db") is not None or not DATABASE_FIXTURES.isdisjoint(fixtures)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that need root before ``-m`` selects (so ``-m "not root"`` leaves them out);
    on PostgreSQL, leave out the tests that do not use the database (they ran on SQLite already)."""
    for item in items:
        if needs_root(item):
            item.add_marker(pytest.mark.root)
    if pgkit.wanted():
        unused = [item for item in items if not uses_database(item)]
        items[:] = [item for item in items if uses_database(item)]
        config.hook.pytest_deselected(items=unused)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run root tests without root: they would fail one by one in confusing ways."""
    if os.geteuid() == 0:
        return
    selected = [item for item in session.items if item.get_closest_marker("root")]
    if selected:
        raise pytest.UsageError(
            f"{len(selected)} selected test(s) need root (they start real sandboxes or touch the host's cgroups), "
            f"e.g. {selected[0].nodeid}; run as root (as 'make test' does), "
            "or leave them out with -m 'not root' (as 'make test-fast' does)"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pgkit.PostgresServer]:
    """A throwaway PostgreSQL server for the session, stopped and removed after it (tests/pgkit.py)."""
    with pgkit.PostgresServer.running() as server:
        yield server


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> None:
    """Tests that use the database (pytest-django's ``django_db``) get a SQLite file in a temp dir,
    which any user can write and every thread can open (the terminal consumer reads it from another);
    with PLAYGROUND_TEST_DATABASE=postgres, a database on ``postgres_server`` instead."""
    if not pgkit.wanted():
        connections["default"].settings_dict["TEST"]["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
        return
    server: pgkit.PostgresServer = request.getfixturevalue("postgres_server")
    # The default connection was made for SQLite's engine: replace its settings and drop it, so the
    # next use makes a PostgreSQL one (settings.DATABASES is the same dict as connections.settings).
    for connection in connections.all(initialized_only=True):
        connection.close()
    connections.settings["default"] = server.database_settings("playground")
    connections.configure_settings(connections.settings)
    try:
        del connections["default"]
    except AttributeError:  # never opened
        pass


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, request: pytest.FixtureRequest) -> Iterator[None]:
    """pytest-django's, and on PostgreSQL, before it drops the test database, the connections that
    the tests' threads left open ended (see pgkit.PostgresServer.end_connections)."""
    server: pgkit.PostgresServer | None = request.getfixturevalue("postgres_server") if pgkit.wanted() else None
    yield
    if server is not None:
        server.end_connections(connections["default"].settings_dict["NAME"])


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # A disk quota below the memory limit, so that filling it ends in ENOSPC, not the OOM killer;
    # set for the image, over the site-wide defaults, to exercise per-image quotas everywhere (the
    # docker image keeps its own). The shared build cache: the security tests' docker image builds
    # in seconds.
    # No pooled sandboxes for the workshops the tests make here (PLAYGROUND_WORKSHOP_WARM_MAX=0):
    # they would stay on the host for the rest of the run, where other tests look for leftovers.
    with Stack.running(
        PLAYGROUND_IMAGE_QUOTAS="busybox:disk=96M,pids=200",
        PLAYGROUND_IMAGE_CACHE=str(CACHE),
        PLAYGROUND_WORKSHOP_WARM_MAX="0",
    ) as running:
        yield running


# Short timings for the lifecycle tests: a 5 s TTL, extensions of 30 s up to 65 s, idle after
# 6 s, a reaper every second, small caps, and the client address taken from X-Forwarded-For so
# that each test plays its own visitors (loopback itself is exempt from per-address limits).
LIFECYCLE_SETTINGS = {
    "PLAYGROUND_SESSION_TTL": "5",
    "PLAYGROUND_SESSION_EXTEND": "30",
    "PLAYGROUND_SESSION_MAX_TTL": "65",
    "PLAYGROUND_IDLE_TIMEOUT": "6",
    "PLAYGROUND_REAPER_INTERVAL": "1",
    "PLAYGROUND_MAX_SESSIONS": "4",
    "PLAYGROUND_MAX_SESSIONS_PER_ADDRESS": "2",
    "PLAYGROUND_CREATIONS_PER_MINUTE": "4",
    "PLAYGROUND_PROXY_COUNT": "1",
}


@pytest.fixture(scope="session")
def lifecycle_stack() -> Iterator[Stack]:
    """One Playground with short lifecycle timings, shared by the lifecycle and browser tests."""
    with Stack.running(**LIFECYCLE_SETTINGS) as running:
        yield running


@pytest.fixture(autouse=True)
def end_sessions_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing test must not leave its sessions to the next one (nor a browser's, which the
    test never saw: a browser test ends every session of its stack)."""
    yield
    for name in ("stack", "lifecycle_stack", "seeded_stack"):
        if name in request.fixturenames:
            stack = request.getfixturevalue(name)
            stack.end_started_sessions()
            if "page" in request.fixturenames or "browser" in request.fixturenames:
                stack.end_every_session()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failure, attach the end of each stack's log (launcher, agent, Daphne, Celery) to the report."""
    report = yield
    for name, stack in getattr(item, "funcargs", {}).items() if report.failed else ():
        if isinstance(stack, Stack):
            report.sections.append((f"{name} log (last 40 lines)", stack.log_tail(40)))
    return report
