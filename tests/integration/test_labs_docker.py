"""An imported Killercoda Docker scenario plays to the end in a sandbox of the docker image: its
assets are there, its background builds an image while its foreground waits, and each step's
check fails before the step's run blocks and passes after them."""

from __future__ import annotations

import html
import re

from playground import config
from playground.labs import killercoda, render
from tests.dockerkit import log, run
from tests.stack import Stack

SCENARIO = config.REPO_DIR / "tests" / "fixtures" / "killercoda" / "docker-web-from-assets"
RUN_BLOCK = re.compile(r'<div class="lab-code" data-action="run"><pre><code[^>]*>(.*?)</code></pre></div>', re.S)


async def test_a_killercoda_docker_scenario_with_assets_and_a_waiting_foreground_plays_to_the_end(
    docker_image: Stack, docker_sandbox: str
) -> None:
    source = killercoda.read_scenario(SCENARIO)
    assert source.image == "docker"
    for number, step in enumerate(source.steps, 1):
        if "setup" in step.scripts:
            setup = await run(docker_image, docker_sandbox, step.scripts["setup"], 90)
            assert setup["code"] == 0, (number, setup["output"], await log(docker_image, docker_sandbox))
        if step.foreground:
            foreground = await run(docker_image, docker_sandbox, step.foreground, 10)
            assert foreground["code"] == 0 and "web:1 is ready" in foreground["output"], (number, foreground)
        assert (await run(docker_image, docker_sandbox, step.scripts["check"], 30))["code"] != 0, number
        for command in [html.unescape(c) for c in RUN_BLOCK.findall(render.render(step.markdown["en"]))]:
            ran = await run(docker_image, docker_sandbox, command, 60)
            assert ran["code"] == 0, (number, command, ran["output"])
        passed = await run(docker_image, docker_sandbox, step.scripts["check"], 30)
        assert passed["code"] == 0, (number, passed["output"])
