"""The session registry with real parts: a stack (its mirror read-only and empty, a small push
quota) and two sessions of the docker image, whose engines push through the registry front as a
seminar does, with the login the session API gives them:

- Alice logs in, tags the engine's busybox as ``registry:5050/<her namespace>/box:1.0``, pushes it,
  removes it, pulls it back and runs it;
- Bob cannot log in with Alice's user, cannot pull her image, and cannot push into her namespace;
- Alice's push of an image over the quota fails with the registry's sentence;
- once Alice's session ends, her namespace is gone from the push registry's storage.
"""

from __future__ import annotations

import shlex
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from playground.registry import push
from playground.registry.paths import push_root
from tests.dockerkit import build_docker_image, run
from tests.imagekit import CACHE
from tests.labkit import docker_session
from tests.stack import Stack
from tests.waiting import eventually

pytestmark = [pytest.mark.root, pytest.mark.alongside]

QUOTA = "4M"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    stack = Stack.create(
        PLAYGROUND_REGISTRY_UPSTREAM="none",
        PLAYGROUND_IMAGE_CACHE=str(CACHE),
        PLAYGROUND_REGISTRY_PUSH_QUOTA=QUOTA,
    )
    try:
        stack.start()
        build_docker_image(stack)
        yield stack
    finally:
        stack.end_started_sessions()
        stack.stop()


def login(address: str, user: str, password: str) -> str:
    return f"echo {shlex.quote(password)} | docker login {address} -u {shlex.quote(user)} --password-stdin"


async def sh(stack: Stack, sandbox: str, script: str, timeout: float = 60) -> tuple[int, str]:
    reply = await run(stack, sandbox, script, timeout)
    return reply["code"], reply["output"]


async def test_push_pull_isolation_quota_and_cleanup_in_docker_sandboxes(stack: Stack) -> None:
    alice, alice_box = await docker_session(stack, image="docker")
    bob, bob_box = await docker_session(stack, image="docker")
    a, b = alice["registry"], bob["registry"]
    address = f"registry:{stack.env['PLAYGROUND_REGISTRY_PORT']}"
    assert a["address"] == address and a["user"] == push.namespace_of(alice["id"].replace("-", ""))
    image = f"{address}/{a['user']}/box:1.0"

    # Alice: login, tag, push, rmi, pull back, run.
    started = time.monotonic()
    code, out = await sh(stack, alice_box, login(address, a["user"], a["password"]))
    assert code == 0 and "Login Succeeded" in out, out
    code, out = await sh(stack, alice_box, f"docker tag busybox {image} && docker push {image}")
    assert code == 0, out
    pushed = time.monotonic()
    code, out = await sh(stack, alice_box, f"docker rmi {image} busybox && docker pull {image}")
    assert code == 0, out
    code, out = await sh(stack, alice_box, f"docker run --rm {image} echo pulled back")
    assert code == 0 and "pulled back" in out, out
    print(f"push {pushed - started:.1f} s, rmi + pull + run {time.monotonic() - pushed:.1f} s")

    # Bob: not with Alice's user, not her image, not into her namespace.
    code, out = await sh(stack, bob_box, login(address, a["user"], b["password"]))
    assert code != 0 and "401 Unauthorized" in out, out  # docker login shows no more than the status
    code, out = await sh(stack, bob_box, login(address, b["user"], b["password"]))
    assert code == 0, out
    code, out = await sh(stack, bob_box, f"docker pull {image}")
    assert code != 0 and "belongs to another session" in out, out
    code, out = await sh(stack, bob_box, f"docker tag busybox {image} && docker push {image}")
    assert code != 0 and "belongs to another session" in out, out

    # Alice over her quota: the registry's sentence.
    big = f"{address}/{a['user']}/big:1.0"
    build = (
        "mkdir -p /tmp/big && cd /tmp/big && head -c 5000000 /dev/urandom > blob && "
        f"printf 'FROM busybox\\nCOPY blob /blob\\n' > Dockerfile && docker build -q -t {big} . && docker push {big}"
    )
    code, out = await sh(stack, alice_box, f"docker pull -q {image} && docker tag {image} busybox && {build}", 120)
    assert code != 0 and "over its quota" in out, out

    # Alice's session ends: her namespace is gone.
    stack.end_session(alice)
    namespace = push_root(stack.data_dir) / "docker/registry/v2/repositories" / a["user"]
    eventually(lambda: not namespace.exists(), "the ended session's namespace removed", 30)
    push_registry = f"http://127.0.0.1:{stack.env['PLAYGROUND_REGISTRY_PUSH_PORT']}"
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(f"{push_registry}/v2/{a['user']}/box/tags/list", timeout=10)
    assert gone.value.code == 404
    code, out = await sh(stack, bob_box, f"docker pull {image}")
    assert code != 0, out
