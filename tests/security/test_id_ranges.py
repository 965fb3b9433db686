"""One host id range per sandbox (issue 14): root of each sandbox is a host uid of its own, so the
kernel's per-uid counts (pipe buffers, inotify watches, descriptors in flight, processes) are each
sandbox's, and one sandbox using up its own leaves every other sandbox its share. Its user
namespace is owned by that uid too (what the kernel charges per-user counters to, in the host's
namespace), and owns its network namespace."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from pathlib import Path

from sandbox.settings import load
from sandbox.wire.client import AgentClient
from sandbox.wire.ids import USERNS_SIZE
from tests.security.conftest import MAY_MOUNT, Inside, sandbox_shell
from tests.security.test_kernel_objects import Hog, sysctl
from tests.stack import Stack

NS_GET_USERNS, NS_GET_OWNER_UID = 0xB701, 0xB704  # ioctls on namespace files (linux/nsfs.h)


def host_uid_maps(shell: Inside) -> set[str]:
    """The uid maps of the sandbox's processes, read on the host (``/proc/<pid>/uid_map``)."""
    maps = set()
    for pid in shell.own_pids():
        with contextlib.suppress(OSError):  # a process that just ended
            maps.add(" ".join(Path(f"/proc/{pid}/uid_map").read_text().split()))
    assert maps, f"no process of {shell.sandbox_dir.name} found"
    return maps


def namespace_owner_uid(pid: int) -> int:
    """The host uid that created (owns) the user namespace of process ``pid``: NS_GET_OWNER_UID."""
    fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
    try:
        owner = bytearray(4)
        fcntl.ioctl(fd, NS_GET_OWNER_UID, owner)
        return int(struct.unpack("I", owner)[0])
    finally:
        os.close(fd)


def network_owner_is_own_user_namespace(pid: int) -> bool:
    """Whether the network namespace of process ``pid`` is owned by that process's user namespace
    (NS_GET_USERNS gives the owner's file; namespaces are the same when their inodes are)."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
        try:
            return os.fstat(owner).st_ino == os.stat(f"/proc/{pid}/ns/user").st_ino
        finally:
            os.close(owner)
    finally:
        os.close(fd)


async def test_two_sandboxes_map_root_to_disjoint_ranges_and_own_their_files_on_the_host_by_them(
    stack: Stack, probe_binary: Path, image: str
) -> None:
    base = load(stack.env).uid_base
    async with sandbox_shell(stack, probe_binary, image) as first, sandbox_shell(stack, probe_binary, image) as second:
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
    stack: Stack, probe_binary: Path, hold_binary: Path, image: str
) -> None:
    # Beyond fs.pipe-user-pages-soft pages of pipe buffers held by one uid, the kernel gives that
    # uid's new pipes two pages instead of sixteen. A default pipe counts sixteen pages.
    pipes = sysctl("fs.pipe-user-pages-soft") // 16 + 64
    async with sandbox_shell(stack, probe_binary, image) as abusing:
        held, error, _, size = await Hog(abusing, hold_binary).start("pipes", pipes)
        assert (int(held), error) == (pipes, "OK")
        assert int(size) == 2 * 4096  # its uid's budget is used up
        async with sandbox_shell(stack, probe_binary, image) as neighbour:
            assert await Hog(neighbour, hold_binary).start("pipes", 64) == ["64", "OK", "size", "65536"]


async def test_each_sandboxs_user_namespace_is_owned_by_its_range_base_and_owns_its_network_namespace(
    stack: Stack, probe_binary: Path, image: str
) -> None:
    async with sandbox_shell(stack, probe_binary, image) as first, sandbox_shell(stack, probe_binary, image) as second:
        owners = []
        for shell in (first, second):
            (only_map,) = host_uid_maps(shell)
            start = int(only_map.split()[1])  # the range base: host uid of root inside
            pid = shell.own_pids()[0]
            assert namespace_owner_uid(pid) == start, f"{shell.sandbox_dir.name}'s user namespace is owned by root"
            assert network_owner_is_own_user_namespace(pid), f"{shell.sandbox_dir.name}'s netns is the host's"
            owners.append(start)
        assert owners[0] != owners[1]


async def test_root_in_a_sandbox_may_make_no_user_namespace_and_cannot_raise_that_limit(inside: Inside) -> None:
    # Also after remounting /proc/sys read-write, which root may do with the docker profile: the limits of
    # its user namespace are writable only with CAP_SYS_RESOURCE over it, which no sandbox has.
    limit = "/proc/sys/user/max_user_namespaces"
    out = await inside.sh(
        f"cat {limit}; (echo 1 > {limit}) 2>/dev/null; echo $?; "
        f"mount -o remount,bind,rw /proc/sys 2>/dev/null; echo $?; (echo 1 > {limit}) 2>/dev/null; echo $?; cat {limit}"
    )
    before, status, remounted, status_after, after = out.split()
    assert (before, after) == ("0", "0"), f"max_user_namespaces in the sandbox, before and after raising it: {out}"
    assert (remounted == "0") == MAY_MOUNT[inside.image], out
    assert status != "0" and status_after != "0"
