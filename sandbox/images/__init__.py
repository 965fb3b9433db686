"""The image store of a sandbox host and the one image CLI (``python -m sandbox.images``, root only,
no Django): busybox, Debian recipes, OCI and docker-save imports. May import ``sandbox.wire``,
``sandbox.host`` and ``sandbox.runtime``."""
