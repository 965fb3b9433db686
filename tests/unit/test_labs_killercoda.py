"""Killercoda/Katacoda scenarios import as labs: steps with their text, verify (check) and
background (setup) scripts, the backend image mapped to ours, unknown fields as warnings."""

from __future__ import annotations

import json
import shutil
import subprocess
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
    assert unsupported == ["details.steps[1].answer", "environment", "pathwayTitle"]
    assert first.scripts["setup"].startswith(
        "mkdir -p \"$(dirname '/root/README.txt')\"\nbase64 -d > '/root/README.txt'"
    )
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
    "imageid, uses_docker, image, warned",
    [
        ("ubuntu", False, "debian", False),
        ("ubuntu", True, "docker", False),
        ("ubuntu:2004", True, "docker", False),
        ("ubuntu-4GB", False, "debian", False),
        ("debian-12", True, "debian", False),
        ("bash", True, "debian", False),
        ("kubernetes-kubeadm-2nodes", False, "debian", True),
        ("kubernetes-kubeadm-1node-4GB", True, "docker", True),
        ("k3s", True, "docker", True),
        ("alpine", True, "busybox", False),
        ("docker", False, "docker", False),
        ("docker-direct", False, "docker", False),
        ("docker-swarm", False, "docker", False),
        ("centos-7", True, "busybox", True),
    ],
)
def test_backend_images_map_to_ours_with_docker_when_the_scenario_uses_it_and_a_warning_when_poor(
    imageid: str, uses_docker: bool, image: str, warned: bool
) -> None:
    mapped, warning = killercoda.map_image(imageid, uses_docker)
    assert mapped == image
    assert bool(warning) == warned


def test_an_ubuntu_scenario_that_runs_docker_gets_the_docker_image(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {})
    assert killercoda.read_scenario(folder).image == "debian"
    (folder / "intro.md").write_text("You will use `docker ps`{{exec}} later.\n")
    assert killercoda.read_scenario(folder).image == "docker"
    shutil.copy(FIXTURES / "files-and-permissions" / "intro.md", folder / "intro.md")
    (folder / "step3" / "text.md").write_text("Start a web server:\n\n```\ndocker run -d httpd\n```{{exec}}\n")
    assert killercoda.read_scenario(folder).image == "docker"


@pytest.mark.parametrize(
    "word, difficulty",
    [("Easy", "beginner"), ("medium", "intermediate"), ("Hard", "advanced"), ("Advanced", "advanced")],
)
def test_katacoda_difficulty_names_map_to_ours(tmp_path: Path, word: str, difficulty: str) -> None:
    source = killercoda.read_scenario(scenario(tmp_path, {"difficulty": word}))
    assert source.difficulty == difficulty
    assert not [p for p in source.problems if "difficulty" in p.message]


@pytest.mark.django_db
def test_an_intro_only_scenario_imports_as_one_reading_step() -> None:
    lab = killercoda.import_scenario(FIXTURES / "what-is-a-container")
    (step,) = lab.steps.all()
    assert (step.title, step.check_script, lab.difficulty, lab.image) == (
        "What is a container?",
        "",
        "beginner",
        "debian",
    )
    assert "its own process numbers" in step.html
    assert 'data-action="run"' in step.html
    assert lab.intro_html == ""
    assert "next scenarios" in lab.finish_html


def test_a_language_that_is_not_a_short_tag_is_an_error() -> None:
    with pytest.raises(LabError, match="the language 'en-Latn-GB-oxendict' is not valid"):
        killercoda.read_scenario(FIXTURES / "files-and-permissions", language="en-Latn-GB-oxendict")


def test_a_scenario_with_neither_steps_nor_intro_is_an_error(tmp_path: Path) -> None:
    folder = scenario(tmp_path, {"details": {"finish": {"text": "finish.md"}}})
    with pytest.raises(LabError, match="the scenario has no steps"):
        killercoda.read_scenario(folder)


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
    assert check == ("bash -s <<'__PLAYGROUND_SCRIPT__'\n#!/bin/bash\n[[ -d /srv/project ]]\n__PLAYGROUND_SCRIPT__\n")


@pytest.mark.django_db
def test_labs_load_imports_a_killercoda_folder_and_prints_its_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("labs", "import-killercoda", str(FIXTURES / "log-detective"), "--slug", "logs", "--image", "busybox")
    out = capsys.readouterr().out
    assert "warning: the field 'pathwayTitle' is not supported" in out
    assert "imported logs (en): Log detective: grep, sort and uniq, 3 step(s), image busybox" in out
    call_command("labs", "load", str(FIXTURES))
    assert set(Lab.objects.values_list("slug", flat=True)) == {
        "logs",
        "files-and-permissions",
        "log-detective",
        "greeter-from-assets",
        "what-is-a-container",
        "docker-web-from-assets",
    }


GREETER = FIXTURES / "greeter-from-assets"


def test_assets_are_written_by_step_one_setup_to_their_targets_with_their_modes(tmp_path: Path) -> None:
    folder = tmp_path / "greeter"
    shutil.copytree(GREETER, folder)
    index = json.loads((folder / "index.json").read_text())
    index["details"]["assets"]["host01"][0]["target"] = str(tmp_path / "bin")
    index["details"]["assets"]["host01"][1]["target"] = str(tmp_path / "home")
    (folder / "index.json").write_text(json.dumps(index))
    setup = killercoda.read_scenario(folder).steps[0].scripts["setup"]
    assets = setup[: setup.index("#!/bin/sh")]
    subprocess.run(["sh", "-ec", assets], check=True)
    greeter = tmp_path / "bin" / "greet.sh"
    assert greeter.read_bytes() == (GREETER / "assets" / "greet.sh").read_bytes()
    assert greeter.stat().st_mode & 0o111
    assert (tmp_path / "home" / "conf" / "greeter.ini").read_text() == "# The greeter's settings\nname = world\n"
    assert setup.index("base64 -d") < setup.index("touch /tmp/.setup-finished"), "assets before the background"


def test_assets_over_the_bound_are_an_error_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "greeter"
    shutil.copytree(GREETER, folder)
    (folder / "assets" / "conf" / "big.bin").write_bytes(b"x" * (killercoda.MAX_ASSETS + 1))
    with pytest.raises(LabError, match=r"the assets add up to \d+ bytes, over the 65536 bytes"):
        killercoda.read_scenario(folder)


def test_an_asset_naming_no_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "greeter"
    shutil.copytree(GREETER, folder)
    (folder / "assets" / "greet.sh").unlink()
    with pytest.raises(LabError, match=r"details.assets.host01\[0\] names no file"):
        killercoda.read_scenario(folder)


@pytest.mark.django_db
def test_a_details_solution_is_collapsed_and_its_br_a_line_break() -> None:
    lab = killercoda.import_scenario(GREETER)
    first, second = lab.steps.all()
    assert "<details>\n<summary>Did it not work?</summary>" in first.html
    assert "terminal.<br>\nThen" in first.html
    assert "&lt;" not in first.html
    assert "<details>\n<summary>Solution</summary>\n<p>Change <code>name</code>" in second.html
    assert "open" not in second.html
    assert (lab.difficulty, lab.duration_minutes) == ("intermediate", 5)


def test_a_foreground_wait_for_a_file_the_background_makes_is_typed_as_written() -> None:
    source = killercoda.read_scenario(GREETER)
    assert source.steps[0].foreground == (GREETER / "foreground.sh").read_text().strip()
    assert not [p for p in source.problems if "foreground" in p.message]


@pytest.mark.parametrize(
    "loop",
    [
        "while [ ! -f /tmp/.never ]; do sleep 1; done",
        'until [ -f "/tmp/.never" ]\ndo\n  sleep 1\ndone',
        "while ! test -e /tmp/.never; do sleep 1; done",
    ],
)
def test_a_foreground_wait_for_a_file_nothing_makes_is_dropped_with_a_warning(tmp_path: Path, loop: str) -> None:
    folder = tmp_path / "greeter"
    shutil.copytree(GREETER, folder)
    (folder / "foreground.sh").write_text(f'echo "Waiting..."\n{loop}\necho "Ready."\n')
    source = killercoda.read_scenario(folder)
    assert source.steps[0].foreground == 'echo "Waiting..."\necho "Ready."'
    (warning,) = [p for p in source.problems if "foreground" in p.message]
    assert warning.warning and warning.line
    assert "waits for /tmp/.never, which no background script or asset makes" in warning.message
