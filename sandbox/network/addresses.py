"""The sandbox addresses one agent handed out, recorded only in the kernel.

Each handed-out address is an element of the nft set ``sandboxes`` in the agent's table (see
:mod:`sandbox.network.rules`), its comment the owner (a sandbox or pooled network id). Claiming
adds an element, releasing deletes it (lines of the ``nft -f`` transaction that also pins or
unpins the sandbox's port, :mod:`sandbox.network.ports`); so the record survives an agent
restart and vanishes with a host reboot, together with everything it describes. The agent
reads it once at start and keeps a copy in memory, which only its own transactions change.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping

from sandbox.network.commands import run, run_sync
from sandbox.network.layout import NetworkConfig, NetworkError
from sandbox.network.rules import ADDRESS_SET


async def owners(table: str) -> dict[ipaddress.IPv4Address, str]:
    """Every handed-out address with its owner; {} while the table does not exist."""
    code, out, _ = await run("nft", "-j", "list", "set", "inet", table, ADDRESS_SET, ok_errors=("No such file",))
    return parse_elements(out) if code == 0 else {}


def owners_now(table: str) -> dict[ipaddress.IPv4Address, str]:
    """``owners``, for callers outside the event loop."""
    code, out, _ = run_sync("nft", "-j", "list", "set", "inet", table, ADDRESS_SET)
    return parse_elements(out) if code == 0 else {}


def next_free(config: NetworkConfig, used: Mapping[ipaddress.IPv4Address, str], cursor: int) -> ipaddress.IPv4Address:
    """The first address of the subnet after ``cursor`` (wrapping round) that is neither the gateway,
    the broadcast address nor in ``used``: next-fit, so released addresses are reused last."""
    first, last = int(config.gateway) + 1, int(config.subnet.broadcast_address) - 1
    size = last - first + 1
    start = cursor + 1
    for step in range(size):
        candidate = ipaddress.IPv4Address(first + (start - first + step) % size)
        if candidate not in used:
            return candidate
    raise NetworkError(
        f"no free address left in {config.subnet} ({len(used)} sandboxes): "
        "use a larger PLAYGROUND_SANDBOX_SUBNET or destroy sandboxes"
    )


def _element(address: ipaddress.IPv4Address, owner: str) -> str:
    """The set element recording ``address`` as ``owner``'s: the address, the owner as its comment."""
    return f"{address} comment {json.dumps(owner[:120])}"


def add_line(table: str, address: ipaddress.IPv4Address, owner: str) -> str:
    """The ``nft -f`` line that records ``address`` as ``owner``'s."""
    return f"add element inet {table} {ADDRESS_SET} {{ {_element(address, owner)} }}\n"


def release_lines(table: str, owned: Mapping[ipaddress.IPv4Address, str]) -> str:
    """The ``nft -f`` lines that remove ``owned``'s addresses (address -> owner, at least one) from
    the record, whether or not each is still there (nft 1.0.6 has no "destroy element": adding
    first makes the delete succeed either way, in the same transaction)."""
    added = ", ".join(_element(a, o) for a, o in sorted(owned.items()))
    listed = ", ".join(str(a) for a in sorted(owned))
    set_ref = f"inet {table} {ADDRESS_SET}"
    return f"add element {set_ref} {{ {added} }}\ndelete element {set_ref} {{ {listed} }}\n"


def parse_elements(text: str) -> dict[ipaddress.IPv4Address, str]:
    """The addresses and comments in the output of ``nft -j list set``."""
    result: dict[ipaddress.IPv4Address, str] = {}
    for item in json.loads(text or "{}").get("nftables", []):
        for element in (item.get("set") or {}).get("elem", []):
            if isinstance(element, dict) and "elem" in element:
                value, comment = element["elem"].get("val"), element["elem"].get("comment", "")
            else:
                value, comment = element, ""
            if isinstance(value, str):
                result[ipaddress.IPv4Address(value)] = comment
    return result
