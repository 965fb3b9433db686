"""``python -m playground.launcher``: the whole of Playground on one host, for ``make run``.

Starts, in order: Redis (only if none answers at PLAYGROUND_REDIS_URL and it is a local
address), the terminal keeper and the sandbox agent (root), database migrations, Daphne, a
Celery worker and Celery beat (all three as the unprivileged PLAYGROUND_WEB_USER). Serves until
Ctrl-C or SIGTERM, then ends every session (viewers are told), stops everything it started in
reverse order, and leaves no sandbox behind.

A part that dies while serving is started again with the same command line, after a delay
that doubles from 0.5 s to 10 s (and starts over once the part has run for a minute). A part
that dies more than 5 times within 60 s is given up on: everything is stopped and the
launcher exits 1. A part that dies during start-up stops start-up at once (exit 1).

Modules: ``run`` (main: settings, root, start, serve, stop), ``stack`` (the Launcher: the parts
in order), ``supervision`` (a part's process, its stopping and restart policy), ``commands``
(each part's command line), ``checks`` (what is checked before and while starting). It reads
only the web tier's settings (playground.config) and imports nothing of the sandbox host but
``sandbox.wire``; the sandbox host's settings are checked by running ``python -m sandbox.settings``.
"""
