"""Sandbox networking: a network namespace per sandbox on a per-agent bridge, the nftables walls
and a pool of ready namespaces. May import ``sandbox.wire`` and ``sandbox.host``."""
