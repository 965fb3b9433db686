"""Escape and abuse attempts from a root shell inside a real sandbox. Each must fail.

Every attempt names the class of attack (or the CVE) it guards against. The verdicts come from
the sandbox itself: a compiled probe (probe.c) for single system calls, the busybox shell for
the rest, and the host's own view of the sandbox's processes and files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.security.conftest import MAY_MOUNT, Inside

EPERM, ENOSYS, ALLOWED = "DENIED EPERM", "DENIED ENOSYS", "ALLOWED"
# Where the danger of an attempt the docker profile lets through is shown to stay out.
MOUNTS_CHANGE_NOTHING_OF_THE_HOST = (
    "the inner runc mounts its containers' filesystems; what the mounts guarded stays out: "
    "test_the_cgroup_release_agent_is_out_of_reach, test_undoing_the_masks_uncovers_nothing_of_the_host, "
    "test_kernel_settings_cannot_be_written, test_the_sandboxs_own_cgroup_limits_cannot_be_raised"
)
FRAMES_STOP_AT_THE_PORT = (
    "Docker's default CAP_NET_RAW, which inner containers get: the bridge port passes only frames from the "
    "sandbox's own MAC and address (test_port_pinning.py sends forged frames and ARP from a packet socket)"
)


class Attempt(NamedTuple):
    """One probe attempt: the attack it stands for and its verdict in each image's sandbox. In a busybox
    sandbox every attempt is DENIED EPERM (seccomp, or a capability it lacks)."""

    guards: str
    docker: str = EPERM  # the verdict in a docker sandbox
    because: str = ""  # why the docker profile answers otherwise, and where the danger is shown to stay out

    def verdict(self, image: str) -> str:
        return {"busybox": EPERM, "docker": self.docker}[image]


SYSCALL_ATTEMPTS = {
    "keyctl": Attempt(
        "kernel keyring access across containers (CVE-2016-0728 class); keyrings are not namespaced",
        ENOSYS,
        "so that the inner runc skips its session keyring; keyrings stay out of reach all the same",
    ),
    "add_key": Attempt("kernel keyring abuse (keyctl family)", ENOSYS, "as keyctl"),
    "bpf": Attempt("eBPF verifier escapes (CVE-2021-3490, CVE-2023-2163 class)"),
    "init_module": Attempt("loading a kernel module"),
    "finit_module": Attempt("loading a kernel module from a file"),
    "kexec_load": Attempt("replacing the running kernel"),
    "mount": Attempt(
        "mounting filesystems (cgroup release_agent CVE-2022-0492, overlay tricks)",
        ALLOWED,
        MOUNTS_CHANGE_NOTHING_OF_THE_HOST,
    ),
    "umount": Attempt(
        "unmounting the masks over /proc to uncover the host's view", ALLOWED, MOUNTS_CHANGE_NOTHING_OF_THE_HOST
    ),
    "pivot_root": Attempt(
        "changing the root filesystem",
        "DENIED EINVAL",
        "the inner runc's; past the filter, the kernel refuses these arguments (/tmp is no mount point)",
    ),
    "unshare_user": Attempt(
        "nested user namespaces, the door to most kernel privilege escalations (CVE-2022-0185 class)"
    ),
    "unshare_mount": Attempt(
        "a new mount namespace to mount in", ALLOWED, "the inner runc's, below the sandbox's user namespace"
    ),
    "setns": Attempt(
        "joining other namespaces",
        ALLOWED,
        "the inner runc's; only namespaces the sandbox owns (the probe joins its own UTS namespace): no host "
        "process is visible to take one from (test_host_processes_are_invisible)",
    ),
    "userfaultfd": Attempt("userfaultfd-assisted kernel race exploits"),
    "perf_event_open": Attempt("perf side channels and perf exploits (CVE-2013-2094 class)"),
    "io_uring_setup": Attempt("io_uring kernel attack surface (CVE-2022-29582 class)"),
    "reboot": Attempt("rebooting or powering off the host"),
    "swapon": Attempt("host swap configuration"),
    "clock_settime": Attempt("changing the host's clock"),
    "open_by_handle_at": Attempt("the 'shocker' escape through file handles (CAP_DAC_READ_SEARCH)"),
    "mknod_block": Attempt("creating a block device node to read host disks"),
    "syslog": Attempt("reading the kernel log (addresses for KASLR bypass)"),
    "acct": Attempt("process accounting on the host"),
    "chroot_escape": Attempt("the double-chroot breakout (CAP_SYS_CHROOT)"),
    "tiocsti_foreign": Attempt("TIOCSTI keystroke injection into a terminal that is not its own (CVE-2017-5226 class)"),
    "raw_socket": Attempt(
        "forged IP packets with a spoofed source address, to slip past the walls", ALLOWED, FRAMES_STOP_AT_THE_PORT
    ),
    "packet_socket": Attempt(
        "forged Ethernet frames and ARP spoofing of the gateway; AF_PACKET kernel bugs (CVE-2016-8655, CVE-2020-14386)",
        ALLOWED,
        FRAMES_STOP_AT_THE_PORT,
    ),
}


@pytest.mark.parametrize("attempt", sorted(SYSCALL_ATTEMPTS))
async def test_a_dangerous_system_call_is_denied_unless_the_profile_opens_it(inside: Inside, attempt: str) -> None:
    row = SYSCALL_ATTEMPTS[attempt]
    expected = row.verdict(inside.image)
    verdict = await inside.attempt(attempt)
    assert verdict == expected, (
        f"{attempt} ({row.guards}) in a {inside.image} sandbox: {verdict}, expected {expected} {row.because}"
    )


async def test_ptrace_of_a_process_outside_is_impossible(inside: Inside) -> None:
    # pid 1 inside is the sandbox's own first process; host processes have no pid here at all.
    host_pid = os.getpid()
    listing = await inside.sh(f"ls /proc/{host_pid} 2>&1 | head -1")
    assert "No such file" in listing or str(host_pid) not in await inside.sh("ls /proc")


async def test_host_processes_are_invisible(inside: Inside) -> None:
    assert await inside.foreign_processes() == set()
    command_lines = await inside.sh("cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '")
    assert "playground.webserver" not in command_lines
    assert "daphne" not in command_lines


async def test_host_files_are_invisible_even_through_proc(inside: Inside) -> None:
    assert "playground" not in await inside.sh("cat /proc/1/root/etc/passwd")
    assert "No such file" in await inside.sh("ls /proc/1/root/work 2>&1")


# Kernel settings (some absent on kernels built without modules or magic SysRq: then they cannot be
# made either). Root then remounts read-write the read-only mount over them, the sandbox's own: refused
# without the mount calls, done with them (docker), and the files are still host root's. The host's
# global settings are compared before and after.
KERNEL_SETTINGS = [
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/modprobe",
    "/proc/sysrq-trigger",
    "/proc/sys/vm/drop_caches",
]
GLOBAL_SETTINGS = [p for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe") if Path(p).exists()]


def read_only_mount_over(path: str) -> str:
    """The read-only mount a sandbox has over ``path`` (runc binds /proc/sysrq-trigger where it exists)."""
    return path if path == "/proc/sysrq-trigger" and Path(path).exists() else "/proc/sys"


@pytest.mark.parametrize("path", KERNEL_SETTINGS)
async def test_kernel_settings_cannot_be_written(inside: Inside, path: str) -> None:
    before = {setting: Path(setting).read_text() for setting in GLOBAL_SETTINGS}
    out = await inside.sh(f"echo x > {path} 2>&1; echo rc=$?")
    assert "rc=1" in out or "rc=2" in out, f"writing {path} succeeded: {out}"
    remount = await inside.sh(f"mount -o remount,bind,rw {read_only_mount_over(path)} 2>/dev/null; echo rc=$?")
    assert ("rc=0" in remount) == MAY_MOUNT[inside.image], f"remounting read-write in {inside.image}: {remount}"
    out = await inside.sh(f"echo x > {path} 2>&1; echo rc=$?")
    assert "rc=1" in out or "rc=2" in out, f"writing {path} succeeded after the remount: {out}"
    assert {setting: Path(setting).read_text() for setting in GLOBAL_SETTINGS} == before


# Mounting a cgroup v1 hierarchy: refused without the mount calls; with them (docker) the mount shows
# the sandbox's cgroup namespace's root, which has no release_agent (only a hierarchy's real root has).
CGROUP_MOUNT = {"busybox": "refused", "docker": "mounted"}


async def test_the_cgroup_release_agent_is_out_of_reach(inside: Inside) -> None:
    # CVE-2022-0492: write release_agent of a cgroup v1 hierarchy to run a program as host root.
    host_agent = Path("/sys/fs/cgroup/memory/release_agent")
    before = host_agent.read_text()
    out = await inside.sh(
        "for f in /sys/fs/cgroup/*/release_agent /sys/fs/cgroup/release_agent; do "
        "[ -e $f ] && (echo /evil > $f) 2>&1; done; "
        "mkdir /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null && echo mounted || echo refused; "
        "[ -e /tmp/cg/release_agent ] && (echo /evil > /tmp/cg/release_agent) 2>&1; echo done"
    )
    assert out.split()[-2:] == [CGROUP_MOUNT[inside.image], "done"], out
    for line in out.splitlines():
        assert "release_agent" not in line or "Read-only" in line or "denied" in line.lower() or "Permission" in line
    assert host_agent.read_text() == before


# Writing one's own limits: the read-only cgroupfs refuses; in a docker sandbox cgroupfs is writable
# (its engine makes cgroups below the sandbox's own) and the limit files are host root's.
LIMIT_REFUSAL = {"busybox": "Read-only file system", "docker": "Permission denied"}


async def test_the_sandboxs_own_cgroup_limits_cannot_be_raised(inside: Inside) -> None:
    limits = inside.session["limits"]
    for path, value, raised in (
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", limits["memory_bytes"], "9999999999"),
        ("/sys/fs/cgroup/pids/pids.max", limits["pids"], "max"),
    ):
        out = await inside.sh(f"(echo {raised} > {path}) 2>&1; cat {path}")
        refusal, now = out.strip().splitlines()
        assert LIMIT_REFUSAL[inside.image] in refusal, f"writing {path}: {out}"
        assert int(now) == value


@pytest.mark.parametrize("path", ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"])
async def test_sensitive_kernel_files_are_masked(inside: Inside, path: str) -> None:
    out = await inside.sh(f"head -c 64 {path} 2>/dev/null | wc -c")
    assert int(out) == 0, f"{path} is readable: {out}"


async def test_the_hosts_firmware_tables_are_masked(inside: Inside) -> None:
    assert int(await inside.sh("ls -A /sys/firmware 2>/dev/null | wc -l")) == 0


# What root gets when it undoes the masks: a proc of its own (without the masks) and /sys/firmware
# without its mask. Refused without the mount calls; allowed with them (docker: the masks are the
# sandbox's own mounts, see docs/security.md), and then what they hid is still host root's.
UNMASKED = {"busybox": [], "docker": ["proc-mounted", "firmware-unmasked"]}


async def test_undoing_the_masks_uncovers_nothing_of_the_host(inside: Inside) -> None:
    # Class: reading the host's kernel memory (/proc/kcore), timers (/proc/timer_list), tasks
    # (/proc/sched_debug), other users' keys (/proc/keys) and firmware tables (ACPI) past the masks.
    out = await inside.sh(
        "mkdir -p /tmp/proc; mount -t proc proc /tmp/proc 2>/dev/null && echo proc-mounted; "
        "umount /sys/firmware 2>/dev/null && echo firmware-unmasked; "
        "for f in /tmp/proc/kcore /tmp/proc/timer_list /tmp/proc/sched_debug /sys/firmware/acpi/tables/*; do "
        "head -c 64 $f 2>/dev/null; done | wc -c; cat /tmp/proc/keys 2>/dev/null"
    )
    lines = out.strip().splitlines()
    done = UNMASKED[inside.image]
    assert lines[: len(done)] == done, out
    assert int(lines[len(done)]) == 0, f"a masked file's contents were read: {out}"
    # Keys of the sandbox's own ids only (its session keyring from runc); a host user's id shows as
    # the overflow id 65534 here.
    for key in lines[len(done) + 1 :]:
        uid, gid = key.split()[5:7]
        assert "65534" not in (uid, gid), f"a key of the host shows: {key}"


async def test_dev_holds_no_host_devices(inside: Inside) -> None:
    devices = set((await inside.sh("ls /dev")).split())
    assert not devices & {"sda", "vda", "mem", "kmem", "port", "kmsg", "nvme0n1"}
    assert "No such" in await inside.sh("head -c 1 /dev/mem 2>&1")


async def test_root_inside_is_an_unprivileged_uid_on_the_host(inside: Inside) -> None:
    await inside.sh("sleep 300 & true")
    base = int((await inside.sh("cat /proc/self/uid_map")).split()[1])
    assert base >= 65536
    for pid in inside.own_pids():
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert all(int(u) >= base for u in uids), f"process {pid} runs as host uid {uids}"
        caps = next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1]
        assert caps != "000001ffffffffff"


async def test_files_written_inside_belong_to_the_mapped_range_on_the_host(inside: Inside) -> None:
    await inside.sh("echo hi > /root/made-inside; mkdir /data")
    base = int((await inside.sh("cat /proc/self/uid_map")).split()[1])
    upper = inside.sandbox_dir / "layer" / "upper"
    for path in (upper / "root" / "made-inside", upper / "data"):
        st = path.stat()
        assert st.st_uid == base and st.st_gid == base, f"{path} is owned by {st.st_uid}:{st.st_gid}"


async def test_a_setuid_root_binary_gives_no_host_privilege(inside: Inside) -> None:
    await inside.sh("cp /bin/busybox /tmp/busybox && chmod 4755 /tmp/busybox")
    out = await inside.sh("su nobody -s /bin/sh -c '/tmp/busybox id -u' 2>&1")
    # Either it runs as root *inside* (still the unprivileged host uid) or no_new_privs stops it.
    assert out.strip() in ("0", "65534") or "ermission" in out
    base = int((await inside.sh("cat /proc/self/uid_map")).split()[1])
    for pid in inside.own_pids():
        uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0].split()
        assert min(int(u) for u in uids) >= base


async def test_a_fork_bomb_stops_at_the_pids_limit_and_the_sandbox_stays_usable(inside: Inside) -> None:
    limit = inside.session["limits"]["pids"]
    # Busybox's sh in both images: bash would retry each refused fork for seconds. Its first refused
    # fork ends the bomb's shell, whose exit trap then, at the limit, reads the count, kills the
    # children and reaps them with builtins alone (read, echo, kill, wait): a `pkill` afterwards could
    # itself be refused a fork whenever the engine's threads took the slots the bomb's end set free.
    at_exit = "read n < /sys/fs/cgroup/pids/pids.current; echo \\$n > /root/pids-at-bomb; kill \\$p 2>/dev/null; wait"
    out = await inside.sh(
        f'busybox sh -c \'p=; trap "{at_exit}" EXIT; '
        f'for i in $(seq {limit + 100}); do sleep 30 >/dev/null 2>&1 & p="$p $!"; done\' '
        "2>&1 | grep -c 'fork'; cat /root/pids-at-bomb; rm /root/pids-at-bomb",
        timeout=30,
    )
    failures, current = (int(x) for x in out.split()[-2:])
    assert failures > 0
    assert current <= limit
    await inside.assert_still_whole()


async def test_a_memory_bomb_is_killed_inside_and_the_sandbox_stays_usable(inside: Inside) -> None:
    limit_mib = inside.session["limits"]["memory_bytes"] // (1024 * 1024)
    # tail keeps a line in memory until it ends, and /dev/zero has no newline.
    out = await inside.sh(
        f"head -c {(limit_mib + 64) * 1024 * 1024} /dev/zero | tail > /dev/null; echo rc=$?", timeout=60
    )
    assert "rc=137" in out or "Killed" in out, out
    oom = await inside.sh("grep -E 'oom_kill |under_oom' /sys/fs/cgroup/memory/memory.oom_control")
    assert "oom_kill 0" not in oom
    await inside.assert_still_whole()


async def test_filling_the_disk_stops_at_the_sandboxs_quota_not_the_hosts_disk(inside: Inside) -> None:
    disk_mib = inside.session["limits"]["disk_bytes"] // (1024 * 1024)
    host_free_before = os.statvfs(inside.stack.data_dir).f_bavail
    out = await inside.sh(
        f"dd if=/dev/zero of=/root/fill bs=1M count={disk_mib + 16} 2>&1 | tail -4; df -m / | tail -1", timeout=60
    )
    assert "No space left on device" in out, out
    host_free_after = os.statvfs(inside.stack.data_dir).f_bavail
    block = os.statvfs(inside.stack.data_dir).f_frsize
    assert (host_free_before - host_free_after) * block < 64 * 1024 * 1024, "the fill reached the host's disk"
    await inside.sh("rm /root/fill")
    assert (await inside.sh("echo alive > /root/ok && cat /root/ok")).strip() == "alive"
    await inside.assert_still_whole()
