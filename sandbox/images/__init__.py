"""The image store of a sandbox host and the one image CLI (``python -m sandbox.images``, root only,
no Django): the store and the busybox image, all-or-nothing workspaces, Debian recipes built with
debootstrap, OCI and ``docker save`` imports. May import ``sandbox.host``, ``sandbox.settings`` and
``sandbox.wire``; ``sandbox.runtime`` and ``sandbox.agent`` import it."""
