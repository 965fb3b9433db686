"""A session's home directory as a tar (``GET /api/sessions/<id>/home.tar``) from a real sandbox:
the node's own tar packs /root inside the node (the agent's ``get_tree``), and Python's tarfile
reads back what the terminal wrote there: bytes, modes, a symlink (docs/files.md)."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import AsyncIterator

import pytest

from tests.stack import Stack, Terminal
from tests.waiting import eventually

WRITE = (
    "mkdir -p /root/proj && printf 'hello\\n' > /root/proj/notes.txt && chmod 600 /root/proj/notes.txt"
    " && head -c 300000 /dev/urandom > /root/blob.bin && ln -s proj/notes.txt /root/link"
    " && sha256sum /root/blob.bin"
)


@pytest.fixture
async def session(stack: Stack) -> AsyncIterator[tuple[dict[str, object], Terminal]]:
    started = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(started))
    try:
        await terminal.expect("# ", timeout=30)
        eventually(lambda: stack.shown(started)["instances"][0]["state"] == "running", "node1 is running", 30)
        yield started, terminal
    finally:
        await terminal.close()
        stack.end_session(started)


async def test_home_tar_holds_what_the_learner_wrote_in_root_with_its_modes_and_links(
    stack: Stack, session: tuple[dict[str, object], Terminal]
) -> None:
    started, terminal = session
    written = await terminal.run(WRITE)
    match = re.search(r"\b([0-9a-f]{64})\s+/root/blob\.bin", written)
    assert match, written
    response = stack.request(
        "GET", f"/api/sessions/{started['id']}/home.tar", headers={"Authorization": f"Session {started['key']}"}
    )
    assert response.status == 200, response.body[:2000]
    assert response.headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.body)) as tar:
        names = tar.getnames()
        assert {"./proj/notes.txt", "./blob.bin", "./link"} <= set(names), names
        notes = tar.getmember("./proj/notes.txt")
        assert notes.mode & 0o777 == 0o600 and notes.uid == 0, (oct(notes.mode), notes.uid)
        assert tar.extractfile(notes).read() == b"hello\n"  # type: ignore[union-attr]
        blob = tar.extractfile("./blob.bin").read()  # type: ignore[union-attr]
        assert hashlib.sha256(blob).hexdigest() == match.group(1), "the binary file changed on the way"
        link = tar.getmember("./link")
        assert link.issym() and link.linkname == "proj/notes.txt"
