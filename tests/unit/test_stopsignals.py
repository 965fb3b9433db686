"""playground.stopsignals: a stop signal sets the event even when it lands inside the event's lock.

Each case runs in a child interpreter: signal handlers and the wakeup fd are per process.
"""

from __future__ import annotations

import subprocess
import sys

from playground import config

SIGNAL_INSIDE_THE_LOCK = """
import os, signal, sys, threading
{install}
with event._cond:  # held for a few bytecodes by every Event.wait: the signal lands inside it
    os.kill(os.getpid(), signal.SIGTERM)
    sum(range(100000))  # bytecodes run here, and Python runs the signal's handler among them
print("stopped" if event.wait(10) else "not stopped", flush=True)
"""

WITH_STOPSIGNALS = (
    "from playground.stopsignals import set_on_signals\n"
    "event = threading.Event()\n"
    "set_on_signals(event, [signal.SIGTERM])"
)
WITH_A_HANDLER_THAT_SETS = "event = threading.Event()\nsignal.signal(signal.SIGTERM, lambda *_: event.set())"


def run_child(
    install: str, case: str = SIGNAL_INSIDE_THE_LOCK, timeout: float = 20
) -> subprocess.CompletedProcess[str] | None:
    """Run ``case`` with ``install``; None if it was still running after ``timeout`` s (and was killed)."""
    try:
        return subprocess.run(
            [sys.executable, "-c", case.format(install=install)],
            cwd=config.REPO_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None


def test_a_stop_signal_landing_while_the_events_lock_is_held_still_sets_the_event() -> None:
    done = run_child(WITH_STOPSIGNALS)
    assert done is not None, "the child hung"
    assert (done.returncode, done.stdout.strip()) == (0, "stopped"), done.stderr


def test_a_handler_setting_the_event_itself_hangs_there_which_is_why_the_module_exists() -> None:
    assert run_child(WITH_A_HANDLER_THAT_SETS, timeout=3) is None


def test_a_signal_not_asked_for_does_not_set_the_event() -> None:
    case = SIGNAL_INSIDE_THE_LOCK.replace(
        "os.kill(os.getpid(), signal.SIGTERM)", "os.kill(os.getpid(), signal.SIGUSR1)"
    )
    install = WITH_STOPSIGNALS + "\nsignal.signal(signal.SIGUSR1, lambda *_: None)"
    done = run_child(install, case.replace("event.wait(10)", "event.wait(1)"))
    assert done is not None, "the child hung"
    assert (done.returncode, done.stdout.strip()) == (0, "not stopped"), done.stderr
