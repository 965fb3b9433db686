"""The shipped Docker 101 lab (labs/docker-101) as its readers get it, in English and Korean: every
step has its text, check and solve, the same commands in both languages, port links that parse,
and hints in the reader's language. Its checks against a real engine: tests/integration/test_docker_101.py."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from playground import config
from playground.labs import loader, render
from playground.labs.metadata import StepSource
from playground.labs.models import Lab

FOLDER = config.REPO_DIR / "labs" / "docker-101"
STEPS = [
    "01-docker-version",
    "02-hello-world",
    "03-apache",
    "04-more-servers",
    "05-stop-and-remove",
    "06-images",
    "07-dockerfile",
    "08-volumes",
    "09-push-pull",
]
# The ports each step's text links to (docs/labs.md, port links), node on screen.
PORT_LINKS = {"03-apache": ["8080"], "04-more-servers": ["8081", "8082", "8083", "8084"], "07-dockerfile": ["8000"]}
RUN_BLOCK = re.compile(r'<div class="lab-code" data-action="run"><pre><code[^>]*>(.*?)</code></pre></div>', re.S)
PORT_LINK = re.compile(r'<a class="lab-port" href="#" data-port="(\d+)"')
HANGUL = re.compile(r"[\uac00-\ud7a3]")
source = loader.read_folder(FOLDER)


def test_it_validates_as_a_docker_lab_in_english_and_korean_with_its_nine_steps_in_order() -> None:
    assert source.problems == []
    assert (source.slug, source.image, source.languages) == ("docker-101", "docker", ["en", "ko"])
    assert [step.name for step in source.steps] == STEPS
    assert set(source.intro) == set(source.finish) == {"en", "ko"}


@pytest.mark.parametrize("step", source.steps, ids=lambda s: s.name)
def test_each_step_has_a_title_text_check_and_solve_in_both_languages(step: StepSource) -> None:
    assert set(step.titles) == set(step.markdown) == {"en", "ko"}
    assert all(step.titles.values()), step.titles
    assert HANGUL.search(step.titles["ko"] + step.markdown["ko"])
    assert step.scripts["check"].strip() and step.scripts["solve"].strip()
    # A reader's engine is theirs: nothing is done behind their back. Step 9's setup only writes
    # ~/registry.env (the session registry's address and the reader's namespace).
    if step.name == "09-push-pull":
        setup = [line for line in step.scripts["setup"].splitlines() if not line.startswith("#")]
        assert "docker" not in " ".join(setup) and "/root/registry.env" in " ".join(setup)
    else:
        assert "setup" not in step.scripts


@pytest.mark.parametrize("step", source.steps, ids=lambda s: s.name)
def test_both_languages_run_the_same_commands(step: StepSource) -> None:
    english = RUN_BLOCK.findall(render.render(step.markdown["en"]))
    assert english, step.name
    assert RUN_BLOCK.findall(render.render(step.markdown["ko"])) == english


@pytest.mark.parametrize("step", source.steps, ids=lambda s: s.name)
def test_the_port_links_parse_in_both_languages(step: StepSource) -> None:
    for language in ("en", "ko"):
        html = render.render(step.markdown[language])
        assert PORT_LINK.findall(html) == PORT_LINKS.get(step.name, []), (step.name, language)
        assert "](port:" not in html, (step.name, language)  # no link left as text


def hint_calls(script: str) -> list[list[str]]:
    """Each ``hint EN KO`` call of a script (continued lines joined), split as the shell would."""
    joined = script.replace("\\\n", " ")
    return [shlex.split(line.strip())[1:] for line in joined.splitlines() if line.strip().startswith("hint ")]


@pytest.mark.parametrize("step", source.steps, ids=lambda s: s.name)
def test_every_hint_of_a_check_is_written_in_english_then_korean(step: StepSource) -> None:
    calls = hint_calls(step.scripts["check"])
    assert len(calls) >= 2, step.name  # at least one hint of what is missing, and the passing line
    for english, korean in calls:
        assert not HANGUL.search(english) and HANGUL.search(korean), (english, korean)


@pytest.fixture
def no_engine(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``docker`` and ``curl`` fail, as in a sandbox whose engine is not up."""
    for name in ("docker", "curl"):
        fake = tmp_path / name
        fake.write_text("#!/bin/sh\nexit 1\n")
        fake.chmod(0o755)
    return {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}


@pytest.mark.parametrize("step", source.steps, ids=lambda s: s.name)
@pytest.mark.parametrize(("language", "lines"), [("en", 1), ("ko", 1), ("", 2)])
def test_a_check_that_fails_prints_its_hint_in_the_labs_language_or_in_both(
    step: StepSource, language: str, lines: int, no_engine: dict[str, str]
) -> None:
    env = dict(no_engine, PLAYGROUND_LAB_LANGUAGE=language) if language else no_engine
    result = subprocess.run(["sh", "-c", step.scripts["check"]], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0, result.stdout
    said = result.stdout.splitlines()
    assert len(said) == lines, said
    if language == "en":
        assert not HANGUL.search(said[0]), said
    if language == "ko":
        assert HANGUL.search(said[0]), said


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "title"), [("en", "Getting started with Docker"), ("ko", "도커 시작하기")])
def test_it_loads_in_each_language_with_the_port_links_rendered(language: str, title: str) -> None:
    lab = loader.load_folder(FOLDER, language)
    assert (lab.slug, lab.language, lab.title, lab.image) == ("docker-101", language, title, "docker")
    assert {(row.slug, row.language) for row in Lab.objects.all()} >= {("docker-101", "en"), ("docker-101", "ko")}
    steps = list(lab.steps.order_by("number"))
    assert len(steps) == len(STEPS)
    assert all(s.check_script and s.solve_script and s.html for s in steps)
    assert '<a class="lab-port" href="#" data-port="8080"' in steps[2].html
    assert "docker push" in lab.finish_html  # what step 9 did, in the summary


def test_no_check_makes_the_state_it_checks() -> None:
    # A check only looks (docker inspect, ps, image ls, curl): no line of one runs, builds,
    # removes or pulls anything, or writes under /root (the commands in its hints are text).
    makers = ("docker run", "docker build", "docker rm", "docker pull", "docker create", "docker start", "docker load")
    for step in source.steps:
        for line in step.scripts["check"].splitlines():
            assert not line.strip().startswith(makers) and "> /root" not in line, (step.name, line)
