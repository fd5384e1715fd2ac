"""`machci init`: a working setup from a bare repository, idempotent, never clobbering edits."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from machci.commands.init import PRE_COMMIT
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, run

README = Path(__file__).resolve().parents[1] / "README.md"


def machci(root: Path, *args: str) -> Run:
    with contextlib.chdir(root):
        return run(*args)


def test_init_in_an_empty_repository_gives_a_working_setup(index: Index, tmp_path: Path) -> None:
    index.publish("app", "1.0")
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    (tmp_path / "requirements.txt").write_text("app\n")
    result = machci(tmp_path, "init", "--index-url", index.url, "--snapshot", SNAPSHOT)
    assert result.code == 0, result.err
    assert result.out.splitlines()[:3] == [
        " created machci.yaml",
        " created .pre-commit-config.yaml",
        " created .github/workflows/machci.yml",
    ]
    assert machci(tmp_path, "sync", "--cache-dir", ".cache").code == 1
    assert machci(tmp_path, "check").code == 0
    hooks = YAML(typ="safe").load((tmp_path / ".pre-commit-config.yaml").read_text())
    assert [h["id"] for h in hooks["repos"][0]["hooks"]] == ["machci-sync", "machci-check"]
    assert hooks["ci"]["skip"] == ["machci-sync"]
    validate = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    workflow = YAML(typ="safe").load((tmp_path / ".github/workflows/machci.yml").read_text())
    assert set(workflow["jobs"]) == {"check", "build", "macos", "manifest", "bump"}
    assert workflow["jobs"]["bump"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
    }


def test_init_is_idempotent_and_keeps_edits(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    (tmp_path / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        "- repo: https://github.com/psf/black\n"
        "  rev: 24.1.0  # pinned on purpose\n"
        "  hooks:\n"
        "  - id: black\n"
        "- repo: https://github.com/machci/action\n"
        "  rev: v0.0.9\n"
        "  hooks:\n"
        "  - id: machci-sync\n"
    )
    assert machci(tmp_path, "init").code == 0
    config = (tmp_path / "machci.yaml").read_text()
    assert "requirements: [pyproject.toml]" in config
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == (
        "repos:\n"
        "- repo: https://github.com/psf/black\n"
        "  rev: 24.1.0  # pinned on purpose\n"
        "  hooks:\n"
        "  - id: black\n"
        "- repo: https://github.com/machci/action\n"
        "  rev: v0.0.9\n"
        "  hooks:\n"
        "  - id: machci-sync\n"
        "  - id: machci-check\n"
        "ci:\n"
        "  skip:\n"
        "  - machci-sync\n"
    )
    workflow = tmp_path / ".github" / "workflows" / "machci.yml"
    workflow.write_text(workflow.read_text() + "# my edit\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = machci(tmp_path, "init")
    assert again.code == 0
    assert [line.split()[0] for line in again.out.splitlines()[:3]] == ["kept"] * 3
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "repo",
    [
        "https://github.com/someone/machci-action",  # a fork
        "https://git.example.com/mirrors/machci.git",  # a mirror
        "../machci",  # a local clone
    ],
)
def test_init_recognises_machci_hooks_under_another_url(tmp_path: Path, repo: str) -> None:
    (tmp_path / "requirements.txt").write_text("app\n")
    original = (
        "repos:\n"
        f"- repo: {repo}\n"
        "  rev: v0.0.9\n"
        "  hooks:\n"
        "  - id: machci-check\n"
        "    args: [--config, sub/machci.yaml]\n"
    )
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(original)
    assert machci(tmp_path, "init", "--snapshot", SNAPSHOT).code == 0
    # The block is completed where it is, never doubled under machci's own URL.
    assert config.read_text() == (original + "  - id: machci-sync\nci:\n  skip:\n  - machci-sync\n")
    before = config.read_bytes()
    again = machci(tmp_path, "init", "--snapshot", SNAPSHOT)
    assert again.code == 0
    assert f"    kept {PRE_COMMIT}" in again.out.splitlines()
    assert config.read_bytes() == before


def test_init_leaves_machci_hooks_defined_locally(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("app\n")
    original = (
        "repos:\n"
        "- repo: local\n"
        "  hooks:\n"
        "  - id: machci-sync\n"
        "    name: machci sync\n"
        "    entry: machci sync\n"
        "    language: system\n"
        "    pass_filenames: false\n"
        "ci:\n"
        "  skip: [machci-sync]\n"
    )
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(original)
    result = machci(tmp_path, "init", "--snapshot", SNAPSHOT)
    assert result.code == 0
    assert f"    kept {PRE_COMMIT}" in result.out.splitlines()
    assert config.read_text() == original


def test_init_without_requirements(tmp_path: Path) -> None:
    result = machci(tmp_path, "init")
    assert result.code == 2
    assert "no requirements found" in result.err
    assert list(tmp_path.iterdir()) == []


def test_init_reports_a_broken_pre_commit_config(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("app\n")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: [\n")
    result = machci(tmp_path, "init")
    assert result.code == 2
    assert ".pre-commit-config.yaml:2: invalid YAML" in result.err
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == "repos: [\n"


def test_the_readme_shows_the_pre_commit_config_init_writes(tmp_path: Path) -> None:
    section = README.read_text(encoding="utf-8").split("\n## pre-commit\n", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    (tmp_path / "requirements.txt").write_text("app\n")
    assert machci(tmp_path, "init", "--snapshot", SNAPSHOT).code == 0
    written = (tmp_path / ".pre-commit-config.yaml").read_text()
    assert YAML(typ="safe").load(block.group(1)) == YAML(typ="safe").load(written)
