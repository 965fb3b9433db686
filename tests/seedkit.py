"""Seeding test kit: ``manage.py registry ...`` on a data dir of the test's, and reading back what it pushed.

Reading goes through the same kind of registry the seeding writes through
(:func:`playground.registry.distribution.writable_registry` on the test's storage), with skopeo,
the way an engine's pull would: inspect, copy into an OCI layout, unpack with umoci.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playground.registry.distribution import writable_registry
from playground.registry.paths import mirror_root
from tests.dockerkit import build_docker_image
from tests.imagekit import CACHE
from tests.stack import REPO, Stack


def registry_command(data_dir: Path, cache: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``manage.py registry ARGS`` with ``data_dir`` and the image cache ``cache``; asserts it succeeded."""
    env = dict(
        os.environ,
        PLAYGROUND_DATA_DIR=str(data_dir),
        PLAYGROUND_IMAGE_CACHE=str(cache),
        PLAYGROUND_SECRET_KEY="registry-tests-only",
        DJANGO_SETTINGS_MODULE="playground.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "registry", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"manage.py registry {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[str]:
    """A registry on the storage of ``data_dir`` for the test's reads; yields ``host:port``."""
    with writable_registry(mirror_root(data_dir)) as address:
        yield address


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"
    return result.stdout


def inspect(address: str, reference: str, raw: bool = False) -> dict[str, Any]:
    """``skopeo inspect`` of ``reference`` (``library/busybox:latest``) in the registry at ``address``."""
    extra = ["--raw"] if raw else []
    return dict(json.loads(skopeo("inspect", "--tls-verify=false", *extra, f"docker://{address}/{reference}")))


def pull_rootfs(address: str, reference: str, work: Path) -> Path:
    """The file system of ``reference``, copied out of the registry by skopeo and unpacked by umoci."""
    layout = work / "layout"
    skopeo("copy", "--src-tls-verify=false", f"docker://{address}/{reference}", f"oci:{layout}:pulled")
    result = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:pulled", str(work / "bundle")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return work / "bundle" / "rootfs"


@pytest.fixture(scope="session")
def seeded_stack() -> Iterator[Stack]:
    """A stack whose registry mirror holds every seeded image (``manage.py registry seed`` before it
    starts, trees and layers from the shared var/cache) and has no upstream: its engines pull
    hello-world, busybox, debian, httpd and nginx from the mirror alone. Its docker image is built.
    About 30 s with var/cache warm, a few minutes cold; shared by the tests of the seeded images."""
    stack = Stack.create(
        PLAYGROUND_REGISTRY_UPSTREAM="none",
        PLAYGROUND_IMAGE_CACHE=str(CACHE),
        PLAYGROUND_REAPER_INTERVAL="3600",  # some tests make sandboxes through the agent, without sessions
    )
    try:
        registry_command(stack.data_dir, CACHE, "seed", timeout=1200)
    except BaseException:
        shutil.rmtree(stack.data_dir, ignore_errors=True)  # never started: stop would not remove it
        raise
    try:
        stack.start()
        build_docker_image(stack)
        yield stack
    finally:
        stack.stop()
