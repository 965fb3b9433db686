"""Labs against real sandboxes, scripts run through the agent's ``run`` op as the lab pages run
them. Shipped labs: in a fresh sandbox every step's check fails with a hint, and passes after
that step's solve script. Killercoda fixtures: each step's background runs, its verify fails,
then the step's runnable blocks (what a reader's "run" buttons type) make it pass."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from playground import config
from playground.labs import killercoda, loader, render
from tests.integration import test_run_op
from tests.integration.test_run_op import Sandbox, run
from tests.stack import Stack

sandbox = test_run_op.sandbox  # the fixture: a fresh session's sandbox, its visitor's shell open

SHIPPED = config.REPO_DIR / "labs"
SCENARIOS = config.REPO_DIR / "tests" / "fixtures" / "killercoda"
RUN_BLOCK = re.compile(r'<div class="lab-code" data-action="run"><pre><code[^>]*>(.*?)</code></pre></div>', re.S)


# Shipped labs of the docker image play in their own tests (test_docker_101.py).
SHIPPED_BUSYBOX = [f for f in loader.lab_folders(SHIPPED) if loader.read_folder(f).image == "busybox"]


@pytest.mark.parametrize("folder", SHIPPED_BUSYBOX, ids=lambda p: p.name)
async def test_every_check_fails_fresh_and_passes_after_its_solve_script(
    stack: Stack, sandbox: Sandbox, folder: Path
) -> None:
    source = loader.read_folder(folder)
    for number, step in enumerate(source.steps, 1):
        fresh = await run(stack, sandbox, step.scripts["check"], timeout=30)
        assert fresh["code"] != 0 and fresh["output"].strip(), (number, fresh)
        if "setup" in step.scripts:
            assert (await run(stack, sandbox, step.scripts["setup"], timeout=30))["code"] == 0, number
        solved = await run(stack, sandbox, step.scripts["solve"], timeout=30)
        assert solved["code"] == 0 and not solved["timed_out"], (number, solved)
        passed = await run(stack, sandbox, step.scripts["check"], timeout=30)
        assert passed["code"] == 0, (number, passed)


# Scenarios of the docker image play in test_labs_docker.py.
BUSYBOX_SCENARIOS = [f for f in loader.lab_folders(SCENARIOS) if killercoda.read_scenario(f).image != "docker"]


@pytest.mark.parametrize("folder", BUSYBOX_SCENARIOS, ids=lambda p: p.name)
async def test_a_killercoda_scenario_runs_step_by_step_in_busybox(stack: Stack, sandbox: Sandbox, folder: Path) -> None:
    # The fixtures name ubuntu (our debian image); their scripts are POSIX and use only
    # busybox applets, so they run here in the busybox sandbox the stack starts.
    source = killercoda.read_scenario(folder, image="busybox")
    for number, step in enumerate(source.steps, 1):
        if "setup" in step.scripts:
            setup = await run(stack, sandbox, step.scripts["setup"], timeout=30)
            assert setup["code"] == 0, (number, setup)
        if step.foreground:  # typed once the setup ran, so a wait for the setup's file ends at once
            foreground = await run(stack, sandbox, step.foreground, timeout=30)
            assert foreground["code"] == 0 and not foreground["timed_out"], (number, foreground)
        check = step.scripts.get("check")  # a step without one is only read
        if check:
            assert (await run(stack, sandbox, check, timeout=30))["code"] != 0, number
        commands = [html.unescape(code) for code in RUN_BLOCK.findall(render.render(step.markdown["en"]))]
        assert commands, number
        for command in commands:
            ran = await run(stack, sandbox, command, timeout=30)
            assert ran["code"] == 0, (number, command, ran)
        if check:
            passed = await run(stack, sandbox, check, timeout=30)
            assert passed["code"] == 0, (number, passed)


def test_the_launcher_loads_the_shipped_labs_at_start(stack: Stack) -> None:
    log = stack.log_path.read_text()
    for language in ("en", "ko"):
        assert f"[manage startup] loaded containers-from-the-inside ({language})" in log
