"""The image store: read-only root filesystems shared by every sandbox as overlayfs lower layers.

Layout: ``<images_dir>/<name>/rootfs/`` holds the tree and ``<name>/image.json`` its metadata.
An image is built under a temporary name and renamed into place, so a half-built image is
never visible. Sandboxes never write to an image: each gets its own overlayfs upper layer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BUSYBOX_BINARY = Path("/bin/busybox")
DEFAULT_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TERM=xterm-256color",
    "HOME=/root",
    "LANG=C.UTF-8",
]


class ImageError(Exception):
    """An image cannot be found or built; the message says why and what to do."""


@dataclass(frozen=True)
class Image:
    """A ready image: where its tree is and how to start a shell in it."""

    name: str
    rootfs: Path
    cmd: list[str]
    env: list[str]
    workdir: str
    size: int

    def describe(self) -> dict[str, object]:
        """The JSON-able summary the API shows."""
        return {"name": self.name, "size": self.size}


class ImageStore:
    """Finds and builds images under one directory."""

    builders = ("busybox",)

    def __init__(self, root: Path, uid_base: int) -> None:
        self.root = root
        self.uid_base = uid_base

    def names(self) -> list[str]:
        """Images that can be started: ready ones plus those built on first use."""
        ready = {p.parent.name for p in self.root.glob("*/image.json")}
        return sorted(ready | set(self.builders))

    def get(self, name: str) -> Image:
        """A ready image, building it first if it is a known builder that has not run yet."""
        meta_path = self.root / name / "image.json"
        if not meta_path.exists():
            if name not in self.builders:
                raise ImageError(f"there is no image named {name!r}; available: {', '.join(self.names())}")
            self.build(name)
        meta = json.loads(meta_path.read_text())
        if meta.get("uid_base") != self.uid_base:
            if name not in self.builders:
                raise ImageError(f"image {name!r} was prepared for uid base {meta.get('uid_base')}, not "
                                 f"{self.uid_base} (PLAYGROUND_SANDBOX_UID_BASE); import it again.")
            self.build(name, replace=True)
            meta = json.loads(meta_path.read_text())
        return Image(
            name=name,
            rootfs=self.root / name / "rootfs",
            cmd=meta["cmd"],
            env=meta["env"],
            workdir=meta["workdir"],
            size=meta["size"],
        )

    def build(self, name: str, replace: bool = False) -> Path:
        """Build ``name`` into a temporary directory, then rename it into place.

        The tree is owned by the user namespace's range (root inside = ``uid_base`` on the host),
        shifted once here so that no sandbox start copies or chowns anything.
        """
        if name != "busybox":
            raise ImageError(f"no recipe builds {name!r}; known recipes: {', '.join(self.builders)}")
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / name
        tmp = self.root / f".build-{name}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            rootfs = tmp / "rootfs"
            _build_busybox_rootfs(rootfs)
            shift_ownership(rootfs, self.uid_base)
            meta = {
                "name": name,
                "source": f"Debian busybox-static {_package_version('busybox-static')}",
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "size": _tree_size(rootfs),
                "cmd": ["/bin/sh", "-l"],
                "env": DEFAULT_ENV,
                "workdir": "/root",
                "uid_base": self.uid_base,
            }
            (tmp / "image.json").write_text(json.dumps(meta, indent=2) + "\n")
            if replace and final.exists():
                old = self.root / f".build-old-{name}-{time.monotonic_ns()}"
                final.rename(old)  # sandboxes still running on it keep their mounts
                shutil.rmtree(old, ignore_errors=True)
            try:
                tmp.rename(final)
            except OSError:
                if not (final / "image.json").exists():  # not simply lost a race to another builder
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def remove_garbage(self) -> list[Path]:
        """Delete leftovers of interrupted builds; returns what was removed."""
        removed = []
        for path in self.root.glob(".build-*"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed


def _build_busybox_rootfs(rootfs: Path) -> None:
    if not BUSYBOX_BINARY.exists():
        raise ImageError(f"{BUSYBOX_BINARY} is missing; install Debian's busybox-static package "
                         "(apt-get install busybox-static) or run 'make deps'.")
    for rel, mode in [("bin", 0o755), ("sbin", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
                      ("etc", 0o755), ("root", 0o700), ("home", 0o755), ("tmp", 0o1777),
                      ("var/tmp", 0o1777), ("run", 0o755), ("proc", 0o555), ("sys", 0o555),
                      ("dev", 0o755)]:
        path = rootfs / rel
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    shutil.copy2(BUSYBOX_BINARY, rootfs / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX_BINARY), "--list-full"], check=True,
                             capture_output=True, text=True).stdout.split()
    for applet in applets:
        link = rootfs / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": "root:x:0:\nnogroup:x:65534:\n",
        "etc/shadow": "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
        "etc/shells": "/bin/sh\n/bin/ash\n",
        "etc/hostname": "playground\n",
        "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
        "etc/os-release": 'NAME="Playground busybox"\nID=busybox\nPRETTY_NAME="Playground busybox sandbox"\n',
        "etc/profile": (
            "# Playground sandbox login profile.\n"
            "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            "export PS1='\\[\\e[1;32m\\]\\u@\\h\\[\\e[0m\\]:\\[\\e[1;34m\\]\\w\\[\\e[0m\\]\\$ '\n"
            "alias ll='ls -la'\n"
        ),
    }
    for rel, text in files.items():
        (rootfs / rel).write_text(text)
    (rootfs / "etc/shadow").chmod(0o600)


def shift_ownership(root: Path, base: int) -> None:
    """Add ``base`` to the uid and gid of every file under ``root`` (symlinks themselves included)."""
    for dirpath, dirs, files in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in files + dirs)]:
            if name != dirpath and os.path.isdir(name) and not os.path.islink(name):
                continue  # directories are visited as dirpath
            st = os.lstat(name)
            os.lchown(name, st.st_uid + base, st.st_gid + base)
            if not os.path.islink(name):
                os.chmod(name, st.st_mode & 0o7777)  # chown clears setuid bits; keep the image's modes


def _package_version(package: str) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.images build busybox`` / ``list``."""
    import argparse

    from playground import config

    parser = argparse.ArgumentParser(prog="python -m sandbox.images", description=main.__doc__)
    parser.add_argument("action", choices=["build", "list"])
    parser.add_argument("name", nargs="?", default="busybox")
    args = parser.parse_args(argv)
    cfg = config.load()
    store = ImageStore(cfg.images_dir, cfg.uid_base)
    if args.action == "list":
        for name in store.names():
            print(name)
        return 0
    image = store.get(args.name)
    print(f"image {image.name} ready at {image.rootfs} ({image.size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
