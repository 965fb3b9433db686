"""The default image is ready before anything starts: a default image the store cannot build on
first use (``docker``, from a recipe, a minute or more), or one this host may not run, stops
``make run``'s launcher at once with what to do, instead of a hang or a Playground whose Start
button fails."""

from __future__ import annotations

import shutil

import pytest

from sandbox.host import mounts
from tests.dockerkit import build_docker_image
from tests.imagekit import CACHE
from tests.stack import Stack

pytestmark = pytest.mark.root


def refused(stack: Stack) -> str:
    """Start ``stack``, which must stop because of its agent without leaving anything; its log."""
    with pytest.raises(RuntimeError, match="launcher exited"):
        stack.start(timeout=60)
    log = stack.log_path.read_text()
    assert "agent exited with status 2" in log, log
    assert "Traceback" not in log, log  # nothing else failed on the way out
    assert stack.service_processes() == [] and "no sandbox is left running" in log, log
    assert not mounts.mounts_under(stack.data_dir)
    shutil.rmtree(stack.data_dir)
    return log


def test_a_default_image_not_built_yet_stops_the_launcher_naming_the_command_that_builds_it() -> None:
    log = refused(Stack.create(PLAYGROUND_DEFAULT_IMAGE="docker"))  # a new data directory: no image built
    assert "the default image 'docker' (PLAYGROUND_DEFAULT_IMAGE) is not ready" in log, log
    assert "python -m sandbox.images build docker --if-missing" in log, log


def test_a_default_image_needing_the_docker_profile_this_host_turned_off_stops_the_launcher() -> None:
    stack = Stack.create(
        PLAYGROUND_DEFAULT_IMAGE="docker", PLAYGROUND_DOCKER_PROFILE="false", PLAYGROUND_IMAGE_CACHE=str(CACHE)
    )
    log = refused(build_docker_image(stack))  # seconds when var/cache holds the image's tree
    assert "PLAYGROUND_DOCKER_PROFILE=false turns off on this host" in log, log
