"""Play with Docker training posts import as labs: front matter, steps at headings, ```.termN```
blocks as run buttons on node N, several nodes, port links as sentences, Liquid and kramdown
leftovers removed with warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from playground import config
from playground.labs import pwd
from playground.labs.loader import LabError

POST = config.REPO_DIR / "tests" / "fixtures" / "pwd" / "2017-07-13-web-on-two-nodes.md"


@pytest.mark.django_db
def test_a_training_post_imports_as_a_lab_of_two_docker_nodes_with_run_buttons_on_each() -> None:
    lab = pwd.import_post(POST)
    assert (lab.slug, lab.origin, lab.image, lab.nodes, lab.difficulty) == (
        "web-on-two-nodes",
        "pwd",
        "docker",
        ["docker", "docker"],
        "beginner",
    )
    assert lab.tags == ["play-with-docker", "linux", "developer", "beginner"]
    assert lab.summary.startswith("Start nginx on one node")
    steps = list(lab.steps.all())
    assert [s.title for s in steps] == ["Start nginx on node 1", "Reach it from node 2", "Clean up"]
    assert all(s.check_script == "" for s in steps), "every step is a reading"
    assert steps[0].html.count('data-action="run" data-node="node1"') == 2
    assert "docker ps --format '{{.Names}} {{.Ports}}'" in steps[0].html.replace("&#x27;", "'")
    assert '<a class="lab-port" href="#" data-port="8080" data-node="node1"' in steps[0].html
    assert ">Open port 8080</a>" in steps[0].html
    assert 'data-node="node2"><pre><code class="language-sh">wget -qO- http://node1:8080/' in steps[1].html
    assert 'data-action="copy"' in steps[1].html
    assert "{" not in lab.intro_html + "".join(s.html.replace("{{.", "") for s in steps)
    assert lab.intro_html.startswith("<p>In this lab you run a web server")


def test_each_kind_of_leftover_is_warned_once_on_its_line() -> None:
    source = pwd.read_post(POST)
    lines = POST.read_text().splitlines()
    found = {p.message.split(" (")[0].split(" removed")[0]: p.line for p in source.problems if p.line}
    assert lines[found["Liquid tags"] - 1] == "{% include toc.html %}"
    assert "{{ site.terms }}" in lines[found["Liquid expressions"] - 1]
    assert lines[found["kramdown attribute lists"] - 1] == "{:.no_toc}"
    assert all(p.warning for p in source.problems)


def test_a_single_terminal_post_has_plain_run_blocks_and_a_block_past_its_terms_is_warned(tmp_path: Path) -> None:
    post = tmp_path / "2020-01-01-one.md"
    post.write_text('---\ntitle: "One"\nterms: 1\n---\n\n## Go\n\n```.term1\nls\n```\n\n```.term2\npwd\n```\n')
    source = pwd.read_post(post)
    assert (source.slug, source.nodes) == ("one", [])
    assert source.steps[0].markdown["en"] == "```sh run\nls\n```\n\n```sh run\npwd\n```\n"
    assert any("terminal 2 but the post has terms: 1" in p.message for p in source.problems)


@pytest.mark.parametrize(
    "text, error",
    [
        ("## Go\n\nno front matter\n", "the post has no front matter"),
        ("---\ntitle: x\n---\n\nno headings\n", "the post has no headings"),
        ("---\ntitle: x\nterms: many\n---\n\n## Go\n", "terms: 'many' is not a number of terminals"),
    ],
)
def test_a_post_that_cannot_be_a_lab_is_an_error_saying_why(tmp_path: Path, text: str, error: str) -> None:
    post = tmp_path / "post.md"
    post.write_text(text)
    with pytest.raises(LabError, match=error):
        pwd.read_post(post)


def test_a_language_that_is_not_a_short_tag_is_an_error() -> None:
    with pytest.raises(LabError, match="the language 'en-Latn-GB-oxendict' is not valid"):
        pwd.read_post(POST, language="en-Latn-GB-oxendict")


@pytest.mark.django_db
def test_labs_import_pwd_loads_a_post_and_prints_its_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("labs", "import-pwd", str(POST), "--slug", "web")
    out = capsys.readouterr().out
    assert "warning: Liquid tags ({% ... %}) removed" in out
    assert "imported web (en): A web server on two nodes, 3 step(s), image docker" in out
