"""Published ports as links: the web tier's port proxy (``python -m playground.ports``), the links
to it (:mod:`playground.ports.links`) and the port API (:mod:`playground.ports.api`).

See docs/ports.md.
"""
