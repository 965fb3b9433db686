"""Files in and out of a node through the API, against real sandboxes (issue 16, acceptance 4 and 8).

One stack of its own, with a small disk per sandbox (32 MiB) so that a full disk is quick to
reach and a small upload limit would not be needed: the limit stays the default, 50 MB.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.stack import Response, Stack, Terminal
from tests.waiting import eventually

MB = 1024 * 1024


@pytest.fixture(scope="module")
def files_stack() -> Iterator[Stack]:
    with Stack.running(PLAYGROUND_SANDBOX_DISK="32M") as running:
        yield running


@dataclass
class Node:
    stack: Stack
    session: dict[str, Any]
    terminal: Terminal

    def files(self, method: str, path: str, body: bytes | None = None, **query: str) -> Response:
        url = f"/api/sessions/{self.session['id']}/instances/node1/files/?" + urllib.parse.urlencode(
            {"path": path, **query}
        )
        headers = {"Authorization": f"Session {self.session['key']}", "Content-Type": "application/octet-stream"}
        return self.stack.request(method, url, raw=body, headers=headers)


@pytest.fixture
async def node(files_stack: Stack) -> AsyncIterator[Node]:
    session = files_stack.start_session()
    terminal = await Terminal.open(files_stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=30)
        eventually(lambda: files_stack.shown(session)["instances"][0]["state"] == "running", "node1 is running", 30)
        yield Node(files_stack, session, terminal)
    finally:
        await terminal.close()
        files_stack.end_session(session)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_10_mb_file_goes_in_and_comes_back_byte_identical(node: Node) -> None:
    data = os.urandom(10 * MB)
    put = node.files("PUT", "/root/big.bin", data)
    assert put.status == 201, put.body
    assert put.json() == {"path": "/root/big.bin", "size": len(data)}
    inside = await node.terminal.run("sha256sum /root/big.bin; ls -ln /root/big.bin")
    assert sha256(data) in inside  # written as the node's root, in the node's own filesystem
    assert " 0 " in inside.splitlines()[-1]  # owner uid 0 inside
    assert inside.splitlines()[-1].startswith("-rw-r--r--")  # 0644 under the node's umask
    got = node.files("GET", "/root/big.bin")
    assert got.status == 200
    assert sha256(got.body) == sha256(data)
    assert got.headers["Content-Disposition"].startswith('attachment; filename="big.bin"')


async def test_a_relative_path_lands_in_the_terminals_current_directory(node: Node) -> None:
    await node.terminal.run("cd /tmp")
    put = node.files("PUT", "notes.txt", b"hello\n", terminal="0")
    assert put.status == 201, put.body
    assert put.json()["path"] == "/tmp/notes.txt"
    assert "hello" in await node.terminal.run("cat /tmp/notes.txt")
    assert node.files("GET", "notes.txt", terminal="0").body == b"hello\n"


async def test_a_relative_path_follows_the_named_tab_not_the_first_terminal(node: Node) -> None:
    opened = node.stack.request(
        "POST",
        f"/api/sessions/{node.session['id']}/instances/node1/terminals/",
        headers={"Authorization": f"Session {node.session['key']}"},
    )
    assert opened.status == 201, opened.body
    assert opened.json()["id"] == 1
    url = f"ws://127.0.0.1:{node.stack.port}{opened.json()['terminal']}?key={node.session['key']}"
    tab = await Terminal.open(url)
    try:
        await tab.expect("# ", timeout=30)
        await tab.run("mkdir -p /srv/work && cd /srv/work")
        await node.terminal.run("cd /tmp")
        assert node.files("PUT", "a.txt", b"tab", terminal="1").json()["path"] == "/srv/work/a.txt"
        assert node.files("PUT", "a.txt", b"first", terminal="0").json()["path"] == "/tmp/a.txt"
        await tab.type("sh\n")  # a shell started in the tab: its directory is the one that counts
        await tab.run("cd /etc")
        assert node.files("PUT", "b.txt", b"nested", terminal="1").json()["path"] == "/etc/b.txt"
        missing = node.files("PUT", "c.txt", b"x", terminal="5")
        assert (missing.status, missing.json()["error"]) == (404, "unknown_terminal")
    finally:
        await tab.close()


async def test_a_relative_path_without_a_terminal_lands_in_root(node: Node) -> None:
    put = node.files("PUT", "here.txt", b"x")
    assert put.status == 201, put.body
    assert put.json()["path"] == "/root/here.txt"


async def test_an_upload_over_the_limit_is_refused_with_the_limit_in_words(node: Node) -> None:
    put = node.files("PUT", "/root/huge.bin", b"\0" * (60 * MB))
    assert put.status == 413, put.body
    assert put.json()["error"] == "too_large"
    assert put.json()["message"] == "The file is 60 MB; uploads are limited to 50 MB."
    assert "huge" not in await node.terminal.run("ls -a /root")


async def test_an_upload_to_a_full_disk_says_so_and_leaves_no_partial_file(node: Node) -> None:
    await node.terminal.run("dd if=/dev/zero of=/root/fill bs=1M count=64 2>/dev/null; df -k /root | tail -1", 30)
    put = node.files("PUT", "/root/more.bin", os.urandom(4 * MB))
    assert put.status == 507, put.body
    assert put.json()["error"] == "disk_full"
    assert "disk of node1 is full" in put.json()["message"]
    listing = await node.terminal.run("ls -a /root")
    assert "more.bin" not in listing
    assert "upload" not in listing  # nor the partial new file beside it
    await node.terminal.run("rm /root/fill")
    assert node.files("PUT", "/root/more.bin", b"fits now").status == 201


async def test_an_upload_onto_a_mount_point_such_as_etc_hosts_writes_it_in_place(node: Node) -> None:
    put = node.files("PUT", "/etc/hosts", b"127.0.0.1 localhost mine\n")
    assert put.status == 201, put.body
    assert "localhost mine" in await node.terminal.run("cat /etc/hosts")
    assert "upload" not in await node.terminal.run("ls -a /etc")


async def test_an_upload_without_a_body_is_a_400_with_a_sentence(node: Node) -> None:
    put = node.files("PUT", "/root/empty.bin", b"")
    assert put.status == 400
    assert put.json()["error"] == "no_file"
    assert put.json()["message"].endswith(".")


async def test_an_upload_onto_a_directory_or_into_a_missing_one_is_refused(node: Node) -> None:
    onto = node.files("PUT", "/tmp", b"x")
    assert (onto.status, onto.json()["error"]) == (400, "is_directory")
    into = node.files("PUT", "/no/such/dir/f", b"x")
    assert (into.status, into.json()["error"]) == (404, "no_such_file")
    assert "/no/such/dir/f" in into.json()["message"]


async def test_downloads_of_a_directory_or_a_missing_path_are_4xx_with_a_sentence(node: Node) -> None:
    directory = node.files("GET", "/etc")
    assert (directory.status, directory.json()["error"]) == (400, "is_directory")
    assert directory.json()["message"] == "The path /etc is a directory in node1; only files can be downloaded."
    missing = node.files("GET", "/root/nothing-here")
    assert (missing.status, missing.json()["error"]) == (404, "no_such_file")
    assert missing.json()["message"] == "There is no file /root/nothing-here in node1."


async def test_a_download_over_the_limit_is_refused(node: Node) -> None:
    await node.terminal.run("dd if=/dev/zero of=/root/big bs=1M count=0 seek=51 2>/dev/null; echo done")
    got = node.files("GET", "/root/big")
    assert (got.status, got.json()["error"]) == (413, "too_large")
    assert "50 MB" in got.json()["message"]


async def test_files_of_an_unknown_node_or_without_a_path_are_4xx(node: Node) -> None:
    assert node.files("GET", "").json()["error"] == "bad_path"
    url = f"/api/sessions/{node.session['id']}/instances/node9/files/?path=/etc/hostname"
    response = node.stack.request("GET", url, headers={"Authorization": f"Session {node.session['key']}"})
    assert (response.status, response.json()["error"]) == (404, "unknown_instance")
