"""Labs in a real headless Chromium against a real stack: the catalogue, the shipped lab end to end
in both languages (run buttons, Check, the finish page), a failing check's hint, skip to step N,
checks cut at their limits while the page stays responsive, and no script from a lab or a check
ever running in the page."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.browsing import check, lab_ready, run, wait_for_line
from tests.labkit import add_lab, load_folder, step
from tests.stack import Stack
from tests.waiting import eventually

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = [pytest.mark.e2e, pytest.mark.alongside]

SHIPPED = "containers-from-the-inside"
PWNED = "() => window.__pwned === undefined"

# Step 3 of the shipped lab asks the reader to write their limits into a file by hand.
WRITE_LIMITS = (
    "printf 'memory=%s\\npids=%s\\n' $(($(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)/1048576))"
    " $(cat /sys/fs/cgroup/pids/pids.max) > /root/limits.txt"
)


@pytest.fixture
def page(page: Page) -> Page:
    """The shared page, recording dialogs (dismissed) and script errors for the assertions."""
    page.dialogs = []  # type: ignore[attr-defined]
    page.problems = []  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))  # type: ignore
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))  # type: ignore
    page.on("pageerror", lambda error: page.problems.append(str(error)))  # type: ignore
    return page


def start_lab(page: Page, stack: Stack, slug: str = SHIPPED, language: str = "en") -> None:
    """From the lab's introduction page, Start: the session page with the lab panel, step 1 open."""
    page.goto(f"{stack.base_url}/labs/{slug}/?language={language}")
    page.click("#lab-start")
    try:
        page.wait_for_url(re.compile(r".*/s/[0-9a-f-]{36}/$"))
    except Exception:
        raise AssertionError(
            f"no session page; the page says: {page.inner_text('main')}; errors: {page.problems}"
        ) from None  # type: ignore[attr-defined]
    page.wait_for_selector("#lab-panel")
    wait_for_line(page, r".*root@node1.*#")
    lab_ready(page)


def check_until_passed(page: Page, timeout: float = 45) -> None:
    """Press Check every 2 s until it passes."""
    eventually(
        lambda: check(page),
        "the lab's check passes",
        timeout,
        2,
        explain=lambda: page.inner_text("#lab-result"),
        until=lambda state: state == "passed",
    )


def run_every_command(page: Page) -> None:
    """Click each run button of the open step, in order, as a reader would."""
    buttons = page.locator("#lab-step-html .lab-run")
    for index in range(buttons.count()):
        buttons.nth(index).click()
        time.sleep(0.4)  # a reader's pace: each command is typed before the next is clicked


# -- the catalogue ---------------------------------------------------------------------------------
def test_the_landing_page_leads_to_the_catalogue_which_searches_and_filters(page: Page, stack: Stack) -> None:
    page.goto(stack.base_url + "/")
    page.click("a[href='/labs/']")
    page.wait_for_url(stack.base_url + "/labs/")
    cards = page.locator(f".lab-card[data-slug='{SHIPPED}']")
    assert cards.count() == 2
    page.select_option("#lab-language", "ko")
    page.wait_for_function(f"() => document.querySelectorAll(\".lab-card[data-slug='{SHIPPED}']\").length === 1")
    assert "컨테이너 속 들여다보기" in page.inner_text("#lab-cards")
    page.select_option("#lab-language", "")
    page.fill("#lab-q", "no lab is called this")
    page.wait_for_selector(".lab-empty")
    page.fill("#lab-q", "namespaces")
    page.wait_for_selector(f".lab-card[data-slug='{SHIPPED}']")
    page.click(".lab-card[data-language='en'] a")
    page.wait_for_selector("#lab-start")
    assert page.inner_text("h1") == "Containers from the inside"


# -- acceptance 1: run, check, hint -----------------------------------------------------------------
def test_a_reader_runs_a_command_sees_a_hint_then_passes_the_step(page: Page, stack: Stack) -> None:
    start_lab(page, stack)
    assert page.inner_text("#lab-step-title").startswith("1.")
    page.locator("#lab-step-html .lab-run").first.click()  # ls -l /proc/self/ns
    wait_for_line(page, r".*uts -> uts:\[\d+\].*")
    assert check(page) == "failed"
    assert "There is no /root/namespaces.txt yet" in page.inner_text("#lab-result-output")
    page.locator("#lab-step-html .lab-run").last.click()  # ls -l /proc/self/ns > /root/namespaces.txt
    check_until_passed(page, timeout=10)  # once the shell has run it
    assert page.get_attribute(".lab-progress", "aria-valuenow") == "1"


def test_the_split_between_steps_and_terminal_moves_with_the_keyboard_and_the_terminal_refits(
    page: Page, stack: Stack
) -> None:
    start_lab(page, stack)
    before = page.evaluate("() => window.playground.term.cols")
    width = int(page.get_attribute("#lab-splitter", "aria-valuenow") or 0)
    page.focus("#lab-splitter")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert int(page.get_attribute("#lab-splitter", "aria-valuenow") or 0) == width + 15
    page.wait_for_function(f"() => window.playground.term.cols < {before}")
    box = page.locator("#lab-splitter").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 3, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(400, box["y"] + 200, steps=5)
    page.mouse.up()
    assert int(page.get_attribute("#lab-splitter", "aria-valuenow") or 0) < width


# -- acceptance 2: skip to step N --------------------------------------------------------------------
def test_skip_to_the_last_step_does_the_earlier_ones_and_its_check_behaves_as_for_a_reader(
    page: Page, stack: Stack
) -> None:
    start_lab(page, stack)
    page.select_option("#lab-skip-to", "6")
    page.click("#lab-skip")
    page.wait_for_function("() => document.getElementById('lab-panel').dataset.step === '6'", timeout=90000)
    assert "Done for you: step 1, 2, 3, 4, 5." in page.inner_text("#lab-result")
    assert page.get_attribute(".lab-progress", "aria-valuenow") == "5"
    run(page, "ls /root")
    wait_for_line(page, r".*limits\.txt\s+namespaces\.txt\s+processes\.txt.*")
    assert check(page) == "failed"  # nothing of step 6 done yet
    assert "There is no /hello.txt yet" in page.inner_text("#lab-result-output")
    run_every_command(page)
    check_until_passed(page)
    page.click("#lab-next")  # Finish
    page.wait_for_selector("#lab-finish", state="visible")


# -- acceptance 4: limits and no script ---------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_labs(stack: Stack) -> None:
    """A lab as an author could write it (through the real loader) and one straight in the
    database with unsanitised HTML (the page's own wall), both with checks that misbehave."""
    folder = Path(tempfile.mkdtemp(prefix="pg-lab-", dir="/tmp"))
    try:
        os.chmod(folder, 0o755)
        (folder / "steps").mkdir(mode=0o755)
        (folder / "lab.toml").write_text(
            'languages = ["en"]\nimage = "busybox"\nduration = 5\ndifficulty = "beginner"\ntags = ["test"]\n'
            'slug = "hostile-markdown"\n[title]\nen = "Hostile markdown"\n[summary]\nen = "Scripts in markdown."\n'
            '[[steps]]\nname = "one"\n'
        )
        (folder / "steps" / "one.en.md").write_text(
            '# One\n\n<script>window.__pwned = 1</script>\n\n<img src=x onerror="window.__pwned = 2">\n\n'
            "[link](javascript:window.__pwned=3)\n\n```sh run\necho safe\n```\n"
        )
        (folder / "steps" / "one.check.sh").write_text("echo '<img src=x onerror=\"window.__pwned=4\">'; exit 1\n")
        for path in folder.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        load_folder(stack, folder)
    finally:
        shutil.rmtree(folder)
    raw = (
        '<p>Raw</p><script>window.__pwned = 5</script><img src=x onerror="window.__pwned = 6">'
        '<a href="javascript:window.__pwned=7">x</a><div class="lab-code" data-action="run" '
        'onmouseover="window.__pwned=8"><pre><code>echo raw</code></pre></div><iframe srcdoc="<script>'
        'parent.__pwned=9</script>"></iframe>'
    )
    add_lab(
        stack,
        "hostile-raw",
        [
            step("Raw", html=raw, check="printf '<script>window.__pwned=10</script><b>bold?</b>\\n'; exit 1"),
            step("Forever", check="echo spinning; while :; do :; done"),
            step("Flood", check="head -c 100000000 /dev/zero | tr '\\0' y"),
        ],
        intro_html='<p>Intro</p><img src=x onerror="window.__pwned = 11">',
        finish_html='<img src=x onerror="window.__pwned = 12">',
    )


def test_no_script_from_a_lab_or_a_check_runs_in_the_page(page: Page, stack: Stack, hostile_labs: None) -> None:
    for slug, output in (
        ("hostile-markdown", '<img src=x onerror="window.__pwned=4">'),
        ("hostile-raw", "<script>window.__pwned=10</script><b>bold?</b>"),
    ):
        start_lab(page, stack, slug)
        page.locator("#lab-step-html .lab-run").first.click()
        wait_for_line(page, "safe" if slug == "hostile-markdown" else "raw")
        assert check(page) == "failed"
        assert page.inner_text("#lab-result-output").strip() == output  # shown as text
        assert page.locator("#lab-panel script, #lab-panel iframe, #lab-panel img[onerror]").count() == 0
        assert page.locator("#lab-panel a[href^='javascript']").count() == 0
        page.hover("#lab-step-html .lab-code")
        time.sleep(0.5)  # time for a planted handler to fire: nothing may happen, so there is nothing to await
        assert page.evaluate(PWNED), page.evaluate("() => window.__pwned")
        assert page.dialogs == []  # type: ignore[attr-defined]
    page.goto(f"{stack.base_url}/labs/hostile-raw/")
    time.sleep(0.5)  # time for a planted script to run: nothing may happen, so there is nothing to await
    assert page.evaluate(PWNED), page.evaluate("() => window.__pwned")
    assert "Intro" in page.inner_text("#lab-intro")


def test_a_check_that_loops_forever_is_stopped_with_a_clear_message_and_the_terminal_answers_meanwhile(
    page: Page, stack: Stack, hostile_labs: None
) -> None:
    start_lab(page, stack, "hostile-raw")
    page.click("#lab-next")
    page.wait_for_function("() => document.getElementById('lab-panel').dataset.step === '2'")
    started = time.monotonic()
    page.click("#lab-check")
    page.wait_for_function("() => document.getElementById('lab-check').getAttribute('aria-busy') === 'true'")
    run(page, "echo $((6*7))")
    wait_for_line(page, "42", timeout=5)  # while the check spins
    assert time.monotonic() - started < 8
    page.wait_for_function("() => document.getElementById('lab-result').dataset.state === 'failed'", timeout=30000)
    assert "did not finish within its time limit" in page.inner_text("#lab-result-message")
    assert page.inner_text("#lab-result-output").strip() == "spinning"
    page.click("#lab-next")
    page.wait_for_function("() => document.getElementById('lab-panel').dataset.step === '3'")
    assert check(page) == "failed"
    assert "printed too much" in page.inner_text("#lab-result-message")
    assert page.inner_text("#lab-result-output").startswith("yyyy")


# -- acceptance 5: the shipped lab, end to end, in both languages ------------------------------------
@pytest.mark.parametrize(
    "language, check_label, finish_title",
    [
        ("en", "Check", "Lab complete"),
        ("ko", "확인", "실습 완료"),
    ],
)
def test_the_shipped_lab_passes_end_to_end(
    page: Page, stack: Stack, language: str, check_label: str, finish_title: str
) -> None:
    start_lab(page, stack, SHIPPED, language)
    assert page.get_attribute("#lab-panel", "lang") == language
    assert page.inner_text("#lab-check") == check_label
    total = int(page.get_attribute(".lab-progress", "aria-valuemax") or 0)
    assert total == 6
    for number in range(1, total + 1):
        assert page.get_attribute("#lab-panel", "data-step") == str(number)
        run_every_command(page)
        if number == 3:
            run(page, WRITE_LIMITS)
        if number == 4:
            # The sleeps hold every process slot for ten seconds, and then as zombies until the
            # shell (busybox ash, PID 1) reaps them, which it does at its next prompt.
            time.sleep(11)
            run(page, "echo reaped")
            wait_for_line(page, "reaped", timeout=30)
        check_until_passed(page)
        assert page.get_attribute(".lab-progress", "aria-valuenow") == str(number)
        page.click("#lab-next")
        if number < total:
            page.wait_for_function(
                f"() => document.getElementById('lab-panel').dataset.step === '{number + 1}'", timeout=30000
            )
    page.wait_for_selector("#lab-finish", state="visible")
    assert finish_title in page.inner_text("#lab-finish")
    assert page.evaluate(PWNED)
