"""Django's ``TextChoices`` as the type checker should see it.

Without django-stubs, mypy sees ``models.TextChoices`` as ``Any`` and each member written as
``NAME = "value", "label"`` as that tuple, so passing ``EndReason.FAILED`` where a ``str`` is
expected reads as an error. To mypy this is a ``str`` enum with Django's ``label``, ``choices``
and ``values``; at run time it is ``models.TextChoices`` itself.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

from django.db import models

if TYPE_CHECKING:

    class TextChoices(enum.StrEnum):
        _value_: str
        label: str
        choices: ClassVar[list[tuple[str, str]]]
        values: ClassVar[list[str]]

else:
    TextChoices = models.TextChoices
