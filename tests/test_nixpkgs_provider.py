"""The nixpkgs provider in resolution: versions from the nixpkgs index, dependencies from the
data source's metadata of that version, and `why` naming the attribute."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, run

INDEX = {
    "django": [
        {"attr": "django", "version": "4.2.16"},
        {"attr": "django_5", "version": "5.1.4"},
    ],
    "lonely": [{"attr": "lonely", "version": "9.0"}],
}


def project(index: Index, path: Path, requirements: str, providers: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "requirements.txt").write_text(requirements)
    (path / "nixpkgs-python.json").write_text(json.dumps(INDEX))
    (path / "machci.yaml").write_text(
        "requirements: [requirements.txt]\nsystems: [x86_64-linux]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        f"providers: {providers}\nnixpkgs: {{index: nixpkgs-python.json}}\n"
    )
    return path


def in_project(path: Path, *argv: str) -> Run:
    with contextlib.chdir(path):
        return run(*argv, "--cache-dir", ".cache")


def publish_django(index: Index) -> None:
    index.publish("asgiref", "3.8")
    for version in ("4.2.16", "5.1.4"):
        index.publish("django", version, requires_dist=("asgiref>=3",))


def test_the_newest_fitting_attribute_wins_and_why_says_which(index: Index, tmp_path: Path) -> None:
    publish_django(index)
    newest = project(index, tmp_path / "a", "django\n", "{_default: 'nixpkgs,wheel'}")
    result = in_project(newest, "lock", "--json")
    django = result.packages()["django"]
    assert (django["provider"], django["attr"], django["version"]) == (
        "nixpkgs",
        "django_5",
        "5.1.4",
    )
    assert result.packages()["asgiref"]["provider"] == "wheel"  # nixpkgs has no asgiref
    older = project(index, tmp_path / "b", "django<5\n", "{_default: 'nixpkgs,wheel'}")
    assert in_project(older, "lock", "--json").packages()["django"]["attr"] == "django"
    why = in_project(older, "why", "django")
    assert why.code == 0, why.err
    assert (
        "django 4.2.16 comes from nixpkgs' attribute django; nixpkgs also offers django_5 5.1.4"
        " (the newest version the requirements allow is taken, ties by attribute name)"
    ) in why.out


def test_a_nixpkgs_version_the_index_does_not_have_cannot_be_resolved(
    index: Index, tmp_path: Path
) -> None:
    index.publish("lonely", "1.0")
    path = project(index, tmp_path, "lonely>=9\n", "{lonely: nixpkgs}")
    result = in_project(path, "lock")
    assert result.code == 1
    assert (
        "lonely: nixpkgs' lonely 9.0: the index has no file of that version to read its"
        " dependencies from"
    ) in result.err


def test_a_hash_pinned_requirement_never_comes_from_nixpkgs(index: Index, tmp_path: Path) -> None:
    publish_django(index)
    sha = index.sha256("django-5.1.4-py3-none-any.whl")
    path = project(
        index, tmp_path, f"django==5.1.4 --hash=sha256:{sha}\n", "{_default: 'nixpkgs,wheel'}"
    )
    assert in_project(path, "lock", "--json").packages()["django"]["provider"] == "wheel"


def test_naming_nixpkgs_without_an_index_warns(index: Index, tmp_path: Path) -> None:
    publish_django(index)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "requirements.txt").write_text("django\n")
    (tmp_path / "machci.yaml").write_text(
        f"requirements: [requirements.txt]\nsystems: [x86_64-linux]\ndata: {{index: {index.url}}}\n"
        "providers: {_default: 'nixpkgs,wheel'}\n"
    )
    result = in_project(tmp_path, "lock", "--json")
    assert result.packages()["django"]["provider"] == "wheel"
    assert "machci: warning: providers name nixpkgs, but machci.yaml has no" in result.err
