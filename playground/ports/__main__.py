"""``python -m playground.ports``: the port proxy on PLAYGROUND_BIND:PLAYGROUND_PORTS_PORT.

Started by the launcher as the web user, beside Daphne; reads the database through Django's ORM.
Runs PLAYGROUND_PORTS_WORKERS processes, each a uvloop event loop with its own listening socket
on the same port (``SO_REUSEPORT``: the kernel spreads connections between them), forked before
any loop, thread or database connection exists. The first process is the parent: SIGTERM or
SIGINT stops it and its workers; a worker that dies stops the parent too (status 1), so the
launcher restarts the whole part; a worker dies with its parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys

import django
import uvloop

log = logging.getLogger("playground.ports")
PR_SET_PDEATHSIG = 1


async def serve(children: list[int]) -> int:
    """Listen until a stop signal (0), or until a worker dies (1, in the parent)."""
    from django.conf import settings

    from playground.ports.access import Directory
    from playground.ports.proxy import Proxy, ProxySettings

    config = settings.PLAYGROUND
    proxy = Proxy(
        ProxySettings(
            domain=config.ports_domain,
            scheme=config.ports_public_scheme,
            public_port=config.ports_public_port,
            ports_port=config.ports_port,
            site_port=config.port,
            cookie_seconds=config.session_max_ttl,
        ),
        Directory(),
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        proxy, config.bind, config.ports_port, backlog=1024, reuse_address=True, reuse_port=True
    )
    stopped: asyncio.Future[int] = loop.create_future()

    def stop(status: int) -> None:
        if not stopped.done():
            stopped.set_result(status)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, 0)
    for pid in children:  # a worker's end makes its pidfd readable (SIGCHLD is uvloop's own)
        loop.add_reader(os.pidfd_open(pid), stop, 1)
    if children:
        log.info(
            "port proxy listening on %s:%d for *.%s and /ports/ (%d processes)",
            config.bind,
            config.ports_port,
            config.ports_domain,
            len(children) + 1,
        )
    status = await stopped
    if status:
        log.error("port proxy: a worker process died; stopping (the launcher starts it again)")
    server.close()
    return status


def fork_workers(count: int) -> list[int]:
    """Start ``count`` worker processes; their pids in the parent, [] in each worker."""
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            return []
        children.append(pid)
    return children


def stop_workers(children: list[int]) -> None:
    """SIGTERM each worker and wait for it."""
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    django.setup()
    from django.conf import settings

    children = fork_workers(settings.PLAYGROUND.ports_workers - 1)
    try:
        return uvloop.run(serve(children))
    finally:
        stop_workers(children)


if __name__ == "__main__":
    sys.exit(main())
