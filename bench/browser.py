"""Click to prompt in a browser: Debian's headless Chromium (as the browser tests drive it) opens
the landing page of a stack with a warm pool, clicks "Start playground", and the time is taken
from the click to the first prompt in the terminal's buffer.

Each start is a new browser context (no cookies, an empty cache: a newcomer), clicked once the
landing page has loaded and the network has been quiet for half a second. Both ends are read in
the page, so whatever the page does between them counts (the API, a navigation, loading
scripts, the websocket, the sandbox's shell): the click is the click event's own time stamp,
the prompt the moment xterm.js has parsed a write after which a line of its buffer ends in the
busybox prompt (``onWriteParsed``). The API's part is the time from the click to the end of the
``POST /api/sessions/`` response, from the browser's network timing. Times cross from one page
to the next (a navigation) as wall-clock times of the same browser.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playwright.sync_api import Browser, Page, Request

from bench.measuring import measured_runs, print_summary, summary
from bench.startup import pool_full
from tests.e2e.browsing import VIEWPORT, chromium
from tests.stack import Stack

WARM_POOL = 2
PROMPT_TIMEOUT_MS = 20_000
TARGET_MS = 150.0

# Runs in every document of the context, before the page's own scripts: it keeps the click's time
# and, for every terminal the page publishes as window.playground.term, the first moment a line of
# its buffer is a prompt. sessionStorage carries both across a navigation within the tab.
WATCH = r"""(() => {
  const wallClock = (stamp) => performance.timeOrigin + stamp;
  document.addEventListener('click', (event) => {
    const target = event.target;
    if (target && target.closest && target.closest('#start')) {
      sessionStorage.setItem('bench-click', String(wallClock(event.timeStamp)));
    }
  }, true);
  const PROMPT = /^root@node1:.*# ?$/;
  const watched = new WeakSet();
  function hasPrompt(term) {
    const buffer = term.buffer.active;
    for (let i = 0; i < buffer.length; i++) {
      const line = buffer.getLine(i);
      if (line && PROMPT.test(line.translateToString(true))) return true;
    }
    return false;
  }
  function watch(term) {
    if (!term || watched.has(term)) return;
    watched.add(term);
    const check = () => {
      if (!sessionStorage.getItem('bench-prompt') && hasPrompt(term)) {
        sessionStorage.setItem('bench-prompt', String(wallClock(performance.now())));
      }
    };
    term.onWriteParsed(check);
    check();
  }
  let current;
  Object.defineProperty(window, 'playground', {
    configurable: true,
    get: () => current,
    set: (value) => { current = value; if (value && value.term) watch(value.term); },
  });
})();"""

READ_MARKS = "() => [sessionStorage.getItem('bench-click'), sessionStorage.getItem('bench-prompt')]"


def run(runs: int) -> dict[str, Any]:
    """Click-to-prompt and its API part over ``runs`` starts (after the warm-up ones), printed."""
    stack = Stack.create(PLAYGROUND_WARM_POOL=str(WARM_POOL))
    stack.start()
    try:
        wait_for_full_pool(stack, timeout=120)
        with chromium() as browser:
            samples = measured_runs(runs, lambda i: one_start(browser, stack))
    finally:
        stack.end_every_session()
        stack.stop()
    total = summary([total for total, _ in samples])
    api = summary([api for _, api in samples])
    print_summary("click to prompt", total)
    print_summary("  of which click to API response", api)
    met = total["median_ms"] <= TARGET_MS
    print(f"  target: median <= {TARGET_MS:.0f} ms: {'met' if met else 'MISSED'}", flush=True)
    return {"click_to_prompt": total, "click_to_api_response": api, "target_median_ms": TARGET_MS}


def one_start(browser: Browser, stack: Stack) -> tuple[float, float]:
    """One newcomer's start: (click to prompt, click to the POST's response), in seconds. The
    session is ended afterwards and the warm pool waited for until it is full again."""
    context = browser.new_context(viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
    context.add_init_script(WATCH)
    try:
        page = context.new_page()
        posts: list[Request] = []
        page.on("requestfinished", lambda r: posts.append(r) if is_start(r) else None)
        page.goto(stack.base_url + "/", wait_until="networkidle")
        page.click("#start")
        page.wait_for_function(
            "() => sessionStorage.getItem('bench-prompt') !== null", timeout=PROMPT_TIMEOUT_MS, polling=50
        )
        click, prompt = (float(mark) for mark in page.evaluate(READ_MARKS))
        api_end = response_end(page, posts)
        end_session_of(page, stack)
    finally:
        context.close()
    wait_for_full_pool(stack)
    return (prompt - click) / 1000, (api_end - click) / 1000


def wait_for_full_pool(stack: Stack, timeout: float = 30) -> None:
    """``startup.pool_full`` in a thread of its own: Playwright's synchronous API keeps an event
    loop running in this one."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, pool_full(stack, WARM_POOL, timeout)).result()


def is_start(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/api/sessions/")


def response_end(page: Page, posts: list[Request]) -> float:
    """The wall-clock time (ms) the browser had the whole response of the start's POST."""
    page.wait_for_timeout(0)  # lets Playwright deliver a requestfinished event still in flight
    if len(posts) != 1:
        raise RuntimeError(f"expected one POST /api/sessions/ from the click, saw {len(posts)}")
    timing = posts[0].timing
    return timing["startTime"] + timing["responseEnd"]


def end_session_of(page: Page, stack: Stack) -> None:
    """End the session the page started, with the key its start set as a cookie."""
    session_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    key = cookies.get(f"pg_{session_id.replace('-', '')}")
    if key is None:
        raise RuntimeError(f"no key cookie for session {session_id}; cookies: {json.dumps(sorted(cookies))}")
    response = stack.request("DELETE", f"/api/sessions/{session_id}/", headers={"Authorization": f"Session {key}"})
    if response.status != 204:
        raise RuntimeError(f"ending session {session_id}: {response.status} {response.body!r}")
