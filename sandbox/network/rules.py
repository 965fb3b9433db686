"""The nftables walls of one agent's sandbox networks, rendered as one ``nft -f`` script.

A pure function of the agent's :class:`~sandbox.network.layout.NetworkConfig`, the addresses
handed out so far and the egress interface: no I/O, so the ruleset can be read and tested as
text. The set ``sandboxes`` it declares is also the address allocator's record (see
:mod:`sandbox.network.addresses`).

Two tables, one transaction: ``inet <prefix>`` walls the sandboxes off from the host, from each
other and from non-public ranges, by address, but lets the members of one group (a session's
nodes, see :func:`peer_pairs`) reach each other; ``bridge <prefix>`` pins each sandbox's bridge
port to its address and MAC (see :mod:`sandbox.network.ports`), so the addresses the inet walls
see are the sandboxes' own, whatever root inside does to its eth0.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping

from sandbox.network.layout import NetworkConfig, NetworkError
from sandbox.network.ports import PORT_SET, elements

ADDRESS_SET = "sandboxes"  # the nft set of handed-out addresses, each with its owner as comment
PEER_SET = "session_peers"  # the nft set of (source . destination) pairs of one group's members

Pair = tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]

# Destinations a sandbox never reaches, even with egress on: everything that is not the public
# internet (RFC 6890 special-purpose ranges, private ranges, CGNAT, link-local with the cloud
# metadata address 169.254.169.254, loopback, multicast, reserved, broadcast).
NON_PUBLIC_IPV4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
)


def peer_pairs(groups: Iterable[Iterable[ipaddress.IPv4Address]]) -> list[Pair]:
    """Every (source, destination) pair of two different addresses of one group, both directions,
    sorted: what the ``session_peers`` set holds for ``groups`` (each the addresses of one group's
    members)."""
    pairs: set[Pair] = set()
    for group in groups:
        members = set(group)
        pairs.update((a, b) for a in members for b in members if a != b)
    return sorted(pairs)


def render_peers(pairs: Iterable[Pair]) -> str:
    """The elements of the ``session_peers`` set, as nft writes them: ``a . b, ...``."""
    return ", ".join(f"{a} . {b}" for a, b in pairs)


def render_peer_update(table: str, pairs: Iterable[Pair]) -> str:
    """The nft script that makes ``pairs`` the whole of the ``session_peers`` set, in one transaction."""
    listed = render_peers(pairs)
    add = f"add element inet {table} {PEER_SET} {{ {listed} }}\n" if listed else ""
    return f"flush set inet {table} {PEER_SET}\n{add}"


def render_ruleset(
    config: NetworkConfig,
    addresses: Mapping[ipaddress.IPv4Address, str],
    egress_interface: str | None,
    peers: Iterable[Pair] = (),
) -> str:
    """The nft script that (re)creates this agent's two tables atomically, keeping ``addresses``
    (address -> owner) and the ports pinned to them, and letting the ``peers`` pairs through.

    Each table's first two lines make the script work whether or not it exists (``nft -f`` runs
    it as one transaction, so there is no moment without walls). Chains that filter are
    ``policy accept`` and match only the bridge and its sandbox ports, so other traffic on the
    host (Docker, the web tier) is never affected; a drop in any table is final, so these walls
    hold whatever other tables say.
    """
    t, br, ports = config.table, json.dumps(config.bridge), json.dumps(config.veth_prefix + "*")
    elements = ", ".join(f"{a} comment {json.dumps(c[:120])}" for a, c in sorted(addresses.items()))
    if egress_interface is None and config.egress:
        raise NetworkError("egress is on but no egress interface was given")
    out = json.dumps(egress_interface) if egress_interface else None
    peer_elements = render_peers(peers)
    registry_rule = (
        f"        ip daddr {config.gateway} tcp dport {config.registry_port} accept  # the registry mirror's front\n"
        if config.registry_port
        else ""
    )
    egress_rules = (
        f"""        ip daddr @non_public counter name "to_non_public" drop
        oifname {out} accept  # public internet only, through the default interface
        counter name "egress_other" drop"""
        if config.egress
        else """        counter name "egress_off" drop  # PLAYGROUND_EGRESS is off: nothing is forwarded"""
    )
    nat = (
        f"""
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {config.subnet} oifname {out} masquerade
    }}
"""
        if config.egress
        else ""
    )
    return f"""table inet {t}
delete table inet {t}
table inet {t} {{
    # Addresses handed to this agent's sandboxes (comment = sandbox id): the allocator's record.
    set {ADDRESS_SET} {{
        type ipv4_addr
        {f"elements = {{ {elements} }}" if elements else ""}
    }}
    # (source . destination) of two sandboxes of one group (a session's nodes), both directions:
    # derived by the agent from its sandboxes' records (sandbox.agent.groups).
    set {PEER_SET} {{
        type ipv4_addr . ipv4_addr
        {f"elements = {{ {peer_elements} }}" if peer_elements else ""}
    }}
    set non_public {{
        type ipv4_addr
        flags interval
        auto-merge
        elements = {{ {", ".join(NON_PUBLIC_IPV4)} }}
    }}
    counter to_host {{}}
    counter to_sandbox {{}}
    counter spoofed {{}}
    counter ipv6 {{}}
    counter to_non_public {{}}
    counter egress_off {{}}
    counter egress_other {{}}
    counter inbound {{}}
    counter unbridged {{}}
    counter redirects {{}}

    # Sandbox -> host (any local address: the gateway, 127/8 via the bridge, the host's public
    # addresses): nothing but the registry mirror's front on the gateway, so no other host port
    # (Redis, the web tier, the mirror's store on loopback, sshd, ...) is reachable.
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        iifname {ports} counter name "unbridged" drop  # see the forward chain
        iifname {br} jump from_sandbox_to_host
    }}
    chain from_sandbox_to_host {{
        meta nfproto ipv6 counter name "ipv6" drop
        ct state established,related accept  # replies to connections the host opened
{registry_rule}        counter name "to_host" drop
    }}

    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        # A frame to an IEEE link-local MAC (01:80:c2:00:00:0x) is not bridged: the bridge hands
        # it to the host's stack on the port itself, so its packet would come in on the port,
        # not on the bridge, and pass the walls below. Nothing legitimate arrives that way.
        iifname {ports} counter name "unbridged" drop
        iifname {br} jump from_sandbox
        oifname {br} jump to_sandbox
    }}
    chain from_sandbox {{
        meta nfproto ipv6 counter name "ipv6" drop
        ip saddr != @{ADDRESS_SET} counter name "spoofed" drop
        # Sandbox -> sandbox of its own group: every port and protocol. Routed through the
        # gateway (eth0's address is a /32, so no other sandbox is on-link; the ports are
        # "isolated", so no frame goes from one sandbox port to another). The source is the
        # sandbox's own: the port pin (table bridge) drops any other.
        oifname {br} ip saddr . ip daddr @{PEER_SET} accept
        # Sandbox -> any other sandbox (routed via the gateway, or bridged when br_netfilter is
        # loaded; bridged frames between sandboxes are also stopped by the "isolated" flag).
        oifname {br} counter name "to_sandbox" drop
{egress_rules}
    }}
    chain to_sandbox {{
        ct state established,related accept
        # LATER (port publishing): accept what the prerouting DNAT below translated, e.g.
        #   ct status dnat accept
        counter name "inbound" drop
    }}

    # A packet from one peer to another leaves by the bridge it came in on, so the host would
    # tell the sender to go straight to the peer (an ICMP redirect): that way is walled (isolated
    # ports), so the advice is never sent.
    chain output {{
        type filter hook output priority filter - 10; policy accept;
        oifname {br} icmp type redirect counter name "redirects" drop
    }}
{nat}
    # LATER (port publishing, host port -> sandbox port): a chain
    #   type nat hook prerouting priority dstnat; with  tcp dport . ... dnat ip to ... via a map
    # (and the same in an output chain for host-local clients), or a proxy on the host that
    # connects to the sandbox's address, which needs no rule here: the host may open connections
    # to sandboxes, and their replies are "established".
}}
{render_port_pinning(config, addresses)}"""


def render_port_pinning(config: NetworkConfig, addresses: Mapping[ipaddress.IPv4Address, str]) -> str:
    """The ``bridge <prefix>`` table: each sandbox port may send only IPv4 and ARP from its own
    MAC and address (the ``ports`` set, derived from ``addresses``: see
    :mod:`sandbox.network.ports`); every other frame entering from a sandbox port is dropped.

    The chain is on the bridge's prerouting hook, which the kernel runs before the bridge learns
    the frame's source MAC or forwards it (``br_handle_frame`` -> ``nf_hook_bridge_pre`` ->
    ``br_handle_frame_finish``). Frames to IEEE link-local MACs skip that hook; the ports'
    learning is off for them, and the inet table drops what they carry to the host's stack.
    """
    t, ports = config.table, json.dumps(config.veth_prefix + "*")
    pinned = ", ".join(elements(config, addresses))
    arp_ipv4 = "arp htype 1 arp ptype 0x0800 arp hlen 6 arp plen 4"
    return f"""table bridge {t}
delete table bridge {t}
table bridge {t} {{
    # (port, MAC, address) of every sandbox network (comment = its owner).
    set {PORT_SET} {{
        type ifname . ether_addr . ipv4_addr
        {f"elements = {{ {pinned} }}" if pinned else ""}
    }}
    counter unpinned_ipv4 {{}}
    counter unpinned_arp {{}}
    counter not_ipv4_or_arp {{}}

    chain prerouting {{
        type filter hook prerouting priority filter; policy accept;
        iifname {ports} jump from_sandbox_port
    }}
    chain from_sandbox_port {{
        ether type ip iifname . ether saddr . ip saddr @{PORT_SET} accept
        # ARP: the frame's sender and the sender the ARP message claims must both be the port's.
        ether type arp {arp_ipv4} iifname . ether saddr . arp saddr ip @{PORT_SET} \\
            iifname . arp saddr ether . arp saddr ip @{PORT_SET} accept
        ether type ip counter name "unpinned_ipv4" drop  # another address or MAC
        ether type arp counter name "unpinned_arp" drop  # gratuitous or forged ARP, probes from 0.0.0.0
        counter name "not_ipv4_or_arp" drop  # IPv6, VLAN-tagged frames, every other ethertype
    }}
}}
"""
