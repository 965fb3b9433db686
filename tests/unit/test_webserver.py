"""Daphne's entry point (``python -m playground.webserver``)."""

from __future__ import annotations

import subprocess
import sys

from tests.stack import REPO

PROBE = """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard // 2), hard))  # below the hard limit
from playground.webserver import raise_open_files_limit
raise_open_files_limit()
print(*resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def test_daphne_takes_the_hard_open_files_limit_so_hundreds_of_terminals_fit() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True)
    soft, hard = map(int, result.stdout.split())
    assert soft == hard
