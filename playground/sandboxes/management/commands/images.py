"""``manage.py images build|import|list|remove``: the image store of this sandbox host (run as root).

The store (``<PLAYGROUND_DATA_DIR>/images``) belongs to root, like the agent that mounts it,
so this command must run as root on the sandbox host; the running agent sees a new image at
once. See docs/images.md.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.sandboxes.agent import client
from playground.sandboxes.models import Instance, Session
from sandbox.images import debian, oci
from sandbox.images import recipe as recipe_files
from sandbox.images.progress import Progress
from sandbox.images.recipe import RecipeError
from sandbox.images.store import Image, ImageError, ImageInUse, ImageStore, Maker, busybox_maker
from sandbox.images.tools import ToolError
from sandbox.wire.protocol import AgentError


class Command(BaseCommand):
    help = "Build, import, list or remove the images sandboxes start from (as root on the sandbox host)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="the images ready on this host")
        listing.add_argument("--recipes", action="store_true", help="list the recipes that can be built instead")
        build = actions.add_parser("build", help="build an image from a recipe (recipes/<name>.toml) or busybox")
        build.add_argument("recipe", help="a recipe name (see 'list --recipes'), a .toml file, or busybox")
        build.add_argument("--name", help="the image's name (default: the recipe's)")
        build.add_argument("--replace", action="store_true", help="replace an image of that name if not in use")
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
        remove = actions.add_parser("remove", help="remove an image no session uses")
        remove.add_argument("name")

    def handle(self, *args: object, action: str, **options: object) -> None:
        if os.geteuid() != 0:
            raise CommandError(
                "the image store belongs to root, as the sandbox agent does; run "
                "'manage.py images' as root on the sandbox host."
            )
        cfg = settings.PLAYGROUND
        store = ImageStore(cfg.images_dir, cfg.uid_base, cfg.image_cache)
        for path in store.remove_garbage():
            self.stdout.write(f"removed {path.name}, left by an interrupted build, import or removal")
        try:
            getattr(self, f"do_{action}")(store, **options)
        except (ImageError, RecipeError, ToolError) as exc:
            raise CommandError(str(exc)) from None

    def do_list(self, store: ImageStore, recipes: bool = False, **options: object) -> None:
        if recipes:
            for name in recipe_files.available():
                self.stdout.write(f"{name:<16} {recipe_files.load(name).description}")
            return
        self.stdout.write(f"{'NAME':<16} {'TAG':<10} {'LAYERS':>6} {'SIZE':>10}  {'CREATED':<20}  SOURCE")
        for image in store.list():
            self.stdout.write(
                f"{image.name:<16} {image.tag:<10} {len(image.layers):>6} "
                f"{image.size / 1024**2:>8.1f}M  {image.created:<20}  {image.source}"
            )

    def do_build(
        self,
        store: ImageStore,
        recipe: str,
        name: str | None = None,
        replace: bool = False,
        no_cache: bool = False,
        mirror: str = "",
        **options: object,
    ) -> None:
        cfg = settings.PLAYGROUND
        progress = Progress()
        maker: Maker
        if recipe == "busybox":
            maker, target = busybox_maker(cfg.uid_base), name or "busybox"
        else:
            parsed = recipe_files.load(recipe)
            maker = debian.maker(parsed, cfg.uid_base, cfg.image_cache, progress, mirror, use_cache=not no_cache)
            target = name or parsed.name
        self._made(store.make(target, maker, replace=replace))

    def do_import(
        self,
        store: ImageStore,
        source: str,
        name: str,
        replace: bool = False,
        insecure: bool = False,
        **options: object,
    ) -> None:
        progress = Progress()
        self._made(
            store.make(name, oci.maker(source, settings.PLAYGROUND.uid_base, progress, insecure), replace=replace)
        )

    def do_remove(self, store: ImageStore, name: str, **options: object) -> None:
        live = Session.objects.exclude(state=Session.State.ENDED).filter(image=name)
        if ids := [str(s.id) for s in live]:
            raise CommandError(
                f"image {name!r} is in use by session(s) {', '.join(ids)}; end them "
                "(DELETE /api/sessions/<id>/, or wait for them to expire) and try again."
            )
        try:
            store.remove(name)
        except ImageInUse as exc:
            raise CommandError(
                f"image {name!r} is in use by {describe_users(exc.users)}; end them and try again."
            ) from None
        self.stdout.write(f"removed image {name}")

    def _made(self, image: Image) -> None:
        self.stdout.write(
            f"image {image.name} ready: {len(image.layers)} layer(s), {image.size / 1024**2:.1f} MiB, {image.source}"
        )


def describe_users(runtime_ids: list[str]) -> str:
    """Sandboxes by runtime id, named by the sessions owning them where the agent and database know."""
    try:
        sandboxes = client().call("list")["sandboxes"]
    except AgentError:
        sandboxes = []
    by_runtime = {s["runtime_id"]: s["id"] for s in sandboxes}
    sessions, others = [], []
    for runtime_id in runtime_ids:
        sandbox_id = by_runtime.get(runtime_id, runtime_id)
        instance = Instance.objects.filter(id=_uuid(sandbox_id)).first() if _uuid(sandbox_id) else None
        if instance is not None:
            sessions.append(str(instance.session_id))
        else:
            others.append(runtime_id)
    words = []
    if sessions:
        words.append(f"session(s) {', '.join(sorted(set(sessions)))}")
    if others:
        words.append(
            f"sandbox(es) {', '.join(others)} that no session owns (the warm pool, "
            "PLAYGROUND_WARM_POOL, keeps some ready)"
        )
    return " and ".join(words)


def _uuid(value: str) -> str | None:
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None
