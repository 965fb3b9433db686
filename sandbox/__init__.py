"""The sandbox host: every part of Playground that runs as root (the agent, the terminal keeper, the
image CLI) and the wire the web tier reaches it by. Sub-packages, each importing only those above it:
``wire`` (stdlib only) <- ``host`` <- ``runtime``, ``network``, ``pty``, ``keeper``, ``images`` <- ``agent``.
Nothing here imports ``playground``; ``playground`` imports only ``sandbox.wire``."""
