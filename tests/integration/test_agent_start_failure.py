"""An agent that cannot finish starting leaves nothing behind: the lxcfs it started before the
failure is stopped and unmounted with it (none of its sandboxes would need it), the bridge it
made before its walls failed is removed, and so is the parent cgroup it gave its CPU weight."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.host import cgroups
from tests.integration.test_default_image import refused
from tests.stack import Stack

pytestmark = pytest.mark.root


def test_an_agent_whose_network_cannot_be_set_up_exits_stops_its_lxcfs_and_removes_its_bridge(tmp_path: Path) -> None:
    # The one fake of this failure mode: an nft that refuses every ruleset, met after lxcfs has started.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nft").write_text("#!/bin/sh\necho 'Error: refused by the test' >&2\nexit 1\n")
    (fake / "nft").chmod(0o755)
    stack = Stack.create()
    stack.env["PATH"] = f"{fake}:{stack.env['PATH']}"
    log = refused(stack)
    assert "cannot set up sandbox networking" in log, log
    assert "refused by the test" in log, log
    bridge = Path("/sys/class/net") / f"{stack.env['PLAYGROUND_NETWORK_NAME']}br0"
    assert not bridge.exists(), f"the failed start left its bridge {bridge.name}"
    # The parent cgroup it gave its CPU weight (before the network) goes too.
    left = [h / stack.cgroup_parent for h in cgroups.hierarchies() if (h / stack.cgroup_parent).exists()]
    assert not left, f"the failed start left its parent cgroup in {left}"
