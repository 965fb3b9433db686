"""Lab folders: a valid one loads one Lab per language; every invalid one is refused with
problems that name the file, the line when it is knowable, and what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from playground import config
from playground.labs import loader
from playground.labs.loader import LabError, Problem
from playground.labs.models import Lab

LAB_TOML = """\
languages = ["en", "ko"]
image = "busybox"
duration = 20
difficulty = "beginner"
tags = ["linux"]

[title]
en = "A lab"
ko = "실습"

[summary]
en = "What it teaches."
ko = "배우는 것."

[[steps]]
name = "01-first"

[[steps]]
name = "02-second"
foreground = "cd /root"
"""


def make_lab(root: Path, toml: str = LAB_TOML, name: str = "a-lab") -> Path:
    """A valid two-language, two-step lab folder (edit it afterwards to break it)."""
    folder = root / name
    (folder / "steps").mkdir(parents=True)
    (folder / "lab.toml").write_text(toml)
    for step in ("01-first", "02-second"):
        for language, word in (("en", "Step"), ("ko", "단계")):
            (folder / "steps" / f"{step}.{language}.md").write_text(f"# {word} {step}\n\nRun:\n\n```sh run\nls\n```\n")
        (folder / "steps" / f"{step}.check.sh").write_text("test -f /root/done\n")
        (folder / "steps" / f"{step}.solve.sh").write_text("touch /root/done\n")
    (folder / "intro.en.md").write_text("Welcome.\n")
    (folder / "intro.ko.md").write_text("환영합니다.\n")
    return folder


def problems_of(folder: Path) -> list[Problem]:
    with pytest.raises(LabError) as raised:
        loader.read_folder(folder)
    return raised.value.problems


def only_error(folder: Path) -> Problem:
    errors = [p for p in problems_of(folder) if not p.warning]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.django_db
def test_a_valid_folder_loads_one_lab_per_language_with_its_steps(tmp_path: Path) -> None:
    lab = loader.load_folder(make_lab(tmp_path))
    assert (lab.slug, lab.language, lab.title, lab.image) == ("a-lab", "en", "A lab", "busybox")
    assert lab.duration_minutes == 20
    korean = Lab.objects.get(slug="a-lab", language="ko")
    assert korean.title == "실습"
    assert korean.intro_html == "<p>환영합니다.</p>\n"
    steps = list(korean.steps.all())
    assert [(s.number, s.title) for s in steps] == [(1, "단계 01-first"), (2, "단계 02-second")]
    assert steps[1].foreground == "cd /root"
    assert steps[0].check_script == "test -f /root/done\n"
    assert 'data-action="run"' in steps[0].html
    assert "<h1>" not in steps[0].html
    assert len(lab.digest) == 64
    assert lab.origin == Lab.Origin.PLAYGROUND


@pytest.mark.django_db
def test_loading_again_updates_the_same_rows_and_drops_a_removed_language(tmp_path: Path) -> None:
    folder = make_lab(tmp_path)
    first = loader.load_folder(folder)
    (folder / "lab.toml").write_text(
        LAB_TOML.replace('["en", "ko"]', '["en"]')
        .replace('ko = "실습"\n', "")
        .replace('ko = "배우는 것."\n', "")
        .replace('en = "A lab"', 'en = "A better lab"')
    )
    for path in folder.rglob("*.ko.md"):
        path.unlink()
    again = loader.load_folder(folder)
    assert again.pk == first.pk
    assert again.title == "A better lab"
    assert list(Lab.objects.values_list("language", flat=True)) == ["en"]


def test_a_missing_metadata_field_names_the_file_and_what_to_add(tmp_path: Path) -> None:
    folder = make_lab(tmp_path, LAB_TOML.replace('image = "busybox"\n', ""))
    error = only_error(folder)
    assert error.file == folder / "lab.toml"
    assert "'image' is missing" in error.message
    assert 'image = "busybox"' in error.fix


def test_a_bad_difficulty_names_its_line_and_the_allowed_values(tmp_path: Path) -> None:
    error = only_error(make_lab(tmp_path, LAB_TOML.replace('"beginner"', '"beginer"')))
    assert error.line == 4
    assert "beginner, intermediate, advanced" in error.message
    assert "Did you mean 'beginner'?" in error.fix
    assert str(error).startswith(f"{tmp_path / 'a-lab' / 'lab.toml'}:4: error: 'difficulty' must be one of")


def test_a_language_tag_longer_than_the_database_keeps_is_refused_naming_its_line(tmp_path: Path) -> None:
    # 19 characters, over Lab.language's 16: SQLite would store it, PostgreSQL refuses the row.
    problems = problems_of(make_lab(tmp_path, LAB_TOML.replace('"ko"]', '"en-Latn-GB-oxendict"]')))
    error = next(p for p in problems if "'languages'" in p.message)
    assert error.line == 1 and "bad or repeated tag: ['en-Latn-GB-oxendict']" in error.message
    assert "at most 16 characters" in error.fix


def test_a_toml_syntax_error_gives_its_line(tmp_path: Path) -> None:
    error = only_error(make_lab(tmp_path, LAB_TOML.replace("duration = 20", "duration = twenty")))
    assert error.line == 3
    assert "TOML syntax error" in error.message


def test_a_missing_step_file_names_the_file_to_create(tmp_path: Path) -> None:
    folder = make_lab(tmp_path)
    (folder / "steps" / "02-second.en.md").unlink()
    error = only_error(folder)
    assert error.file == folder / "steps" / "02-second.en.md"
    assert "step '02-second' has no en text" in error.message
    assert "Create steps/02-second.en.md" in error.fix


def test_a_missing_language_page_names_the_language(tmp_path: Path) -> None:
    folder = make_lab(tmp_path)
    (folder / "intro.ko.md").unlink()
    error = only_error(folder)
    assert error.file == folder / "intro.ko.md"
    assert "in en but not in ko" in error.message


def test_a_title_missing_a_language_names_the_table_line(tmp_path: Path) -> None:
    error = only_error(make_lab(tmp_path, LAB_TOML.replace('ko = "실습"\n', "")))
    assert error.line == 7
    assert "'title' has no text for language 'ko'" in error.message


def test_a_step_without_a_title_line_names_the_first_line(tmp_path: Path) -> None:
    folder = make_lab(tmp_path)
    (folder / "steps" / "01-first.ko.md").write_text("\nNo title here.\n")
    error = only_error(folder)
    assert (error.file.name, error.line) == ("01-first.ko.md", 2)
    assert "'# Title'" in error.message


def test_an_unknown_key_is_an_error_that_suggests_the_known_one(tmp_path: Path) -> None:
    toml = LAB_TOML.replace('name = "02-second"', 'name = "02-second"\nforground = "ls"')
    error = only_error(make_lab(tmp_path, toml))
    assert error.line == 20
    assert "unknown key 'forground' in [[steps]]" in error.message
    assert "Did you mean 'foreground'?" in error.fix


def test_a_shell_syntax_error_in_a_check_names_its_line(tmp_path: Path) -> None:
    folder = make_lab(tmp_path)
    (folder / "steps" / "01-first.check.sh").write_text("if true\nthen\n  echo ok\nfi fi\n")
    error = only_error(folder)
    assert (error.file.name, error.line) == ("01-first.check.sh", 4)
    assert "shell syntax error" in error.message


def test_every_error_of_a_folder_is_reported_at_once(tmp_path: Path) -> None:
    folder = make_lab(tmp_path, LAB_TOML.replace("duration = 20", "duration = 0").replace('"beginner"', '"easy"'))
    (folder / "steps" / "01-first.ko.md").unlink()
    assert len([p for p in problems_of(folder) if not p.warning]) == 3


def test_an_unknown_image_is_a_warning_and_the_lab_still_reads(tmp_path: Path) -> None:
    source = loader.read_folder(make_lab(tmp_path, LAB_TOML.replace('"busybox"', '"busybx"')))
    (warning,) = source.problems
    assert warning.warning
    assert warning.line == 2
    assert "Did you mean 'busybox'?" in warning.fix


def test_a_step_without_a_check_and_a_misnamed_script_are_warnings(tmp_path: Path) -> None:
    folder = make_lab(tmp_path)
    (folder / "steps" / "02-second.check.sh").rename(folder / "steps" / "02-secnd.check.sh")
    warnings = loader.read_folder(folder).problems
    assert [p.file.name for p in warnings] == ["02-second.check.sh", "02-secnd.check.sh"]
    assert "has no check" in warnings[0].message
    assert "Did you mean '02-second.check.sh'?" in warnings[1].fix


def test_a_folder_without_lab_toml_says_what_a_lab_folder_needs(tmp_path: Path) -> None:
    error = only_error(tmp_path)
    assert error.file == tmp_path / "lab.toml"
    assert "index.json" in error.fix


@pytest.mark.django_db
def test_load_all_loads_nothing_when_one_folder_has_an_error(tmp_path: Path) -> None:
    make_lab(tmp_path, name="good")
    make_lab(tmp_path, LAB_TOML.replace("duration = 20", "duration = -1"), name="bad")
    with pytest.raises(LabError) as raised:
        loader.load_all(tmp_path)
    assert [p.file.parent.name for p in raised.value.errors] == ["bad"]
    assert not Lab.objects.exists()


@pytest.mark.django_db
def test_two_folders_with_one_slug_are_refused(tmp_path: Path) -> None:
    make_lab(tmp_path, LAB_TOML.replace("languages", 'slug = "same"\nlanguages'), name="one")
    make_lab(tmp_path, LAB_TOML.replace("languages", 'slug = "same"\nlanguages'), name="two")
    with pytest.raises(LabError, match="the slug 'same' is used by another lab folder"):
        loader.load_all(tmp_path)


def test_the_shipped_lab_validates_in_both_languages_with_a_check_and_solve_on_every_step() -> None:
    source = loader.read_folder(config.REPO_DIR / "labs" / "containers-from-the-inside")
    assert source.problems == []
    assert source.languages == ["en", "ko"]
    assert source.image == "busybox"
    assert len(source.steps) >= 5
    for step in source.steps:
        assert step.scripts["check"].strip(), step.name
        assert step.scripts["solve"].strip(), step.name
        assert set(step.titles) == set(step.markdown) == {"en", "ko"}, step.name
        for language in ("en", "ko"):
            assert "```sh run" in step.markdown[language], (step.name, language)
    assert set(source.intro) == set(source.finish) == {"en", "ko"}


@pytest.mark.django_db
def test_labs_load_reports_what_it_loaded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_lab(tmp_path)
    call_command("labs", "load", str(tmp_path))
    out = capsys.readouterr().out
    assert "loaded a-lab (en): A lab, 2 step(s)" in out
    assert "loaded a-lab (ko): 실습, 2 step(s)" in out


@pytest.mark.django_db
def test_labs_load_of_a_bad_folder_raises_and_loads_nothing(tmp_path: Path) -> None:
    make_lab(tmp_path, LAB_TOML.replace('"beginner"', '"hard"'))
    with pytest.raises(CommandError, match="1 error"):
        call_command("labs", "load", str(tmp_path))
    assert not Lab.objects.exists()


def test_labs_validate_exits_1_naming_file_and_line_and_0_with_ok(tmp_path: Path) -> None:
    folder = make_lab(tmp_path)
    command = [sys.executable, "manage.py", "labs", "validate", str(folder)]
    good = subprocess.run(command, cwd=config.REPO_DIR, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "ok: 1 lab(s)", good.stderr
    (folder / "lab.toml").write_text(LAB_TOML.replace("duration = 20", "duration = 20.5"))
    bad = subprocess.run(command, cwd=config.REPO_DIR, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert f"{folder / 'lab.toml'}:3: error: 'duration' must be whole minutes" in bad.stderr


@pytest.mark.django_db
def test_a_lab_may_declare_its_nodes_node1_first_and_loads_them(tmp_path: Path) -> None:
    toml = LAB_TOML.replace('tags = ["linux"]\n', 'tags = ["linux"]\nnodes = ["busybox", "docker", "docker"]\n')
    labs = loader.load_labs(make_lab(tmp_path, toml))
    assert [lab.nodes for lab in labs] == [["busybox", "docker", "docker"]] * 2
    assert loader.load_folder(make_lab(tmp_path, name="one-node")).nodes == []  # no key: one node


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ("[]", "'nodes' must be a list of 1 to 100 image names, one per node"),
        ('"docker"', "'nodes' must be a list of 1 to 100 image names, one per node"),
        (
            '["docker", "docker"]',
            "the first of 'nodes' ('docker') is node1, whose image is the lab's image ('busybox')",
        ),
    ],
)
def test_bad_nodes_name_their_line_and_what_to_write(tmp_path: Path, nodes: str, message: str) -> None:
    error = only_error(
        make_lab(tmp_path, LAB_TOML.replace('tags = ["linux"]\n', f"tags = ['linux']\nnodes = {nodes}\n"))
    )
    assert error.line == 6
    assert error.message == message


def test_an_unknown_image_among_the_nodes_is_a_warning(tmp_path: Path) -> None:
    toml = LAB_TOML.replace('tags = ["linux"]\n', 'tags = ["linux"]\nnodes = ["busybox", "dockr"]\n')
    (warning,) = loader.read_folder(make_lab(tmp_path, toml)).problems
    assert warning.warning and warning.line == 6
    assert "the image 'dockr' in 'nodes'" in warning.message and "Did you mean 'docker'?" in warning.fix
