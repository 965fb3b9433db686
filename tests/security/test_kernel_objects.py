"""Kernel objects counted host-wide, abused from a root shell inside a real sandbox (issue 14).

Each test makes one sandbox take all it can of one class of kernel object (with hold.c) and
checks that it stops at its own bound, and that at that moment a new sandbox, the host's root
and an unprivileged user of the host can still get one of the same objects. docs/security.md
lists each class with its bound and its setting.

Per-user counters (inotify instances and watches, message-queue bytes, pending signals and POSIX
timers) are charged by the kernel at each level of user namespaces: to the sandbox's uid in its
own namespace, then to the namespace's owner in the host's. So the sandbox's bound holds for
others only when its namespace is owned by its range base, not by host root. Descriptors in
flight and epoll watches are counted per host uid alone, whatever the namespace: each sandbox's
root is a host uid of its own (its range base), so these counts are each sandbox's own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from sandbox.host import cgroups
from sandbox.host.limits import FILE_BYTES, host_memory_bytes
from sandbox.settings import Settings, load
from tests.security.conftest import MAY_MOUNT, Inside, sandbox_shell
from tests.stack import Stack
from tests.waiting import eventually_async

Neighbours = Callable[[], Awaitable["Hog"]]
SYSCTL = Path("/proc/sys")
SYS_IO_SETUP, SYS_IO_DESTROY = 206, 207  # x86_64
AIO_SETUP = (  # io_setup(128) and io_destroy for a host process; prints the errno (0: it worked)
    "import ctypes; libc = ctypes.CDLL(None, use_errno=True); ctx = ctypes.c_ulong(0); "
    f"ok = libc.syscall({SYS_IO_SETUP}, 128, ctypes.byref(ctx)) == 0; "
    f"print(0 if ok else ctypes.get_errno()); ok and libc.syscall({SYS_IO_DESTROY}, ctx)"
)


def sysctl(name: str) -> int:
    return int((SYSCTL / name.replace(".", "/")).read_text().split()[0])


def host_python(code: str, nobody: bool = False) -> str:
    """Run Python ``code`` on the host, as root or as the unprivileged user nobody; what it printed."""
    user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if nobody else []
    done = subprocess.run(
        [*user, "/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=30, cwd="/", check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# Host programs taking one object of a per-user class, for the length of the program.
GET_ONE = {
    "inotify": "ok = libc.inotify_init1(0) >= 0",
    "watches": "group = libc.inotify_init1(0); ok = group >= 0 and libc.inotify_add_watch(group, b'/', 2) >= 0",
    "mqueue": (
        "name = b'/host-%d' % os.getpid(); "
        "ok = libc.mq_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600, None) >= 0; ok and libc.mq_unlink(name)"
    ),
    "signals": (
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN]); "
        "ok = libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_void_p(0)) == 0"
    ),
    "timers": "timer = ctypes.c_void_p(); ok = libc.timer_create(time.CLOCK_MONOTONIC, None, ctypes.byref(timer)) == 0",
    "fds": "mine, peer = socket.socketpair(); ok = socket.send_fds(mine, [b'x'], [os.open('/dev/null', 0)]) == 1",
    "epoll": "ok = select.epoll().register(os.pipe()[0], select.EPOLLIN) is None",
}


def host_gets_one(what: str, nobody: bool = False) -> str:
    """Whether a host process (root, or nobody) gets one object of class ``what`` (hold.c's names):
    "OK", or the errno name of the refusal."""
    code = (
        "import ctypes, errno, os, select, signal, socket, time; libc = ctypes.CDLL(None, use_errno=True)\n"
        f"try:\n    {GET_ONE[what]}; print('OK' if ok else errno.errorcode[ctypes.get_errno()])\n"
        "except OSError as refused:\n    print(errno.errorcode[refused.errno])"
    )
    return host_python(code, nobody)


class Hog:
    """hold.c installed in a sandbox, run in the background with its report in /tmp."""

    def __init__(self, shell: Inside, hold_binary: Path) -> None:
        self.shell = shell
        self.path = shell.install(hold_binary)

    async def start(self, what: str, most: int | None = None) -> list[str]:
        """Run ``hold what [most]`` in the background; its report once printed, read from the host
        (the sandbox may have no process left to read it with)."""
        report = f"/tmp/hold-{what}"
        limit = "" if most is None else f" {most}"
        await self.shell.sh(
            f"rm -f {report}; {{ {self.path} {what}{limit} > {report} 2>&1 & echo $! > {report}.pid; }}"
        )
        on_host = self.shell.sandbox_dir / "layer" / "upper" / report.lstrip("/")

        def printed() -> str:
            return on_host.read_text() if on_host.exists() else ""

        text = await eventually_async(printed, f"hold {what} reports what it holds", 30, 0.05)
        words = text.split()
        assert words[0] == "held", text
        return words[1:]

    async def stop(self, what: str) -> None:
        """End the last ``hold what`` started in the background, and wait until it is gone."""
        await self.shell.sh(f"pid=$(cat /tmp/hold-{what}.pid); kill $pid; wait $pid")


@pytest.fixture
def cfg(stack: Stack) -> Settings:
    return load(stack.env)


@pytest_asyncio.fixture
async def abuser(inside: Inside, hold_binary: Path) -> Hog:
    return Hog(inside, hold_binary)


@pytest_asyncio.fixture
async def neighbours(stack: Stack, probe_binary: Path, hold_binary: Path) -> AsyncIterator[Neighbours]:
    """``await neighbours()`` starts a new sandbox (a new session) after the abuse; ended afterwards."""
    async with contextlib.AsyncExitStack() as started:

        async def start() -> Hog:
            return Hog(await started.enter_async_context(sandbox_shell(stack, probe_binary)), hold_binary)

        yield start


async def test_pseudo_terminals_stop_at_the_sandboxs_devpts_max_and_others_can_still_open_them(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    held, error = await abuser.start("ptys")
    # The sandbox's first terminal is one of its ptys: the hog gets the rest, then ENOSPC.
    assert (int(held), error) == (cfg.sandbox_ptys - 1, "ENOSPC")
    neighbour = await neighbours()  # a new session gets its terminal
    assert await neighbour.start("ptys", 1) == ["1", "OK"]
    os.close(os.openpty()[0])
    assert host_python("import os; os.openpty(); print('ok')", nobody=True) == "ok"
    # Every sandbox's devpts full at once still fits beside the host's: the agent raised kernel.pty.max.
    assert sysctl("kernel.pty.max") >= 2 * sysctl("kernel.pty.reserve") + cfg.host_max_sandboxes * cfg.sandbox_ptys


# A docker sandbox's root may mount a devpts instance of its own (its engine gives each container one,
# without ``max``): its pseudo-terminals come from the host's pool like the sandbox's own, beyond the
# sandbox's ``max``, and no seccomp filter sees a mount's file system type. The agent's guard
# (sandbox.agent.ptyguard) stops a sandbox whose processes hold more than PLAYGROUND_SANDBOX_PTYS_HELD
# pty ends (256 here) within about a second. The abuser asks for only 64 beyond that, so as not to
# drain a shared host's pool for other stacks.
@pytest.mark.parametrize("image", ["busybox", pytest.param("docker", marks=pytest.mark.alongside)], indirect=True)
async def test_a_devpts_instance_of_the_sandboxs_own_gives_no_pseudo_terminals_beyond_its_max(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    # Class: using up the host's pseudo-terminals (every sandbox's terminals) past the sandbox's devpts max.
    shell = abuser.shell
    mounted = await shell.sh(
        "mkdir -p /tmp/pts && mount -t devpts -o newinstance,ptmxmode=0666 devpts /tmp/pts 2>/dev/null "
        "&& mount --bind /tmp/pts/ptmx /dev/pts/ptmx && echo mounted"
    )
    assert ("mounted" in mounted) == MAY_MOUNT[shell.image], mounted
    wanted = cfg.sandbox_ptys_held + 64
    if not MAY_MOUNT[shell.image]:
        # Its own devpts alone: the first terminal is one of its ptys, the hog gets the rest, then ENOSPC.
        assert await abuser.start("ptys", wanted) == [str(cfg.sandbox_ptys - 1), "ENOSPC"]
        await shell.assert_still_whole()
        return
    # The instance of its own gives them all (no max), so the guard stops the sandbox, saying why.
    # The hog holds until its RLIMIT_NOFILE (its stdin, stdout and stderr among them), then waits.
    await shell.terminal.type(f"(ulimit -n {wanted}; {abuser.path} ptys > /tmp/hold-ptys 2>&1)\n")  # no prompt follows
    await eventually_async(lambda: not shell.own_pids(), "the guard ended every process of the sandbox", 10, 0.1)
    await shell.terminal.expect(f"pseudo-terminal ends, more than the {cfg.sandbox_ptys_held} one sandbox", 5)
    told = (shell.sandbox_dir / "layer" / "upper" / "tmp" / "hold-ptys").read_text()
    assert told in ("", f"held {wanted - 3} EMFILE\n"), told  # it got them all, unless stopped on its way
    neighbour = await neighbours()  # a new session gets its terminal, and its own ptys
    assert await neighbour.start("ptys", 1) == ["1", "OK"]
    os.close(os.openpty()[0])
    assert host_python("import os; os.openpty(); print('ok')", nobody=True) == "ok"


async def test_linux_aio_contexts_are_not_available_in_a_sandbox_so_it_cannot_use_up_the_hosts(
    abuser: Hog, neighbours: Neighbours
) -> None:
    in_use = sysctl("fs.aio-nr")
    assert await abuser.start("aio") == ["0", "ENOSYS"]  # as on a kernel without AIO: programs use threads
    neighbour = await neighbours()
    assert await neighbour.start("aio") == ["0", "ENOSYS"]
    assert sysctl("fs.aio-nr") <= in_use
    assert host_python(AIO_SETUP) == "0"
    assert host_python(AIO_SETUP, nobody=True) == "0"


async def test_open_files_stop_at_rlimit_nofile_times_the_pids_limit_and_the_host_keeps_room(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    held, open_error, _, procs, fork_error = await abuser.start("files")
    pids = abuser.shell.session["limits"]["pids"]
    assert (open_error, fork_error) == ("EMFILE", "EAGAIN")  # its own limits, never the host's ENFILE
    assert int(procs) < pids
    assert int(held) <= pids * cfg.sandbox_nofile
    assert int(held) >= int(procs) * (cfg.sandbox_nofile - 8)
    # fs.file-max is out of reach: memory runs out first (each open file is memory charged to a cgroup).
    assert sysctl("fs.file-max") >= host_memory_bytes() // FILE_BYTES
    neighbour = await neighbours()
    held_there, error_there, *_ = await neighbour.start("files", 1)
    assert error_there == "EMFILE"
    assert int(held_there) >= cfg.sandbox_nofile - 8
    with open("/dev/null") as opened:
        assert opened.fileno() >= 0
    assert host_python("open('/dev/null'); print('ok')", nobody=True) == "ok"


async def test_files_in_the_writable_layer_stop_at_its_inode_limit_and_the_sandbox_stays_usable(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    # The layer's tmpfs, read on the host: its files count, and what the image's start already made
    # there (a docker sandbox's engine keeps its data in it too: a few hundred files).
    layer = os.statvfs(abuser.shell.sandbox_dir / "layer")
    assert layer.f_files == cfg.sandbox_inodes
    held, error = await abuser.start("inodes")
    assert error == "ENOSPC"
    assert layer.f_ffree - 100 <= int(held) < layer.f_ffree
    # Still usable: its memory holds the inodes with room to spare, and it can clean up.
    dirs = cgroups.sandbox_dirs(cfg.cgroup_parent, abuser.shell.sandbox_dir.name)
    usage = next(
        int(f.read_text()) for d in dirs for f in (d / "memory.usage_in_bytes", d / "memory.current") if f.exists()
    )
    assert 0 < usage < abuser.shell.session["limits"]["memory_bytes"] // 2
    # (The last line: bash may first say that the hog, a job of its own, is done.)
    cleaned = await abuser.shell.sh("rm -rf /hold-inodes && echo ok > /root/ok && cat /root/ok", 60)
    assert cleaned.strip().splitlines()[-1] == "ok", cleaned
    await abuser.shell.assert_still_whole()
    neighbour = await neighbours()
    assert await neighbour.start("inodes", 10) == ["10", "OK"]
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "made-by-root").touch()
    assert host_python("import tempfile; tempfile.TemporaryFile(); print('ok')", nobody=True) == "ok"


async def test_the_sandboxs_etc_files_are_on_its_disk_quota_so_filling_them_leaves_the_hosts_disk_alone(
    inside: Inside,
) -> None:
    disk_mib = inside.session["limits"]["disk_bytes"] // (1024 * 1024)
    host = os.statvfs(inside.stack.data_dir)
    out = await inside.sh(
        f"for f in /etc/hosts /etc/hostname /etc/resolv.conf; do "
        f"dd if=/dev/zero of=$f bs=1M count={disk_mib + 16} 2>&1 | grep -c 'No space'; : > $f; done; "
        "df -m /etc/hosts | tail -1",
        timeout=60,
    )
    *full, df = out.strip().splitlines()
    assert full == ["1", "1", "1"], out  # each stops at the sandbox's quota
    # The sandbox's own layer tmpfs: the disk quota, or less where that leaves too little of its memory
    # to its processes (the docker image's 1 GiB of each: seven eighths).
    layer = os.statvfs(inside.sandbox_dir / "layer")
    assert df.split()[0] == "tmpfs"
    assert int(df.split()[1]) == layer.f_blocks * layer.f_frsize // 1024**2 <= disk_mib
    after = os.statvfs(inside.stack.data_dir)
    # Three fills of the whole quota were written; other programs of the host may write a little meanwhile.
    moved = (host.f_bavail - after.f_bavail) * after.f_frsize
    assert moved < min(64, disk_mib) * 1024**2, f"the fill reached the host's disk ({moved} bytes)"
    # Bound from the sandbox's own layer: no host path or host disk shows for them.
    for line in (await inside.sh("grep ' /etc/' /proc/self/mountinfo")).splitlines():
        assert " - tmpfs " in line and "/agent/" not in line, line


async def neighbour_and_host_get_one(what: str, neighbours: Neighbours) -> None:
    """At this moment a new sandbox, the host's root and the unprivileged user nobody each get one
    object of class ``what``."""
    neighbour = await neighbours()
    got = await neighbour.start(what, 1)
    assert got[:2] == ["1", "OK"], f"a new sandbox could not get one ({what}): {got}"
    assert host_gets_one(what) == "OK", f"host root could not get one ({what})"
    assert host_gets_one(what, nobody=True) == "OK", f"nobody could not get one ({what})"


async def inside_sysctl(shell: Inside, name: str) -> int:
    """A /proc/sys value as the sandbox sees it (for /proc/sys/user: its user namespace's)."""
    return int(await shell.sh(f"cat /proc/sys/{name.replace('.', '/')}"))


async def test_inotify_instances_stop_at_the_sandboxs_own_bound_and_others_can_still_make_them(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    held, error = await abuser.start("inotify")
    assert error == "EMFILE" and int(held) > 0
    await neighbour_and_host_get_one("inotify", neighbours)
    # The bound: per uid in the sandbox, its namespace's limit; for the whole sandbox, the host's
    # limit for one uid, charged to the namespace's owner (its range base).
    assert await inside_sysctl(abuser.shell, "user.max_inotify_instances") == cfg.sandbox_inotify_instances
    assert int(held) == min(cfg.sandbox_inotify_instances, sysctl("fs.inotify.max_user_instances"))


async def test_inotify_watches_stop_at_the_sandboxs_own_bound_and_others_can_still_add_them(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    held, error = await abuser.start("watches")
    assert error == "ENOSPC" and int(held) > 0
    await neighbour_and_host_get_one("watches", neighbours)
    assert await inside_sysctl(abuser.shell, "user.max_inotify_watches") == cfg.sandbox_inotify_watches
    assert int(held) == min(cfg.sandbox_inotify_watches, sysctl("fs.inotify.max_user_watches"))


async def test_message_queue_bytes_stop_at_the_sandboxs_own_bound_also_after_the_abuser_exits(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    held, error, _, queued = await abuser.start("mqueue")
    assert error == "EMFILE" and int(held) > 0  # mq_open's answer beyond RLIMIT_MSGQUEUE
    await neighbour_and_host_get_one("mqueue", neighbours)
    # Its queues stay in its IPC namespace after it exits, still counted: to the sandbox alone.
    await abuser.stop("mqueue")
    assert await abuser.start("mqueue") == ["0", "EMFILE", "bytes", "0"]
    await neighbour_and_host_get_one("mqueue", neighbours)
    per_queue = int(queued) // int(held)  # and a little for the kernel's own bookkeeping
    assert int(queued) <= cfg.sandbox_mqueue_bytes < int(queued) + 2 * per_queue


async def test_pending_signals_stop_at_the_sandboxs_own_bound_and_others_can_still_queue_them(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    held, error = await abuser.start("signals")
    assert error == "EAGAIN" and int(held) > 0  # sigqueue's answer beyond RLIMIT_SIGPENDING
    await neighbour_and_host_get_one("signals", neighbours)
    # Other signals pending in the sandbox (a shell's SIGCHLD) count too.
    assert cfg.sandbox_sigpending - 16 <= int(held) <= cfg.sandbox_sigpending


async def test_posix_timers_stop_at_the_sandboxs_own_bound_and_others_can_still_create_them(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    held, error = await abuser.start("timers")
    assert error == "EAGAIN" and int(held) > 0  # each timer's signal is allocated by timer_create
    await neighbour_and_host_get_one("timers", neighbours)
    assert cfg.sandbox_sigpending - 16 <= int(held) <= cfg.sandbox_sigpending


SCM_MAX_FD = 253  # the kernel's most descriptors in one SCM_RIGHTS message; hold.c sends that many a message


async def test_descriptors_in_flight_stop_at_the_senders_open_files_limit_and_others_can_still_send_them(
    abuser: Hog, neighbours: Neighbours, cfg: Settings
) -> None:
    """The kernel counts the descriptors a host uid has in flight (sent in SCM_RIGHTS messages, not
    yet received) in that uid's ``user_struct``, one per host uid whatever the namespace
    (``unix_inflight``, added in ``unix_add_edges`` in net/unix/garbage.c). ``too_many_unix_fds``
    (net/unix/af_unix.c) refuses a message with ETOOMANYREFS while the sender's uid has more in
    flight than the sender's RLIMIT_NOFILE, unless the sender has CAP_SYS_RESOURCE or CAP_SYS_ADMIN
    in the host's initial user namespace.

    When every sandbox's root was host uid 1000000000, the abuser's count was every sandbox's: the
    new sandbox's single message would have been refused with ETOOMANYREFS (its uid had 4301 in
    flight, more than its own limit of 4096), so the neighbour's check fails on that code. Host
    root passes either way (exempt by its capabilities), and nobody has a count of its own.
    """
    held, error = await abuser.start("fds")
    assert error == "ETOOMANYREFS"
    # Checked before a message's own are counted: whole messages until the count passes the limit.
    assert int(held) == (cfg.sandbox_nofile // SCM_MAX_FD + 1) * SCM_MAX_FD
    await neighbour_and_host_get_one("fds", neighbours)


# One epoll watch's kernel memory on x86_64 (an epitem and an eppoll_entry: the kernel's EP_ITEM_COST,
# from which it sets fs.epoll.max_user_watches to 4% of low memory), charged to the memory cgroup; as
# charged, with the slab's rounding, 208 bytes (measured).
EPOLL_WATCH_BYTES = 184
EPOLL_WATCH_CHARGED = 208


async def test_epoll_watches_stop_at_the_sandboxs_memory_or_its_uids_bound_and_others_can_still_add_them(
    abuser: Hog, neighbours: Neighbours
) -> None:
    """``fs.epoll.max_user_watches`` bounds the watches of one host uid (ENOSPC beyond, for root too),
    and each sandbox's root is a host uid of its own. Each watch is kernel memory charged to the
    sandbox's memory cgroup, so its memory limit bounds them too, whichever comes first. Where the
    uid's bound is beyond what the sandbox's memory holds, memory stops it: the holder (hold.c makes
    it the OOM killer's first choice) is killed, or refused with ENOMEM, and the sandbox stays usable.
    On the test host (24 GiB: 5.49 million watches for a uid, 1 GiB of them; 512 MiB busybox sandboxes)
    the holder is OOM-killed after about 2.58 million watches (208 bytes each as charged, with the slab's
    rounding), in a 1 GiB docker sandbox after about 4.96 million, so the others' checks come after its
    watches are freed."""
    memory = abuser.shell.session["limits"]["memory_bytes"]
    uid_bound = sysctl("fs.epoll.max_user_watches")
    held, error = await abuser.start("epoll")
    if uid_bound * EPOLL_WATCH_CHARGED > memory:  # a 1 GiB docker sandbox is one (5.49 million: 1.14 GB)
        assert error in ("ENOMEM", "KILLED")
        assert memory // (2 * EPOLL_WATCH_BYTES) < int(held) < memory // EPOLL_WATCH_BYTES
    else:
        assert (int(held), error) == (uid_bound, "ENOSPC")
    await neighbour_and_host_get_one("epoll", neighbours)
    await abuser.shell.assert_still_whole()
