"""What every ``runc exec`` into a running sandbox needs: a private runc root without the network
namespace (runc 1.1 cannot join one the host owns), shared by the agent's tabs
(:mod:`sandbox.runtime.runc`) and lab scripts (:mod:`sandbox.runtime.labscripts`)."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.wire.protocol import AgentError


def exec_root(runc_root: Path, runtime_id: str, root: Path) -> str:
    """Make ``root`` a private runc root for one ``runc exec`` in ``runtime_id``; returns the path of
    the sandbox's network namespace, which the caller must join before runc runs (``nsenter --net``).

    runc 1.1 joins a container's namespaces in a fixed order, its user namespace first, so it
    cannot enter a network namespace the host owns (ours, see :mod:`sandbox.network.namespaces`): "failed to
    setns into net namespace: Operation not permitted", opencontainers/runc#4390, fixed in runc
    1.2 by #4492. So the copy of the container's state given to this runc omits the network
    namespace, and runc starts already inside it; every other namespace, the cgroups, the
    seccomp filter, capabilities and ``noNewPrivileges`` are runc's as for any exec.
    """
    source = runc_root / runtime_id / "state.json"
    try:
        state = json.loads(source.read_text())
        pid = int(state["init_process_pid"])
        state["config"]["namespaces"] = [n for n in state["config"]["namespaces"] if n.get("type") != "NEWNET"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AgentError("unknown_sandbox", f"sandbox {runtime_id} has no usable runtime state: {exc}") from None
    (root / runtime_id).mkdir(mode=0o700)
    (root / runtime_id / "state.json").write_text(json.dumps(state))
    return f"/proc/{pid}/ns/net"
