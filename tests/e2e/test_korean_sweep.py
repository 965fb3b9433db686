"""No English left for a Korean visitor: a Chromium whose language is Korean (``locale="ko-KR"``)
goes through every page and every panel, menu and dialog a visitor can open (the landing page
and its template menu, the labs catalogue, a lab's page, a session's page with its nodes, a
port's menu, the open-port, download and upload forms, a second node and its removal, a new
terminal tab, the context menu, search, the theme and presentation toggles, the end-session
confirmation and the end screen, the landing page's list of the visitor's sessions, a lab
session with its panel) and reads what it shows: the visible text, the ``title``, ``aria-label``,
``placeholder`` and ``alt`` of visible elements, the document's title, and every text that
appeared in passing (toasts, status lines: a MutationObserver records them).

Left out, as not the UI's words: the terminal itself (xterm's element: what the shell prints),
code (``code``, ``pre``, ``kbd``, ``samp``: commands, paths, image and node names), text marked
as being in another language (``lang``: the language switch's "English", a lab written in
English, and the document's title where it quotes such a heading), text marked
``translate="no"`` (identifiers such as a lab's tags) and what a lab's author wrote (its summary
and its Markdown: intro, steps, finish), which is the lab's and in its language. What remains is
searched for Latin words; the few allowed are names and notations a Korean page writes in Latin
letters too (ALLOWED), and URLs, paths, host names and words with digits (node1) are skipped.
The test fails listing each English text and where it was seen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from playground import i18n
from tests.e2e.browsing import VIEWPORT, run, stack_with_templates, wait_for_line
from tests.stack import Stack

pytestmark = pytest.mark.e2e

LAB = "containers-from-the-inside"
SESSION_URL = re.compile(r".*/s/[0-9a-f-]{36}/$")

# Two session templates written in both languages, as a template for Korean visitors is: one whose
# setup succeeds, one whose second node's setup fails (its setup line's failure and its log).
PAIR = """
title = { en = "A busybox pair", ko = "busybox 두 대" }
description.en = "The second node learns the first one's address."
description.ko = "둘째 노드가 첫째 노드의 주소를 받습니다."
image = "busybox"

[[nodes]]
role = { en = "first", ko = "첫째" }
setup = 'echo "@set FIRST=$ADDRESS"; echo "$NODE is ready"'

[[nodes]]
role = { en = "second", ko = "둘째" }
setup = 'echo "$FIRST" > /root/first; echo "$NODE is ready"'
"""
BROKEN = """
title = { en = "A pair that breaks", ko = "고장 나는 두 대" }
image = "busybox"

[[nodes]]
role = { en = "first", ko = "첫째" }

[[nodes]]
role = { en = "second", ko = "둘째" }
setup = 'echo "cannot go on here"; exit 3'
"""

# Latin words a Korean page writes as they are: product and tool names, protocols and units, the
# keys of a keyboard (printed on it in Latin letters), the shell's user name.
ALLOWED = frozenset(
    word.lower()
    for word in (
        # names of products and tools (BusyBox: the image the sessions run, named where no <code> is)
        "Playground", "Docker", "Linux", "xterm", "JavaScript", "BusyBox", "tar",
        # protocols, units and abbreviations a Korean text keeps as they are
        "HTTP", "HTTPS", "DNS", "ID", "CPU", "KiB", "MiB", "GiB", "TiB",
        # keyboard keys, printed on the keys in Latin letters
        "Ctrl", "Shift", "Insert", "Enter", "Escape",
        # the sandbox's user
        "root",
    )
)  # fmt: skip

# What is skipped inside a text before looking for words: URLs, paths, host names and dotted
# names, and words with digits or an underscore (node1, pg-3f2a, 8080-node1-..., manager_1).
SKIPPED = re.compile(
    r"[a-z][a-z0-9+.-]*://\S+"  # URLs
    r"|(?<![\w/])/[\w.~<>{}/-]*"  # absolute paths
    r"|\b[\w.-]+/[\w./-]*"  # relative paths (docs/swarm.md)
    r"|(?<![\w-])--?[A-Za-z][\w-]*(?:=\S*)?"  # a command's options (--publish, -u, --mode=host)
    r"|\b(?:Ctrl|Shift|Alt)(?:\+\S+)+"  # keyboard shortcuts (Ctrl+Shift+F)
    r"|\b[\w-]+(?:\.[\w-]+)+\b"  # host names, dotted names, file names
    r"|\b\S*[\d_]\S*"  # words with digits or underscores
)
HANGUL = re.compile("[\uac00-\ud7a3]")
LATIN_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")

# The page's UI text, as [where, text] pairs: text nodes of visible elements, the attributes that
# name or describe visible elements, the options of visible menus, and the document's title.
# `ui` decides what belongs to the UI (not the terminal, code, text in another language, identifiers).
UI_TEXT = """() => {
  const ui = window.__sweepUi;
  // The document's title, less a heading it quotes that is in another language (an English lab's title).
  let title = document.title;
  for (const heading of document.querySelectorAll('h1')) {
    if (!ui(heading)) title = title.replace(heading.textContent.trim(), '');
  }
  const seen = [['document title', title]];
  const visible = (element) => element.checkVisibility({visibilityProperty: true, opacityProperty: false});
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    const shown = parent && (parent.closest('select') ? visible(parent.closest('select')) : visible(parent));
    if (shown && ui(parent) && node.data.trim()) seen.push([window.__sweepWhere(parent), node.data.trim()]);
  }
  for (const element of document.body.querySelectorAll('[title], [aria-label], [placeholder], [alt]')) {
    if (!visible(element) || !ui(element)) continue;
    for (const name of ['title', 'aria-label', 'placeholder', 'alt']) {
      const value = element.getAttribute(name);
      if (value && value.trim()) seen.push([`${window.__sweepWhere(element)} @${name}`, value.trim()]);
    }
  }
  return seen;
}"""

# Installed in every page before its scripts: the UI test (`__sweepUi`), a short description of
# an element (`__sweepWhere`), and a record of every text that appears (`__sweepPassing`), so that
# a toast or a status line gone before a sweep is still read.
INIT = """(() => {
  const EXCLUDED = '#terminal, [id^="terminal-"], .xterm, code, pre, kbd, samp, script, style, noscript, template, '
    + '[translate="no"], .lab-html, .lab-summary, .lab-intro > .tagline';
  window.__sweepUi = (element) => {
    if (element.closest(EXCLUDED)) return false;
    const marked = element.closest('[lang]');
    return !marked || marked.lang.toLowerCase().startsWith('ko');
  };
  window.__sweepWhere = (element) => {
    const parts = [];
    for (let e = element; e && e !== document.body && parts.length < 3; e = e.parentElement) {
      parts.unshift(e.id ? `#${e.id}` : e.classList.length ? `${e.localName}.${e.classList[0]}` : e.localName);
      if (e.id) break;
    }
    return parts.join(' > ');
  };
  window.__sweepPassing = [];
  const visible = (element) => element.checkVisibility({visibilityProperty: true, opacityProperty: false});
  const record = (text) => {
    const element = text.parentElement;
    if (!element || !element.isConnected || !text.data.trim()) return;
    if (!window.__sweepUi(element) || !visible(element)) return;
    window.__sweepPassing.push([`${window.__sweepWhere(element)} (in passing)`, text.data.trim()]);
  };
  const recordAll = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return record(node);
    if (node.nodeType !== Node.ELEMENT_NODE || !window.__sweepUi(node)) return;
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) record(text);
  };
  new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      if (mutation.type === 'characterData') recordAll(mutation.target);
      else for (const node of mutation.addedNodes) recordAll(node);
    }
  }).observe(document, {childList: true, characterData: true, subtree: true});
})();"""


def english_words(text: str) -> list[str]:
    """The Latin words of ``text`` that are not allowed (ALLOWED), once URLs, paths and the like are skipped."""
    return [word for word in LATIN_WORD.findall(SKIPPED.sub(" ", text)) if word.lower() not in ALLOWED]


@dataclass
class Sweep:
    """What English a Korean visitor was shown, by view."""

    page: Page
    found: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (where, text): the views
    views: list[str] = field(default_factory=list)

    def __call__(self, view: str) -> None:
        """Reads the page as it is now (and what appeared in passing since the last read) for ``view``."""
        self.views.append(view)
        texts = self.page.evaluate(UI_TEXT) + self.page.evaluate(
            "() => window.__sweepPassing ? window.__sweepPassing.splice(0) : []"
        )
        assert any(HANGUL.search(text) for _, text in texts), f"{view}: no Korean read at all: {texts}"
        for where, text in texts:
            if english_words(text):
                self.found.setdefault((where, text), set()).add(view)

    def report(self) -> str:
        lines = [f"English shown to a Korean visitor ({len(self.found)} texts; views read: {', '.join(self.views)}):"]
        for (where, text), views in sorted(self.found.items(), key=lambda item: sorted(item[1])[0]):
            words = " ".join(dict.fromkeys(english_words(text)))
            lines.append(f"  {text!r}  [{words}]\n      at {where}; in {', '.join(sorted(views))}")
        return "\n".join(lines)


@pytest.fixture
def korean(browser: Browser) -> Iterator[BrowserContext]:
    """A context whose language is Korean, with the sweep's script in each of its pages."""
    context = browser.new_context(viewport=VIEWPORT, locale="ko-KR")
    context.add_init_script(INIT)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def templates_stack() -> Iterator[Stack]:
    """A stack whose templates directory (readable by the web user) holds ``pair`` and ``broken``."""
    with stack_with_templates({"pair": PAIR, "broken": BROKEN}) as stack:
        yield stack


def ko(key: str, **params: object) -> str:
    return i18n.translate("ko", key, **params)


def sweep_landing(page: Page, sweep: Sweep, base: str) -> None:
    page.goto(base + "/")
    assert page.get_attribute("html", "lang") == "ko"
    sweep("landing page")
    if page.locator("#choice-template").count():  # the templates' side: each template's menu entry and its about
        page.check("#choice-template")
        for name in page.eval_on_selector_all("#template option", "(options) => options.map((o) => o.value)"):
            page.select_option("#template", name)
            page.wait_for_selector(f".template-about[data-template='{name}']", state="visible")
            sweep(f"landing page, template {name}")
        page.check("#choice-node")
    if page.locator("select#image").count():
        page.focus("select#image")
        sweep("landing page, image menu")


def sweep_labs(page: Page, sweep: Sweep, base: str) -> None:
    page.goto(base + "/labs/")
    sweep("labs catalogue")
    page.fill("#lab-q", "아무 실습도 이 이름이 아님")
    page.click("#lab-filters button[type=submit]")
    page.wait_for_selector(".lab-empty")
    sweep("labs catalogue, nothing found")
    page.goto(f"{base}/labs/{LAB}/?language=ko")
    page.wait_for_selector("#lab-start")
    sweep("lab page")
    page.goto(f"{base}/labs/{LAB}/?language=en")  # the lab in English: its text is (lang="en"), not the page's
    page.wait_for_selector("#lab-start")
    sweep("lab page of the lab in English")


def start_session(page: Page, sweep: Sweep, base: str) -> None:
    page.goto(base + "/")
    page.get_by_role("button", name=ko("landing.start")).click()
    page.wait_for_url(SESSION_URL)
    page.wait_for_function("() => window.playground && window.playground.term")
    wait_for_line(page, r".*root@node1.*#")
    page.wait_for_selector("#node-list li[data-node='node1']")
    page.wait_for_selector("#registry-panel", state="visible")
    sweep("session page")
    page.click('#registry-panel [data-copy="login"]')
    page.wait_for_selector("#toasts :nth-child(1)")
    sweep("registry panel, login copied")


def sweep_nodes_and_ports(page: Page, sweep: Sweep) -> None:
    """A listener's port badge and its menu, the open-port form, the download and upload forms."""
    run(page, "mkdir -p /tmp/www && echo hi > /tmp/www/index.html && busybox httpd -p 8080 -h /tmp/www")
    badge = "#node-list li[data-node='node1'] .port-badge[data-port='8080']"
    page.wait_for_selector(badge, timeout=10000)
    sweep("session page, a port badge")
    page.click(f"{badge} .port-more")
    page.wait_for_selector(f"{badge} .port-share", state="visible")
    sweep("port menu")
    page.check(f"{badge} .port-share")
    page.wait_for_selector(f"{badge}[data-shared='true'] .port-url", state="visible")
    sweep("port menu, shared")
    page.uncheck(f"{badge} .port-share")
    page.keyboard.press("Escape")

    page.fill("#port-open", "99999")  # not a port: the form says so
    page.press("#port-open", "Enter")
    page.wait_for_selector("#port-open-error", state="visible")
    sweep("open-port form, not a port")
    page.fill("#port-open", "")

    page.fill("#download-path", "/no/such/file")
    page.press("#download-path", "Enter")
    page.wait_for_function(
        "() => window.__sweepPassing.some(([where]) => where.includes('toast') || where.includes('transfer'))"
    )
    sweep("download form, no such file")

    page.set_input_files("#upload-input", files=[{"name": "hello.txt", "mimeType": "text/plain", "buffer": b"hello\n"}])
    page.wait_for_selector("#transfer-status", state="visible")
    page.wait_for_function("() => !document.getElementById('transfer-progress').checkVisibility()")
    sweep("upload")


def sweep_second_node(page: Page, sweep: Sweep) -> None:
    page.click("#node-add")
    page.wait_for_selector("#node-list li[data-node='node2']")
    sweep("second node")
    page.click("#node-list li[data-node='node2'] .node-remove")
    page.wait_for_selector("#confirm-dialog", state="visible")
    sweep("remove node confirmation")
    page.click("#confirm-yes")
    page.wait_for_selector("#node-list li[data-node='node2']", state="detached")
    sweep("second node removed")


def sweep_terminal_tools(page: Page, sweep: Sweep) -> None:
    """A new tab, the context menu, search, the theme and presentation toggles, the nodes panel hidden."""
    page.click("#tab-add")
    page.wait_for_selector("#tab-1")
    wait_for_line(page, r".*root@node1.*#")
    sweep("a new terminal tab")
    shown = page.locator(".term-area .xterm-screen >> visible=true")
    shown.click(button="right")
    page.wait_for_selector("#context-menu", state="visible")
    sweep("context menu")
    page.keyboard.press("Escape")
    page.wait_for_selector("#context-menu", state="hidden")
    shown.click()
    page.keyboard.press("Control+Shift+F")
    page.wait_for_selector("#search-bar", state="visible")
    page.fill("#search-input", "no such text anywhere")
    page.press("#search-input", "Enter")
    sweep("search bar")
    page.keyboard.press("Escape")
    page.wait_for_selector("#search-bar", state="hidden")
    for toggle in ("#theme-toggle", "#present-toggle"):
        page.click(toggle)
        sweep(f"{toggle} pressed")
        page.click(toggle)
        sweep(f"{toggle} pressed twice")
    page.click("#nodes-toggle")
    page.wait_for_selector("#nodes-panel", state="hidden")
    sweep("nodes panel hidden")
    page.click("#nodes-toggle")
    page.wait_for_selector("#nodes-panel", state="visible")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone's: the nodes panel is a menu over the terminal
    sweep("session page on a phone")
    page.set_viewport_size(VIEWPORT)


def end_and_sweep(page: Page, sweep: Sweep, what: str) -> None:
    page.click("#end-session")
    page.wait_for_selector("#confirm-dialog", state="visible")
    sweep(f"{what}: end confirmation")
    page.click("#confirm-yes")
    page.wait_for_selector("#overlay", state="visible")
    page.wait_for_function("() => document.getElementById('overlay-message').textContent.trim()")
    sweep(f"{what}: end screen")


def test_a_korean_visitor_is_shown_no_english_anywhere(korean: BrowserContext, stack: Stack) -> None:
    page = korean.new_page()
    sweep = Sweep(page)
    base = stack.base_url

    sweep_landing(page, sweep, base)
    sweep_labs(page, sweep, base)

    start_session(page, sweep, base)
    session_url = page.url
    sweep_nodes_and_ports(page, sweep)
    sweep_second_node(page, sweep)
    sweep_terminal_tools(page, sweep)

    page.goto(base + "/")  # the visitor's sessions, listed on the landing page
    page.wait_for_selector("#my-sessions", state="visible")
    sweep("landing page, your sessions")
    page.goto(session_url)
    wait_for_line(page, r".*root@node1.*#")
    end_and_sweep(page, sweep, "session")
    page.goto(session_url)  # the ended session's address
    page.wait_for_function(
        "() => document.body.classList.contains('is-finished') || !document.querySelector('#terminal')"
    )
    sweep("ended session's page")

    page.goto(f"{base}/s/00000000-0000-4000-8000-000000000000/")  # no such session
    page.wait_for_selector("#overlay", state="visible")
    sweep("a session that does not exist")

    page.goto(f"{base}/labs/{LAB}/?language=ko")
    page.click("#lab-start")
    page.wait_for_url(SESSION_URL)
    page.wait_for_selector("#lab-panel")
    wait_for_line(page, r".*root@node1.*#")
    page.wait_for_function("() => !document.getElementById('lab-check').disabled", timeout=30000)
    sweep("lab session")
    page.click("#lab-check")
    page.wait_for_function("() => ['passed', 'failed'].includes(document.getElementById('lab-result').dataset.state)")
    sweep("lab session, a check")
    page.click("#lab-next")
    page.wait_for_function("() => document.getElementById('lab-step-title').textContent.startsWith('2.')")
    sweep("lab session, step 2")
    end_and_sweep(page, sweep, "lab session")

    assert not sweep.found, sweep.report()


def start_template(page: Page, stack: Stack, name: str) -> None:
    page.goto(stack.base_url + "/")
    page.check("#choice-template")
    page.select_option("#template", name)
    page.click("#start")
    page.wait_for_url(SESSION_URL)
    wait_for_line(page, r".*root@node1.*#")


def test_a_korean_visitor_is_shown_no_english_in_a_templates_session(
    korean: BrowserContext, templates_stack: Stack
) -> None:
    """A template's session: its nodes with their roles, its setup line done, and failed with the scripts' log."""
    page = korean.new_page()
    sweep = Sweep(page)

    start_template(page, templates_stack, "pair")
    page.wait_for_selector("#node-list li[data-node='node2']")
    page.wait_for_function("() => document.getElementById('setup-status').dataset.state === 'done'", timeout=30000)
    sweep("template session, setup done")
    end_and_sweep(page, sweep, "template session")

    start_template(page, templates_stack, "broken")
    page.wait_for_function("() => document.getElementById('setup-status').dataset.state === 'failed'", timeout=30000)
    sweep("template session, setup failed")
    page.click("#setup-log-button")
    page.wait_for_selector("#setup-log-dialog", state="visible")
    sweep("setup log")
    page.keyboard.press("Escape")
    page.wait_for_selector("#setup-log-dialog", state="detached")
    end_and_sweep(page, sweep, "failed template session")

    assert not sweep.found, sweep.report()
