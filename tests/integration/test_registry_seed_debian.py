"""``manage.py registry seed debian httpd nginx``: debootstrap builds (cached under var/cache, as the
image tests' are), pulled back with skopeo and umoci, and httpd's and nginx's pages served by their
own file systems (chroot in a network namespace of their own, port 80 of its loopback).

About 2 min 20 s with nothing cached (three debootstraps), a few seconds once var/cache holds the trees."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from playground.registry.distribution import image_config, tag_digest
from playground.registry.paths import mirror_root
from tests.imagekit import CACHE
from tests.seedkit import inspect, pull_rootfs, registry_command, serving

pytestmark = pytest.mark.alongside

# Starts the server in the image's tree with /proc and the host's /dev mounted in a private mount
# namespace, then asks its loopback's port 80 for / (for up to 15 s); everything ends with the namespace.
SERVE = """
rootfs=$1; shift
ip link set lo up
mount -t proc proc "$rootfs/proc"
mount --rbind /dev "$rootfs/dev"
cd "$rootfs"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin chroot "$rootfs" "$@" &
exec python3 -c '
import time, urllib.request
for _ in range(150):
    try:
        print(urllib.request.urlopen("http://127.0.0.1/", timeout=2).read().decode())
        break
    except OSError:
        time.sleep(0.1)
'
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir seeded with debian, httpd and nginx (trees and layers from the shared var/cache)."""
    data_dir = tmp_path_factory.mktemp("data")
    registry_command(data_dir, CACHE, "seed", "debian", "httpd", "nginx", timeout=1200)
    return data_dir


def page(rootfs: Path, *command: str) -> str:
    """What the server ``command`` of the tree ``rootfs`` answers for / on port 80."""
    result = subprocess.run(
        [
            "unshare",
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            SERVE,
            "sh",
            str(rootfs),
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


def test_debians_tags_name_one_image(seeded: Path) -> None:
    root = mirror_root(seeded)
    assert len({tag_digest(root, "library/debian", tag) for tag in ("bookworm", "latest", "12")} - {""}) == 1


def test_httpd_and_nginx_share_debians_layer_and_add_one_each(seeded: Path) -> None:
    with serving(seeded) as address:
        debian = inspect(address, "library/debian:bookworm")["Layers"]
        httpd = inspect(address, "library/httpd:2.4")["Layers"]
        nginx = inspect(address, "library/nginx:latest")["Layers"]
    assert len(debian) == 1
    assert httpd[0] == nginx[0] == debian[0]
    assert len(httpd) == len(nginx) == 2 and httpd[1] != nginx[1]


def test_httpd_starts_like_the_official_image(seeded: Path) -> None:
    with serving(seeded) as address:
        raw = inspect(address, "library/httpd:latest")
        config = inspect(address, "library/httpd:latest", raw=True)
    assert raw["Labels"]["org.opencontainers.image.base.name"] == "docker.io/library/debian:bookworm"
    assert "apache2=2.4." in raw["Labels"]["playground.seed.packages"]
    assert config["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"


def test_httpd_serves_it_works_on_port_80_and_logs_to_stdout(seeded: Path, tmp_path: Path) -> None:
    with serving(seeded) as address:
        rootfs = pull_rootfs(address, "library/httpd:latest", tmp_path)
    runtime = (tmp_path / "bundle" / "config.json").read_text()
    assert '"httpd-foreground"' in runtime and '"/usr/local/apache2"' in runtime
    assert (rootfs / "var/log/apache2/access.log").readlink() == Path("/dev/stdout")
    served = page(rootfs, "httpd-foreground")
    assert "<html><body><h1>It works!</h1></body></html>" in served, served
    assert '"GET / HTTP/1.1" 200' in served, served  # the access log, on stdout


def test_nginx_serves_its_welcome_page_on_port_80(seeded: Path, tmp_path: Path) -> None:
    with serving(seeded) as address:
        rootfs = pull_rootfs(address, "library/nginx:latest", tmp_path)
        config = inspect(address, "library/nginx:latest")
    assert re.search(r"(^| )nginx=1\.", config["Labels"]["playground.seed.packages"]), config["Labels"]
    served = page(rootfs, "nginx", "-g", "daemon off;")
    assert "<title>Welcome to nginx!</title>" in served, served


def test_the_configurations_have_ports_and_stop_signals(seeded: Path) -> None:
    found = {}
    for name in ("httpd", "nginx", "debian"):
        image = image_config(mirror_root(seeded), f"library/{name}", "latest")
        assert image is not None, name
        found[name] = image[1]["config"]
    assert (found["httpd"]["ExposedPorts"], found["httpd"]["StopSignal"]) == ({"80/tcp": {}}, "SIGWINCH")
    assert (found["nginx"]["ExposedPorts"], found["nginx"]["StopSignal"]) == ({"80/tcp": {}}, "SIGQUIT")
    assert found["nginx"]["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert found["debian"]["Cmd"] == ["bash"] and "ExposedPorts" not in found["debian"]
