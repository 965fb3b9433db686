"""The launcher: the settings it refuses before starting anything, how it stops a part, when a part
that died is started again, and when it is given up on.

The policy is checked with a made-up clock; ``supervise`` and stopping with small shell commands
as parts and a quick policy (the real parts: tests/integration/test_restarts.py).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from playground import config
from playground.launcher import checks, commands, run, supervision
from playground.launcher.stack import Launcher
from playground.launcher.supervision import RestartPolicy, Restarts
from tests.waiting import eventually


def deaths(restarts: Restarts, times: list[float], ran_for: float = 0.1) -> list[float | None]:
    return [restarts.died(now, ran_for) for now in times]


def test_the_delay_doubles_from_half_a_second_to_at_most_ten_while_a_part_keeps_dying_quickly() -> None:
    restarts = Restarts(RestartPolicy(max_restarts=100))
    assert deaths(restarts, [0, 1, 3, 6, 11, 20, 31, 42]) == [0.5, 1, 2, 4, 8, 10, 10, 10]


def test_a_part_that_ran_for_a_minute_starts_over_with_the_first_delay() -> None:
    restarts = Restarts(RestartPolicy())
    assert deaths(restarts, [0, 1, 3]) == [0.5, 1, 2]
    assert restarts.died(70, ran_for=60) == 0.5
    assert restarts.died(71, ran_for=0.5) == 1


def test_a_sixth_death_within_a_minute_gives_up() -> None:
    restarts = Restarts(RestartPolicy())
    assert deaths(restarts, [0, 1, 2, 3, 4]) == [0.5, 1, 2, 4, 8]
    assert restarts.died(59, ran_for=0.1) is None
    assert restarts.recent == 6


def test_deaths_older_than_the_window_do_not_count_towards_giving_up() -> None:
    restarts = Restarts(RestartPolicy())
    assert None not in deaths(restarts, [15.0 * n for n in range(20)])  # 4 within any 60 s
    assert restarts.recent == 4


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """A launcher with a quick restart policy; after the test, its parts are stopped (also when the
    test failed before it stopped them) and their output pipes closed."""
    quick = RestartPolicy(first_delay=0.05, max_delay=0.2, healthy_after=60, max_restarts=3, window=60)
    launcher = Launcher(config.load({"PLAYGROUND_DATA_DIR": str(tmp_path)}), quick)
    try:
        yield launcher
    finally:
        for child in launcher.children:
            child.stop()
            if child.proc.stdout is not None:
                child.proc.stdout.close()


@pytest.fixture
def said(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every line the launcher prints from now on (printed still), so a test can wait for one."""
    lines: list[str] = []
    say = supervision.say

    def recorded(text: str) -> None:
        lines.append(text.rstrip("\n"))
        say(text)

    monkeypatch.setattr(supervision, "say", recorded)
    return lines


def test_supervise_gives_up_on_a_part_that_keeps_dying_and_says_so(launcher: Launcher, capsys) -> None:
    launcher.spawn("flaky", ["sh", "-c", "echo about to fail; exit 3"], as_web=False)
    started = time.monotonic()
    assert launcher.supervise(poll=0.01) == 1
    assert time.monotonic() - started < 5
    out = capsys.readouterr().out
    assert out.count("[flaky] about to fail") == 4  # the first start and 3 restarts
    assert "[launcher] flaky exited unexpectedly (status 3); restarting it in 0.05 s (restart 1 of at most 3" in out
    assert "restarting it in 0.2 s (restart 3 of at most 3 within 60 s)" in out
    assert "[launcher] flaky exited 4 times within 60 s (last status 3); giving up on it and stopping everything" in out


def test_supervise_starts_a_killed_part_again_with_the_same_command_and_keeps_the_others(
    launcher: Launcher, said: list[str], capsys
) -> None:
    launcher.spawn("steady", ["sleep", "1000"], as_web=False)
    launcher.spawn("victim", ["sh", "-c", "echo up; exec sleep 1000"], as_web=False)
    steady, victim = (child.proc.pid for child in launcher.children)

    def kill_then_stop() -> None:
        try:
            eventually(lambda: said.count("[victim] up"), "the victim said it is up", until=lambda n: n == 1)
            os.kill(victim, signal.SIGKILL)
            eventually(lambda: said.count("[victim] up"), "the restarted victim said it is up", until=lambda n: n == 2)
        finally:
            launcher.stopping.set()

    with ThreadPoolExecutor(1) as pool:
        helper = pool.submit(kill_then_stop)
        try:
            assert launcher.supervise(poll=0.01) == 0
        finally:
            helper.result()  # its failure, if it had one
            launcher.stop_child("steady")
            launcher.stop_child("victim")
    assert launcher.children[0].proc.pid == steady
    restarted = launcher.children[1]
    assert restarted.proc.pid != victim
    assert restarted.argv == ["sh", "-c", "echo up; exec sleep 1000"]
    assert restarted.proc.returncode is not None  # stopped above
    out = capsys.readouterr().out
    assert "[launcher] victim exited unexpectedly (status -9); restarting it in 0.05 s (restart 1" in out
    assert out.count("[victim] up") == 2


@pytest.mark.parametrize(
    "name, value, reader",
    [
        ("PLAYGROUND_SESSION_TTL", "forever", "the web tier"),
        ("PLAYGROUND_CGROUP_PARENT", "Not A Name", "the sandbox host"),
        ("PLAYGROUND_SANDBOX_UID_BASE", "12", "the sandbox host"),
    ],
)
def test_the_launcher_refuses_a_bad_setting_of_either_tier_before_starting_anything(
    monkeypatch, capsys, name: str, value: str, reader: str
) -> None:
    monkeypatch.setenv(name, value)
    assert run.main() == 2, reader
    out = capsys.readouterr()
    assert out.err.startswith(f"playground: {name}={value!r}")
    assert out.out == ""


def test_a_part_is_sent_sigterm_once_however_often_it_is_stopped_and_killed_after_its_deadline(
    launcher: Launcher, tmp_path: Path, capsys
) -> None:
    ready, termed = tmp_path / "ready", tmp_path / "termed"
    script = f"trap 'echo got TERM; touch {termed}' TERM; touch {ready}; while :; do sleep 0.05; done"
    launcher.spawn("stubborn", ["sh", "-c", script], as_web=False, stop_timeout=1.0)
    eventually(ready.exists, "the part is ready (its TERM trap set)", timeout=5, interval=0.02)
    child = launcher.children[0]
    first = threading.Thread(target=child.stop)
    first.start()
    eventually(termed.exists, "the part got SIGTERM", timeout=5, interval=0.02)
    child.stop()  # again while the first stop waits, as when the launcher is stopped twice
    first.join()
    assert child.proc.returncode == -signal.SIGKILL
    out = capsys.readouterr().out
    assert out.count("[stubborn] got TERM") == 1
    assert "[launcher] stubborn did not stop within 1s; killing it" in out


def test_a_unix_socket_answers_only_once_a_server_listens_on_it(tmp_path: Path) -> None:
    path = tmp_path / "keeper.sock"
    assert not checks.socket_answers(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        assert not checks.socket_answers(path)  # bound but not listening: refused
        listener.listen(1)

        def serve_one() -> None:
            conn, _ = listener.accept()
            with conn:
                assert conn.recv(16) == b""  # the probe sends nothing
                conn.sendall(b"an answer")

        server = threading.Thread(target=serve_one)
        server.start()
        assert checks.socket_answers(path)
        server.join()


def test_the_worker_runs_as_many_processes_as_the_setting_says_and_refuses_none() -> None:
    assert config.load({}).worker_concurrency == 4
    loaded = config.load({"PLAYGROUND_WORKER_CONCURRENCY": "12"})
    argv = commands.worker(loaded.worker_concurrency)
    assert argv[argv.index("--concurrency") + 1] == "12"
    with pytest.raises(config.ConfigError, match="PLAYGROUND_WORKER_CONCURRENCY"):
        config.load({"PLAYGROUND_WORKER_CONCURRENCY": "0"})
