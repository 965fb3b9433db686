"""``python -m sandbox.images build|import|list|remove``: the image store of this sandbox host (root only).

The store (``<PLAYGROUND_DATA_DIR>/images``) belongs to root, like the agent that mounts it, so this
command must run as root on the sandbox host; the running agent sees a new image at once. It reads
the sandbox host's settings, not the web tier's, and needs no database. See docs/images.md.

Errors end the command with status 1 and one line on stderr saying what happened and what to do.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sandbox import settings
from sandbox.images import debian, oci
from sandbox.images import recipe as recipe_files
from sandbox.images.progress import Progress
from sandbox.images.recipe import RecipeError
from sandbox.images.store import PROFILES, Image, ImageError, ImageInUse, ImageStore, Maker, busybox_maker
from sandbox.settings import ConfigError, Settings
from sandbox.wire.client import AgentClient
from sandbox.wire.protocol import AgentError
from sandbox.wire.tools import ToolError

PROG = "python -m sandbox.images"


class CommandError(Exception):
    """The command cannot do what was asked; the message says why and what to do."""


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per action, with the options of each."""
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Build, import, list or remove the images sandboxes start from (as root on the sandbox host).",
    )
    actions = top.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the images ready on this host")
    listing.add_argument("--recipes", action="store_true", help="list the recipes that can be built instead")
    build = actions.add_parser("build", help="build an image from a recipe (recipes/<name>.toml) or busybox")
    build.add_argument("recipe", help="a recipe name (see 'list --recipes'), a .toml file, or busybox")
    build.add_argument("--name", help="the image's name (default: the recipe's)")
    build.add_argument("--replace", action="store_true", help="replace an image of that name if not in use")
    build.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing if a usable image of that name is ready (one made by an older Playground, for "
        "another uid base or from an older version of its recipe is built again); what 'make image' runs",
    )
    build.add_argument(
        "--no-cache", action="store_true", help="run debootstrap even if a build of the same recipe is cached"
    )
    build.add_argument("--mirror", default="", help="Debian mirror URL (default: the one apt uses here)")
    imp = actions.add_parser(
        "import",
        help="import a docker save archive, an OCI archive/layout or a registry image (docker://host/name:tag)",
    )
    imp.add_argument("source")
    imp.add_argument("name", help="the image's name in Playground")
    imp.add_argument("--replace", action="store_true", help="replace an image of that name if not in use")
    imp.add_argument(
        "--insecure",
        action="store_true",
        help="reach the registry over plain HTTP or without verifying its certificate",
    )
    imp.add_argument(
        "--profile",
        default="",
        choices=[p for p in PROFILES if p],
        help="the sandbox profile the image's sandboxes get (default: the default policy); "
        "'docker' for an image that runs a Docker engine (see docs/images.md)",
    )
    remove = actions.add_parser("remove", help="remove an image no sandbox uses")
    remove.add_argument("name")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); 0 if it did what was asked, else 1."""
    args = parser().parse_args(argv)
    try:
        run(args)
    except (CommandError, ConfigError, ImageError, RecipeError, ToolError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> None:
    """Do ``args.action`` on this host's store, after removing what interrupted work left in it."""
    if os.geteuid() != 0:
        raise CommandError(
            f"the image store belongs to root, as the sandbox agent does; run '{PROG}' as root on the sandbox host."
        )
    cfg = settings.load()
    store = ImageStore(cfg.images_dir, cfg.uid_base, cfg.image_cache)
    for path in store.remove_garbage():
        print(f"removed {path.name}, left by an interrupted build, import or removal")
    ACTIONS[args.action](store, cfg, args)


def do_list(store: ImageStore, cfg: Settings, args: argparse.Namespace) -> None:
    """Print the ready images (or, with ``--recipes``, the recipes that can be built)."""
    if args.recipes:
        for name in recipe_files.available():
            print(f"{name:<16} {recipe_files.load(name).description}")
        return
    print(f"{'NAME':<16} {'TAG':<10} {'LAYERS':>6} {'SIZE':>10}  {'CREATED':<20}  SOURCE")
    for image in store.list():
        print(
            f"{image.name:<16} {image.tag:<10} {len(image.layers):>6} "
            f"{image.size / 1024**2:>8.1f}M  {image.created:<20}  {image.source}"
        )


def do_build(store: ImageStore, cfg: Settings, args: argparse.Namespace) -> None:
    """Build busybox or a Debian recipe into the store."""
    maker: Maker
    wanted = ""  # the digest the image should have: its recipe's ("" for busybox: any is fine)
    if args.recipe == "busybox":
        maker, target = busybox_maker(cfg.uid_base), args.name or "busybox"
    else:
        parsed = recipe_files.load(args.recipe)
        cache = not args.no_cache
        maker = debian.maker(parsed, cfg.uid_base, cfg.image_cache, Progress(), args.mirror, use_cache=cache)
        target, wanted = args.name or parsed.name, parsed.digest()
    replace = args.replace
    if args.if_missing:
        try:
            image = store.load(target)
        except ImageError:
            replace = replace or (store.root / target).exists()  # unusable: older format or another uid base
        else:
            if up_to_date(image, wanted):
                _made(image)
                return
            print(f"image {target} was built from an older version of its recipe; building it again")
            replace = True
    _made(store.make(target, maker, replace=replace))


def up_to_date(image: Image, recipe_digest: str) -> bool:
    """Whether ``image`` needs no rebuild for ``--if-missing``: it was made from the recipe as it is
    now (same digest), or no recipe digest is asked for (busybox, the image of a binary)."""
    return not recipe_digest or image.digest == recipe_digest


def do_import(store: ImageStore, cfg: Settings, args: argparse.Namespace) -> None:
    """Import an image from an archive, an OCI layout or a registry into the store."""
    maker = oci.maker(args.source, cfg.uid_base, Progress(), args.insecure, args.profile)
    _made(store.make(args.name, maker, replace=args.replace))


def do_remove(store: ImageStore, cfg: Settings, args: argparse.Namespace) -> None:
    """Remove an image, unless a sandbox mounts it: then name those sandboxes and how to end them."""
    try:
        store.remove(args.name)
    except ImageInUse as exc:
        raise CommandError(
            f"image {args.name!r} is in use by {describe_users(exc.users, cfg.agent_socket)}; end the sessions "
            "using them (DELETE /api/sessions/<id>/, the admin, or wait for them to expire; a sandbox's id is "
            "its instance's id without dashes) and try again."
        ) from None
    print(f"removed image {args.name}")


def describe_users(runtime_ids: list[str], agent_socket: Path) -> str:
    """The sandboxes of ``runtime_ids`` by the ids the agent lists them under (its ``list`` op); those
    it does not list (its warm pool) are said to be so."""
    try:
        sandboxes = AgentClient(agent_socket).call("list")["sandboxes"]
    except AgentError as exc:
        return f"sandbox(es) {', '.join(runtime_ids)} (the agent did not say whose: {exc.message})"
    by_runtime = {s["runtime_id"]: s["id"] for s in sandboxes}
    listed = [by_runtime[r] for r in runtime_ids if r in by_runtime]
    unlisted = [r for r in runtime_ids if r not in by_runtime]
    words = []
    if listed:
        words.append(f"sandbox(es) {', '.join(sorted(listed))}")
    if unlisted:
        words.append(
            f"sandbox(es) {', '.join(unlisted)} that no session owns (the warm pool, "
            "PLAYGROUND_WARM_POOL, keeps some ready)"
        )
    return " and ".join(words)


def _made(image: Image) -> None:
    """Say that ``image`` is ready, with its layers, size, source and sandbox profile (if not the default)."""
    profile = f"; sandbox profile {image.profile}" if image.profile else ""
    print(
        f"image {image.name} ready: {len(image.layers)} layer(s), {image.size / 1024**2:.1f} MiB, "
        f"{image.source}{profile}"
    )


ACTIONS: dict[str, Callable[[ImageStore, Settings, argparse.Namespace], None]] = {
    "list": do_list,
    "build": do_build,
    "import": do_import,
    "remove": do_remove,
}
