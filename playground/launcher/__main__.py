"""``python -m playground.launcher``: runs :func:`playground.launcher.run.main`."""

from playground.launcher.run import main

raise SystemExit(main())
