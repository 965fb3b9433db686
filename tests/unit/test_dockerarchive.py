"""The ``docker save`` archive writer: what ``docker load`` reads back (manifest, config, layer)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from sandbox.images import dockerarchive

PROGRAM = b"\x7fELF not really, but bytes all the same"


def read(archive: bytes) -> dict[str, bytes]:
    """Every regular file of a tar archive, by name."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_the_manifest_names_the_tag_the_config_and_the_layer_whose_sha256_is_the_configs_diff_id() -> None:
    layer = dockerarchive.layer_tar({"/hello": (PROGRAM, 0o755)})
    files = read(dockerarchive.archive("hello-world:latest", layer, ["/hello"], ["PATH=/bin"], "amd64"))
    [manifest] = json.loads(files["manifest.json"])
    assert manifest["RepoTags"] == ["hello-world:latest"]
    [layer_name] = manifest["Layers"]
    assert files[layer_name] == layer
    config = json.loads(files[manifest["Config"]])
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}
    assert manifest["Config"] == hashlib.sha256(files[manifest["Config"]]).hexdigest() + ".json"
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"] == {"Cmd": ["/hello"], "Env": ["PATH=/bin"]}


def test_the_layer_holds_the_files_with_their_modes_and_parent_directories_owned_by_root() -> None:
    layer = dockerarchive.layer_tar({"/usr/local/bin/hello": (PROGRAM, 0o750)})
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("usr/local/bin/hello").read() == PROGRAM  # type: ignore[union-attr]
    assert [n for n, m in members.items() if m.isdir()] == ["usr", "usr/local", "usr/local/bin"]
    assert members["usr/local/bin/hello"].mode == 0o750
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, 0)}


def test_the_same_program_always_makes_the_same_archive() -> None:
    def make() -> bytes:
        layer = dockerarchive.layer_tar({"/hello": (PROGRAM, 0o755)})
        return dockerarchive.archive("hello-world:latest", layer, ["/hello"], [], "amd64")

    assert make() == make()
