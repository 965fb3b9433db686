"""The registry: a mirror of Docker Hub that sandboxes' engines pull through, seeded offline with
the seminar's images built from Debian packages (docs/registry.md)."""
