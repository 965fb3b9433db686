"""The session registry as a seminar uses it from the session page: the Registry panel shows the
address, user and password, its copy button puts the docker login line on the clipboard, and that
line, typed into node1's terminal, logs the engine in; busybox is then tagged under the user and
pushed. Its screenshot is test-artifacts/registry-panel.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.e2e.browsing import ARTIFACTS, run, start_from_landing, wait_for_line
from tests.stack import Stack

pytestmark = [pytest.mark.root, pytest.mark.alongside]


def test_the_registry_panels_login_line_logs_the_node_in_and_a_push_under_the_user_works(
    page: Page, docker_stack: Stack
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    start_from_landing(page, docker_stack)
    panel = page.locator("#registry-panel")
    panel.wait_for(state="visible")
    address, user = page.inner_text("#registry-address"), page.inner_text("#registry-user")
    assert address == f"registry:{docker_stack.env['PLAYGROUND_REGISTRY_PORT']}" and user.startswith("pg-")
    assert len(page.inner_text("#registry-password")) == 24
    login = page.inner_text("#registry-login")
    assert login == f"echo {page.inner_text('#registry-password')} | docker login {address} -u {user} --password-stdin"
    page.click('[data-copy="login"]')
    page.get_by_text("Login copied.").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "registry-panel.png"))

    run(page, "until docker info >/dev/null 2>&1; do sleep 0.2; done; " + login)
    wait_for_line(page, "Login Succeeded", 60)
    image = f"{address}/{user}/box:1.0"
    run(page, f"docker tag busybox {image} && docker push {image} && echo PUSHED-OK")
    wait_for_line(page, "PUSHED-OK", 60)
