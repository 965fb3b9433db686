"""The terminal keeper (``python -m sandbox.keeper``, root): holds a duplicate of every terminal so
that shells outlive an agent restart. May import ``sandbox.wire`` and ``sandbox.host``."""
