"""Importing OCI images and ``docker save`` archives, from a file or a registry.

Two Debian-packaged tools do the format work: ``skopeo`` fetches the image from wherever it is
(a registry, a ``docker save`` archive, an OCI archive or layout) into a private OCI layout, and
``umoci`` unpacks that layout into one layer directory, applying each layer in order (OCI
whiteouts included) with safe path handling and the ownership shifted into the sandboxes' id
range as it writes (``--uid-map``/``--gid-map``). Then the image's ``Env``, ``WorkingDir``,
``Entrypoint``/``Cmd`` are read from its configuration, and everything else is deleted.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.images.progress import Progress
from sandbox.images.store import DEFAULT_PATH, ImageError, Made, Maker
from sandbox.images.workspace import remove_tree
from sandbox.wire import tools
from sandbox.wire.ids import USERNS_SIZE

TRANSPORTS = ("docker://", "docker-archive:", "oci-archive:", "oci:")
ACCEPT_ANY = {"default": [{"type": "insecureAcceptAnything"}]}  # signatures are not checked (docs/images.md)


def source_reference(source: str) -> str:
    """skopeo's name for ``source``: a transport reference as given, or a file or directory recognised."""
    if source.startswith(TRANSPORTS):
        return source
    path = Path(source)
    if path.is_dir() and (path / "oci-layout").exists():
        return f"oci:{path.resolve()}"
    if path.is_file():
        try:
            with tarfile.open(path) as archive:
                names = {n.lstrip("./") for n in archive.getnames()[:10000]}
        except (tarfile.TarError, OSError) as exc:
            raise ImageError(
                f"{source} is not a tar archive ({exc}); give a 'docker save' archive, an OCI "
                "archive or layout, or a registry reference such as docker://host/name:tag."
            ) from None
        if "manifest.json" in names:
            return f"docker-archive:{path.resolve()}"
        if "oci-layout" in names:
            return f"oci-archive:{path.resolve()}"
        raise ImageError(f"{source} has neither manifest.json ('docker save') nor oci-layout (OCI archive).")
    raise ImageError(
        f"{source} is neither a file, an OCI layout directory nor a reference starting with one of "
        f"{', '.join(TRANSPORTS)}; e.g. docker://127.0.0.1:5000/tools:latest."
    )


def tag_of(reference: str) -> str:
    """The tag a registry reference names (``latest`` when none, or for files)."""
    if not reference.startswith("docker://"):
        return "latest"
    name = reference.removeprefix("docker://").split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def maker(source: str, uid_base: int, progress: Progress, insecure: bool = False, profile: str = "") -> Maker:
    """A maker (see :meth:`ImageStore.make`) that imports ``source``.

    ``insecure`` lets a registry be reached over plain HTTP or with an unverified certificate
    (a registry on loopback, as the tests use). ``profile`` is the sandbox profile the image gets
    (one of store.PROFILES; an OCI image does not say, so the importer does).
    """
    reference = source_reference(source)

    def make(work: Path) -> Made:
        skopeo = tools.require("skopeo", "skopeo")
        umoci = tools.require("umoci", "umoci")
        (work / "tmp").mkdir()
        policy = work / "policy.json"
        policy.write_text(json.dumps(ACCEPT_ANY))
        layout = work / "oci"
        argv = [skopeo, "--policy", str(policy), "--tmpdir", str(work / "tmp"), "copy"]
        if insecure and reference.startswith("docker://"):
            argv.append("--src-tls-verify=false")
        progress.update(0, 3, f"fetching {reference}")
        tools.run(
            argv + [reference, f"oci:{layout}:image"],
            lambda line: progress.update(1, 3, line[:100]) if line.startswith("Copying") else None,
        )
        manifest, config = read_layout(layout)
        progress.update(2, 3, f"unpacking {len(manifest.get('layers', []))} layer(s)")
        ids = f"0:{uid_base}:{USERNS_SIZE}"
        tools.run(
            [umoci, "unpack", "--image", f"{layout}:image", "--uid-map", ids, "--gid-map", ids, str(work / "bundle")]
        )
        (work / "layers").mkdir()
        layer = work / "layers" / "0"
        (work / "bundle" / "rootfs").rename(layer)
        for leftover in ("bundle", "oci", "tmp"):
            remove_tree(work / leftover)
        policy.unlink()
        progress.update(3, 3, "unpacked")
        progress.done()
        made = settings(config, manifest)
        if made.user not in ("", "0", "root", "0:0", "root:root"):
            progress.note(f"note: the image's User {made.user!r} is not yet supported; its command runs as root")
        return Made(
            [layer],
            made.cmd,
            made.env,
            made.workdir,
            tag=tag_of(reference),
            digest=made.digest,
            source=f"imported from {reference} ({made.layers} layer(s), flattened)",
            profile=profile,
        )

    return make


def read_layout(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest (with its ``digest`` added) and the configuration of the one image in an OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    manifest = json.loads(_blob(layout, entry["digest"]))
    manifest["digest"] = entry["digest"]
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    return manifest, config


def _blob(layout: Path, digest: str) -> bytes:
    """The content of blob ``digest`` in the OCI layout ``layout``; ImageError for a digest that is not sha256."""
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or not hexdigest.isalnum():
        raise ImageError(f"the image refers to a blob {digest!r} this importer cannot read (only sha256).")
    return (layout / "blobs" / "sha256" / hexdigest).read_bytes()


@dataclass(frozen=True)
class Settings:
    """How to start the image, from its OCI configuration, the way ``docker run`` reads it."""

    cmd: list[str]
    env: list[str]
    workdir: str
    user: str
    digest: str  # of the manifest in the OCI layout skopeo wrote
    layers: int  # in the source image (they are flattened into one)


def settings(config: dict[str, Any], manifest: dict[str, Any]) -> Settings:
    """Entrypoint + Cmd (``/bin/sh`` when both are empty), Env over PATH/TERM/HOME defaults, WorkingDir."""
    runtime = config.get("config") or {}
    cmd = list(runtime.get("Entrypoint") or []) + list(runtime.get("Cmd") or [])
    env = {item.split("=", 1)[0]: item for item in [DEFAULT_PATH, "TERM=xterm-256color", "HOME=/root"]}
    env.update({item.split("=", 1)[0]: item for item in runtime.get("Env") or [] if "=" in item})
    return Settings(
        cmd or ["/bin/sh"],
        list(env.values()),
        runtime.get("WorkingDir") or "/",
        str(runtime.get("User") or ""),
        manifest["digest"],
        len(manifest.get("layers", [])),
    )
