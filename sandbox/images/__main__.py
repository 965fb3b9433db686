"""``python -m sandbox.images``: runs :func:`sandbox.images.store.main`."""

import sys

from sandbox.images.store import main

sys.exit(main())
