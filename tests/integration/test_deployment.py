"""The single-host deployment of docs/deployment.md, as its files are: the systemd unit passes
``systemd-analyze verify``, the environment file's settings are documented and accepted by both tiers,
and Debian's nginx with ``deploy/nginx/playground.conf`` (only the names, ports and certificate paths
the doc tells an operator to replace are replaced) serves the whole site over TLS: the landing page, a
workshop's join form, a terminal's websocket, and a node's port link in both forms. Traffic stays on
loopback: the test's names resolve nowhere, the client connects to 127.0.0.1 and sends them by SNI
and ``Host``."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from playground import config
from sandbox import settings as sandbox_settings
from sandbox.wire import tls
from tests.stack import REPO, Stack, Terminal, free_port, hostcerts
from tests.waiting import eventually
from tests.workshopkit import CookieClient, make_workshop

# Its own stack and an nginx: run in 'make test''s second pytest, beside the rest.
pytestmark = [pytest.mark.root, pytest.mark.alongside]

DEPLOY = REPO / "deploy"
SITE, PORTS = "play.test", "ports.test"


def env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of a systemd environment file."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


@pytest.mark.parametrize(
    "unit, env", [("playground.service", "playground.env"), ("playground-sandbox-host.service", "sandbox-host.env")]
)
def test_each_systemd_unit_passes_systemd_analyze_with_the_repository_where_the_doc_puts_it(
    tmp_path: Path, unit: str, env: str
) -> None:
    text = (DEPLOY / "systemd" / unit).read_text()
    assert "/opt/playground" in text and f"/etc/playground/{env}" in text
    rendered = text.replace("/opt/playground", str(REPO)).replace(
        f"/etc/playground/{env}", str(DEPLOY / "systemd" / env)
    )
    (tmp_path / unit).write_text(rendered)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_every_setting_of_the_environment_file_is_documented_and_accepted_by_both_tiers() -> None:
    settings = env_file(DEPLOY / "systemd" / "playground.env")
    documented = (REPO / "docs" / "configuration.md").read_text()
    assert settings and all(f"`{name}`" in documented for name in settings), settings
    web = config.load(settings)  # ConfigError naming the variable if either tier refuses one
    host = sandbox_settings.load(settings)
    assert (web.ports_domain, web.ports_public_port, web.proxy_count) == ("ports.example.org", 443, 1)
    assert web.database_url and web.database_url.startswith("postgres://")
    assert host.data_dir == Path("/var/lib/playground")


def test_the_sandbox_hosts_settings_are_documented_and_start_its_role_with_the_certificates_hostcerts_makes(
    tmp_path: Path,
) -> None:
    settings = env_file(DEPLOY / "systemd" / "sandbox-host.env")
    documented = (REPO / "docs" / "configuration.md").read_text()
    assert settings and all(f"`{name}`" in documented for name in settings), settings
    hostcerts(tmp_path / "web", "site")
    hostcerts(tmp_path / "web", "host", "sandbox-1", "--address", "10.0.0.5", "--out", str(tmp_path / "host"))
    with_certificates = {**settings, "PLAYGROUND_TLS_DIR": str(tmp_path / "host")}  # <data>/tls on the host
    web, host = config.load(with_certificates), sandbox_settings.load(with_certificates)
    assert (web.role, host.agent_listen) == ("sandbox-host", tls.Address("10.0.0.5", 7700))
    assert host.host_max_sandboxes == 100 and host.data_dir == Path("/var/lib/playground")


# -- nginx in front of a stack ------------------------------------------------------------------
NGINX_MAIN = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    include {tmp}/playground.conf;
}}
"""


@dataclass
class Front:
    """nginx serving the stack over TLS on 127.0.0.1:``port``; ``tls`` trusts its certificates."""

    stack: Stack
    port: int
    tls: ssl.SSLContext

    def origin(self, name: str = SITE) -> str:
        return f"https://{name}:{self.port}"

    def connection(self, name: str = SITE) -> http.client.HTTPConnection:
        """An HTTPS connection to nginx that says it is for ``name`` (SNI and Host)."""
        connection = http.client.HTTPConnection(name, self.port, timeout=30)
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        connection.sock = self.tls.wrap_socket(raw, server_hostname=name)
        return connection

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET an ``https://<name>:<port>/...`` URL through nginx: status, headers (lower-case), body."""
        return self.send("GET", url, headers)

    def send(
        self, method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to an ``https://<name>:<port>/...`` URL through nginx."""
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.port == self.port and parts.hostname, url
        connection = self.connection(parts.hostname)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


class FrontClient(CookieClient):
    """The workshop kit's cookie client, through the front (a browser on https://play.test)."""

    def __init__(self, front: Front) -> None:
        super().__init__(front.port)
        self.front = front

    def connect(self) -> http.client.HTTPConnection:
        return self.front.connection()

    def origin(self) -> str:
        return self.front.origin()


def certificate(directory: Path, stem: str, name: str) -> None:
    """A self-signed certificate for ``name`` (a wildcard name too) in ``<stem>.crt`` and ``<stem>.key``."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}"]
        + ["-addext", f"subjectAltName=DNS:{name}", "-keyout", str(directory / f"{stem}.key")]
        + ["-out", str(directory / f"{stem}.crt")],
        check=True,
        capture_output=True,
    )


def render_site(stack: Stack, tmp: Path, port: int, redirect_port: int) -> str:
    """deploy/nginx/playground.conf with what docs/deployment.md says to replace, replaced (names,
    certificate directory, the include's place), and the test's ports: loopback addresses of its own
    for nginx, the stack's for Daphne and the proxy."""
    site = (DEPLOY / "nginx" / "playground.conf").read_text()
    for old, new in [
        ("ports.example.org", PORTS),
        ("play.example.org", SITE),
        ("/etc/ssl/playground", str(tmp)),
        ("/etc/nginx/playground-proxy.conf", str(DEPLOY / "nginx" / "playground-proxy.conf")),
        ("127.0.0.1:8000", f"127.0.0.1:{stack.port}"),
        ("127.0.0.1:8001", f"127.0.0.1:{stack.ports_port}"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("listen 80;", f"listen 127.0.0.1:{redirect_port};"),
    ]:
        assert old in site, f"deploy/nginx/playground.conf no longer has {old!r}"
        site = site.replace(old, new)
    return "\n".join(line for line in site.splitlines() if "listen [::]" not in line)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    port = free_port()
    env = env_file(DEPLOY / "systemd" / "playground.env")
    settings = {
        # The environment file's front-end settings, with the test's names and port; the rest of the
        # file (the data directory, PostgreSQL) is the stack's own.
        **{name: value for name, value in env.items() if name.startswith("PLAYGROUND_P")},
        "PLAYGROUND_ALLOWED_HOSTS": f"{SITE},127.0.0.1",  # 127.0.0.1: the launcher's own readiness checks
        "PLAYGROUND_PORTS_DOMAIN": PORTS,
        "PLAYGROUND_PORTS_PUBLIC_PORT": str(port),
        "PLAYGROUND_WORKSHOP_WARM_MAX": "0",
    }
    assert settings["PLAYGROUND_PROXY_COUNT"] == "1" and settings["PLAYGROUND_PORTS_PUBLIC_SCHEME"] == "https"
    tmp = tmp_path_factory.mktemp("front")
    tmp.chmod(0o755)
    for stem, name in (("site", SITE), ("ports", f"*.{PORTS}")):
        certificate(tmp, stem, name)
    with Stack.running(**settings) as stack:
        (tmp / "playground.conf").write_text(render_site(stack, tmp, port, free_port()))
        (tmp / "nginx.conf").write_text(NGINX_MAIN.format(tmp=tmp))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        checked = subprocess.run([nginx, "-t", "-c", str(tmp / "nginx.conf")], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        proc = subprocess.Popen([nginx, "-c", str(tmp / "nginx.conf")], stderr=subprocess.DEVNULL)
        try:
            tls = ssl.create_default_context()
            for stem in ("site", "ports"):
                tls.load_verify_locations(tmp / f"{stem}.crt")
            front = Front(stack, port, tls)
            eventually(lambda: _answers(front), "nginx answers on its port", 15)
            yield front
        finally:
            proc.terminate()
            proc.wait(10)


def _answers(front: Front) -> bool:
    try:
        return front.get(front.origin() + "/")[0] == 200
    except OSError:
        return False


def test_the_landing_page_and_a_workshops_join_form_work_over_tls(
    front: Front,
) -> None:
    status, headers, body = front.get(front.origin() + "/")
    assert status == 200 and b"<html" in body.lower()
    _, code = make_workshop(front.stack, "deploy-instructor", "a-long-password-1", "Deployed", 3)
    learner = FrontClient(front)
    learner.send("GET", f"/join/{code}")
    status, headers, body = learner.send("POST", "/join", {"code": code, "name": "Ada"})
    assert status == 302 and re.fullmatch(r"/s/[0-9a-f-]{36}/", headers.get("Location", "")), (status, body[:500])
    assert any(name.startswith("pg_") for name in learner.cookies), learner.cookies


async def test_a_terminal_runs_over_wss_and_a_nodes_port_opens_through_nginx_in_both_forms(front: Front) -> None:
    stack = front.stack
    session = stack.start_session()
    try:
        path = session["instances"][0]["terminal"]
        terminal = await Terminal.open(
            f"wss://{SITE}:{front.port}{path}?key={session['key']}",
            host="127.0.0.1",
            port=front.port,
            ssl=front.tls,
            server_hostname=SITE,
            origin=front.origin(),
        )
        await terminal.expect("# ")
        await terminal.run("mkdir -p /www && echo hello-through-nginx > /www/index.html && httpd -p 8080 -h /www")
        await terminal.type("echo typed-over-$((6*7))\r")
        await terminal.expect("typed-over-42")
        auth = {"Authorization": f"Session {session['key']}"}
        ports = f"/api/sessions/{session['id']}/instances/node1/ports/8080/"

        def port_json() -> dict[str, Any]:
            status, _, body = front.get(front.origin() + ports, auth)
            assert status == 200, body
            return dict(json.loads(body))

        await asyncio.to_thread(eventually, lambda: port_json()["listening"], "the agent sees port 8080 listening", 10)
        links = port_json()
        host = urlsplit(links["url"]).hostname or ""
        assert host.startswith("8080-node1-") and host.endswith(f".{PORTS}"), links
        assert links["url"] == f"https://{host}:{front.port}/", links

        # Host form: the badge's redirect carries a token to https://8080-node1-<short id>.ports.test,
        # which trades it for that host's cookie.
        status, headers, _ = front.get(front.origin() + ports + "open/", auth)
        link = headers.get("location", "")
        assert status == 302 and link.startswith(f"https://{host}:{front.port}/?"), (status, link)
        status, headers, _ = front.get(link)
        assert status == 302 and "secure" in headers.get("set-cookie", "").lower(), (status, headers)
        cookie = headers["set-cookie"].split(";", 1)[0]
        status, _, body = front.get(f"https://{host}:{front.port}/", {"Cookie": cookie})
        assert (status, body) == (200, b"hello-through-nginx\n")

        # Path form, on the site's own name: /ports/ goes to the proxy.
        status, headers, _ = front.get(front.origin() + ports + "open/?form=path", auth)
        link = headers.get("location", "")
        assert status == 302 and urlsplit(link).path.startswith(urlsplit(links["path_url"]).path.rstrip("/") + "~"), (
            link
        )
        location = link if link.startswith("https://") else front.origin() + link
        status, _, body = front.get(location)
        assert (status, body) == (200, b"hello-through-nginx\n")
        await terminal.close()
    finally:
        stack.end_started_sessions()


def test_a_session_records_the_address_nginx_saw_not_one_the_client_wrote_and_its_cookie_is_secure(
    front: Front,
) -> None:
    # nginx appends its peer (127.0.0.1) to X-Forwarded-For and PLAYGROUND_PROXY_COUNT=1 takes the last
    # address: one the client wrote in front of it (a documentation address, in a header only) is not
    # used, or a visitor could escape the per-address limits.
    status, headers, body = front.send(
        "POST",
        front.origin() + "/api/sessions/",
        {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"},
        b"{}",
    )
    assert status == 201, body
    assert "; secure" in headers["set-cookie"].lower(), headers["set-cookie"]
    session = json.loads(body)
    front.stack.started_sessions.append(session)
    try:
        model = "from playground.sandboxes.models import Session"
        script = f"{model}; print(Session.objects.get(pk={session['id']!r}).client_address)"
        recorded = front.stack.manage("shell", "-c", script)
        assert recorded.split()[-1] == "127.0.0.1", recorded
    finally:
        front.stack.end_started_sessions()
