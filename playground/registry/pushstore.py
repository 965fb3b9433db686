"""``python -m playground.registry.pushstore``: the sessions' push registry, a writable
``docker-registry`` on 127.0.0.1:PLAYGROUND_REGISTRY_PUSH_PORT (:func:`playground.registry.store.main`).
"""

import sys

from playground.registry.store import main

if __name__ == "__main__":
    sys.exit(main(push=True))
