"""Running sandboxes with the OCI runtime: the bundle (runc config, seccomp profile), runc itself and
lab scripts run inside a sandbox. May import ``sandbox.wire`` and ``sandbox.host``."""
