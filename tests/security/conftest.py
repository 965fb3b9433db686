"""Fixtures for escape attempts: a fresh sandbox per test, with a compiled probe inside."""

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

from tests.stack import Stack, Terminal
from tests.waiting import eventually_async

HERE = Path(__file__).resolve().parent


def compile_static(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/security/<name>.c, compiled statically so it runs in the busybox image."""
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
    """A shell inside a fresh sandbox of the test stack."""

    stack: Stack
    session: dict
    terminal: Terminal
    sandbox_dir: Path
    probe_path: str

    async def sh(self, command: str, timeout: float = 15) -> str:
        return await self.terminal.run(command, timeout)

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
async def sandbox_shell(stack: Stack, probe_binary: Path) -> AsyncIterator[Inside]:
    """A shell in a new sandbox of ``stack`` with the probe installed; the terminal is closed and
    the session ended afterwards, also when setting up failed, and the sandbox must then go."""
    before = set(stack.host_state()["sandbox_dirs"])
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    try:
        await terminal.expect("# ", timeout=20)
        created = set(stack.host_state()["sandbox_dirs"]) - before
        assert len(created) == 1, f"expected one new sandbox directory, found {created}"
        sandbox_dir = stack.data_dir / "agent" / "sandboxes" / created.pop()
        shell = Inside(stack, session, terminal, sandbox_dir, "")
        shell.probe_path = shell.install(probe_binary)
        yield shell
    finally:
        await terminal.close()
        stack.end_session(session)
    await eventually_async(
        lambda: not sandbox_dir.exists(), f"the sandbox {sandbox_dir.name} cleaned up after the attempt", 30, 0.1
    )


@pytest_asyncio.fixture
async def inside(stack: Stack, probe_binary: Path) -> AsyncIterator[Inside]:
    """A shell in a fresh sandbox with the probe at ``/.probe-<random>`` (see ``sandbox_shell``)."""
    async with sandbox_shell(stack, probe_binary) as shell:
        yield shell
