"""The command line of each part the launcher starts, and where each part finds its program.

Each function returns an ``argv``; the launcher runs it (as root or as the web user) and runs it
again, unchanged, when the part dies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PYTHON = sys.executable


def keeper() -> list[str]:
    """The terminal keeper (root): holds every terminal so shells outlive an agent restart."""
    return [PYTHON, "-m", "sandbox.keeper"]


def agent() -> list[str]:
    """The sandbox agent (root): creates and destroys sandboxes."""
    return [PYTHON, "-m", "sandbox.agent"]


def check_sandbox_settings() -> list[str]:
    """Checks the sandbox host's settings, exiting 2 with the message on a bad one."""
    return [PYTHON, "-m", "sandbox.settings"]


def manage(*args: str) -> list[str]:
    """A Django management command (``manage.py startup``, ``endsessions``)."""
    return [PYTHON, "manage.py", *args]


def redis(server: str, port: int, directory: Path) -> list[str]:
    """A Redis of our own on loopback, without persistence."""
    return [
        server,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--protected-mode",
        "yes",
    ]


# Daphne's options whatever it listens on: websockets live a day, a handshake gets 10 s.
DAPHNE_OPTIONS = [
    "--websocket_timeout",
    "86400",
    "--websocket_connect_timeout",
    "10",
    "--application-close-timeout",
    "5",
    "playground.asgi:application",
]


def daphne(bind: str, port: int) -> list[str]:
    """The web server (Daphne on uvloop, see playground/webserver.py)."""
    return [PYTHON, "-m", "playground.webserver", "-b", bind, "-p", str(port), *DAPHNE_OPTIONS]


def daphne_on(fd: int) -> list[str]:
    """One of several web servers, accepting on the IPv4 listening socket ``fd`` it is started with
    (Daphne's ``--fd`` adopts an AF_INET socket only)."""
    return [PYTHON, "-m", "playground.webserver", "--fd", str(fd), *DAPHNE_OPTIONS]


def ports() -> list[str]:
    """The port proxy (web user): nodes' ports as links, on PLAYGROUND_BIND:PLAYGROUND_PORTS_PORT."""
    return [PYTHON, "-m", "playground.ports"]


def registry_store() -> list[str]:
    """The registry mirror's store (web user): docker-registry on 127.0.0.1:PLAYGROUND_REGISTRY_STORE_PORT."""
    return [PYTHON, "-m", "playground.registry.store"]


def registry_push() -> list[str]:
    """The sessions' push registry (web user): docker-registry on 127.0.0.1:PLAYGROUND_REGISTRY_PUSH_PORT."""
    return [PYTHON, "-m", "playground.registry.pushstore"]


def registry_front() -> list[str]:
    """The registry mirror's front (web user): pulls only, on the sandboxes' gateway at PLAYGROUND_REGISTRY_PORT."""
    return [PYTHON, "-m", "playground.registry.front"]


def worker(concurrency: int) -> list[str]:
    """A Celery worker of ``concurrency`` processes (session starts and ends, the reaper's work)."""
    return [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "playground",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"worker-{os.getpid()}@%h",
    ]


def beat(schedule: Path) -> list[str]:
    """Celery beat: queues the reaper every PLAYGROUND_REAPER_INTERVAL."""
    return [PYTHON, "-m", "celery", "-A", "playground", "beat", "--loglevel", "INFO", "--schedule", str(schedule)]
