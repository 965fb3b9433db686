"""The seeded images as the seminar uses them: a stack whose mirror was seeded by ``manage.py registry
seed`` (before it starts; trees and layers from var/cache), its store with no upstream, and a docker
sandbox whose engine (Debian's docker.io 20.10) pulls them through the mirror and runs them, as the
Docker 101 lab does: hello-world, busybox with a volume, httpd and nginx published on ports, an
image built FROM httpd.

About a minute with var/cache warm (the docker image and the seeds' trees), minutes more cold."""

from __future__ import annotations

import pytest

from tests.dockerkit import agent, log, run, start_docker_sandbox
from tests.stack import Stack

pytestmark = [pytest.mark.root, pytest.mark.alongside]


async def in_docker_sandbox(stack: Stack, script: str, timeout: float = 180) -> str:
    """Run ``script`` in a new docker sandbox of ``stack``; its output (asserting it succeeded)."""
    sandbox = await start_docker_sandbox(stack)
    try:
        out = await run(stack, sandbox, script, timeout)
        assert out["code"] == 0, str(out["output"]) + await log(stack, sandbox)
        return str(out["output"])
    finally:
        await agent(stack).request("destroy", id=sandbox)


async def test_hello_world_and_busybox_are_pulled_from_the_mirror_and_run(seeded_stack: Stack) -> None:
    said = await in_docker_sandbox(
        seeded_stack,
        "docker pull hello-world && docker run --rm hello-world && "
        "docker run --name writer -v notes:/data busybox sh -c 'echo kept > /data/note.txt' && "
        "docker run --rm -v notes:/data busybox cat /data/note.txt && "
        "docker image inspect busybox --format '{{index .Config.Labels \"playground.seed.digest\"}}'",
    )
    assert "Hello from Docker, inside your Playground sandbox!" in said
    assert "kept" in said
    assert "sha256:" in said


async def test_httpd_and_nginx_serve_their_pages_on_published_ports(seeded_stack: Stack) -> None:
    said = await in_docker_sandbox(
        seeded_stack,
        "docker run --name apa02 -d -p 8080:80 httpd >/dev/null && "
        "docker run --name nginx01 -d -p 8084:80 nginx >/dev/null && "
        'for port in 8080 8084; do timeout 20 sh -c "until curl -fsS localhost:$port; do sleep 0.3; done"; done && '
        "docker stop apa02 nginx01 >/dev/null && docker logs apa02 2>&1 | tail -3",
        240,
    )
    assert "<html><body><h1>It works!</h1></body></html>" in said, said
    assert "<title>Welcome to nginx!</title>" in said, said
    assert '"GET / HTTP/1.1" 200' in said, said  # httpd's access log is the container's output
    assert "caught SIGWINCH, shutting down gracefully" in said, said


async def test_an_image_built_from_httpd_serves_its_own_page(seeded_stack: Stack) -> None:
    said = await in_docker_sandbox(
        seeded_stack,
        "mkdir /tmp/site && cd /tmp/site && echo '<h1>My page</h1>' > index.html && "
        "printf 'FROM httpd\\nCOPY index.html /usr/local/apache2/htdocs/\\n' > Dockerfile && "
        "docker build --tag myweb:1.0 . >/dev/null && docker run -d --name web -p 8000:80 myweb:1.0 >/dev/null && "
        'timeout 20 sh -c "until curl -fsS localhost:8000; do sleep 0.3; done" && '
        "docker run --rm debian:bookworm cat /etc/debian_version",
        240,
    )
    assert "<h1>My page</h1>" in said, said
    assert "12." in said, said
