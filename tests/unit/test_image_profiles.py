"""The sandbox profile an image asks for: kept in its metadata by the store, "" for images made
before profiles existed, refused when unknown, chosen by the importer with ``--profile``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.images import cli
from sandbox.images.store import ImageError, ImageStore, Made, Maker

UID_BASE = 1_000_000_000


def layer_maker(profile: str, ready: str = "") -> Maker:
    """A maker of a one-file image asking for ``profile`` (and with the ready file ``ready``)."""

    def make(work: Path) -> Made:
        layer = work / "layers" / "0"
        layer.mkdir(parents=True)
        (layer / "hello").write_text("hello\n")
        return Made(
            [layer],
            ["/bin/sh"],
            [],
            "/",
            tag="latest",
            digest="sha256:0",
            source="a test",
            profile=profile,
            ready=ready,
        )

    return make


@pytest.mark.parametrize("profile", ["", "docker"])
def test_a_made_image_has_the_profile_its_maker_gave_in_image_json_and_in_its_description(
    tmp_path: Path, profile: str
) -> None:
    store = ImageStore(tmp_path / "images", UID_BASE)
    image = store.make("lab", layer_maker(profile))
    assert image.profile == profile
    assert json.loads((tmp_path / "images" / "lab" / "image.json").read_text())["profile"] == profile
    assert store.load("lab").describe()["profile"] == profile


def test_an_image_made_before_profiles_existed_gets_the_default_policy(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", UID_BASE)
    store.make("lab", layer_maker("docker"))
    meta_path = tmp_path / "images" / "lab" / "image.json"
    meta = json.loads(meta_path.read_text())
    del meta["profile"]
    meta_path.write_text(json.dumps(meta))
    assert store.load("lab").profile == ""


def test_the_ready_file_is_kept_in_the_metadata_and_absent_means_ready_at_the_first_prompt(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", UID_BASE)
    assert store.make("lab", layer_maker("docker", "/run/started")).ready == "/run/started"
    assert store.load("lab").describe()["ready"] == "/run/started"
    meta_path = tmp_path / "images" / "lab" / "image.json"
    meta = json.loads(meta_path.read_text())
    del meta["ready"]  # as in images made before it existed
    meta_path.write_text(json.dumps(meta))
    assert store.load("lab").ready == ""


def test_an_image_asking_for_a_profile_this_playground_does_not_know_is_refused(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", UID_BASE)
    store.make("lab", layer_maker(""))
    meta_path = tmp_path / "images" / "lab" / "image.json"
    meta_path.write_text(meta_path.read_text().replace('"profile": ""', '"profile": "privileged"'))
    with pytest.raises(ImageError, match="asks for the sandbox profile 'privileged'.*build or import it again"):
        store.load("lab")


def test_import_takes_the_docker_profile_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.parser().parse_args(["import", "hello.tar", "hello"]).profile == ""
    assert cli.parser().parse_args(["import", "hello.tar", "hello", "--profile", "docker"]).profile == "docker"
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["import", "hello.tar", "hello", "--profile", "privileged"])
    assert "invalid choice: 'privileged' (choose from 'docker')" in capsys.readouterr().err
