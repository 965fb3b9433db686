"""``python -m sandbox.agent``: runs :func:`sandbox.agent.service.main`."""

import sys

from sandbox.agent.service import main

sys.exit(main())
