"""The seccomp profile's structure: Docker's default semantics for Playground's capability set."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from collections import Counter

import pytest

from sandbox.runtime import seccomp
from sandbox.runtime.bundle import DEFAULT_CAPABILITIES
from sandbox.runtime.seccomp import BLOCKED_EXAMPLES, profile


def rules_for(name: str) -> list[dict]:
    return [rule for rule in profile()["syscalls"] if name in rule["names"]]


def unconditionally_allowed() -> set[str]:
    return {
        name
        for rule in profile()["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and "args" not in rule
        for name in rule["names"]
    }


def every_name() -> set[str]:
    return {name for rule in profile()["syscalls"] for name in rule["names"]}


def test_the_profile_denies_by_default_with_eperm() -> None:
    rules = profile()
    assert rules["defaultAction"] == "SCMP_ACT_ERRNO"
    assert rules["defaultErrnoRet"] == 1


def test_the_filter_covers_all_three_x86_abis_or_leaves_x32_out_for_a_kernel_that_does_not_run_it() -> None:
    assert profile()["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert profile(x32=False)["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert profile(docker=True, x32=False)["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]


def test_the_profile_is_plain_json_and_a_fresh_copy_each_time() -> None:
    first = profile()
    first["syscalls"][0]["names"].append("mount")
    assert "mount" not in unconditionally_allowed()
    assert json.loads(json.dumps(profile())) == profile()


def test_ordinary_programs_have_what_they_need() -> None:
    allowed = unconditionally_allowed()
    for name in (
        "read",
        "write",
        "openat",
        "execve",
        "fork",
        "vfork",
        "wait4",
        "pipe2",
        "mmap",
        "futex",
        "rt_sigaction",
        "getdents64",
        "statx",
        "epoll_pwait",
        "connect",
        "accept4",
        "arch_prctl",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "chroot",
        "ptrace",
        "process_vm_readv",
    ):
        assert name in allowed, name


def test_mount_and_unshare_are_not_allowed() -> None:
    names = every_name()
    for name in (
        "mount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "fsopen",
        "fsmount",
        "move_mount",
        "open_tree",
        "mount_setattr",
    ):
        assert name not in names, name


def test_no_blocked_example_appears_in_any_rule() -> None:
    assert not set(BLOCKED_EXAMPLES) & every_name()


def test_io_uring_stays_blocked() -> None:
    assert not {"io_uring_setup", "io_uring_enter", "io_uring_register"} & every_name()


def test_only_the_chroot_group_of_the_capability_gated_ones_is_granted() -> None:
    assert "CAP_SYS_CHROOT" in DEFAULT_CAPABILITIES
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES
    gated_on_caps_we_drop = {
        "bpf",
        "fanotify_init",
        "lookup_dcookie",
        "quotactl",
        "quotactl_fd",
        "sethostname",
        "setdomainname",
        "syslog",
        "umount",
        "perf_event_open",
        "reboot",
        "init_module",
        "finit_module",
        "delete_module",
        "acct",
        "kcmp",
        "pidfd_getfd",
        "process_madvise",
        "iopl",
        "ioperm",
        "settimeofday",
        "stime",
        "clock_settime",
        "clock_settime64",
        "vhangup",
        "get_mempolicy",
        "mbind",
        "set_mempolicy",
        "set_mempolicy_home_node",
        "open_by_handle_at",
    }
    assert not gated_on_caps_we_drop & every_name()
    assert "chroot" in unconditionally_allowed()


def test_clone_with_namespace_flags_is_filtered() -> None:
    (rule,) = rules_for("clone")
    assert rule["action"] == "SCMP_ACT_ALLOW"
    assert rule["names"] == ["clone"]
    (arg,) = rule["args"]
    # CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP, masked and required to be zero.
    assert arg == {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}


def test_clone3_fails_with_enosys_so_glibc_falls_back_to_clone() -> None:
    (rule,) = rules_for("clone3")
    assert rule == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}


def test_linux_aio_fails_with_enosys_so_programs_fall_back_to_threads() -> None:
    aio = ["io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents"]
    for name in aio:
        (rule,) = rules_for(name)
        assert rule["action"] == "SCMP_ACT_ERRNO", name
        assert rule["errnoRet"] == 38, name
        assert "args" not in rule, name


def test_personality_is_allowed_only_for_dockers_five_values() -> None:
    rules = rules_for("personality")
    assert [rule["action"] for rule in rules] == ["SCMP_ACT_ALLOW"] * len(rules)
    assert [len(rule["args"]) for rule in rules] == [1] * len(rules)
    assert [(rule["args"][0]["op"], rule["args"][0]["index"]) for rule in rules] == [("SCMP_CMP_EQ", 0)] * len(rules)
    assert sorted(rule["args"][0]["value"] for rule in rules) == [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]


def allows_socket_family(family: int) -> bool:
    """Evaluates the socket rules (OR-ed, one comparison each) for one address family."""
    ops = {"SCMP_CMP_EQ": lambda a, v: a == v, "SCMP_CMP_LT": lambda a, v: a < v}
    return any(ops[arg["op"]](family, arg["value"]) for rule in rules_for("socket") for arg in rule["args"])


def test_socket_is_allowed_for_dockers_families_but_not_vsock_or_alg() -> None:
    rules = rules_for("socket")
    assert [rule["action"] for rule in rules] == ["SCMP_ACT_ALLOW"] * len(rules)
    assert [len(rule["args"]) for rule in rules] == [1] * len(rules)
    assert [rule["args"][0]["index"] for rule in rules] == [0] * len(rules)
    allowed = {family for family in range(1, 64) if allows_socket_family(family)}
    assert allowed == set(seccomp.SOCKET_FAMILIES.values())
    for family in (1, 2, 10, 16, 17):  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET
        assert family in allowed
    assert 40 not in allowed  # AF_VSOCK
    assert 38 not in allowed  # AF_ALG
    assert allows_socket_family(0)  # AF_UNSPEC falls in the "<" range, as in Docker; the kernel refuses it


def test_each_name_appears_once_in_the_unconditional_list() -> None:
    names = profile()["syscalls"][0]["names"]
    assert [name for name, count in Counter(names).items() if count > 1] == []
    assert names == sorted(names)


def libseccomp() -> ctypes.CDLL:
    path = ctypes.util.find_library("seccomp")
    if path is None:
        pytest.skip("libseccomp is not installed (Debian's libseccomp2 comes with runc)")
    lib = ctypes.CDLL(path)
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    return lib


def test_every_name_is_known_to_the_installed_libseccomp() -> None:
    """runc silently skips a name libseccomp cannot resolve, so a typo would quietly deny a syscall."""
    lib = libseccomp()
    unknown = sorted(
        name for name in every_name() | set(BLOCKED_EXAMPLES) if lib.seccomp_syscall_resolve_name(name.encode()) == -1
    )  # __NR_SCMP_ERROR
    assert unknown == []


def test_names_left_out_are_really_unknown_to_the_installed_libseccomp() -> None:
    lib = libseccomp()
    known = [
        name for name in seccomp.LEFT_OUT_UNKNOWN_TO_LIBSECCOMP if lib.seccomp_syscall_resolve_name(name.encode()) != -1
    ]
    assert known == [], "libseccomp now knows these: add them back to their group in sandbox/runtime/seccomp.py"


def test_the_docker_profile_adds_only_the_calls_an_inner_engine_needs() -> None:
    default, docker = profile(), profile(docker=True)
    added = docker["syscalls"][len(default["syscalls"]) :]
    assert docker["syscalls"][: len(default["syscalls"])] == default["syscalls"]
    allowed = {n for rule in added if rule["action"] == "SCMP_ACT_ALLOW" and "args" not in rule for n in rule["names"]}
    assert allowed == {"mount", "umount2", "pivot_root", "setns", "sethostname", "setdomainname"}
    for name in ("fsopen", "fsconfig", "fsmount", "open_tree", "move_mount", "bpf", "io_uring_setup", "clone3"):
        assert all(name not in rule["names"] or rule["action"] != "SCMP_ACT_ALLOW" for rule in docker["syscalls"])


def test_the_docker_profile_allows_unshare_and_clone_only_without_a_new_user_namespace() -> None:
    # clone keeps the default profile's rule (no namespace flag) and gains this one, so that swarm
    # mode's clone(CLONE_NEWNET) of dockerd works: seccomp allows a call when any rule allows it.
    added = profile(docker=True)["syscalls"][len(profile()["syscalls"]) :]
    namespaced = [rule for rule in added if "unshare" in rule["names"] or "clone" in rule["names"]]
    assert namespaced == [
        {
            "names": ["unshare", "clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": seccomp.CLONE_NEWUSER, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        }
    ]


def test_the_docker_profile_answers_keyring_calls_with_enosys_so_an_inner_runc_skips_its_keyring() -> None:
    keyring = [rule for rule in profile(docker=True)["syscalls"] if "keyctl" in rule["names"]]
    assert keyring == [
        {"names": ["keyctl", "add_key", "request_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": seccomp.ENOSYS}
    ]
