"""Daphne on uvloop: ``python -m playground.webserver`` takes Daphne's own arguments.

Daphne creates its event loop (the one Twisted's asyncio reactor runs on) when ``daphne.server``
is first imported, with ``asyncio.new_event_loop()``; setting uvloop's policy before that import
makes it a uvloop loop. Every websocket frame crosses that loop a few times (Twisted's reader,
the consumer's queue, the agent's socket, Twisted's writer), so a faster loop shortens each
keystroke's echo (measured by ``make bench``, section ``terminals``). It also spares autobahn
some needless work per frame (below).
"""

import asyncio
import resource

import autobahn.util
import uvloop

asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
# Autobahn builds the arguments of its debug log lines for every frame it sends, debug logging on
# or not, and colours each with click when click is installed (Celery brings it): four
# click.style calls per terminal frame. Without colours they are plain strings.
autobahn.util._HAS_CLICK = False

from daphne.cli import CommandLineInterface  # noqa: E402  (after the policy, see above)


def raise_open_files_limit() -> None:
    """Daphne holds four descriptors per open terminal (the websocket, the agent's stream, and
    the PTY master and replay memfd it is lent): the usual soft limit of 1024 would cap a host
    at about 250 terminals, so take the hard limit, which needs no privilege."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


if __name__ == "__main__":
    raise_open_files_limit()
    CommandLineInterface.entrypoint()
