"""What the host's root daemons (the agent, the keeper) do before anything else."""

from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import os
import sys

from sandbox import settings

log = logging.getLogger("sandbox.daemon")


def prepare(name: str, why_root: str) -> settings.Settings | None:
    """Set up logging, load the settings and check for root; None, after saying why, if ``name`` cannot run."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = settings.load()
    except settings.ConfigError as exc:
        print(f"playground {name}: {exc}", flush=True)
        return None
    if os.geteuid() != 0:
        print(f"playground {name}: must run as root ({why_root})", flush=True)
        return None
    return cfg


async def end_other_tasks(grace: float) -> list[asyncio.Task[object]]:
    """Cancel every task of the running loop but the caller's and wait up to ``grace`` seconds for
    them to end; those still running then (a cleanup that hangs) are logged, each with its stack,
    and returned. ``asyncio.run`` would otherwise wait for them without end, and a daemon that
    never exits is never restarted."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        stack = io.StringIO()
        task.print_stack(file=stack)
        log.error("task %s did not end within %g s of the stop:\n%s", task.get_name(), grace, stack.getvalue())
    return list(pending)


def exit_within(grace: float) -> None:
    """From now on, the process has ``grace`` seconds to exit. Past them every thread's stack is
    written to stderr (what the process still waits for: a blocked ``asyncio.to_thread`` call,
    which ``asyncio.run`` and the interpreter's exit join without end) and it exits with status 1."""
    sys.stderr.flush()
    faulthandler.dump_traceback_later(grace, exit=True, file=sys.stderr)


def exit_now(code: int) -> None:
    """Exit with ``code`` at once, after flushing the logs, without joining threads or cancelling
    tasks: for a daemon whose remaining tasks did not end (see :func:`end_other_tasks`)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
