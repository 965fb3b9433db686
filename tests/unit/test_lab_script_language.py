"""A lab's scripts run with the lab's language in PLAYGROUND_LAB_LANGUAGE (docs/labs.md, Scripts),
so one shared check prints its hint in the reader's language."""

from __future__ import annotations

import subprocess

import pytest

from playground.labs.api import with_language


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
