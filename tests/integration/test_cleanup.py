"""Nothing of a sandbox remains on the host after DELETE or after Ctrl-C of the launcher:
processes, mounts, cgroup directories, runtime state and data directories are counted; Ctrl-C
also with a docker sandbox whose inner containers run (issue 15, acceptance 4). (After expiry and
idleness: tests/integration/test_lifecycle.py; docker sandboxes ended every way: tests/churn.py.)"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.churn import DOCKER_IMAGE, INNER_CONTAINERS
from tests.dockerkit import build_docker_image
from tests.imagekit import CACHE
from tests.stack import Stack, Terminal
from tests.waiting import eventually


async def busy_sandbox(stack: Stack) -> tuple[dict, Terminal]:
    """A session whose shell has started background processes and written files."""
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    await terminal.run("sleep 1000 & sleep 1000 & dd if=/dev/zero of=/root/blob bs=1k count=64 2>/dev/null")
    return session, terminal


async def docker_sandbox_with_containers(stack: Stack) -> tuple[dict, Terminal]:
    """A session of the docker image whose inner containers run (tests.churn.INNER_CONTAINERS)."""
    session = stack.start_session(image=DOCKER_IMAGE)
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=30)
    output = await terminal.run(INNER_CONTAINERS, timeout=60)
    assert "inner-containers-up" in output, output
    return session, terminal


def command_line(pid: str) -> str:
    """What a process runs, to name a leftover in a failure ("gone" if it ended meanwhile)."""
    try:
        return (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "gone"


def sandboxes_present(state: dict[str, list[str]], count: int) -> bool:
    """Whether the host ``state`` holds exactly ``count`` whole sandboxes of the stack."""
    return (
        len(state["sandbox_dirs"]) == len(state["runc_state"]) == count
        # Three mounts a sandbox: the tmpfs of its writable layer, the overlayfs root, its netns's sysfs.
        and len(state["mounts"]) == 3 * count
        and len(state["processes"]) >= 3 * count
        and len(state["netns"]) == len(state["veths"]) == len(state["addresses"]) == count
        and bool(state["cgroups"])
    )


def assert_sandboxes_present(stack: Stack, count: int) -> None:
    """Wait (10 s at most) until the host holds exactly ``count`` whole sandboxes of the stack: the
    agent's network pool may be between claiming an address and making its namespace (a place
    for the next sandbox, or the release of a past one's), which a single look would count."""
    eventually(
        lambda: sandboxes_present(stack.host_state(), count),
        f"{count} whole sandboxes on the host",
        10,
        0.1,
        explain=stack.host_state,
    )


async def test_delete_leaves_nothing_on_the_host(stack: Stack) -> None:
    stack.assert_clean_host()
    sessions = [await busy_sandbox(stack) for _ in range(3)]
    assert_sandboxes_present(stack, 3)
    for session, terminal in sessions:
        stack.end_session(session)
        await terminal.close()
    stack.assert_clean_host()


async def test_ctrl_c_of_the_launcher_leaves_nothing_and_tells_viewers() -> None:
    stack = Stack.create(PLAYGROUND_IMAGE_CACHE=str(CACHE))
    try:
        stack.start()
        build_docker_image(stack)  # seconds: var/cache holds its tree
        sessions = [await busy_sandbox(stack) for _ in range(2)] + [await docker_sandbox_with_containers(stack)]
        assert_sandboxes_present(stack, 3)
    except BaseException:
        stack.stop()
        raise
    started = time.monotonic()
    assert stack.stop(keep=True) == 0
    assert time.monotonic() - started < 30
    for _session, terminal in sessions:
        event = await terminal.expect_event("exit", timeout=5)
        assert event["reason"] == "shutdown"
    state = stack.host_state()
    assert not any(state.values()), state
    log = stack.log_path.read_text()
    assert "no sandbox is left running" in log
    shutil.rmtree(stack.data_dir)


async def test_killing_the_launcher_outright_still_leaves_nothing() -> None:
    stack = Stack.create()
    try:
        stack.start()
        session, terminal = await busy_sandbox(stack)
        assert_sandboxes_present(stack, 1)
    except BaseException:
        stack.stop()
        raise
    assert stack.proc is not None
    stack.proc.kill()  # SIGKILL: no chance to clean up; its children get SIGTERM from the kernel
    stack.proc.wait()
    stack.assert_clean_host(timeout=30)
    eventually(
        lambda: not stack.service_processes(),
        "the end of every process of the killed launcher",
        30,
        0.2,
        explain=lambda: f"still running: { {pid: command_line(pid) for pid in stack.service_processes()} }",
    )
    await terminal.closed()
    shutil.rmtree(stack.data_dir)
