"""Seeding the mirror's storage: the seminar's images built here, or a ``docker save`` archive brought in.

:class:`Seeder` takes seeds (:mod:`playground.registry.seeds`) in order. A seed whose every tag in
the storage already carries its digest (the ``playground.seed.digest`` label) is up to date and
left alone, and so is a tag holding an image without that label (imported: replaced only with
``--force``); the others get their tree (:mod:`playground.registry.building`, cached), their layer
(:mod:`playground.registry.layers`, cached beside the tree: over the base seed's tree when it has
one, so httpd and nginx share debian's layer), their configuration and manifest
(:mod:`playground.registry.manifests`), and are pushed through one writable registry
(:func:`playground.registry.distribution.writable_registry`) that lives as long as the pushes.

:func:`import_archives` copies each tag of ``docker save`` archives into the same kind of
registry with skopeo. :func:`listing` reads what the storage holds.

The cache (``<cache>/seeds/``)::

    trees/<name>-<digest>/rootfs     the seed's whole tree; source: what it was built from
    layers/<name>-<digest>.tar.gz    its layer (the difference over its base's tree); .json: digests, packages

A seed's new tree or layer replaces those of its earlier definitions (they are removed). Trees and
layers being made are ``.<name>-<pid>-...`` beside them, collected once that process is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from playground.registry import building, distribution, layers, manifests
from playground.registry.seeds import BY_NAME, HELLO_SOURCE, SEEDS, SUITE, Seed, chain

DIGEST_LABEL = "playground.seed.digest"
PACKAGES_LABEL = "playground.seed.packages"
ACCEPT_ANY = {"default": [{"type": "insecureAcceptAnything"}]}  # as sandbox.images.oci: signatures unchecked

Say = Callable[[str], None]


class SeedError(Exception):
    """Seeding or importing cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Built:
    """A seed ready to push: its layers (bottom first, each with its file), configuration, manifest."""

    seed: Seed
    digest: str
    layers: list[tuple[manifests.LayerRef, Path]]
    config: bytes
    manifest: bytes


class Seeder:
    """Seeds the storage ``root`` with trees and layers cached under ``cache``."""

    def __init__(self, root: Path, cache: Path, say: Say, mirror: str = "", force: bool = False) -> None:
        self.root, self.cache, self.say, self.force = root, cache / "seeds", say, force
        self.debs_cache = cache
        self._mirror = mirror
        self._digests: dict[str, str] = {}

    @property
    def mirror(self) -> str:
        if not self._mirror:
            self._mirror = building.apt_mirror()
        return self._mirror

    def digest(self, seed: Seed) -> str:
        """The seed's digest: its definition, its base's digest and what else decides its bytes."""
        if seed.name not in self._digests:
            base = self.digest(BY_NAME[seed.base]) if seed.base else ""
            inputs = ""
            if seed.kind == "program":
                versions = f"gcc={building.host_version('gcc')} libc6-dev={building.host_version('libc6-dev')}"
                inputs = HELLO_SOURCE.read_text() + versions
            elif seed.kind == "busybox":
                inputs = f"busybox-static={building.host_version('busybox-static')}"
            self._digests[seed.name] = seed.digest(base, inputs)
        return self._digests[seed.name]

    def tag_state(self, seed: Seed, tag: str) -> str:
        """What the storage holds at ``seed``'s ``tag``: "current" (the seed's digest), "stale" (an
        earlier definition's), "imported" (an image without a seed digest) or "missing"."""
        found = distribution.image_config(self.root, seed.reference, tag)
        if found is None:
            return "missing"
        labels = (found[1].get("config") or {}).get("Labels") or {}
        if DIGEST_LABEL not in labels:
            return "imported"
        return "current" if labels[DIGEST_LABEL] == self.digest(seed) else "stale"

    def tags_to_push(self, seed: Seed) -> list[str]:
        """The tags of ``seed`` to push: those not current, but never over an imported image
        unless forced (then all of them)."""
        if self.force:
            return list(seed.tags)
        states = {tag: self.tag_state(seed, tag) for tag in seed.tags}
        for tag, state in states.items():
            if state == "imported":
                self.say(f"{seed.name}: {tag} holds an imported image, left as it is (--force replaces it)")
        return [tag for tag, state in states.items() if state in ("missing", "stale")]

    def run(self, seeds: Iterable[Seed]) -> list[str]:
        """Seed ``seeds``; returns one line per seed: what was done."""
        todo, report, tags = [], [], {}
        for seed in seeds:
            tags[seed.name] = self.tags_to_push(seed)
            if tags[seed.name]:
                todo.append(seed)
            else:
                line = f"{seed.name}: up to date ({', '.join(seed.tags)}; {self.digest(seed)[:19]})"
                self.say(line)
                report.append(line)
        if not todo:
            return report
        needing_root = [seed.name for seed in todo if seed.kind == "debootstrap"]
        if needing_root and os.geteuid() != 0:
            raise SeedError(
                f"{', '.join(needing_root)} are built with debootstrap, which needs root: "
                "sudo .venv/bin/python manage.py registry seed (or seed only hello-world and busybox)."
            )
        built = []
        for seed in todo:
            started = time.monotonic()
            built.append(self.build(seed))
            self.say(f"{seed.name}: built in {time.monotonic() - started:.1f} s")
        with distribution.writable_registry(self.root) as address:
            pusher = distribution.Pusher(address)
            for image in built:
                started = time.monotonic()
                size = self.push(pusher, image, tags[image.seed.name])
                line = (
                    f"{image.seed.name}: pushed {image.seed.reference}:{','.join(tags[image.seed.name])} "
                    f"({len(image.layers)} layer(s), {size / 2**20:.1f} MiB compressed) "
                    f"in {time.monotonic() - started:.1f} s"
                )
                self.say(line)
                report.append(line)
        return report

    def build(self, seed: Seed) -> Built:
        """The layers, configuration and manifest of ``seed`` (its trees and layers from the cache when there)."""
        refs = [self.layer(each) for each in chain(seed)]
        _, source = self.tree(seed)
        labels = {
            "org.opencontainers.image.description": (
                f"{seed.description}. Built locally by Playground (manage.py registry seed) from Debian "
                "packages; not the Docker Hub image."
            ),
            "org.opencontainers.image.source": source,
            "org.opencontainers.image.base.name": f"docker.io/library/{seed.base}:{SUITE}" if seed.base else "scratch",
            DIGEST_LABEL: self.digest(seed),
            PACKAGES_LABEL: " ".join(f"{name}={version}" for name, version in refs[-1][1].items()),
        }
        settings = manifests.Settings(seed.cmd, seed.env, seed.workdir, seed.ports, seed.stop_signal, labels)
        layer_refs = [ref for ref, _, _ in refs]
        config = manifests.config(settings, layer_refs, building.architecture())
        return Built(
            seed,
            self.digest(seed),
            [(ref, path) for ref, _, path in refs],
            config,
            manifests.manifest(config, layer_refs),
        )

    def tree(self, seed: Seed) -> tuple[Path, str]:
        """The seed's tree (built now unless cached) and the line saying what it was built from."""
        cached = self.cache / "trees" / f"{seed.name}-{self.digest(seed)[7:23]}"
        if not (cached / "rootfs").is_dir():
            self.say(f"{seed.name}: building its tree ({seed.kind})")
            cached.parent.mkdir(parents=True, exist_ok=True)
            collect_leftovers(cached.parent)
            work = Path(tempfile.mkdtemp(prefix=f".{seed.name}-{os.getpid()}-", dir=cached.parent))
            try:
                source = self._build_tree(seed, work / "rootfs")
                (work / "source").write_text(source + "\n")
                try:
                    work.rename(cached)
                except OSError:
                    if not (cached / "rootfs").is_dir():
                        raise
                    # another seeding built the same tree meanwhile: theirs is kept, ours removed
                forget_others(cached.parent, seed.name, cached.name)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return cached / "rootfs", (cached / "source").read_text().strip()

    def _build_tree(self, seed: Seed, tree: Path) -> str:
        if seed.kind == "program":
            building.build_program(tree)
            return f"recipes/docker/hello.c (Playground), gcc {building.host_version('gcc')} -static -Os -s"
        if seed.kind == "busybox":
            tree.mkdir(mode=0o755)
            building.build_busybox(tree)
            return f"Debian busybox-static {building.host_version('busybox-static')} ({building.BUSYBOX} of this host)"
        building.build_debootstrap(seed, tree, self.debs_cache, self.mirror, self.say)
        return f"debootstrap --variant=minbase {SUITE} from {self.mirror}"

    def layer(self, seed: Seed) -> tuple[manifests.LayerRef, dict[str, str], Path]:
        """The seed's own layer (over its base's tree), its added packages and its file, cached."""
        stem = self.cache / "layers" / f"{seed.name}-{self.digest(seed)[7:23]}"
        blob, facts = stem.with_suffix(".tar.gz"), stem.with_suffix(".json")
        if not facts.exists():
            tree, _ = self.tree(seed)
            lower = self.tree(BY_NAME[seed.base])[0] if seed.base else None
            self.say(f"{seed.name}: writing its layer" + (f" over {seed.base}'s" if lower else ""))
            blob.parent.mkdir(parents=True, exist_ok=True)
            collect_leftovers(blob.parent)
            partial = Path(
                tempfile.mkstemp(prefix=f".{stem.name}-{os.getpid()}-", suffix=".partial", dir=blob.parent)[1]
            )
            try:
                written = layers.write_layer(tree, partial, lower)
                os.replace(partial, blob)  # the same bytes as another seeding's of the same layer, if any
            finally:
                partial.unlink(missing_ok=True)
            below = building.packages(lower) if lower else {}
            added = {k: v for k, v in building.packages(tree).items() if below.get(k) != v}
            if seed.kind == "busybox":
                added = {"busybox-static": building.host_version("busybox-static")}
            elif seed.kind == "program":
                added = {p: building.host_version(p) for p in ("gcc", "libc6-dev")}
            created_by = f"playground seed {seed.name}: {seed.kind}" + (
                f" {' '.join(seed.packages)}" if seed.packages else ""
            )
            written_facts = facts.with_name(f".{stem.name}-{os.getpid()}-facts")
            written_facts.write_text(
                json.dumps({"layer": written.__dict__, "packages": added, "created_by": created_by})
            )
            os.replace(written_facts, facts)  # last: the layer is cached once its facts are there
            forget_others(blob.parent, seed.name, stem.name)
        data = json.loads(facts.read_text())
        ref = manifests.LayerRef(
            data["layer"]["digest"], data["layer"]["size"], data["layer"]["diff_id"], data["created_by"]
        )
        return ref, data["packages"], blob

    def push(self, pusher: distribution.Pusher, image: Built, tags: list[str]) -> int:
        """Push ``image``'s blobs and its manifest under each of ``tags``; returns the bytes of its blobs."""
        repository = image.seed.reference
        bases = [each.reference for each in chain(image.seed)]
        for (ref, path), owner in zip(image.layers, bases, strict=True):
            pusher.push_blob(repository, ref.digest, path, mount_from=owner if owner != repository else "")
        pusher.push_blob(repository, manifests.digest(image.config), image.config)
        for tag in tags:
            pusher.push_manifest(repository, tag, image.manifest, manifests.MANIFEST_TYPE)
        return sum(ref.size for ref, _ in image.layers) + len(image.config)


def collect_leftovers(directory: Path) -> None:
    """Remove the trees and layers being made (``.<name>-<pid>-...``) by seedings that are gone (killed)."""
    for other in directory.glob(".*-*-*"):
        pid = other.name.split("-")[-2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            if other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
            else:
                other.unlink(missing_ok=True)


def forget_others(directory: Path, name: str, keep: str) -> None:
    """Remove what ``directory`` keeps of earlier definitions of the seed ``name`` (all but ``keep``)."""
    for other in directory.glob(f"{name}-*"):
        stem = other.name.split(".")[0]
        if stem == keep or stem.count("-") != keep.count("-"):
            continue
        if other.is_dir():
            shutil.rmtree(other)
        else:
            other.unlink()


def select(names: Iterable[str]) -> list[Seed]:
    """The seeds named (all of them if none), in the order of SEEDS; SeedError for an unknown name."""
    wanted = list(names)
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown:
        raise SeedError(f"no seed named {', '.join(unknown)}; the seeds are {', '.join(BY_NAME)}.")
    return [seed for seed in SEEDS if not wanted or seed.name in wanted]


# Importing docker save archives.


def hub_repository(repo_tag: str) -> tuple[str, str] | None:
    """(repository in the registry, tag) of a ``docker save`` RepoTag, or None for an image of
    another registry (a mirror is asked only for Docker Hub's): ``httpd:2.4`` -> ``library/httpd``."""
    name, _, tag = repo_tag.rpartition(":")
    if not name or "/" in tag:
        name, tag = repo_tag, "latest"
    parts = name.split("/")
    if parts[0] == "docker.io" or parts[0] == "index.docker.io":
        parts = parts[1:]
    elif len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        return None
    if len(parts) == 1:
        parts = ["library", *parts]
    return "/".join(parts), tag


def archive_tags(archive: Path) -> list[str]:
    """The RepoTags of a ``docker save`` archive (its manifest.json), in order."""
    import tarfile

    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            entries = json.loads(member.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0].rstrip(":")
        raise SeedError(
            f"{archive} is not a 'docker save' archive ({reason}); make one with docker save -o FILE NAME:TAG."
        ) from None
    return [tag for item in entries for tag in item.get("RepoTags") or []]


def import_archives(archives: Iterable[Path], root: Path, say: Say) -> list[str]:
    """Copy every tag of the ``docker save`` ``archives`` into the storage ``root`` with skopeo."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise SeedError("skopeo is not installed; apt-get install skopeo (or run 'make deps').")
    plan = []
    for archive in archives:
        if ":" in str(archive.resolve()):
            raise SeedError(f"{archive}: skopeo cannot name an archive whose path has a ':'; rename or move it.")
        tags = archive_tags(archive)
        if not tags:
            raise SeedError(f"{archive} holds no tagged image; save it by name: docker save -o FILE NAME:TAG.")
        for repo_tag in tags:
            target = hub_repository(repo_tag)
            if target is None:
                say(f"{archive}: skipped {repo_tag}: the mirror serves Docker Hub names only; docker tag it first.")
                continue
            plan.append((archive, repo_tag, *target))
    done = []
    with (
        tempfile.TemporaryDirectory(prefix="playground-import-") as work,
        distribution.writable_registry(root) as address,
    ):
        policy = Path(work) / "policy.json"
        policy.write_text(json.dumps(ACCEPT_ANY))
        for archive, repo_tag, repository, tag in plan:
            started = time.monotonic()
            argv = [skopeo, "--policy", str(policy), "copy", "--dest-tls-verify=false", "--format", "v2s2"]
            argv += [f"docker-archive:{archive.resolve()}:{repo_tag}", f"docker://{address}/{repository}:{tag}"]
            result = subprocess.run(argv, capture_output=True, text=True, cwd=work)
            if result.returncode != 0:
                raise SeedError(f"skopeo could not copy {repo_tag} of {archive}: {result.stderr.strip()[-600:]}")
            line = f"{archive.name}: imported {repo_tag} as {repository}:{tag} in {time.monotonic() - started:.1f} s"
            say(line)
            done.append(line)
    return done


@dataclass(frozen=True)
class Listed:
    """A repository of the storage: its tags, its size (compressed blobs of one of its images), its origin."""

    name: str
    tags: list[str]
    size: int
    origin: str  # "seeded" (built here, with its seed digest), "imported", or "" (no image)


def listing(root: Path) -> list[Listed]:
    """What the storage under ``root`` holds, a line per repository."""
    found = []
    for name, tags in distribution.repositories(root).items():
        size, origin = 0, ""
        for tag in tags:
            image = distribution.image_config(root, name, tag)
            if image is None:
                continue
            manifest, config = image
            size = max(size, sum(int(layer.get("size", 0)) for layer in manifest.get("layers", [])))
            labels = (config.get("config") or {}).get("Labels") or {}
            origin = "seeded" if DIGEST_LABEL in labels else "imported"
        found.append(Listed(name, tags, size, origin))
    return found
