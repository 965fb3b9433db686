"""Killercoda/Katacoda scenarios import as labs: steps with their text, verify (check) and
background (setup) scripts, the backend image mapped to ours, unknown fields as warnings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from playground import config
from playground.labs import killercoda
from playground.labs.loader import LabError
from playground.labs.models import Lab

FIXTURES = config.REPO_DIR / "tests" / "fixtures" / "killercoda"


@pytest.mark.django_db
def test_a_killercoda_scenario_imports_with_its_steps_scripts_and_pages() -> None:
    lab = killercoda.import_scenario(FIXTURES / "files-and-permissions")
    assert (lab.slug, lab.language, lab.origin, lab.image) == ("files-and-permissions", "en", "killercoda", "debian")
    assert lab.title == "Files, owners and permissions"
    assert lab.summary.startswith("Set up a shared project folder")
    steps = list(lab.steps.all())
    assert [s.title for s in steps] == ["Create the project folder", "Lock it down", "Find what takes the space"]
    assert steps[0].setup_script.startswith("#!/bin/sh\n# Runs before step 1")
    assert steps[0].foreground == "ls -la /srv/incoming"
    assert "chmod 644 /srv/project/secret.env" in steps[1].setup_script
    assert all("exit 1" in s.check_script for s in steps)
    assert steps[0].html.count('data-action="run"') == 2
    assert "{{" not in steps[0].html
    assert "<code>ls -R /srv/project</code>" in steps[0].html
    assert lab.intro_html.startswith("<p>In this scenario")
    assert "stray big files" in lab.finish_html


@pytest.mark.django_db
def test_a_katacoda_scenario_maps_its_older_fields_and_reports_the_unsupported_ones() -> None:
    source = killercoda.read_scenario(FIXTURES / "log-detective")
    assert (source.duration, source.difficulty, source.image) == (10, "beginner", "debian")
    first = source.steps[0]
    assert first.scripts["setup"].index("access.log") < first.scripts["setup"].index("rm -f /root/lines.txt")
    assert first.foreground == "cd /var/log/web"
    unsupported = sorted(p.message.split("'")[1] for p in source.problems if "not supported" in p.message)
    assert unsupported == ["details.assets", "details.steps[1].answer", "environment", "pathwayTitle"]
    assert [p for p in source.problems if not p.warning] == [], "every problem is only a warning"
    assert [p for p in source.problems if p.file.name != "index.json" or not p.line] == [], "each on an index.json line"
    lab = killercoda.import_scenario(FIXTURES / "log-detective", slug="logs", language="en")
    assert Lab.objects.get(slug="logs").steps.count() == 3
    assert lab.tags == ["killercoda"]


def test_exec_markers_become_run_blocks_and_copy_markers_copy_blocks() -> None:
    converted = killercoda.convert_markdown(
        "```\nls -l\n```{{exec}}\n\n```bash\nuname -a\n```{{copy}}\n\n"
        "Run `whoami`{{execute T2}} now.\n\n`id`{{exec}}\n\n- `pwd`{{exec interrupt}}\n"
    )
    assert converted.startswith(
        "```sh run\nls -l\n```\n\n```bash\nuname -a\n```\n\nRun `whoami` now.\n\n```sh run\nwhoami\n```"
    )
    assert "\n```sh run\nid\n```\n" in converted
    assert "Run `id`" not in converted
    assert "\n  ```sh run\n  pwd\n  ```\n" in converted
    assert "{{" not in converted


@pytest.mark.parametrize(
    "imageid, image, warned",
    [
        ("ubuntu", "debian", False),
        ("ubuntu:2004", "debian", False),
        ("debian-12", "debian", False),
        ("kubernetes-kubeadm-2nodes", "debian", True),
        ("alpine", "busybox", False),
        ("docker", "docker", False),
        ("docker-swarm", "docker", False),
        ("centos-7", "busybox", True),
    ],
)
def test_backend_images_map_to_ours_with_a_warning_when_the_match_is_poor(
    imageid: str, image: str, warned: bool
) -> None:
    mapped, warning = killercoda.map_image(imageid)
    assert mapped == image
    assert bool(warning) == warned


def scenario(tmp_path: Path, edit: dict) -> Path:
    folder = tmp_path / "scenario"
    shutil.copytree(FIXTURES / "files-and-permissions", folder)
    index = json.loads((folder / "index.json").read_text())
    index.update(edit)
    (folder / "index.json").write_text(json.dumps(index, indent=2))
    return folder


def test_an_unmappable_image_uses_busybox_with_a_warning_naming_the_line(tmp_path: Path) -> None:
    source = killercoda.read_scenario(scenario(tmp_path, {"backend": {"imageid": "windows-server"}}))
    (warning,) = [p for p in source.problems if "windows-server" in p.message]
    assert source.image == "busybox"
    assert warning.warning
    assert "using busybox" in warning.message
    assert warning.line


def test_a_missing_step_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {})
    (folder / "step2" / "verify.sh").unlink()
    with pytest.raises(LabError) as raised:
        killercoda.read_scenario(folder)
    (error,) = raised.value.errors
    assert "details.steps[1].verify names step2/verify.sh, which does not exist" in error.message
    lines = (folder / "index.json").read_text().splitlines()
    assert error.file == folder / "index.json"
    assert lines[error.line - 1].strip() == '"verify": "step2/verify.sh",'


def test_a_path_outside_the_scenario_is_refused(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {})
    index = json.loads((folder / "index.json").read_text())
    index["details"]["steps"][0]["verify"] = "../../etc/passwd"
    (folder / "index.json").write_text(json.dumps(index))
    with pytest.raises(LabError, match="must name a file inside the scenario folder"):
        killercoda.read_scenario(folder)


def test_a_json_syntax_error_names_its_line(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {})
    (folder / "index.json").write_text('{\n  "title": "x",\n  "details": {,}\n}\n')
    with pytest.raises(LabError) as raised:
        killercoda.read_scenario(folder)
    assert raised.value.errors[0].line == 3
    assert "JSON syntax error" in raised.value.errors[0].message


def test_a_bash_script_is_run_by_bash(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {})
    (folder / "step1" / "verify.sh").write_text("#!/bin/bash\n[[ -d /srv/project ]]\n")
    check = killercoda.read_scenario(folder).steps[0].scripts["check"]
    assert check == (
        "exec bash -s <<'__PLAYGROUND_SCRIPT__'\n#!/bin/bash\n[[ -d /srv/project ]]\n__PLAYGROUND_SCRIPT__\n"
    )


@pytest.mark.django_db
def test_labs_load_imports_a_killercoda_folder_and_prints_its_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("labs", "import-killercoda", str(FIXTURES / "log-detective"), "--slug", "logs", "--image", "busybox")
    out = capsys.readouterr().out
    assert "warning: the field 'pathwayTitle' is not supported" in out
    assert "imported logs (en): Log detective: grep, sort and uniq, 3 step(s), image busybox" in out
    call_command("labs", "load", str(FIXTURES))
    assert set(Lab.objects.values_list("slug", flat=True)) == {"logs", "files-and-permissions", "log-detective"}
