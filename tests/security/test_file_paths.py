"""Uploads and downloads cannot reach outside the node (issue 16, acceptance 4).

The agent moves files with ``runc exec`` inside the sandbox (sandbox/runtime/files.py), so every
path is resolved by the sandbox's own view. Each test points a path of the sandbox at a host file
(a symlink to ``/etc/shadow``, to ``/proc/1/root/...``, to ``../../..``, a path with ``..``, a
symlinked directory, and in the docker profile a bind mount), uploads and downloads through it,
and checks that the host's files kept their bytes and times, that what was written is the
sandbox's (owned by its id range, in its own layer) and that the bytes read are the sandbox's own.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pytest

from tests.integration.test_files import Node
from tests.security.conftest import MAY_MOUNT, Inside
from tests.waiting import eventually

# Host files a path inside could be aimed at: the sandbox must neither change nor read them.
HOST_FILES = [Path("/etc/shadow"), Path("/etc/passwd"), Path("/etc/hostname")]


def fingerprint(paths: list[Path]) -> dict[str, tuple[str, int, int]]:
    """Each file's sha256, modification time (ns) and inode change time (ns)."""
    marks = {}
    for path in paths:
        info = path.stat()
        marks[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), info.st_mtime_ns, info.st_ctime_ns)
    return marks


def node_of(inside: Inside) -> Node:
    """The files API of the sandbox's node, once the web tier knows it runs."""
    stack, session = inside.stack, inside.session
    eventually(lambda: stack.shown(session)["instances"][0]["state"] == "running", "node1 is running", 30)
    return Node(stack, session, inside.terminal)


def host_files(inside: Inside) -> list[Path]:
    """The host's files in HOST_FILES, and the sandbox's bundle (a host file right beside its layer)."""
    return [*HOST_FILES, inside.sandbox_dir / "config.json"]


async def own_marker(inside: Inside, path: str) -> bytes:
    """Write a marker of the sandbox's own to ``path`` inside (as its root); the marker."""
    marker = f"sandbox-own-{secrets.token_hex(8)}\n"
    await inside.sh(f"printf '{marker}' > {path}; echo written")
    return marker.encode()


LINKS = {
    "absolute": "/etc/shadow",
    "through_proc_1_root": "/proc/1/root/etc/shadow",
    "through_proc_self_root": "/proc/self/root/etc/shadow",
    "relative_dot_dots": "../../../../../../../../etc/shadow",
}


@pytest.mark.parametrize("target", list(LINKS.values()), ids=list(LINKS))
async def test_a_symlink_to_a_host_path_reads_the_sandboxs_own_file_and_an_upload_replaces_only_the_link(
    inside: Inside, target: str
) -> None:
    node = node_of(inside)
    before = fingerprint(host_files(inside))
    own = await own_marker(inside, "/etc/shadow")
    await inside.sh(f"ln -sf {target} /root/x; echo linked")
    got = node.files("GET", "/root/x")
    assert got.status == 200, got.body
    assert got.body == own  # the sandbox's /etc/shadow, not the host's
    upload = b"uploaded " + secrets.token_bytes(16)
    put = node.files("PUT", "/root/x", upload)
    assert put.status == 201, put.body
    assert put.json()["path"] == "/root/x"
    assert fingerprint(host_files(inside)) == before
    written = inside.sandbox_dir / "layer" / "upper" / "root" / "x"
    assert written.read_bytes() == upload and not written.is_symlink()  # in the sandbox's own layer
    assert written.stat().st_uid == inside.id_range()  # written by the sandbox's root, not the host's
    assert own.decode().strip() in await inside.sh("cat /etc/shadow")  # the link was replaced, not followed


@pytest.mark.parametrize(
    "path", ["/root/../../../../etc/shadow", "../../../../../etc/shadow", "/proc/1/root/../../../etc/shadow"]
)
async def test_a_path_with_dot_dots_stays_inside_the_sandbox(inside: Inside, path: str) -> None:
    node = node_of(inside)
    before = fingerprint(host_files(inside))
    own = await own_marker(inside, "/etc/shadow")
    got = node.files("GET", path)
    assert (got.status, got.body) == (200, own)
    upload = secrets.token_bytes(64)
    put = node.files("PUT", path, upload)
    assert put.status == 201, put.body
    assert put.json()["path"] == "/etc/shadow"
    assert fingerprint(host_files(inside)) == before
    assert node.files("GET", "/etc/shadow").body == upload


async def test_a_symlinked_directory_leads_into_the_sandboxs_own_directory(inside: Inside) -> None:
    node = node_of(inside)
    before = fingerprint(host_files(inside))
    await inside.sh("ln -s /proc/1/root/etc /root/etcdir; echo linked")
    upload = secrets.token_bytes(64)
    put = node.files("PUT", "/root/etcdir/uploaded", upload)
    assert put.status == 201, put.body
    assert put.json()["path"] == "/etc/uploaded"  # the directory the sandbox's own kernel view resolves
    assert fingerprint(host_files(inside)) == before
    assert node.files("GET", "/etc/uploaded").body == upload
    assert (inside.sandbox_dir / "layer" / "upper" / "etc" / "uploaded").read_bytes() == upload


async def test_the_sandboxs_own_descriptors_and_proc_files_are_not_files_to_download(inside: Inside) -> None:
    node = node_of(inside)
    for path in ("/proc/self/fd/0", "/dev/zero", "/proc/1/root"):
        got = node.files("GET", path)
        assert got.status in (400, 404), (path, got.body)
        assert got.json()["error"] in ("bad_path", "is_directory", "no_such_file"), (path, got.body)


async def test_a_bind_mount_inside_leads_only_to_the_sandboxs_own_files(inside: Inside) -> None:
    if not MAY_MOUNT[inside.image]:
        assert "mounted" not in await inside.sh(
            "mkdir -p /root/m && mount --bind /etc /root/m 2>/dev/null && echo mounted"
        )
        return
    node = node_of(inside)
    before = fingerprint(host_files(inside))
    assert "mounted" in await inside.sh("mkdir -p /root/m && mount --bind /etc /root/m && echo mounted")
    own = await own_marker(inside, "/etc/shadow")
    assert node.files("GET", "/root/m/shadow").body == own
    upload = secrets.token_bytes(64)
    assert node.files("PUT", "/root/m/shadow", upload).status == 201
    assert fingerprint(host_files(inside)) == before
    assert (await inside.sh("od -An -tx1 /etc/shadow | tr -d ' \\n'")).strip() == upload.hex()


async def test_the_host_files_are_unreadable_however_the_path_is_spelled(inside: Inside) -> None:
    """No spelling of a host path downloads the host's bytes: each answer is the sandbox's or a refusal."""
    node = node_of(inside)
    host_shadow = Path("/etc/shadow").read_bytes()
    own = await own_marker(inside, "/etc/shadow")
    for path in (
        "/etc/shadow",
        "//etc//shadow",
        "/./etc/./shadow",
        "/proc/1/cwd/etc/shadow",
        "/proc/self/cwd/../etc/shadow",
    ):
        got = node.files("GET", path)
        assert got.body != host_shadow or host_shadow == own, path
        if got.status == 200:
            assert got.body == own, path
    assert os.stat("/etc/shadow").st_uid == 0
