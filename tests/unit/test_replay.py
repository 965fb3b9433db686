"""The terminal replay ring in shared memory."""

from __future__ import annotations

import os

import pytest

from sandbox.wire.replay import ReplayBuffer


def test_a_replay_buffer_keeps_the_newest_bytes_across_the_wrap() -> None:
    buffer = ReplayBuffer(10)
    for chunk in (b"abcd", b"efgh", b"ijkl"):
        buffer.append(chunk)
    assert buffer.contents() == b"cdefghijkl"
    assert len(buffer) == 10
    assert buffer.total == 12
    buffer.close()


def test_a_chunk_larger_than_the_buffer_leaves_only_its_tail() -> None:
    buffer = ReplayBuffer(8)
    buffer.append(b"xy")
    buffer.append(b"0123456789abc")
    assert buffer.contents() == b"56789abc"
    buffer.close()


def test_a_new_agent_sees_the_screen_through_a_duplicate_of_the_memfd() -> None:
    first = ReplayBuffer(16)
    first.append(b"$ echo hello\r\nhello\r\n$ ")
    kept = os.dup(first.fd)  # what the keeper holds
    first.close()  # the agent dies
    second = ReplayBuffer(0, fd=kept)
    assert second.capacity == 16
    assert second.contents() == b"$ echo hello\r\nhello\r\n$ "[-16:]
    second.append(b"ls\r\n")
    assert second.contents().endswith(b"$ ls\r\n")
    second.close()


def test_closing_a_replay_buffer_twice_is_harmless() -> None:
    buffer = ReplayBuffer(4)
    buffer.close()
    buffer.close()
    assert buffer.fd == -1


def test_a_memfd_too_small_to_be_a_buffer_is_refused() -> None:
    fd = os.memfd_create("tiny")
    with pytest.raises(ValueError, match="too small"):
        ReplayBuffer(0, fd=fd)


def test_nobody_holding_a_duplicate_can_resize_the_buffer_under_the_agents_mapping() -> None:
    buffer = ReplayBuffer(4096)
    assert buffer.size_sealed
    duplicate = os.dup(buffer.fd)  # what the web tier gets when it is lent the reading
    try:
        for size in (8, 1 << 20):
            with pytest.raises(PermissionError):
                os.ftruncate(duplicate, size)
        other = ReplayBuffer(0, fd=duplicate)
        other.append(b"written by the web tier")
        assert buffer.contents() == b"written by the web tier"
        other.close()
    finally:
        buffer.close()


def test_a_buffer_of_an_unsealed_memfd_says_so() -> None:
    fd = os.memfd_create("older-agent", os.MFD_CLOEXEC)
    os.ftruncate(fd, 4096)
    buffer = ReplayBuffer(0, fd=fd)
    assert not buffer.size_sealed
    buffer.close()
