"""``manage.py registry seed hello-world busybox`` and ``registry import``: real builds (gcc, the host's
busybox-static), a real docker-registry, pulled back with skopeo and umoci. A few seconds in all."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from playground.registry.distribution import tag_digest
from playground.registry.paths import mirror_root
from sandbox.images import dockerarchive
from tests.seedkit import inspect, pull_rootfs, registry_command, serving


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A data dir seeded with hello-world and busybox from an empty cache; (data dir, cache, output)."""
    data_dir, cache = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("cache")
    result = registry_command(data_dir, cache, "seed", "hello-world", "busybox")
    return data_dir, cache, result.stdout


def digests(data_dir: Path) -> dict[str, str]:
    root = mirror_root(data_dir)
    return {name: tag_digest(root, f"library/{name}", "latest") for name in ("hello-world", "busybox")}


def test_seeding_pushes_each_image_under_its_docker_hub_name(seeded: tuple[Path, Path, str]) -> None:
    data_dir, _, output = seeded
    assert "hello-world: pushed library/hello-world:latest" in output
    assert "busybox: pushed library/busybox:latest" in output
    assert all(digest.startswith("sha256:") for digest in digests(data_dir).values()), output


def test_a_seeded_image_is_schema_2_with_gzip_layers(seeded: tuple[Path, Path, str]) -> None:
    with serving(seeded[0]) as address:
        manifest = inspect(address, "library/busybox:latest", raw=True)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.docker.image.rootfs.diff.tar.gzip"]


def test_a_seeded_images_labels_say_it_was_built_here_and_from_what(seeded: tuple[Path, Path, str]) -> None:
    data_dir, _, _ = seeded
    with serving(data_dir) as address:
        labels = inspect(address, "library/busybox:latest")["Labels"]
        pulled_digest = inspect(address, "library/busybox:latest")["Digest"]
    assert "Built locally by Playground" in labels["org.opencontainers.image.description"]
    assert labels["org.opencontainers.image.source"].startswith("Debian busybox-static ")
    assert labels["org.opencontainers.image.base.name"] == "scratch"
    assert labels["playground.seed.packages"].startswith("busybox-static=")
    assert labels["playground.seed.digest"].startswith("sha256:")
    assert pulled_digest == digests(data_dir)["busybox"]


def test_hello_world_pulled_back_runs_and_says_what_happened(seeded: tuple[Path, Path, str], tmp_path: Path) -> None:
    with serving(seeded[0]) as address:
        rootfs = pull_rootfs(address, "library/hello-world:latest", tmp_path)
        config = inspect(address, "library/hello-world:latest")
    assert sorted(p.name for p in rootfs.iterdir()) == ["hello"]
    assert config["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    said = subprocess.run([str(rootfs / "hello")], capture_output=True, text=True, check=True).stdout
    assert "Hello from Docker, inside your Playground sandbox!" in said


def test_busybox_pulled_back_has_its_applets_as_hard_links_and_a_shell(
    seeded: tuple[Path, Path, str], tmp_path: Path
) -> None:
    with serving(seeded[0]) as address:
        rootfs = pull_rootfs(address, "library/busybox:latest", tmp_path)
    assert (rootfs / "bin" / "sh").stat().st_ino == (rootfs / "bin" / "busybox").stat().st_ino
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    said = subprocess.run(["chroot", str(rootfs), "sh", "-c", "echo $((6*7))"], capture_output=True, text=True)
    assert said.stdout == "42\n", said.stderr


def test_reseeding_an_unchanged_definition_is_a_no_op(seeded: tuple[Path, Path, str]) -> None:
    data_dir, cache, _ = seeded
    before = digests(data_dir)
    output = registry_command(data_dir, cache, "seed", "hello-world", "busybox").stdout
    assert "hello-world: up to date" in output and "busybox: up to date" in output, output
    assert "pushed" not in output
    assert digests(data_dir) == before


def test_rebuilding_from_an_empty_cache_makes_the_same_digests(seeded: tuple[Path, Path, str], tmp_path: Path) -> None:
    data_dir, _, _ = seeded
    before = digests(data_dir)
    output = registry_command(data_dir, tmp_path / "fresh-cache", "seed", "--force", "hello-world", "busybox").stdout
    assert "busybox: building its tree" in output, output
    assert digests(data_dir) == before


def two_image_archive(path: Path) -> Path:
    """A ``docker save`` archive of two one-layer images, the first with two tags: no Docker, no network."""
    saved = [
        dockerarchive.archive(
            "tools:1.0", dockerarchive.layer_tar({"/tool": (b"#!/bin/sh\n", 0o755)}), ["/tool"], [], "amd64"
        ),
        dockerarchive.archive(
            "lab/site:v2", dockerarchive.layer_tar({"/site": (b"page\n", 0o644)}), ["/site"], [], "amd64"
        ),
    ]
    entries: dict[str, bytes] = {}
    manifest = []
    for archive in saved:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    content = tar.extractfile(member)
                    assert content is not None
                    if member.name == "manifest.json":
                        manifest += json.loads(content.read())
                    else:
                        entries[member.name] = content.read()
    manifest[0]["RepoTags"].append("docker.io/library/tools:latest")
    entries["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for name, content in sorted(entries.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def test_importing_an_archive_pushes_every_image_and_tag_it_holds(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    archive = two_image_archive(tmp_path / "brought.tar")
    output = registry_command(data_dir, tmp_path / "cache", "import", str(archive)).stdout
    assert "imported tools:1.0 as library/tools:1.0" in output, output
    assert "imported lab/site:v2 as lab/site:v2" in output, output
    with serving(data_dir) as address:
        assert inspect(address, "library/tools:latest")["Digest"] == inspect(address, "library/tools:1.0")["Digest"]
        assert inspect(address, "lab/site:v2")["Layers"]
    listing = registry_command(data_dir, tmp_path / "cache", "list").stdout
    assert any(
        line.split()[:2] == ["library/tools", "1.0,latest"] and line.endswith("imported")
        for line in listing.splitlines()
    ), listing


def test_the_list_tells_seeded_images_from_imported_ones(seeded: tuple[Path, Path, str]) -> None:
    data_dir, cache, _ = seeded
    rows = {line.split()[0]: line for line in registry_command(data_dir, cache, "list").stdout.splitlines()[1:]}
    assert rows["library/busybox"].endswith("seeded"), rows
    assert rows["library/hello-world"].split()[1] == "latest", rows


def test_seeding_leaves_an_imported_image_alone_unless_forced(seeded: tuple[Path, Path, str], tmp_path: Path) -> None:
    data_dir, cache = tmp_path / "data", seeded[1]
    registry_command(data_dir, cache, "seed", "busybox")
    saved = dockerarchive.archive(
        "busybox:latest", dockerarchive.layer_tar({"/sh": (b"x", 0o755)}), ["/sh"], [], "amd64"
    )
    (tmp_path / "busybox.tar").write_bytes(saved)
    registry_command(data_dir, cache, "import", str(tmp_path / "busybox.tar"))
    imported = tag_digest(mirror_root(data_dir), "library/busybox", "latest")
    output = registry_command(data_dir, cache, "seed", "busybox").stdout
    assert "busybox: latest holds an imported image, left as it is" in output, output
    assert tag_digest(mirror_root(data_dir), "library/busybox", "latest") == imported
    registry_command(data_dir, cache, "seed", "--force", "busybox")
    assert tag_digest(mirror_root(data_dir), "library/busybox", "latest") == digests(seeded[0])["busybox"]
