"""The sandbox agent: the only privileged part of Playground.

It creates sandboxes as OCI bundles run by runc, holds every terminal's PTY master, and
destroys sandboxes completely. The web tier reaches it through :mod:`sandbox.client`.
"""
