"""Per-sandbox network namespaces behind one host bridge, walled off with nftables.

Layout on the host, for an agent with name prefix ``pg`` and subnet ``10.89.0.0/16``::

    bridge pgbr0 (10.89.0.1/16, the gateway; IPv6 off; forwarding on for it alone)
      ├── veth pg-<hash>  ⇄  eth0 10.89.0.2/32 in netns /run/netns/pg-<hash16>
      │                      (lo up; 10.89.0.1 on-link, default via 10.89.0.1;
      │                       MAC 06:70:0a:59:00:02, from the address)
      ├── veth pg-<hash>  ⇄  eth0 10.89.0.3/32 in netns /run/netns/pg-<hash16>
      ...
    nft table inet pg: the walls (:mod:`sandbox.network.rules`), the set of handed-out addresses
                       and the set of pairs of one group's sandboxes (peers)
    nft table bridge pg: each port pinned to its sandbox's address and MAC (:mod:`sandbox.network.ports`)

eth0's address is a /32: no other sandbox is on-link, so a sandbox sends everything, to its
peers too, to the gateway, and the host routes it back onto the bridge (the ports are
"isolated": no frame goes from one sandbox port to another). Forwarding is on for packets that
come in on the bridge alone (``net.ipv4.conf.<bridge>.forwarding``; the host-wide
``net.ipv4.ip_forward`` is left as found): what the host forwards is what the walls let through,
the pairs of one group's sandboxes (and, with egress on, the public internet).

Every name is derived from the prefix (bridge ``<prefix>br0``, netns and veths ``<prefix>-…``,
tables ``inet <prefix>`` and ``bridge <prefix>``; see :mod:`sandbox.network.layout`), so two
agents with different prefixes (e.g. the tests and a running stack) never touch each other's
bridge, namespaces or rules.

The netns of a sandbox is created inside the sandbox's own user namespace (by the network pool,
see :mod:`sandbox.network.pool` and :mod:`sandbox.host.userns`), and runc joins both (OCI
``linux.namespaces`` entries with a ``path``). So root inside has CAP_NET_ADMIN over its own
network, and only over it: it may change its address, routes, MAC and sysctls, and send raw
frames, as an inner Docker engine needs. The walls are on the host side, where nothing inside
reaches them: the nftables rules below and the bridge port's pinning.

Address allocation (:mod:`sandbox.network.addresses`): the kernel holds the record. Each
handed-out address is an element of the nft set ``sandboxes`` in this agent's table, with the
sandbox id as the element's comment. Claiming an address adds its element and its port's pin in
one nft transaction; releasing removes both in another. An agent restart therefore needs no
state file and cannot disagree with what exists: ``setup_host`` keeps the set's elements when it
reloads the table, a half-finished create is found by its element's comment, and after a host
reboot everything (netns, veths, table) is gone together. The agent reads the set at
``setup_host`` and keeps a copy, which only its own transactions change (read again by ``reap``
and after a transaction that failed), so a claim or a release is one command. The set also
serves the walls (packets from the bridge must come from a handed-out address).

A network is made in five commands (the claim; ``ip link add`` of the veth, its eth0 in the
netns with its MAC; ``ip -batch`` putting the port on the bridge; the port's forwarding entry
and, at the same time, the inside's sysctls, addresses and routes) and removed in two (``ip
-batch`` deleting the veth and the netns; the release): each command is a process, and a
quarter of the agent's time went into starting them when there were fourteen.

Each bridge port is pinned to its sandbox's address and a MAC derived from it
(:mod:`sandbox.network.ports`), so the walls hold even when root inside can change eth0.

This module does the plumbing (bridge, netns, veths, sysctls) and ties the others together; the
commands it runs go through :mod:`sandbox.network.commands`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from sandbox.host import mounts
from sandbox.network import addresses, ports
from sandbox.network.commands import run, run_sync
from sandbox.network.layout import NETNS_DIR, NetworkConfig, NetworkError
from sandbox.network.rules import Pair, render_peer_update, render_ruleset

log = logging.getLogger("sandbox.network.namespaces")

NETNS_LOCK = Path("/run/playground-netns.lock")  # host-wide: agents making NETNS_DIR a mount point
MakeNetns = Callable[[Path], Awaitable[None]]  # makes a network namespace pinned at the path given

PROC_SYS_NET = Path("/proc/sys/net")
# The interfaces of the agent's own network namespace, one directory each: /proc/sys/net follows the
# namespace of the process that reads it, where /sys/class/net shows the namespace /sys was mounted in
# (the host's, for an agent that systemd's NetworkNamespacePath= or nsenter put in a namespace).
LINKS = PROC_SYS_NET / "ipv4" / "conf"

# Inside every sandbox netns: no IPv6 at all; unprivileged ICMP echo sockets, so a `ping` that
# uses them works without CAP_NET_RAW; and every port bindable without CAP_NET_BIND_SERVICE, so
# a non-root user inside can run a web server on port 80 (Docker sets the same two defaults); and
# forwarding on, which a Docker engine inside needs for published ports and its containers' traffic
# (it cannot set it: /proc/sys is read-only in a sandbox). It forwards only between the sandbox's
# own interfaces; what leaves by eth0 meets the walls and the port's pinning like anything else.
NETNS_SYSCTLS = {
    "ipv6/conf/all/disable_ipv6": "1",
    "ipv6/conf/default/disable_ipv6": "1",
    "ipv4/ping_group_range": "0 2147483647",
    "ipv4/ip_unprivileged_port_start": "0",
    "ipv4/ip_forward": "1",
}

# On the host's bridge: answer ARP only for addresses configured on the bridge itself (the
# gateway), and send ARP requests there from the bridge's own address.
BRIDGE_ARP_SYSCTLS = {"arp_ignore": "1", "arp_announce": "2"}


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
        self._handed_out: dict[ipaddress.IPv4Address, str] | None = None  # see _owners
        self.assigned: dict[str, ipaddress.IPv4Address] = {}  # what this process's create() handed out
        self.peers: list[Pair] = []  # the session_peers pairs; setup_host loads them with the walls
        self._peers_lock = asyncio.Lock()  # serialises updates of the set

    # -- host ------------------------------------------------------------------------------
    async def setup_host(self) -> None:
        """Create (or repair) the bridge with the gateway address (answering ARP for it alone:
        ``BRIDGE_ARP_SYSCTLS``; forwarding on for packets coming in on it), and (re)load the nft
        tables with ``self.peers``.

        Idempotent; addresses already handed out (set elements) and their sandboxes are kept.
        Raises NetworkError if ``ip``/``nft`` are missing, the subnet overlaps a network the
        host routes elsewhere, or egress is on and the host has no default route.
        ``net.ipv4.ip_forward`` is turned on only with egress on, and never turned off. The
        directory sandboxes' namespaces are pinned in is made a shared mount point first, as ``ip
        netns add`` would (:func:`sandbox.host.mounts.shared_mount_point`: else the first later ``ip
        netns add`` on the host hides the pins made before it, and they can never be removed).
        """
        cfg = self.config
        try:
            if mounts.shared_mount_point(NETNS_DIR, NETNS_LOCK):
                log.info("made %s a shared mount point, as ip netns add does", NETNS_DIR)
        except OSError as exc:
            raise NetworkError(f"cannot prepare {NETNS_DIR} for network namespaces: {exc}") from None
        await self._check_subnet_is_free()
        if self.config.egress:
            self.egress_interface = await self._default_interface()
        created = not (LINKS / cfg.bridge).exists()
        if created:
            await run("ip", "link", "add", cfg.bridge, "type", "bridge", ok_errors=("File exists",))
        try:
            await self._set_up_bridge_and_walls()
        except NetworkError:
            if created:  # a bridge this call made is not left behind by a failed start
                await run("ip", "link", "del", cfg.bridge, ok_errors=("Cannot find device",))
            raise

    async def _set_up_bridge_and_walls(self) -> None:
        """The part of :meth:`setup_host` after the bridge exists: its settings and address, the nft
        tables, ``ip_forward``."""
        cfg = self.config
        if await _link_kind(cfg.bridge) != "bridge":
            raise NetworkError(
                f"{cfg.bridge} exists on the host but is not a bridge: remove it "
                f"(ip link del {cfg.bridge}) or choose another name prefix"
            )
        _write_sysctl(f"ipv6/conf/{cfg.bridge}/disable_ipv6", "1")
        # ARP on the bridge for the gateway only: by default Linux answers a request for any of
        # the host's addresses on any interface, so a sandbox that routes one onto eth0 would learn
        # the host's other addresses (walled all the same); and the host's own requests there say
        # the gateway, not another of its addresses.
        for key, value in BRIDGE_ARP_SYSCTLS.items():
            _write_sysctl(f"ipv4/conf/{cfg.bridge}/{key}", value)
        self.forward_on_bridge()
        gateway = f"{cfg.gateway}/{cfg.subnet.prefixlen}"
        stale = [a for a in await self._addresses(cfg.bridge) if a != gateway]
        mac = "02:" + ":".join(f"{b:02x}" for b in hashlib.sha256(cfg.bridge.encode()).digest()[:5])
        batch = [f"addr del {a} dev {cfg.bridge}" for a in stale] + [
            f"link set {cfg.bridge} address {mac}",  # fixed, so it does not follow the ports' MACs
            f"addr replace {gateway} dev {cfg.bridge}",
            f"link set {cfg.bridge} up",
        ]
        await run("ip", "-batch", "-", input_text="\n".join(batch) + "\n")

        async with self._lock:
            found = await addresses.owners(cfg.table)
            kept = {a: c for a, c in found.items() if a in cfg.subnet and a != cfg.gateway}
            self._handed_out = None
            await run("nft", "-f", "-", input_text=render_ruleset(cfg, kept, self.egress_interface, self.peers))
            self._handed_out = dict(kept)
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

    def forward_on_bridge(self) -> None:
        """Turn forwarding on for packets coming in on the bridge (the walls decide what goes
        through). Writing the host-wide ``net.ipv4.ip_forward`` (0 or 1) sets every interface's
        switch, this one's included, so :meth:`set_peers` turns it on again each time."""
        _write_sysctl(f"ipv4/conf/{self.config.bridge}/forwarding", "1")

    async def set_peers(self, pairs: list[Pair]) -> None:
        """Make ``pairs`` (see :func:`sandbox.network.rules.peer_pairs`) the whole of the
        ``session_peers`` set, in one transaction, and keep them for the next ``setup_host``.
        Updates are applied in the order they were asked for. NetworkError if nft fails."""
        async with self._peers_lock:
            self.peers = pairs
            await run("nft", "-f", "-", input_text=render_peer_update(self.config.table, pairs))
            self.forward_on_bridge()

    async def teardown_host(self) -> None:
        """Remove every sandbox network of this prefix, then the bridge and the nft table.

        Idempotent. Sandbox networks go first because they must not outlive their walls.
        ``net.ipv4.ip_forward`` is left as it is (other software may rely on it).
        """
        await self.reap(keep=())
        if (LINKS / self.config.bridge).exists():
            await run("ip", "link", "del", self.config.bridge, ok_errors=("Cannot find device",))
        t = self.config.table
        script = "".join(f"table {family} {t}\ndelete table {family} {t}\n" for family in ("inet", "bridge"))
        await run("nft", "-f", "-", input_text=script)

    # -- sandboxes -------------------------------------------------------------------------
    async def create(self, sandbox_id: str, make_netns: MakeNetns | None = None) -> Path:
        """Give ``sandbox_id`` its netns with eth0 on the bridge; returns the netns path.

        The path (``/run/netns/<prefix>-<hash>``) goes into the OCI config as the network
        namespace's ``path``. ``make_netns`` makes and pins the namespace there (the pool's makes
        one owned by the sandbox's user namespace, :func:`sandbox.host.userns.make_owned`);
        without it, ``ip netns add`` makes one owned by the host. Inside: ``lo`` and ``eth0`` up,
        one address from the subnet as a /32, the gateway on-link and the default route through
        it, IPv6 disabled. On failure
        everything done so far is undone and NetworkError is raised. Raises NetworkError if the
        netns already exists (destroy it first).
        """
        cfg = self.config
        netns, veth = cfg.netns_name(sandbox_id), cfg.veth_name(sandbox_id)
        if (NETNS_DIR / netns).exists():
            raise NetworkError(
                f"the network of sandbox {sandbox_id} already exists ({NETNS_DIR / netns}); destroy it first"
            )
        if (LINKS / veth).exists():
            raise NetworkError(
                f"interface {veth} (of sandbox {sandbox_id}) already exists; destroy the sandbox's "
                "network first, or, if another sandbox's name hashes to it, use another id"
            )
        try:
            address = await self._claim(sandbox_id)
            mac = ports.mac_for(address)
            if make_netns is None:
                await run("ip", "netns", "add", netns)
            else:
                NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
                await make_netns(NETNS_DIR / netns)
            await run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", mac, "netns", netns)
            _write_sysctl(f"ipv6/conf/{veth}/disable_ipv6", "1")  # before it is up: no link-local address
            await run(
                "ip",
                "-batch",
                "-",
                input_text=(
                    f"link set {veth} master {cfg.bridge}\n"
                    + ports.port_settings(cfg, sandbox_id)
                    + f"link set {veth} up\n"
                ),
            )
            # The forwarding entry and the inside (its sysctls, then its addresses and routes, in one
            # command) need nothing of each other: at once.
            writes = "; ".join(f"echo '{v}' > {PROC_SYS_NET / k}" for k, v in NETNS_SYSCTLS.items())
            inside = (
                "link set lo up\n"
                f"addr add {address}/32 dev eth0\n"  # no other sandbox on-link: see the module
                "link set eth0 up\n"
                f"route add {cfg.gateway} dev eth0 scope link\n"
                f"route add default via {cfg.gateway} dev eth0\n"
            )
            async with asyncio.TaskGroup() as steps:
                steps.create_task(ports.add_forwarding_entry(cfg, sandbox_id, address))
                steps.create_task(
                    run("ip", "netns", "exec", netns, "sh", "-ec", f"{writes}; exec ip -batch -", input_text=inside)
                )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.destroy(sandbox_id))
            if isinstance(exc, ExceptionGroup):  # the steps raise only NetworkError
                raise exc.exceptions[0] from None
            raise
        self.assigned[sandbox_id] = address
        log.debug("network of sandbox %s: %s in %s", sandbox_id, address, netns)
        return NETNS_DIR / netns

    async def destroy(self, sandbox_id: str) -> None:
        """Remove the sandbox's veth and netns and release its address and port pin.

        Idempotent, and completes whatever subset of ``create`` happened (a crash half-way).
        If a process still runs in the netns, the namespace itself lives on until it exits,
        but it is no longer on the bridge and its address is free.
        """
        cfg = self.config
        self.assigned.pop(sandbox_id, None)
        veth, netns = cfg.veth_name(sandbox_id), cfg.netns_name(sandbox_id)
        await self._remove_links([veth], [netns])
        async with self._lock:
            owned = await self._owned_by(sandbox_id)
            if not owned:  # one the copy does not know of (a create another process began): ask the kernel
                self._handed_out = None
                owned = await self._owned_by(sandbox_id)
            await self._release(owned)

    async def reap(self, keep: Iterable[str]) -> list[str]:
        """Remove every netns, veth, address and pin of this prefix not belonging to a sandbox in ``keep``.

        For reconciliation at agent start (pass the ids of the sandboxes that still run; a
        netns's name is a hash, so the ids are needed to recognise it). Returns what was removed.
        """
        cfg = self.config
        keep = list(keep)
        keep_netns = {cfg.netns_name(i) for i in keep}
        keep_veth = {cfg.veth_name(i) for i in keep}
        left = self.leftovers()
        veths = [v for v in left["veth"] if v not in keep_veth]
        spaces = [n for n in left["netns"] if n not in keep_netns]
        await self._remove_links(veths, spaces)
        removed = veths + spaces
        async with self._lock:
            self._handed_out = None  # read the kernel's record again
            stale = {a: o for a, o in (await self._owners()).items() if o not in keep}
            await self._release(stale)
            removed += [str(a) for a in stale]
        if removed:
            log.info("removed %d leftover sandbox network object(s): %s", len(removed), ", ".join(removed))
        return removed

    # -- inspection ------------------------------------------------------------------------
    def leftovers(self) -> dict[str, list[str]]:
        """What of this prefix exists now: ``netns`` names, host ``veth`` names, ``addresses`` in the set."""
        prefix = self.config.veth_prefix
        netns = sorted(n for n in _listdir(NETNS_DIR) if n.startswith(prefix))
        veths = sorted(n for n in _listdir(LINKS) if n.startswith(prefix))
        handed_out = sorted(self.elements())
        return {"netns": netns, "veth": veths, "addresses": [str(a) for a in handed_out]}

    def elements(self) -> dict[ipaddress.IPv4Address, str]:
        """Every handed-out address with its owner (the sandbox or network id), from the nft set."""
        return addresses.owners_now(self.config.table)

    def address_of(self, sandbox_id: str) -> ipaddress.IPv4Address | None:
        """The address handed to ``sandbox_id``, or None."""
        return next((a for a, owner in self.elements().items() if owner == sandbox_id), None)

    def counters(self) -> dict[str, int]:
        """Packets dropped by each wall since ``setup_host`` (counter name -> packets), from both
        tables (``inet``: the walls, ``bridge``: the port pins); {} without them."""
        result = {}
        for family in ("inet", "bridge"):
            code, out, _ = run_sync("nft", "-j", "list", "counters", "table", family, self.config.table)
            for item in json.loads(out).get("nftables", []) if code == 0 else []:
                counter = item.get("counter")
                if counter:
                    result[counter["name"]] = int(counter.get("packets", 0))
        return result

    # -- helpers ---------------------------------------------------------------------------
    async def _owners(self) -> dict[ipaddress.IPv4Address, str]:
        """The address record (address -> owner): this process's copy of the kernel's set, read
        from it the first time and again after any change of it failed; call with the lock."""
        if self._handed_out is None:
            self._handed_out = await addresses.owners(self.config.table)
        return self._handed_out

    async def _owned_by(self, owner: str) -> dict[ipaddress.IPv4Address, str]:
        """The addresses of ``owner`` in the record (see ``_owners``); call with the lock."""
        return {a: o for a, o in (await self._owners()).items() if o == owner}

    async def _claim(self, sandbox_id: str) -> ipaddress.IPv4Address:
        """Hand ``sandbox_id`` an address (the one it has, after a half-finished create) and pin
        its port to it, in one nft transaction."""
        cfg = self.config
        async with self._lock:
            used = await self._owners()
            for address, owner in used.items():
                if owner == sandbox_id:  # a half-finished create of the same sandbox
                    return address
            candidate = addresses.next_free(cfg, used, self._cursor)
            script = addresses.add_line(cfg.table, candidate, sandbox_id) + ports.pin_line(cfg, sandbox_id, candidate)
            await self._transaction(script, hint="is the host set up? call setup_host() first")
            used[candidate] = sandbox_id
            self._cursor = int(candidate)
            return candidate

    async def _release(self, owned: dict[ipaddress.IPv4Address, str]) -> None:
        """Unpin the ports of ``owned`` (address -> owner) and free the addresses, in one nft
        transaction; call with the lock. Without the bridge table (removed by hand), the
        addresses are freed all the same."""
        if not owned:
            return
        cfg = self.config
        freed = addresses.release_lines(cfg.table, owned)
        try:
            await self._transaction(ports.unpin_lines(cfg, owned) + freed)
        except NetworkError:
            if not await self._bridge_table_exists():
                await self._transaction(freed)
            else:
                raise
        record = await self._owners()
        for address in owned:
            record.pop(address, None)

    async def _transaction(self, script: str, hint: str = "") -> None:
        """Run ``script`` with ``nft -f``; when it fails, the copy of the address record is
        dropped (it is read from the kernel again) and NetworkError raised."""
        try:
            await run("nft", "-f", "-", input_text=script, hint=hint)
        except NetworkError:
            self._handed_out = None
            raise

    async def _bridge_table_exists(self) -> bool:
        code, _, _ = await run("nft", "list", "table", "bridge", self.config.table, ok_errors=("No such file",))
        return code == 0

    async def _remove_links(self, veths: list[str], spaces: list[str]) -> None:
        """Delete the host ends ``veths`` (deleting one deletes its eth0 too) and the pinned
        namespaces ``spaces``, those that exist, in one ``ip`` batch. NetworkError if one is
        still there afterwards."""

        def present() -> tuple[list[str], list[str]]:
            return [v for v in veths if (LINKS / v).exists()], [n for n in spaces if (NETNS_DIR / n).exists()]

        there_veths, there_spaces = present()
        lines = [f"link del {v}" for v in there_veths] + [f"netns del {n}" for n in there_spaces]
        if not lines:
            return
        try:  # -force: the batch goes on after an error (one already gone, say)
            await run("ip", "-force", "-batch", "-", input_text="\n".join(lines) + "\n")
        except NetworkError as exc:
            left = [name for names in present() for name in names]
            if left:
                raise NetworkError(f"could not remove {', '.join(left)}: {exc}") from None

    async def _addresses(self, interface: str) -> list[str]:
        _, out, _ = await run("ip", "-j", "-4", "addr", "show", "dev", interface)
        return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out or "[]") for a in link.get("addr_info", [])]

    async def _check_subnet_is_free(self) -> None:
        _, out, _ = await run("ip", "-j", "-4", "route", "show", "table", "main")
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
        _, out, _ = await run("ip", "-j", "-4", "route", "show", "default")
        for route in json.loads(out or "[]"):
            if route.get("dev"):
                return str(route["dev"])
        raise NetworkError(
            "PLAYGROUND_EGRESS is on but the host has no IPv4 default route to masquerade through: "
            "add one, or turn egress off"
        )


async def _link_kind(name: str) -> str | None:
    """The kind of the interface ``name`` of this network namespace ("bridge", "veth", ...); None
    for a plain device, or if there is none."""
    _, out, _ = await run("ip", "-j", "-d", "link", "show", "dev", name, ok_errors=("does not exist",))
    links = json.loads(out or "[]")
    return links[0].get("linkinfo", {}).get("info_kind") if links else None


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
