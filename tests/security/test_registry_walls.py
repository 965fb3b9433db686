"""The registry's hole in the walls is one port wide: from a root shell in a sandbox (busybox,
and docker with its engine), and from a container inside a docker sandbox, the registry front on
the gateway answers (the mirror's pulls, and the session registry under the name ``registry``,
asking for a login), and nothing else of the host does: not a listener on another port of the
gateway, not Redis, the web server, the port proxy, the mirror's own store or the sessions' push
registry on loopback.

Traffic stays on this machine: every address is the gateway's or loopback's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.config import load
from tests.security.conftest import Inside, sandbox_shell
from tests.security.test_network_walls import gateway, host_listener, walls
from tests.stack import Stack


def host_ports(inside: Inside) -> dict[str, int]:
    """The host's services a sandbox must not reach, by name: their ports."""
    cfg = load(inside.stack.env)
    return {
        "redis": int(cfg.redis_url.rsplit(":", 1)[1].split("/")[0]),
        "web": cfg.port,
        "ports": cfg.ports_port,
        "store": cfg.registry_store_port,
        "push registry": cfg.registry_push_port,
    }


async def test_the_registry_mirrors_front_answers_a_sandbox_on_the_gateway(inside: Inside) -> None:
    mirror = load(inside.stack.env).registry_mirror
    assert mirror.startswith(gateway(inside) + ":")
    host, port = mirror.split(":")
    ask = f"busybox nc -w 5 {host} {port} 2>&1; echo rc=$?"
    out = await inside.sh(f"printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | {ask}", timeout=20)
    assert "HTTP/1.1 200 OK" in out and "{}" in out, out  # Distribution's API root, through the front
    refused = await inside.sh(f"printf 'POST /v2/x/blobs/uploads/ HTTP/1.0\\r\\n\\r\\n' | {ask}", timeout=20)
    assert "405" in refused, refused  # pulls only


async def test_the_session_registry_is_the_same_port_under_the_name_registry_and_asks_for_a_login(
    inside: Inside,
) -> None:
    port = load(inside.stack.env).registry_port
    hosts = await inside.sh("grep -w registry /etc/hosts", timeout=10)
    assert hosts.split() == [gateway(inside), "registry"], hosts
    ask = f"busybox nc -w 5 registry {port} 2>&1; echo rc=$?"
    out = await inside.sh(f"printf 'GET /v2/ HTTP/1.0\\r\\nHost: registry:{port}\\r\\n\\r\\n' | {ask}", timeout=20)
    assert "HTTP/1.1 401 Unauthorized" in out and 'WWW-Authenticate: Basic realm="' in out, out
    push = f"printf 'POST /v2/pg-000000000000/x/blobs/uploads/ HTTP/1.0\\r\\n\\r\\n' | {ask}"
    assert "UNAUTHORIZED" in await inside.sh(push, timeout=20)


async def test_no_other_host_port_answers_a_sandbox(inside: Inside) -> None:
    gw = gateway(inside)
    with host_listener(gw) as (listener_port, peers):
        ports = {"gateway listener": listener_port, **host_ports(inside)}
        before = walls(inside).counters()["to_host"]
        probes = " ".join(
            f"(echo PING | busybox nc -w 2 {gw} {port} >/dev/null 2>&1; echo {port}-rc=$?) &" for port in ports.values()
        )
        out = await inside.sh(f"{probes} wait", timeout=20)
        for what, port in ports.items():
            assert f"{port}-rc=1" in out, (what, out)
        assert walls(inside).counters()["to_host"] >= before + len(ports)  # the wall dropped each
        assert peers == []


@pytest.mark.alongside
async def test_a_container_in_a_docker_sandbox_reaches_the_mirror_and_no_other_host_port(
    docker_in_stack: Stack, probe_binary: Path
) -> None:
    async with sandbox_shell(docker_in_stack, probe_binary, "docker") as inside:
        await container_reaches_the_mirror_only(inside)


async def container_reaches_the_mirror_only(inside: Inside) -> None:
    mirror, gw = load(inside.stack.env).registry_mirror, gateway(inside)
    with host_listener(gw) as (listener_port, peers):
        ports = " ".join(str(p) for p in [listener_port, *host_ports(inside).values()])
        script = (
            f'printf "GET /v2/ HTTP/1.0\\r\\n\\r\\n" | nc -w 5 {mirror.replace(":", " ")}; echo mirror-rc=$?; '
            f"for p in {ports}; do echo PING | nc -w 2 {gw} $p >/dev/null 2>&1 && echo open-$p || echo closed-$p; done"
        )
        out = await inside.sh(f"docker run --rm busybox sh -c '{script}' 2>&1", timeout=90)
        assert "HTTP/1.1 200 OK" in out and "{}" in out, out
        assert "open-" not in out and out.count("closed-") == 6, out
        assert peers == []
