"""Playing a recording with Debian's asciinema, as a person would check a downloaded .cast."""

from __future__ import annotations

import fcntl
import os
import subprocess
import termios
from pathlib import Path


def asciinema_cat(path: Path) -> str:
    """What ``asciinema cat <path>`` prints (the recording's output, without its timing).

    asciinema opens /dev/tty even for ``cat``, so it runs in a session of its own whose
    controlling terminal is a fresh pseudo-terminal; its output is read from a pipe, unchanged.
    CalledProcessError if it refuses the file."""
    main, secondary = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        played = subprocess.run(
            ["asciinema", "cat", str(path)],
            stdin=secondary,
            capture_output=True,
            timeout=30,
            check=True,
            start_new_session=True,
            preexec_fn=take_terminal,
        )
    finally:
        os.close(main)
        os.close(secondary)
    return played.stdout.decode()
