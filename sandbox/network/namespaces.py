"""Per-sandbox network namespaces behind one host bridge, walled off with nftables.

Layout on the host, for an agent with name prefix ``pg`` and subnet ``10.89.0.0/16``::

    bridge pgbr0 (10.89.0.1/16, the gateway; IPv6 off)
      ├── veth pg-<hash>  ⇄  eth0 10.89.0.2/16 in netns /run/netns/pg-<hash16>  (lo up, default via 10.89.0.1)
      ├── veth pg-<hash>  ⇄  eth0 10.89.0.3/16 in netns /run/netns/pg-<hash16>
      ...
    nft table inet pg: the walls (see ``render_ruleset``) and the set of handed-out addresses

Every name is derived from the prefix (bridge ``<prefix>br0``, netns and veths ``<prefix>-…``,
table ``inet <prefix>``), so two agents with different prefixes (e.g. the tests and a running
stack) never touch each other's bridge, namespaces or rules.

The netns is created here, in the host's (initial) user namespace, and runc only joins it
(OCI ``linux.namespaces`` entry ``{"type": "network", "path": ...}``). So root inside the
sandbox, whose capabilities belong to the sandbox's own user namespace, has no CAP_NET_ADMIN
or CAP_NET_RAW over its network: it cannot change its address, routes, MAC or sysctls, nor
send raw frames. The walls below do not depend on that, but it is why spoofing is not a concern.

Address allocation: the kernel is the only record. Each handed-out address is an element of
the nft set ``sandboxes`` in this agent's table, with the sandbox id as the element's comment.
Claiming an address is one ``nft add element``; releasing it is one ``nft delete element``.
An agent restart therefore needs no state file and cannot disagree with what exists:
``setup_host`` keeps the set's elements when it reloads the table, a half-finished create is
found by its element's comment, and after a host reboot everything (netns, veths, table) is
gone together. The set also serves the walls (packets from the bridge must come from a
handed-out address).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("sandbox.network.namespaces")

COMMAND_TIMEOUT = 10.0
NETNS_DIR = Path("/run/netns")
SYS_CLASS_NET = Path("/sys/class/net")
PROC_SYS_NET = Path("/proc/sys/net")
IFNAMSIZ = 15  # longest interface name the kernel accepts
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,7}")
ADDRESS_SET = "sandboxes"
PACKAGE_OF = {"ip": "iproute2", "nft": "nftables", "nsenter": "util-linux"}

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

# Inside every sandbox netns: no IPv6 at all; unprivileged ICMP echo sockets, so a `ping` that
# uses them works without CAP_NET_RAW; and every port bindable without CAP_NET_BIND_SERVICE, so
# root inside can run a web server on port 80. Root inside lacks both capabilities over this
# netns (it belongs to the host's user namespace); Docker sets the same two defaults.
NETNS_SYSCTLS = {
    "ipv6/conf/all/disable_ipv6": "1",
    "ipv6/conf/default/disable_ipv6": "1",
    "ipv4/ping_group_range": "0 2147483647",
    "ipv4/ip_unprivileged_port_start": "0",
}


class NetworkError(Exception):
    """A network step failed; the message says which step, why, and what to do."""


@dataclass(frozen=True)
class NetworkConfig:
    """What one agent's sandbox networks look like. Build it with ``for_prefix`` or ``from_settings``.

    ``name_prefix`` (1-8 lower-case letters/digits, starting with a letter) must be unique per
    agent on a host; ``subnet`` must not overlap any network the host already routes, and must
    hold at least the gateway and one sandbox (a /30 or larger).
    """

    bridge: str  # "<prefix>br0"
    subnet: ipaddress.IPv4Network  # gateway = first address; sandboxes get the rest
    egress: bool  # outbound NAT to public addresses; False = no forwarding at all
    name_prefix: str  # netns/veths "<prefix>-…", nft table "inet <prefix>"

    def __post_init__(self) -> None:
        if not PREFIX_RE.fullmatch(self.name_prefix):
            raise NetworkError(
                f"network name prefix {self.name_prefix!r} is invalid: use 1-8 lower-case "
                "letters or digits starting with a letter (e.g. 'pg')"
            )
        if not (0 < len(self.bridge) <= IFNAMSIZ) or "/" in self.bridge or self.bridge.startswith(self.veth_prefix):
            raise NetworkError(
                f"bridge name {self.bridge!r} is invalid: at most {IFNAMSIZ} characters, "
                f"not starting with {self.veth_prefix!r}; use NetworkConfig.for_prefix()"
            )
        if not isinstance(self.subnet, ipaddress.IPv4Network) or self.subnet.prefixlen > 30:
            raise NetworkError(
                f"sandbox subnet {self.subnet} is invalid: it must be an IPv4 network of "
                "size /30 or larger (e.g. 10.89.0.0/16)"
            )

    @classmethod
    def for_prefix(cls, name_prefix: str, subnet: str | ipaddress.IPv4Network, egress: bool = False) -> NetworkConfig:
        """The configuration whose bridge is ``<prefix>br0``."""
        try:
            network = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise NetworkError(f"sandbox subnet {subnet!r} is not an IPv4 network: {exc}") from None
        return cls(bridge=f"{name_prefix}br0", subnet=network, egress=egress, name_prefix=name_prefix)

    @classmethod
    def from_settings(cls, network: Any) -> NetworkConfig:
        """From ``playground.config.Network`` (PLAYGROUND_NETWORK_NAME, _SANDBOX_SUBNET, _EGRESS)."""
        return cls.for_prefix(network.name, network.subnet, network.egress)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's address, the sandboxes' default route: the subnet's first address."""
        return self.subnet.network_address + 1

    @property
    def table(self) -> str:
        return self.name_prefix

    @property
    def veth_prefix(self) -> str:
        return f"{self.name_prefix}-"

    def _digest(self, sandbox_id: str) -> str:
        return base64.b32encode(hashlib.sha256(sandbox_id.encode()).digest()).decode().lower()

    def netns_name(self, sandbox_id: str) -> str:
        """``<prefix>-<16 base32 chars of sha256(id)>``."""
        return self.veth_prefix + self._digest(sandbox_id)[:16]

    def veth_name(self, sandbox_id: str) -> str:
        """The host end: ``<prefix>-<hash>``, exactly 15 characters (at least 30 bits of hash)."""
        return (self.veth_prefix + self._digest(sandbox_id))[:IFNAMSIZ]

    def netns_path(self, sandbox_id: str) -> Path:
        return NETNS_DIR / self.netns_name(sandbox_id)


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


class SandboxNetwork:
    """Creates and removes the network of each sandbox of one agent (one ``NetworkConfig``).

    Call ``setup_host`` once at agent start (it is idempotent and keeps sandboxes that survived
    a restart), ``create`` before ``runc run`` and ``destroy`` after the sandbox is gone.
    ``create``/``destroy`` may run concurrently for different sandboxes. Must run as root.
    """

    def __init__(self, config: NetworkConfig) -> None:
        self.config = config
        self.ip_forward_found: str | None = None  # net.ipv4.ip_forward as setup_host found it
        self.egress_interface: str | None = None
        self._lock = asyncio.Lock()  # serialises address claims
        self._cursor = int(config.gateway)  # next-fit: released addresses are reused last
        self.assigned: dict[str, ipaddress.IPv4Address] = {}  # what this process's create() handed out

    # -- host ------------------------------------------------------------------------------
    async def setup_host(self) -> None:
        """Create (or repair) the bridge with the gateway address, and (re)load the nft table.

        Idempotent; addresses already handed out (set elements) and their sandboxes are kept.
        Raises NetworkError if ``ip``/``nft`` are missing, the subnet overlaps a network the
        host routes elsewhere, or egress is on and the host has no default route.
        ``net.ipv4.ip_forward`` is turned on only with egress on, and never turned off.
        """
        cfg = self.config
        await self._check_subnet_is_free()
        if self.config.egress:
            self.egress_interface = await self._default_interface()
        bridge_dir = SYS_CLASS_NET / cfg.bridge
        if not bridge_dir.exists():
            await self._run("ip", "link", "add", cfg.bridge, "type", "bridge", ok_errors=("File exists",))
        if not (bridge_dir / "bridge").is_dir():
            raise NetworkError(
                f"{cfg.bridge} exists on the host but is not a bridge: remove it "
                f"(ip link del {cfg.bridge}) or choose another name prefix"
            )
        _write_sysctl(f"ipv6/conf/{cfg.bridge}/disable_ipv6", "1")
        gateway = f"{cfg.gateway}/{cfg.subnet.prefixlen}"
        stale = [a for a in await self._addresses(cfg.bridge) if a != gateway]
        mac = "02:" + ":".join(f"{b:02x}" for b in hashlib.sha256(cfg.bridge.encode()).digest()[:5])
        batch = [f"addr del {a} dev {cfg.bridge}" for a in stale] + [
            f"link set {cfg.bridge} address {mac}",  # fixed, so it does not follow the ports' MACs
            f"addr replace {gateway} dev {cfg.bridge}",
            f"link set {cfg.bridge} up",
        ]
        await self._run("ip", "-batch", "-", input_text="\n".join(batch) + "\n")

        kept = {a: c for a, c in (await self._elements()).items() if a in cfg.subnet and a != cfg.gateway}
        await self._run("nft", "-f", "-", input_text=render_ruleset(cfg, kept, self.egress_interface))
        if kept:
            self._cursor = int(max(kept))

        self.ip_forward_found = _read_sysctl("ipv4/ip_forward")
        if cfg.egress and self.ip_forward_found != "1":
            log.warning("net.ipv4.ip_forward was %s; turning it on for sandbox egress", self.ip_forward_found)
            _write_sysctl("ipv4/ip_forward", "1")
        else:
            log.info(
                "net.ipv4.ip_forward is %s (egress %s; left as found)",
                self.ip_forward_found,
                "on" if cfg.egress else "off",
            )
        log.info(
            "sandbox network ready: bridge %s %s, egress %s",
            cfg.bridge,
            gateway,
            f"via {self.egress_interface}" if cfg.egress else "off",
        )

    async def teardown_host(self) -> None:
        """Remove every sandbox network of this prefix, then the bridge and the nft table.

        Idempotent. Sandbox networks go first because they must not outlive their walls.
        ``net.ipv4.ip_forward`` is left as it is (other software may rely on it).
        """
        await self.reap(keep=())
        if (SYS_CLASS_NET / self.config.bridge).exists():
            await self._run("ip", "link", "del", self.config.bridge, ok_errors=("Cannot find device",))
        t = self.config.table
        await self._run("nft", "-f", "-", input_text=f"table inet {t}\ndelete table inet {t}\n")

    # -- sandboxes -------------------------------------------------------------------------
    async def create(self, sandbox_id: str) -> Path:
        """Give ``sandbox_id`` its netns with eth0 on the bridge; returns the netns path.

        The path (``/run/netns/<prefix>-<hash>``) goes into the OCI config as the network
        namespace's ``path``. Inside: ``lo`` and ``eth0`` up, one address from the subnet,
        default route via the gateway, IPv6 disabled. On failure everything done so far is
        undone and NetworkError is raised. Raises NetworkError if the netns already exists
        (destroy it first).
        """
        cfg = self.config
        netns, veth = cfg.netns_name(sandbox_id), cfg.veth_name(sandbox_id)
        if (NETNS_DIR / netns).exists():
            raise NetworkError(
                f"the network of sandbox {sandbox_id} already exists ({NETNS_DIR / netns}); destroy it first"
            )
        if (SYS_CLASS_NET / veth).exists():
            raise NetworkError(
                f"interface {veth} (of sandbox {sandbox_id}) already exists; destroy the sandbox's "
                "network first, or, if another sandbox's name hashes to it, use another id"
            )
        try:
            address = await self._claim(sandbox_id)
            await self._run("ip", "netns", "add", netns)
            await self._run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
            _write_sysctl(f"ipv6/conf/{veth}/disable_ipv6", "1")
            await self._run(
                "ip",
                "-batch",
                "-",
                input_text=(
                    f"link set {veth} master {cfg.bridge}\n"
                    f"link set {veth} type bridge_slave isolated on\n"  # no frames to other sandbox ports
                    f"link set {veth} up\n"
                ),
            )
            writes = "; ".join(f"echo '{v}' > {PROC_SYS_NET / k}" for k, v in NETNS_SYSCTLS.items())
            await self._run("ip", "netns", "exec", netns, "sh", "-ec", writes)
            await self._run(
                "ip",
                "-n",
                netns,
                "-batch",
                "-",
                input_text=(
                    "link set lo up\n"
                    f"addr add {address}/{cfg.subnet.prefixlen} dev eth0\n"
                    "link set eth0 up\n"
                    f"route add default via {cfg.gateway} dev eth0\n"
                ),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.destroy(sandbox_id))
            raise
        self.assigned[sandbox_id] = address
        log.debug("network of sandbox %s: %s in %s", sandbox_id, address, netns)
        return NETNS_DIR / netns

    async def destroy(self, sandbox_id: str) -> None:
        """Remove the sandbox's veth and netns and release its address.

        Idempotent, and completes whatever subset of ``create`` happened (a crash half-way).
        If a process still runs in the netns, the namespace itself lives on until it exits,
        but it is no longer on the bridge and its address is free.
        """
        cfg = self.config
        self.assigned.pop(sandbox_id, None)
        veth, netns = cfg.veth_name(sandbox_id), cfg.netns_name(sandbox_id)
        if (SYS_CLASS_NET / veth).exists():  # deleting the host end deletes eth0 too
            await self._run("ip", "link", "del", veth, ok_errors=("Cannot find device",))
        if (NETNS_DIR / netns).exists():
            await self._run("ip", "netns", "del", netns, ok_errors=("No such file",))
        async with self._lock:
            owned = [a for a, owner in (await self._elements()).items() if owner == sandbox_id]
            if owned:
                listed = ", ".join(str(a) for a in owned)
                await self._run("nft", "delete", "element", "inet", cfg.table, ADDRESS_SET, f"{{ {listed} }}")

    async def reap(self, keep: Iterable[str]) -> list[str]:
        """Remove every netns, veth and address of this prefix not belonging to a sandbox in ``keep``.

        For reconciliation at agent start (pass the ids of the sandboxes that still run; a
        netns's name is a hash, so the ids are needed to recognise it). Returns what was removed.
        """
        cfg = self.config
        keep = list(keep)
        keep_netns = {cfg.netns_name(i) for i in keep}
        keep_veth = {cfg.veth_name(i) for i in keep}
        left = self.leftovers()
        removed: list[str] = []
        for veth in left["veth"]:
            if veth not in keep_veth:
                await self._run("ip", "link", "del", veth, ok_errors=("Cannot find device",))
                removed.append(veth)
        for netns in left["netns"]:
            if netns not in keep_netns:
                await self._run("ip", "netns", "del", netns, ok_errors=("No such file",))
                removed.append(netns)
        async with self._lock:
            stale = [a for a, owner in (await self._elements()).items() if owner not in keep]
            if stale:
                listed = ", ".join(str(a) for a in stale)
                await self._run("nft", "delete", "element", "inet", cfg.table, ADDRESS_SET, f"{{ {listed} }}")
                removed += [str(a) for a in stale]
        if removed:
            log.info("removed %d leftover sandbox network object(s): %s", len(removed), ", ".join(removed))
        return removed

    async def mount_sysfs(self, sandbox_id: str, target: Path) -> None:
        """Mount a read-only sysfs that shows the sandbox's own interfaces (lo, eth0) at ``target``.

        Needed because runc (1.1) cannot mount sysfs itself when the sandbox has its own user
        namespace but joins a netns owned by the host's: the kernel refuses (EPERM). So mount it
        from the host, as a process inside the netns (``nsenter --net``), at ``<rootfs>/sys``
        before ``runc run``, and leave the ``/sys`` sysfs entry out of the OCI mounts (keep
        ``/sys/fs/cgroup``). runc's recursive bind of the rootfs carries it in, locked read-only.
        Detaching the rootfs (``umount2(MNT_DETACH)``) removes it with the rest.
        """
        netns = self.config.netns_path(sandbox_id)
        if not netns.exists():
            raise NetworkError(f"sandbox {sandbox_id} has no network namespace ({netns}): call create() first")
        await self._run(
            "nsenter", f"--net={netns}", "mount", "-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", str(target)
        )

    # -- inspection ------------------------------------------------------------------------
    def leftovers(self) -> dict[str, list[str]]:
        """What of this prefix exists now: ``netns`` names, host ``veth`` names, ``addresses`` in the set."""
        prefix = self.config.veth_prefix
        netns = sorted(n for n in _listdir(NETNS_DIR) if n.startswith(prefix))
        veths = sorted(n for n in _listdir(SYS_CLASS_NET) if n.startswith(prefix))
        addresses = sorted(self.elements())
        return {"netns": netns, "veth": veths, "addresses": [str(a) for a in addresses]}

    def address_of(self, sandbox_id: str) -> ipaddress.IPv4Address | None:
        """The address handed to ``sandbox_id``, or None."""
        return next((a for a, owner in self.elements().items() if owner == sandbox_id), None)

    def counters(self) -> dict[str, int]:
        """Packets dropped by each wall since ``setup_host`` (counter name -> packets); {} without the table."""
        code, out, _ = _run_sync("nft", "-j", "list", "counters", "table", "inet", self.config.table)
        if code != 0:
            return {}
        result = {}
        for item in json.loads(out).get("nftables", []):
            counter = item.get("counter")
            if counter:
                result[counter["name"]] = int(counter.get("packets", 0))
        return result

    # -- helpers ---------------------------------------------------------------------------
    async def _claim(self, sandbox_id: str) -> ipaddress.IPv4Address:
        cfg = self.config
        async with self._lock:
            used = await self._elements()
            for address, owner in used.items():
                if owner == sandbox_id:  # a half-finished create of the same sandbox
                    return address
            first, last = int(cfg.gateway) + 1, int(cfg.subnet.broadcast_address) - 1
            size = last - first + 1
            start = self._cursor + 1
            for step in range(size):
                candidate = ipaddress.IPv4Address(first + (start - first + step) % size)
                if candidate not in used:
                    break
            else:
                raise NetworkError(
                    f"no free address left in {cfg.subnet} ({len(used)} sandboxes): "
                    "use a larger PLAYGROUND_SANDBOX_SUBNET or destroy sandboxes"
                )
            comment = json.dumps(sandbox_id[:120])
            await self._run(
                "nft",
                "add",
                "element",
                "inet",
                cfg.table,
                ADDRESS_SET,
                f"{{ {candidate} comment {comment} }}",
                hint="is the host set up? call setup_host() first",
            )
            self._cursor = int(candidate)
            return candidate

    async def _elements(self) -> dict[ipaddress.IPv4Address, str]:
        code, out, _ = await self._run(
            "nft", "-j", "list", "set", "inet", self.config.table, ADDRESS_SET, ok_errors=("No such file",)
        )
        return _parse_elements(out) if code == 0 else {}

    def elements(self) -> dict[ipaddress.IPv4Address, str]:
        """Every handed-out address with its owner (the sandbox or network id), from the nft set."""
        code, out, _ = _run_sync("nft", "-j", "list", "set", "inet", self.config.table, ADDRESS_SET)
        return _parse_elements(out) if code == 0 else {}

    async def _addresses(self, interface: str) -> list[str]:
        _, out, _ = await self._run("ip", "-j", "-4", "addr", "show", "dev", interface)
        return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out or "[]") for a in link.get("addr_info", [])]

    async def _check_subnet_is_free(self) -> None:
        _, out, _ = await self._run("ip", "-j", "-4", "route", "show", "table", "main")
        for route in json.loads(out or "[]"):
            dst, dev = route.get("dst", ""), route.get("dev", "")
            if dst == "default" or dev == self.config.bridge:
                continue
            try:
                network = ipaddress.IPv4Network(dst, strict=False)
            except ValueError:
                continue
            if network.overlaps(self.config.subnet):
                raise NetworkError(
                    f"sandbox subnet {self.config.subnet} overlaps {network}, which the host routes "
                    f"via {dev or 'another route'}: set PLAYGROUND_SANDBOX_SUBNET to an unused range"
                )

    async def _default_interface(self) -> str:
        _, out, _ = await self._run("ip", "-j", "-4", "route", "show", "default")
        for route in json.loads(out or "[]"):
            if route.get("dev"):
                return str(route["dev"])
        raise NetworkError(
            "PLAYGROUND_EGRESS is on but the host has no IPv4 default route to masquerade through: "
            "add one, or turn egress off"
        )

    async def _run(
        self,
        *args: str,
        input_text: str | None = None,
        ok_errors: tuple[str, ...] = (),
        hint: str = "",
        timeout: float = COMMAND_TIMEOUT,
    ) -> tuple[int, str, str]:
        """Run a command; NetworkError on failure unless stderr contains one of ``ok_errors``."""
        command = " ".join(args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            raise NetworkError(_not_installed(args[0])) from None
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input_text.encode() if input_text is not None else None), timeout
            )
        except TimeoutError:
            await _kill(proc)
            raise NetworkError(
                f"`{command}` did not finish within {timeout:.0f} s; is the host overloaded "
                "or the netlink socket stuck?"
            ) from None
        except BaseException:  # cancelled: do not leave the command running
            await asyncio.shield(_kill(proc))
            raise
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace").strip()
        if proc.returncode != 0 and not any(e in stderr for e in ok_errors):
            detail = f"; input:\n{input_text}" if input_text and len(input_text) < 400 else ""
            raise NetworkError(
                f"`{command}` failed (exit {proc.returncode}): {stderr or 'no message'}"
                f"{'; ' + hint if hint else ''}{detail}"
            )
        return proc.returncode or 0, stdout, stderr


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def _parse_elements(text: str) -> dict[ipaddress.IPv4Address, str]:
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


def _run_sync(*args: str) -> tuple[int, str, str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        raise NetworkError(_not_installed(args[0])) from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"`{' '.join(args)}` did not finish within {COMMAND_TIMEOUT:.0f} s") from None
    return done.returncode, done.stdout, done.stderr


def _not_installed(tool: str) -> str:
    return (
        f"{tool} is not installed: install the Debian package {PACKAGE_OF.get(tool, tool)} (deploy/install-deps.sh run)"
    )


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _read_sysctl(key: str) -> str | None:
    try:
        return (PROC_SYS_NET / key).read_text().strip()
    except FileNotFoundError:
        return None


def _write_sysctl(key: str, value: str) -> None:
    """Write a host sysctl; keys under ipv6/ are skipped on hosts without IPv6."""
    path = PROC_SYS_NET / key
    if key.startswith("ipv6/") and not path.exists():
        return
    try:
        path.write_text(value + "\n")
    except OSError as exc:
        raise NetworkError(f"cannot set net.{key.replace('/', '.')} = {value}: {exc}") from None
