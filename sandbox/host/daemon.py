"""What the host's root daemons (the agent, the keeper) do before anything else."""

from __future__ import annotations

import logging
import os

from sandbox import settings


def prepare(name: str, why_root: str) -> settings.Settings | None:
    """Set up logging, load the settings and check for root; None, after saying why, if ``name`` cannot run."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = settings.load()
    except settings.ConfigError as exc:
        print(f"playground {name}: {exc}", flush=True)
        return None
    if os.geteuid() != 0:
        print(f"playground {name}: must run as root ({why_root})", flush=True)
        return None
    return cfg
