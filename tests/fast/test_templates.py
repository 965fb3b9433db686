"""Session templates (docs/templates.md): reading and validating the files, ``GET /api/templates/``,
and ``POST /api/sessions/`` with ``{"template": name}`` starting the nodes and running each one's
setup in order against a fake agent; and a lab's nodes (``nodes`` in lab.toml) started with it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from playground.config import REPO_DIR
from playground.i18n import LANGUAGE_COOKIE, LANGUAGES
from playground.labs.models import Lab, Step
from playground.sandboxes.models import Session
from playground.sessiontemplates import loader
from playground.sessiontemplates.loader import MAX_SCRIPT, TemplateError, available, read_all, read_template
from playground.sessiontemplates.models import SetupRun
from playground.sessiontemplates.start import setup_message
from playground.sessiontemplates.tasks import STUCK_AFTER, requeue_stuck_setups
from tests.fakeagent import FakeAgent
from tests.fast.test_api import assert_refused, configure, start

THREE_NODES = """
title = "Three nodes"
description = "node1 sets a value that the others read."
image = "busybox"

[[nodes]]
role = "leader"
setup = "echo leading; echo @set TOKEN=secret-1"

[[nodes]]
role = "follower"
count = 2
image = "debian"
setup = 'echo "$NODE joins $NODE1_ADDRESS with $TOKEN"'
"""


@pytest.fixture
def templates_dir(settings: Settings, tmp_path: Path) -> Path:
    """An empty templates directory the web tier reads."""
    configure(settings, templates_dir=tmp_path)
    return tmp_path


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(TemplateError) as raised:
        read_template(path)
    return [str(problem) for problem in raised.value.problems]


def test_the_shipped_templates_read_without_problems() -> None:
    templates, problems = read_all(REPO_DIR / "templates")
    assert problems == []
    swarm = templates["swarm-3m2w"]
    assert [node.role.in_language("en") for node in swarm.nodes] == [
        "manager (leader)",
        "manager",
        "manager",
        "worker",
        "worker",
    ]
    assert [node.role.in_language("ko") for node in swarm.nodes] == ["매니저(리더)", "매니저", "매니저", "워커", "워커"]
    assert swarm.images("busybox") == ["docker"] * 5
    assert "docker swarm init" in swarm.nodes[0].setup and "$WORKER_TOKEN" in swarm.nodes[4].setup
    assert "join_swarm() {" in swarm.prelude and swarm.script_of(swarm.nodes[1]).endswith('join_swarm "$MANAGER_TOKEN"')


def test_every_shipped_template_has_its_title_and_description_in_each_of_the_pages_languages() -> None:
    templates, _ = read_all(REPO_DIR / "templates")
    for template in templates.values():
        for words in (template.title, template.description):
            assert [language for language, _ in words.texts] == list(LANGUAGES), (template.name, words)
            assert re.search("[가-힣]", words.in_language("ko")), (template.name, words)


def test_a_template_expands_its_groups_into_nodes_in_order(tmp_path: Path) -> None:
    template = read_template(write(tmp_path, "three", THREE_NODES))
    assert (template.name, template.title.in_language("en"), template.timeout) == ("three", "Three nodes", 60)
    assert [node.role.in_language("en") for node in template.nodes] == ["leader", "follower", "follower"]
    assert template.images("default") == ["busybox", "debian", "debian"]


def test_every_problem_of_a_template_is_reported_with_its_line(tmp_path: Path) -> None:
    text = 'description = 3\ntimeout = 900\ncolour = "red"\n\n[[nodes]]\ncount = 0\nshell = "bash"\n'
    found = problems_of(write(tmp_path, "bad", text))
    expected = [
        ("bad.toml:3: error: unknown key 'colour'", "Use only title, description"),
        ("bad.toml: error: title must be a string and is required", 'Write title = "...".'),
        ("bad.toml:1: error: description must be a string", ""),
        ("bad.toml:2: error: timeout = 900 is not a number of seconds", "Use 1 to 300."),
        ("bad.toml:7: error: [[nodes]] number 1 has an unknown key 'shell'", "Use only role, count, image, setup."),
        ("bad.toml:6: error: [[nodes]] number 1: count = 0 is not a number of nodes", "Use 1 to 100."),
    ]
    assert len(found) == len(expected), found
    for (where, fix), problem in zip(expected, found, strict=True):
        assert where.split("error: ")[1] in problem and fix in problem, problem
        assert problem.startswith(str(tmp_path / where.split(": error")[0])), problem


def test_a_prelude_that_is_no_string_or_makes_a_setup_too_long_is_reported_with_its_line(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "bad", 'title = "x"\nprelude = 3\n[[nodes]]\nsetup = "true"\n'))
    assert "bad.toml:2: error: prelude must be a string" in problem, problem
    long = "#" * (MAX_SCRIPT - 10)
    text = f'title = "x"\nprelude = "{long}"\n[[nodes]]\nsetup = "echo twenty bytes long"\n[[nodes]]\n'
    (problem,) = problems_of(write(tmp_path, "long", text))
    assert "[[nodes]] number 1: the setup script with the prelude is longer than" in problem, problem


def test_a_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "broken", 'title = "x"\n[[nodes]\n'))
    assert "broken.toml:2: error: TOML syntax error" in problem, problem


def test_a_template_without_nodes_or_with_a_bad_file_name_is_refused(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "empty", 'title = "Nothing"\n'))
    assert "there are no [[nodes]]" in problem, problem
    (problem,) = problems_of(write(tmp_path, "Swarm_3", THREE_NODES))
    assert "the name 'Swarm_3' is not a template name" in problem, problem


@pytest.mark.django_db
def test_the_menu_lists_the_good_templates_with_their_nodes_and_leaves_bad_ones_out(
    client: Client, templates_dir: Path
) -> None:
    write(templates_dir, "three", THREE_NODES)
    write(templates_dir, "broken", "title = ")
    response = client.get("/api/templates/")
    assert response.status_code == 200
    assert response.json() == {
        "templates": [
            {
                "name": "three",
                "title": "Three nodes",
                "description": "node1 sets a value that the others read.",
                "nodes": [
                    {"name": "node1", "role": "leader", "image": "busybox"},
                    {"name": "node2", "role": "follower", "image": "debian"},
                    {"name": "node3", "role": "follower", "image": "debian"},
                ],
            }
        ]
    }
    assert_refused(client.post("/api/templates/"), 405, "method_not_allowed")


BILINGUAL = THREE_NODES.replace(
    'title = "Three nodes"\ndescription = "node1 sets a value that the others read."',
    'title = { en = "Three nodes", ko = "노드 세 개" }\n'
    'description = { en = "node1 sets a value that the others read.", ko = "node1이 정한 값을 나머지가 읽습니다." }',
)
ENGLISH = ("Three nodes", "node1 sets a value that the others read.")
KOREAN = ("노드 세 개", "node1이 정한 값을 나머지가 읽습니다.")


def menu_words(client: Client, **headers: str) -> dict[str, tuple[str, str]]:
    """Each template's title and description as ``GET /api/templates/`` answers with ``headers``."""
    response = client.get("/api/templates/", headers=headers)
    assert response.status_code == 200, response.content
    return {t["name"]: (t["title"], t["description"]) for t in response.json()["templates"]}


@pytest.mark.django_db
def test_the_menu_answers_in_korean_to_a_korean_browser_or_the_korean_switch_and_in_english_otherwise(
    client: Client, templates_dir: Path
) -> None:
    write(templates_dir, "three", BILINGUAL)
    write(templates_dir, "plain", THREE_NODES)  # English only: English in every language
    assert menu_words(client) == {"three": ENGLISH, "plain": ENGLISH}
    assert menu_words(client, accept_language="en-US,en;q=0.9") == {"three": ENGLISH, "plain": ENGLISH}
    assert menu_words(client, accept_language="ko-KR,ko;q=0.9,en;q=0.8") == {"three": KOREAN, "plain": ENGLISH}
    client.cookies[LANGUAGE_COOKIE] = "ko"
    assert menu_words(client, accept_language="en") == {"three": KOREAN, "plain": ENGLISH}
    client.cookies[LANGUAGE_COOKIE] = "en"
    assert menu_words(client, accept_language="ko") == {"three": ENGLISH, "plain": ENGLISH}


@pytest.mark.django_db
def test_the_landing_page_offers_a_template_in_the_visitors_language(client: Client, templates_dir: Path) -> None:
    write(templates_dir, "three", BILINGUAL)
    korean = client.get("/", headers={"Accept-Language": "ko"}).content.decode()
    assert '<option value="three" data-title="노드 세 개">노드 세 개 (노드 3개)</option>' in korean
    assert f'<p class="template-description">{KOREAN[1]}</p>' in korean
    english = client.get("/").content.decode()
    assert '<option value="three" data-title="Three nodes">Three nodes (3 nodes)</option>' in english
    assert f'<p class="template-description">{ENGLISH[1]}</p>' in english


def started_session(client: Client, body: str) -> dict[str, Any]:
    started = start(client, body)
    assert started.status_code == 201, started.content
    session = started.json()
    response = client.get(f"/api/sessions/{session['id']}/", headers={"Authorization": f"Session {session['key']}"})
    assert response.status_code == 200, response.content
    return dict(response.json())


@pytest.mark.django_db
def test_a_template_starts_its_nodes_and_runs_each_setup_in_order_with_the_values_of_the_ones_before(
    client: Client, agent: FakeAgent, templates_dir: Path
) -> None:
    write(templates_dir, "three", THREE_NODES)
    agent.run_replies["node1"] = {"output": "leading\n@set TOKEN=secret-1\n"}
    session = started_session(client, '{"template": "three"}')
    assert [(n["name"], n["image"]) for n in session["instances"]] == [
        ("node1", "busybox"),
        ("node2", "debian"),
        ("node3", "debian"),
    ]
    assert session["image"] == "busybox"
    setup = session["template"]
    assert {k: setup[k] for k in ("name", "title", "state", "step", "total")} == {
        "name": "three",
        "title": "Three nodes",
        "state": "done",
        "step": 3,
        "total": 3,
    }
    assert "== node1 (leader)\nleading\n" in setup["log"], setup
    sandboxes = {s.hostname: s for s in agent.sandboxes.values()}
    ran = [op for op in agent.ops() if op == "run"]
    assert len(ran) == 3
    (first,) = sandboxes["node1"].scripts
    assert "export TOKEN" not in first and first.endswith("echo leading; echo @set TOKEN=secret-1")
    for name in ("node2", "node3"):
        (script,) = sandboxes[name].scripts
        address = sandboxes[name].address
        assert f"export NODE={name}\nexport ADDRESS={address}\n" in script, script
        assert f"export NODE1_ADDRESS={sandboxes['node1'].address}\n" in script, script
        assert "export NODES='node1 node2 node3'\n" in script and "export TOKEN=secret-1\n" in script, script
    runs = [r for r in agent.requests if r.get("op") == "run"]
    assert [r["sandbox"] for r in runs] == [sandboxes[n].sandbox_id for n in ("node1", "node2", "node3")]


@pytest.mark.django_db
def test_a_templates_prelude_starts_each_setup_after_the_variables_and_a_node_without_one_runs_nothing(
    client: Client, agent: FakeAgent, templates_dir: Path
) -> None:
    prelude = 'prelude = """\ngreet() { echo "hello from $1"; }\n"""\n'
    text = THREE_NODES.replace("[[nodes]]", prelude + "[[nodes]]", 1).replace(
        "setup = 'echo \"$NODE joins $NODE1_ADDRESS with $TOKEN\"'", "setup = 'greet \"$NODE\"'"
    )
    write(templates_dir, "greeting", text + '\n[[nodes]]\nrole = "idle"\n')
    agent.run_replies["node1"] = {"output": "@set TOKEN=secret-1\n"}
    session = started_session(client, '{"template": "greeting"}')
    assert session["template"]["state"] == "done", session["template"]
    sandboxes = {s.hostname: s for s in agent.sandboxes.values()}
    (first,) = sandboxes["node1"].scripts
    assert first.endswith('greet() { echo "hello from $1"; }\necho leading; echo @set TOKEN=secret-1'), first
    (second,) = sandboxes["node2"].scripts
    assert second.index("export TOKEN=secret-1\n") < second.index("greet() {") < second.index('greet "$NODE"')
    assert sandboxes["node4"].scripts == []


@pytest.mark.django_db
def test_a_sessions_setup_line_names_its_template_in_the_language_of_whoever_asks(
    client: Client, agent: FakeAgent, templates_dir: Path
) -> None:
    path = write(templates_dir, "three", BILINGUAL)
    started = client.post(
        "/api/sessions/",
        data='{"template": "three"}',
        content_type="application/json",
        headers={"Accept-Language": "ko"},
    )
    assert started.status_code == 201, started.content
    assert started.json()["template"]["title"] == "노드 세 개"
    url, key = f"/api/sessions/{started.json()['id']}/", {"Authorization": f"Session {started.json()['key']}"}

    def title(**headers: str) -> str:
        return str(client.get(url, headers={**key, **headers}).json()["template"]["title"])

    assert title() == "Three nodes"
    assert title(**{"Accept-Language": "ko"}) == "노드 세 개"
    client.cookies[LANGUAGE_COOKIE] = "ko"  # the switch, which the visitor's list of sessions follows too
    assert title() == "노드 세 개"
    (listed,) = client.get("/api/sessions/").json()["sessions"]
    assert listed["template"]["title"] == "노드 세 개"
    path.unlink()  # the template left the host: the English title stored at the start
    assert title() == "Three nodes"


@pytest.mark.django_db
def test_a_failing_setup_stops_at_its_node_says_so_in_the_readers_language_and_leaves_the_session_running(
    client: Client, agent: FakeAgent, templates_dir: Path
) -> None:
    write(templates_dir, "three", THREE_NODES)
    agent.run_replies["node2"] = {"code": 1, "output": "cannot join\n"}
    session = started_session(client, '{"template": "three"}')
    setup = session["template"]
    assert setup["state"] == "failed"
    assert setup["message"] == "node2's setup failed (exit status 1); its output is in the log."
    assert "== node2 (follower)\ncannot join\n" in setup["log"]
    assert [s.hostname for s in agent.sandboxes.values() if s.scripts] == ["node1", "node2"]  # node3 never ran
    assert session["state"] == "active"
    korean = client.get(f"/api/sessions/{session['id']}/", headers={"Accept-Language": "ko"}).json()["template"]
    assert korean["message"] == "node2의 설정이 실패했습니다(종료 상태 1). 출력은 로그에 있습니다."


@pytest.mark.django_db
def test_a_running_setup_names_its_nodes_role_in_the_readers_language(
    client: Client, agent: FakeAgent, templates_dir: Path
) -> None:
    roles = BILINGUAL.replace('role = "leader"', 'role = { en = "leader", ko = "이끔이" }').replace(
        'role = "follower"', 'role = { en = "follower", ko = "따르미" }'
    )
    write(templates_dir, "three", roles)
    menu = client.get("/api/templates/", headers={"Accept-Language": "ko"}).json()["templates"][0]
    assert [node["role"] for node in menu["nodes"]] == ["이끔이", "따르미", "따르미"]
    session = Session.start("busybox", 3600, None)[0]
    template = available()["three"]
    run = SetupRun(session=session, template="three", title="Three nodes", total=3)
    run.message, run.message_key, run.message_holes = (
        "Setting up node2 (follower).",
        "running",
        {"node": "node2", "index": 1},
    )
    assert setup_message(run, template, "ko") == "node2(따르미)를 설정하는 중입니다."
    assert setup_message(run, template, "en") == "Setting up node2 (follower)."
    assert setup_message(run, None, "ko") == "Setting up node2 (follower)."  # the template left: no role to tell


@pytest.mark.django_db
def test_a_session_without_a_template_has_no_template_part(client: Client, agent: FakeAgent) -> None:
    assert "template" not in started_session(client, "{}")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ('{"template": "nope"}', 404, "unknown_template"),
        ('{"template": 3}', 400, "bad_template"),
        ('{"template": "three", "lab": "some-lab"}', 400, "lab_and_template"),
        ('{"template": "other-image"}', 400, "unknown_image"),
    ],
)
def test_a_bad_template_choice_is_refused_with_a_sentence(
    client: Client, agent: FakeAgent, templates_dir: Path, body: str, status: int, code: str
) -> None:
    write(templates_dir, "three", THREE_NODES)
    write(templates_dir, "other-image", THREE_NODES.replace('image = "debian"', 'image = "windows"'))
    refused = assert_refused(start(client, body), status, code)
    if code == "unknown_template":
        assert refused["message"] == "There is no template named 'nope'; choose one of: other-image, three."
    assert not agent.sandboxes


@pytest.mark.django_db
def test_a_template_of_more_nodes_than_a_session_may_have_or_the_host_has_room_for_is_refused(
    client: Client, agent: FakeAgent, templates_dir: Path, settings: Settings
) -> None:
    write(templates_dir, "three", THREE_NODES)
    configure(settings, max_nodes=2)
    body = assert_refused(start(client, '{"template": "three"}'), 409, "too_many_nodes")
    assert body["message"] == "This start has 3 nodes, more than the 2 a session may have."
    configure(settings, max_nodes=5, max_sessions=2)
    assert_refused(start(client, '{"template": "three"}'), 503, "at_capacity")
    assert not agent.sandboxes


def test_the_menu_reads_the_directory_again_when_a_file_changes(settings: Settings, templates_dir: Path) -> None:
    assert loader.available() == {}
    path = write(templates_dir, "three", THREE_NODES)
    assert list(loader.available()) == ["three"]
    path.write_text(THREE_NODES.replace("Three nodes", "Three nodes, renamed"))
    assert loader.available()["three"].title.in_language("en") == "Three nodes, renamed"


@pytest.mark.django_db
def test_an_unreadable_templates_directory_gives_an_empty_menu_and_no_server_error(
    client: Client, agent: FakeAgent, templates_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(templates_dir, "three", THREE_NODES)

    def refused(self: Path, pattern: str) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "glob", refused)
    assert client.get("/api/templates/").json() == {"templates": []}
    body = assert_refused(start(client, '{"template": "three"}'), 404, "unknown_template")
    assert body["message"] == "There is no template named 'three'; this host has none."


def test_the_openapi_document_describes_templates(client: Client) -> None:
    document = client.get("/api/schema/").json()
    listing = document["paths"]["/api/templates/"]["get"]
    assert [(p["in"], p["name"]) for p in listing["parameters"]] == [
        ("cookie", LANGUAGE_COOKIE),
        ("header", "Accept-Language"),
    ]
    for schema in ("Template", "TemplateSetup"):
        title = document["components"]["schemas"][schema]["properties"]["title"]
        assert title["type"] == "string" and "in the request's language" in title["description"], title
    start = document["paths"]["/api/sessions/"]["post"]
    assert "template" in start["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert document["components"]["schemas"]["Session"]["properties"]["template"] == {
        "$ref": "#/components/schemas/TemplateSetup"
    }


@pytest.mark.django_db
def test_a_setup_whose_task_was_lost_is_queued_again_and_finishes_without_running_a_node_twice(
    client: Client, agent: FakeAgent, templates_dir: Path
) -> None:
    write(templates_dir, "three", THREE_NODES)
    session = started_session(client, '{"template": "three"}')
    run = SetupRun.objects.get(pk=session["id"])
    # As if its task was lost after node1's setup: running, at step 1, not moved for a while.
    SetupRun.objects.filter(pk=run.pk).update(state=SetupRun.State.RUNNING, step=1, updated_at=timezone.now())
    assert requeue_stuck_setups() == 0  # it moved recently: its task may still be running
    stale = timezone.now() - STUCK_AFTER - timedelta(seconds=1)
    SetupRun.objects.filter(pk=run.pk).update(updated_at=stale)
    for sandbox in agent.sandboxes.values():
        sandbox.scripts.clear()
    assert requeue_stuck_setups() == 1
    assert SetupRun.objects.get(pk=run.pk).state == SetupRun.State.DONE
    assert sorted(s.hostname for s in agent.sandboxes.values() if s.scripts) == ["node2", "node3"]


@pytest.mark.django_db
def test_a_lab_that_declares_its_nodes_starts_with_all_of_them_and_no_template_part(
    client: Client, agent: FakeAgent, settings: Settings
) -> None:
    lab = Lab.objects.create(slug="cluster", language="en", title="A cluster", image="busybox")
    lab.nodes = ["busybox", "debian", "debian"]
    lab.save()
    Step.objects.create(lab=lab, number=1, title="Look around", html="<p>Look.</p>")
    session = started_session(client, '{"lab": "cluster"}')
    assert [(n["name"], n["image"]) for n in session["instances"]] == [
        ("node1", "busybox"),
        ("node2", "debian"),
        ("node3", "debian"),
    ]
    assert session["lab"]["slug"] == "cluster" and "template" not in session
    assert sorted(s.hostname for s in agent.sandboxes.values()) == ["node1", "node2", "node3"]
    assert client.get("/api/labs/cluster/").json()["nodes"] == ["busybox", "debian", "debian"]
    configure(settings, max_nodes=2)
    assert_refused(start(client, '{"lab": "cluster"}'), 409, "too_many_nodes")
    configure(settings, max_nodes=5, max_sessions=5)  # 3 nodes live: room for 2 more, not for the lab's 3
    assert_refused(start(client, '{"lab": "cluster"}'), 503, "at_capacity")
    assert start(client).status_code == 201
