"""The pieces around image builds: the apt mirror, debootstrap's progress, locked workspaces."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from sandbox.images import workspace
from sandbox.images.debian import DebootstrapProgress, apt_mirror
from sandbox.images.progress import Progress
from sandbox.images.workspace import Workspace


def test_the_mirror_is_the_one_apt_uses_for_the_suite_in_either_sources_format(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://one.example/debian/ bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
    )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://two.example/debian\nSuites: trixie trixie-updates\nComponents: main\n"
    )
    assert apt_mirror("bookworm", [tmp_path / "sources.list", tmp_path / "d"]) == "http://one.example/debian"
    assert apt_mirror("trixie", [tmp_path / "sources.list", tmp_path / "d"]) == "http://two.example/debian"
    assert apt_mirror("sid", [tmp_path / "nothing"]) == "http://deb.debian.org/debian"


def test_debootstraps_progress_lines_move_the_bar() -> None:
    out = io.StringIO()
    parser = DebootstrapProgress(Progress(out))
    for line in ["P: 10 40 DOWNDEBS", "PA: libc6", "PF: Downloading %s", "I: Retrieving", "dpkg: noise"]:
        parser.line(line)
    assert "25% Downloading libc6" in out.getvalue()


def test_a_workspace_disappears_unless_committed(tmp_path: Path) -> None:
    with Workspace(tmp_path, "lab") as work:
        (work.path / "file").write_text("x")
        assert work.path.is_dir()
    assert not list(tmp_path.glob(".work-*"))
    with Workspace(tmp_path, "lab") as work:
        (work.path / "file").write_text("x")
        work.commit(work.path, tmp_path / "lab")
    assert (tmp_path / "lab" / "file").read_text() == "x"
    assert not list(tmp_path.glob(".work-*"))


def test_collect_removes_the_workspace_of_a_killed_process_but_never_a_live_one(tmp_path: Path) -> None:
    live = Workspace(tmp_path, "live")
    child = (
        f"from sandbox.images.workspace import Workspace; from pathlib import Path; Workspace(Path({str(tmp_path)!r}), "
        "'dead'); import os; os.kill(os.getpid(), 9)"
    )
    subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).resolve().parents[2])
    dead = [p for p in tmp_path.glob(".work-dead-*")]
    assert len(dead) == 1
    assert workspace.collect(tmp_path) == dead
    assert live.path.is_dir()
    assert not dead[0].exists()
    live.close()
    assert not live.path.exists()
    assert os.listdir(tmp_path / ".locks") == []
