"""The pure parts of the per-sandbox id ranges: the layout above the uid base, the record read from
mountinfo, next-fit allocation and PLAYGROUND_SANDBOX_RANGES."""

from __future__ import annotations

import ctypes
import errno
import os
import re
from pathlib import Path

import pytest

from sandbox import settings
from sandbox.host import mounts
from sandbox.host.idranges import RangesExhausted, layer_owners, next_free
from sandbox.wire.envparse import ConfigError
from sandbox.wire.ids import LAST_ID, USERNS_SIZE, max_ranges, range_index, range_start

BASE = 1_000_000_000


def test_range_0_of_the_pool_follows_the_image_stores_range_and_ranges_never_overlap() -> None:
    assert range_start(BASE, 0) == BASE + USERNS_SIZE
    assert range_start(BASE, 7) - range_start(BASE, 6) == USERNS_SIZE
    assert [range_index(BASE, range_start(BASE, i)) for i in (0, 1, 500)] == [0, 1, 500]
    # The image store's own range and ids that start no range are no range of the pool.
    assert range_index(BASE, BASE) is None
    assert range_index(BASE, BASE - USERNS_SIZE) is None
    assert range_index(BASE, range_start(BASE, 3) + 1) is None
    with pytest.raises(ValueError):
        range_start(BASE, -1)


@pytest.mark.parametrize("base", [65536, BASE, 3_000_000_000, LAST_ID - 3 * USERNS_SIZE])
def test_the_last_range_ends_below_the_invalid_id_and_one_more_would_not(base: int) -> None:
    count = max_ranges(base)
    assert count >= 1
    assert range_start(base, count - 1) + USERNS_SIZE - 1 <= LAST_ID < 2**32 - 1
    assert range_start(base, count) + USERNS_SIZE - 1 > LAST_ID


def test_no_range_fits_above_the_highest_base() -> None:
    assert max_ranges(LAST_ID - USERNS_SIZE) == 0


MOUNTINFO = "\n".join(
    [
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
        # Two sandboxes' layers, each owned by the first id of its range.
        f"300 22 0:50 / /data/agent/sandboxes/aaa/layer rw - tmpfs tmpfs rw,size=1024k,uid={range_start(BASE, 0)},"
        f"gid={range_start(BASE, 0)}",
        f"301 22 0:51 / /data/agent/sandboxes/b\\040b/layer rw - tmpfs tmpfs rw,uid={range_start(BASE, 4)},gid=1",
        # An older agent's sandbox: the layer belongs to host root, no range of the pool.
        "302 22 0:52 / /data/agent/sandboxes/old/layer rw - tmpfs tmpfs rw,size=1024k,mode=711",
        # Not a layer, or not a range start: no record.
        f"303 22 0:53 / /run/user/5 rw - tmpfs tmpfs rw,uid={range_start(BASE, 1)}",
        f"304 22 0:54 / /data/agent/sandboxes/odd/layer rw - tmpfs tmpfs rw,uid={range_start(BASE, 2) + 1}",
        f"305 22 0:55 / /data/agent/sandboxes/ovl/layer rw - overlay overlay rw,uid={range_start(BASE, 3)}",
        "a line that is not one",
    ]
)


def test_the_ranges_taken_are_the_sandbox_layers_owned_by_a_range_start() -> None:
    assert layer_owners(MOUNTINFO, BASE) == {
        Path("/data/agent/sandboxes/aaa/layer"): range_start(BASE, 0),
        Path("/data/agent/sandboxes/b b/layer"): range_start(BASE, 4),
    }
    assert layer_owners(MOUNTINFO, BASE + USERNS_SIZE) == {  # another base: another pool
        Path("/data/agent/sandboxes/b b/layer"): range_start(BASE, 4),
    }


def test_next_fit_hands_out_the_range_after_the_last_and_wraps_round() -> None:
    assert next_free(4, set(), -1) == 0
    assert next_free(4, {0}, 0) == 1
    assert next_free(4, set(), 1) == 2  # a range given back (0, 1) comes back last
    assert next_free(4, {3}, 2) == 0
    assert next_free(4, {0, 1, 3}, 3) == 2


def test_with_every_range_held_the_error_names_the_setting() -> None:
    with pytest.raises(RangesExhausted, match="all 3 id ranges \\(PLAYGROUND_SANDBOX_RANGES\\)"):
        next_free(3, {0, 1, 2}, 1)


def test_the_default_number_of_ranges_covers_the_host_the_warm_pool_and_the_network_pool() -> None:
    cfg = settings.load({})
    assert cfg.sandbox_ranges == cfg.host_max_sandboxes + sum(cfg.warm_pool.values()) + cfg.network.pool + 16
    env = {"PLAYGROUND_HOST_MAX_SANDBOXES": "10", "PLAYGROUND_WARM_POOL": "busybox:3,alpine:2"}
    assert settings.load({**env, "PLAYGROUND_NETWORK_POOL": "0"}).sandbox_ranges == 10 + 5 + 0 + 16
    assert settings.load({**env, "PLAYGROUND_SANDBOX_RANGES": "10"}).sandbox_ranges == 10
    # Near the top of the id space, the default is what fits.
    high = {"PLAYGROUND_SANDBOX_UID_BASE": str(LAST_ID - 120 * USERNS_SIZE)}
    assert settings.load(high).sandbox_ranges == max_ranges(int(high["PLAYGROUND_SANDBOX_UID_BASE"])) == 119


@pytest.mark.parametrize(
    "env,message",
    [
        (
            {"PLAYGROUND_SANDBOX_RANGES": "99"},
            "PLAYGROUND_SANDBOX_RANGES='99' is out of range; use an integer from 100",
        ),
        ({"PLAYGROUND_SANDBOX_RANGES": "50277"}, "use an integer from 100 to 50276"),
        ({"PLAYGROUND_SANDBOX_RANGES": "lots"}, "PLAYGROUND_SANDBOX_RANGES='lots' is not a whole number"),
        (
            {"PLAYGROUND_SANDBOX_UID_BASE": str(LAST_ID - 50 * USERNS_SIZE)},
            "leaves room for 49 sandbox id ranges of 65536 ids below 2**32-1, fewer than the "
            "PLAYGROUND_HOST_MAX_SANDBOXES=100",
        ),
    ],
)
def test_too_few_ranges_for_the_host_or_more_than_fit_stop_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings.load(env)


class FakeLibc:
    """A libc whose open_tree works and whose mount_setattr fails with ``setattr_errno`` (or whose
    open_tree fails with ENOSYS, if ``open_tree_errno``): a kernel without idmapped mounts."""

    def __init__(self, setattr_errno: int = 0, open_tree_errno: int = 0) -> None:
        self.setattr_errno, self.open_tree_errno = setattr_errno, open_tree_errno

    def syscall(self, number: int, *args: object) -> int:
        failure = {mounts.SYS_OPEN_TREE: self.open_tree_errno, mounts.SYS_MOUNT_SETATTR: self.setattr_errno}
        if failure.get(number):
            ctypes.set_errno(failure[number])
            return -1
        return os.open("/", os.O_RDONLY)  # the "mount" fd, closed by the caller


@pytest.mark.parametrize(
    "libc,words",
    [
        (FakeLibc(open_tree_errno=errno.ENOSYS), "this kernel has no open_tree(2)"),
        (FakeLibc(setattr_errno=errno.ENOSYS), "Can't make an idmapped mount of /data/images"),
        (FakeLibc(setattr_errno=errno.EINVAL), "Can't make an idmapped mount of /data/images"),
    ],
)
def test_without_idmapped_mounts_the_agent_is_told_which_kernel_and_filesystem_it_needs(
    monkeypatch: pytest.MonkeyPatch, libc: FakeLibc, words: str
) -> None:
    monkeypatch.setattr(mounts, "_libc", libc)
    with pytest.raises(mounts.IdmapUnsupported) as raised:
        mounts.check_idmapped_mounts(Path("/data/images"), 3)
    assert words in str(raised.value.strerror)
    assert "Linux 5.12 or later" in str(raised.value.strerror)
    assert "filesystem that supports them under the image store" in str(raised.value.strerror)
