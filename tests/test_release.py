"""One release scheme: every tag, reference and URL that names a release follows __version__.

machci.release derives them; this checks that the package metadata, `machci init`'s outputs,
the workflow template, action.yml and the README all say the same.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from machci import __version__, release
from tests.helpers import SNAPSHOT, run

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "action" / "templates" / "machci.yml"
README = ROOT / "README.md"


def test_the_tags_come_from_the_version() -> None:
    assert release.tag() == f"v{__version__}"
    assert release.action_reference() == f"machci/action@v{__version__}"
    assert release.schema_url() == (
        f"https://raw.githubusercontent.com/machci/action/v{__version__}/"
        "machci/config/machci.schema.json"
    )
    assert release.major_tag() == f"v{__version__.split('.')[0]}"


@pytest.mark.parametrize(
    ("version", "major"), [("0.1.0", "v0"), ("1.4.2", "v1"), ("2.0.0rc1", "v2"), ("10.0", "v10")]
)
def test_the_moving_tag_is_the_major_version(version: str, major: str) -> None:
    assert release.major_tag(version) == major
    assert release.tag(version) == f"v{version}"


def test_the_package_version_is_machci_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "machci.__version__"}


def test_the_schema_url_names_a_file_of_the_repository() -> None:
    assert (ROOT / release.SCHEMA_PATH).is_file()


def test_the_workflow_template_uses_the_release_tag() -> None:
    uses = re.findall(r"uses:\s*(machci/action\S*)", TEMPLATE.read_text(encoding="utf-8"))
    assert uses
    assert set(uses) == {release.action_reference()}


def test_action_yml_installs_the_machci_of_its_own_tag() -> None:
    action = YAML(typ="safe").load((ROOT / "action.yml").read_text(encoding="utf-8"))
    install = action["runs"]["steps"][0]["run"]
    assert '"$GITHUB_ACTION_PATH[action]"' in install  # this checkout, not a version from PyPI


def test_init_writes_the_release_tag_and_schema(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("app\n")
    with contextlib.chdir(tmp_path):
        assert run("init", "--snapshot", SNAPSHOT).code == 0
    hooks = YAML(typ="safe").load((tmp_path / ".pre-commit-config.yaml").read_text())
    assert [(r["repo"], r["rev"]) for r in hooks["repos"]] == [
        (release.REPOSITORY_URL, release.tag())
    ]
    first = (tmp_path / "machci.yaml").read_text().splitlines()[0]
    assert first == f"# yaml-language-server: $schema={release.schema_url()}"
    workflow = (tmp_path / ".github" / "workflows" / "machci.yml").read_text()
    assert workflow == TEMPLATE.read_text(encoding="utf-8")


def test_the_readme_names_the_release_tags() -> None:
    text = README.read_text(encoding="utf-8")
    uses = re.findall(r"machci/action@([\w.-]+)", text)
    assert release.tag() in uses  # the immutable tag is what the README shows first
    assert uses[0] == release.tag()
    assert set(uses) <= {release.tag(), release.major_tag()}
    assert release.action_reference().replace(release.tag(), release.major_tag()) in text
    hooks = re.findall(rf"repo: {re.escape(release.REPOSITORY_URL)}\n\s*rev: (\S+)", text)
    assert hooks
    assert set(hooks) == {release.tag()}
    schemas = re.findall(r"https://raw\.githubusercontent\.com/machci/action/\S+\.json", text)
    assert schemas
    assert set(schemas) == {release.schema_url()}
    assert set(re.findall(r"machci-version: (\S+)", text)) == {__version__}
