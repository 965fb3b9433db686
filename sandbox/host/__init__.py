"""Thin wrappers of the host kernel's interfaces the root daemons use: cgroups (v1 and v2), mounts,
host-wide limits and the start-up checks of a root daemon. May import ``sandbox.settings`` and
``sandbox.wire``."""
