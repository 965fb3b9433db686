"""Start-up refuses bad settings before starting anything, with a sentence naming the variable: the web
tier's (read by the launcher) and the sandbox host's (checked by ``python -m sandbox.settings``) alike."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.stack import REPO


@pytest.mark.parametrize(
    "name, value",
    [
        ("PLAYGROUND_SANDBOX_MEMORY", "lots"),
        ("PLAYGROUND_SANDBOX_CPUS", "0"),
        ("PLAYGROUND_SANDBOX_PIDS", "2"),
        ("PLAYGROUND_SANDBOX_DISK", "1K"),
        ("PLAYGROUND_IMAGE_QUOTAS", "busybox:memory=1X"),
        ("PLAYGROUND_SANDBOX_SUBNET", "8.8.8.0/24"),
        ("PLAYGROUND_CGROUP_PARENT", "Not/A/Name"),
        ("PLAYGROUND_WARM_POOL", "busybox=2"),
        ("PLAYGROUND_REDIS_URL", "http://localhost"),
    ],
)
def test_a_bad_setting_of_either_tier_stops_the_launcher_naming_the_variable(name: str, value: str) -> None:
    env = dict(os.environ, **{name: value})
    done = subprocess.run(
        [sys.executable, "-m", "playground.launcher"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"playground: {name}") and value.split(":")[-1].split("=")[-1] in done.stderr
    assert done.stdout == ""  # nothing was started
