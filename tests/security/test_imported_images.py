"""An imported image cannot bring host privileges in: its files belong to the sandboxes' id range.

The image is made here, without Docker, with a setuid-root copy of busybox inside, saved as a
``docker save`` archive and imported as an operator would (``python -m sandbox.images import``).
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.settings import load
from tests import imagekit
from tests.stack import Stack, Terminal


async def test_a_setuid_root_binary_in_an_imported_image_gives_root_neither_on_the_host_nor_inside(
    images_stack: Stack, tmp_path: Path
) -> None:
    archive = imagekit.docker_archive(imagekit.tiny_layout(tmp_path), tmp_path / "setuid.tar")
    result = imagekit.images_cli(images_stack, "import", str(archive), "setuid-lab")
    assert result.returncode == 0, result.stderr
    base = load(images_stack.env).uid_base
    on_disk = (images_stack.data_dir / "images" / "setuid-lab" / "layers" / "0" / "opt" / "setuid" / "busybox").stat()
    # Root-owned in the image, owned by the sandboxes' root (an unprivileged host uid) in the store.
    assert (on_disk.st_uid, on_disk.st_gid, on_disk.st_mode & 0o7777) == (base, base, 0o4755)
    store = images_stack.data_dir / "images"
    assert (store.stat().st_mode & 0o777, (store / "setuid-lab").stat().st_mode & 0o777) == (0o711, 0o700)
    session = images_stack.start_session(image="setuid-lab")
    terminal = await Terminal.open(images_stack.terminal_url(session))
    await terminal.expect("# ", timeout=30)
    # no_new_privs: the setuid bit does nothing, so nobody stays nobody.
    assert (await terminal.run("su nobody -s /bin/sh -c '/opt/setuid/busybox id -u'")).strip() == "65534"
    host_uids = {os.stat(f"/proc/{pid}").st_uid for pid in images_stack.host_state()["processes"]}
    assert host_uids and min(host_uids) >= base, host_uids
    await terminal.close()
    images_stack.end_session(session)
