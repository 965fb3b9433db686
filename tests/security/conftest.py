"""Fixtures for escape attempts: a fresh sandbox per test, with a compiled probe inside.

Every test taking ``inside`` (or ``image``) runs twice: against a sandbox of the ``busybox`` image (the
default policy) and of the ``docker`` image (the docker profile: docs/security.md, "The docker profile"),
whose engine answers before the test starts, as in a visitor's sandbox. Where the docker profile opens
something on purpose, the test says what it expects there instead, in a table keyed by image.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from sandbox.host import cgroups
from sandbox.settings import load
from tests.dockerkit import ENGINE_WAIT, build_docker_image
from tests.stack import Stack, Terminal
from tests.waiting import eventually_async

HERE = Path(__file__).resolve().parent

# The commands a sandbox of each image runs before the test's own (their /proc/<pid>/comm): its shell,
# and in a docker sandbox the init (tini) and the engine. Anything else seen inside is not its own.
OWN_PROCESSES = {"busybox": {"sh"}, "docker": {"tini", "bash", "dockerd", "containerd"}}
# Whether root inside may mount and unmount (CAP_SYS_ADMIN in its user namespace, the mount calls in its
# seccomp filter): only with the docker profile, whose inner runc mounts its containers' filesystems.
MAY_MOUNT = {"busybox": False, "docker": True}
# What must still answer after an abuse for the sandbox to be whole: the shell, and a docker sandbox's engine.
# (``echo`` is the shell's own: it needs no new process, which the pids limit may still refuse a moment.)
STILL_ANSWERING = {
    "busybox": {"echo alive": "alive"},
    "docker": {"echo alive": "alive", "timeout 10 docker version --format 'engine {{.Server.Os}}'": "engine linux"},
}
# Waits until the sandbox's engine answers (through the image's docker wrapper, which also waits for
# the images the init loads); a docker sandbox's tests start then, as a visitor's first command would.
ENGINE_READY = f"timeout {ENGINE_WAIT:.0f} sh -c 'until docker info >/dev/null 2>&1; do sleep 0.1; done'; echo rc=$?"


def compile_static(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/security/<name>.c, compiled statically so it runs in any image."""
    if shutil.which("gcc") is None:
        pytest.fail(f"gcc is needed to build the {name} program run in sandboxes; 'make test' installs it")
    out = tmp_path_factory.mktemp(name) / name
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(HERE / f"{name}.c")], check=True)
    return out


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The escape probe (probe.c)."""
    return compile_static("probe", tmp_path_factory)


@pytest.fixture(scope="session")
def hold_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kernel-object hog (hold.c)."""
    return compile_static("hold", tmp_path_factory)


@dataclass
class Inside:
    """A shell inside a fresh sandbox of the test stack, of the image ``image``: busybox (the default
    policy) or docker (the docker profile)."""

    stack: Stack
    session: dict
    terminal: Terminal
    sandbox_dir: Path
    probe_path: str
    image: str

    async def sh(self, command: str, timeout: float = 15) -> str:
        return await self.terminal.run(command, timeout)

    async def foreign_processes(self) -> set[str]:
        """The commands of the processes the sandbox sees that are not its own (OWN_PROCESSES) nor the
        ``cat`` that lists them: a host's or another sandbox's process would show here."""
        seen = set((await self.sh("cat /proc/[0-9]*/comm 2>/dev/null")).split())
        return seen - OWN_PROCESSES[self.image] - {"cat"}

    async def attempt(self, name: str) -> str:
        """Run one probe attempt; returns its verdict line ("ALLOWED" or "DENIED <errno>")."""
        return (await self.sh(f"{self.probe_path} {name}")).strip()

    def id_range(self) -> int:
        """The first host id of the sandbox's id range (root inside): the owner of its layer."""
        return (self.sandbox_dir / "layer").stat().st_uid

    def host_pids(self) -> list[int]:
        """Host pids of the sandbox's processes (from its cgroup)."""
        procs = self.stack.host_state()["processes"]
        return [int(p) for p in procs]

    def own_pids(self) -> list[int]:
        """Host pids of this sandbox's processes (from its own cgroups, nested ones included)."""
        cfg = load(self.stack.env)
        return sorted(cgroups.processes(cgroups.sandbox_dirs(cfg.cgroup_parent, self.sandbox_dir.name), nested=True))

    async def assert_still_whole(self) -> None:
        """After an abuse: what a visitor of this image uses still answers (STILL_ANSWERING)."""
        for command, answer in STILL_ANSWERING[self.image].items():
            said = (await self.sh(f"{command} 2>&1", 15)).strip()
            assert said == answer, f"after the abuse, {command!r} said {said!r} in the {self.image} sandbox"

    def install(self, binary: Path) -> str:
        """Copy ``binary`` to the top of the sandbox's writable layer, owned by root inside, under a
        name never looked up inside (so it appears at once); returns its path inside."""
        name = f".{binary.name}-{secrets.token_hex(4)}"
        target = self.sandbox_dir / "layer" / "upper" / name
        shutil.copy(binary, target)
        root = self.id_range()
        os.chown(target, root, root)
        target.chmod(0o755)
        return f"/{name}"


@contextlib.asynccontextmanager
async def sandbox_shell(stack: Stack, probe_binary: Path, image: str = "busybox") -> AsyncIterator[Inside]:
    """A shell in a new sandbox of ``image`` in ``stack`` with the probe installed (for docker, once its
    engine answers); the terminal is closed and the session ended afterwards, also when setting up
    failed, and the sandbox must then go."""
    before = set(stack.host_state()["sandbox_dirs"])
    session = stack.start_session(image=image)
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=20)
        created = set(stack.host_state()["sandbox_dirs"]) - before
        assert len(created) == 1, f"expected one new sandbox directory, found {created}"
        sandbox_dir = stack.data_dir / "agent" / "sandboxes" / created.pop()
        shell = Inside(stack, session, terminal, sandbox_dir, "", image)
        shell.probe_path = shell.install(probe_binary)
        if image == "docker":
            ready = await shell.sh(ENGINE_READY, ENGINE_WAIT + 5)
            assert "rc=0" in ready, (
                f"the sandbox's engine did not answer: {await shell.sh('tail -20 /var/log/dockerd.log')}"
            )
        yield shell
    finally:
        await terminal.close()
        stack.end_session(session)
    await eventually_async(
        lambda: not sandbox_dir.exists(), f"the sandbox {sandbox_dir.name} cleaned up after the attempt", 30, 0.1
    )


@pytest.fixture(scope="session")
def docker_in_stack(stack: Stack) -> Stack:
    """``stack`` with the ``docker`` image built (seconds, from the shared build cache)."""
    return build_docker_image(stack)


# The docker cases take about 2.5 minutes (80 sandboxes whose engine starts): ``make test`` runs them in
# its second pytest, beside the rest (marker ``alongside``).
DOCKER = pytest.param("docker", marks=pytest.mark.alongside)


@pytest.fixture(params=["busybox", DOCKER])
def image(request: pytest.FixtureRequest) -> str:
    """The image of the sandboxes a test attacks, busybox (the default policy) or docker (the docker
    profile): a test taking it (or ``inside``) runs once per image."""
    if request.param == "docker":
        request.getfixturevalue("docker_in_stack")
    return str(request.param)


@pytest_asyncio.fixture
async def inside(stack: Stack, probe_binary: Path, image: str) -> AsyncIterator[Inside]:
    """A shell in a fresh sandbox of ``image`` with the probe at ``/.probe-<random>`` (see ``sandbox_shell``)."""
    async with sandbox_shell(stack, probe_binary, image) as shell:
        yield shell
