"""Finding and removing a sandbox's cgroup directories, on cgroup v1, v2 and hybrid hosts.

runc creates and deletes the cgroups itself; the agent only needs to see them (to count
leftovers) and to remove the empty ones a crash left behind. Both are the same on v1 and
v2: a directory ``<mount>/<parent>/<sandbox id>`` in every mounted hierarchy, where the parent
(``PLAYGROUND_CGROUP_PARENT``) keeps each agent to its own sandboxes. It also reads what a
sandbox uses (:func:`usage`: memory and CPU time) from those directories.

Where the cpu controller has a cgroup v1 hierarchy of its own, a sandbox's terminal shells may sit
in a second cpu cgroup, ``<mount>/<parent>-terminals/<sandbox id>``, with the same CPU quota, while
their memory, pids and freezer cgroups stay the sandbox's (:func:`place_shell`); removing a sandbox's
cgroups removes that one too.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple


def cgroup_path(parent: str, sandbox_id: str) -> str:
    """Where runc puts the sandbox's cgroup (the bundle's ``cgroupsPath``), relative to each hierarchy's root."""
    return f"/{parent}/{sandbox_id}"


@functools.cache
def hierarchies(mountinfo: str = "/proc/self/mountinfo") -> tuple[Path, ...]:
    """Mount points of every cgroup (v1) and cgroup2 (v2) hierarchy on this host, read once:
    hierarchies are mounted at boot and stay, while the mount table grows with every sandbox (a
    lab script's cgroup, made on the agent's event loop, once parsed all of it)."""
    points = []
    with open(mountinfo) as info:
        for line in info:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                points.append(Path(fields[4]))
    return tuple(points)


def version(mountinfo: str = "/proc/self/mountinfo") -> str:
    """``v2`` on a unified host, ``v1`` on a legacy host, ``hybrid`` when both kinds are mounted."""
    kinds = set()
    with open(mountinfo) as info:
        for line in info:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                kinds.add(fstype)
    if kinds == {"cgroup2"}:
        return "v2"
    if kinds == {"cgroup"}:
        return "v1"
    return "hybrid" if kinds else "none"


def sandbox_dirs(parent: str, sandbox_id: str) -> list[Path]:
    """The cgroup directories of one sandbox that exist now."""
    rel = cgroup_path(parent, sandbox_id).lstrip("/")
    return [h / rel for h in hierarchies() if (h / rel).is_dir()]


def processes(dirs: list[Path], nested: bool = False) -> set[int]:
    """Pids in the cgroups ``dirs`` (with ``nested``, in every cgroup below them too); a cgroup
    that is gone, or unreadable, counts as empty."""
    found: set[int] = set()
    for top in dirs:
        for procs in top.rglob("cgroup.procs") if nested else [top / "cgroup.procs"]:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(pid) for pid in procs.read_text().split())
    return found


def all_sandbox_ids(parent: str) -> set[str]:
    """Ids of every sandbox that has a cgroup directory under ``parent`` (or its terminals' parent)
    in any hierarchy."""
    ids: set[str] = set()
    for h in hierarchies():
        for base in (h / parent, h / terminals_parent(parent)):
            if base.is_dir():
                ids.update(p.name for p in base.iterdir() if p.is_dir())
    return ids


def remove(parent: str, sandbox_id: str) -> list[Path]:
    """rmdir every cgroup directory of the sandbox (its terminals' cpu cgroup too), deepest first;
    returns those still present.

    A cgroup directory can only be removed once no process is in it, so callers kill the
    sandbox first. Only empty cgroups are removed; nothing here kills anything.
    """
    left = []
    for top in sandbox_dirs(parent, sandbox_id) + sandbox_dirs(terminals_parent(parent), sandbox_id):
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: len(t[0]), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    left.append(Path(dirpath))
    return left


def remove_parent(parent: str) -> None:
    """rmdir the (empty) parent cgroup, and the terminals' one beside it, in every hierarchy; busy or
    missing ones are left alone."""
    for h in hierarchies():
        for name in (parent, terminals_parent(parent)):
            with contextlib.suppress(OSError):
                os.rmdir(h / name)


def terminals_parent(parent: str) -> str:
    """The cpu cgroup, beside the sandboxes' ``parent``, that holds their terminal shells (see :func:`place_shell`)."""
    return f"{parent}-terminals"


def separate_cpu_hierarchy(mounts: dict[str, tuple[Path, bool]] | None = None) -> Path | None:
    """The cpu controller's hierarchy when it is a cgroup v1 one with no controller but cpu and
    cpuacct, so that a process can be in a cpu cgroup apart from its memory, pids and freezer ones;
    None on cgroup v2 (one cgroup for every controller), or where cpu shares a hierarchy with them."""
    return _accounting_only("cpu", controller_mounts() if mounts is None else mounts)


def accounting_hierarchy(mounts: dict[str, tuple[Path, bool]] | None = None) -> Path | None:
    """The cpuacct controller's hierarchy on the terms of :func:`separate_cpu_hierarchy` (the cpu one
    where both are mounted together, or one of its own), where a terminal shell's CPU time is counted
    apart from its sandbox's; None where there is no such hierarchy."""
    return _accounting_only("cpuacct", controller_mounts() if mounts is None else mounts)


def _accounting_only(controller: str, mounts: dict[str, tuple[Path, bool]]) -> Path | None:
    if controller not in mounts or mounts[controller][1]:
        return None
    hierarchy = mounts[controller][0]
    sharing = {name for name, (point, _) in mounts.items() if point == hierarchy}
    return hierarchy if sharing <= {"cpu", "cpuacct"} else None


def place_shell(
    parent: str, sandbox_id: str, pid: int, mounts: dict[str, tuple[Path, bool]] | None = None
) -> Path | None:
    """Move process ``pid``, a terminal shell of the sandbox, to the sandbox's cgroup under
    :func:`terminals_parent` in the cpu hierarchy only (:func:`separate_cpu_hierarchy`), made on first
    use with the sandbox's own CPU quota and period, and in the cpuacct one (:func:`accounting_hierarchy`)
    where that is another, so :func:`terminals_usage` counts its CPU time; what the shell starts from
    then on is there too. Its memory, pids and freezer cgroups stay the sandbox's, so every other limit
    holds as before. Returns the cpu directory, or None where the cpu hierarchy is not separate or the
    sandbox has no cpu cgroup (it is gone). OSError if the move fails (the process has exited: ESRCH)."""
    hierarchy = separate_cpu_hierarchy(mounts)
    if hierarchy is None or not (own := hierarchy / parent / sandbox_id).is_dir():
        return None
    directory = hierarchy / terminals_parent(parent) / sandbox_id
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        for knob in ("cpu.cfs_period_us", "cpu.cfs_quota_us"):  # the period first: a quota is checked against it
            (directory / knob).write_text((own / knob).read_text())
    accounting = accounting_hierarchy(mounts)
    if accounting not in (None, hierarchy) and (accounting / parent / sandbox_id).is_dir():
        counted = accounting / terminals_parent(parent) / sandbox_id
        counted.mkdir(parents=True, exist_ok=True)
        (counted / "cgroup.procs").write_text(str(pid))
    (directory / "cgroup.procs").write_text(str(pid))
    return directory


def terminals_usage(parent: str, hierarchy: Path) -> dict[str, int]:
    """The CPU time, in nanoseconds, each sandbox's cgroup under :func:`terminals_parent` has used so
    far, by sandbox id, from ``cpuacct.usage`` in ``hierarchy`` (:func:`accounting_hierarchy`); none
    before the first shell is placed. A read of one directory and a file per sandbox."""
    try:
        entries = [entry for entry in os.scandir(hierarchy / terminals_parent(parent)) if entry.is_dir()]
    except FileNotFoundError:
        return {}
    usages = {}
    for entry in entries:
        with contextlib.suppress(OSError, ValueError):  # a sandbox removed meanwhile
            usages[entry.name] = int((Path(entry.path) / "cpuacct.usage").read_text())
    return usages


EVICT_ROUNDS = 10  # passes over a terminals cgroup's processes, for those forked during the previous pass


def evict_shells(
    parent: str, sandbox_id: str, hierarchies: tuple[Path, ...], chosen: Callable[[int], bool]
) -> list[int]:
    """Move the processes of the sandbox's cgroup under :func:`terminals_parent` for which ``chosen``
    holds back to the sandbox's own cgroup, in each of ``hierarchies`` (the cpu one, then the cpuacct
    one if it is another); returns the pids moved. Each move waits for the kernel (RCU) and holds
    back forks and exits host-wide meanwhile, so callers choose few. Processes forked meanwhile are
    taken on the next of up to EVICT_ROUNDS passes. Nothing where either cgroup is gone (the sandbox
    was removed); a process that exits meanwhile is skipped."""
    sources = [hierarchy / terminals_parent(parent) / sandbox_id / "cgroup.procs" for hierarchy in hierarchies]
    targets = [hierarchy / parent / sandbox_id / "cgroup.procs" for hierarchy in hierarchies]
    moved: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for _ in range(EVICT_ROUNDS):
            pids = [pid for pid in map(int, sources[0].read_text().split()) if chosen(pid)]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    for target in targets:
                        target.write_text(str(pid))
                    moved.append(pid)
    return moved


# cgroup v1's cpu.shares for one unit of v2's cpu.weight (1024 and 100 are the defaults).
V1_SHARES_PER_WEIGHT = 1024 / 100


def set_parent_cpu_weight(parent: str, weight: int, mounts: dict[str, tuple[Path, bool]] | None = None) -> Path | None:
    """Give the sandboxes' parent cgroup the CPU weight ``weight`` (cgroup v2's scale: 1 to 10000, 100 is
    every cgroup's default), creating the parent if need be; returns the directory, or None on a host
    whose cpu controller is not mounted (or not enabled at the v2 root). On cgroup v1 the weight is
    written as ``cpu.shares`` (100 is 1024). The parent competes as one with each of the host's own
    processes (the web tier's, the agent's): below 100, those run first when the CPUs are busy, and the
    sandboxes share what is left among themselves, each weighing the same. OSError if it cannot be set.
    """
    mounts = controller_mounts() if mounts is None else mounts
    if "cpu" not in mounts:
        return None
    hierarchy, v2 = mounts["cpu"]
    directory = hierarchy / parent
    directory.mkdir(exist_ok=True)
    if v2:
        if not (directory / "cpu.weight").exists():  # cpu not enabled in the root's cgroup.subtree_control
            return None
        (directory / "cpu.weight").write_text(str(weight))
    else:
        (directory / "cpu.shares").write_text(str(max(2, round(weight * V1_SHARES_PER_WEIGHT))))
    return directory


# In a cgroup v2 directory, the files a delegatee must own besides the directory itself
# (Documentation/admin-guide/cgroup-v2.rst, "Delegation").
V2_DELEGATED_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")


def controller_hierarchies(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[Path, bool]]:
    """Mount points of the hierarchies that hold controllers, each with True for cgroup v2: every v1
    hierarchy but named ones (``name=systemd``, which holds none), and the v2 hierarchy only on a
    unified host (on a hybrid host it holds no controller)."""
    found = []
    unified = version(mountinfo) == "v2"
    with open(mountinfo) as info:
        for line in info:
            fields = line.split()
            fs_fields = fields[fields.index("-") + 1 :]
            fstype, options = fs_fields[0], fs_fields[2] if len(fs_fields) > 2 else ""
            if fstype == "cgroup" and not any(o.startswith("name=") for o in options.split(",")):
                found.append((Path(fields[4]), False))
            elif fstype == "cgroup2" and unified:
                found.append((Path(fields[4]), True))
    return found


def delegate(parent: str, sandbox_id: str, owner: int) -> list[Path]:
    """Give host uid/gid ``owner`` (the sandbox's root) its cgroup directories in every hierarchy
    with controllers, so that root inside can make cgroups below its own (an inner container
    engine does), but not their files: the limits the agent set stay root's. On cgroup v2 the
    files a delegatee needs to move processes and enable controllers below go too. Returns the
    directories given."""
    rel = cgroup_path(parent, sandbox_id).lstrip("/")
    given = []
    for hierarchy, v2 in controller_hierarchies():
        directory = hierarchy / rel
        if not directory.is_dir():
            continue
        os.chown(directory, owner, owner)
        for name in V2_DELEGATED_FILES if v2 else ():
            os.chown(directory / name, owner, owner)
        given.append(directory)
    return given


class Usage(NamedTuple):
    """What a sandbox uses now, from its cgroups: memory (as ``docker stats`` counts it: without the
    page cache it could give back at once, the inactive file pages), its memory limit (0 for
    none) and the CPU time of all its processes so far."""

    memory_bytes: int
    memory_limit_bytes: int
    cpu_seconds: float


@functools.cache
def controller_mounts(mountinfo: str = "/proc/self/mountinfo") -> dict[str, tuple[Path, bool]]:
    """Each controller's hierarchy (``memory``, ``cpuacct``, ``cpu``, ...) with True for cgroup v2,
    read once: hierarchies are mounted at boot and stay."""
    found: dict[str, tuple[Path, bool]] = {}
    unified = version(mountinfo) == "v2"
    with open(mountinfo) as info:
        for line in info:
            fields = line.split()
            fs_fields = fields[fields.index("-") + 1 :]
            point = Path(fields[4])
            if fs_fields[0] == "cgroup":  # v1: its controllers are among its super options
                found.update((name, (point, False)) for name in fs_fields[2].split(",") if name not in ("rw", "ro"))
            elif fs_fields[0] == "cgroup2" and unified:
                with contextlib.suppress(OSError):
                    found.update((name, (point, True)) for name in (point / "cgroup.controllers").read_text().split())
    return found


def usage(parent: str, sandbox_id: str, mounts: dict[str, tuple[Path, bool]] | None = None) -> Usage | None:
    """The sandbox's :class:`Usage` from its memory and CPU accounting controllers (``mounts``:
    :func:`controller_mounts`); None when its cgroups are gone or unreadable. A few small reads,
    no process started."""
    mounts = controller_mounts() if mounts is None else mounts
    rel = cgroup_path(parent, sandbox_id).lstrip("/")
    try:
        memory, v2 = mounts["memory"]
        directory = memory / rel
        if v2:
            used, limit = _number(directory / "memory.current"), _number(directory / "memory.max")
            inactive = _stat(directory / "memory.stat").get("inactive_file", 0)
            cpu = _stat(directory / "cpu.stat").get("usage_usec", 0) / 1e6
        else:
            used, limit = _number(directory / "memory.usage_in_bytes"), _number(directory / "memory.limit_in_bytes")
            inactive = _stat(directory / "memory.stat").get("total_inactive_file", 0)
            cpuacct, _ = mounts["cpuacct"]
            cpu = _number(cpuacct / rel / "cpuacct.usage") / 1e9
            shells = cpuacct / terminals_parent(parent) / sandbox_id / "cpuacct.usage"  # place_shell's
            cpu += _number(shells) / 1e9 if shells.exists() else 0.0
    except (OSError, KeyError, ValueError):
        return None
    return Usage(max(used - inactive, 0), 0 if limit >= V1_NO_LIMIT else limit, cpu)


V1_NO_LIMIT = 1 << 62  # cgroup v1 shows "no limit" as a number about 2**63 (rounded down to a page)


def _number(path: Path) -> int:
    text = path.read_text().strip()
    return V1_NO_LIMIT if text == "max" else int(text)


def _stat(path: Path) -> dict[str, int]:
    """A ``key value`` per line file (memory.stat, cpu.stat)."""
    pairs = (line.split() for line in path.read_text().splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2}
