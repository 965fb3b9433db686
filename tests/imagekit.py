"""Image test kit: tiny images made without Docker, a registry on loopback, ``python -m sandbox.images``.

The tiny image is made the way an OCI tool chain makes one, with no Docker engine: umoci
creates an OCI layout from a directory (a static busybox and a setuid copy of it), sets its
Env, WorkingDir and Cmd; skopeo turns it into a ``docker save`` archive or pushes it to
Debian's ``docker-registry`` listening on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mirrorkit import registry
from tests.stack import REPO, Stack

CACHE = REPO / "var" / "cache"  # debootstrap's packages and built trees, kept across test runs
TINY_ENV = {"GREETING": "hello-from-the-image", "PATH": "/bin"}
TINY_WORKDIR = "/srv/lab"
TINY_CMD = ["/bin/sh", "-c", 'echo "started: $GREETING in $(pwd)"; exec /bin/sh']


def images_cli(stack: Stack, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m sandbox.images ...`` as root with the stack's settings; its output for the assertion messages."""
    return subprocess.run(
        [sys.executable, "-m", "sandbox.images", *args],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_images(stack: Stack, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """``python -m sandbox.images ...`` in the background (to be killed), its output going to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sandbox.images", *args],
            cwd=REPO,
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _tool(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(argv)} failed: {result.stderr or result.stdout}"


def tiny_layout(work: Path) -> Path:
    """An OCI layout (tag ``tiny``) of a busybox rootfs with TINY_ENV, TINY_WORKDIR and TINY_CMD."""
    layout, bundle = work / "layout", work / "bundle"
    _tool("umoci", "init", "--layout", str(layout))
    _tool("umoci", "new", "--image", f"{layout}:tiny")
    _tool("umoci", "unpack", "--image", f"{layout}:tiny", str(bundle))
    rootfs = bundle / "rootfs"
    for directory in ("bin", "etc", "tmp", "root", TINY_WORKDIR.lstrip("/")):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "id", "su", "echo", "cat", "pwd", "ls", "stat"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "opt" / "setuid").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "opt" / "setuid" / "busybox")  # named busybox: it reads argv[0]
    (rootfs / "opt" / "setuid" / "busybox").chmod(0o4755)  # owned by root in the image
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
    )
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    _tool("umoci", "repack", "--image", f"{layout}:tiny", str(bundle))
    config = ["umoci", "config", "--image", f"{layout}:tiny", "--config.workingdir", TINY_WORKDIR]
    for key, value in TINY_ENV.items():
        config += ["--config.env", f"{key}={value}"]
    for word in TINY_CMD:
        config += ["--config.cmd", word]
    _tool(*config)
    return layout


def docker_archive(layout: Path, path: Path) -> Path:
    """The image of ``layout`` as a ``docker save`` archive (manifest.json, repositories, layer tars)."""
    _tool("skopeo", "--insecure-policy", "copy", f"oci:{layout}:tiny", f"docker-archive:{path}:tiny:latest")
    return path


def push(layout: Path, reference: str) -> None:
    _tool(
        "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", f"oci:{layout}:tiny", f"docker://{reference}"
    )


@contextlib.contextmanager
def local_registry(work: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (plain HTTP, storage under ``work``); yields ``host:port``."""
    with registry(work / "data", work) as running:
        yield running.address


def processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line contains ``text`` (leftover build tools)."""
    found = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(proc_dir.name) != os.getpid():
            found.append(f"{proc_dir.name}: {cmdline[:200]}")
    return found


@pytest.fixture(scope="session")
def images_stack() -> Iterator[Stack]:
    """A Playground for the image tests: room for 100 sandboxes, and the shared build cache.

    The reaper runs hourly: some tests create sandboxes through the agent without sessions,
    which the reaper's comparison with the database would rightly destroy as orphans.
    """
    with Stack.running(
        PLAYGROUND_IMAGE_CACHE=str(CACHE),
        PLAYGROUND_HOST_MAX_SANDBOXES="110",
        PLAYGROUND_IMAGE_QUOTAS="debian:pids=300",
        PLAYGROUND_REAPER_INTERVAL="3600",
    ) as running:
        yield running


@pytest.fixture(scope="session")
def debian_image(images_stack: Stack) -> float:
    """The ``debian`` image in ``images_stack``, built once per test session; returns the seconds it took
    (minutes on a clean host, seconds when the tree of the same recipe is cached under var/cache)."""
    started = time.monotonic()
    result = images_cli(images_stack, "build", "debian")
    assert result.returncode == 0, result.stdout + result.stderr
    return time.monotonic() - started
