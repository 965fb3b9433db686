"""/run/netns made a shared mount point before the agent pins a namespace there
(``sandbox.host.mounts.shared_mount_point``, called by ``SandboxNetwork.setup_host``).

Found on a fresh host, where /run is not a tmpfs and /run/netns was not a mount point: the agent
pinned its sandboxes' namespaces there, then a test's ``ip netns add`` bound /run/netns onto
itself (as iproute2 does when it is not a mount point), hiding the pins made before; each of them
then failed to be removed with "Device or resource busy", and every session on that agent failed
to end. Each case runs in a private mount namespace of its own (``unshare --mount --propagation
private``), where /run/netns is first made a plain directory again: nothing of it reaches the
host's mounts. The pins bind the host's own network namespace (nothing new is made).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from sandbox.network.layout import NETNS_DIR
from tests.stack import REPO

# Run in the private mount namespace: /run/netns a plain directory; optionally made shared by the
# agent's function; a namespace pinned the way the agent's pool pins one; then `ip netns add` of
# another (a test's, a tool's); then `ip netns del` of the first.
SCENARIO = """
import subprocess, sys
from pathlib import Path
from sandbox.host import mounts
netns, pinned, other, prepare, lock = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "yes", sys.argv[5]
while mounts.unmount(netns):
    pass
if prepare:
    mounts.shared_mount_point(netns, Path(lock))
pin = netns / pinned
pin.touch()
mounts.bind(Path("/proc/self/ns/net"), pin)
subprocess.run(["ip", "netns", "add", other], check=True)
deleted = subprocess.run(["ip", "netns", "del", pinned], capture_output=True, text=True)
subprocess.run(["ip", "netns", "del", other], check=True)
print("deleted" if deleted.returncode == 0 else deleted.stderr.strip())
"""


def pinned_then_ip_netns_add(prepare: bool, tmp_path: Path) -> str:
    """What removing the pinned namespace gave in the scenario: ``deleted``, or ip's error."""
    pinned, other = f"pgtest-{uuid.uuid4().hex[:10]}", f"pgtest-{uuid.uuid4().hex[:10]}"
    command = ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", SCENARIO]
    arguments = [str(NETNS_DIR), pinned, other, "yes" if prepare else "no", str(tmp_path / "netns.lock")]
    try:
        done = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=30, cwd=REPO)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()
    finally:
        for name in (pinned, other):  # the files are on the host's filesystem; their mounts died with the child
            (NETNS_DIR / name).unlink(missing_ok=True)


def test_a_namespace_pinned_before_the_first_ip_netns_add_cannot_be_removed_unless_the_directory_was_prepared(
    tmp_path: Path,
) -> None:
    assert "Device or resource busy" in pinned_then_ip_netns_add(False, tmp_path)  # the failure, on this kernel
    assert pinned_then_ip_netns_add(True, tmp_path) == "deleted"
