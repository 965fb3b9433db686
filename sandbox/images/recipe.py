"""Declarative image recipes: ``recipes/<name>.toml`` says what a Debian image holds.

A recipe names a Debian suite, the packages to add to a ``minbase`` system, files to write,
users to create, paths to prune, and the image's default command, environment, working
directory and recommended quotas. Its :meth:`Recipe.digest` covers all of that (not the mirror),
so a built image can be cached and reused for the same recipe. See docs/images.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox.images.store import DEFAULT_ENV, NAME
from sandbox.wire.envparse import ConfigError
from sandbox.wire.shared_settings import parse_quota

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
BUILD_VERSION = 1  # bump when the build procedure changes what a recipe produces
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
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
    quotas: dict[str, object] = field(default_factory=dict)  # Quotas fields
    mirror: str = ""  # empty: the mirror apt uses on this host

    def digest(self) -> str:
        """``sha256:<hex>`` of everything that decides the image's content (not the mirror)."""
        content = asdict(self)
        content.pop("mirror")
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
    return parse(path.stem, raw, str(path))


def parse(name: str, raw: dict[str, object], where: str) -> Recipe:
    """Check a recipe's fields; RecipeError names ``where`` and the key at fault."""
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
        files=tuple(_files(raw, where)),
        quotas=_quotas(raw, where),
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


def _files(raw: dict[str, object], where: str) -> list[File]:
    """The ``[[files]]`` to write, each with an absolute path, a string content and a mode."""
    files = []
    for entry in _tables(raw, "files", where):
        path = entry.get("path", "") if isinstance(entry, dict) else ""
        if (
            not isinstance(entry, dict)
            or not isinstance(path, str)
            or not path.startswith("/")
            or ".." in path.split("/")
        ):
            raise RecipeError(f"{where}: files: each entry needs an absolute path without '..'.")
        mode = entry.get("mode", 0o644)
        if not isinstance(mode, int) or not 0 <= mode <= 0o7777 or not isinstance(entry.get("content"), str):
            raise RecipeError(f"{where}: files: {path} needs a string content and a mode such as 0o644.")
        files.append(File(path, entry["content"], mode))
    return files


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
