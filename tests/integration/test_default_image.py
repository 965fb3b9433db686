"""The default image is ready before anything starts: a default image the store cannot build on
first use (``docker``, from a recipe, a minute or more) stops ``make run``'s launcher at once with
the command that builds it, instead of a hang or a Playground whose Start button fails."""

from __future__ import annotations

import shutil

import pytest

from sandbox.host import mounts
from tests.stack import Stack

pytestmark = pytest.mark.root


def test_a_default_image_not_built_yet_stops_the_launcher_naming_the_command_that_builds_it() -> None:
    stack = Stack.create(PLAYGROUND_DEFAULT_IMAGE="docker")  # a new data directory: no image is built
    with pytest.raises(RuntimeError, match="launcher exited"):
        stack.start(timeout=60)
    log = stack.log_path.read_text()
    assert "the default image 'docker' (PLAYGROUND_DEFAULT_IMAGE) is not ready" in log, log
    assert "python -m sandbox.images build docker --if-missing" in log, log
    assert "agent exited with status 2" in log, log
    assert "Traceback" not in log, log  # nothing else failed on the way out
    assert stack.service_processes() == [] and "no sandbox is left running" in log, log
    assert not mounts.mounts_under(stack.data_dir)
    shutil.rmtree(stack.data_dir)
