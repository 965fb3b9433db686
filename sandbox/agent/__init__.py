"""The sandbox agent (``python -m sandbox.agent``, root, one per sandbox host): creates, adopts and
destroys sandboxes and serves the wire protocol. May import every other package of ``sandbox``,
never ``playground``."""
