"""The Docker seminar in a real headless Chromium, on a Playground whose default image is ``docker``
(as ``make run`` serves it): a visitor clicks Start, runs ``docker run hello-world``, then builds a
web server image from busybox, publishes it on port 8080, fetches its page, lists, stops and
removes it, every command typed into the browser's terminal."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re

import pytest
from playwright.sync_api import Page, ViewportSize

from tests.dockerkit import agent
from tests.e2e.browsing import ARTIFACTS, run, screen, start_from_landing, wait_for_line
from tests.stack import Stack
from tests.waiting import eventually

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = [pytest.mark.e2e, pytest.mark.alongside]

# Wide enough that `docker ps` lines (about 140 columns) are not wrapped on the terminal's screen.
WIDE: ViewportSize = {"width": 1600, "height": 900}
PROMPT = r"(root@node1:\S*#|>)( .*)?"  # the shell's prompt, or its continuation inside a here-document
DOCKER_WAIT = 90.0  # seconds for a docker command on a loaded 2-core test machine
DOCKERFILE = [
    "cat > Dockerfile <<'END'",
    "FROM busybox",
    "RUN mkdir /www && echo hello-from-apa02 > /www/index.html",
    'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]',
    "END",
]


def pooled_docker_sandboxes(stack: Stack) -> int:
    """How many docker sandboxes the stack's warm pool holds ready (asked from a thread of its own:
    Playwright's sync API runs an event loop in this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        listing = thread.submit(asyncio.run, agent(stack).request("list")).result()
    return int(listing["warm"].get("docker", 0))


def count(page: Page, pattern: str) -> int:
    """How many lines of the terminal's screen match ``pattern`` (the whole line, stripped)."""
    regex = re.compile(pattern)
    return sum(1 for line in screen(page) if regex.fullmatch(line.strip()))


def wait_for_count(page: Page, pattern: str, wanted: int, timeout: float = DOCKER_WAIT) -> None:
    """Wait until ``wanted`` lines of the screen match ``pattern``."""
    eventually(
        lambda: count(page, pattern),
        f"{wanted} line(s) matching {pattern!r} on the terminal's screen",
        timeout,
        until=lambda found: found >= wanted,
        explain=lambda: "\n".join(screen(page)[-40:]),
    )


def typed(page: Page, command: str) -> None:
    """Type ``command`` at the prompt and wait for the next prompt, as a visitor who reads each
    answer before typing on (``run`` alone would type ahead of a slow command)."""
    prompts = count(page, PROMPT)
    run(page, command)
    wait_for_count(page, PROMPT, prompts + 1)


def after_last(lines: list[str], header: str) -> list[str]:
    """The lines after the last one that starts with ``header`` (none if no line does)."""
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    return lines[starts[-1] + 1 :] if starts else []


def test_a_visitor_runs_hello_world_then_builds_publishes_and_removes_a_web_server(
    page: Page, docker_stack: Stack
) -> None:
    page.set_viewport_size(WIDE)
    eventually(
        lambda: pooled_docker_sandboxes(docker_stack),
        "a pooled docker sandbox, its engine up",
        DOCKER_WAIT,
        until=lambda pooled: pooled == 1,
    )
    start_from_landing(page, docker_stack)
    typed(page, "docker run hello-world")
    wait_for_line(page, "Hello from Docker, inside your Playground sandbox!", 1)
    # The pooled sandbox was handed out with its engine up: the docker wrapper did not wait.
    assert not any("Waiting for the Docker engine" in line for line in screen(page)), screen(page)

    typed(page, "mkdir web && cd web")
    for line in DOCKERFILE:
        typed(page, line)
    typed(page, "docker build -q -t web:1 .")
    wait_for_line(page, "sha256:[0-9a-f]{64}", 1)
    typed(page, "docker run --rm web:1 cat /www/index.html")  # the RUN step's file
    assert count(page, "hello-from-apa02") == 1
    typed(page, "docker run --name apa02 -d -p 8080:80 web:1")
    wait_for_line(page, "[0-9a-f]{64}", 1)
    typed(page, "curl -s localhost:8080")
    wait_for_line(page, "hello-from-apa02", 1)

    typed(page, "docker ps")
    wait_for_line(page, r"[0-9a-f]{12}\s+web:1\s.*Up .*0\.0\.0\.0:8080->80/tcp.*\sapa02", 1)
    typed(page, "docker stop apa02")
    assert count(page, "apa02") == 1
    typed(page, "docker rm apa02")
    assert count(page, "apa02") == 2
    typed(page, "docker ps -a")
    listed = after_last(screen(page), "CONTAINER ID")
    assert any("hello-world" in line and "Exited (0)" in line for line in listed), listed
    assert not any("apa02" in line for line in listed), listed  # stopped and removed
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docker-seminar.png"))


COMPOSE_FILE = [
    "cat > docker-compose.yml <<'END'",
    'version: "3"',
    "services:",
    "  web:",
    "    image: busybox",
    "    command: httpd -f -p 80 -h /etc",
    "  client:",
    "    image: busybox",
    "    command: sh -c 'until wget -qO- http://web/hostname; do sleep 0.2; done'",
    "    depends_on: [web]",
    "END",
]


def test_a_visitor_uses_a_user_network_a_named_volume_and_docker_compose(page: Page, docker_stack: Stack) -> None:
    page.set_viewport_size(WIDE)
    start_from_landing(page, docker_stack)
    typed(page, "docker network create n1")
    typed(page, "docker run -d --name one --network n1 busybox httpd -f -p 80 -h /etc")
    typed(page, "docker run --rm --network n1 busybox wget -qO- http://one/hostname")  # by name
    wait_for_line(page, "[0-9a-f]{12}", 1)  # the hostname of container one: its short id
    typed(page, "docker run --rm -v data:/data busybox sh -c 'echo kept-in-volume > /data/f'")
    typed(page, "docker run --rm -v data:/data busybox cat /data/f")
    assert count(page, "kept-in-volume") == 1  # the second container's output, not the echo's command line
    typed(page, "mkdir app && cd app")
    for line in COMPOSE_FILE:
        typed(page, line)
    typed(page, "docker-compose up -d")
    typed(page, 'docker wait "$(docker-compose ps -q client)"')
    wait_for_line(page, "0", 1)  # the client's exit code once it fetched the page by service name
    typed(page, "docker-compose logs --no-color client | tail -1")
    wait_for_line(page, r"client_1\s+\|\s+[0-9a-f]{12}", 1)
    typed(page, "docker-compose down")
    typed(page, "docker ps -q --filter name=app_ | wc -l")
    wait_for_line(page, "0", 1)
