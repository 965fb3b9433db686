"""Escape and abuse attempts from a root shell inside a real sandbox. Each must fail.

Every attempt names the class of attack (or the CVE) it guards against. The verdicts come from
the sandbox itself: a compiled probe (probe.c) for single system calls, the busybox shell for
the rest, and the host's own view of the sandbox's processes and files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.security.conftest import Inside

SYSCALL_ATTEMPTS = {
    # attempt: what it guards against
    "keyctl": "kernel keyring access across containers (CVE-2016-0728 class); keyrings are not namespaced",
    "add_key": "kernel keyring abuse (keyctl family)",
    "bpf": "eBPF verifier escapes (CVE-2021-3490, CVE-2023-2163 class)",
    "init_module": "loading a kernel module",
    "finit_module": "loading a kernel module from a file",
    "kexec_load": "replacing the running kernel",
    "mount": "mounting filesystems (cgroup release_agent CVE-2022-0492, overlay tricks)",
    "umount": "unmounting the masks over /proc to uncover the host's view",
    "pivot_root": "changing the root filesystem",
    "unshare_user": "nested user namespaces, the door to most kernel privilege escalations (CVE-2022-0185 class)",
    "unshare_mount": "a new mount namespace to mount in",
    "setns": "joining other namespaces",
    "userfaultfd": "userfaultfd-assisted kernel race exploits",
    "perf_event_open": "perf side channels and perf exploits (CVE-2013-2094 class)",
    "io_uring_setup": "io_uring kernel attack surface (CVE-2022-29582 class)",
    "reboot": "rebooting or powering off the host",
    "swapon": "host swap configuration",
    "clock_settime": "changing the host's clock",
    "open_by_handle_at": "the 'shocker' escape through file handles (CAP_DAC_READ_SEARCH)",
    "mknod_block": "creating a block device node to read host disks",
    "syslog": "reading the kernel log (addresses for KASLR bypass)",
    "acct": "process accounting on the host",
    "chroot_escape": "the double-chroot breakout (CAP_SYS_CHROOT)",
    "tiocsti_foreign": "TIOCSTI keystroke injection into a terminal that is not its own (CVE-2017-5226 class)",
    "raw_socket": "forged IP packets with a spoofed source address, to slip past the walls",
    "packet_socket": "forged Ethernet frames and ARP spoofing of the gateway; AF_PACKET kernel bugs "
    "(CVE-2016-8655, CVE-2020-14386)",
}


@pytest.mark.parametrize("attempt", sorted(SYSCALL_ATTEMPTS))
async def test_a_dangerous_system_call_is_denied(inside: Inside, attempt: str) -> None:
    verdict = await inside.attempt(attempt)
    assert verdict.startswith("DENIED"), f"{attempt} ({SYSCALL_ATTEMPTS[attempt]}) was allowed: {verdict}"


async def test_ptrace_of_a_process_outside_is_impossible(inside: Inside) -> None:
    # pid 1 inside is the sandbox's own shell; host processes have no pid here at all.
    host_pid = os.getpid()
    listing = await inside.sh(f"ls /proc/{host_pid} 2>&1 | head -1")
    assert "No such file" in listing or str(host_pid) not in await inside.sh("ls /proc")


async def test_host_processes_are_invisible(inside: Inside) -> None:
    pids = (await inside.sh("ls /proc | grep -c '^[0-9]'")).strip()
    assert int(pids) <= 4, f"the sandbox sees {pids} processes"
    command_lines = await inside.sh("cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '")
    assert "playground.webserver" not in command_lines
    assert "daphne" not in command_lines


async def test_host_files_are_invisible_even_through_proc(inside: Inside) -> None:
    assert "playground" not in await inside.sh("cat /proc/1/root/etc/passwd")
    assert "No such file" in await inside.sh("ls /proc/1/root/work 2>&1")


@pytest.mark.parametrize(
    "path",
    [
        "/proc/sys/kernel/hostname",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/modprobe",
        "/proc/sysrq-trigger",
        "/proc/sys/vm/drop_caches",
    ],
)
async def test_kernel_settings_cannot_be_written(inside: Inside, path: str) -> None:
    out = await inside.sh(f"echo x > {path} 2>&1; echo rc=$?")
    assert "rc=1" in out or "rc=2" in out, f"writing {path} succeeded: {out}"


async def test_the_cgroup_release_agent_is_out_of_reach(inside: Inside) -> None:
    # CVE-2022-0492: write release_agent of a cgroup v1 hierarchy to run a program as host root.
    out = await inside.sh(
        "for f in /sys/fs/cgroup/*/release_agent /sys/fs/cgroup/release_agent; do "
        "[ -e $f ] && (echo /evil > $f) 2>&1; done; "
        "mkdir /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg 2>&1; echo done"
    )
    assert "done" in out
    for line in out.splitlines():
        assert "release_agent" not in line or "Read-only" in line or "denied" in line.lower() or "Permission" in line


async def test_the_sandboxs_own_cgroup_limits_are_read_only(inside: Inside) -> None:
    out = await inside.sh(
        "echo 9999999999 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1; "
        "echo max > /sys/fs/cgroup/pids/pids.max 2>&1; echo rc=$?"
    )
    assert "Read-only" in out


@pytest.mark.parametrize("path", ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"])
async def test_sensitive_kernel_files_are_masked(inside: Inside, path: str) -> None:
    out = await inside.sh(f"head -c 64 {path} 2>/dev/null | wc -c")
    assert int(out) == 0, f"{path} is readable: {out}"


async def test_the_hosts_firmware_tables_are_masked(inside: Inside) -> None:
    assert int(await inside.sh("ls -A /sys/firmware 2>/dev/null | wc -l")) == 0


async def test_dev_holds_no_host_devices(inside: Inside) -> None:
    devices = set((await inside.sh("ls /dev")).split())
    assert not devices & {"sda", "vda", "mem", "kmem", "port", "kmsg", "nvme0n1"}
    assert "No such" in await inside.sh("head -c 1 /dev/mem 2>&1")


async def test_root_inside_is_an_unprivileged_uid_on_the_host(inside: Inside) -> None:
    await inside.sh("sleep 300 & true")
    base = int((await inside.sh("cat /proc/self/uid_map")).split()[1])
    assert base >= 65536
    for pid in inside.host_pids():
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
    for pid in inside.host_pids():
        uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0].split()
        assert min(int(u) for u in uids) >= base


async def test_a_fork_bomb_stops_at_the_pids_limit_and_the_sandbox_stays_usable(inside: Inside) -> None:
    out = await inside.sh(
        "(for i in $(seq 400); do sleep 30 >/dev/null 2>&1 & done) 2>&1 | grep -c 'fork' ; "
        "cat /sys/fs/cgroup/pids/pids.current",
        timeout=30,
    )
    failures, current = (int(x) for x in out.split()[-2:])
    limit = inside.session["limits"]["pids"]
    assert failures > 0
    assert current <= limit
    await inside.sh("pkill sleep; true")
    assert (await inside.sh("echo alive")).strip() == "alive"


async def test_a_memory_bomb_is_killed_inside_and_the_sandbox_stays_usable(inside: Inside) -> None:
    limit_mib = inside.session["limits"]["memory_bytes"] // (1024 * 1024)
    # tail keeps a line in memory until it ends, and /dev/zero has no newline.
    out = await inside.sh(
        f"head -c {(limit_mib + 64) * 1024 * 1024} /dev/zero | tail > /dev/null; echo rc=$?", timeout=60
    )
    assert "rc=137" in out or "Killed" in out, out
    oom = await inside.sh("grep -E 'oom_kill |under_oom' /sys/fs/cgroup/memory/memory.oom_control")
    assert "oom_kill 0" not in oom
    assert (await inside.sh("echo alive")).strip() == "alive"


async def test_filling_the_disk_stops_at_the_sandboxs_quota_not_the_hosts_disk(inside: Inside) -> None:
    disk_mib = inside.session["limits"]["disk_bytes"] // (1024 * 1024)
    host_free_before = os.statvfs(inside.stack.data_dir).f_bavail
    out = await inside.sh(
        f"dd if=/dev/zero of=/root/fill bs=1M count={disk_mib + 16} 2>&1 | tail -3; df -m / | tail -1", timeout=60
    )
    assert "No space left on device" in out, out
    host_free_after = os.statvfs(inside.stack.data_dir).f_bavail
    block = os.statvfs(inside.stack.data_dir).f_frsize
    assert (host_free_before - host_free_after) * block < 64 * 1024 * 1024, "the fill reached the host's disk"
    await inside.sh("rm /root/fill")
    assert (await inside.sh("echo alive > /root/ok && cat /root/ok")).strip() == "alive"
