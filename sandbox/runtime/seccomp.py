"""The sandbox's seccomp filter: Docker's default profile, resolved for Playground's capability set.

Contract: ``profile()`` returns a fresh OCI ``linux.seccomp`` object (runtime spec 1.0.2) for an
x86_64 host, ready to be placed at ``config["linux"]["seccomp"]``. It is a pure function with no
I/O, like ``sandbox.runtime.bundle.build_config``. Every syscall not named below fails with EPERM
(``defaultAction`` SCMP_ACT_ERRNO, ``defaultErrnoRet`` 1); the filter covers the native x86_64 ABI,
i386's, and x32's when the host kernel runs it (``x32``, see :mod:`sandbox.host.abis`): libseccomp
kills a process calling through an ABI the filter leaves out, so a 32-bit binary is no way around it.

Where the semantics come from: moby's default profile (``profiles/seccomp/default.json`` and the
Go source it is generated from, ``DefaultProfile()`` in moby/profiles ``seccomp/default_linux.go``),
evaluated the way Docker evaluates it on an amd64 host for a container with Docker's default
capabilities (``sandbox.runtime.bundle.DEFAULT_CAPABILITIES``) on a kernel newer than 4.8:

* the unconditional allow list (io_uring is not on it: moby took it off);
* the amd64 arch-only entries (``arch_prctl``, ``modify_ldt``);
* ``ptrace``, ``process_vm_readv`` and ``process_vm_writev``, which Docker allows on kernels >= 4.8
  (where a tracer can no longer bypass seccomp);
* the groups gated on a capability we grant: only ``chroot`` (CAP_SYS_CHROOT);
* the argument filters: ``personality`` for its five harmless values, ``socket`` for the address
  families Docker allows (not AF_VSOCK, not AF_ALG, not families the kernel dropped), ``clone``
  without any namespace flag, and ``clone3`` answered with ENOSYS so that glibc falls back to
  ``clone``, whose flags can be inspected;
* not the groups gated on capabilities we do not grant: CAP_SYS_ADMIN (mount, umount2, unshare,
  setns, bpf, perf_event_open, fsopen and the new mount API, quotactl, syslog, sethostname, ...),
  CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_PTRACE (kcmp, pidfd_getfd, process_madvise),
  CAP_SYS_RAWIO (iopl, ioperm), CAP_SYS_TIME, CAP_SYS_PACCT, CAP_SYS_TTY_CONFIG, CAP_SYS_NICE
  (mbind, get_mempolicy, set_mempolicy, ...), CAP_SYSLOG, CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH
  (open_by_handle_at).

Three deliberate differences from Docker's file:

* ``name_to_handle_at`` is denied (Docker allows it): it is half of the open_by_handle_at
  escape and nothing in a playground shell needs it.
* Linux native AIO (``io_setup`` and the rest of ``ASYNC_IO``) fails with ENOSYS (Docker allows
  it): its contexts come from one host-wide pool (``fs.aio-max-nr``) that a single sandbox can
  empty; programs fall back to threads as on a kernel without AIO.
* Names that runc's libseccomp (2.5.4 on Debian 12) cannot resolve are left out, since runc
  would ignore them anyway: see ``LEFT_OUT_UNKNOWN_TO_LIBSECCOMP``. runc answers every syscall
  numbered above the highest one the filter names with ENOSYS rather than EPERM, so libc's
  fallbacks for those newer calls (statmount, mseal, ...) keep working.

The lists are grouped by purpose below; each name appears once across the groups.
"""

from __future__ import annotations

import copy
from typing import Any

ARCHITECTURES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
X32 = "SCMP_ARCH_X32"  # covered too when the host kernel runs x32 system calls
EPERM = 1
ENOSYS = 38

# fmt: off
# (the syscall tables below keep several names a line; ruff format would put one a line)

# --- The unconditional allow list, by purpose -------------------------------------------------

# Starting, running and ending programs; limits and information about the process itself.
PROCESS = [
    "execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid", "waitpid", "restart_syscall",
    "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "prctl", "seccomp", "capget", "capset",
    "uname", "sysinfo", "times", "getrusage", "getrlimit", "setrlimit", "prlimit64", "ugetrlimit", "getcpu",
    "getrandom", "membarrier", "pidfd_open", "pidfd_send_signal", "process_mrelease", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self",
]

# Who the process is: ids, process groups, sessions, credentials (32-bit *32 variants for i386).
IDENTITY = [
    "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid", "getuid", "getuid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32", "getresuid", "getresuid32", "getresgid",
    "getresgid32", "getgroups", "getgroups32", "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32",
    "setregid", "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32", "setfsuid", "setfsuid32",
    "setfsgid", "setfsgid32", "setgroups", "setgroups32",
]

# Signals, sent and handled.
SIGNALS = [
    "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "pause", "alarm",
]

# Memory: mappings, protection keys, locking, anonymous files; futexes; TLS descriptors.
MEMORY = [
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock", "mlock2",
    "mlockall", "munlock", "munlockall", "remap_file_pages", "memfd_create", "memfd_secret", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "map_shadow_stack", "cachestat", "futex", "futex_time64", "futex_waitv",
    "futex_wait", "futex_wake", "futex_requeue", "get_thread_area", "set_thread_area",
]

# Scheduling policy, CPU affinity, nice values and I/O priority of the caller's own processes.
SCHEDULING = [
    "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_yield", "getpriority", "setpriority",
    "ioprio_get", "ioprio_set",
]

# Clocks, sleeps and timers (adjtimex/clock_adjtime only read the clock without CAP_SYS_TIME).
TIME = [
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
    "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "adjtimex", "clock_adjtime", "clock_adjtime64",
    "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64",
]

# The file tree: paths, directories, links, ownership, modes, timestamps, filesystem statistics.
FILESYSTEM = [
    "open", "openat", "openat2", "creat", "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "mkdir",
    "mkdirat", "rmdir", "mknod", "mknodat", "link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat",
    "rename", "renameat", "renameat2", "unlink", "unlinkat", "getdents", "getdents64", "stat", "stat64", "lstat",
    "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64",
    "truncate", "truncate64", "ftruncate", "ftruncate64", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
    "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32", "umask", "utime", "utimes", "utimensat",
    "utimensat_time64", "futimesat",
]

# Extended attributes.
XATTRS = [
    "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr",
    "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
]

# Reading, writing and managing open descriptors; pipes and zero-copy moves; syncing.
DESCRIPTORS = [
    "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "lseek",
    "_llseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock", "ioctl", "pipe", "pipe2",
    "splice", "tee", "vmsplice", "sendfile", "sendfile64", "copy_file_range", "fallocate", "fadvise64",
    "fadvise64_64", "readahead", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "eventfd", "eventfd2",
]

# Waiting for descriptors and file changes: poll/select/epoll, inotify, fanotify marks.
POLLING = [
    "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
]

# Linux native asynchronous I/O, answered with ENOSYS instead of allowed as in Docker (and io_uring
# is absent, as in current moby). Every io_setup reserves part of the host-wide fs.aio-max-nr
# (65536 events): four calls from one sandbox used all of it, and no context of a namespace
# or cgroup bounds it. On ENOSYS, libaio users (databases, fio, qemu) fall back to threads, and
# glibc's POSIX aio_* never used these calls.
ASYNC_IO = [
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
]

# Sockets once created (``socket`` itself is filtered by address family, below). On i386 every
# socket call goes through ``socketcall``, whose arguments seccomp cannot see, as in Docker.
SOCKETS = [
    "socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
    "getsockopt", "setsockopt", "shutdown", "send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg",
    "recvmmsg", "recvmmsg_time64",
]

# System V and POSIX IPC (the sandbox has its own IPC namespace).
IPC = [
    "ipc", "msgget", "msgctl", "msgsnd", "msgrcv", "semget", "semctl", "semop", "semtimedop", "semtimedop_time64",
    "shmget", "shmctl", "shmat", "shmdt", "mq_open", "mq_unlink", "mq_getsetattr", "mq_notify", "mq_timedsend",
    "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
]

# --- Conditional entries of Docker's profile that hold for us ----------------------------------

# Docker's "arches: amd64/x32/x86" entries (x86 segment and TLS setup).
X86_ONLY = ["arch_prctl", "modify_ldt"]

# Docker's "minKernel: 4.8" entry: tracing one's own processes (strace, gdb) inside the sandbox.
DEBUGGING = ["ptrace", "process_vm_readv", "process_vm_writev"]

# Docker's "caps: CAP_SYS_CHROOT" entry; the other capability-gated groups are for caps we drop.
GRANTED_CAPABILITIES = ["chroot"]

ALLOWED = (
    PROCESS
    + IDENTITY
    + SIGNALS
    + MEMORY
    + SCHEDULING
    + TIME
    + FILESYSTEM
    + XATTRS
    + DESCRIPTORS
    + POLLING
    + SOCKETS
    + IPC
    + X86_ONLY
    + DEBUGGING
    + GRANTED_CAPABILITIES
)

# Names on Docker's unconditional list that Debian's libseccomp 2.5.4 cannot resolve; runc would
# skip them (and answer them ENOSYS as newer than the filter), so they are left out here.
LEFT_OUT_UNKNOWN_TO_LIBSECCOMP = [
    "getxattrat", "setxattrat", "listxattrat", "removexattrat", "listmount", "statmount", "mseal", "uretprobe",
    "riscv_hwprobe",
]

# --- Argument filters -------------------------------------------------------------------------

# personality(2): only the values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
# and 0xffffffff (query the current persona). ADDR_NO_RANDOMIZE and the rest are denied.
PERSONALITY_VALUES = [0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF]

# socket(2) address families, numbered as in the kernel's include/linux/socket.h. Docker allows
# these and denies the rest: AF_DECnet (12), AF_ECONET (19), AF_ATMSVC (20), AF_IRDA (23),
# AF_WANPIPE (25), AF_ISDN (34), AF_CAIF (37) are gone or going from the kernel; AF_ALG (38)
# exposes the kernel crypto API; AF_VSOCK (40) reaches the host and other VMs by CID.
SOCKET_FAMILIES = {
    "AF_UNIX": 1,
    "AF_INET": 2,
    "AF_AX25": 3,
    "AF_IPX": 4,
    "AF_APPLETALK": 5,
    "AF_NETROM": 6,
    "AF_BRIDGE": 7,
    "AF_ATMPVC": 8,
    "AF_X25": 9,
    "AF_INET6": 10,
    "AF_ROSE": 11,
    "AF_NETBEUI": 13,
    "AF_SECURITY": 14,
    "AF_KEY": 15,
    "AF_NETLINK": 16,
    "AF_PACKET": 17,
    "AF_ASH": 18,
    "AF_RDS": 21,
    "AF_SNA": 22,
    "AF_PPPOX": 24,
    "AF_LLC": 26,
    "AF_IB": 27,
    "AF_MPLS": 28,
    "AF_CAN": 29,
    "AF_TIPC": 30,
    "AF_BLUETOOTH": 31,
    "AF_IUCV": 32,
    "AF_RXRPC": 33,
    "AF_PHONET": 35,
    "AF_IEEE802154": 36,
    "AF_NFC": 39,
    "AF_KCM": 41,
    "AF_QIPCRTR": 42,
    "AF_SMC": 43,
    "AF_XDP": 44,
    "AF_MCTP": 45,
}
AF_VSOCK = 40
AF_ALG = 38

# clone(2) flags that create namespaces; without CAP_SYS_ADMIN Docker allows clone only when none
# is set (clone's flags are argument 0 on x86).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP
)

# Syscalls the profile must deny (tests check a few of these against a real runc).
BLOCKED_EXAMPLES = [
    "mount", "umount2", "unshare", "setns", "pivot_root", "keyctl", "add_key", "request_key", "bpf", "init_module",
    "finit_module", "delete_module", "kexec_load", "kexec_file_load", "userfaultfd", "perf_event_open",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at", "name_to_handle_at", "reboot",
    "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "lookup_dcookie", "quotactl", "vhangup", "iopl",
    "ioperm", "move_pages", "mbind", "get_mempolicy", "set_mempolicy", "syslog", "fsopen", "fsmount", "fsconfig",
    "fspick", "move_mount", "open_tree", "mount_setattr", "kcmp", "pidfd_getfd", "sethostname", "setdomainname",
    "fanotify_init", "nfsservctl",
]

# fmt: on


def _rule(
    names: list[str], action: str = "SCMP_ACT_ALLOW", args: list[dict] | None = None, errno_ret: int | None = None
) -> dict[str, object]:
    rule: dict[str, object] = {"names": names, "action": action}
    if args:
        rule["args"] = args
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    return rule


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict[str, object]:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def _socket_rules() -> list[dict[str, object]]:
    """One rule per allowed family, with the leading run from AF_UNIX collapsed into one "<".

    runc ORs separate rules but cannot express a bounded range in one, so, as in moby, the run
    1..N becomes ``family < N+1`` (AF_UNSPEC, 0, cannot be created) and later ones are equalities.
    """
    families = sorted(SOCKET_FAMILIES.values())
    end = 0
    while end < len(families) and families[end] == end + 1:
        end += 1
    rules = []
    if end:
        rules.append(_rule(["socket"], args=[_arg(0, families[end - 1] + 1, "SCMP_CMP_LT")]))
    rules += [_rule(["socket"], args=[_arg(0, family, "SCMP_CMP_EQ")]) for family in families[end:]]
    return rules


_PROFILE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": EPERM,
    "architectures": ARCHITECTURES,
    "syscalls": [
        _rule(sorted(ALLOWED)),
        *_socket_rules(),
        *[_rule(["personality"], args=[_arg(0, value, "SCMP_CMP_EQ")]) for value in PERSONALITY_VALUES],
        # MASKED_EQ: (flags & value) == valueTwo, i.e. no namespace flag set.
        _rule(["clone"], args=[_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ", 0)]),
        # ENOSYS, not EPERM: glibc then falls back to clone, which the rule above can inspect.
        _rule(["clone3"], action="SCMP_ACT_ERRNO", errno_ret=ENOSYS),
        # ENOSYS, as on a kernel built without CONFIG_AIO: programs fall back to threads.
        _rule(ASYNC_IO, action="SCMP_ACT_ERRNO", errno_ret=ENOSYS),
    ],
}


# The docker profile's additions (an inner container engine's needs, each found necessary by
# removing it alone: docs/security.md, "The docker profile"): mounts and the namespace calls of
# an inner runc, but never a nested user namespace (unshare, and clone with namespace flags, only
# without CLONE_NEWUSER: the engine's swarm mode makes the network namespaces of its overlay
# networks and of the routing mesh by a clone(CLONE_NEWNET) of itself, what unshare gives an inner
# runc already), and the keyring calls answered ENOSYS so that an inner runc skips its session
# keyring instead of failing on EPERM.
DOCKER_ALLOWED = ["mount", "umount2", "pivot_root", "setns", "sethostname", "setdomainname"]
KEYRING = ["keyctl", "add_key", "request_key"]


def _docker_rules() -> list[dict[str, object]]:
    return [
        _rule(DOCKER_ALLOWED),
        _rule(["unshare", "clone"], args=[_arg(0, CLONE_NEWUSER, "SCMP_CMP_MASKED_EQ", 0)]),
        _rule(KEYRING, action="SCMP_ACT_ERRNO", errno_ret=ENOSYS),
    ]


def profile(docker: bool = False, x32: bool = True) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a sandbox (a fresh copy: callers may change it); with
    ``docker``, the docker profile's (Docker's default profile plus :data:`DOCKER_ALLOWED`,
    ``unshare`` and ``clone`` without CLONE_NEWUSER, and :data:`KEYRING` failing with ENOSYS).
    Without ``x32`` (the host kernel does not run that ABI), the filter leaves it out."""
    result = copy.deepcopy(_PROFILE)
    if x32:
        result["architectures"].append(X32)
    if docker:
        result["syscalls"] += _docker_rules()
    return result
