"""``python -m sandbox.keeper``: runs :func:`sandbox.keeper.service.main`."""

import sys

from sandbox.keeper.service import main

sys.exit(main())
