"""One host id range per sandbox (issue 14): root of each sandbox is a host uid of its own, so the
kernel's per-uid counts (pipe buffers, inotify watches, descriptors in flight, processes) are each
sandbox's, and one sandbox using up its own leaves every other sandbox its share."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sandbox.host import cgroups
from sandbox.settings import load
from sandbox.wire.client import AgentClient
from sandbox.wire.ids import USERNS_SIZE
from tests.security.conftest import Inside, sandbox_shell
from tests.security.test_kernel_objects import Hog, sysctl
from tests.stack import Stack


def host_uid_maps(shell: Inside) -> set[str]:
    """The uid maps of the sandbox's processes, read on the host (``/proc/<pid>/uid_map``)."""
    cfg = load(shell.stack.env)
    pids = cgroups.processes(cgroups.sandbox_dirs(cfg.cgroup_parent, shell.sandbox_dir.name), nested=True)
    maps = set()
    for pid in pids:
        with contextlib.suppress(OSError):  # a process that just ended
            maps.add(" ".join(Path(f"/proc/{pid}/uid_map").read_text().split()))
    assert maps, f"no process of {shell.sandbox_dir.name} found"
    return maps


async def test_two_sandboxes_map_root_to_disjoint_ranges_and_own_their_files_on_the_host_by_them(
    stack: Stack, probe_binary: Path
) -> None:
    base = load(stack.env).uid_base
    async with sandbox_shell(stack, probe_binary) as first, sandbox_shell(stack, probe_binary) as second:
        starts = []
        for shell in (first, second):
            (only_map,) = host_uid_maps(shell)  # every process of a sandbox has the same single map
            inside, start, size = (int(n) for n in only_map.split())
            assert (inside, size) == (0, USERNS_SIZE)
            assert start >= base + USERNS_SIZE  # never the image store's range
            assert (start - base) % USERNS_SIZE == 0
            assert start == shell.id_range()  # its layer, the allocator's record, belongs to it
            starts.append(start)
        assert abs(starts[0] - starts[1]) >= USERNS_SIZE, starts  # disjoint
        listed = await AgentClient(stack.data_dir / "run" / "agent.sock").request("list")
        ranges = {s["runtime_id"]: s["id_range"] for s in listed["sandboxes"]}
        assert ranges[first.sandbox_dir.name] == starts[0] and ranges[second.sandbox_dir.name] == starts[1]
        for shell, start in zip((first, second), starts, strict=True):
            await shell.sh("echo mine > /root/mine && echo theirs > /root/theirs && chown 1000:1001 /root/theirs")
            upper = shell.sandbox_dir / "layer" / "upper" / "root"
            mine, theirs = (upper / "mine").stat(), (upper / "theirs").stat()
            assert (mine.st_uid, mine.st_gid) == (start, start)
            assert (theirs.st_uid, theirs.st_gid) == (start + 1000, start + 1001)
            # Image files, stored once in the image store's range, show in the sandbox's range.
            assert (await shell.sh("stat -c '%u %g' /bin/busybox")).split() == ["0", "0"]


async def test_one_sandbox_using_up_its_uids_pipe_buffers_leaves_another_sandbox_full_pipes(
    stack: Stack, probe_binary: Path, hold_binary: Path
) -> None:
    # Beyond fs.pipe-user-pages-soft pages of pipe buffers held by one uid, the kernel gives that
    # uid's new pipes two pages instead of sixteen. A default pipe counts sixteen pages.
    pipes = sysctl("fs.pipe-user-pages-soft") // 16 + 64
    async with sandbox_shell(stack, probe_binary) as abusing:
        held, error, _, size = await Hog(abusing, hold_binary).start("pipes", pipes)
        assert (int(held), error) == (pipes, "OK")
        assert int(size) == 2 * 4096  # its uid's budget is used up
        async with sandbox_shell(stack, probe_binary) as neighbour:
            assert await Hog(neighbour, hold_binary).start("pipes", 64) == ["64", "OK", "size", "65536"]
