"""Image recipes (recipes/*.toml): what they accept, what they refuse, and what their digest covers."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

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


def test_the_shipped_docker_recipe_runs_tini_over_the_init_and_asks_for_the_docker_profile() -> None:
    docker = recipe.load("docker")
    assert {"docker.io", "docker-compose", "iptables", "tini", "git", "curl", "vim"} <= set(docker.packages)
    assert docker.profile == "docker"
    assert docker.cmd == ("/usr/bin/tini", "--", "/usr/local/sbin/playground-init")
    assert docker.quotas == {"memory_bytes": 1024**3, "disk_bytes": 1024**3, "pids": 1024}
    files = {f.path: f for f in docker.files}
    init = files["/usr/local/sbin/playground-init"]
    assert init.mode == 0o755 and init.content == (recipe.RECIPES_DIR / "docker" / "playground-init").read_text()
    assert files["/usr/local/bin/docker"].content == files["/usr/local/bin/docker-compose"].content
    [hello] = docker.programs
    assert (hello.path, hello.docker_image) == ("/hello", "hello-world:latest")
    assert hello.archive == "/usr/share/playground/images/hello-world.tar"
    assert hello.archive.rsplit("/", 1)[0] in init.content  # the init loads the archives from there
    # The warm pool waits for the mark the init leaves once the engine answers, a path with no symbolic link.
    assert docker.ready == "/run/playground-images-loaded" and f"touch {docker.ready}" in init.content


def test_the_digest_covers_the_profile_and_the_text_of_sources_but_keys_at_their_defaults_change_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "hello.c").write_text("int main(void) { return 0; }\n")
    raw: dict[str, object] = {"packages": ["git"], "files": [{"path": "/etc/motd", "content": "hi"}]}
    # The digest this recipe had before profiles and programs existed: its cached builds stay valid.
    plain = recipe.parse("lab", raw, "lab.toml", tmp_path)
    assert plain.digest() == "sha256:bd71c4e42d98a509494b0a7493907802de8d7410d15c4648c015da22b715bcad"
    assert replace(plain, profile="docker").digest() != plain.digest()
    assert replace(plain, ready="/run/ready").digest() != plain.digest()
    program = {"programs": [{"source": "hello.c", "path": "/usr/local/bin/hello"}]}
    with_program = recipe.parse("lab", raw | program, "lab.toml", tmp_path)
    assert with_program.programs[0].code == "int main(void) { return 0; }\n"
    (tmp_path / "hello.c").write_text("int main(void) { return 1; }\n")
    assert recipe.parse("lab", raw | program, "lab.toml", tmp_path).digest() != with_program.digest()


def test_a_files_source_is_read_relative_to_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "init").write_text("#!/bin/sh\nexec sh\n")
    (tmp_path / "lab.toml").write_text('[[files]]\npath = "/sbin/lab-init"\nsource = "scripts/init"\nmode = 0o755\n')
    [init] = recipe.load(str(tmp_path / "lab.toml")).files
    assert (init.path, init.content, init.mode) == ("/sbin/lab-init", "#!/bin/sh\nexec sh\n", 0o755)


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
        ({"profile": "privileged"}, "profile = 'privileged' is not a sandbox profile; allowed: '', 'docker'"),
        ({"ready": "run/ready"}, "ready = 'run/ready' must be the absolute path of a file"),
        ({"ready": "/run/../../etc/passwd"}, "must be the absolute path of a file the image's init makes"),
        ({"ready": ["/run/ready"]}, "must be the absolute path"),
        ({"files": [{"path": "/etc/motd"}]}, "/etc/motd needs either a content or a source"),
        ({"files": [{"path": "/etc/motd", "content": "x", "source": "motd"}]}, "either a content or a source"),
        ({"files": [{"path": "/etc/motd", "source": "../../etc/shadow"}]}, "relative to the recipe, without '..'"),
        ({"files": [{"path": "/etc/motd", "source": "no-such-file"}]}, "the source no-such-file of /etc/motd"),
        ({"programs": [{"path": "/hello", "source": "hello.c", "docker_image": "Hello"}]}, "must be name:tag"),
        (
            {
                "programs": [
                    {"path": "/a", "source": "hello.c", "docker_image": "hello:1"},
                    {"path": "/b", "source": "hello.c", "docker_image": "hello:2"},
                ]
            },
            "two docker images would both be archived as /usr/share/playground/images/hello.tar",
        ),
    ],
)
def test_a_bad_recipe_is_refused_naming_the_file_and_the_key(raw: dict, words: str, tmp_path: Path) -> None:
    (tmp_path / "hello.c").write_text("int main(void) { return 0; }\n")
    with pytest.raises(RecipeError, match=re.escape(words)) as caught:
        recipe.parse("lab", raw, "recipes/lab.toml", tmp_path)
    assert "recipes/lab.toml" in str(caught.value)


def test_an_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(RecipeError, match="known recipes: debian"):
        recipe.load("nosuchrecipe")
