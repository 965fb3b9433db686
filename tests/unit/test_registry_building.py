"""What a seed's tree is made of after debootstrap (playground.registry.building): the fixed shadow
days, the seed's files and links, the package list its label shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from playground.registry import building, seeding
from playground.registry.seeds import BY_NAME, Seed

STATUS = """Package: apache2
Status: install ok installed
Version: 2.4.68-1~deb12u1

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: libapr1
Status: install ok installed
Version: 1.7.2-3+deb12u1
"""


def test_every_accounts_last_change_day_is_bookworms_release_day(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text("root:*:20790:0:99999:7:::\nwww-data:*:20791:0:99999:7:::\nodd\n")
    shadow.chmod(0o640)
    building.fix_shadow_days(shadow)
    assert shadow.read_text() == "root:*:19518:0:99999:7:::\nwww-data:*:19518:0:99999:7:::\nodd\n"
    assert shadow.stat().st_mode & 0o777 == 0o640


def test_the_packages_of_a_tree_are_the_installed_ones_in_name_order(tmp_path: Path) -> None:
    status = tmp_path / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    status.write_text(STATUS)
    assert building.packages(tmp_path) == {"apache2": "2.4.68-1~deb12u1", "libapr1": "1.7.2-3+deb12u1"}
    assert building.packages(tmp_path / "none") == {}


def test_finishing_a_tree_removes_the_builds_leftovers_and_writes_the_seeds_files(tmp_path: Path) -> None:
    for rel in (
        "var/lib/apt/lists/deb_Packages",
        "var/log/dpkg.log",
        "etc/hostname",
        "dev/null-ish",
        "var/cache/ldconfig/aux-cache",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "var/www/html").mkdir(parents=True)
    (tmp_path / "var/www/html/index.nginx-debian.html").write_text("<title>Welcome to nginx!</title>")
    building.finish(BY_NAME["nginx"], tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir())
    assert left == [
        "etc/nginx/sites-available/default",
        "usr/share/nginx/html/index.html",
        "var/log/nginx/access.log",
        "var/log/nginx/error.log",
        "var/www/html/index.nginx-debian.html",
    ]
    assert "Welcome to nginx!" in (tmp_path / "usr/share/nginx/html/index.html").read_text()
    assert (tmp_path / "var/log/nginx/error.log").readlink() == Path("/dev/stderr")
    assert "root /usr/share/nginx/html;" in (tmp_path / "etc/nginx/sites-available/default").read_text()


def test_a_seed_file_behind_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    seed = Seed("x", ("latest",), "debootstrap", "x", ("sh",), files=(("/bin/tool", "#!/bin/sh\n", 0o755),))
    with pytest.raises(building.BuildError, match="bin is a symlink in the image; name the real directory"):
        building.finish(seed, tmp_path)


def test_httpds_files_serve_it_works_from_the_official_document_root(tmp_path: Path) -> None:
    building.finish(BY_NAME["httpd"], tmp_path)
    assert (tmp_path / "usr/local/apache2/htdocs/index.html").read_text() == (
        "<html><body><h1>It works!</h1></body></html>\n"
    )
    assert (tmp_path / "usr/local/bin/httpd-foreground").stat().st_mode & 0o777 == 0o755
    assert (
        "DocumentRoot /usr/local/apache2/htdocs"
        in (tmp_path / "etc/apache2/sites-available/000-default.conf").read_text()
    )


def test_a_seeds_new_tree_replaces_those_of_its_earlier_definitions_only(tmp_path: Path) -> None:
    for name in ("httpd-aaaa", "httpd-bbbb", "hello-world-cccc", "httpd-x-dddd"):
        (tmp_path / name).mkdir()
    for name in ("httpd-aaaa.json", "httpd-bbbb.tar.gz"):
        (tmp_path / name).write_text("")
    seeding.forget_others(tmp_path, "httpd", "httpd-bbbb")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["hello-world-cccc", "httpd-bbbb", "httpd-bbbb.tar.gz", "httpd-x-dddd"]


def test_what_a_killed_seeding_was_making_is_collected_and_a_live_ones_kept(tmp_path: Path) -> None:
    gone = 2**22 + 1  # above the kernel's largest pid
    (tmp_path / f".httpd-{gone}-abc").mkdir()
    (tmp_path / f".debian-17fc3bf77b5a9b20-{gone}-xyz.partial").write_text("")
    (tmp_path / f".nginx-{os.getpid()}-def").mkdir()
    (tmp_path / "httpd-aaaa").mkdir()
    seeding.collect_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".nginx-{os.getpid()}-def", "httpd-aaaa"]
