"""The sandbox host's settings: what the agent, the keeper and the image tools read from the environment.

``from sandbox import settings; cfg = settings.load()`` parses and checks them once, raising
:class:`ConfigError` naming the first bad variable. Only these and the settings shared with the
web tier (:mod:`sandbox.wire.shared_settings`) are read, so a bad web-only value (say
PLAYGROUND_REDIS_URL) never stops the agent. ``python -m sandbox.settings`` checks them and
exits 2 with the message on a bad one (the launcher runs it before starting anything). Imports
only :mod:`sandbox.wire` and the standard library, so any part of the sandbox host may import
it. Every variable is in docs/configuration.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sandbox.wire import tls
from sandbox.wire.envparse import (
    NAME_PATTERN,
    ConfigError,
    env_addresses,
    env_bool,
    env_int,
    env_list,
    env_name,
    env_network_name,
    env_path,
    env_size,
    raw_value,
)
from sandbox.wire.ids import USERNS_SIZE, max_ranges
from sandbox.wire.shared_settings import SharedSettings, keeper_socket, load_shared
from sandbox.wire.tls import Address

__all__ = ["ConfigError", "Network", "Settings", "env_warm_pool", "load"]


@dataclass(frozen=True)
class Network:
    """How sandboxes are networked (see sandbox/network/namespaces.py)."""

    name: str  # bridge "<name>br0", netns and veths "<name>-...", nft table "inet <name>"
    subnet: str  # the gateway takes the first address, sandboxes the rest
    egress: bool  # outbound NAT to public addresses only
    pool: int  # network namespaces kept ready so creation does not wait for them
    dns: list[str]  # nameservers written to each sandbox's /etc/resolv.conf when egress is on
    registry_port: int | None = None  # the registry mirror's front on the gateway: the one host port sandboxes reach


def env_warm_pool(env: Mapping[str, str], name: str, default_image: str) -> dict[str, int]:
    """Ready sandboxes per image: ``2`` (for the default image) or ``busybox:2,alpine:1``."""
    raw = raw_value(env, name)
    if raw is None:
        return {default_image: 2}
    if raw.isdigit():
        return {default_image: env_int(env, name, 1, 0, 1000)}
    sizes: dict[str, int] = {}
    for item in env_list(env, name, []):
        image, sep, count = (part.strip() for part in item.partition(":"))
        if not sep or not NAME_PATTERN.match(image) or not count.isdigit() or int(count) > 1000:
            raise ConfigError(
                f"{name}: {item!r} is not image:count; give a number for the default image "
                "(e.g. 2) or a list such as 'busybox:2,alpine:1' (counts 0-1000)."
            )
        sizes[image] = int(count)
    return sizes


@dataclass(frozen=True)
class Settings(SharedSettings):
    """Everything the sandbox host reads from the environment, parsed and checked."""

    image_cache: Path  # built images and downloaded packages, kept across builds
    replay_bytes: int
    recording_max_bytes: int  # bytes of a recorded terminal's asciicast file at most (workshops)
    cgroup_parent: str
    sandbox_cpu_weight: int  # the parent cgroup's CPU weight against the host's own processes (v2 scale)
    terminal_cpu_weight: int  # the terminal shells' parent cgroup's CPU weight (v2 scale); 0: no such group
    uid_base: int
    network: Network
    warm_pool: dict[str, int]  # image -> sandboxes kept ready
    warm_ready_timeout: int  # seconds a pooled sandbox may take to make its image's ready file
    reconcile_interval: int  # seconds between the agent's comparisons of host and bookkeeping
    sandbox_ptys: int  # pseudo-terminals per sandbox (its devpts ``max``), the agent's terminals included
    sandbox_ptys_held: int  # pseudo-terminal ends a sandbox may hold in all its devpts instances (ptyguard)
    sandbox_inodes: int  # files and directories in a sandbox's writable layer (tmpfs ``nr_inodes``)
    sandbox_nofile: int  # open files per process in a sandbox (RLIMIT_NOFILE hard limit)
    sandbox_ranges: int  # host id ranges of USERNS_SIZE ids for sandboxes, after the image store's at uid_base
    # What all processes of one sandbox may hold together, bounds kept in its own user namespace:
    sandbox_inotify_instances: int
    sandbox_inotify_watches: int
    sandbox_mqueue_bytes: int  # POSIX message queues (RLIMIT_MSGQUEUE)
    sandbox_sigpending: int  # queued signals and POSIX timers (RLIMIT_SIGPENDING)
    docker_profile: bool  # whether images with profile "docker" may run (a container engine inside)
    # Where the agent also listens for the site over mutual TLS (docs/hosts.md); None: its unix socket only.
    agent_listen: Address | None = None
    lxcfs: bool = True  # whether the agent runs lxcfs so sandboxes see their own limits in /proc (PLAYGROUND_LXCFS)

    @property
    def agent_dir(self) -> Path:
        """Directory owned by the agent (root only): sandboxes and runtime state."""
        return self.data_dir / "agent"

    @property
    def images_dir(self) -> Path:
        """The image store: one read-only directory tree per image."""
        return self.data_dir / "images"

    @property
    def keeper_socket(self) -> Path:
        """The terminal keeper's socket, beside the agent's."""
        return keeper_socket(self.agent_socket)


RANGES_SLACK = 16  # ranges beyond the host's maximum, for sandboxes being removed by reconciliation


def env_ranges(env: Mapping[str, str], uid_base: int, host_max: int, warm: int, networks: int) -> int:
    """PLAYGROUND_SANDBOX_RANGES: how many id ranges sandboxes are given from (one each).

    At least ``host_max`` (every sandbox the host may run holds one), at most what fits above
    ``uid_base`` (see :func:`sandbox.wire.ids.max_ranges`); by default the host's maximum, the
    warm pool and the network pool with some slack, or what fits if that is less.
    """
    most = max_ranges(uid_base)
    if most < host_max:
        raise ConfigError(
            f"PLAYGROUND_SANDBOX_UID_BASE={uid_base} leaves room for {most} sandbox id ranges of {USERNS_SIZE} ids "
            f"below 2**32-1, fewer than the PLAYGROUND_HOST_MAX_SANDBOXES={host_max} sandboxes that each need one; "
            "lower the uid base or the maximum."
        )
    default = min(most, host_max + warm + networks + RANGES_SLACK)
    return env_int(env, "PLAYGROUND_SANDBOX_RANGES", default, host_max, most)


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the sandbox host's settings; raises ConfigError on the first bad value."""
    env = os.environ if env is None else env
    shared = load_shared(env)
    uid_base = env_int(env, "PLAYGROUND_SANDBOX_UID_BASE", 1_000_000_000, 65536, 2**32 - 2 - USERNS_SIZE)
    network = Network(
        name=env_network_name(env, "PLAYGROUND_NETWORK_NAME", "pg"),
        subnet=shared.sandbox_subnet,
        egress=env_bool(env, "PLAYGROUND_EGRESS", False),
        pool=env_int(env, "PLAYGROUND_NETWORK_POOL", 4, 0, 256),
        dns=env_addresses(env, "PLAYGROUND_DNS", ["1.1.1.1", "9.9.9.9"]),
        registry_port=shared.registry_port,
    )
    warm_pool = env_warm_pool(env, "PLAYGROUND_WARM_POOL", shared.default_image)
    host_max = shared.host_max_sandboxes
    # At least one pty beyond the agent's terminals, which are opened in the sandbox's devpts.
    sandbox_ptys = env_int(
        env, "PLAYGROUND_SANDBOX_PTYS", max(32, shared.max_terminals + 16), shared.max_terminals + 1, 4096
    )
    return Settings(
        **vars(shared),  # the fields of SharedSettings, read as the web tier reads them
        image_cache=env_path(env, "PLAYGROUND_IMAGE_CACHE", shared.data_dir / "cache"),
        replay_bytes=env_size(env, "PLAYGROUND_REPLAY_BUFFER", 1024**2, 4096, 64 * 1024**2),
        recording_max_bytes=env_size(env, "PLAYGROUND_RECORDING_MAX_BYTES", 2 * 1024**2, 64 * 1024, 1024**3),
        cgroup_parent=env_name(env, "PLAYGROUND_CGROUP_PARENT", "playground"),
        sandbox_cpu_weight=env_int(env, "PLAYGROUND_SANDBOX_CPU_WEIGHT", 10, 1, 10000),
        terminal_cpu_weight=env_int(env, "PLAYGROUND_TERMINAL_CPU_WEIGHT", 100, 0, 10000),
        uid_base=uid_base,
        network=network,
        warm_pool=warm_pool,
        warm_ready_timeout=env_int(env, "PLAYGROUND_WARM_READY_TIMEOUT", 60, 1, 3600),
        reconcile_interval=env_int(env, "PLAYGROUND_RECONCILE_INTERVAL", 30, 1, 3600),
        sandbox_ptys=sandbox_ptys,
        sandbox_ptys_held=env_int(env, "PLAYGROUND_SANDBOX_PTYS_HELD", max(256, sandbox_ptys), sandbox_ptys, 1 << 20),
        sandbox_inodes=env_int(env, "PLAYGROUND_SANDBOX_INODES", 65536, 1024, 100_000_000),
        sandbox_nofile=env_int(env, "PLAYGROUND_SANDBOX_NOFILE", 4096, 64, 1_048_576),  # fs.nr_open's default
        sandbox_ranges=env_ranges(env, uid_base, host_max, sum(warm_pool.values()), network.pool),
        sandbox_inotify_instances=env_int(env, "PLAYGROUND_SANDBOX_INOTIFY_INSTANCES", 128, 1, 65536),
        sandbox_inotify_watches=env_int(env, "PLAYGROUND_SANDBOX_INOTIFY_WATCHES", 65536, 1, 4_194_304),
        sandbox_mqueue_bytes=env_size(env, "PLAYGROUND_SANDBOX_MQUEUE_BYTES", 819_200, 0, 64 * 1024**2),
        sandbox_sigpending=env_int(env, "PLAYGROUND_SANDBOX_SIGPENDING", 4096, 16, 1_000_000),
        docker_profile=env_bool(env, "PLAYGROUND_DOCKER_PROFILE", True),
        lxcfs=env_bool(env, "PLAYGROUND_LXCFS", True),
        agent_listen=env_agent_listen(env, shared.tls_dir),
    )


def env_agent_listen(env: Mapping[str, str], tls_dir: Path) -> Address | None:
    """PLAYGROUND_AGENT_LISTEN: ``host:port`` where the agent serves the site of another machine over
    mutual TLS, or empty (the default) for its unix socket alone. With an address, the certificate
    files must be readable now, so that a host missing one stops at once, saying which."""
    raw = raw_value(env, "PLAYGROUND_AGENT_LISTEN")
    if raw is None:
        return None
    address = tls.parse_address(raw, "PLAYGROUND_AGENT_LISTEN")
    tls.server_context(tls_dir)
    return address


def main() -> int:
    """Check the sandbox host's settings: 0 when usable, 2 with the message on stderr when not."""
    try:
        load()
    except ConfigError as exc:
        print(f"playground: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
