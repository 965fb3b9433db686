"""Daphne on uvloop: ``python -m playground.webserver`` takes Daphne's own arguments.

Daphne creates its event loop (the one Twisted's asyncio reactor runs on) when ``daphne.server``
is first imported, with ``asyncio.new_event_loop()``; setting uvloop's policy before that import
makes it a uvloop loop. Every websocket frame crosses that loop a few times (Twisted's reader,
the consumer's queue, the agent's socket, Twisted's writer), so a faster loop shortens each
keystroke's echo (measured by ``make bench``, section ``terminals``). It also spares autobahn
some needless work per frame (below).
"""

import asyncio

import autobahn.util
import uvloop

asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
# Autobahn builds the arguments of its debug log lines for every frame it sends, debug logging on
# or not, and colours each with click when click is installed (Celery brings it): four
# click.style calls per terminal frame. Without colours they are plain strings.
autobahn.util._HAS_CLICK = False

from daphne.cli import CommandLineInterface  # noqa: E402  (after the policy, see above)

if __name__ == "__main__":
    CommandLineInterface.entrypoint()
