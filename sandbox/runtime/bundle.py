"""The OCI runtime configuration (``config.json``) of one sandbox.

A pure function of the sandbox's spec: no I/O, so it is easy to test and to read. The
runtime (runc) creates the namespaces, cgroups and mounts described here; the project does
not re-implement any of it. Fields follow the OCI runtime specification 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.host.cgroups import cgroup_path
from sandbox.host.lxcfs import VIEWS as LXCFS_VIEWS
from sandbox.runtime import seccomp
from sandbox.runtime.execs import NOFILE_ANNOTATION
from sandbox.wire.ids import USERNS_SIZE

# Docker's default capability set (moby/oci/caps/defaults.go) but CAP_NET_RAW, and CAP_NET_ADMIN.
# Without CAP_NET_RAW no raw or packet socket can be opened (forged frames and AF_PACKET kernel
# bugs such as CVE-2016-8655 and CVE-2020-14386); ping uses ICMP datagram sockets instead (see
# NETNS_SYSCTLS in sandbox/network/namespaces.py).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",  # not Docker's: over the sandbox's own network only (its netns is the sandbox's)
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

# Paths runc's default spec and Docker mask or make read-only inside the container.
MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/config.gz",  # the host kernel's build configuration
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/sys/kernel/vmcoreinfo",  # kernel symbol addresses for crash dumps (a KASLR leak)
]
READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]

# The docker profile (an image's ``profile = "docker"``): what a rootful container engine inside
# the sandbox needs, within the sandbox's own user namespace only. Docker's default capabilities
# all (its containers get them by default, and an inner runc cannot grant what the sandbox lacks),
# CAP_SYS_ADMIN for its mounts and namespaces, a writable cgroupfs (the sandbox's own cgroup
# directories are delegated to its root by the runtime), and a directory of the writable layer's
# tmpfs for the engine's data, since overlay2 cannot stack on the sandbox's overlay root. See
# docs/security.md, "The docker profile".
DOCKER_PROFILE = "docker"
DOCKER_EXTRA_CAPABILITIES = ["CAP_NET_RAW", "CAP_SYS_ADMIN"]
DOCKER_DATA = "/var/lib/docker"

CPU_PERIOD_US = 100_000

# Files and directories in the sandbox's /dev and /dev/shm (tmpfs ``nr_inodes``): without a bound
# a sandbox could fill its memory with empty inodes there. runc makes about twenty in /dev.
DEV_INODES = 1024
SHM_INODES = 4096
# Kernel memory one empty file of the writable layer costs (tmpfs and overlayfs inodes and
# dentries: about 2 KiB measured), with a margin: a layer holds at most memory / this files.
MEMORY_PER_INODE = 4096
# The memory a sandbox's storage (its writable layer's tmpfs) leaves to its processes: the larger
# of these two, whatever the disk quota (see SandboxSpec.storage_bytes). An idle Docker engine and
# a shell take about 40 MiB; an eighth of a 1 GiB sandbox is 128 MiB.
MIN_STORAGE_RESERVE = 64 * 1024**2
STORAGE_RESERVE_FRACTION = 8
MIN_STORAGE = 8 * 1024**2  # below this not even an image's /etc writes fit


@dataclass(frozen=True)
class SandboxSpec:
    """What the agent needs to start one sandbox."""

    sandbox_id: str
    hostname: str
    args: list[str]
    env: list[str]
    cwd: str
    memory_bytes: int
    cpus: float
    pids: int
    disk_bytes: int = 256 * 1024**2
    cgroup_parent: str = "playground"
    uid_base: int = 1_000_000_000  # host uid/gid of root inside; USERNS_SIZE ids from there
    ptys: int = 32  # pseudo-terminals in the sandbox's own devpts (the agent's terminals included)
    inodes: int = 65536  # files and directories in the writable layer (its tmpfs's nr_inodes)
    nofile: int = 4096  # open files per process (RLIMIT_NOFILE; set on runc, see limits_prefix)
    extra_files: dict[str, Path] = field(default_factory=dict)  # container path -> host file
    netns: Path | None = None  # join this network namespace (None: runc makes one with loopback only)
    userns: Path | None = None  # join this user namespace (None: runc makes one), mapped as ``uid_base`` says
    profile: str = ""  # "" or "docker" (the image's): what the sandbox may do beyond the default policy
    lxcfs: Path | None = None  # an answering lxcfs's mount point: its files over /proc and /sys (None: the host's)
    docker_data: Path | None = None  # the docker profile's /var/lib/docker: a directory of the writable layer
    x32: bool = True  # the host kernel runs x32 system calls: the seccomp filter covers them (sandbox.host.abis)
    hosts: tuple[tuple[str, str], ...] = ()  # (address, name) in /etc/hosts besides its own: the gateway's name

    @property
    def storage_bytes(self) -> int:
        """The size of the writable layer's tmpfs, which holds everything the sandbox writes (its
        files, and for the docker profile the inner engine's images, containers and volumes): the
        disk quota, but at most the memory limit less STORAGE_RESERVE of it. Its pages are charged to
        the sandbox's memory as they are written (there is no swap), so a disk as large as the
        memory would bring the sandbox's OOM killer, killing the shell and the engine, before the
        writer gets "No space left on device"."""
        reserve = max(MIN_STORAGE_RESERVE, self.memory_bytes // STORAGE_RESERVE_FRACTION)
        return max(MIN_STORAGE, min(self.disk_bytes, self.memory_bytes - reserve))

    @property
    def docker(self) -> bool:
        """Whether this sandbox runs a container engine inside (the docker profile)."""
        return self.profile == DOCKER_PROFILE

    @property
    def layer_inodes(self) -> int:
        """The files the writable layer may hold: ``inodes``, or fewer if their kernel memory
        would take more than about half of ``memory_bytes``, so that a sandbox full of empty
        files gets ENOSPC with memory to spare (to delete them with, say)."""
        return min(self.inodes, self.memory_bytes // MEMORY_PER_INODE)


def _mount(destination: str, type_: str, source: str, options: list[str]) -> dict[str, object]:
    return {"destination": destination, "type": type_, "source": source, "options": options}


def _devpts_options(spec: SandboxSpec) -> list[str]:
    """The sandbox's own devpts instance, of at most ``spec.ptys`` pseudo-terminals.

    Every pty counts against the host's ``kernel.pty.max``; without ``max=`` one sandbox could
    take them all and no other could open a terminal. The agent's terminals of the sandbox (its
    first shell and tabs, through runc's console socket) are opened here too, so count against it.
    """
    return ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", f"max={spec.ptys}"]


def _cgroupfs_options(spec: SandboxSpec) -> list[str]:
    """Read-only, but for the docker profile: its engine makes cgroups below the sandbox's own, whose
    directories (not their files, the limits) the runtime gives to the sandbox's root."""
    return ["nosuid", "noexec", "nodev", "relatime"] + ([] if spec.docker else ["ro"])


def _docker_data_mount(spec: SandboxSpec) -> dict[str, object]:
    """The inner engine's images, layers and volumes at /var/lib/docker: a directory of the writable
    layer's tmpfs (not of the overlay root: overlay2 cannot stack on overlay), so that they and the
    sandbox's own files share one budget (``storage_bytes``) and one file count. Executable (its
    containers' programs live there); no setuid and no devices from it, as the layer's tmpfs (the
    containers' /dev is the inner runtime's own tmpfs; overlay whiteouts are never opened)."""
    if spec.docker_data is None:
        raise ValueError(f"sandbox {spec.sandbox_id} has the docker profile but no directory for its engine's data")
    return _mount(DOCKER_DATA, "bind", str(spec.docker_data), ["rbind", "rprivate", "nosuid", "nodev"])


def _lxcfs_mounts(spec: SandboxSpec) -> list[dict[str, object]]:
    """lxcfs's files over the sandbox's /proc/meminfo, cpuinfo, stat, uptime... and
    /sys/devices/system/cpu, so that procps's ``free``, ``top``, ``uptime`` and the processor count
    of /proc and /sys show its own limits (see :mod:`sandbox.host.lxcfs`); none when ``spec.lxcfs`` is None."""
    if spec.lxcfs is None:
        return []
    options = ["bind", "ro", "nosuid", "nodev", "noexec"]
    return [_mount(f"/{view}", "bind", str(spec.lxcfs / view), options) for view in LXCFS_VIEWS]


def _namespaces(spec: SandboxSpec) -> list[dict[str, str]]:
    """New pid, ipc, uts, mount and cgroup namespaces; the user and network ones are joined by path
    when given (the sandbox's own, made ahead of time: see :mod:`sandbox.host.userns`)."""
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    for kind, path in (("user", spec.userns), ("network", spec.netns)):
        namespaces.append({"type": kind, "path": str(path)} if path else {"type": kind})
    return namespaces


def process_env(spec: SandboxSpec) -> list[str]:
    """The environment of the sandbox's processes (the first shell, tabs and lab scripts): the
    image's, its hostname, and OMP_NUM_THREADS = its CPU quota rounded up unless the image sets it.

    OMP_NUM_THREADS is how many threads OpenMP programs start, and GNU ``nproc`` (coreutils, in the
    debian and docker images) reports it: so ``nproc`` and ``make -j$(nproc)`` follow the quota, as
    lxcfs's /proc/cpuinfo does, where they would otherwise count the host's processors (the
    affinity mask, which the sandbox is not pinned to; docs/operations.md)."""
    env = [*spec.env, f"HOSTNAME={spec.hostname}"]
    if not any(item.startswith("OMP_NUM_THREADS=") for item in spec.env):
        env.append(f"OMP_NUM_THREADS={math.ceil(spec.cpus)}")
    return env


def build_config(spec: SandboxSpec) -> dict[str, Any]:
    """The ``config.json`` for ``spec``; the bundle's ``rootfs`` directory is its root."""
    mounts = [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount(
            "/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k", f"nr_inodes={DEV_INODES}"]
        ),
        _mount("/dev/pts", "devpts", "devpts", _devpts_options(spec)),
        _mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k", f"nr_inodes={SHM_INODES}"],
        ),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", _cgroupfs_options(spec)),
    ]
    mounts += _lxcfs_mounts(spec)
    if spec.docker:
        mounts.append(_docker_data_mount(spec))
    for destination, source in sorted(spec.extra_files.items()):
        mounts.append(_mount(destination, "bind", str(source), ["rbind", "rprivate", "nosuid", "nodev", "noexec"]))
    capabilities = DEFAULT_CAPABILITIES + (DOCKER_EXTRA_CAPABILITIES if spec.docker else [])
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": spec.args,
            "env": process_env(spec),
            "cwd": spec.cwd,
            "capabilities": {
                "bounding": capabilities,
                "effective": capabilities,
                "permitted": capabilities,
                "inheritable": [],
            },
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": spec.hostname,
        "annotations": {NOFILE_ANNOTATION: str(spec.nofile)},  # runc runs under these limits (execs.py)
        "mounts": mounts,
        "linux": {
            "namespaces": _namespaces(spec),
            "uidMappings": [{"containerID": 0, "hostID": spec.uid_base, "size": USERNS_SIZE}],
            "gidMappings": [{"containerID": 0, "hostID": spec.uid_base, "size": USERNS_SIZE}],
            "cgroupsPath": cgroup_path(spec.cgroup_parent, spec.sandbox_id),
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": spec.memory_bytes, "swap": spec.memory_bytes},
                "cpu": {"quota": max(1000, int(spec.cpus * CPU_PERIOD_US)), "period": CPU_PERIOD_US},
                "pids": {"limit": spec.pids},
            },
            "seccomp": seccomp.profile(docker=spec.docker, x32=spec.x32),
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }
