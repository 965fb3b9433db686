"""The sessions' push registry: its policy (who may do what under which name) and its storage chores.

Sandboxes push through the registry front (:mod:`playground.registry.front`) on the same
``<gateway>:PLAYGROUND_REGISTRY_PORT`` as the mirror, under a name their /etc/hosts gives the
gateway (``registry``)::

    docker login registry:5050                       (user and password from the session's page)
    docker tag myweb:1.0 registry:5050/pg-3f9a2c1b4d5e/myweb:1.0
    docker push registry:5050/pg-3f9a2c1b4d5e/myweb:1.0

    dockerd --/v2/pg-<12 hex>/... + Basic--> front (gateway:5050) --> push registry (127.0.0.1:5052)
            <--401 UNAUTHORIZED, 403 DENIED--  checks the session      docker-registry, writable,
                                               and its quota           <data>/registry/push

- **Namespace**: ``pg-`` and the first 12 hex digits of the session's short id. Docker Hub's
  namespaces have no ``-``, so a ``pg-`` path never names an image the mirror serves: the path
  alone says which registry a request is for.
- **Credentials**: HTTP Basic, user the namespace, password an HMAC of the session's key hash with
  the site's secret key (:func:`password_for`): the session key itself is never shown or sent. A
  session that is not active has no valid password.
- **Policy** (:func:`decide`, pure): a request under a ``pg-`` namespace needs the credentials of
  that namespace's session; no credentials is ``401 UNAUTHORIZED`` with a Basic challenge (what
  ``docker login`` and ``docker push`` expect), another session's credentials ``403 DENIED``;
  ``_catalog`` and blob mounts from another namespace are refused.
- **Quota** (:func:`usage`): the sizes of the distinct blobs the namespace's repositories link,
  plus the bytes of its uploads in progress, read from the storage when a write starts.
- **Layers the mirror holds** (:func:`adopt`): docker asks (``HEAD``) whether the repository it
  pushes to has each layer before uploading it; a layer of an image pulled through the mirror
  (``FROM httpd``) is linked into the repository from the mirror's storage at that moment (a hard
  link, within the quota), so docker says "Layer already exists" instead of uploading it again.
  The mirror serves every sandbox anyway: this gives a session nothing it could not pull.
- **Chores**: :func:`remove_namespace` (a session ended) and :func:`collect` (blobs no repository
  links any more), run by the front between writes.

Imports only the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

from playground.registry.paths import blob_path, layer_link_path, storage

PUSH_NAME = "registry"  # the gateway's name in every sandbox's /etc/hosts
NAMESPACE_PREFIX = "pg-"
NAMESPACE_DIGITS = 12  # hex digits of the session's short id: 48 bits
NAMESPACE = re.compile(rf"{NAMESPACE_PREFIX}(?P<short>[0-9a-f]{{{NAMESPACE_DIGITS}}})")
REALM = "Playground session registry"
MANIFEST_LIMIT = 4 * 1024 * 1024  # bytes of a manifest (or any other write but an upload), as Distribution 3 has it
MANIFEST_TOO_BIG = "A manifest (or any request but a layer's upload) is at most 4 MiB here."
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
UPLOADS = re.compile(r"(?P<repo>.+)/blobs/uploads/(?P<uuid>[^/]*)")
BLOB = re.compile(r"(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})")
# A path the registry would clean or decode into another one (Distribution's router redirects
# to the cleaned path): refused, so a namespace is always the path's first component as sent.
UNCLEAN = re.compile(r"%|//|/\.\.?(/|$)")
UNCLEAN_PATH = "This path has '..', '.', '//' or a %-escape in it; name the repository plainly."


def namespace_of(short_id: str) -> str:
    """The push namespace (and registry user) of the session with ``short_id``."""
    return NAMESPACE_PREFIX + short_id[:NAMESPACE_DIGITS]


def password_for(secret_key: str, key_hash: str) -> str:
    """The registry password of the session whose key hashes to ``key_hash``: 24 hex digits of an
    HMAC with the site's secret key (neither the key nor its hash can be read back from it)."""
    mac = hmac.new(secret_key.encode(), b"playground.registry.push\0" + key_hash.encode(), hashlib.sha256)
    return mac.hexdigest()[:24]


def basic_credentials(headers: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The (user, password) of an ``Authorization: Basic`` header, None when there is none or it is garbled."""
    for name, value in headers:
        if name.lower() != "authorization":
            continue
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None
    return None


def push_namespace(path: str) -> str | None:
    """The ``pg-`` namespace a ``/v2/...`` path is under, None when it is not a push path."""
    if not path.startswith("/v2/"):
        return None
    first = path[len("/v2/") :].split("/", 1)[0]
    return first if first.startswith(NAMESPACE_PREFIX) else None


def error_answer(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    """An answer in Distribution's error format, which docker prints: ``{"errors": [{code, message}]}``."""
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        "Docker-Distribution-Api-Version: registry/2.0\r\n"
        f"{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


CHALLENGE = f'WWW-Authenticate: Basic realm="{REALM}"\r\n'


def unauthorized(message: str) -> bytes:
    return error_answer(401, "Unauthorized", "UNAUTHORIZED", message, CHALLENGE)


def denied(message: str) -> bytes:
    return error_answer(403, "Forbidden", "DENIED", message)


LOGIN = "Log in first: docker login {host} with the user and password shown on your session's page."


@dataclass(frozen=True)
class Caller:
    """Who sent a request: ``namespace`` is the one its credentials prove (None: no or wrong ones)."""

    namespace: str | None
    sent_credentials: bool = False
    why: str = ""  # why the credentials were refused, when they were


@dataclass(frozen=True)
class Decision:
    """Pass the request to the push registry (``write`` says what kind, for the quota), or answer."""

    kind: Literal["push", "refuse"]
    write: Literal["", "start", "data", "other"] = ""
    answer: bytes = b""


def decide(method: str, target: str, caller: Caller, host: str = PUSH_NAME) -> Decision:
    """What to do with a request for the push registry (``/v2/`` with credentials, ``/v2/_catalog``
    or a path under a ``pg-`` namespace); a pure function, the push registry's whole policy."""
    path, _, query = target.partition("?")
    if UNCLEAN.search(path):
        return Decision("refuse", answer=error_answer(400, "Bad Request", "NAME_INVALID", UNCLEAN_PATH))
    if caller.namespace is None:
        if caller.sent_credentials:
            return Decision("refuse", answer=unauthorized(caller.why or LOGIN.format(host=host)))
        return Decision("refuse", answer=unauthorized(LOGIN.format(host=host)))
    if path == "/v2/":
        return Decision("push") if method in ("GET", "HEAD") else Decision("refuse", answer=_unsupported(method))
    if path.startswith("/v2/_catalog"):
        listing = "Listing repositories is not offered here; your images are under "
        return Decision("refuse", answer=denied(listing + caller.namespace))
    namespace = push_namespace(path)
    if namespace is None:
        return Decision("refuse", answer=_unsupported(method))
    if namespace != caller.namespace:
        return Decision(
            "refuse",
            answer=denied(
                f"{namespace} belongs to another session; you are logged in as {caller.namespace} "
                f"and may push and pull only under {host}/{caller.namespace}/."
            ),
        )
    rest = path[len("/v2/") :]
    if method in ("GET", "HEAD"):
        return Decision("push")
    if method not in ("POST", "PUT", "PATCH", "DELETE"):
        return Decision("refuse", answer=_unsupported(method))
    uploads = UPLOADS.fullmatch(rest)
    if uploads is None:
        return Decision("push", write="other")  # a manifest's PUT, a DELETE
    if method == "POST":
        source = parse_qs(query).get("from", [""])[0]
        if source and push_namespace("/v2/" + source) != caller.namespace:
            return Decision(
                "refuse",
                answer=denied(f"Blobs can be mounted only from your own repositories (under {caller.namespace}/)."),
            )
        return Decision("push", write="start")
    if method in ("PATCH", "PUT"):
        return Decision("push", write="data")
    return Decision("push", write="other")  # DELETE of an upload


def _unsupported(method: str) -> bytes:
    return error_answer(
        405, "Method Not Allowed", "UNSUPPORTED", f"{method} is not possible on this path of the session registry."
    )


def human(size: float) -> str:
    """``size`` bytes as docker shows them (MB are 10^6 bytes)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def over_quota(used: int, adding: int, quota: int) -> str:
    """The sentence of a push refused for the quota (``adding``: the refused upload's bytes, 0 when
    the space is full before it starts)."""
    if adding:
        what = f"This push would take your session's registry space over its quota: {human(used)} used of "
        what += f"{human(quota)}, and this upload is {human(adding)} more."
    else:
        what = f"Your session's registry space is full: {human(used)} used of {human(quota)}."
    return what + (
        " Pushed images stay until the session ends: push a smaller image (docker image ls shows sizes), "
        "or start a new session."
    )


# -- the storage ----------------------------------------------------------------------------------


def usage(root: Path, namespace: str) -> int:
    """Bytes the namespace holds: its repositories' distinct linked layers (``_layers/*/link``) and
    the data of its uploads in progress (``_uploads/*/data``)."""
    top = storage(root) / "repositories" / namespace
    digests: set[str] = set()
    uploading = 0
    for dirpath, dirs, files in os.walk(top):
        parts = Path(dirpath).relative_to(top).parts
        if "_manifests" in parts:
            dirs.clear()
            continue
        if "_uploads" in parts and "data" in files:
            with _ignoring_gone():
                uploading += os.stat(os.path.join(dirpath, "data")).st_size
        elif "_layers" in parts and "link" in files:
            with _ignoring_gone():
                digests.add(Path(dirpath, "link").read_text().strip())
    linked = 0
    for digest in digests:
        with _ignoring_gone():
            linked += blob_path(root, digest).stat().st_size
    return linked + uploading


class _ignoring_gone:
    """Suppress the file-not-found of a file removed while the storage is read (a finished upload)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, (FileNotFoundError, NotADirectoryError))


def blob_asked(method: str, target: str) -> tuple[str, str] | None:
    """(repository, digest) of a ``HEAD`` of a blob in a repository, else None."""
    path = target.split("?", 1)[0]
    match = BLOB.fullmatch(path[len("/v2/") :]) if method == "HEAD" and path.startswith("/v2/") else None
    if match is None or not REPOSITORY.fullmatch(match["repo"]):
        return None
    return match["repo"], match["digest"]


def mirrored_size(mirror: Path, push_root: Path, repository: str, digest: str) -> int:
    """The size of the blob ``digest`` that :func:`adopt` would link into ``repository``: the
    mirror holds it and the repository does not link it yet; else 0."""
    if layer_link_path(push_root, repository, digest).exists():
        return 0
    try:
        return blob_path(mirror, digest).stat().st_size
    except OSError:
        return 0


def adopt(mirror: Path, push_root: Path, repository: str, digest: str) -> bool:
    """Link the blob ``digest`` the mirror's storage holds into ``repository`` of the push storage
    (a hard link of its data, a copy across filesystems, then the layer's link); whether it did."""
    source, target = blob_path(mirror, digest), blob_path(push_root, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        partial = target.with_name(f".adopting-{os.getpid()}")
        try:
            os.link(source, partial)
        except FileNotFoundError:
            return False
        except OSError:  # another filesystem
            shutil.copyfile(source, partial)
        os.replace(partial, target)
    link = layer_link_path(push_root, repository, digest)
    link.parent.mkdir(parents=True, exist_ok=True)
    partial_link = link.with_name(f".link-{os.getpid()}")
    partial_link.write_text(digest)
    os.replace(partial_link, link)
    return True


def namespaces(root: Path) -> list[str]:
    """The push namespaces the storage holds."""
    top = storage(root) / "repositories"
    if not top.is_dir():
        return []
    return sorted(p.name for p in top.iterdir() if NAMESPACE.fullmatch(p.name))


def remove_namespace(root: Path, namespace: str) -> bool:
    """Remove a namespace's repositories (tags, manifests' and layers' links, uploads): pulls of it
    fail at once; the blobs stay until :func:`collect`. Whether there was anything to remove."""
    if not NAMESPACE.fullmatch(namespace):
        raise ValueError(f"{namespace!r} is not a push namespace")
    top = storage(root) / "repositories" / namespace
    if not top.exists():
        return False
    trash = top.with_name(f".removing-{namespace}-{os.getpid()}")
    os.rename(top, trash)  # gone from Distribution's view in one step
    shutil.rmtree(trash, ignore_errors=True)
    return True


def remove_upload(root: Path, target: str) -> bool:
    """Remove what the upload at ``target`` (``/v2/<repository>/blobs/uploads/<uuid>?...``) holds so
    far (a refused upload's data would count against its namespace's quota); whether it was there."""
    uploads = UPLOADS.fullmatch(target.split("?", 1)[0][len("/v2/") :])
    if uploads is None or not REPOSITORY.fullmatch(uploads["repo"]) or not re.fullmatch(r"[0-9a-f-]+", uploads["uuid"]):
        return False
    directory = storage(root) / "repositories" / uploads["repo"] / "_uploads" / uploads["uuid"]
    if not directory.is_dir():
        return False
    shutil.rmtree(directory, ignore_errors=True)
    return True


def collect(root: Path) -> int:
    """Remove every blob no repository links (no ``link`` file under ``repositories`` names it);
    the bytes freed. Run it only while no write is in flight: an upload being completed has its
    blob in place a moment before its link."""
    v2 = storage(root)
    linked: set[str] = set()
    for dirpath, _dirs, files in os.walk(v2 / "repositories"):
        if "link" in files:
            with _ignoring_gone():
                linked.add(Path(dirpath, "link").read_text().strip())
    freed = 0
    blobs = v2 / "blobs"
    for algorithm_dir in blobs.iterdir() if blobs.is_dir() else []:
        for prefix in algorithm_dir.iterdir():
            for blob in prefix.iterdir():
                if f"{algorithm_dir.name}:{blob.name}" in linked:
                    continue
                with _ignoring_gone():
                    freed += (blob / "data").stat().st_size
                shutil.rmtree(blob, ignore_errors=True)
            with _ignoring_gone():
                prefix.rmdir() if not any(prefix.iterdir()) else None
    return freed
