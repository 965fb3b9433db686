"""Debian images from a recipe (:mod:`sandbox.images.recipe`), with ``debootstrap``.

debootstrap runs as root in its own mount and pid namespaces (``unshare --kill-child``): the
/proc and /dev it mounts in the new tree, and every process it starts, vanish with it, so a
build killed at any moment leaves neither mounts nor processes, only a workspace to collect.
Downloaded packages are kept in ``<cache>/debs/<suite>-<arch>/`` and a finished tree in
``<cache>/images/<recipe digest>-<uid base>/``: building the same recipe again links that tree
(hard links, no copy) instead of running debootstrap.

A recipe's ``[[programs]]`` are compiled with the host's gcc (static, ``-Os``, stripped) after
debootstrap; one with a ``docker_image`` goes into the image as a ``docker save`` archive
(:mod:`sandbox.images.dockerarchive`) rather than as a file.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from sandbox.images import dockerarchive
from sandbox.images.progress import Progress
from sandbox.images.recipe import Program, Recipe
from sandbox.images.store import DEFAULT_PATH, Made, Maker, shift_ownership
from sandbox.images.workspace import Workspace
from sandbox.wire import tools

FALLBACK_MIRROR = "http://deb.debian.org/debian"
ONE_LINE = re.compile(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", re.MULTILINE)
APT_SOURCES = [Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")]


def apt_mirror(suite: str, sources: list[Path] = APT_SOURCES) -> str:
    """The Debian mirror this host's apt uses for ``suite`` (one-line or deb822 sources), or deb.debian.org."""
    files: list[Path] = []
    for source in sources:
        files += sorted(source.glob("*.list")) + sorted(source.glob("*.sources")) if source.is_dir() else [source]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri, suites in _entries(text):
            if suite in suites and "security" not in uri:
                return uri.rstrip("/")
    return FALLBACK_MIRROR


def _entries(text: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each ``deb`` entry in a sources file, either format."""
    found = [(m.group(1), [m.group(2)]) for m in ONE_LINE.finditer(text)]
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith((" ", "#")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []):
            found += [(uri, fields.get("suites", [])) for uri in fields.get("uris", [])]
    return found


def maker(
    recipe: Recipe, uid_base: int, cache: Path, progress: Progress, mirror: str = "", use_cache: bool = True
) -> Maker:
    """A maker (see :meth:`ImageStore.make`) of the image ``recipe`` describes."""

    def make(work: Path) -> Made:
        layer = work / "layers" / "0"
        layer.parent.mkdir()
        cached = cache / "images" / f"{recipe.digest().split(':')[1][:32]}-{uid_base}"
        if use_cache and (cached / "rootfs").is_dir():
            progress.note(f"recipe {recipe.name}: using the tree built earlier from the same recipe ({cached})")
            link_tree(cached / "rootfs", layer)
            source = (cached / "source").read_text().strip()
        else:
            mirror_used = mirror or recipe.mirror or apt_mirror(recipe.suite)
            source = build(recipe, layer, uid_base, cache, progress, mirror_used)
            save(layer, cached, source)
        return Made(
            [layer],
            list(recipe.cmd),
            list(recipe.env),
            recipe.workdir,
            tag=recipe.suite,
            digest=recipe.digest(),
            source=source,
            quotas=dict(recipe.quotas),
            profile=recipe.profile,
            ready=recipe.ready,
        )

    return make


def build(recipe: Recipe, rootfs: Path, uid_base: int, cache: Path, progress: Progress, mirror: str) -> str:
    """debootstrap ``recipe`` into ``rootfs``, customise it, shift it to ``uid_base``; returns its source line."""
    tools.require("debootstrap", "debootstrap")
    tools.require("unshare", "util-linux")
    if recipe.programs:
        tools.require("gcc", "gcc")
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    debs = cache / "debs" / f"{recipe.suite}-{arch}"
    debs.mkdir(parents=True, exist_ok=True)
    argv = [
        "unshare",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        'exec "$@" 3>&1',
        "sh",  # debootstrap's progress (fd 3) joins its output
        "debootstrap",
        "--debian-installer",
        f"--variant={recipe.variant}",
        f"--components={','.join(recipe.components)}",
        f"--cache-dir={debs}",
    ]
    if recipe.packages:
        argv.append(f"--include={','.join(recipe.packages)}")
    argv += [recipe.suite, str(rootfs), mirror]
    progress.note(
        f"recipe {recipe.name}: debootstrap {recipe.suite} from {mirror} with {len(recipe.packages)} extra packages"
    )
    try:
        tools.run(argv, DebootstrapProgress(progress).line)
    except tools.ToolError as exc:
        log = rootfs / "debootstrap" / "debootstrap.log"
        details = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise tools.ToolError(f"{exc}\n{details}".strip()) from None
    progress.update(1, 1, "customising")
    customise(recipe, rootfs, arch)
    progress.update(1, 1, "shifting ownership to the sandboxes' id range")
    shift_ownership(rootfs, uid_base)
    progress.done()
    return f"recipe {recipe.name}: debootstrap {recipe.suite} ({recipe.variant}) from {mirror}"


def customise(recipe: Recipe, rootfs: Path, arch: str) -> None:
    """Users, files, programs (for the Debian architecture ``arch``), pruned paths and an emptied
    apt cache, as the recipe says (before the shift)."""
    for user in recipe.users:
        argv = ["chroot", str(rootfs), "useradd", "--create-home", "--uid", str(user.uid), "--shell", user.shell]
        if user.groups:
            argv += ["--groups", ",".join(user.groups)]
        tools.run(argv + [user.name])
    for file in recipe.files:
        _write(rootfs, file.path, file.content.encode(), file.mode)
    for program in recipe.programs:
        binary = compile_program(program)
        if program.docker_image:
            layer = dockerarchive.layer_tar({program.path: (binary, program.mode)})
            saved = dockerarchive.archive(program.docker_image, layer, [program.path], [DEFAULT_PATH], arch)
            _write(rootfs, program.archive, saved, 0o644)
        else:
            _write(rootfs, program.path, binary, program.mode)
    for pattern in (
        *recipe.prune,
        "/var/cache/apt/*.bin",
        "/var/cache/apt/archives/*.deb",
        "/var/lib/apt/lists/*_Packages",
        "/var/lib/apt/lists/*_Release*",
        "/debootstrap",
    ):
        for match in glob.glob(str(rootfs) + pattern):
            path = Path(match)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def compile_program(program: Program) -> bytes:
    """``program`` compiled by the host's gcc: static, optimised for size, stripped."""
    with tempfile.TemporaryDirectory(prefix="playground-program-") as work:
        source, binary = Path(work) / Path(program.source).name, Path(work) / "program"
        source.write_text(program.code)
        tools.run(["gcc", "-static", "-Os", "-s", "-o", str(binary), str(source)])
        return binary.read_bytes()


def _write(rootfs: Path, path: str, content: bytes, mode: int) -> None:
    """Write ``content`` with ``mode`` at ``path`` of the image (its directories made, a file or link
    already there replaced, never followed)."""
    target = _inside(rootfs, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    target.write_bytes(content)
    target.chmod(mode)


def _inside(rootfs: Path, path: str) -> Path:
    """``path`` of the image under ``rootfs``; a symlinked directory on the way (it could lead out of
    the tree, e.g. ``/bin`` to ``usr/bin``) is refused: name the real directory in the recipe."""
    target = rootfs
    for part in Path(path).relative_to("/").parts[:-1]:
        target = target / part
        if target.is_symlink():
            raise tools.ToolError(
                f"cannot write {path} into the image: {target.relative_to(rootfs)} is a "
                "symlink; name the directory it points to instead."
            )
    return target / Path(path).name  # an existing file or link there is unlinked, never followed


def link_tree(source: Path, destination: Path) -> None:
    """A copy of ``source`` at ``destination`` made of hard links (read-only layers share their files)."""
    result = subprocess.run(["cp", "-a", "--link", str(source), str(destination)], capture_output=True, text=True)
    if result.returncode != 0:  # another filesystem: copy instead
        shutil.rmtree(destination, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(destination)], check=True)


def save(rootfs: Path, cached: Path, source: str) -> None:
    """Keep a linked copy of a freshly built tree in the cache (whole or not at all)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    with Workspace(cached.parent, cached.name) as work:
        link_tree(rootfs, work.path / "rootfs")
        (work.path / "source").write_text(source + "\n")
        try:
            work.commit(work.path, cached)
        except FileExistsError:
            pass  # saved meanwhile by a build of the same recipe


class DebootstrapProgress:
    """Turns debootstrap's ``--debian-installer`` lines (``P: now end NAME``, ``PF: text``) into a bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.now = self.end = 0.0
        self.args: list[str] = []

    def line(self, text: str) -> None:
        """Take one line of debootstrap's output; a ``PF:`` line (with its ``PA:`` arguments) moves the bar."""
        if text.startswith("P: "):
            words = text.split()
            if len(words) >= 3 and words[1].isdigit() and words[2].isdigit():
                self.now, self.end, self.args = float(words[1]), float(words[2]), []
        elif text.startswith("PA: "):
            self.args.append(text[4:])
        elif text.startswith("PF: "):
            what = text[4:]
            for arg in self.args:
                what = what.replace("%s", arg, 1)
            self.progress.update(self.now, self.end, what)
