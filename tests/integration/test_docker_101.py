"""The Docker 101 lab (labs/docker-101) played through the lab API in a session of the docker image,
in Korean: each step's check fails first with a hint in Korean alone, "skip" runs the step's solve,
and the check then passes, step after step against the sandbox's own engine. Step 3's check is
also shown nginx as apa02 on 8080, which must not pass; step 9's an image pushed but only
untagged, never pulled back; its solve pushes myweb:1.0 to the session registry and pulls it back.

Played on a stack whose mirror is seeded with the real images (about 50 s with the seeding and the
stack's start; alongside the rest), with no upstream: the solves pull httpd and nginx through the
mirror as a reader's commands do."""

from __future__ import annotations

import re
import shlex
import time
from typing import Any

import pytest

from playground import config
from playground.labs import loader
from tests.dockerkit import run
from tests.labkit import docker_session, load_folder, through_port_link
from tests.stack import Stack

LAB = config.REPO_DIR / "labs" / "docker-101"
# What the web tier exports before a lab's scripts (playground.labs.api.registry_env), from the session API.
REGISTRY_ENV = (
    ("PLAYGROUND_REGISTRY", "address"),
    ("PLAYGROUND_REGISTRY_USER", "user"),
    ("PLAYGROUND_REGISTRY_PASSWORD", "password"),
)
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def exports(session: dict[str, Any]) -> str:
    """The lines the web tier puts before a lab's scripts for the session registry, from the session API."""
    registry = session["registry"]
    return "".join(f"export {name}={shlex.quote(registry[key])}\n" for name, key in REGISTRY_ENV)


def auth(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Session {session['key']}"}


def post(stack: Stack, session: dict[str, Any], path: str, body: Any = None) -> dict[str, Any]:
    response = stack.request("POST", f"/api/sessions/{session['id']}/lab/{path}", body, headers=auth(session))
    assert response.status == 200, (path, response.status, response.body)
    return response.json()


def check(stack: Stack, session: dict[str, Any], number: int) -> dict[str, Any]:
    return post(stack, session, f"steps/{number}/check/")


def assert_korean_only(output: str, number: int) -> None:
    lines = output.strip().splitlines()
    assert lines and all(HANGUL.search(line) for line in lines), (number, output)


async def play(stack: Stack) -> None:
    """Play the lab in Korean in a new session of ``stack``."""
    started = time.monotonic()
    load_folder(stack, LAB)
    steps = loader.read_folder(LAB).steps
    session, sandbox = await docker_session(stack, lab="docker-101", language="ko")

    for number, step in enumerate(steps, 1):
        fresh = check(stack, session, number)
        assert not fresh["passed"], (number, step.name, fresh)
        assert_korean_only(fresh["output"], number)
        if number == 3:  # nginx as apa02 on 8080 is not Apache
            impostor = await run(stack, sandbox, "docker run --name apa02 -d -p 8080:80 nginx", 30)
            assert impostor["code"] == 0, impostor["output"]
            wrong = check(stack, session, 3)
            assert not wrong["passed"] and "nginx" in wrong["output"], wrong
            assert (await run(stack, sandbox, "docker rm -f apa02", 30))["code"] == 0
        if number == 7:  # httpd merely retagged, its own page on 8000: not the reader's image
            fake = "docker image inspect httpd >/dev/null 2>&1 || docker pull --quiet httpd && "  # step 6 removed it
            fake += "mkdir -p /root/myweb && echo mine > /root/myweb/index.html && docker tag httpd myweb:1.0 && "
            fake += "docker run --name web -d -p 8000:80 myweb:1.0"
            assert (await run(stack, sandbox, fake, 30))["code"] == 0
            wrong = check(stack, session, 7)
            assert not wrong["passed"] and "FROM httpd" in wrong["output"], wrong
            # As step 6 left it (no httpd): the solve's FROM httpd pulls it again.
            undo = "docker rm -f web && docker rmi myweb:1.0 && rm -r /root/myweb && docker rmi httpd"
            assert (await run(stack, sandbox, undo, 30))["code"] == 0
        if number == 9:  # pushed, but only myweb:1.0 untagged: the image never left the engine
            registry = session["registry"]
            image = f"{registry['address']}/{registry['user']}/myweb:1.0"
            kept = exports(session) + 'echo "$PLAYGROUND_REGISTRY_PASSWORD" | docker login "$PLAYGROUND_REGISTRY" '
            kept += f'-u "$PLAYGROUND_REGISTRY_USER" --password-stdin && docker tag myweb:1.0 {image} && '
            kept += f"docker push {image} && docker rm -f web && docker rmi myweb:1.0 && "
            kept += f"docker run -d -p 8000:80 --name web {image}"
            pushed = await run(stack, sandbox, kept, 60)
            assert pushed["code"] == 0, pushed["output"]
            # httpd's layers come from the mirror's storage (push.adopt): only the reader's own is uploaded.
            assert pushed["output"].count("Layer already exists") >= 2, pushed["output"]
            wrong = check(stack, session, 9)
            assert not wrong["passed"] and "docker pull" in wrong["output"], wrong
        if number < len(steps):  # skip runs the step's solve through the API, as "skip to step N" does
            skipped = post(stack, session, "skip/", {"to": number + 1})
            assert skipped["solved"] == [number], (number, skipped)
        else:  # the last one's solve, with what the web tier exports before a lab's scripts
            solved = await run(stack, sandbox, exports(session) + step.scripts["solve"], 60)
            assert solved["code"] == 0, (number, solved["output"])
        passed = check(stack, session, number)
        assert passed["passed"], (number, step.name, passed["output"])
        assert_korean_only(passed["output"], number)
        if number == 3:  # the step's port link opens Apache's page in the reader's browser
            assert b"It works!" in through_port_link(stack, session, 8080)
        if number in (7, 9):  # built, and pulled back from the session registry
            assert through_port_link(stack, session, 8000) == b"<h1>Hello from my first image!</h1>\n"
    assert post(stack, session, f"steps/{len(steps)}/check/")["lab"]["finished"]
    print(f"docker-101 played in {time.monotonic() - started:.1f} s")


@pytest.mark.alongside
async def test_the_docker_101_lab_plays_to_the_end_in_korean_every_check_failing_first_then_passing(
    seeded_stack: Stack,
) -> None:
    await play(seeded_stack)
