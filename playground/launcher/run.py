"""``make run``'s entry point: check the settings and root, start every part, serve, stop."""

from __future__ import annotations

import os
import signal
import sys

from playground import config
from playground.launcher.checks import LaunchError, sandbox_settings_problem
from playground.launcher.stack import Launcher
from playground.launcher.supervision import say
from playground.stopsignals import set_on_signals


def main() -> int:
    """Run Playground until Ctrl-C or SIGTERM: 0 after a clean stop, 1 when a part failed, 2 when
    nothing could start (a bad setting, named with the variable, or not root)."""
    try:
        cfg = config.load()
    except config.ConfigError as exc:
        print(f"playground: {exc}", file=sys.stderr)
        return 2
    problem = sandbox_settings_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(
            "playground: 'make run' must run as root (the sandbox agent creates namespaces and cgroups; "
            "the web tier itself drops to the unprivileged user PLAYGROUND_WEB_USER).",
            file=sys.stderr,
        )
        return 2
    launcher = Launcher(cfg)
    set_on_signals(launcher.stopping, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    status = 0
    try:
        launcher.start()
        if cfg.role == "sandbox-host":
            say(f"[launcher] Playground's sandbox host is running; its agent serves the site at {cfg.agent_listen}.")
        else:
            say(f"[launcher] Playground is running at {launcher.url()} — press Ctrl-C to stop.")
        status = launcher.supervise()
    except LaunchError as exc:
        say(f"playground: {exc}")
        status = 1
    finally:
        say("[launcher] stopping…")
        launcher.stop()
        say("[launcher] stopped; no sandbox is left running.")
    return status
