"""Which sessions have their terminals recorded, decided by other apps without the sessions importing them.

The workshops app (which the sessions may not import: see .importlinter) registers a policy: a
learner's session is recorded. :func:`playground.sandboxes.tasks.provision_instance` asks
:func:`is_recorded` before it creates a node, and passes ``"record": true`` to the agent's
``create``, which then records every terminal of that node (docs/workshops.md, Recordings).
"""

from __future__ import annotations

from collections.abc import Callable

from playground.sandboxes.models import Session

Policy = Callable[[Session], bool]

_policies: dict[str, Policy] = {}


def register(name: str, policy: Policy) -> None:
    """Record the terminals of every session ``policy`` says True for (registered again: replaced)."""
    _policies[name] = policy


def is_recorded(session: Session) -> bool:
    """Whether any registered policy wants ``session``'s terminals recorded."""
    return any(policy(session) for policy in _policies.values())
