"""The terminal keeper (``python -m sandbox.keeper``, root): holds a duplicate of every terminal so
that shells outlive an agent restart. ``service`` is the daemon, ``client`` the agent's side,
``channel`` what both ends share. May import ``sandbox.wire`` and ``sandbox.host``."""
