"""``/metrics`` on a real stack (docs/metrics.md): one session's life moves each counter and
histogram, from every process that counts (Daphne, the Celery worker's pool, the port proxy's
workers, the registry front), and Prometheus's own tool accepts the text and the alert rules."""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.labkit import add_lab, step
from tests.metricskit import Samples, scrape, value
from tests.stack import Stack, Terminal
from tests.waiting import eventually

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "playground.json"


def get(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=20)
    try:
        connection.request("GET", path, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


async def test_one_sessions_life_moves_every_counter_and_histogram(stack: Stack) -> None:
    add_lab(stack, "metrics-lab", [step("Anything", check="true")])
    _, before = scrape(stack)
    session = stack.start_session(lab="metrics-lab")
    auth = {"Authorization": f"Session {session['key']}"}
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ")
    assert "hello" in await terminal.run("echo hello")
    _, during = scrape(stack)
    assert value(during, "playground_terminals_open") >= 1
    assert value(during, "playground_agent_up") == 1
    assert value(during, "playground_host_sandboxes", kind="session") >= 1
    assert value(during, "playground_host_memory_used_bytes") > 0
    assert value(during, "playground_celery_worker_processes") == 4  # the launcher's --concurrency
    assert value(during, "playground_sessions", state="active") >= 1

    eventually(lambda: stack.shown(session)["instances"][0]["state"], "node1 running", 20, until="running".__eq__)
    check = stack.request("POST", f"/api/sessions/{session['id']}/lab/steps/1/check/", headers=auth)
    assert check.status == 200 and check.json()["passed"], check.body
    port = stack.request("GET", f"/api/sessions/{session['id']}/instances/node1/ports/8080/", headers=auth)
    assert port.status == 200, port.body
    get("127.0.0.1", stack.ports_port, urlsplit(port.json()["path_url"]).path)  # a port link, not the owner's
    assert get("127.0.0.1", stack.ports_port, "/nothing-here", {"Host": "127.0.0.1"}) == 404
    gateway = str(next(ipaddress.ip_network(stack.env["PLAYGROUND_SANDBOX_SUBNET"]).hosts()))
    registry = int(stack.env["PLAYGROUND_REGISTRY_PORT"])
    get(gateway, registry, "/v2/")
    get(gateway, registry, f"/v2/library/none/blobs/sha256:{'0' * 64}")  # not kept: a miss
    await terminal.close()
    stack.end_session(session)

    def after() -> Samples:
        return scrape(stack)[1]

    moved: dict[str, Any] = {
        "playground_session_creations_total": {},
        "playground_session_first_prompt_seconds_count": {},
        "playground_session_endings_total": {"reason": "deleted"},
        "playground_warm_pool_creates_total": {"result": "miss"},  # the test stack has no warm pool
        "playground_terminal_bytes_total": {"direction": "in"},
        "playground_lab_checks_total": {"verdict": "passed"},
        "playground_lab_check_duration_seconds_count": {},
        "playground_port_link_requests_total": {},
        "playground_port_link_errors_total": {"status": "404"},
        "playground_registry_pull_requests_total": {"kind": "other"},
        "playground_registry_blob_requests_total": {"cache": "miss"},
    }
    for name, labels in moved.items():
        eventually(
            after,
            f"{name}{labels} moved",
            10,
            until=lambda samples, name=name, labels=labels: (
                value(samples, name, **labels) > value(before, name, **labels)
            ),
        )
    text, samples = scrape(stack)
    out = value(samples, "playground_terminal_bytes_total", direction="out")
    assert out - value(before, "playground_terminal_bytes_total", direction="out") >= len("hello")
    opened = value(before, "playground_terminals_open")
    eventually(lambda: value(after(), "playground_terminals_open"), "the viewer uncounted", 10, until=opened.__ge__)
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_the_dashboard_and_the_alerts_query_only_metrics_the_site_serves(stack: Stack, tmp_path: Path) -> None:
    """Every query of the Grafana dashboard is valid PromQL (promtool checks it as a recording rule),
    and every metric the dashboard and the alert rules name is in the scraped text."""
    queries = [t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel.get("targets", [])]
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": q} for i, q in enumerate(queries)]}
        ]
    }
    (tmp_path / "dashboard.yml").write_text(json.dumps(rules))  # YAML is a superset of JSON
    checked = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "dashboard.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    scrape(stack)  # the host's CPU use needs a scrape before
    text, _ = scrape(stack)
    served = set(re.findall(r"^(playground_[a-z_]+)", text, re.MULTILINE))
    named = set(re.findall(r"playground_[a-z_]+", " ".join(queries) + ALERTS.read_text()))
    assert named <= served, f"named but not served: {sorted(named - served)}"
