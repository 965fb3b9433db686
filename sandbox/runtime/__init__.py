"""Running sandboxes with the OCI runtime: the bundle (runc config, seccomp profile), runc itself,
the private runc root every ``runc exec`` needs, and lab scripts run inside a sandbox. May import
``sandbox.wire`` and ``sandbox.host``."""
