"""Image recipes (recipes/*.toml): what they accept, what they refuse, and what their digest covers."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from sandbox.images import recipe
from sandbox.images.recipe import RecipeError


def test_the_shipped_debian_recipe_has_the_tools_a_lab_needs_and_recommends_quotas() -> None:
    debian = recipe.load("debian")
    assert {"curl", "git", "vim", "python3", "iproute2"} <= set(debian.packages)
    assert debian.suite == "bookworm"
    assert debian.cmd == ("/bin/bash", "-l")
    assert debian.quotas == {"memory_bytes": 1024**3, "disk_bytes": 512 * 1024**2, "pids": 512}
    assert "TERM=xterm-256color" in debian.env
    assert "LANG=C.UTF-8" in debian.env


def test_the_digest_follows_the_content_but_not_the_mirror() -> None:
    debian = recipe.load("debian")
    assert debian.digest() == replace(debian, mirror="http://mirror.example/debian").digest()
    assert debian.digest() != replace(debian, packages=(*debian.packages, "htop")).digest()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", debian.digest())


def test_recipe_env_replaces_the_defaults_of_the_same_name() -> None:
    parsed = recipe.parse("lab", {"env": ["TERM=vt100", "EDITOR=vim"]}, "lab.toml")
    assert "TERM=vt100" in parsed.env
    assert "TERM=xterm-256color" not in parsed.env
    assert "EDITOR=vim" in parsed.env


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"pakages": ["git"]}, "unknown key(s) pakages"),
        ({"packages": ["git; rm -rf /"]}, "is not a Debian package name"),
        ({"workdir": "root"}, "must be an absolute path"),
        ({"cmd": []}, "cmd must name a program"),
        ({"env": ["NOEQUALS"]}, "is not NAME=value"),
        ({"quotas": {"memory": "lots"}}, "quotas.memory='lots' is not a size"),
        ({"quotas": {"swap": "1G"}}, "'swap' is not a quota"),
        ({"files": [{"path": "/etc/../../x", "content": ""}]}, "absolute path without '..'"),
        ({"prune": ["usr/share/doc"]}, "must be an absolute path"),
        ({"users": [{"name": "player", "uid": 0}]}, "must be from 1 to 65533"),
        ({"suite": "bookworm; true"}, "is not a plain word"),
    ],
)
def test_a_bad_recipe_is_refused_naming_the_file_and_the_key(raw: dict, words: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(words)) as caught:
        recipe.parse("lab", raw, "recipes/lab.toml")
    assert "recipes/lab.toml" in str(caught.value)


def test_an_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(RecipeError, match="known recipes: debian"):
        recipe.load("nosuchrecipe")
