"""``python -m playground.ports``: the port proxy on PLAYGROUND_BIND:PLAYGROUND_PORTS_PORT (uvloop).

Started by the launcher as the web user, beside Daphne; reads the database through Django's ORM.
Stops on SIGTERM or SIGINT, closing its listener and its connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import django
import uvloop


async def serve() -> None:
    """Listen until a stop signal."""
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
    server = await loop.create_server(proxy, config.bind, config.ports_port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logging.getLogger("playground.ports").info(
        "port proxy listening on %s:%d for *.%s and /ports/", config.bind, config.ports_port, config.ports_domain
    )
    await stop.wait()
    server.close()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    django.setup()
    uvloop.run(serve())


if __name__ == "__main__":
    main()
