"""rPackages in machci.yaml: validated names, and rpy2 resolved as a root that says where it
comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from machci.config.load import load_config
from machci.errors import InputError
from machci.nix.settings import settings_digest
from tests.fixtures.index import Index
from tests.helpers import machci, write_project


def write_config(project: Path, index: Index, extra: str) -> None:
    write_project(project, index, "app\n", ("x86_64-linux", "aarch64-linux"), extra)


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    index.publish("app", "1.0")
    index.publish("cffi", "1.17")
    index.publish("rpy2", "3.5.17", kind="sdist", requires_dist=("cffi>=1.15",))
    path = tmp_path / "project"
    write_config(path, index, "rPackages: [ggplot2, data_table]\n")
    return path


def test_rpy2_is_resolved_as_a_root_from_the_index(project: Path) -> None:
    result = machci(project, "lock", "--json")
    for system in ("x86_64-linux", "aarch64-linux"):
        roots = result.lock["systems"][system]["roots"]
        assert {"name": "rpy2", "requirement": "rpy2", "source": "machci.yaml:4 (rPackages)"} in (
            roots
        )
        assert result.versions(system) == {"app": "1.0", "cffi": "1.17", "rpy2": "3.5.17"}
        assert result.packages(system)["rpy2"]["provider"] == "sdist"
    why = machci(project, "why", "cffi")
    assert "machci.yaml:4 (rPackages) (rpy2) -> rpy2 -> cffi" in why.out


def test_a_pin_of_rpy2_in_the_requirements_applies_too(index: Index, project: Path) -> None:
    index.publish("rpy2", "3.5.16", kind="sdist")
    (project / "requirements.txt").write_text("app\nrpy2<3.5.17\n")
    result = machci(project, "lock", "--json")
    assert result.versions()["rpy2"] == "3.5.16"
    sources = {r["source"] for r in result.lock["systems"]["x86_64-linux"]["roots"]}
    assert sources == {"requirements.txt:1", "requirements.txt:2", "machci.yaml:4 (rPackages)"}


def test_why_answers_from_the_synced_file(index: Index, project: Path) -> None:
    """The rpy2 root is one of the roots default.nix records, so `why` needs no resolving."""
    assert machci(project, "sync").code == 1
    before = len(index.requests)
    why = machci(project, "why", "rpy2")
    assert "machci.yaml:4 (rPackages) (rpy2) -> rpy2" in why.out
    assert len(index.requests) == before


def _load(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machci.yaml"
    path.write_text("requirements: [requirements.txt]\n" + text)
    return path


def test_names_are_sorted_once_and_enter_the_digest(tmp_path: Path) -> None:
    config = load_config(_load(tmp_path, "rPackages:\n  - ggplot2\n  - data_table\n  - ggplot2\n"))
    assert config.r_packages is not None
    assert config.r_packages.names == ("data_table", "ggplot2")
    assert str(config.r_packages.where) == f"{tmp_path / 'machci.yaml'}:2"
    without = load_config(_load(tmp_path, ""))
    assert without.r_packages is None
    output = tmp_path / "default.nix"
    assert settings_digest(config, output) != settings_digest(without, output)
    single = load_config(_load(tmp_path, "rPackages: ggplot2\n"))
    assert single.r_packages is not None and single.r_packages.names == ("ggplot2",)
    empty = load_config(_load(tmp_path, "rPackages: []\n"))  # R and rpy2, no further package
    assert empty.r_packages is not None and empty.r_packages.names == ()


@pytest.mark.parametrize(
    "text, line, message",
    [
        (
            "rPackages:\n  - ggplot2\n  - data.table\n",
            4,
            "rPackages: 'data.table' is not an attribute name of nixpkgs' rPackages;"
            " nixpkgs spells R's dots as underscores: data_table",
        ),
        ("rPackages: [ggplot2, '${x}']\n", 2, "rPackages: '${x}' is not an attribute name"),
        ('rPackages: ["a b"]\n', 2, "rPackages: 'a b' is not an attribute name"),
        ("rPackages: {ggplot2: 1}\n", 2, "rPackages: expected a list of strings"),
        ("rPackages: [3]\n", 2, "rPackages: expected a list of strings"),
        ("rpackages: [ggplot2]\n", 2, "unknown key 'rpackages'; did you mean 'rPackages'?"),
    ],
)
def test_bad_names_are_refused_with_their_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _load(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:{line}: {message}")
