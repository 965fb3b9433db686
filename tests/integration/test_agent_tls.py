"""The agent reached over TCP with mutual TLS, as the site reaches the agent of another sandbox host
(docs/hosts.md): certificates from ``manage.py hostcerts``, a real agent listening on its stack's
gateway address, real sandboxes. Only a right certificate on each side makes a connection, and a
sandbox cannot reach the port at all."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import ssl
import tarfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.wire import tls
from sandbox.wire.client import AgentClient, AgentUnavailable, RemoteAgent
from sandbox.wire.protocol import AgentError, Kind
from tests.hostkit import Collected
from tests.stack import Stack, claim_subnet, free_port, hostcerts
from tests.waiting import eventually_async


@dataclass
class TlsAgent:
    stack: Stack
    address: tls.Address
    tls_dir: Path  # the site's files and this agent's, as made by hostcerts
    other_dir: Path  # another authority's, with a site and a host certificate of its own

    def client(self, context: ssl.SSLContext) -> AgentClient:
        return AgentClient(RemoteAgent(self.address, context))


@pytest.fixture(scope="module")
def tls_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsAgent]:
    subnet = claim_subnet(free_port())
    gateway = str(next(ipaddress.IPv4Network(subnet).hosts()))
    tls_dir, other_dir = tmp_path_factory.mktemp("tls"), tmp_path_factory.mktemp("other-tls")
    for where in (tls_dir, other_dir):
        hostcerts(where, "site")
        hostcerts(where, "host", "sandbox-1", "--address", gateway, "--out", str(where))
    address = tls.Address(gateway, free_port())
    settings = {"PLAYGROUND_SANDBOX_SUBNET": subnet, "PLAYGROUND_TLS_DIR": str(tls_dir)}
    with Stack.running(PLAYGROUND_AGENT_LISTEN=str(address), **settings) as stack:
        yield TlsAgent(stack, address, tls_dir, other_dir)


@pytest.fixture
def site(tls_agent: TlsAgent) -> AgentClient:
    """The site, with its certificate."""
    return tls_agent.client(tls.client_context(tls_agent.tls_dir))


@pytest.fixture
async def sandbox(site: AgentClient) -> AsyncIterator[str]:
    sandbox_id = uuid.uuid4().hex
    await site.request("create", id=sandbox_id, hostname="node1", image="busybox")
    try:
        yield sandbox_id
    finally:
        await site.request("destroy", id=sandbox_id)


async def test_the_site_creates_uses_and_destroys_a_sandbox_through_an_agent_over_tls(
    site: AgentClient, tls_agent: TlsAgent
) -> None:
    sandbox_id = uuid.uuid4().hex
    created = await site.request("create", id=sandbox_id, hostname="node1", image="busybox")
    assert created["created"] is True
    listed = await site.request("list")
    assert sandbox_id in [s["id"] for s in listed["sandboxes"]]
    ran = await site.request("run", sandbox=sandbox_id, script="echo $((6 * 7))", timeout=10, limit=1024)
    assert ran["output"].strip() == "42"
    await site.request("destroy", id=sandbox_id)
    assert sandbox_id not in [s["id"] for s in (await site.request("list"))["sandboxes"]]


async def test_a_terminal_of_a_sandbox_on_another_host_streams_through_its_agent(
    site: AgentClient, sandbox: str
) -> None:
    stream = await site.attach(sandbox, wait=10, pty=True)  # asks for the PTY; a TCP connection gets none
    try:
        assert stream.pty is None and stream.replay is None
        await stream.send(Kind.DATA, b"echo over-$((40 + 2))-tls\n")
        seen = b""
        while b"over-42-tls" not in seen:
            frame = await asyncio.wait_for(stream.read(), 10)
            assert frame is not None, f"the stream ended; it had shown {seen!r}"
            if frame[0] == Kind.DATA:
                seen += frame[1]
    finally:
        await stream.close()


async def test_files_go_to_and_come_from_a_sandbox_on_another_host_over_the_connection(
    site: AgentClient, sandbox: str, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several of the agent's chunks, and a part of one
    upload = tmp_path / "upload"
    upload.write_bytes(data)
    with upload.open("rb") as source:
        put = await site.put_file(sandbox, "/root/copied.bin", source.fileno(), len(data))
    assert put == {"ok": True, "path": "/root/copied.bin", "size": len(data)}
    ran = await site.request("run", sandbox=sandbox, script="md5sum /root/copied.bin", timeout=10, limit=1024)
    assert ran["output"].split()[0] == hashlib.md5(data).hexdigest()  # noqa: S324 -- a checksum, as md5sum's
    reply, fd = await site.get_file(sandbox, "/root/copied.bin", len(data))
    with os.fdopen(fd, "rb") as memfd:
        assert reply["size"] == len(data) and memfd.read() == data
    reply, fd = await site.get_tree(sandbox, "/root", len(data) + 65536)
    with os.fdopen(fd, "rb") as memfd, tarfile.open(fileobj=memfd) as tar:
        member = tar.extractfile("./copied.bin")
        assert member is not None and member.read() == data
    with pytest.raises(AgentError) as too_large:
        await site.get_file(sandbox, "/root/copied.bin", len(data) - 1)
    assert too_large.value.code == "too_large"


async def test_an_upload_the_sandbox_refuses_is_answered_after_all_its_bytes_and_writes_nothing(
    site: AgentClient, sandbox: str, tmp_path: Path
) -> None:
    upload = tmp_path / "upload"
    upload.write_bytes(os.urandom(2 * 1024 * 1024))  # more than a pipe and a socket buffer hold
    with upload.open("rb") as source, pytest.raises(AgentError) as refused:
        await site.put_file(sandbox, "/no/such/directory/file", source.fileno(), 2 * 1024 * 1024)
    assert refused.value.code == "no_such_file"  # the refusal, not a reset connection
    with upload.open("rb") as source, pytest.raises(AgentError) as short:
        await site.put_file(sandbox, "/root/short.bin", source.fileno(), 3 * 1024 * 1024)  # more than the file has
    assert short.value.code == "incomplete"
    ran = await site.request("run", sandbox=sandbox, script="ls /root", timeout=10, limit=1024)
    assert "short.bin" not in ran["output"]
    # The agent is none the worse: the next copy works.
    with upload.open("rb") as source:
        assert (await site.put_file(sandbox, "/root/fine.bin", source.fileno(), 1024))["size"] == 1024


async def test_a_file_request_without_inline_over_tcp_is_refused_as_not_supported(
    site: AgentClient, sandbox: str
) -> None:
    with pytest.raises(AgentError) as refused:  # as the client of an older site would ask
        await site.request("get_file", sandbox=sandbox, path="/etc/hostname", limit=1024)
    assert refused.value.code == "not_supported"
    assert "inline" in refused.value.message


def context_of(tls_dir: Path, cert: str | None, key: str | None, authority: Path | None = None) -> ssl.SSLContext:
    """A client context trusting ``authority`` (default ``tls_dir``'s) and showing ``cert``, if any."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str((authority or tls_dir) / tls.CA_CERT))
    if cert is not None and key is not None:
        context.load_cert_chain(str(tls_dir / cert), str(tls_dir / key))
    return context


@pytest.mark.parametrize(
    "whose, cert, key",
    [
        ("nobody's", None, None),
        ("another authority's site", tls.SITE_CERT, tls.SITE_KEY),
        ("an agent's (made for servers)", tls.AGENT_CERT, tls.AGENT_KEY),
    ],
)
async def test_an_agent_refuses_a_client_without_the_sites_certificate(
    tls_agent: TlsAgent, whose: str, cert: str | None, key: str | None
) -> None:
    tls_dir = tls_agent.other_dir if whose.startswith("another") else tls_agent.tls_dir
    context = context_of(tls_dir, cert, key, authority=tls_agent.tls_dir)
    with pytest.raises(AgentUnavailable):
        await tls_agent.client(context).request("ping")
    with pytest.raises(AgentUnavailable):
        await tls_agent.client(context).request("create", id=uuid.uuid4().hex, hostname="node1", image="busybox")
    assert (await tls_agent.client(tls.client_context(tls_agent.tls_dir)).request("list"))["sandboxes"] == []


@pytest.mark.parametrize(
    "whose, names",
    [
        ("another authority's agent", "other"),
        ("an agent certificate for another address", "elsewhere"),
        ("the site's own certificate (made for clients)", "site"),
    ],
)
async def test_the_site_refuses_an_agent_without_a_right_certificate(
    tls_agent: TlsAgent, tmp_path: Path, whose: str, names: str
) -> None:
    """A fake agent on loopback for each wrong certificate: the site's client refuses it before
    sending anything, so the fake never reads a request."""
    if names == "other":
        served = (tls_agent.other_dir / tls.AGENT_CERT, tls_agent.other_dir / tls.AGENT_KEY)
    elif names == "elsewhere":
        hostcerts(tls_agent.tls_dir, "host", "sandbox-2", "--address", "10.0.0.99", "--out", str(tmp_path))
        served = (tmp_path / tls.AGENT_CERT, tmp_path / tls.AGENT_KEY)
    else:
        served = (tls_agent.tls_dir / tls.SITE_CERT, tls_agent.tls_dir / tls.SITE_KEY)
    fake = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    fake.load_cert_chain(*map(str, served))
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            requests.append(await reader.read(65536))
        except (OSError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=fake)
    port = server.sockets[0].getsockname()[1]
    address = tls.Address("127.0.0.1", port)
    context = tls.client_context(tls_agent.tls_dir)
    if names != "elsewhere":  # the name is not what is wrong here: only the authority, or the usage
        context.check_hostname = False
    try:
        with pytest.raises(AgentUnavailable) as refused:
            await AgentClient(RemoteAgent(address, context)).request("ping")
        assert "TLS" in refused.value.message
    finally:
        server.close()
        await server.wait_closed()
    assert not any(requests), f"the site sent {whose} a request"


async def test_a_sandbox_cannot_reach_the_agents_port(tls_agent: TlsAgent, site: AgentClient, sandbox: str) -> None:
    def probe(port: int | str) -> str:
        return f"nc -w 2 {tls_agent.address.host} {port} </dev/null && echo reached || echo refused"

    ran = await site.request("run", sandbox=sandbox, script=probe(tls_agent.address.port), timeout=10, limit=1024)
    assert ran["output"].strip().splitlines()[-1] == "refused"
    # The same probe reaches the one port of that address sandboxes may use: the registry mirror's front.
    registry = tls_agent.stack.env["PLAYGROUND_REGISTRY_PORT"]
    ran = await site.request("run", sandbox=sandbox, script=probe(registry), timeout=10, limit=1024)
    assert ran["output"].strip().splitlines()[-1] == "reached"
    assert "sandboxes" in await site.request("ping")  # while the site reaches the agent


async def test_a_sandboxs_port_is_relayed_through_the_agent_and_a_closed_or_bad_port_is_refused(
    site: AgentClient, sandbox: str
) -> None:
    stream = await site.attach(sandbox, wait=10)  # in its shell: a lab script's processes end with it
    await stream.send(Kind.DATA, b"mkdir -p /www && echo relayed-page > /www/index.html && httpd -p 8080 -h /www\n")
    await stream.close()

    async def listening() -> bool:
        stats = (await site.request("stats", ids=[sandbox]))["sandboxes"][sandbox]
        return 8080 in stats["ports"]

    await eventually_async(listening, "httpd listening on 8080", 10)
    transport, relayed = await site.connect_port(sandbox, 8080, Collected)
    assert isinstance(relayed, Collected)
    transport.write(b"GET / HTTP/1.0\r\nHost: node1\r\n\r\n")
    await asyncio.wait_for(relayed.ended, 10)
    assert relayed.data.startswith(b"HTTP/1.") and relayed.data.endswith(b"\r\n\r\nrelayed-page\n")
    with pytest.raises(AgentError) as refused:
        await site.connect_port(sandbox, 8081, Collected)
    assert refused.value.code == "not_listening"
    with pytest.raises(AgentError) as refused:
        await site.connect_port(sandbox, 0, Collected)
    assert refused.value.code == "bad_request"
