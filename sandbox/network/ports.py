"""Each sandbox's bridge port pinned to its address and MAC, so root inside cannot be anyone else.

Root inside a sandbox may hold ``CAP_NET_ADMIN`` and ``CAP_NET_RAW`` over its own network
namespace: it can change eth0's address and MAC and send any frame. What leaves its eth0
arrives on its bridge port (the host end of the veth, ``<prefix>-<hash>``), which the sandbox
cannot touch. So the port is where the sandbox's identity is enforced:

- eth0's MAC is derived from its address (:func:`mac_for`), so (port, MAC, address) is known
  from the address record alone;
- the triple is an element of the nft set ``ports`` of the table ``bridge <prefix>``, whose
  prerouting chain (:mod:`sandbox.network.rules`) passes only IPv4 and ARP frames that carry
  it and drops everything else entering from a sandbox port;
- the port does not learn (``learning off``): the bridge's forwarding entry for the sandbox is
  a static one, added here, so no frame can move another sandbox's MAC (or the gateway's) onto
  this port, whatever path it takes through the bridge; and unknown unicast is not flooded to
  it (``flood off``), so it never sees frames meant for another sandbox.

eth0 is made with that MAC (``ip link add ... peer name eth0 address <MAC>``).

The set's elements are derived from the address set (:mod:`sandbox.network.addresses`): an
address's owner names the port, the address gives the MAC. ``setup_host`` renders them from the
addresses it keeps; a network's create adds its element in the transaction that claims its
address (:func:`pin_line`), and its destroy removes it in the one that releases it
(:func:`unpin_lines`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping

from sandbox.network.commands import run
from sandbox.network.layout import NetworkConfig

PORT_SET = "ports"  # the nft set of pinned (port, MAC, address) triples, in table "bridge <prefix>"

# Locally administered unicast (bit 1 of the first octet set, bit 0 clear), then the four bytes
# of the IPv4 address: one MAC per address. The bridge's own MAC starts with 02 and Docker's
# containers' with 02:42, so neither can be one of these.
MAC_PREFIX = "06:70"


def mac_for(address: ipaddress.IPv4Address) -> str:
    """The MAC of the sandbox eth0 holding ``address``: ``06:70:`` and the address's four bytes."""
    return ":".join([MAC_PREFIX, *(f"{b:02x}" for b in address.packed)])


def element(config: NetworkConfig, owner: str, address: ipaddress.IPv4Address) -> str:
    """The ``ports`` element of ``owner``'s network: ``"<veth>" . <MAC> . <address>``."""
    return f"{json.dumps(config.veth_name(owner))} . {mac_for(address)} . {address}"


def elements(config: NetworkConfig, owners: Mapping[ipaddress.IPv4Address, str]) -> list[str]:
    """The ``ports`` elements, each with its owner as comment, of the networks holding ``owners``'
    addresses (address -> owner, as the address set records them), sorted by address."""
    return [f"{element(config, o, a)} comment {json.dumps(o[:120])}" for a, o in sorted(owners.items())]


def pin_line(config: NetworkConfig, owner: str, address: ipaddress.IPv4Address) -> str:
    """The ``nft -f`` line adding the ``ports`` element of ``owner``'s port, without which every
    frame from the port is dropped (it may come before the port exists: it names it)."""
    return f"add element bridge {config.table} {PORT_SET} {{ {elements(config, {address: owner})[0]} }}\n"


def port_settings(config: NetworkConfig, owner: str) -> str:
    """The ``ip -batch`` line for ``owner``'s bridge port: isolated (no frames to other sandbox
    ports), no learning, no flooding of unknown unicast to it."""
    return f"link set {config.veth_name(owner)} type bridge_slave isolated on learning off flood off\n"


async def add_forwarding_entry(config: NetworkConfig, owner: str, address: ipaddress.IPv4Address) -> None:
    """The bridge's static forwarding entry for ``owner``'s MAC, on its port (which must be on the
    bridge). NetworkError if ``bridge`` fails."""
    veth = config.veth_name(owner)
    await run("bridge", "fdb", "replace", mac_for(address), "dev", veth, "master", "static")


def unpin_lines(config: NetworkConfig, owners: Mapping[ipaddress.IPv4Address, str]) -> str:
    """The ``nft -f`` lines removing the ``ports`` elements of the networks holding ``owners``'
    addresses, whether or not they were added (a create may have stopped before): nft 1.0.6 has no
    "destroy element", so they are added first and deleted in the same transaction. The
    forwarding entries go with the ports."""
    listed = ", ".join(element(config, o, a) for a, o in sorted(owners.items()))
    set_ref = f"bridge {config.table} {PORT_SET}"
    return f"add element {set_ref} {{ {listed} }}\ndelete element {set_ref} {{ {listed} }}\n"
