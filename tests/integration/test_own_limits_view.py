"""What `free`, `top`, `nproc` and `uptime` show inside a sandbox: its own limits and age, served by the
agent's lxcfs (sandbox/host/lxcfs.py), not the host's memory, processors and uptime; and a sandbox
still starts, with the host's view, when lxcfs is down."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Stack, Terminal
from tests.waiting import eventually, eventually_async

MEMORY_MIB = 200
CPUS = 0.5


@pytest.fixture(scope="module")
def limited() -> Iterator[Stack]:
    with Stack.running(PLAYGROUND_SANDBOX_MEMORY=f"{MEMORY_MIB}M", PLAYGROUND_SANDBOX_CPUS=str(CPUS)) as running:
        yield running


async def shell(stack: Stack) -> tuple[dict, Terminal]:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    return session, terminal


def meminfo_kib(text: str, key: str) -> int:
    """The value in KiB of ``key`` (e.g. "MemTotal") in a /proc/meminfo text."""
    line = next(line for line in text.splitlines() if line.startswith(f"{key}:"))
    return int(line.split()[1])


def lxcfs_pid(stack: Stack) -> int | None:
    """The agent's lxcfs by its pidfile; None while a new one is being started."""
    try:
        return int((stack.data_dir / "agent" / "lxcfs.pid").read_text())
    except (OSError, ValueError):
        return None


def running_lxcfs_pid(stack: Stack) -> int:
    """The agent's lxcfs, once one runs (a test before may have left the agent replacing it)."""
    return eventually(
        lambda: (pid := lxcfs_pid(stack)) is not None and Path(f"/proc/{pid}").exists() and pid,
        "the agent's lxcfs runs",
        15,
        0.1,
        explain=stack.log_tail,
    )


async def test_free_and_meminfo_show_the_sandboxs_memory_limit_not_the_hosts(limited: Stack) -> None:
    session, terminal = await shell(limited)
    meminfo = await terminal.run("cat /proc/meminfo")
    assert meminfo_kib(meminfo, "MemTotal") == MEMORY_MIB * 1024
    assert 0 < meminfo_kib(meminfo, "MemAvailable") <= MEMORY_MIB * 1024
    host_total = meminfo_kib(Path("/proc/meminfo").read_text(), "MemTotal")
    assert f"MemTotal:       {host_total} kB" not in meminfo
    # busybox's top reads /proc/meminfo ("Mem: <used>K used, <free>K free, ..."), as procps's free
    # does; busybox's free asks sysinfo(2), which no file can change (see docs/operations.md).
    header = next(line for line in (await terminal.run("top -bn1")).splitlines() if line.startswith("Mem:"))
    used, free = (int(word.rstrip("K")) for word in header.split()[1:5:2])
    assert used + free == MEMORY_MIB * 1024
    await terminal.close()
    limited.end_session(session)


async def test_processors_are_the_cpu_quota_rounded_up(limited: Stack) -> None:
    session, terminal = await shell(limited)
    processors = math.ceil(CPUS)
    assert os.cpu_count() != processors  # else this test proves nothing on this machine
    cpuinfo = await terminal.run("cat /proc/cpuinfo")
    assert sum(line.startswith("processor") for line in cpuinfo.splitlines()) == processors
    stat = await terminal.run("cat /proc/stat")
    assert sum(line.split()[0].startswith("cpu") for line in stat.splitlines() if line.strip()) == processors + 1
    online = "0" if processors == 1 else f"0-{processors - 1}"
    assert (await terminal.run("cat /sys/devices/system/cpu/online")).strip() == online
    await terminal.close()
    limited.end_session(session)


async def test_uptime_is_the_sandboxs_age(limited: Stack) -> None:
    session, terminal = await shell(limited)
    seconds = float((await terminal.run("cat /proc/uptime")).split()[0])
    host_seconds = float(Path("/proc/uptime").read_text().split()[0])
    assert seconds < 60 < host_seconds
    assert "load average" in await terminal.run("uptime")
    await terminal.close()
    limited.end_session(session)


@contextlib.contextmanager
def lxcfs_kept_down(stack: Stack) -> Iterator[None]:
    """Kill the agent's lxcfs and keep a new one from starting until the block ends: its pidfile
    stays locked, as a running lxcfs keeps it (a new one exits at start, saying so)."""
    with open(stack.data_dir / "agent" / "lxcfs.pid", "a") as pidfile:
        while True:
            pid = lxcfs_pid(stack)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                fcntl.lockf(pidfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:  # still held: by the dying lxcfs, or by one the agent just started
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.lockf(pidfile, fcntl.LOCK_UN)


async def own_view_again(terminal: Terminal) -> None:
    """Wait until the sandbox's /proc/meminfo is a (new) lxcfs's again: the agent checks every 5 s."""
    await eventually_async(
        lambda: terminal.run("cat /proc/meminfo"),
        "the sandbox sees its own memory limit again",
        30,
        0.5,
        until=lambda out: "MemTotal:" in out and meminfo_kib(out, "MemTotal") == MEMORY_MIB * 1024,
    )


async def test_a_sandbox_starts_with_the_hosts_view_while_lxcfs_is_down_and_all_get_theirs_back(
    limited: Stack,
) -> None:
    before_session, before = await shell(limited)
    with lxcfs_kept_down(limited):
        assert "not connected" in await before.run("cat /proc/meminfo 2>&1")  # ENOTCONN: the daemon is gone
        during_session, during = await shell(limited)  # never a failed create because of lxcfs
        host_total = meminfo_kib(Path("/proc/meminfo").read_text(), "MemTotal")
        assert meminfo_kib(await during.run("cat /proc/meminfo"), "MemTotal") == host_total
        await eventually_async(
            lambda: "lxcfs exited with status 1 at start" in limited.log_path.read_text(),
            "the agent tried to start a new lxcfs, and said why sandboxes see the host's view",
            30,
            0.2,
            explain=limited.log_tail,
        )
        assert "is already locked" in (limited.data_dir / "agent" / "lxcfs.log").read_text()
        assert "stopped answering" in limited.log_path.read_text()
    # Free to start again: the agent's next check starts one and binds it into both sandboxes.
    for terminal in (before, during):
        await own_view_again(terminal)
        await terminal.close()
    limited.end_session(before_session)
    limited.end_session(during_session)


async def test_lxcfs_outlives_an_agent_restart_and_the_next_agent_adopts_it(limited: Stack) -> None:
    session, terminal = await shell(limited)
    pid = running_lxcfs_pid(limited)
    limited.restart_part("agent")  # SIGKILL

    async def reattached() -> Terminal | None:
        try:
            again = await Terminal.open(limited.terminal_url(session))
            await again.run("true")
        except Exception:  # the new agent is not listening yet
            return None
        return again

    await terminal.close()
    terminal = await eventually_async(reattached, "the new agent attaches the old shell", 30)
    assert lxcfs_pid(limited) == pid and Path(f"/proc/{pid}").exists()
    assert "adopted sandbox" in limited.log_path.read_text()
    assert meminfo_kib(await terminal.run("cat /proc/meminfo"), "MemTotal") == MEMORY_MIB * 1024
    second_session, second = await shell(limited)
    assert meminfo_kib(await second.run("cat /proc/meminfo"), "MemTotal") == MEMORY_MIB * 1024
    for each in (terminal, second):
        await each.close()
    limited.end_session(session)
    limited.end_session(second_session)


async def test_root_inside_can_neither_write_nor_unmount_lxcfss_files(limited: Stack) -> None:
    session, terminal = await shell(limited)
    assert "Read-only file system" in await terminal.run("echo 1 > /proc/meminfo 2>&1; echo 1 > /proc/uptime 2>&1")
    assert "MemTotal" not in await terminal.run(
        "umount /proc/meminfo 2>&1; cat /sys/devices/system/cpu/../../../fs 2>&1"
    )
    assert meminfo_kib(await terminal.run("cat /proc/meminfo"), "MemTotal") == MEMORY_MIB * 1024
    await terminal.close()
    limited.end_session(session)


async def test_a_hung_lxcfs_is_replaced_and_never_holds_up_a_create(limited: Stack) -> None:
    before_session, before = await shell(limited)
    hung = running_lxcfs_pid(limited)
    os.kill(hung, signal.SIGSTOP)  # answers nothing, dies nothing: reads of its files block
    try:
        started = time.monotonic()
        during_session, during = await shell(limited)  # lxcfs is given 2 s, then left out
        assert time.monotonic() - started < 15
        await eventually_async(
            lambda: lxcfs_pid(limited) not in (hung, None) and not Path(f"/proc/{hung}").exists(),
            "the agent killed the hung lxcfs and started a new one",
            30,
            0.2,
            explain=limited.log_tail,
        )
        for terminal in (before, during):
            await own_view_again(terminal)
            await terminal.close()
    finally:
        if Path(f"/proc/{hung}").exists():
            os.kill(hung, signal.SIGCONT)
    limited.end_session(before_session)
    limited.end_session(during_session)


async def test_with_lxcfs_turned_off_sandboxes_see_the_hosts_figures_and_no_lxcfs_runs() -> None:
    with Stack.running(PLAYGROUND_LXCFS="false", PLAYGROUND_SANDBOX_MEMORY=f"{MEMORY_MIB}M") as stack:
        session, terminal = await shell(stack)
        host_total = meminfo_kib(Path("/proc/meminfo").read_text(), "MemTotal")
        assert meminfo_kib(await terminal.run("cat /proc/meminfo"), "MemTotal") == host_total
        assert lxcfs_pid(stack) is None and not (stack.data_dir / "lxcfs").exists()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        assert not [line for line in mounts if "fuse.lxcfs" in line and str(stack.data_dir) in line]
        await terminal.close()
        stack.end_session(session)
