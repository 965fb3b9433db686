"""Images end to end: the debian recipe, imports from a docker save archive and a registry,
sharing one image between 100 sandboxes, interrupted builds and imports, removal, listings.

Every image here is made by ``python -m sandbox.images`` (as root, as an operator would) into the
running stack's store; the debian image is built once per test session (``debian_image``).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from playground.config import load
from sandbox.wire.client import AgentClient
from tests import imagekit
from tests.imagekit import TINY_ENV, TINY_WORKDIR, images_cli, start_images, tiny_layout
from tests.stack import REPO, Stack, Terminal
from tests.waiting import eventually, eventually_async

PROMPT = "# "


def agent(stack: Stack) -> AgentClient:
    return AgentClient(stack.data_dir / "run" / "agent.sock")


async def open_shell(stack: Stack, image: str, ready: str = PROMPT) -> tuple[dict[str, Any], Terminal]:
    session = stack.start_session(image=image)
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect(ready, timeout=30)
    return session, terminal


def import_tiny(stack: Stack, source: str, name: str, *options: str) -> None:
    result = images_cli(stack, "import", source, name, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"image {name} ready: 1 layer(s)" in result.stdout


async def assert_tiny_starts_as_configured(stack: Stack, name: str) -> None:
    """The image's Cmd ran in its WorkingDir with its Env; the shell it execs works."""
    session, terminal = await open_shell(stack, name, ready=f"started: {TINY_ENV['GREETING']} in {TINY_WORKDIR}")
    await terminal.expect(PROMPT)
    assert (
        await terminal.run("echo $GREETING:$PATH:$(pwd)")
    ).strip() == f"{TINY_ENV['GREETING']}:{TINY_ENV['PATH']}:{TINY_WORKDIR}"
    await terminal.close()
    stack.end_session(session)


async def test_a_debian_sandbox_has_apt_python3_curl_git_vim_and_installs_a_local_deb(
    images_stack: Stack, debian_image: float
) -> None:
    session, terminal = await open_shell(images_stack, "debian")
    tools = await terminal.run(
        "python3 -c 'print(6 * 7)'; curl --version | head -1; git --version; "
        "vim --version | head -1; apt-get --version | head -1; ip -V",
        timeout=30,
    )
    for expected in ("42", "curl 7.", "git version 2.", "VIM - Vi IMproved", "apt 2.", "iproute2"):
        assert expected in tools, tools
    # A package built inside from nothing, installed by apt from the local file (no network needed).
    await terminal.run(
        "mkdir -p /tmp/hello/DEBIAN /tmp/hello/usr/local/bin && cd /tmp && "
        "printf 'Package: pg-hello\\nVersion: 1.0\\nArchitecture: all\\n"
        "Maintainer: Lab <lab@example.org>\\nDescription: a local package\\n' > hello/DEBIAN/control && "
        "printf '#!/bin/sh\\necho hello from a local package\\n' > hello/usr/local/bin/pg-hello && "
        "chmod 755 hello/usr/local/bin/pg-hello && dpkg-deb --build hello pg-hello.deb >/dev/null"
    )
    installed = await terminal.run(
        "apt-get install -y ./pg-hello.deb >/tmp/apt.log 2>&1; echo apt=$?; pg-hello; dpkg -s pg-hello | grep Status",
        timeout=60,
    )
    assert "apt=0" in installed and "hello from a local package" in installed, installed + await terminal.run(
        "tail -5 /tmp/apt.log"
    )
    assert "install ok installed" in installed
    await terminal.close()
    images_stack.end_session(session)


async def test_a_docker_save_archive_made_without_docker_is_imported_and_started_with_its_env_workdir_and_cmd(
    images_stack: Stack, tmp_path: Path
) -> None:
    archive = imagekit.docker_archive(tiny_layout(tmp_path), tmp_path / "tiny.tar")
    with tarfile.open(archive) as saved:
        assert {"manifest.json", "repositories"} <= set(saved.getnames())  # the `docker save` format
    import_tiny(images_stack, str(archive), "tiny-saved")
    await assert_tiny_starts_as_configured(images_stack, "tiny-saved")


async def test_an_image_pushed_to_a_local_registry_is_imported_and_started_with_its_env_workdir_and_cmd(
    images_stack: Stack, tmp_path: Path
) -> None:
    layout = tiny_layout(tmp_path)
    with imagekit.local_registry(tmp_path / "registry") as registry:
        imagekit.push(layout, f"{registry}/lab/tiny:v1")
        refused = images_cli(images_stack, "import", f"docker://{registry}/lab/tiny:v1", "tiny-pulled")
        assert refused.returncode != 0 and "tiny-pulled" not in (await agent(images_stack).request("images"))["images"]
        import_tiny(images_stack, f"docker://{registry}/lab/tiny:v1", "tiny-pulled", "--insecure")
    details = {d["name"]: d for d in (await agent(images_stack).request("images"))["details"]}
    assert details["tiny-pulled"]["tag"] == "v1" and details["tiny-pulled"]["digest"].startswith("sha256:")
    await assert_tiny_starts_as_configured(images_stack, "tiny-pulled")


async def test_the_docker_recipe_builds_an_image_with_the_docker_profile_an_engine_and_an_offline_hello_world(
    images_stack: Stack,
) -> None:
    """Built from recipes/docker.toml (seconds when var/cache holds its tree, about 90 s from its
    packages); its hello-world archive is also imported as a Playground image, --profile docker:
    skopeo reads the ``docker save`` format as docker load does."""
    result = images_cli(images_stack, "build", "docker", "--replace")  # the docker tests may have built it
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sandbox profile docker" in result.stdout
    details = {d["name"]: d for d in (await agent(images_stack).request("images"))["details"]}
    assert details["docker"]["profile"] == "docker"
    assert details["docker"]["cmd"] == ["/usr/bin/tini", "--", "/usr/local/sbin/playground-init"]
    rootfs = images_stack.data_dir / "images" / "docker" / "layers" / "0"
    for program in ("usr/bin/docker", "usr/sbin/dockerd", "usr/bin/containerd", "usr/sbin/runc", "usr/bin/tini"):
        assert (rootfs / program).is_file(), program
    version = subprocess.run(["chroot", str(rootfs), "/usr/bin/docker", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("Docker version 20.10."), version.stdout + version.stderr
    archive = rootfs / "usr" / "share" / "playground" / "images" / "hello-world.tar"
    owner = os.stat(rootfs / "root").st_uid
    assert owner != 0 and archive.stat().st_uid == owner  # shifted into the store's range, like the rest
    with tarfile.open(archive) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["hello-world:latest"]
    assert not (rootfs / "var" / "lib" / "docker").exists() or not any((rootfs / "var/lib/docker").iterdir())
    imported = images_cli(images_stack, "import", str(archive), "hello-docker", "--profile", "docker", "--replace")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    hello = {d["name"]: d for d in (await agent(images_stack).request("images"))["details"]}["hello-docker"]
    assert (hello["profile"], hello["cmd"]) == ("docker", ["/hello"])
    greeting = subprocess.run(
        [images_stack.data_dir / "images" / "hello-docker" / "layers" / "0" / "hello"], capture_output=True, text=True
    )
    assert "Hello from Docker, inside your Playground sandbox!" in greeting.stdout


def disk_bytes(root: Path) -> int:
    """Bytes allocated on disk below ``root`` on its own filesystem (mounts not crossed), each inode once."""
    device, seen, total = root.stat().st_dev, set(), 0
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_dev != device or (st.st_ino in seen):
                continue
            seen.add(st.st_ino)
            total += st.st_blocks * 512
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(dirpath, d)).st_dev == device]
    return total


def sandbox_bytes(directory: Path) -> int:
    """One sandbox's own storage: its directory on the host's disk plus what its writable layer holds."""
    layer = os.statvfs(directory / "layer")  # the tmpfs of PLAYGROUND_SANDBOX_DISK
    return disk_bytes(directory) + (layer.f_blocks - layer.f_bfree) * layer.f_frsize


async def test_a_hundred_debian_sandboxes_share_the_image_and_copy_none_of_it(
    images_stack: Stack, debian_image: float
) -> None:
    client, token = agent(images_stack), secrets.token_hex(3)
    ids = [f"disk{token}{i:03d}" for i in range(100)]
    sandboxes = images_stack.data_dir / "agent" / "sandboxes"
    image_dir = images_stack.data_dir / "images" / "debian"
    image_before = disk_bytes(image_dir)
    try:
        await client.request("create", id=ids[0], hostname="node1", image="debian")
        await asyncio.sleep(2)  # idle: its shell has started and waits
        one = image_before + sandbox_bytes(sandboxes / ids[0])
        for start in range(1, 100, 10):
            await asyncio.gather(
                *(client.request("create", id=i, hostname="node1", image="debian") for i in ids[start : start + 10])
            )
        await asyncio.sleep(2)
        listing = await client.request("list")
        assert {s["id"] for s in listing["sandboxes"]} >= set(ids)
        each = [sandbox_bytes(sandboxes / i) for i in ids]
        hundred = disk_bytes(image_dir) + sum(each)
        print(
            f"\nimage {image_before / 1024**2:.1f} MiB; one idle sandbox {each[0] / 1024:.0f} KiB (largest "
            f"{max(each) / 1024:.0f} KiB); image + 1 sandbox {one / 1024**2:.1f} MiB; image + 100 sandboxes "
            f"{hundred / 1024**2:.1f} MiB = {hundred / one:.3f}x"
        )
        assert hundred <= 1.1 * one, f"100 sandboxes take {hundred / one:.2f}x one sandbox plus the image"
        assert disk_bytes(image_dir) == image_before  # nothing was written into the image
        assert max(each) < 1024**2  # no sandbox holds a copy of image data (the image is 100s of MiB)
    finally:
        for start in range(0, 100, 10):
            await asyncio.gather(
                *(client.request("destroy", id=i) for i in ids[start : start + 10]), return_exceptions=True
            )
    assert not any(images_stack.wait_for_clean_host(60).values())


def wait_for_line(log: Path, pattern: str, timeout: float) -> None:
    eventually(
        lambda: re.search(pattern, log.read_text(errors="replace")),
        f"{pattern!r} in {log.name}",
        timeout,
        explain=lambda: f"{log.name} ends: {log.read_text(errors='replace')[-2000:]}",
    )


async def assert_killed_work_leaves_nothing(stack: Stack, name: str) -> None:
    """After a SIGKILL: no image, no tool left running, no mount; garbage gone after a reconciliation."""
    images = stack.data_dir / "images"
    await eventually_async(
        lambda: imagekit.processes_mentioning(str(images / ".work-")),
        "no build tool outlives the command that started it (no process mentions a .work- workspace)",
        10,
        0.1,
        until=lambda left: not left,
    )
    assert name not in (await agent(stack).request("images"))["images"]
    assert not (images / name).exists()
    assert not [m for m in stack.host_state()["mounts"] if str(images) in m]
    assert list(images.glob(".work-*")), "the test killed the command before it made its workspace"
    removed = (await agent(stack).request("reconcile"))["removed"]
    assert any(".work-" in r for r in removed), removed
    assert not list(images.glob(".work-*")) and not list((images / ".locks").iterdir())


async def test_a_build_killed_during_debootstrap_leaves_no_image_and_no_garbage_after_reconciliation(
    images_stack: Stack, debian_image: float, tmp_path: Path
) -> None:
    log = tmp_path / "build.log"
    proc = start_images(images_stack, "build", "debian", "--name", "killed-build", "--no-cache", log=log)
    wait_for_line(log, r"(Extracting|Unpacking|Configuring) ", timeout=300)  # inside debootstrap's chroot
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    await assert_killed_work_leaves_nothing(images_stack, "killed-build")


async def test_an_import_killed_with_sigkill_leaves_no_image_and_no_garbage_after_reconciliation(
    images_stack: Stack, tmp_path: Path
) -> None:
    layout = tiny_layout(tmp_path)
    archive = imagekit.docker_archive(layout, tmp_path / "tiny.tar")
    log = tmp_path / "import.log"
    proc = start_images(images_stack, "import", str(archive), "killed-import", log=log)

    def workspace() -> list[Path]:
        made = list((images_stack.data_dir / "images").glob(".work-killed-import-*"))
        if not made and proc.poll() is not None:
            raise AssertionError(f"the import ended ({proc.returncode}) before making its workspace: {log.read_text()}")
        return made

    await eventually_async(
        workspace, "the import's workspace .work-killed-import-*", 10, 0.005, explain=lambda: log.read_text()
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    await assert_killed_work_leaves_nothing(images_stack, "killed-import")


async def test_removing_an_image_in_use_names_the_sandboxes_and_works_once_they_end(
    images_stack: Stack, tmp_path: Path
) -> None:
    import_tiny(images_stack, str(imagekit.docker_archive(tiny_layout(tmp_path), tmp_path / "tiny.tar")), "tiny-busy")
    session, terminal = await open_shell(images_stack, "tiny-busy")
    client = agent(images_stack)
    holding = [s["id"] for s in (await client.request("list"))["sandboxes"] if s["image"] == "tiny-busy"]
    refused = images_cli(images_stack, "remove", "tiny-busy")
    assert refused.returncode == 1 and len(holding) == 1, refused.stderr
    assert f"in use by sandbox(es) {holding[0]}; end the sessions using them" in refused.stderr
    await terminal.close()
    images_stack.end_session(session)
    await wait_until_ended(images_stack, session)
    # A sandbox no session owns (here: made through the agent directly) holds it too, and is named.
    sandbox_id = f"busy{secrets.token_hex(4)}"
    await client.request("create", id=sandbox_id, hostname="node1", image="tiny-busy")
    refused = images_cli(images_stack, "remove", "tiny-busy")
    assert refused.returncode == 1 and f"in use by sandbox(es) {sandbox_id};" in refused.stderr
    await client.request("destroy", id=sandbox_id)
    removed = images_cli(images_stack, "remove", "tiny-busy")
    assert removed.returncode == 0, removed.stderr
    assert "tiny-busy" not in (await client.request("images"))["images"]
    assert not (images_stack.data_dir / "images" / "tiny-busy").exists()


def test_the_api_lists_images_with_size_layers_and_quotas_where_settings_override_the_recipe(
    images_stack: Stack, debian_image: float
) -> None:
    time.sleep(5.1)  # the web tier caches the agent's image list for 5 s
    listed = {i["name"]: i for i in images_stack.request("GET", "/api/images/").json()["images"]}
    debian = listed["debian"]
    assert debian["ready"] and debian["layers"] == 1 and debian["tag"] == "bookworm" and debian["size"] > 100 * 1024**2
    base = load(images_stack.env).quotas
    # memory and disk from the recipe, pids from PLAYGROUND_IMAGE_QUOTAS="debian:pids=300", cpus site-wide.
    expected = {"memory_bytes": 1024**3, "disk_bytes": 512 * 1024**2, "pids": 300, "cpus": base.cpus}
    assert debian["limits"] == expected
    session = images_stack.start_session(image="debian")
    assert session["limits"] == expected
    images_stack.end_session(session)


def test_the_admin_lists_images_with_their_size_and_layer_count(images_stack: Stack, debian_image: float) -> None:
    password = secrets.token_hex(8)
    result = manage_shell(
        images_stack,
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('imageadmin', 'a@example.org', '{password}')",
    )
    assert result.returncode == 0, result.stderr
    page = admin_page(images_stack, "imageadmin", password, "/admin/sandboxes/image/")
    row = re.search(r"<tr>.*?debian.*?</tr>", page, re.S)
    assert row, page[-3000:]
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(0), re.S)
    text = [re.sub(r"<[^>]+>", "", c).strip() for c in cells]
    assert "bookworm" in text and "1" in text and any(re.fullmatch(r"\d{3}\.\d", t) for t in text), text


async def wait_until_ended(stack: Stack, session: dict[str, Any], timeout: float = 30) -> None:
    await eventually_async(
        lambda: stack.request(
            "GET", f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"}
        ).json(),
        f"the end of session {session['id']}",
        timeout,
        0.2,
        until=lambda shown: shown["state"] == "ended",
    )


def manage_shell(stack: Stack, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def admin_page(stack: Stack, user: str, password: str, path: str) -> str:
    """Log in to the Django admin as a browser would (CSRF cookie and token) and fetch ``path``."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = f"{stack.base_url}/admin/login/?next={path}"
    form = opener.open(login, timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": user, "password": password, "next": path}
    ).encode()
    request = urllib.request.Request(login, data=data, headers={"Referer": login, "Origin": stack.base_url})
    return opener.open(request, timeout=30).read().decode()


@pytest.fixture(autouse=True)
def end_image_sessions(request: pytest.FixtureRequest) -> Any:
    yield
    if "images_stack" in request.fixturenames:
        request.getfixturevalue("images_stack").end_started_sessions()
