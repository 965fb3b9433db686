"""The image CLI (``python -m sandbox.images``): root only, idempotent busybox builds, errors as one line,
and the sandboxes holding an image named by the ids the agent lists them under."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.images import cli
from sandbox.images import recipe as recipe_files
from sandbox.images.store import Image
from sandbox.wire import protocol
from sandbox.wire.protocol import Kind

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private PLAYGROUND_DATA_DIR for the CLI run in this process."""
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path))
    return tmp_path


def answer_list(server: socket.socket, sandboxes: list[dict[str, str]]) -> None:
    """Be the agent for one connection: read its request, reply to ``list`` with ``sandboxes``."""
    conn, _ = server.accept()
    with conn:
        kind, length = protocol.HEADER.unpack(conn.recv(protocol.HEADER.size, socket.MSG_WAITALL))
        request = json.loads(conn.recv(length, socket.MSG_WAITALL))
        assert (kind, request["op"]) == (Kind.REQUEST, "list")
        conn.sendall(protocol.encode_json(Kind.REPLY, {"ok": True, "sandboxes": sandboxes, "warm": {}}))


@pytest.fixture
def agent_socket(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    with server:
        yield path, server


@pytest.mark.root  # the store's files are chowned into the sandboxes' range
def test_build_if_missing_builds_busybox_once_and_a_plain_build_refuses_to_replace_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["build", "busybox", "--if-missing"]) == 0
    meta = data_dir / "images" / "busybox" / "image.json"
    made = meta.stat().st_mtime_ns
    assert cli.main(["build", "busybox", "--if-missing"]) == 0
    assert meta.stat().st_mtime_ns == made
    assert capsys.readouterr().out.count("image busybox ready: 1 layer(s)") == 2
    assert cli.main(["build", "busybox"]) == 1
    assert "image 'busybox' already exists; remove it first or build with --replace." in capsys.readouterr().err
    assert cli.main(["remove", "busybox"]) == 0
    assert "removed image busybox" in capsys.readouterr().out
    assert not (data_dir / "images" / "busybox").exists()


def test_a_bad_setting_ends_the_command_with_status_1_and_the_settings_message(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX_UID_BASE", "many")
    assert cli.main(["list"]) == 1
    assert "PLAYGROUND_SANDBOX_UID_BASE='many' is not a whole number" in capsys.readouterr().err


def test_anyone_but_root_is_refused_and_told_to_run_it_as_root(tmp_path: Path) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    result = subprocess.run(
        [*nobody, sys.executable, "-m", "sandbox.images", "list"],
        cwd=REPO,
        env={**os.environ, "PLAYGROUND_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "the image store belongs to root" in result.stderr
    assert "as root on the sandbox host" in result.stderr


def test_sandboxes_holding_an_image_are_named_by_their_agent_ids_and_warm_ones_as_owned_by_no_session(
    agent_socket: tuple[Path, socket.socket],
) -> None:
    path, server = agent_socket
    listed = [{"id": "a1b2", "runtime_id": "warm7"}, {"id": "c3d4", "runtime_id": "c3d4"}]
    agent = threading.Thread(target=answer_list, args=(server, listed))
    agent.start()
    words = cli.describe_users(["c3d4", "warm7", "warm9"], path)
    agent.join(10)
    assert words == (
        "sandbox(es) a1b2, c3d4 and sandbox(es) warm9 that no session owns "
        "(the warm pool, PLAYGROUND_WARM_POOL, keeps some ready)"
    )


def test_sandboxes_holding_an_image_are_named_by_runtime_id_when_the_agent_does_not_answer(tmp_path: Path) -> None:
    words = cli.describe_users(["r1", "r2"], tmp_path / "no-agent.sock")
    assert words.startswith("sandbox(es) r1, r2 (the agent did not say whose: the sandbox agent at ")


@pytest.mark.parametrize(
    ("built_from", "asked", "fresh"),
    [
        ("current", "current", True),
        ("older", "current", False),  # e.g. the docker recipe before a package was added
        ("", "current", False),  # an image of that name not built from a recipe
        ("anything", "", True),  # busybox: no recipe digest asked for
    ],
)
def test_if_missing_builds_again_an_image_whose_recipe_has_changed(built_from: str, asked: str, fresh: bool) -> None:
    digest = {"current": recipe_files.load("docker").digest(), "older": "sha256:" + "0" * 64}
    image = Image("docker", Path("/nowhere"), [], ["sh"], [], "/", 0, digest=digest.get(built_from, built_from))
    assert cli.up_to_date(image, digest.get(asked, asked)) is fresh
