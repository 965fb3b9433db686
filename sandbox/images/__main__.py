"""``python -m sandbox.images``: the image CLI, :func:`sandbox.images.cli.main`."""

import sys

from sandbox.images.cli import main

sys.exit(main())
