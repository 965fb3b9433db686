"""The seeded images' JSON (playground.registry.manifests) and definitions (seeds, seeding's names)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from playground.registry import manifests, seeding
from playground.registry.seeds import BY_NAME, SEEDS, chain

BASE = manifests.LayerRef("sha256:" + "a" * 64, 1000, "sha256:" + "b" * 64, "playground seed debian")
TOP = manifests.LayerRef("sha256:" + "c" * 64, 200, "sha256:" + "d" * 64, "playground seed httpd")
HTTPD = manifests.Settings(
    cmd=["httpd-foreground"],
    workdir="/usr/local/apache2",
    ports=["80/tcp"],
    stop_signal="SIGWINCH",
    labels={"playground.seed.digest": "sha256:" + "e" * 64, "org.opencontainers.image.base.name": "debian"},
)


def test_the_configuration_says_how_docker_run_starts_the_image() -> None:
    runtime = json.loads(manifests.config(HTTPD, [BASE, TOP], "amd64"))["config"]
    assert runtime["Cmd"] == ["httpd-foreground"]
    assert runtime["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert runtime["WorkingDir"] == "/usr/local/apache2"
    assert runtime["ExposedPorts"] == {"80/tcp": {}}
    assert runtime["StopSignal"] == "SIGWINCH"
    assert runtime["Labels"]["playground.seed.digest"] == "sha256:" + "e" * 64


def test_the_configuration_names_each_layers_diff_id_and_history_bottom_first() -> None:
    document = json.loads(manifests.config(HTTPD, [BASE, TOP], "amd64"))
    assert (document["architecture"], document["os"]) == ("amd64", "linux")
    assert document["rootfs"] == {"type": "layers", "diff_ids": [BASE.diff_id, TOP.diff_id]}
    assert [line["created_by"] for line in document["history"]] == [BASE.created_by, TOP.created_by]


def test_unset_settings_are_left_out_of_the_configuration() -> None:
    runtime = json.loads(manifests.config(manifests.Settings(cmd=["sh"]), [BASE], "amd64"))["config"]
    assert set(runtime) == {"Cmd", "Env", "Labels"}


def test_the_manifest_is_schema_2_naming_the_configuration_and_the_gzip_layers() -> None:
    config = manifests.config(HTTPD, [BASE, TOP], "amd64")
    document = json.loads(manifests.manifest(config, [BASE, TOP]))
    assert (document["schemaVersion"], document["mediaType"]) == (2, manifests.MANIFEST_TYPE)
    assert document["config"] == {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": len(config),
        "digest": manifests.digest(config),
    }
    assert document["layers"] == [
        {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1000, "digest": BASE.digest},
        {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 200, "digest": TOP.digest},
    ]


def test_the_same_settings_and_layers_make_the_same_bytes() -> None:
    assert manifests.config(HTTPD, [BASE, TOP], "amd64") == manifests.config(HTTPD, [BASE, TOP], "amd64")
    config = manifests.config(HTTPD, [BASE, TOP], "amd64")
    assert manifests.manifest(config, [BASE, TOP]) == manifests.manifest(config, [BASE, TOP])


def test_a_seeds_digest_changes_with_its_files_its_base_and_its_inputs() -> None:
    httpd = BY_NAME["httpd"]
    changed = dataclasses.replace(httpd, files=(("/usr/local/apache2/htdocs/index.html", "other", 0o644),))
    assert httpd.digest("base") == httpd.digest("base")
    assert (
        len({httpd.digest("base"), changed.digest("base"), httpd.digest("other base"), httpd.digest("base", "x")}) == 4
    )


def test_httpd_and_nginx_are_layered_on_debian_and_the_others_stand_alone() -> None:
    assert [seed.name for seed in chain(BY_NAME["httpd"])] == ["debian", "httpd"]
    assert [seed.name for seed in chain(BY_NAME["nginx"])] == ["debian", "nginx"]
    assert [seed.name for seed in chain(BY_NAME["busybox"])] == ["busybox"]


def test_the_seeds_are_the_seminars_images_under_their_docker_hub_names() -> None:
    tags = {seed.reference: seed.tags for seed in SEEDS}
    assert tags == {
        "library/hello-world": ("latest",),
        "library/busybox": ("latest",),
        "library/debian": ("bookworm", "latest", "12"),
        "library/httpd": ("latest", "2.4"),
        "library/nginx": ("latest",),
    }


def test_seeds_are_selected_in_build_order_and_an_unknown_name_is_refused_with_the_known_ones() -> None:
    assert [seed.name for seed in seeding.select(["httpd", "debian"])] == ["debian", "httpd"]
    assert len(seeding.select([])) == len(SEEDS)
    with pytest.raises(seeding.SeedError, match="no seed named apache.*hello-world, busybox, debian, httpd, nginx"):
        seeding.select(["apache"])


@pytest.mark.parametrize(
    ("repo_tag", "stored"),
    [
        ("httpd:2.4", ("library/httpd", "2.4")),
        ("httpd", ("library/httpd", "latest")),
        ("docker.io/library/nginx:latest", ("library/nginx", "latest")),
        ("docker.io/nginx:1.25", ("library/nginx", "1.25")),
        ("bitnami/redis:7", ("bitnami/redis", "7")),
        ("registry.example:5000/lab/tools:1.0", None),
        ("localhost/tools:1.0", None),
        ("quay.io/coreos/etcd:v3", None),
    ],
)
def test_an_archives_tag_is_stored_under_its_docker_hub_name(repo_tag: str, stored: tuple[str, str] | None) -> None:
    assert seeding.hub_repository(repo_tag) == stored
