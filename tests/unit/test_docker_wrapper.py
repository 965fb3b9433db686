"""The docker image's ``docker`` wrapper (recipes/docker/wait-for-docker): it waits, with one message,
for an engine still starting or whose shipped images are not loaded yet, and passes every
argument to the real client.

The script runs here with its fixed paths (the real client's directory, the engine's socket, the
pid file and the images-loaded mark the init writes) pointed into a temporary directory; a tiny
HTTP server on a unix socket plays the engine's ``/_ping``, a ``sleep`` the engine's process.
"""

from __future__ import annotations

import http.server
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.images.recipe import RECIPES_DIR

WRAPPER = RECIPES_DIR / "docker" / "wait-for-docker"
WAITING = "Waiting for the Docker engine to start...\n"


class Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self.send_response(200 if self.path == "/_ping" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


class Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        conn, _ = super().get_request()
        return conn, ("engine", 0)  # http.server wants a (host, port) client address


@pytest.fixture
def engine_process(place: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process standing for dockerd, its id in the pid file as the init writes it."""
    process = subprocess.Popen(["sleep", "60"])
    (place / "dockerd.pid").write_text(f"{process.pid}\n")
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def place() -> Iterator[Path]:
    """A short directory (unix socket paths are limited to 107 bytes) with the wrapper installed as
    ``local/docker`` and a fake real client ``bin/docker`` that prints its arguments."""
    with tempfile.TemporaryDirectory(prefix="dw-", dir="/tmp") as name:
        root = Path(name)
        (root / "bin").mkdir()
        (root / "local").mkdir()
        real = root / "bin" / "docker"
        real.write_text('#!/bin/sh\necho "real docker: $*"\n')
        real.chmod(0o755)
        script = WRAPPER.read_text().replace("/usr/bin/", f"{root}/bin/")
        script = script.replace("/var/run/docker.sock", f"{root}/docker.sock")
        script = script.replace("/run/playground-dockerd.pid", f"{root}/dockerd.pid")
        script = script.replace("/run/playground-images-loaded", f"{root}/loaded")
        (root / "local" / "docker").write_text(script)
        (root / "local" / "docker").chmod(0o755)
        yield root


def start_engine(socket: Path, after: float) -> Engine:
    """An engine answering ``/_ping`` on ``socket`` from ``after`` seconds on."""
    engine = Engine(str(socket), Ping, bind_and_activate=False)

    def serve() -> None:
        time.sleep(after)
        engine.server_bind()
        engine.server_activate()
        engine.serve_forever(poll_interval=0.05)

    threading.Thread(target=serve, daemon=True).start()
    return engine


def run(place: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([place / "local" / "docker", *args], capture_output=True, text=True, timeout=40)
    return result, time.monotonic() - started


def test_a_command_waits_once_for_an_engine_still_starting_then_runs_the_real_client(
    place: Path, engine_process: subprocess.Popen[bytes]
) -> None:
    (place / "loaded").touch()
    engine = start_engine(place / "docker.sock", after=1.0)
    try:
        result, took = run(place, "run", "--name", "two words", "hello-world")
    finally:
        engine.shutdown()
    assert result.stderr == WAITING
    assert result.stdout == "real docker: run --name two words hello-world\n"
    assert 1.0 <= took < 10


def test_a_command_waits_for_the_shipped_images_to_be_loaded_once_the_engine_answers(
    place: Path, engine_process: subprocess.Popen[bytes]
) -> None:
    engine = start_engine(place / "docker.sock", after=0)
    threading.Timer(1.0, (place / "loaded").touch).start()
    try:
        result, took = run(place, "run", "hello-world")
    finally:
        engine.shutdown()
    assert (result.stdout, result.stderr) == ("real docker: run hello-world\n", WAITING)
    assert 1.0 <= took < 10


def test_an_engine_that_answers_means_no_wait_and_no_message(place: Path) -> None:
    (place / "loaded").touch()
    engine = start_engine(place / "docker.sock", after=0)
    try:
        time.sleep(0.2)
        result, _ = run(place, "ps", "-a")
    finally:
        engine.shutdown()
    assert (result.stdout, result.stderr) == ("real docker: ps -a\n", "")


def test_waiting_ends_with_a_pointer_to_the_log_when_the_engine_stops_before_it_answers(
    place: Path, engine_process: subprocess.Popen[bytes]
) -> None:
    def stop() -> None:  # and reap it: a zombie still answers kill -0 (in a sandbox, bash reaps dockerd)
        engine_process.kill()
        engine_process.wait()

    threading.Timer(1.0, stop).start()
    result, took = run(place, "ps")
    assert result.stderr == WAITING + "The Docker engine stopped; its log is /var/log/dockerd.log.\n"
    assert result.stdout == "real docker: ps\n"
    assert 1.0 <= took < 5


def test_no_engine_starting_means_no_wait(place: Path) -> None:
    result, took = run(place, "ps")  # no pid file: nothing to wait for, the real client says what it says
    assert (result.stdout, result.stderr) == ("real docker: ps\n", "")
    assert took < 2


@pytest.mark.parametrize("args", [["--version"], ["help"], []])
def test_the_clients_own_commands_never_wait_for_the_engine(
    place: Path, engine_process: subprocess.Popen[bytes], args: list[str]
) -> None:
    result, took = run(place, *args)  # an engine starting that never answers
    assert (result.stdout, result.stderr) == (f"real docker: {' '.join(args)}\n", "")
    assert took < 1
