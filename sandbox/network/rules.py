"""The nftables walls of one agent's sandbox networks, rendered as one ``nft -f`` script.

A pure function of the agent's :class:`~sandbox.network.layout.NetworkConfig`, the addresses
handed out so far and the egress interface: no I/O, so the ruleset can be read and tested as
text. The set ``sandboxes`` it declares is also the address allocator's record (see
:mod:`sandbox.network.addresses`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping

from sandbox.network.layout import NetworkConfig, NetworkError

ADDRESS_SET = "sandboxes"  # the nft set of handed-out addresses, each with its owner as comment

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


def render_ruleset(
    config: NetworkConfig, addresses: Mapping[ipaddress.IPv4Address, str], egress_interface: str | None
) -> str:
    """The nft script that (re)creates this agent's table atomically, keeping ``addresses``.

    The first two lines make the script work whether or not the table exists (``nft -f`` runs
    it as one transaction, so there is no moment without walls). Chains that filter are
    ``policy accept`` and match only the bridge, so other traffic on the host (Docker, the web
    tier) is never affected; a drop in any table is final, so these walls hold whatever other
    tables say.
    """
    t, br = config.table, json.dumps(config.bridge)
    elements = ", ".join(f"{a} comment {json.dumps(c[:120])}" for a, c in sorted(addresses.items()))
    if egress_interface is None and config.egress:
        raise NetworkError("egress is on but no egress interface was given")
    out = json.dumps(egress_interface) if egress_interface else None
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

    # Sandbox -> host (any local address: the gateway, 127/8 via the bridge, the host's public
    # addresses): nothing, so no host port (Redis, the web tier, sshd, ...) is reachable.
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        iifname {br} jump from_sandbox_to_host
    }}
    chain from_sandbox_to_host {{
        meta nfproto ipv6 counter name "ipv6" drop
        ct state established,related accept  # replies to connections the host opened
        counter name "to_host" drop
    }}

    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname {br} jump from_sandbox
        oifname {br} jump to_sandbox
    }}
    chain from_sandbox {{
        meta nfproto ipv6 counter name "ipv6" drop
        ip saddr != @{ADDRESS_SET} counter name "spoofed" drop
        # Sandbox -> sandbox (routed via the gateway, or bridged when br_netfilter is loaded).
        # Bridged frames between sandboxes are also stopped by the ports' "isolated" flag.
        # LATER (per-session private network): before this drop,
        #   ip saddr . ip daddr @session_peers accept
        # with a set of (address . address) pairs of one session's instances, and those ports
        # un-isolated or on a per-session bridge.
        oifname {br} counter name "to_sandbox" drop
{egress_rules}
    }}
    chain to_sandbox {{
        ct state established,related accept
        # LATER (port publishing): accept what the prerouting DNAT below translated, e.g.
        #   ct status dnat accept
        counter name "inbound" drop
    }}
{nat}
    # LATER (port publishing, host port -> sandbox port): a chain
    #   type nat hook prerouting priority dstnat; with  tcp dport . ... dnat ip to ... via a map
    # (and the same in an output chain for host-local clients), or a proxy on the host that
    # connects to the sandbox's address, which needs no rule here: the host may open connections
    # to sandboxes, and their replies are "established".
}}
"""
