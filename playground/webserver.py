"""Daphne on uvloop: ``python -m playground.webserver`` takes Daphne's own arguments.

Daphne creates its event loop (the one Twisted's asyncio reactor runs on) when ``daphne.server``
is first imported, with ``asyncio.new_event_loop()``; setting uvloop's policy before that import
makes it a uvloop loop. Every websocket frame crosses that loop a few times (Twisted's reader,
the consumer's queue, the agent's socket, Twisted's writer), so a faster loop shortens each
keystroke's echo (measured by ``make bench``, section ``terminals``).
"""

import asyncio

import uvloop

asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

from daphne.cli import CommandLineInterface  # noqa: E402  (after the policy, see above)

if __name__ == "__main__":
    CommandLineInterface.entrypoint()
