"""A terminal's recording (sandbox.pty.recording, sandbox.wire.asciicast): an asciicast v2 file with
a header, output as UTF-8 text, resizes and markers, kept within its bound by dropping the oldest
events behind a marker."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.agent.recordings import Recordings
from sandbox.agent.records import Sandbox
from sandbox.agent.registry import Registry
from sandbox.pty import recording
from sandbox.pty.recording import Recorder
from sandbox.pty.terminal import Terminal
from sandbox.wire import asciicast
from sandbox.wire.protocol import AgentError
from sandbox.wire.replay import ReplayBuffer
from tests.casts import asciinema_cat
from tests.ptykit import raw_pty
from tests.waiting import eventually_async


class Clock:
    """Stands in for time.time in the recorder: moves only when told."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(recording.time, "time", fake.time)
    yield fake


def recorder(directory: Path, size: tuple[int, int] = (80, 24), max_bytes: int = 2**20) -> Recorder:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    return Recorder(fd, "node1-0.cast", lambda: size, max_bytes, "node1, terminal 0")


def lines(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """The header and the events of a recording; every line must be JSON."""
    head, *events = path.read_text(encoding="utf-8").splitlines()
    return json.loads(head), [json.loads(e) for e in events]


def test_a_recording_starts_with_a_version_2_header_and_has_one_json_event_per_line(
    tmp_path: Path, clock: Clock
) -> None:
    rec = recorder(tmp_path, (100, 30))
    rec.output(b"$ echo hi\r\nhi\r\n")
    clock.now += 0.5
    rec.marker("step 2")
    rec.close()
    head, events = lines(tmp_path / "node1-0.cast")
    assert head == {"version": 2, "width": 100, "height": 30, "timestamp": 1_800_000_000, "title": "node1, terminal 0"}
    assert events == [[0.0, "o", "$ echo hi\r\nhi\r\n"], [0.5, "m", "step 2"]]


def test_a_character_split_between_two_reads_is_written_whole_and_bytes_not_utf8_become_replacements(
    tmp_path: Path, clock: Clock
) -> None:
    rec = recorder(tmp_path)
    hangul = "한".encode()
    rec.output(b"a" + hangul[:2])
    clock.now += 1
    rec.output(hangul[2:] + b"b\xff")
    rec.close()
    _, events = lines(tmp_path / "node1-0.cast")
    assert [e[2] for e in events] == ["a", "한b\ufffd"]


def test_a_resize_is_recorded_before_the_output_that_follows_it(tmp_path: Path, clock: Clock) -> None:
    sizes = [(80, 24)]
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    rec = Recorder(fd, "node1-0.cast", lambda: sizes[-1], 2**20, "t")
    rec.output(b"one")
    clock.now += 1
    sizes.append((120, 40))
    rec.output(b"two")
    rec.close()
    head, events = lines(tmp_path / "node1-0.cast")
    assert (head["width"], head["height"]) == (80, 24)
    assert events == [[0.0, "o", "one"], [1.0, "r", "120x40"], [1.0, "o", "two"]]


def test_output_within_the_join_delay_is_one_event(tmp_path: Path, clock: Clock) -> None:
    rec = recorder(tmp_path)
    for part in (b"a", b"b", b"c"):
        rec.output(part)
        clock.now += recording.JOIN_DELAY / 4
    rec.close()
    assert lines(tmp_path / "node1-0.cast")[1] == [[0.0, "o", "abc"]]


def test_a_flood_keeps_the_file_within_its_bound_with_the_newest_output_after_an_output_dropped_marker(
    tmp_path: Path, clock: Clock
) -> None:
    bound = 64 * 1024
    rec = recorder(tmp_path, max_bytes=bound)
    sizes = []
    for n in range(2000):  # about 2 MB of `yes`, far past the bound
        rec.output(b"y\r\n" * 300 + f"line {n}\r\n".encode())
        clock.now += 0.1
        sizes.append((tmp_path / "node1-0.cast").stat().st_size)
    rec.close()
    path = tmp_path / "node1-0.cast"
    assert max(sizes) <= bound and path.stat().st_size <= bound
    head, events = lines(path)
    assert head["version"] == 2
    assert events[0][1:] == ["m", asciicast.DROPPED]
    assert sum(1 for e in events if e[1] == "m") == 1  # one marker, not one per compaction
    assert events[-1][2].endswith("line 1999\r\n")
    times = [e[0] for e in events]
    assert times == sorted(times) and times[0] == events[1][0]


def test_an_earlier_agents_recording_is_continued_with_its_clock(tmp_path: Path, clock: Clock) -> None:
    first = recorder(tmp_path)
    first.output(b"before")
    first.close()
    clock.now += 60
    second = recorder(tmp_path)
    second.output(b"after")
    second.close()
    head, events = lines(tmp_path / "node1-0.cast")
    assert head["timestamp"] == 1_800_000_000
    assert events == [[0.0, "o", "before"], [60.0, "o", "after"]]


def test_a_recording_never_follows_a_symbolic_link(tmp_path: Path, clock: Clock) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    (tmp_path / "node1-0.cast").symlink_to(target)
    rec = recorder(tmp_path)
    rec.output(b"x")
    rec.close()
    assert rec.broken and target.read_text() == "precious"


def test_a_recording_never_writes_through_a_hard_link_or_into_a_fifo(tmp_path: Path, clock: Clock) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    os.link(target, tmp_path / "node1-0.cast")
    linked = recorder(tmp_path)
    linked.output(b"x")
    linked.close()
    (tmp_path / "node1-0.cast").unlink()
    os.mkfifo(tmp_path / "node1-0.cast")
    fifo = recorder(tmp_path)
    fifo.close()
    assert linked.broken and fifo.broken and target.read_text() == "precious"


def test_trim_leaves_a_recording_that_fits_unchanged_and_otherwise_keeps_the_newest_behind_one_marker() -> None:
    head = asciicast.header(80, 24, 0, "t")
    events = [asciicast.event(float(n), "o", "x" * 10) for n in range(10)]
    content = head + b"".join(events)
    assert asciicast.trim(content, 10_000) == content
    trimmed = asciicast.trim(content, len(content) - 1)
    marker = asciicast.event(2.0, "m", asciicast.DROPPED)
    assert trimmed == head + marker + b"".join(events[2:]) and len(trimmed) <= len(content) - 1
    again = asciicast.trim(trimmed + events[0], len(trimmed))  # the earlier marker is dropped with them
    assert again.count(b"output dropped") == 1 and again.endswith(events[0])


def test_trim_to_less_than_a_marker_leaves_the_header_alone() -> None:
    head = asciicast.header(80, 24, 0, "t")
    assert asciicast.trim(head + asciicast.event(1.0, "o", "x" * 100), len(head) + 10) == head


@pytest.mark.skipif(
    shutil.which("asciinema") is None, reason="Debian's asciinema is not installed (make test installs it)"
)
def test_debians_asciinema_plays_a_trimmed_recording(tmp_path: Path, clock: Clock) -> None:
    rec = recorder(tmp_path, max_bytes=64 * 1024)
    for n in range(500):
        rec.output(f"line {n} ✓\r\n".encode() * 40)
        clock.now += 0.01
    rec.close()
    assert asciinema_cat(tmp_path / "node1-0.cast").endswith("line 499 ✓\r\n")


class Viewer:
    """A viewer that can borrow the reading and notes the events it gets."""

    paused = False

    def __init__(self) -> None:
        self.events: list[str] = []
        self.output = bytearray()

    def send_output(self, data: bytes) -> None:
        self.output += data

    def send_event(self, event: dict[str, object]) -> None:
        self.events.append(str(event["type"]))

    def hang_up(self) -> None:
        pass

    def backlog(self) -> int:
        return 0

    async def drain(self) -> None:
        pass


def recorded_sandbox(terminal: Terminal, recorded: bool = True) -> Sandbox:
    sandbox = Sandbox("abcdefgh12", "node1", "busybox", 1.0, terminal)
    sandbox.group, sandbox.recorded = "ab" * 16, recorded
    return sandbox


async def test_a_recorded_terminal_is_never_lent_and_records_its_output_while_nobody_watches(tmp_path: Path) -> None:
    master, slave = raw_pty()
    terminal = Terminal(master, ReplayBuffer(4096))
    try:
        terminal.record(recorder(tmp_path))
        os.write(slave, "nobody watches ✓".encode())
        await eventually_async(
            lambda: terminal.replay.contents(), "the output read", until=lambda b: b.endswith(b"\x93")
        )
        viewer = Viewer()
        terminal.attach(viewer, can_borrow=True)
        assert terminal.lent_to is None and viewer.events == []
        terminal.close()
    finally:
        terminal.close()
        os.close(slave)
    assert [e[2] for e in lines(tmp_path / "node1-0.cast")[1]] == ["nobody watches ✓"]


async def test_the_agent_records_a_recorded_sandboxs_terminal_under_its_session_and_marks_it(tmp_path: Path) -> None:
    master, slave = raw_pty()
    terminal = Terminal(master, ReplayBuffer(4096))
    terminal.replay.append(b"$ ")  # a warm sandbox's prompt, shown before the visitor came
    registry = Registry()
    recordings = Recordings(tmp_path / "recordings", 2**20, "no-such-user-here", registry)
    sandbox = registry.sandboxes["abcdefgh12"] = recorded_sandbox(terminal)
    try:
        recordings.start(sandbox, 0, terminal, fresh=True)
        reply = await recordings.mark({"op": "mark", "id": "abcdefgh12", "label": "step 2"})
        with pytest.raises(AgentError) as refused:
            await recordings.mark({"op": "mark", "id": "abcdefgh12", "label": ""})
    finally:
        terminal.close()
        os.close(slave)
    assert reply == {"marked": 1} and refused.value.code == "bad_request"
    _, events = lines(tmp_path / "recordings" / ("ab" * 16) / "node1-0.cast")
    assert [e[1:] for e in events] == [["o", "$ "], ["m", "step 2"]]


async def test_a_sandbox_not_recorded_gets_no_recording_and_its_marks_count_none(tmp_path: Path) -> None:
    master, slave = raw_pty()
    terminal = Terminal(master, ReplayBuffer(4096))
    registry = Registry()
    recordings = Recordings(tmp_path / "recordings", 2**20, "no-such-user-here", registry)
    sandbox = registry.sandboxes["abcdefgh12"] = recorded_sandbox(terminal, recorded=False)
    try:
        recordings.start(sandbox, 0, terminal, fresh=True)
        reply = await recordings.mark({"op": "mark", "id": "abcdefgh12", "label": "step 2"})
    finally:
        terminal.close()
        os.close(slave)
    assert reply == {"marked": 0} and terminal.recorder is None
    assert not (tmp_path / "recordings").exists()


async def test_a_session_directory_replaced_by_a_link_is_not_followed(tmp_path: Path) -> None:
    master, slave = raw_pty()
    terminal = Terminal(master, ReplayBuffer(4096))
    (tmp_path / "recordings").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "recordings" / ("ab" * 16)).symlink_to(tmp_path / "elsewhere")
    registry = Registry()
    recordings = Recordings(tmp_path / "recordings", 2**20, "no-such-user-here", registry)
    try:
        recordings.start(recorded_sandbox(terminal), 0, terminal, fresh=True)
    finally:
        terminal.close()
        os.close(slave)
    assert terminal.recorder is None and list((tmp_path / "elsewhere").iterdir()) == []


async def test_an_agent_leaving_its_sandboxes_to_the_next_writes_what_its_recorders_kept(tmp_path: Path) -> None:
    master, slave = raw_pty()
    terminal = Terminal(master, ReplayBuffer(4096))
    registry = Registry()
    recordings = Recordings(tmp_path / "recordings", 2**20, "no-such-user-here", registry)
    sandbox = registry.sandboxes["abcdefgh12"] = recorded_sandbox(terminal)
    path = tmp_path / "recordings" / ("ab" * 16) / "node1-0.cast"
    try:
        recordings.start(sandbox, 0, terminal, fresh=True)
        assert terminal.recorder is not None
        terminal.recorder.output(b"kept in memory")
        assert b"kept in memory" not in path.read_bytes()
        recordings.flush_all()
        assert b"kept in memory" in path.read_bytes()
    finally:
        terminal.close()
        os.close(slave)
