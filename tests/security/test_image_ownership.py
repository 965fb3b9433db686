"""Preparing an image's files for the sandboxes' user namespace never reaches outside the image.

Ownership is shifted once per image (root inside = PLAYGROUND_SANDBOX_UID_BASE on the host) with
lchown: a symlink in an image, even one aimed at a host file, is re-owned itself, never followed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.images.store import ImageError, shift_ownership

BASE = 1_500_000_000


def test_shifting_ownership_never_follows_a_symlink_out_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "secret").write_text("host file")
    tree = tmp_path / "image"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "to-file").symlink_to(outside / "secret")
    (tree / "etc" / "to-dir").symlink_to(outside)
    (tree / "etc" / "relative").symlink_to("../../host/secret")
    shift_ownership(tree, BASE)
    for host_path in (outside, outside / "secret"):
        assert (host_path.stat().st_uid, host_path.stat().st_gid) == (0, 0), host_path
    for link in ("to-file", "to-dir", "relative"):
        assert os.lstat(tree / "etc" / link).st_uid == BASE


def test_a_setuid_root_file_keeps_its_mode_but_belongs_to_the_sandboxes_root(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o4755)
    hardlink = tmp_path / "same-tool"
    os.link(tool, hardlink)
    shift_ownership(tmp_path, BASE)
    st = tool.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (BASE, BASE, 0o4755)  # shifted once, not twice


def test_a_file_owned_outside_the_mapped_range_is_refused(tmp_path: Path) -> None:
    (tmp_path / "odd").write_text("")
    os.chown(tmp_path / "odd", 70000, 0)
    with pytest.raises(ImageError, match="outside the 65536 ids a sandbox maps"):
        shift_ownership(tmp_path, BASE)
