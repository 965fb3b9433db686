"""The seccomp profile under the real runc: it loads, ordinary work runs, and the dangerous calls fail.

Each test starts a short-lived container straight from ``runc run`` (no agent, no terminal) on a
busybox image, with the sandbox's own ``build_config`` plus ``sandbox.runtime.seccomp.profile()``. A small
static C probe, compiled here, makes raw syscalls and prints one ``<name> <ok|ERRNO>`` line each,
so a denial can be told from the kernel's own answer. A control run without the profile shows
that the profile, not the dropped capabilities, is what denies the calls it must deny.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.host import abis, cgroups
from sandbox.images.store import DEFAULT_ENV, build_busybox_rootfs
from sandbox.runtime.bundle import SandboxSpec, build_config
from sandbox.runtime.seccomp import BLOCKED_EXAMPLES, profile

CGROUP_PARENT = "playground-seccomp-test"
UID_BASE = SandboxSpec.__dataclass_fields__["uid_base"].default
RUNC_TIMEOUT = 60

# One line per attempt. Arguments are chosen so that a call the filter lets through fails (or
# succeeds) harmlessly and with an errno other than the filter's, where the kernel allows that.
PROBE_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_fchmodat2 452
#define NR_statmount 457
#define NR_mseal 462
#define AF_VSOCK_ 40
#define AF_ALG_ 38

static void show(const char *name, long result) {
    if (result >= 0) printf("%s ok\n", name);
    else printf("%s %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    fflush(stdout);
}

/* Runs one call in a child, so a call that succeeds cannot change the probe itself. */
static long in_child(long (*call)(void)) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(call() < 0 ? errno : 0);
    int status;
    if (waitpid(pid, &status, 0) < 0) return -1;
    if (!WIFEXITED(status)) { errno = EINTR; return -1; }
    if (WEXITSTATUS(status) == 0) return 0;
    errno = WEXITSTATUS(status);
    return -1;
}

/* Like show(call()), in a child; "killed" when the filter kills it (SIGSYS). */
static void show_child(const char *name, long (*call)(void)) {
    pid_t pid = fork();
    if (pid == 0) _exit(call() < 0 ? errno : 0);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) { show(name, -1); return; }
    if (WIFSIGNALED(status)) {
        printf("%s %s\n", name, WTERMSIG(status) == SIGSYS ? "killed" : "signalled");
        fflush(stdout);
        return;
    }
    if (WEXITSTATUS(status) == 0) { show(name, 0); return; }
    errno = WEXITSTATUS(status);
    show(name, -1);
}

/* A system call through the i386 ABI (int 0x80), as a 32-bit binary makes it. */
static long i386_call(long nr, long a, long b) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
    if (ret < 0 && ret > -4096) { errno = -ret; return -1; }
    return ret;
}

static long i386_getpid(void) { return i386_call(20, 0, 0); }
static long i386_unshare_user(void) { return i386_call(310, CLONE_NEWUSER, 0); }
static long x32_getpid(void) { return syscall(0x40000000 | SYS_getpid); }

static long raw_clone(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    return pid;
}

static long raw_clone3(void) {
    unsigned long long args[11] = {0};
    args[4] = SIGCHLD; /* exit_signal */
    long pid = syscall(SYS_clone3, args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    return pid;
}

static long unshare_user(void) { return unshare(CLONE_NEWUSER); }
static long unshare_mount(void) { return unshare(CLONE_NEWNS); }
static long pers_no_randomize(void) { return personality(ADDR_NO_RANDOMIZE); }
static long chroot_root(void) { return chroot("/"); }

static long sock(int family, int type) {
    int fd = socket(family, type, 0);
    if (fd >= 0) close(fd);
    return fd;
}

int main(void) {
    int fds[2];
    show("fork", raw_clone(0));
    show("pipe", pipe(fds));
    show("socket_unix", sock(AF_UNIX, SOCK_STREAM));
    show("socket_inet", sock(AF_INET, SOCK_STREAM));
    show("socket_inet6", sock(AF_INET6, SOCK_DGRAM));
    show("socket_netlink", sock(AF_NETLINK, SOCK_RAW));
    show("personality_query", personality(0xffffffff));
    show("personality_linux", personality(PER_LINUX));
    show("chroot", in_child(chroot_root));
    show("ptrace", ptrace(PTRACE_ATTACH, 0x3ffffff0, 0, 0));
    struct iovec local = {fds, sizeof fds}, remote = {fds, sizeof fds};
    show("process_vm_readv", syscall(SYS_process_vm_readv, 0x3ffffff0, &local, 1, &remote, 1, 0));
    show("fchmodat2", syscall(NR_fchmodat2, AT_FDCWD, "/nonexistent", 0, 0));
    show("clone3", raw_clone3());
    show("statmount", syscall(NR_statmount, NULL, NULL, 0, 0));
    show("mseal", syscall(NR_mseal, 0, 0, 0));

    show("clone_newuser", raw_clone(CLONE_NEWUSER));
    show("clone_newns", raw_clone(CLONE_NEWNS));
    show("unshare", in_child(unshare_user));
    show("unshare_mount", in_child(unshare_mount));
    show("personality_no_randomize", in_child(pers_no_randomize));
    show("socket_vsock", sock(AF_VSOCK_, SOCK_STREAM));
    show("socket_alg", sock(AF_ALG_, SOCK_SEQPACKET));
    show("mount", syscall(SYS_mount, "x", "/mnt", "tmpfs", 0, NULL));
    show("umount2", syscall(SYS_umount2, "/nonexistent", 0));
    show("pivot_root", syscall(SYS_pivot_root, "/nonexistent", "/nonexistent"));
    show("setns", syscall(SYS_setns, -1, 0));
    show("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
    show("add_key", syscall(SYS_add_key, "user", "probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
    show("request_key", syscall(SYS_request_key, "user", "probe-none", NULL, 0));
    show("bpf", syscall(SYS_bpf, 0, NULL, 0));
    show("init_module", syscall(SYS_init_module, NULL, 0, ""));
    show("finit_module", syscall(SYS_finit_module, -1, "", 0));
    show("delete_module", syscall(SYS_delete_module, "probe_none", 0));
    show("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    show("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
    show("userfaultfd", syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */));
    show("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    show("io_uring_setup", syscall(SYS_io_uring_setup, 0, NULL));
    show("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
    show("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
    show("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
    char handle[136] = {0};
    *(unsigned int *)handle = 128;
    int mount_id;
    show("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", handle, &mount_id, 0));
    show("reboot", syscall(SYS_reboot, 0, 0, 0, NULL)); /* bad magic: EINVAL if it got through */
    show("swapon", syscall(SYS_swapon, "/nonexistent", 0));
    show("swapoff", syscall(SYS_swapoff, "/nonexistent"));
    show("acct", syscall(SYS_acct, NULL));
    show("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
    show("clock_settime", syscall(SYS_clock_settime, 0, NULL));
    show("lookup_dcookie", syscall(SYS_lookup_dcookie, 0, NULL, 0));
    show("quotactl", syscall(SYS_quotactl, 0, NULL, 0, NULL));
    show("vhangup", syscall(SYS_vhangup));
    show("iopl", syscall(SYS_iopl, 0));
    show("ioperm", syscall(SYS_ioperm, 0, 0, 0));
    show("move_pages", syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0));
    show("mbind", syscall(SYS_mbind, NULL, 0, 0, NULL, 0, 0));
    show("get_mempolicy", syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0));
    show("set_mempolicy", syscall(SYS_set_mempolicy, 0, NULL, 0));
    show("syslog", syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0));
    show("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    show("fsmount", syscall(SYS_fsmount, -1, 0, 0));
    show("fsconfig", syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0));
    show("fspick", syscall(SYS_fspick, -1, "", 0));
    show("move_mount", syscall(SYS_move_mount, -1, "", -1, "", 0));
    show("open_tree", syscall(SYS_open_tree, -1, "", 0));
    show("mount_setattr", syscall(SYS_mount_setattr, -1, "", 0, NULL, 0));
    show("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0));
    show("pidfd_getfd", syscall(SYS_pidfd_getfd, -1, 0, 0));
    show("sethostname", syscall(SYS_sethostname, "probe", 5));
    show("setdomainname", syscall(SYS_setdomainname, "probe", 5));
    show("fanotify_init", syscall(SYS_fanotify_init, 0, 0));
    show("nfsservctl", syscall(SYS_nfsservctl, 0, NULL, NULL));
    show_child("i386_getpid", i386_getpid);
    show_child("i386_unshare", i386_unshare_user);
    show_child("x32_getpid", x32_getpid);
    return 0;
}
"""

# What the probe must report under the profile for the calls it must let through.
EXPECTED_ALLOWED = {
    "fork": "ok",
    "pipe": "ok",
    "socket_unix": "ok",
    "socket_inet": "ok",
    "socket_inet6": "ok",
    "socket_netlink": "ok",
    "personality_query": "ok",
    "personality_linux": "ok",
    "chroot": "ok",  # CAP_SYS_CHROOT is granted, so Docker allows chroot
    "ptrace": "ESRCH",
    "process_vm_readv": "ESRCH",  # allowed; the target pid does not exist
    "fchmodat2": "ENOENT",  # allowed (a newer syscall that Debian's libseccomp knows)
}

# Answered ENOSYS so that libc falls back to an older call: clone3 by the profile itself, syscalls
# newer than any the filter names by runc's stub (these are left out as unknown to libseccomp).
EXPECTED_ENOSYS = ["clone3", "statmount", "mseal"]

# Probes for denied calls that are not syscall names themselves.
EXTRA_DENIED = [
    "clone_newuser",
    "clone_newns",
    "unshare_mount",
    "personality_no_randomize",
    "socket_vsock",
    "socket_alg",
]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def probe(self) -> dict[str, str]:
        results = dict(line.split(" ", 1) for line in self.stdout.splitlines() if " " in line)
        assert results, f"the probe printed nothing: {self}"
        return results


class Sandboxes:
    """Starts throwaway containers on one busybox image under a private runc root."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.rootfs = base / "rootfs"  # not through the image store: runc uses it as the root itself
        build_busybox_rootfs(self.rootfs, UID_BASE)
        (self.rootfs / "mnt").mkdir(mode=0o755)
        os.chown(self.rootfs / "mnt", UID_BASE, UID_BASE)

    def run(self, script: str, seccomp: bool = True, rules: dict | None = None) -> Run:
        """Run ``sh -c script`` to its end; under the agent's profile on this host (or ``rules``) unless
        ``seccomp`` is false."""
        sandbox_id = f"seccomp-{secrets.token_hex(4)}"
        bundle = self.base / sandbox_id
        bundle.mkdir(mode=0o711)
        config = build_config(
            SandboxSpec(
                sandbox_id=sandbox_id,
                hostname="seccomp-test",
                args=[],
                env=list(DEFAULT_ENV),
                cwd="/",
                memory_bytes=128 * 1024**2,
                cpus=1.0,
                pids=64,
                cgroup_parent=CGROUP_PARENT,
                uid_base=UID_BASE,
            )
        )
        config["root"]["path"] = str(self.rootfs)
        config["process"]["terminal"] = False
        config["process"]["args"] = ["/bin/sh", "-c", script]
        if seccomp:
            config["linux"]["seccomp"] = rules or profile(x32=abis.runs_x32())  # the agent's, on this host
        else:
            del config["linux"]["seccomp"]  # build_config always adds the profile
        (bundle / "config.json").write_text(json.dumps(config))
        state = self.base / "state"
        try:
            done = subprocess.run(
                ["runc", "--root", str(state), "run", "--bundle", str(bundle), sandbox_id],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RUNC_TIMEOUT,
            )
        finally:
            subprocess.run(["runc", "--root", str(state), "delete", "--force", sandbox_id], capture_output=True)
            left = cgroups.remove(CGROUP_PARENT, sandbox_id)
            assert not left, f"cgroups left behind: {left}"
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[Sandboxes]:
    if shutil.which("runc") is None:
        pytest.fail("runc is needed (Debian's runc package; 'make deps' installs it)")
    if shutil.which("gcc") is None:
        pytest.fail("gcc and a static libc (Debian's build-essential) are needed to build the seccomp probe")
    # Search-only for others: runc's init runs as the sandbox's unprivileged host uid and must walk here.
    base = Path(tempfile.mkdtemp(prefix="playground-seccomp-"))
    base.chmod(0o711)
    try:
        boxes = Sandboxes(base)
        source = base / "probe.c"
        source.write_text(PROBE_SOURCE)
        subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(boxes.rootfs / "probe"), str(source)], check=True)
        os.chown(boxes.rootfs / "probe", UID_BASE, UID_BASE)
        (boxes.rootfs / "probe").chmod(0o755)
        yield boxes
    finally:
        cgroups.remove_parent(CGROUP_PARENT)
        shutil.rmtree(base, ignore_errors=True)


def test_a_sandbox_starts_with_the_profile_and_runs_a_command(sandboxes: Sandboxes) -> None:
    run = sandboxes.run("echo ok")
    assert (run.returncode, run.stdout) == (0, "ok\n"), run


def test_a_fork_exec_pipe_workload_runs(sandboxes: Sandboxes) -> None:
    run = sandboxes.run("echo a | cat; sh -c 'echo b | cat | cat'; ls / | grep -c . >/dev/null && echo c")
    assert (run.returncode, run.stdout) == (0, "a\nb\nc\n"), run


def test_unshare_of_a_user_or_mount_namespace_is_not_permitted(sandboxes: Sandboxes) -> None:
    for flag in ("-U", "-m"):
        run = sandboxes.run(f"unshare {flag} true")
        assert run.returncode != 0, run
        assert "Operation not permitted" in run.stderr, run


def test_mounting_a_filesystem_is_not_permitted(sandboxes: Sandboxes) -> None:
    run = sandboxes.run("mount -t tmpfs x /mnt")
    assert run.returncode != 0, run
    assert "permission denied" in run.stderr, run  # busybox's words for EPERM from mount(2)


def test_ordinary_calls_get_through_the_filter(sandboxes: Sandboxes) -> None:
    results = sandboxes.run("/probe").probe()
    assert {name: results.get(name) for name in EXPECTED_ALLOWED} == EXPECTED_ALLOWED


def test_clone3_and_syscalls_newer_than_the_filter_fail_with_enosys(sandboxes: Sandboxes) -> None:
    results = sandboxes.run("/probe").probe()
    assert {name: results.get(name) for name in EXPECTED_ENOSYS} == dict.fromkeys(EXPECTED_ENOSYS, "ENOSYS")


def test_every_blocked_example_is_denied_with_eperm(sandboxes: Sandboxes) -> None:
    results = sandboxes.run("/probe").probe()
    names = BLOCKED_EXAMPLES + EXTRA_DENIED
    assert {name: results.get(name) for name in names} == dict.fromkeys(names, "EPERM")


def test_without_the_profile_the_same_calls_get_further(sandboxes: Sandboxes) -> None:
    """A control: these denials come from the profile, not from the dropped capabilities."""
    without = sandboxes.run("/probe", seccomp=False).probe()
    with_profile = sandboxes.run("/probe").probe()
    # Calls that need no capability we drop, or that the kernel turns down for another reason.
    for name in (
        "unshare",
        "clone_newuser",
        "name_to_handle_at",
        "personality_no_randomize",
        "setns",
        "io_uring_enter",
        "pidfd_getfd",
        "kcmp",
        "clone3",
    ):
        assert without[name] != with_profile[name], (name, without[name], with_profile[name])
    run = sandboxes.run("unshare -U true && echo nested", seccomp=False)
    assert run.stdout == "nested\n", run


def test_32_bit_calls_meet_the_same_rules_and_an_abi_the_kernel_does_not_run_kills_the_caller(
    sandboxes: Sandboxes,
) -> None:
    """i386 calls (int 0x80) are filtered as native ones; an x32 call is killed unless the kernel
    runs x32 (the filter then covers it), so neither ABI is a way round the filter."""
    with_profile = sandboxes.run("/probe").probe()
    without = sandboxes.run("/probe", seccomp=False).probe()
    assert with_profile["i386_getpid"] == "ok"
    assert (without["i386_unshare"], with_profile["i386_unshare"]) == ("ok", "EPERM")
    assert with_profile["x32_getpid"] == ("ok" if abis.runs_x32() else "killed")
    assert without["x32_getpid"] == ("ok" if abis.runs_x32() else "ENOSYS")


def test_runc_ignores_a_syscall_name_libseccomp_does_not_know(sandboxes: Sandboxes) -> None:
    """Why tests/unit checks every name against libseccomp: runc 1.1 would not catch a misspelling."""
    rules = profile()
    rules["syscalls"][0]["names"].append("no_such_syscall")
    run = sandboxes.run("echo ok", rules=rules)
    assert (run.returncode, run.stdout) == (0, "ok\n"), run
