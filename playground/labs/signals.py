"""What the labs tell the rest of the site: a session's progress through its lab changed.

``progress_changed`` is sent (inside the change's transaction, once it is saved) with:

- ``progress``: the :class:`~playground.labs.models.Progress` as saved;
- ``kind``: ``"open"`` (the reader opened a step), ``"check"`` (a step's check ran, or a step with
  nothing to check was read) or ``"skip"`` (earlier steps were solved and a later one opened);
- ``step``: the step opened or checked;
- ``passed``: for ``"check"``, whether it passed; None otherwise.

Receivers (the workshops' dashboard, the recordings' markers) must not raise: the labs API answers
the reader whatever they do. Those that send to Channels should do so ``on_commit``.
"""

from django.dispatch import Signal

progress_changed = Signal()
