"""A lab's scripts run with the lab's language in PLAYGROUND_LAB_LANGUAGE (docs/labs.md, Scripts),
so one shared check prints its hint in the reader's language."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from playground import config
from playground.labs.api import with_language

HANGUL = re.compile(r"[\uac00-\ud7a3]")
INSIDE = sorted((config.REPO_DIR / "labs" / "containers-from-the-inside" / "steps").glob("*.check.sh"))


@pytest.mark.parametrize("language", ["en", "ko", "pt-BR"])
def test_the_script_sees_the_labs_language_and_its_own_text_is_unchanged(language: str) -> None:
    script = 'echo "$PLAYGROUND_LAB_LANGUAGE"\nsh -c \'echo "child: $PLAYGROUND_LAB_LANGUAGE"\'\nexit 3\n'
    result = subprocess.run(["sh", "-c", with_language(script, language)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 3
    assert result.stdout.splitlines() == [language, f"child: {language}"]
    assert with_language(script, language).endswith("\n" + script)


def test_a_language_is_quoted_for_the_shell() -> None:
    result = subprocess.run(
        ["sh", "-c", with_language('echo "$PLAYGROUND_LAB_LANGUAGE"', "x; echo hacked")],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.stdout == "x; echo hacked\n"


@pytest.mark.parametrize("check", INSIDE, ids=lambda path: path.name)
def test_a_shipped_check_prints_its_hint_in_the_labs_language_alone(check: Path) -> None:
    # Run here, not in a sandbox: the file each check reads is not there, so it fails with its first hint.
    said: dict[str, list[str]] = {}
    for language in ("en", "ko"):
        script = with_language(check.read_text(encoding="utf-8"), language)
        result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10)
        assert result.returncode == 1 and result.stdout.strip(), (language, result)
        said[language] = result.stdout.strip().splitlines()
    assert len(said["en"]) == len(said["ko"]) == 1, said
    assert not HANGUL.search(said["en"][0]) and HANGUL.search(said["ko"][0]), said
