"""Layers of the seeded images (playground.registry.layers): a tree's whole layer and the difference
between two trees, in the OCI whiteout form, byte for byte reproducible."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from pathlib import Path

from playground.registry import layers


def tree(root: Path, files: dict[str, str | None]) -> Path:
    """Make ``files`` under ``root``: a path ending in / is a directory, None content a directory too."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel.rstrip("/")
        if rel.endswith("/") or content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return root


def fake_stat(mode: int, uid: int = 0, gid: int = 0, size: int = 0, rdev: int = 0) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, gid, size, 0, 0, 0), {"st_rdev": rdev})


def names(upper: Path, lower: Path | None = None) -> list[str]:
    return [info.name for info, _ in layers.changes(upper, lower)]


def members(layer: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(layer) as archive:
        return archive.getmembers()


def test_a_trees_whole_layer_holds_every_entry_in_name_order(tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"etc/passwd": "root", "bin/sh": "#!", "a": "x", "etc/group": "g"})
    assert names(upper) == ["a", "bin", "bin/sh", "etc", "etc/group", "etc/passwd"]


def test_every_entry_has_mtime_zero_numeric_owners_and_no_owner_names(tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"etc/passwd": "root"})
    layers.write_layer(upper, tmp_path / "layer.tar.gz")
    for member in members(tmp_path / "layer.tar.gz"):
        assert (member.mtime, member.uname, member.gname) == (0, "", ""), member.name
        assert (member.uid, member.gid) == (os.getuid(), os.getgid()), member.name


def test_an_entrys_owner_mode_and_device_numbers_come_from_its_stat() -> None:
    info = layers.entry("dev/tty", fake_stat(stat.S_IFCHR | 0o620, uid=33, gid=5, rdev=os.makedev(5, 0)))
    assert info is not None
    assert (info.type, info.mode, info.uid, info.gid) == (tarfile.CHRTYPE, 0o620, 33, 5)
    assert (info.devmajor, info.devminor) == (5, 0)
    setuid = layers.entry("bin/su", fake_stat(stat.S_IFREG | 0o4755, size=12))
    assert setuid is not None and (setuid.mode, setuid.size) == (0o4755, 12)


def test_a_socket_is_left_out() -> None:
    assert layers.entry("run/sock", fake_stat(stat.S_IFSOCK | 0o755)) is None


def test_an_unchanged_tree_makes_an_empty_difference(tmp_path: Path) -> None:
    files = {"etc/passwd": "root", "usr/bin/": None}
    assert names(tree(tmp_path / "upper", files), tree(tmp_path / "lower", files)) == []


def test_a_file_added_is_written_after_the_directories_on_its_way(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/passwd": "root", "usr/bin/ls": "ls"})
    upper = tree(tmp_path / "upper", {"etc/passwd": "root", "usr/bin/ls": "ls", "usr/bin/apache2": "httpd"})
    assert names(upper, lower) == ["usr", "usr/bin", "usr/bin/apache2"]


def test_a_file_whose_content_or_mode_changed_is_written_whole(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/motd": "old", "etc/script": "x"})
    upper = tree(tmp_path / "upper", {"etc/motd": "new", "etc/script": "x"})
    (upper / "etc" / "script").chmod(0o755)
    assert names(upper, lower) == ["etc", "etc/motd", "etc/script"]


def test_a_file_deleted_is_a_whiteout_beside_it(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"var/log/dpkg.log": "x", "var/log/keep": "k", "opt/gone/deep": "d"})
    upper = tree(tmp_path / "upper", {"var/log/keep": "k", "opt/": None})
    assert names(upper, lower) == ["opt", "opt/.wh.gone", "var", "var/log", "var/log/.wh.dpkg.log"]


def test_a_directory_that_keeps_none_of_its_entries_is_opaque_then_holds_its_new_ones(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"var/www/html/index.html": "debian", "var/www/html/old.css": "c"})
    upper = tree(tmp_path / "upper", {"var/www/html/index.htm": "ours"})
    assert names(upper, lower) == [
        "var",
        "var/www",
        "var/www/html",
        "var/www/html/.wh..wh..opq",
        "var/www/html/index.htm",
    ]


def test_whiteouts_are_empty_files(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"a/b": "x", "a/c": "y"})
    upper = tree(tmp_path / "upper", {"a/c": "y"})
    layers.write_layer(upper, tmp_path / "layer.tar.gz", lower)
    whiteout = {m.name: m for m in members(tmp_path / "layer.tar.gz")}["a/.wh.b"]
    assert (whiteout.type, whiteout.size) == (tarfile.REGTYPE, 0)


def test_a_file_replaced_by_a_directory_is_written_as_the_directory_with_its_content(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/conf": "file"})
    upper = tree(tmp_path / "upper", {"etc/conf/a.conf": "dir now"})
    assert names(upper, lower) == ["etc", "etc/conf", "etc/conf/a.conf"]


def test_a_file_with_two_names_is_written_once_and_linked_once(tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"bin/busybox": "binary"})
    os.link(upper / "bin" / "busybox", upper / "bin" / "sh")
    found = {info.name: info for info, _ in layers.changes(upper)}
    assert found["bin/busybox"].type == tarfile.REGTYPE
    assert (found["bin/sh"].type, found["bin/sh"].linkname, found["bin/sh"].size) == (tarfile.LNKTYPE, "bin/busybox", 0)


def test_a_hard_link_added_beside_an_unchanged_name_is_written_as_a_file(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"bin/busybox": "binary"})
    upper = tree(tmp_path / "upper", {"bin/busybox": "binary"})
    os.link(upper / "bin" / "busybox", upper / "bin" / "ls")
    found = {info.name: info for info, _ in layers.changes(upper, lower)}
    assert list(found) == ["bin", "bin/ls"]
    assert found["bin/ls"].type == tarfile.REGTYPE


def test_a_symlinks_target_is_kept_and_a_changed_target_written(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"var/log/": None})
    (lower / "var" / "log" / "access.log").symlink_to("/var/log/old")
    (lower / "var" / "log" / "same").symlink_to("target")
    upper = tree(tmp_path / "upper", {"var/log/": None})
    (upper / "var" / "log" / "access.log").symlink_to("/dev/stdout")
    (upper / "var" / "log" / "same").symlink_to("target")
    found = {info.name: info for info, _ in layers.changes(upper, lower)}
    assert list(found) == ["var", "var/log", "var/log/access.log"]
    assert (found["var/log/access.log"].type, found["var/log/access.log"].linkname) == (tarfile.SYMTYPE, "/dev/stdout")


def test_the_same_tree_makes_the_same_layer_bytes_and_digests(tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"etc/passwd": "root", "bin/sh": "#!"})
    first = layers.write_layer(upper, tmp_path / "one.tar.gz")
    os.utime(upper / "etc" / "passwd", (12345, 12345))  # mtimes do not count
    second = layers.write_layer(upper, tmp_path / "two.tar.gz")
    assert first == second
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()


def test_a_layers_digest_is_of_the_gzip_and_its_diff_id_of_the_tar(tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"hello": "hi"})
    written = layers.write_layer(upper, tmp_path / "layer.tar.gz")
    compressed = (tmp_path / "layer.tar.gz").read_bytes()
    assert written.digest == "sha256:" + hashlib.sha256(compressed).hexdigest()
    assert written.size == len(compressed)
    assert written.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(compressed)).hexdigest()
    assert compressed[4:8] == b"\0\0\0\0"  # gzip's header time
