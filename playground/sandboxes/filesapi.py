"""Files in and out of a node: ``/api/sessions/<id>/instances/<name>/files/?path=<p>&terminal=<n>``.

- ``PUT`` with the file as the raw body writes it to ``path`` in the node: ``201 {"path":
  absolute path in the node, "size": n}``. A relative ``path`` (a dropped file's name) goes to
  the current directory of terminal ``n`` (what its shell's ``pwd`` says at its prompt), or to
  ``/root`` without ``terminal``. An existing file is replaced.
- ``GET`` answers the file's bytes as an attachment.
- ``GET /api/sessions/<id>/home.tar`` answers a tar of the node's ``/root`` (:func:`home_tar`).

Both are bounded by ``PLAYGROUND_UPLOAD_LIMIT``; the body is spooled to a temporary file (never
held whole in memory) and refused past the limit, from its Content-Length before it is read and
again when more comes than announced. The agent does the writing and reading inside the node's
own namespaces and id range (:mod:`sandbox.runtime.files`), so the node's disk quota counts an
upload and no path inside the node leads outside it. Errors are JSON ``{"error", "message"}``
(docs/files.md lists them); never a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import posixpath
import re
import tempfile
from typing import IO, Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from playground.sandboxes import access, agentclient
from playground.sandboxes.api import _authorized_session, error, method_not_allowed
from playground.sandboxes.models import Instance, Session
from sandbox.wire.client import AgentUnavailable
from sandbox.wire.protocol import MAX_TERMINAL, AgentError

log = logging.getLogger("playground.api")

MAX_PATH = 4096  # bytes, as the agent accepts
FILES_PATH = re.compile(r"^/api/sessions/[^/]+/instances/[^/]+/files/$")  # as in playground/urls.py
CHUNK = 1024 * 1024
HOME, HOME_NODE = "/root", "node1"  # what home.tar packs, and of which node unless ?node= names another

# The agent's refusals a visitor can provoke, as (status, code); the sentence is built per case.
STATUS = {
    "is_directory": 400,
    "bad_path": 400,
    "incomplete": 400,
    "no_such_file": 404,
    "unknown_terminal": 404,
    "too_large": 413,
    "busy": 429,
    "host_busy": 503,
    "disk_full": 507,
    "timeout": 503,
    "not_supported": 501,
}
# Seconds a refusal tells the client to wait before trying again (Retry-After), where it says one:
# host_busy, after the transfer already waited its turn on the host for 30 s.
RETRY_AFTER = {"host_busy": 5}


def size_in_words(size: int) -> str:
    """``size`` bytes as a person says it: "512 bytes", "12 KB", "50 MB", "1.5 GB" (binary units)."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


class UploadLimit:
    """ASGI wrapper of the web tier's HTTP application: a PUT to a files path whose Content-Length
    is over ``PLAYGROUND_UPLOAD_LIMIT`` is answered ``413 too_large`` at once, before Django reads
    (and spools) its body. The view checks again (a body without Content-Length, a longer one)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        announced = _announced_upload(scope)
        limit = settings.PLAYGROUND.upload_limit
        if announced is None or announced <= limit:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"error": "too_large", "message": over_limit_sentence(announced, limit), "limit": limit}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": [*headers, (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _announced_upload(scope: dict[str, Any]) -> int | None:
    """The Content-Length of an HTTP PUT to a files path, else None."""
    if scope.get("type") != "http" or scope.get("method") != "PUT" or not FILES_PATH.match(scope.get("path", "")):
        return None
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def over_limit_sentence(size: int, limit: int) -> str:
    """The refusal of a file of ``size`` bytes, both sizes in words."""
    return f"The file is {size_in_words(size)}; uploads are limited to {size_in_words(limit)}."


@csrf_exempt
def files(request: HttpRequest, session_id: str, name: str) -> HttpResponse:
    """PUT: upload the body to ``path`` (201); GET: download ``path``."""
    if request.method not in ("GET", "PUT"):
        return method_not_allowed(request, ["GET", "PUT"])
    instance, problem = _running_instance(request, session_id, name)
    if problem:
        return problem
    assert instance is not None
    path, terminal, problem = _target(request)
    if problem:
        return problem
    if request.method == "GET":
        return _download(instance, path, terminal)
    return _upload(request, instance, path, terminal)


def _upload(request: HttpRequest, instance: Instance, path: str, terminal: int | None) -> HttpResponse:
    limit = settings.PLAYGROUND.upload_limit
    announced = _content_length(request)
    if announced is not None and announced > limit:
        return _too_large(over_limit_sentence(announced, limit))
    with tempfile.TemporaryFile(prefix="pg-upload-") as body:
        try:
            size = _spool(request, body, limit)
        except OSError as exc:
            log.error("could not spool an upload to %s: %s", instance, exc)
            sentence = "The web server has no room to take the file right now; try again later."
            return error(503, "no_room", sentence, retry_after=30)
        if size > limit:
            return _too_large(f"The file is larger than {size_in_words(limit)}, the most an upload may be.")
        if size == 0:
            sentence = "No file came: send the file's bytes as the request's body (an empty file cannot be uploaded)."
            return error(400, "no_file", sentence)
        body.seek(0)
        try:
            agent = agentclient.of_instance(instance)
            reply = asyncio.run(agent.put_file(instance.sandbox_id, path, body.fileno(), size, terminal))
        except AgentError as exc:
            return _refused(exc, instance, path, uploading=True)
    log.info("%d bytes uploaded to %s of %s", size, reply["path"], instance)
    return JsonResponse({"path": reply["path"], "size": reply["size"]}, status=201)


def _download(instance: Instance, path: str, terminal: int | None) -> HttpResponse:
    try:
        reply, fd = asyncio.run(
            agentclient.of_instance(instance).get_file(
                instance.sandbox_id, path, settings.PLAYGROUND.upload_limit, terminal
            )
        )
    except AgentError as exc:
        return _refused(exc, instance, path, uploading=False)
    filename = posixpath.basename(reply["path"]) or "download"
    response = FileResponse(os.fdopen(fd, "rb"), as_attachment=True, filename=filename)
    response["Content-Type"] = "application/octet-stream"
    return response


def home_tar(request: HttpRequest, session_id: str) -> HttpResponse:
    """GET ``/api/sessions/<id>/home.tar[?node=<name>]``: ``/root`` of the node (``node1`` unless
    named) and all below it as a tar attachment, at most ``PLAYGROUND_UPLOAD_LIMIT`` bytes (else
    413 ``too_large`` naming the limit). The agent packs it inside the node (its own ``tar``:
    symlinks, modes and owners as the node sees them) into a memfd that is streamed from."""
    if request.method != "GET":
        return method_not_allowed(request, ["GET"])
    node = request.GET.get("node") or HOME_NODE
    instance, problem = _running_instance(request, session_id, node)
    if problem:
        return problem
    assert instance is not None
    limit = settings.PLAYGROUND.upload_limit
    try:
        reply, fd = asyncio.run(agentclient.of_instance(instance).get_tree(instance.sandbox_id, HOME, limit))
    except AgentError as exc:
        if exc.code == "too_large":
            words = size_in_words(limit)
            sentence = f"Your home directory ({HOME} of {node}) packs into more than {words}, the most a download "
            sentence += "may be; delete what you do not need, or download files one by one."
            return error(413, "home_too_large", sentence, limit=limit, limit_in_words=words)
        return _refused(exc, instance, HOME, uploading=False)
    log.info("home directory of %s downloaded: %d bytes", instance, reply["size"])
    response = FileResponse(os.fdopen(fd, "rb"), as_attachment=True, filename=f"{node}-home.tar")
    response["Content-Type"] = "application/x-tar"
    return response


def _spool(request: HttpRequest, body: IO[bytes], limit: int) -> int:
    """Copy the request's body to ``body``, stopping past ``limit`` bytes; the bytes copied."""
    size = 0
    while size <= limit and (chunk := request.read(CHUNK)):
        body.write(chunk)
        size += len(chunk)
    return size


def _content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _too_large(message: str) -> JsonResponse:
    return error(413, "too_large", message, limit=settings.PLAYGROUND.upload_limit)


def _target(request: HttpRequest) -> tuple[str, int | None, JsonResponse | None]:
    """The query's ``path`` and optional ``terminal``, or a 400."""
    path = request.GET.get("path", "")
    if not path or "\0" in path or "\n" in path or len(path.encode()) > MAX_PATH:
        sentence = f"Give the file's path in the node as ?path=... (at most {MAX_PATH} bytes, on one line)."
        return "", None, error(400, "bad_path", sentence)
    raw = request.GET.get("terminal")
    if raw is None or raw == "":
        return path, None, None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_TERMINAL:
        return "", None, error(400, "bad_terminal", f"The terminal {raw!r} is not a terminal number (0 is the first).")
    return path, int(raw), None


def _running_instance(request: HttpRequest, session_id: str, name: str) -> tuple[Instance | None, JsonResponse | None]:
    """The running instance ``name`` of an active session the request holds the key of, or a 4xx."""
    session, problem = _authorized_session(request, session_id)
    if problem:
        return None, problem
    assert session is not None
    if request.method != "GET" and access.cross_site(request):
        return None, error(403, "cross_site", "Files can only be uploaded from this site's own pages.")
    if session.state != Session.State.ACTIVE:  # before its nodes, which ending destroyed
        return None, error(409, "session_ended", "This session has ended, and its files with it; start a new one.")
    instance = session.instances.filter(name=name).exclude(state=Instance.State.DESTROYED).first()
    if instance is None:
        return None, error(404, "unknown_instance", f"This session has no instance named {name!r}.")
    if instance.state != Instance.State.RUNNING:
        return None, error(
            409, "not_running", f"The node {name} is not running yet; try again in a moment.", retry_after=2
        )
    return instance, None


def _refused(exc: AgentError, instance: Instance, path: str, uploading: bool) -> JsonResponse:
    """The agent's refusal (or absence) as the visitor's error, with a sentence."""
    if isinstance(exc, AgentUnavailable):
        return error(
            503, "agent_unavailable", "The sandbox host is not available right now; try again shortly.", retry_after=10
        )
    node, limit = instance.name, size_in_words(settings.PLAYGROUND.upload_limit)
    sentences = {
        "is_directory": f"The path {path} is a directory in {node}; "
        + ("name the file too, e.g. a path ending in its name." if uploading else "only files can be downloaded."),
        "no_such_file": f"There is no directory for {path} in {node}; create it first or choose another path."
        if uploading
        else f"There is no file {path} in {node}.",
        "bad_path": f"The path {path} cannot be {'written' if uploading else 'read'} in {node}: "
        + exc.message.rstrip(".")
        + ".",
        "too_large": f"The file {path} is larger than {limit}, the most a download may be.",
        "disk_full": f"The disk of {node} is full: the file was not written (nothing of it is left). "
        "Free some space in the node and try again.",
        "incomplete": "The upload ended before the whole file arrived; nothing was written. Try again.",
        "unknown_terminal": f"There is no such terminal in {node}; it may have been closed.",
        "busy": f"The node {node} is already moving other files; try again when they are done.",
        "host_busy": "The sandbox host is moving many files for other sessions right now; try again in a few seconds.",
        "timeout": f"Moving {path} took too long and was stopped; try again.",
        "not_supported": f"Files cannot be copied to or from {node}: it runs on a sandbox host whose agent is "
        "older than this site and cannot carry them over the network. Use its terminal instead (e.g. cat, or a "
        "heredoc), and ask the operator to upgrade that host.",
    }
    if exc.code in sentences:
        retry_after = RETRY_AFTER.get(exc.code)
        return error(STATUS[exc.code], exc.code, sentences[exc.code], retry_after, path=path, node=node)
    if exc.code == "unknown_sandbox":
        return error(409, "not_running", f"The node {node} is not running; try again in a moment.", retry_after=2)
    log.error("agent refused a file of %s: %s: %s", instance, exc.code, exc.message)
    return error(503, "agent_error", "The sandbox host could not move the file; try again shortly.", retry_after=10)
