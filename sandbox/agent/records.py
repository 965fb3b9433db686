"""What the agent knows of a sandbox (:class:`Sandbox`, its tabs :class:`Tab`) and the record of it
that the next agent adopts it from.

The record is ``sandbox.json`` in the sandbox's directory, written (atomically: a torn record is
never read) once a visitor's sandbox is fully created and again whenever its tabs change. Its
fields are :class:`SandboxRecord`; an agent reads records that older agents wrote, so fields
added later (``tabs``, ``next_tab``, ``id_range``, ``group``, ``recorded``) may be missing. The id
range is recorded here for people and tools; the allocator's record is the kernel's (the sandbox's layer, see
:mod:`sandbox.host.idranges`), which adoption prefers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from sandbox.network.pool import Lease
from sandbox.pty.terminal import Terminal

log = logging.getLogger("sandbox.agent")

RECORD = "sandbox.json"  # in a sandbox's directory: what the next agent needs to adopt it


class NetworkRecord(TypedDict):
    id: str
    netns: str
    address: str


class TabRecord(TypedDict):
    n: int
    pid: int
    started: int


class SandboxRecord(TypedDict):
    id: str
    hostname: str
    image: str
    created: float
    runtime_id: str
    network: NetworkRecord | None
    tabs: NotRequired[list[TabRecord]]
    next_tab: NotRequired[int]
    id_range: NotRequired[int]  # the first host id of its range (root inside)
    group: NotRequired[str | None]  # the private network it shares with its group's other members
    recorded: NotRequired[bool]  # its terminals are recorded (sandbox.agent.recordings)


def tab_key(runtime_id: str, number: int) -> str:
    """The keeper's key of a sandbox's terminal ``number`` (>= 1; terminal 0's key is the runtime id)."""
    return f"{runtime_id}/{number}"


@dataclass
class Tab:
    """A terminal after the first (a browser tab): a shell started with ``runc exec``.

    ``pid`` is its shell's host pid, which leads the shell's session; ``started`` its start time
    (clock ticks after boot), so that a pid reused after the shell is gone is never taken for it.
    """

    number: int
    terminal: Terminal
    pid: int
    started: int
    pidfd: int = -1  # polls readable once the shell has exited (see Tabs.watch_shell)


@dataclass
class Sandbox:
    """A live sandbox as the agent knows it."""

    sandbox_id: str
    hostname: str
    image: str
    created: float
    terminal: Terminal | None = None
    network: Lease | None = None
    runtime_id: str = ""  # runc's id and the directory name; differs from sandbox_id if it came warm
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tabs: dict[int, Tab] = field(default_factory=dict)  # terminals 1, 2, ...; terminal 0 is ``terminal``
    next_tab: int = 1  # numbers are never reused, so a stale page cannot reach another tab's shell
    id_range: int = 0  # the first host id of its range (root inside); 0 until started or adopted
    group: str | None = None  # its group (a session): the sandboxes it reaches, see sandbox.agent.groups
    recorded: bool = False  # its terminals are recorded, see sandbox.agent.recordings

    def __post_init__(self) -> None:
        self.runtime_id = self.runtime_id or self.sandbox_id

    @classmethod
    def from_record(cls, record: SandboxRecord, terminal: Terminal, runtime_id: str, directory: Path) -> Sandbox:
        """The sandbox an earlier agent recorded in ``directory``, with its first ``terminal``
        (its tabs are taken over separately, see :meth:`Tabs.adopt`)."""
        net, ids = record.get("network"), int(record.get("id_range", 0))
        network = None
        if net:
            network = Lease(net["id"], Path(net["netns"]), ipaddress.IPv4Address(net["address"]), directory, ids)
        sandbox = cls(record["id"], record["hostname"], record["image"], record["created"], terminal, network)
        sandbox.runtime_id, sandbox.id_range = runtime_id, ids
        sandbox.group = record.get("group")
        sandbox.recorded = bool(record.get("recorded", False))
        return sandbox

    def describe(self) -> dict[str, Any]:
        """The sandbox as replies show it."""
        return {
            "id": self.sandbox_id,
            "hostname": self.hostname,
            "image": self.image,
            "created": self.created,
            "exited": bool(self.terminal and self.terminal.exited),
            "address": str(self.network.address) if self.network else None,
            "runtime_id": self.runtime_id,
            "terminals": [0, *sorted(self.tabs)],
            "id_range": self.id_range,
            "group": self.group,
        }

    def terminal_of(self, number: int) -> Terminal | None:
        """Terminal ``number`` (0 is the first shell's), or None if it is closed or was never opened."""
        if number == 0:
            return self.terminal
        tab = self.tabs.get(number)
        return tab.terminal if tab else None

    def kept_terminals(self) -> dict[str, Terminal]:
        """Every open terminal of the sandbox by its keeper key."""
        kept = {self.runtime_id: self.terminal} if self.terminal and not self.terminal.exited else {}
        kept.update({tab_key(self.runtime_id, n): t.terminal for n, t in self.tabs.items() if not t.terminal.exited})
        return kept

    def record(self) -> SandboxRecord:
        """What an agent started later needs to adopt this sandbox (see :meth:`from_record`)."""
        network = self.network
        return {
            "id": self.sandbox_id,
            "hostname": self.hostname,
            "image": self.image,
            "created": self.created,
            "runtime_id": self.runtime_id,
            "network": {"id": network.network_id, "netns": str(network.netns), "address": str(network.address)}
            if network
            else None,
            "tabs": [{"n": t.number, "pid": t.pid, "started": t.started} for t in self.tabs.values()],
            "next_tab": self.next_tab,
            "id_range": self.id_range,
            "group": self.group,
            "recorded": self.recorded,
        }


def write_record(sandbox: Sandbox, directory: Path) -> None:
    """Record the sandbox in its ``directory`` for the next agent; a failure is logged, not raised."""
    partial = directory / (RECORD + ".new")
    try:
        partial.write_text(json.dumps(sandbox.record()))
        os.replace(partial, directory / RECORD)
    except OSError as exc:
        log.warning("could not record sandbox %s (%s); it will not survive an agent restart", sandbox.sandbox_id, exc)


def read_record(directory: Path) -> SandboxRecord:
    """The record in ``directory``; OSError or ValueError if there is none or it is unreadable."""
    record: SandboxRecord = json.loads((directory / RECORD).read_text())
    return record
