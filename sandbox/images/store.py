"""The image store: read-only layer stacks shared by every sandbox as overlayfs lower layers.

Layout (see docs/images.md): ``<images_dir>/<name>/image.json`` holds an image's metadata
(name, tag, digest, size, created, source, default command, environment, working directory,
recommended quotas, sandbox profile) and ``<name>/layers/<n>/`` its layer directories, bottom first. Layers are
owned by the store's id range (root inside = ``uid_base``, mapped by no live sandbox), shifted once
when the image is made; a sandbox sees them through idmapped mounts onto its own range, and its
overlayfs's source is the image's :attr:`Image.mount_source` (:mod:`sandbox.runtime.layers`):
starting one copies and chowns nothing.

An image is made in a locked workspace (:mod:`sandbox.images.workspace`) and renamed into place, so
a half-made image is never visible and a killed build leaves only garbage that
:meth:`ImageStore.remove_garbage` (run by every reconciliation) deletes. The store belongs to
root; the web tier learns about images from the agent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.images import workspace
from sandbox.images.usage import mount_source, mounted_below
from sandbox.images.workspace import Workspace
from sandbox.wire.ids import USERNS_SIZE

FORMAT = 2  # of image.json; older images are rebuilt (busybox) or must be imported again
BUSYBOX_BINARY = Path("/bin/busybox")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_ENV = [DEFAULT_PATH, "TERM=xterm-256color", "HOME=/root", "LANG=C.UTF-8"]
# Sandbox profiles an image may ask for: "" is the default policy, "docker" the one a Docker engine
# inside needs (the runtime applies it; docs/security.md says what it relaxes).
PROFILES = ("", "docker")


class ImageError(Exception):
    """An image cannot be found, made or removed; the message says why and what to do."""


class ImageExists(ImageError):
    """An image of that name exists (or appeared while another was being made under it)."""


class ImageInUse(ImageError):
    """The image is mounted by running sandboxes (``users``: their runtime ids)."""

    def __init__(self, name: str, users: list[str]) -> None:
        super().__init__(
            f"image {name!r} is in use by sandbox(es) {', '.join(users)}; end the sessions using it, then try again."
        )
        self.users = users


@dataclass(frozen=True)
class Image:
    """A ready image: its layers and how to start a shell in it."""

    name: str
    directory: Path  # <images_dir>/<name>
    layers: list[Path]  # bottom first
    cmd: list[str]
    env: list[str]
    workdir: str
    size: int
    tag: str = "latest"
    digest: str = ""
    created: str = ""
    source: str = ""
    quotas: dict[str, object] = field(default_factory=dict)  # recommended, as Quotas fields
    profile: str = ""  # one of PROFILES
    # A file (absolute, no symbolic links on its way) the image's init makes once a sandbox has
    # finished starting, such as its Docker engine answering; "" when it is ready at its first prompt.
    ready: str = ""

    def lower_dirs(self) -> list[Path]:
        """The layers in overlayfs ``lowerdir`` order (top first)."""
        return list(reversed(self.layers))

    @property
    def mount_source(self) -> str:
        return mount_source(self.directory)

    def describe(self) -> dict[str, object]:
        """The JSON-able summary the agent, the API and the admin show."""
        return {
            "name": self.name,
            "tag": self.tag,
            "digest": self.digest,
            "size": self.size,
            "layers": len(self.layers),
            "created": self.created,
            "source": self.source,
            "cmd": self.cmd,
            "env": self.env,
            "workdir": self.workdir,
            "quotas": self.quotas,
            "profile": self.profile,
            "ready": self.ready,
        }


@dataclass
class Made:
    """What a maker (build or import) put in a workspace: its layers and the image's settings."""

    layers: list[Path]  # bottom first, inside the workspace
    cmd: list[str]
    env: list[str]
    workdir: str
    tag: str
    digest: str
    source: str
    quotas: dict[str, object] = field(default_factory=dict)
    profile: str = ""  # one of PROFILES
    ready: str = ""  # the file that says a sandbox has finished starting (recipe key ``ready``)


Maker = Callable[[Path], Made]  # fills a workspace directory, returns what it made


class ImageStore:
    """The images under one directory, for one id base."""

    builders = ("busybox",)  # cheap enough to build on first use

    def __init__(self, root: Path, uid_base: int, cache: Path | None = None) -> None:
        self.root = root
        self.uid_base = uid_base
        self.cache = cache  # PLAYGROUND_IMAGE_CACHE: only its garbage concerns the store

    def names(self) -> list[str]:
        """Images that can be started: ready ones plus those built on first use."""
        ready = {p.parent.name for p in self.root.glob("*/image.json")}
        return sorted(ready | set(self.builders))

    def load(self, name: str) -> Image:
        """A ready image as it is on disk; ImageError if it is missing or unusable."""
        if not NAME.match(name):
            raise ImageError(f"{name!r} is not an image name; use 1-63 lower-case letters, digits, '.', '_' or '-'.")
        directory = self.root / name
        try:
            meta = json.loads((directory / "image.json").read_text())
        except (OSError, ValueError):
            raise ImageError(f"there is no image named {name!r}; available: {', '.join(self.names())}") from None
        if meta.get("format") != FORMAT:
            raise ImageError(f"image {name!r} was made by an older Playground; build or import it again.")
        if meta.get("uid_base") != self.uid_base:
            raise ImageError(
                f"image {name!r} was prepared for uid base {meta.get('uid_base')}, not "
                f"{self.uid_base} (PLAYGROUND_SANDBOX_UID_BASE); build or import it again."
            )
        profile = meta.get("profile", "")  # absent in images made before profiles existed
        if profile not in PROFILES:
            raise ImageError(
                f"image {name!r} asks for the sandbox profile {profile!r}, which this Playground does not "
                "know; build or import it again."
            )
        return Image(
            name=name,
            directory=directory,
            layers=[directory / rel for rel in meta["layers"]],
            cmd=meta["cmd"],
            env=meta["env"],
            workdir=meta["workdir"],
            size=meta["size"],
            tag=meta.get("tag", "latest"),
            digest=meta.get("digest", ""),
            created=meta.get("created", ""),
            source=meta.get("source", ""),
            quotas=meta.get("quotas", {}),
            profile=profile,
            ready=meta.get("ready", ""),  # absent in images made before it existed
        )

    def get(self, name: str) -> Image:
        """A ready image, building it first if it is a builder that has not run (or ran for another id base)."""
        try:
            return self.load(name)
        except ImageError:
            if name not in self.builders:
                raise
        stale = (self.root / name).exists()  # made by an older Playground, or for another id base
        try:
            return self.make(name, busybox_maker(self.uid_base), replace=stale)
        except ImageExists:
            return self.load(name)  # another process built it meanwhile

    def make(self, name: str, maker: Maker, replace: bool = False) -> Image:
        """Run ``maker`` in a workspace and rename the result into place as image ``name``.

        With ``replace``, an existing image of that name is swapped out, unless it is in use.
        """
        if not NAME.match(name):
            raise ImageError(
                f"{name!r} is not a valid image name; use 1-63 lower-case letters, digits, '.', "
                "'_' or '-', starting with a letter or digit."
            )
        final = self.root / name
        if final.exists() and not replace:
            raise ImageExists(f"image {name!r} already exists; remove it first or build with --replace.")
        if final.exists() and (users := self.users(name)):
            raise ImageInUse(name, users)
        self.root.mkdir(parents=True, exist_ok=True)
        # Search-only for others; each image is root's alone (overlayfs reads lower layers with the
        # mounter's rights), so no host user reaches the setuid files of an image's range.
        os.chmod(self.root, 0o711)
        with Workspace(self.root, name) as work:
            made = maker(work.path)
            meta = {
                "format": FORMAT,
                "name": name,
                "tag": made.tag,
                "digest": made.digest,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "source": made.source,
                "size": sum(tree_size(layer) for layer in made.layers),
                "layers": [str(layer.relative_to(work.path)) for layer in made.layers],
                "cmd": made.cmd,
                "env": made.env,
                "workdir": made.workdir,
                "quotas": made.quotas,
                "profile": made.profile,
                "ready": made.ready,
                "uid_base": self.uid_base,
            }
            (work.path / "image.json").write_text(json.dumps(meta, indent=2) + "\n")
            if final.exists():
                self.remove(name)
            try:
                work.commit(work.path, final)
            except FileExistsError:
                raise ImageExists(
                    f"image {name!r} appeared while it was being made (another build?); "
                    "remove it first or build with --replace."
                ) from None
        return self.load(name)

    def users(self, name: str) -> list[str]:
        """Runtime ids of the sandboxes whose root filesystem is made of image ``name``."""
        return mounted_below(self.root / name)

    def remove(self, name: str) -> None:
        """Delete image ``name``; ImageInUse if a sandbox mounts it, ImageError if there is none.

        The image is renamed out of sight first, so no sandbox can start on it while its files go.
        """
        directory = self.root / name
        if not NAME.match(name) or not (directory / "image.json").exists():
            raise ImageError(f"there is no image named {name!r}; available: {', '.join(self.names())}")
        if users := self.users(name):
            raise ImageInUse(name, users)
        with Workspace(self.root, f"removing-{name}") as trash:
            os.rename(directory, trash.path / name)
            if users := mounted_below(directory):  # a sandbox started in between
                os.rename(trash.path / name, directory)
                raise ImageInUse(name, users)

    def remove_garbage(self) -> list[Path]:
        """Delete what interrupted builds, imports and removals left (in the store and the build
        cache); returns what was removed."""
        caches = [self.cache / "images"] if self.cache is not None else []
        return [path for root in [self.root, *caches] for path in workspace.collect(root)]

    def list(self) -> list[Image]:
        """Every ready image (unreadable ones are left out). Last in the class: after it, ``list`` in
        an annotation of this class would name this method."""
        images = []
        for name in sorted(p.parent.name for p in self.root.glob("*/image.json")):
            try:
                images.append(self.load(name))
            except ImageError:
                continue
        return images


def busybox_maker(uid_base: int) -> Maker:
    """The ``busybox`` image: Debian's static busybox and its applets, one layer."""

    def make(work: Path) -> Made:
        layer = work / "layers" / "0"
        build_busybox_rootfs(layer, uid_base)
        digest = "sha256:" + hashlib.sha256(BUSYBOX_BINARY.read_bytes()).hexdigest()  # of the binary it holds
        return Made(
            [layer],
            ["/bin/sh", "-l"],
            list(DEFAULT_ENV),
            "/root",
            tag="latest",
            digest=digest,
            source=f"Debian busybox-static {package_version('busybox-static')}",
        )

    return make


def build_busybox_rootfs(rootfs: Path, uid_base: int) -> None:
    """A busybox tree at ``rootfs``, owned by the sandboxes' id range starting at ``uid_base``."""
    if not BUSYBOX_BINARY.exists():
        raise ImageError(
            f"{BUSYBOX_BINARY} is missing; install Debian's busybox-static package "
            "(apt-get install busybox-static) or run 'make deps'."
        )
    for rel, mode in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("tmp", 0o1777),
        ("var/tmp", 0o1777),
        ("run", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ]:
        path = rootfs / rel
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    shutil.copy2(BUSYBOX_BINARY, rootfs / "bin/busybox")
    applets = subprocess.run(
        [str(BUSYBOX_BINARY), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
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
    shift_ownership(rootfs, uid_base)


def shift_ownership(root: Path, base: int) -> None:
    """Add ``base`` to the uid and gid of every file under ``root`` (symlinks themselves included).

    Never follows a symlink (``lchown``; modes are set on real files only), so a link in the
    tree cannot make it change anything outside. Ids must be below 65536, the range a sandbox maps.
    """
    shifted: set[tuple[int, int]] = set()  # hard-linked files are met once per name, shifted once
    for dirpath, dirs, files in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in files + dirs)]:
            if name != dirpath and os.path.isdir(name) and not os.path.islink(name):
                continue  # directories are visited as dirpath
            st = os.lstat(name)
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in shifted:
                    continue
                shifted.add((st.st_dev, st.st_ino))
            if st.st_uid >= USERNS_SIZE or st.st_gid >= USERNS_SIZE:
                raise ImageError(
                    f"{name} is owned by {st.st_uid}:{st.st_gid}, outside the {USERNS_SIZE} ids a "
                    f"sandbox maps; fix the image so every file has ids below {USERNS_SIZE}."
                )
            os.lchown(name, st.st_uid + base, st.st_gid + base)
            if not os.path.islink(name):
                os.chmod(name, st.st_mode & 0o7777)  # chown clears setuid bits; keep the image's modes


def package_version(package: str) -> str:
    """The installed version of a Debian package, or "unknown"."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def tree_size(root: Path) -> int:
    """Bytes of the regular files under ``root``, each inode counted once (hard links share one)."""
    total, seen = 0, set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_ino, st.st_dev) not in seen:
                seen.add((st.st_ino, st.st_dev))
                total += st.st_size
    return total
