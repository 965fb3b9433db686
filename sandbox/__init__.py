"""The sandbox host: every part of Playground that runs as root (the agent, the terminal keeper, the
image CLI) and the wire the web tier reaches it by. Each sub-package imports only the layers below
it (enforced by .importlinter in ``make lint``):
``agent`` > ``runtime`` | ``keeper`` > ``images`` | ``network`` | ``pty`` > ``host`` > ``settings`` > ``wire``
(``wire`` imports only the standard library). Nothing here imports ``playground``; ``playground``
imports only ``sandbox.wire``."""
