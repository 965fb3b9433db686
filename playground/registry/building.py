"""Building a seed's tree (its whole file system) on this host, offline but for Debian's mirror.

- ``program``: ``recipes/docker/hello.c`` compiled by the host's gcc (``-static -Os -s``, as the
  docker recipe's ``[[programs]]``) into ``/hello``, the tree's only file.
- ``busybox``: the host's ``/bin/busybox`` (Debian's busybox-static) and a hard link per applet
  in ``/bin``, ``/etc/passwd`` and ``/etc/group`` for root and nobody, the usual directories.
- ``debootstrap``: ``debootstrap --variant=minbase --include=<packages> bookworm`` as root in
  its own mount and pid namespaces (``unshare --kill-child``: its /proc and /dev mounts and its
  processes go with it), downloading into the package cache the image builder uses
  (``<cache>/debs/<suite>-<arch>``, so packages it already has are not fetched again); then
  what an image should not carry is removed (apt's lists and caches, logs, ldconfig's aux-cache,
  /dev's nodes, the host's hostname and resolv.conf), /etc/shadow's days of the build made a
  fixed day (so a tree built again, another day, has the same bytes: tested by hand, the only
  other difference between two builds was ldconfig's aux-cache), the seed's copies, files and
  symlinks made.

A tree is kept under ``<cache>/seeds/trees/<name>-<digest>``, whole or absent (built beside it
and renamed), so reseeding after a change elsewhere, or the layer of another seed on it, costs
no new build. Trees belong to root with the image's own ids; they are never run on this host.

Imports only the standard library and its own package.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from playground.registry.seeds import HELLO_SOURCE, SUITE, Seed
from sandbox.wire import tools

FALLBACK_MIRROR = "http://deb.debian.org/debian"
SHADOW_DAY = "19518"  # /etc/shadow's "last changed" day of every account: 2023-06-10, bookworm's release
BUSYBOX = Path("/bin/busybox")
PRUNED = (
    "/var/lib/apt/lists/*",
    "/var/cache/apt/*.bin",
    "/var/cache/apt/archives/*.deb",
    "/var/cache/debconf/*-old",
    "/var/lib/dpkg/*-old",
    "/var/log/*.log",
    "/var/log/apt/*",
    "/var/cache/ldconfig/aux-cache",  # inode numbers and times of this build
    "/debootstrap",
    "/dev/*",
    "/etc/hostname",
    "/etc/resolv.conf",
)


class BuildError(Exception):
    """A seed cannot be built here; the message says why and what to do."""


def host_version(package: str) -> str:
    """The installed version of the host's Debian ``package``, or BuildError naming it."""
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout:
        raise BuildError(f"Debian's {package} is not installed here; apt-get install {package} (or run 'make deps').")
    return result.stdout


def architecture() -> str:
    """Debian's (and Docker's) name for this host's architecture: amd64, arm64."""
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def apt_mirror(suite: str = SUITE) -> str:
    """The Debian mirror this host's apt fetches ``suite`` from (``apt-get indextargets``), else deb.debian.org."""
    result = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(SITE) $(RELEASE)"], capture_output=True, text=True
    )
    for line in sorted(set(result.stdout.splitlines())):
        site, _, release = line.partition(" ")
        if release == suite and "security" not in site:
            return site.rstrip("/")
    return FALLBACK_MIRROR


def build_program(tree: Path) -> None:
    """hello-world's tree: ``/hello``, our static program."""
    if shutil.which("gcc") is None:
        raise BuildError("gcc is not installed; apt-get install gcc libc6-dev (or run 'make deps').")
    tree.mkdir()
    _run(["gcc", "-static", "-Os", "-s", "-o", str(tree / "hello"), str(HELLO_SOURCE)])
    (tree / "hello").chmod(0o755)


def build_busybox(tree: Path) -> None:
    """busybox's tree: the static binary, its applets as hard links in /bin, the usual directories."""
    if not BUSYBOX.exists():
        raise BuildError(f"{BUSYBOX} is missing; apt-get install busybox-static (or run 'make deps').")
    for rel, mode in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr/sbin", 0o755),
        ("var/spool/mail", 0o755),
        ("var/www", 0o755),
    ]:
        (tree / rel).mkdir(parents=True, exist_ok=True)
        (tree / rel).chmod(mode)
    shutil.copyfile(BUSYBOX, tree / "bin" / "busybox")
    (tree / "bin" / "busybox").chmod(0o755)
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in sorted(set(applets) - {"busybox"}):
        os.link(tree / "bin" / "busybox", tree / "bin" / applet)
    (tree / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
    )
    (tree / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")


def build_debootstrap(seed: Seed, tree: Path, cache: Path, mirror: str, say: Callable[[str], None]) -> None:
    """The tree of a ``debootstrap`` seed (see the module's docstring)."""
    if os.geteuid() != 0:
        raise BuildError(
            f"building {seed.name} runs debootstrap, which needs root: "
            "sudo .venv/bin/python manage.py registry seed (or seed only hello-world and busybox)."
        )
    for tool, package in (("debootstrap", "debootstrap"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not installed; apt-get install {package} (or run 'make deps').")
    debs = cache / "debs" / f"{SUITE}-{architecture()}"
    debs.mkdir(parents=True, exist_ok=True)
    argv = ["setpriv", "--pdeathsig", "KILL", "--"]  # gone with us, however we end
    argv += ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--"]
    argv += ["debootstrap", "--variant=minbase", f"--cache-dir={debs}"]
    if seed.packages:
        argv.append(f"--include={','.join(seed.packages)}")
    argv += [SUITE, str(tree), mirror]
    extra = f" with {', '.join(seed.packages)}" if seed.packages else ""
    say(f"  debootstrap {SUITE} (minbase){extra} from {mirror}, packages cached in {debs}")
    shown = _Throttled(say)
    try:
        _run(argv, shown)
    except BuildError as exc:
        missing = re.search(r"Couldn't find these debs: (.*)", str(exc))
        if missing:
            raise BuildError(
                f"debootstrap found no package {missing.group(1).strip()} in {SUITE} at {mirror}: "
                f"check the name in playground/registry/seeds.py ({seed.name}) or the mirror (--mirror)."
            ) from None
        raise
    finally:
        shown.done()
    finish(seed, tree)


def finish(seed: Seed, tree: Path) -> None:
    """What every debootstrap tree loses, then the seed's copies, files and symlinks."""
    for pattern in (*PRUNED, *seed.remove):
        for match in sorted(glob.glob(str(tree) + pattern)):
            found = Path(match)
            if found.is_dir() and not found.is_symlink():
                shutil.rmtree(found)
            else:
                found.unlink()
    fix_shadow_days(tree / "etc" / "shadow")
    for source, destination in seed.copies:
        target = _inside(tree, destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_inside(tree, source), target)
    for path, content, mode in seed.files:
        target = _inside(tree, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        target.write_text(content)
        target.chmod(mode)
    for path, link in seed.symlinks:
        target = _inside(tree, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        target.symlink_to(link)


def fix_shadow_days(shadow: Path) -> None:
    """Every account's "last changed" day (the third field, the build's day) set to SHADOW_DAY,
    so that a tree built another day has the same bytes."""
    if not shadow.exists():
        return
    lines = []
    for line in shadow.read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            fields[2] = SHADOW_DAY
        lines.append(":".join(fields))
    mode = shadow.stat().st_mode
    shadow.write_text("".join(f"{line}\n" for line in lines))
    shadow.chmod(mode)


def _inside(tree: Path, path: str) -> Path:
    """``path`` of the image under ``tree``; a symlink on the way is refused (it could lead out)."""
    target = tree
    for part in Path(path).relative_to("/").parts[:-1]:
        target = target / part
        if target.is_symlink():
            raise BuildError(f"{path}: {target.relative_to(tree)} is a symlink in the image; name the real directory.")
    return target / Path(path).name


def packages(tree: Path) -> dict[str, str]:
    """The Debian packages installed in ``tree`` and their versions (from its dpkg database)."""
    status = tree / "var" / "lib" / "dpkg" / "status"
    if not status.exists():
        return {}
    found: dict[str, str] = {}
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Status): (.*)$", stanza, re.MULTILINE))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found[fields["Package"]] = fields.get("Version", "")
    return dict(sorted(found.items()))


def _run(argv: list[str], on_line: Callable[[str], None] | None = None) -> None:
    """Run ``argv`` (sandbox.wire.tools.run: killed with this thread); BuildError with its last lines if it fails."""
    try:
        tools.run(argv, on_line)
    except tools.ToolError as exc:
        raise BuildError(str(exc)) from None


class _Throttled:
    """Shows debootstrap's ``I:`` lines: on a terminal each over the last (one line that changes),
    in a log one line every 5 s."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.last, self.tty = say, 0.0, sys.stdout.isatty()

    def __call__(self, line: str) -> None:
        if not line.startswith("I: "):
            return
        if self.tty:
            sys.stdout.write(f"\r\033[K  {line[3:][:100]}")
            sys.stdout.flush()
        elif time.monotonic() - self.last >= 5:
            self.say(f"  {line[3:]}")
            self.last = time.monotonic()

    def done(self) -> None:
        """Clear the changing line (on a terminal), so what follows starts on a line of its own."""
        if self.tty:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()
