"""The peer of the terminal benchmarks: Jupyter's ``terminado`` serving a plain busybox shell.

``python -m bench.terminado_server PORT APPLET_DIR`` listens on 127.0.0.1:PORT with terminado's
own ``TermSocket`` at ``/websocket`` and a ``UniqueTermManager`` (one shell per websocket, as
Playground gives one sandbox per session), the shell being ``busybox sh`` with ``PATH`` set to
APPLET_DIR (busybox applet links), so both projects run the very same programs. It prints
``ready`` once it listens and serves until SIGTERM or SIGINT.

Nothing here is tuned: this is terminado as its documentation shows it being served.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import tornado.web
from terminado import TermSocket, UniqueTermManager

BUSYBOX = "/bin/busybox"


def application(applet_dir: str) -> tornado.web.Application:
    """terminado's documented set-up: a term manager and a ``TermSocket`` route."""
    manager = UniqueTermManager(
        shell_command=[BUSYBOX, "sh"],
        max_terminals=1000,
        extra_env={"PATH": applet_dir, "PS1": "# ", "HOME": "/root", "ENV": None},
    )
    return tornado.web.Application([(r"/websocket", TermSocket, {"term_manager": manager})])


async def serve(port: int, applet_dir: str) -> None:
    """Listen on loopback until a SIGTERM or SIGINT arrives."""
    server = application(applet_dir).listen(port, "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: python -m bench.terminado_server PORT APPLET_DIR", file=sys.stderr)
        return 2
    asyncio.run(serve(int(argv[0]), argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
