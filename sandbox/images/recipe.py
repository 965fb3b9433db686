"""Declarative image recipes: ``recipes/<name>.toml`` says what a Debian image holds.

A recipe names a Debian suite, the packages to add to a ``minbase`` system, files to write,
small C programs to compile into it (optionally wrapped as a Docker image archive), users to
create, paths to prune, the image's default command, environment, working directory,
recommended quotas, sandbox profile and the file that says a sandbox has started (``ready``).
Files and programs given by ``source`` are read when the recipe is parsed, so
:meth:`Recipe.digest` covers their text along with everything else (not the mirror), and a
built image can be cached and reused for the same recipe. See docs/images.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox.images.store import DEFAULT_ENV, NAME, PROFILES
from sandbox.wire.envparse import ConfigError
from sandbox.wire.shared_settings import parse_quota

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
BUILD_VERSION = 1  # bump when the build procedure changes what a recipe produces
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
DOCKER_TAG = re.compile(r"^([a-z0-9][a-z0-9._-]{0,62}):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")  # name:tag
DOCKER_ARCHIVES = "/usr/share/playground/images"  # where programs' Docker archives go in the image
KEYS = {
    "description",
    "suite",
    "variant",
    "components",
    "packages",
    "prune",
    "cmd",
    "env",
    "workdir",
    "quotas",
    "users",
    "files",
    "programs",
    "profile",
    "ready",
    "mirror",
}


class RecipeError(Exception):
    """A recipe cannot be read or is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class User:
    """A user the recipe creates in the image (``[[users]]``)."""

    name: str
    uid: int
    shell: str = "/bin/bash"
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class File:
    """A file the recipe writes into the image (``[[files]]``)."""

    path: str  # absolute, inside the image
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Program:
    """A C program the recipe compiles into the image (``[[programs]]``), static and stripped.

    Without ``docker_image`` it is installed at ``path`` in the image. With it, it goes only into a
    one-layer Docker image of that ``name:tag`` (at ``path`` there, which is its command), written
    as a ``docker save`` archive to :attr:`archive` in the image.
    """

    source: str  # as the recipe names it, relative to the recipe's directory
    code: str  # the C text, read when the recipe is parsed (so the digest covers it)
    path: str  # absolute
    mode: int = 0o755
    docker_image: str = ""  # name:tag, or empty

    @property
    def archive(self) -> str:
        """Where the Docker archive goes in the image: ``<DOCKER_ARCHIVES>/<name>.tar``."""
        return f"{DOCKER_ARCHIVES}/{self.docker_image.split(':')[0]}.tar"


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe; ``name`` is the image it makes by default."""

    name: str
    suite: str
    packages: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    description: str = ""
    variant: str = "minbase"
    components: tuple[str, ...] = ("main",)
    prune: tuple[str, ...] = ()
    users: tuple[User, ...] = ()
    files: tuple[File, ...] = ()
    programs: tuple[Program, ...] = ()
    quotas: dict[str, object] = field(default_factory=dict)  # Quotas fields
    profile: str = ""  # the sandbox profile (store.PROFILES); "" is the default policy
    ready: str = ""  # a file the image's init makes once the sandbox has finished starting ("": none)
    mirror: str = ""  # empty: the mirror apt uses on this host

    def digest(self) -> str:
        """``sha256:<hex>`` of everything that decides the image's content (not the mirror)."""
        content = asdict(self)
        content.pop("mirror")
        for key in ("programs", "profile", "ready"):  # keys added later: at their defaults, digests stay as they were
            if not content[key]:
                content.pop(key)
        content["build_version"] = BUILD_VERSION
        return "sha256:" + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def available() -> list[str]:
    """Names of the recipes shipped in ``recipes/``."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def load(name_or_path: str) -> Recipe:
    """The recipe ``recipes/<name>.toml``, or the one in the file ``name_or_path``."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.exists()):
        if not NAME.match(name_or_path):
            raise RecipeError(f"there is no recipe {name_or_path!r}; known recipes: {', '.join(available())}.")
        path = RECIPES_DIR / f"{name_or_path}.toml"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(
            f"there is no recipe {name_or_path!r}; known recipes: {', '.join(available())}, "
            "or give the path of a .toml file."
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path}: cannot be read as TOML ({exc}).") from None
    return parse(path.stem, raw, str(path), path.parent)


def parse(name: str, raw: dict[str, object], where: str, directory: Path = RECIPES_DIR) -> Recipe:
    """Check a recipe's fields; RecipeError names ``where`` and the key at fault.

    ``source`` paths of files and programs are relative to ``directory`` (the recipe's own).
    """
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(KEYS))}.")
    if not NAME.match(name):
        raise RecipeError(f"{where}: the file name must be an image name (lower-case letters, digits, '.', '_', '-').")
    packages = _strings(raw, "packages", where, [])
    for package in packages:
        if not PACKAGE.match(package):
            raise RecipeError(f"{where}: packages: {package!r} is not a Debian package name.")
    env = _strings(raw, "env", where, [])
    for item in env:
        if "=" not in item:
            raise RecipeError(f"{where}: env: {item!r} is not NAME=value.")
    workdir = str(raw.get("workdir", "/root"))
    if not workdir.startswith("/"):
        raise RecipeError(f"{where}: workdir {workdir!r} must be an absolute path.")
    cmd = _strings(raw, "cmd", where, ["/bin/bash", "-l"])
    if not cmd:
        raise RecipeError(f'{where}: cmd must name a program, such as ["/bin/bash", "-l"].')
    return Recipe(
        name=name,
        suite=_word(raw, "suite", where, "bookworm"),
        packages=tuple(sorted(set(packages))),
        cmd=tuple(cmd),
        env=tuple(_merge_env(DEFAULT_ENV, env)),
        workdir=workdir,
        description=str(raw.get("description", "")),
        variant=_word(raw, "variant", where, "minbase"),
        components=tuple(_strings(raw, "components", where, ["main"])),
        prune=tuple(_prune(raw, where)),
        users=tuple(_users(raw, where)),
        files=tuple(_files(raw, where, directory)),
        programs=tuple(_programs(raw, where, directory)),
        quotas=_quotas(raw, where),
        profile=_profile(raw, where),
        ready=_ready(raw, where),
        mirror=str(raw.get("mirror", "")),
    )


def _merge_env(defaults: list[str], env: list[str]) -> list[str]:
    """``defaults`` with the recipe's variables replacing those of the same name, in order."""
    merged = {item.split("=", 1)[0]: item for item in defaults}
    merged.update({item.split("=", 1)[0]: item for item in env})
    return list(merged.values())


def _word(raw: dict[str, object], key: str, where: str, default: str) -> str:
    """``raw[key]`` (or ``default``) if it is one lower-case word such as a suite or a variant."""
    value = raw.get(key, default)
    if not isinstance(value, str) or not re.match(r"^[a-z0-9][a-z0-9.-]*$", value):
        raise RecipeError(f"{where}: {key} = {value!r} is not a plain word such as {default!r}.")
    return value


def _strings(raw: dict[str, object], key: str, where: str, default: list[str]) -> list[str]:
    """``raw[key]`` (or ``default``) if it is a list of non-empty strings."""
    value = raw.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RecipeError(f"{where}: {key} must be a list of non-empty strings.")
    return list(value)


def _prune(raw: dict[str, object], where: str) -> list[str]:
    """The paths or globs to delete from the built tree, each absolute and without '..'."""
    patterns = _strings(raw, "prune", where, [])
    for pattern in patterns:
        if not pattern.startswith("/") or ".." in pattern.split("/"):
            raise RecipeError(f"{where}: prune: {pattern!r} must be an absolute path or glob without '..'.")
    return patterns


def _tables(raw: dict[str, object], key: str, where: str) -> list[object]:
    """The array of tables ``key`` (``[[key]]`` in TOML), empty if absent."""
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise RecipeError(f"{where}: {key} must be an array of tables, each written [[{key}]].")
    return value


def _users(raw: dict[str, object], where: str) -> list[User]:
    """The ``[[users]]`` to create, each with a name, a uid inside the sandbox's range, a shell and groups."""
    users = []
    for entry in _tables(raw, "users", where):
        if not isinstance(entry, dict) or not USER.match(str(entry.get("name", ""))):
            raise RecipeError(f"{where}: users: each entry needs a name of lower-case letters and digits.")
        uid = entry.get("uid", 1000)
        if not isinstance(uid, int) or not 1 <= uid < 65534:
            raise RecipeError(f"{where}: users: uid {uid!r} of {entry['name']} must be from 1 to 65533.")
        groups = entry.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) and USER.match(g) for g in groups):
            raise RecipeError(f"{where}: users: groups of {entry['name']} must be a list of group names.")
        users.append(User(entry["name"], uid, str(entry.get("shell", "/bin/bash")), tuple(groups)))
    return users


def _entries(raw: dict[str, object], key: str, where: str, default_mode: int) -> list[tuple[dict, str, int]]:
    """Each table of ``[[key]]`` with its absolute ``path`` (no '..') and its ``mode`` (``default_mode``)."""
    entries = []
    for entry in _tables(raw, key, where):
        path = entry.get("path", "") if isinstance(entry, dict) else ""
        if (
            not isinstance(entry, dict)
            or not isinstance(path, str)
            or not path.startswith("/")
            or ".." in path.split("/")
        ):
            raise RecipeError(f"{where}: {key}: each entry needs an absolute path without '..'.")
        mode = entry.get("mode", default_mode)
        if not isinstance(mode, int) or not 0 <= mode <= 0o7777:
            raise RecipeError(f"{where}: {key}: {path} needs a mode such as {default_mode:#o}.")
        entries.append((entry, path, mode))
    return entries


def _source(entry: dict, key: str, path: str, where: str, directory: Path) -> str:
    """The text of the file ``entry["source"]`` names, relative to ``directory``."""
    source = entry.get("source")
    if not isinstance(source, str) or not source or source.startswith("/") or ".." in source.split("/"):
        raise RecipeError(f"{where}: {key}: {path} needs a source: a path relative to the recipe, without '..'.")
    try:
        return (directory / source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{where}: {key}: the source {source} of {path} cannot be read ({exc}).") from None


def _files(raw: dict[str, object], where: str, directory: Path) -> list[File]:
    """The ``[[files]]`` to write, each with an absolute path, a mode, and either a string
    ``content`` or a ``source`` file (relative to the recipe) whose text is the content."""
    files = []
    for entry, path, mode in _entries(raw, "files", where, 0o644):
        if ("content" in entry) == ("source" in entry):
            raise RecipeError(f"{where}: files: {path} needs either a content or a source, not both.")
        if "content" in entry and not isinstance(entry["content"], str):
            raise RecipeError(f"{where}: files: the content of {path} must be a string.")
        content = entry["content"] if "content" in entry else _source(entry, "files", path, where, directory)
        files.append(File(path, content, mode))
    return files


def _programs(raw: dict[str, object], where: str, directory: Path) -> list[Program]:
    """The ``[[programs]]`` to compile: a C ``source`` (relative to the recipe), an absolute ``path``,
    a ``mode``, and optionally a ``docker_image`` (``name:tag``, each name at most once)."""
    programs: list[Program] = []
    for entry, path, mode in _entries(raw, "programs", where, 0o755):
        code = _source(entry, "programs", path, where, directory)
        docker_image = entry.get("docker_image", "")
        if not isinstance(docker_image, str) or (docker_image and not DOCKER_TAG.match(docker_image)):
            raise RecipeError(
                f"{where}: programs: docker_image {docker_image!r} of {path} must be name:tag, "
                "such as 'hello-world:latest'."
            )
        program = Program(str(entry["source"]), code, path, mode, docker_image)
        if docker_image and any(p.docker_image and p.archive == program.archive for p in programs):
            raise RecipeError(f"{where}: programs: two docker images would both be archived as {program.archive}.")
        programs.append(program)
    return programs


def _profile(raw: dict[str, object], where: str) -> str:
    """The sandbox profile the image asks for: one of PROFILES ("" when absent)."""
    profile = raw.get("profile", "")
    if profile not in PROFILES:
        allowed = ", ".join(repr(p) for p in PROFILES)
        raise RecipeError(f"{where}: profile = {profile!r} is not a sandbox profile; allowed: {allowed}.")
    return str(profile)


def _ready(raw: dict[str, object], where: str) -> str:
    """The file whose existence says a sandbox of the image has finished starting ("" when absent):
    an absolute path without '..', and (the agent looks it up from outside) without symbolic links."""
    ready = raw.get("ready", "")
    if not isinstance(ready, str) or (
        ready and (not ready.startswith("/") or ready == "/" or ".." in ready.split("/"))
    ):
        raise RecipeError(
            f"{where}: ready = {ready!r} must be the absolute path of a file the image's init makes, "
            "such as '/run/ready'."
        )
    return ready


def _quotas(raw: dict[str, object], where: str) -> dict[str, object]:
    """The recommended ``[quotas]`` as Quotas fields, checked as the site-wide settings are."""
    table = raw.get("quotas", {})
    if not isinstance(table, dict):
        raise RecipeError(f'{where}: quotas must be a table such as [quotas] memory = "1G".')
    quotas = {}
    for key, value in table.items():
        try:
            field_name, parsed = parse_quota(key, str(value), f"{where} quotas.{key}")
        except ConfigError as exc:
            raise RecipeError(str(exc)) from None
        quotas[field_name] = parsed
    return quotas
