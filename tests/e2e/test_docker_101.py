"""The Docker 101 lab (labs/docker-101) played end to end in a real headless Chromium, in English
and in a Korean browser (``locale="ko-KR"``), as a reader plays it: every step's run buttons
clicked in order (each command typed into the browser's terminal, the next clicked once the prompt
is back; docker login's questions answered from the session page's Registry panel, as step 9
says), the step's port links opened (httpd's "It works!" on 8080 in step 3, 8081-8084 in step 4,
the reader's own page on 8000 in step 7: a new tab each), Check until the step passes, Next, and
Finish to "Lab complete". The steps are read from the folder, so a step added to the lab is played
too.

The stack is offline as a seminar room may be: its registry mirror is seeded (``manage.py registry
seed``) and its upstream is a loopback port that refuses, so the store serves the seeded images
read-only (docs/registry.md, Modes) and every ``docker run httpd`` pulls through it.

The Korean play also saves the README's screenshots (1280x800) into test-artifacts/: the landing
page, a session and the lab mid-way (step 3 passed, ``docker ps`` showing apa02); docs/
screenshot-ko-*.png are copies of them (README.md, 한국어)."""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from playground import config, i18n
from playground.labs import loader
from tests.dockerkit import build_docker_image
from tests.e2e.browsing import ARTIFACTS, check, end_from_page, run, screen, wait_for_line
from tests.e2e.test_docker_seminar import PROMPT, count, typed
from tests.e2e.test_nodes import BADGE
from tests.imagekit import CACHE
from tests.labkit import load_folder
from tests.seedkit import registry_command
from tests.stack import Stack
from tests.waiting import eventually

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = [pytest.mark.e2e, pytest.mark.alongside]

LAB = config.REPO_DIR / "labs" / "docker-101"
SCREEN: ViewportSize = {"width": 1280, "height": 800}  # the README's screenshots
HANGUL = re.compile(r"[\uac00-\ud7a3]")
DOCKER_WAIT = 90.0  # seconds for a block of docker commands on a loaded 2-core test machine
# What each port link of the lab opens, by port: Apache's page, nginx's, the reader's own image's.
PAGES = {
    8080: "It works!",
    8081: "It works!",
    8082: "It works!",
    8083: "It works!",
    8084: "Welcome to nginx!",
    8000: "Hello from my first image!",
}
# The terminal's lines as the shell printed them: a line xterm wrapped at the screen's edge joined again.
LOGICAL_LINES = """() => {
  const buffer = window.playground.term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) {
    const line = buffer.getLine(i);
    const next = buffer.getLine(i + 1);
    const text = line.translateToString(!(next && next.isWrapped));
    if (line.isWrapped && lines.length) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  return lines;
}"""
LOGIN_QUESTIONS = ("Username:", "Password:")  # what docker login asks without -u or --password-stdin
CURSOR_LINE = """() => {
  const buffer = window.playground.term.buffer.active;
  return buffer.getLine(buffer.baseY + buffer.cursorY).translateToString(true);
}"""
CURL_FAILED = re.compile(r"curl: \(\d+\) .*")  # curl's own error line (7: refused, 56: reset)
FINISHED = {"en": "Lab complete", "ko": "실습 완료"}
PASSED = {"en": "Step {} passed.", "ko": "{}단계를 통과했습니다."}
NOT_YET = {"en": "Not yet. What the check found:", "ko": "아직입니다. 확인 결과:"}


@pytest.fixture(scope="module")
def refusing_upstream() -> Iterator[str]:
    """The URL of an upstream that refuses: a loopback port bound and never listened on, so that a
    connection to it is refused (and no other process can take the port while the stack asks it
    again every minute)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


@pytest.fixture(scope="module")
def offline_stack(refusing_upstream: str) -> Iterator[Stack]:
    """A Playground serving the docker image, whose registry mirror holds the seeded hello-world,
    busybox, debian, httpd and nginx and whose upstream refuses."""
    stack = Stack.create(
        PLAYGROUND_REGISTRY_UPSTREAM=refusing_upstream,
        PLAYGROUND_IMAGE_CACHE=str(CACHE),
        PLAYGROUND_DEFAULT_IMAGE="docker",
        PLAYGROUND_WARM_POOL="1",
        PLAYGROUND_REAPER_INTERVAL="3600",
    )
    try:
        registry_command(
            stack.data_dir, CACHE, "seed", "hello-world", "busybox", "debian", "httpd", "nginx", timeout=1200
        )
        build_docker_image(stack)
    except BaseException:
        shutil.rmtree(stack.data_dir, ignore_errors=True)  # never started: stop would not remove it
        raise
    try:
        stack.start()
        load_folder(stack, LAB)  # as the folder is now (the launcher loaded it too, at its start)
        yield stack
        # Read-only all along: the store never took the refusing upstream for an answering one.
        assert "answers now" not in stack.log_path.read_text(errors="replace")
    finally:
        stack.stop()


def test_the_mirror_serves_its_seeded_images_read_only_when_its_upstream_refuses(offline_stack: Stack) -> None:
    eventually(
        lambda: offline_stack.log_path.read_text(errors="replace"),
        "the store saying it serves read-only",
        10,
        until=lambda log: "serving the mirror's own images read-only" in log,
    )


# -- the reader's moves ------------------------------------------------------------------------------
def block_lines(page: Page, index: int) -> int:
    """How many lines the run button ``index`` of the open step types (each gets a prompt back)."""
    code = page.locator("#lab-step-html .lab-code[data-action=run] code").nth(index).inner_text()
    return len([line for line in code.splitlines() if line.strip()])


def cursor_line(page: Page) -> str:
    """The terminal's line under the cursor, stripped: where a program's question waits."""
    return page.evaluate(CURSOR_LINE).strip()


def answer_login(page: Page, question: str) -> None:
    """Type what docker login asks (``Username:`` or ``Password:``) from the session page's
    Registry panel, under the nodes (opened first if it is closed), as the step says to."""
    field = "#registry-user" if question == "Username:" else "#registry-password"
    if not page.is_visible(field):
        page.click("#nodes-toggle")
        page.wait_for_selector(field, state="visible", timeout=5000)
    value = page.inner_text(field).strip()
    assert value, f"the Registry panel shows no {question}"
    run(page, value)
    eventually(
        lambda: cursor_line(page), f"docker login past {question!r}", 10, 0.1, until=lambda line: line != question
    )


def run_block(page: Page, index: int) -> list[str]:
    """Click the open step's run button ``index`` and wait until each line it typed has given the
    prompt back (a heredoc's lines give its '>' prompts), answering docker login's questions on
    the way; the screen's lines from its prompt on."""
    before = screen(page)
    wanted = count(page, PROMPT) + block_lines(page, index)
    page.locator("#lab-step-html .lab-run").nth(index).click()
    while True:
        done, question = eventually(
            lambda: (count(page, PROMPT) >= wanted, cursor_line(page)),
            f"run block {index + 1}'s commands done, or a question of docker login",
            DOCKER_WAIT,
            until=lambda state: state[0] or state[1] in LOGIN_QUESTIONS,
            explain=lambda: "\n".join(screen(page)[-40:]),
        )
        if done:
            return screen(page)[len(before) - 1 :]
        answer_login(page, question)


def run_every_block(page: Page) -> None:
    """Click each run button of the open step in order, each once the previous one's commands are
    done. A server just started may not listen yet: a ``curl`` that failed is run again, as a
    reader would, for at most 10 s."""
    for index in range(page.locator("#lab-step-html .lab-run").count()):
        eventually(
            lambda: run_block(page, index),  # noqa: B023 (called at once, in this iteration)
            f"run block {index + 1} without a curl error",
            10,
            1,
            until=lambda lines: not any(CURL_FAILED.match(line) for line in lines),
            explain=lambda: "\n".join(screen(page)[-40:]),
        )


def check_until_passed(page: Page, number: int, language: str) -> str:
    """Press Check (again every 2 s, at most 30 s) until step ``number`` passes; its output."""
    eventually(
        lambda: check(page),
        f"step {number}'s check passing",
        30,
        2,
        explain=lambda: page.inner_text("#lab-result") + "\n" + "\n".join(screen(page)[-30:]),
        until=lambda state: state == "passed",
    )
    assert page.inner_text("#lab-result-message") == PASSED[language].format(number)
    return page.inner_text("#lab-result-output")


def shown(tab: Page, expected: str) -> str:
    """The tab's text once loaded; reloaded when it lacks ``expected`` (a server just started may not
    answer yet: the port link's page says so, and a reader reloads)."""
    tab.wait_for_load_state()
    text = tab.inner_text("body")
    if expected not in text:
        tab.reload()
    return text


def open_port_links(page: Page) -> list[int]:
    """Open each port link of the open step (a new tab each) and see its page; the ports opened."""
    opened = []
    links = page.locator("#lab-step-html a.lab-port")
    for index in range(links.count()):
        port = int(links.nth(index).get_attribute("data-port") or 0)
        with page.context.expect_page(timeout=10000) as new:
            links.nth(index).click()
        tab = new.value
        tab.wait_for_url(re.compile(rf"^http://{port}-node1-"), timeout=10000)  # the host form
        body = eventually(
            lambda: shown(tab, PAGES[port]),  # noqa: B023 (called at once, in this iteration)
            f"port {port}'s page in its tab",
            10,
            1,
            until=lambda text: PAGES[port] in text,  # noqa: B023
        )
        tab.close()
        assert PAGES[port] in body, (port, tab.url, body)
        opened.append(port)
    return opened


def wait_for_step(page: Page, number: int) -> None:
    page.wait_for_function(f"() => document.getElementById('lab-panel').dataset.step === '{number}'", timeout=30000)


def start_lab(page: Page, stack: Stack, language: str) -> None:
    """From the lab's introduction page, Start: the session page, its lab panel on step 1."""
    page.goto(f"{stack.base_url}/labs/docker-101/?language={language}")
    page.click("#lab-start")
    page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
    page.wait_for_selector("#lab-panel")
    wait_for_line(page, r".*root@node1.*#", 60)
    page.wait_for_function("() => !document.getElementById('lab-check').disabled", timeout=30000)


def play(page: Page, stack: Stack, language: str, screenshot: str | None = None) -> float:
    """Play the lab from Start to "Lab complete"; the seconds it took. ``screenshot``: a path for
    the page once step 3 has passed."""
    steps = loader.read_folder(LAB).steps
    started = time.monotonic()
    start_lab(page, stack, language)
    assert page.get_attribute("#lab-panel", "lang") == language
    assert page.get_attribute(".lab-progress", "aria-valuemax") == str(len(steps))
    for number, step in enumerate(steps, 1):
        wait_for_step(page, number)
        assert page.inner_text("#lab-step-title") == f"{number}. {step.titles[language]}"
        if number == 1:  # Check before doing the step: not yet, and the check's hint in the lab's language
            assert check(page) == "failed"
            assert page.inner_text("#lab-result-message") == NOT_YET[language]
            hint = page.inner_text("#lab-result-output")
            assert "docker-version.txt" in hint and bool(HANGUL.search(hint)) == (language == "ko"), hint
        run_every_block(page)
        ports = open_port_links(page)
        hint = check_until_passed(page, number, language)
        assert bool(HANGUL.search(hint)) == (language == "ko"), (number, hint)  # the check speaks the lab's
        assert page.get_attribute(".lab-progress", "aria-valuenow") == str(number)
        if number == 3:
            assert ports == [8080]
            listed = page.evaluate(LOGICAL_LINES)
            assert any(re.search(r"\shttpd\s.*0\.0\.0\.0:8080->80/tcp.*apa02", line) for line in listed), listed
            if screenshot:
                page.screenshot(path=screenshot)
        if number == 7:
            assert ports == [8000]
        page.click("#lab-next")  # the last step's is Finish
    page.wait_for_selector("#lab-finish", state="visible")
    assert FINISHED[language] in page.inner_text("#lab-finish")
    return time.monotonic() - started


def test_the_docker_101_lab_passes_end_to_end_in_english(browser: Browser, offline_stack: Stack) -> None:
    context = browser.new_context(viewport=SCREEN, locale="en-US")
    try:
        page = context.new_page()
        took = play(page, offline_stack, "en")
        print(f"docker-101 played in English in {took:.1f} s")
        end_from_page(page)
    finally:
        context.close()


def test_the_docker_101_lab_passes_end_to_end_in_korean_and_the_readme_screenshots_are_taken(
    browser: Browser, offline_stack: Stack
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=SCREEN, locale="ko-KR")
    try:
        page = context.new_page()
        page.goto(offline_stack.base_url + "/")
        assert page.get_attribute("html", "lang") == "ko"
        page.screenshot(path=str(ARTIFACTS / "screenshot-ko-landing.png"))
        page.get_by_role("button", name=i18n.translate("ko", "landing.start")).click()
        page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
        page.wait_for_function("() => window.playground && window.playground.term")
        wait_for_line(page, r".*root@node1.*#", 60)
        typed(page, "docker run hello-world")
        wait_for_line(page, "Hello from Docker, inside your Playground sandbox!", 1)
        typed(page, "docker run --name web -d -p 8080:80 nginx")  # pulled through the mirror
        page.wait_for_selector(BADGE.format("node1", 8080), timeout=10000)
        typed(page, "curl -s localhost:8080 | grep -m1 -o 'Welcome to nginx!'; echo '안녕하세요, 도커!'")
        wait_for_line(page, "안녕하세요, 도커!", 1)
        page.screenshot(path=str(ARTIFACTS / "screenshot-ko-session.png"))
        end_from_page(page)
        page.wait_for_selector("#overlay", state="visible")

        took = play(page, offline_stack, "ko", screenshot=str(ARTIFACTS / "screenshot-ko-docker-101.png"))
        print(f"docker-101 played in Korean in {took:.1f} s")
        end_from_page(page)
    finally:
        context.close()
