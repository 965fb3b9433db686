"""Reading an imported image's settings the way `docker run` does, and naming its source."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from sandbox.images import oci
from sandbox.images.store import ImageError

MANIFEST = {"digest": "sha256:abc", "layers": [{}, {}, {}]}


def test_entrypoint_and_cmd_are_joined_and_env_overrides_the_defaults() -> None:
    config = {
        "config": {
            "Entrypoint": ["/entry"],
            "Cmd": ["--flag"],
            "Env": ["PATH=/opt/bin", "A=b=c"],
            "WorkingDir": "/work",
            "User": "1000",
        }
    }
    made = oci.settings(config, MANIFEST)
    assert made.cmd == ["/entry", "--flag"]
    assert made.workdir == "/work"
    assert made.user == "1000"
    assert made.env == ["PATH=/opt/bin", "TERM=xterm-256color", "HOME=/root", "A=b=c"]
    assert made.layers == 3
    assert made.digest == "sha256:abc"


def test_an_image_without_cmd_or_workdir_starts_sh_in_the_root() -> None:
    made = oci.settings({"config": {}}, MANIFEST)
    assert made.cmd == ["/bin/sh"]
    assert made.workdir == "/"


@pytest.mark.parametrize(
    "reference, tag",
    [
        ("docker://127.0.0.1:5000/tools:v2", "v2"),
        ("docker://127.0.0.1:5000/tools", "latest"),
        ("docker://registry/a/b@sha256:0123", "latest"),
        ("docker-archive:/x.tar", "latest"),
    ],
)
def test_the_tag_comes_from_the_reference(reference: str, tag: str) -> None:
    assert oci.tag_of(reference) == tag


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_file_is_recognised_as_a_docker_save_or_an_oci_archive(tmp_path: Path) -> None:
    saved = _tar(tmp_path / "saved.tar", {"manifest.json": json.dumps([]).encode(), "repositories": b"{}"})
    archive = _tar(tmp_path / "oci.tar", {"oci-layout": b"{}", "index.json": b"{}"})
    assert oci.source_reference(str(saved)) == f"docker-archive:{saved}"
    assert oci.source_reference(str(archive)) == f"oci-archive:{archive}"
    assert oci.source_reference("docker://127.0.0.1:5000/x:1") == "docker://127.0.0.1:5000/x:1"


def test_anything_else_is_refused_with_the_accepted_forms(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="docker://"):
        oci.source_reference(str(tmp_path / "missing.tar"))
    other = _tar(tmp_path / "other.tar", {"hello.txt": b"hi"})
    with pytest.raises(ImageError, match="neither manifest.json"):
        oci.source_reference(str(other))
