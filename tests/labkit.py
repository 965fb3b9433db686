"""Labs for tests: put a lab straight into a stack's database (as its web user, through the ORM),
so the lab API, pages and checks can be tested with steps written for the test."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.integration.test_ports import fetch, port_json
from tests.stack import Stack
from tests.waiting import eventually

CREATE = """
import json, os
from django.db import transaction
from playground.labs.models import Lab, Step
spec = json.loads(os.environ["LAB_SPEC"])
steps = spec.pop("steps")
with transaction.atomic():
    Lab.objects.filter(slug=spec["slug"], language=spec["language"]).delete()
    lab = Lab.objects.create(**spec)
    for number, step in enumerate(steps, 1):
        Step.objects.create(lab=lab, number=number, **step)
"""


def step(
    title: str, html: str = "<p>Do it.</p>", check: str = "", solve: str = "", setup: str = "", foreground: str = ""
) -> dict[str, Any]:
    return {
        "title": title,
        "html": html,
        "check_script": check,
        "solve_script": solve,
        "setup_script": setup,
        "foreground": foreground,
    }


def load_folder(stack: Stack, folder: Path) -> None:
    """``manage.py labs load folder`` (the real loader: validation, markdown, sanitising)."""
    stack.manage("labs", "load", str(folder))


def add_lab(stack: Stack, slug: str, steps: list[dict[str, Any]], language: str = "en", **fields: Any) -> None:
    """Create (or replace) the lab ``slug`` in ``language`` with ``steps`` in the stack's database."""
    spec = {
        "slug": slug,
        "language": language,
        "title": fields.pop("title", f"Lab {slug}"),
        "summary": fields.pop("summary", "A lab written for a test."),
        "image": fields.pop("image", "busybox"),
        "tags": fields.pop("tags", ["test"]),
        "intro_html": fields.pop("intro_html", "<p>Intro.</p>"),
        "finish_html": fields.pop("finish_html", "<p>Well done.</p>"),
        **fields,
        "steps": steps,
    }
    stack.manage("shell", "-c", CREATE, LAB_SPEC=json.dumps(spec))


def sandbox_of(stack: Stack, session: dict[str, Any], node: str = "node1") -> str:
    """The agent's id of the session's ``node`` (a lab's scripts run in node1)."""
    query = (
        "from playground.sandboxes.models import Instance; "
        f"print(Instance.objects.get(session_id='{uuid.UUID(session['id'])}', name='{node}').sandbox_id)"
    )
    return stack.manage("shell", "-c", query).strip().splitlines()[-1]  # after shell's own lines


def through_port_link(stack: Stack, session: dict[str, Any], port: int, node: str = "node1") -> bytes:
    """The page the owner gets by a lab's port link to ``node``'s ``port``: the path form with the
    session's cookie, redirected to the link with the owner's pass."""
    eventually(lambda: port_json(stack, session, port, node)["listening"], f"{node}'s port {port} listening", 10)
    path = urlsplit(port_json(stack, session, port, node)["path_url"]).path
    cookie = f"pg_{session['id'].replace('-', '')}={session['key']}"
    status, headers, _ = fetch(stack, path, headers={"Cookie": cookie})
    assert status == 302, (node, port, status)
    status, _, body = fetch(stack, headers["location"])
    assert status == 200, (node, port, status, body)
    return body


async def docker_session(stack: Stack, **body: Any) -> tuple[dict[str, Any], str]:
    """A new session (``body`` as POST /api/sessions/ takes it) of the docker image or a docker lab,
    once its node1 runs and its engine answers; the session and node1's sandbox id."""
    from tests.dockerkit import log, run

    session = stack.start_session(**body)
    eventually(
        lambda: stack.shown(session)["instances"][0]["state"],
        "the session's sandbox running",
        60,
        0.2,
        until=lambda state: state == "running",
    )
    sandbox = sandbox_of(stack, session)
    engine = await run(stack, sandbox, "timeout 55 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'", 60)
    assert engine["code"] == 0, engine["output"] + await log(stack, sandbox)
    return session, sandbox
