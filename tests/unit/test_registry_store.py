"""The registry mirror's store: its docker-registry configuration in each mode, and what it does
when the upstream does not answer at start (Distribution 2.8 would exit: it serves its own images
read-only instead)."""

from __future__ import annotations

import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from playground.registry import store as store_module
from playground.registry.store import Store, StoreConfig, render_config, upstream_answers
from tests.mirrorkit import MANIFEST_V2, push, registry, tiny_image
from tests.stack import free_port
from tests.waiting import eventually

ROOT = Path("/srv/mirror")


def test_with_an_upstream_the_store_is_its_pull_through_cache_on_loopback() -> None:
    text = render_config(StoreConfig(ROOT, "127.0.0.1:5051", "https://registry-1.docker.io"), "s3cret")
    assert 'proxy:\n  remoteurl: "https://registry-1.docker.io"\n' in text
    assert 'http:\n  addr: "127.0.0.1:5051"\n' in text
    assert f'rootdirectory: "{ROOT}"\n' in text
    assert "delete:\n    enabled: false\n" in text
    assert "readonly" not in text


def test_without_an_upstream_the_store_is_read_only_and_purges_nothing() -> None:
    text = render_config(StoreConfig(ROOT, "127.0.0.1:5051", None), "s3cret")
    assert "proxy" not in text
    assert "readonly:\n      enabled: true\n" in text
    assert "uploadpurging:\n      enabled: false\n" in text


def test_an_upstream_that_refuses_is_not_answering_and_says_why() -> None:
    assert "refused" in (upstream_answers(f"http://127.0.0.1:{free_port()}", timeout=2) or "")


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed")
def test_an_upstream_that_refuses_at_start_leaves_the_store_serving_its_own_images_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "mirror"
    with registry(root, tmp_path / "seeding") as seeding:
        push(seeding.address, "library/tinybox", "latest", tiny_image("seeded"))
    monkeypatch.setattr(store_module, "RETRY_UPSTREAM", 0.2)
    address = f"127.0.0.1:{free_port()}"
    store = Store(StoreConfig(root, address, f"http://127.0.0.1:{free_port()}"), tmp_path / "store.yml")
    runner = threading.Thread(target=store.run)
    runner.start()
    try:
        manifest = urllib.request.Request(
            f"http://{address}/v2/library/tinybox/manifests/latest", headers={"Accept": MANIFEST_V2}
        )
        for _ in range(100):
            try:
                with urllib.request.urlopen(manifest, timeout=2) as answer:
                    assert answer.status == 200
                    break
            except urllib.error.URLError:
                threading.Event().wait(0.1)
        else:
            pytest.fail("the store never served the seeded manifest")
        upload = urllib.request.Request(f"http://{address}/v2/library/tinybox/blobs/uploads/", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(upload, timeout=2)
        assert refused.value.code == 405  # read-only
        assert "proxy" not in (tmp_path / "store.yml").read_text()
        assert store.proc is not None and store.proc.poll() is None  # retrying the upstream keeps it serving
    finally:
        store.stopping.set()
        runner.join(20)
    assert store.proc is not None and store.proc.returncode is not None


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed")
def test_once_the_upstream_answers_the_store_starts_again_as_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "RETRY_UPSTREAM", 0.2)
    upstream_port = free_port()
    store = Store(
        StoreConfig(tmp_path / "mirror", f"127.0.0.1:{free_port()}", f"http://127.0.0.1:{upstream_port}"),
        tmp_path / "store.yml",
    )
    runner = threading.Thread(target=store.run)
    runner.start()
    try:
        with registry(tmp_path / "upstream", tmp_path / "upstream-log", upstream_port):
            config = tmp_path / "store.yml"

            def restarted_as_cache() -> bool:
                """The configuration names the upstream and the store started from it runs (the config
                is written before the new process starts: both are awaited, on a loaded machine too)."""
                proc = store.proc
                cache = config.exists() and 'remoteurl: "http://127.0.0.1:' in config.read_text()
                return cache and proc is not None and proc.poll() is None

            eventually(restarted_as_cache, "the store started again as the upstream's cache", 30, 0.1)
    finally:
        store.stopping.set()
        runner.join(20)
