"""``/metrics`` (playground.metrics, docs/metrics.md): who may read it, and its text format, against the fake agent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pytest_django import Settings

from playground import config
from playground.hosts.models import SandboxHost
from tests.fakeagent import FakeAgent
from tests.fast.test_api import assert_refused

pytestmark = pytest.mark.django_db

ELSEWHERE = "203.0.113.5"


def scraped(client: Client, **extra: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The metrics' samples by name (the text parsed by prometheus_client's parser), after a 200."""
    response = client.get("/metrics", **extra)  # type: ignore[arg-type]
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version="), response["Content-Type"]
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_a_loopback_client_gets_every_metric_in_the_text_format(client: Client, agent: FakeAgent) -> None:
    samples = scraped(client)
    assert samples["playground_agent_up"] == [({"host": samples["playground_agent_up"][0][0]["host"]}, 1.0)]
    assert ({"state": "active"}, 0.0) in samples["playground_sessions"]
    assert ({"state": "running"}, 0.0) in samples["playground_nodes"]
    for name in ("playground_host_sandboxes", "playground_host_headroom_sandboxes", "playground_host_cpus_committed"):
        assert name in samples, sorted(samples)
    assert "playground_terminal_bytes_total" in samples or "playground_session_creations_total" in samples


def test_a_started_and_deleted_session_moves_the_creations_and_endings(client: Client, agent: FakeAgent) -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    created, deleted = (
        value("playground_session_creations_total"),
        value("playground_session_endings_total", reason="deleted"),
    )
    started = client.post("/api/sessions/", {}, content_type="application/json")
    assert started.status_code == 201, started.content
    session = started.json()
    ended = client.delete(f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"})
    assert ended.status_code == 204
    assert value("playground_session_creations_total") == created + 1
    assert value("playground_session_endings_total", reason="deleted") == deleted + 1


def test_without_the_agent_it_reads_as_down_and_the_database_still_counts(client: Client) -> None:
    samples = scraped(client)
    assert [value for _, value in samples["playground_agent_up"]] == [0.0]
    assert "playground_host_sandboxes" not in samples
    assert ({"state": "ended"}, 0.0) in samples["playground_sessions"]


def test_a_sandbox_host_the_site_cannot_reach_reads_as_down_by_its_name_with_its_state(
    client: Client, agent: FakeAgent
) -> None:
    SandboxHost.objects.create(name="sandbox-9", address="127.0.0.1:1", state=SandboxHost.State.DRAINING, limit=4)
    samples = scraped(client)  # nothing answers there (nor has the test a certificate for the site)
    up = {labels["host"]: found for labels, found in samples["playground_agent_up"]}
    assert up.pop("sandbox-9") == 0.0 and list(up.values()) == [1.0]  # this machine's agent answers
    states = {
        labels["state"]: found for labels, found in samples["playground_host_state"] if labels["host"] == "sandbox-9"
    }
    assert states == {"active": 0.0, "draining": 1.0, "lost": 0.0}
    assert {labels["host"] for labels, _ in samples["playground_host_sandboxes"]} == set(up)


@pytest.mark.parametrize("extra", [{"REMOTE_ADDR": ELSEWHERE}, {"HTTP_X_FORWARDED_FOR": ELSEWHERE}])
def test_without_a_token_only_loopback_clients_may_read_it(client: Client, extra: dict[str, str]) -> None:
    body = assert_refused(client.get("/metrics", **extra), 403, "metrics_forbidden")  # type: ignore[arg-type]
    assert "PLAYGROUND_METRICS_TOKEN" in body["message"]


def test_with_a_token_only_its_bearer_may_read_it_from_anywhere(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, metrics_token="s3cret-token")
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "s3cret-token"}):
        assert_refused(client.get("/metrics", **headers), 403, "metrics_forbidden")  # type: ignore[arg-type]
    samples = scraped(client, REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert "playground_sessions" in samples


def test_other_methods_are_405(client: Client) -> None:
    assert_refused(client.post("/metrics"), 405, "method_not_allowed")


def test_the_token_setting_is_read_from_the_variable_or_its_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert config.load({}).metrics_token is None
    assert config.load({"PLAYGROUND_METRICS_TOKEN": " abc "}).metrics_token == "abc"
    (tmp_path / "token").write_text("from-a-file\n")
    assert config.load({"PLAYGROUND_METRICS_TOKEN_FILE": str(tmp_path / "token")}).metrics_token == "from-a-file"
