"""Build constraints (`buildConstraints:` in machci.yaml, `--build-constraint FILE`): they
restrict the build requirements locked into default.nix and those pip installs for the sandboxed
metadata queries, never add a package, and are inputs of the generated file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.index import Index
from tests.helpers import machci, write_project

# needsold's setup refuses what oldtool 2 has become, as setuptools 71+ refuses web2ldap 1.8.1's
# `python_requires='>=3.6.*'`.
REFUSES_NEW = (
    "import oldtool\n"
    "if not oldtool.__version__.startswith('1.'):\n"
    "    version = oldtool.__version__\n"
    '    raise RuntimeError("Invalid specifier: \'>=3.6.*\' (oldtool " + version + ")")\n'
)


def make_project(path: Path, index: Index, extra: str = "") -> Path:
    return write_project(path, index, "needsold\n", extra=extra)


@pytest.fixture
def published(index: Index) -> Index:
    """oldtool 1.0 and 2.0, and needsold, an sdist (metadata not static) built with oldtool
    whose backend fails with oldtool 2."""
    index.publish("oldtool", "1.0")
    index.publish("oldtool", "2.0")
    index.publish("unrelated", "1.0")
    index.publish(
        "needsold",
        "1.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        build_requires=("oldtool",),
        backend_prelude=REFUSES_NEW,
    )
    return index


def test_without_a_constraint_the_error_names_build_constraints(
    published: Index, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project", published)
    result = machci(project, "sync")
    assert result.code == 2
    assert result.err.startswith(
        "machci: error: cannot prepare the metadata of needsold 1.0 (needsold-1.0.tar.gz):"
        " preparing metadata with the build backend failed: RuntimeError: Invalid specifier:"
        " '>=3.6.*' (oldtool 2.0)\n"
    )
    assert (
        "build it with older build tools (it builds with oldtool): `buildConstraints:"
        " ['oldtool<N']` in machci.yaml, or --build-constraint FILE"
    ) in result.err
    assert not (project / "default.nix").exists()


@pytest.mark.parametrize(
    "extra, args",
    [
        ("buildConstraints: ['oldtool<2']\n", ()),
        ("buildConstraints: oldtool<2\n", ()),
        ("buildConstraints: [{path: build-constraints.txt}]\n", ()),
        ("", ("--build-constraint", "build-constraints.txt")),
    ],
    ids=["yaml-line", "yaml-single", "yaml-file", "cli-file"],
)
def test_a_build_constraint_reaches_the_lock_and_the_backend(
    published: Index, tmp_path: Path, extra: str, args: tuple[str, ...]
) -> None:
    project = make_project(tmp_path / "project", published, extra)
    (project / "build-constraints.txt").write_text("# oldtool 2 refuses needsold\noldtool<2\n")
    result = machci(project, "lock", "--json", *args)
    assert result.versions() == {"needsold": "1.0", "oldtool": "1.0"}
    assert result.packages()["needsold"]["build_requires"] == ["oldtool"]
    assert result.err == ""  # the backend answered both questions with oldtool 1.0
    assert machci(project, "sync", *args).code == 1
    nix = (project / "default.nix").read_text()
    assert '"oldtool-1.0-py3-none-any.whl"' in nix
    assert "oldtool-2.0" not in nix


def test_build_constraints_never_add_a_package(published: Index, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", published, "buildConstraints: ['unrelated<2']\n")
    (project / "requirements.txt").write_text("oldtool\n")  # no sdist: no build requirements
    assert machci(project, "lock", "--json").versions() == {"oldtool": "2.0"}


def test_a_constraint_no_version_meets_is_a_conflict_naming_it(
    published: Index, tmp_path: Path
) -> None:
    published.publish("staticold", "1.0", kind="sdist", build_requires=("oldtool",))
    extra = "buildConstraints:\n  - oldtool<2\n  - oldtool>3\n"
    project = make_project(tmp_path / "project", published, extra)
    (project / "requirements.txt").write_text("staticold\n")
    result = machci(project, "lock")
    assert result.code == 1
    assert result.err == (
        "machci: error: cannot resolve for x86_64-linux (Python 3.12):\n"
        "  no version of oldtool matches (any) and <2 and >3 (available: 2.0, 1.0)\n"
        "  oldtool is required by staticold 1.0 (from requirements.txt:1)\n"
        "  oldtool<2 is a constraint from machci.yaml:5 (build constraint)\n"
        "  oldtool>3 is a constraint from machci.yaml:6 (build constraint)\n"
        "  these requirements on oldtool cannot all hold at once\n"
    )


def test_a_changed_constraints_file_makes_the_generated_file_stale(
    published: Index, tmp_path: Path
) -> None:
    extra = "buildConstraints: [{path: build-constraints.txt}]\n"
    project = make_project(tmp_path / "project", published, extra)
    (project / "build-constraints.txt").write_text("oldtool<2\n")
    assert machci(project, "sync").code == 1
    assert "build-constraints.txt" in (project / "default.nix").read_text().split("{", 1)[0]
    assert machci(project, "check").code == 0
    (project / "build-constraints.txt").write_text("oldtool<1.5\n")
    check = machci(project, "check")
    assert check.code == 1
    assert "build-constraints.txt changed since default.nix was generated" in check.err


def test_a_build_constraint_on_the_command_line_enters_the_settings(
    published: Index, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project", published, "buildConstraints: ['oldtool<2']\n")
    (project / "more.txt").write_text("oldtool<3\n")
    assert machci(project, "sync").code == 1
    assert machci(project, "check").code == 0
    assert machci(project, "check", "--build-constraint", "more.txt").code == 1


@pytest.mark.parametrize(
    "extra, files, message",
    [
        (
            "buildConstraints: ['oldtool[fast]<2']\n",
            {},
            "machci.yaml:4: buildConstraints: 'oldtool[fast]<2': a build constraint restricts"
            " versions; it cannot name extras (write oldtool<2)",
        ),
        (
            "buildConstraints:\n  - oldtool<2\n  - oldtool @ https://example.org/oldtool-1.0.tar.gz\n",
            {},
            "machci.yaml:6: buildConstraints: 'oldtool @ https://example.org/oldtool-1.0.tar.gz':"
            " a build constraint restricts versions; it cannot name a URL",
        ),
        (
            "buildConstraints: ['oldtool <<2']\n",
            {},
            "machci.yaml:4: invalid requirement 'oldtool <<2'",
        ),
        (
            "buildConstraints: [{file: c.txt}]\n",
            {},
            "machci.yaml:4: unknown key buildConstraints: 'file' (known: path)",
        ),
        (
            "buildConstraints: [3]\n",
            {},
            "machci.yaml:4: buildConstraints: expected a requirement such as 'setuptools<70' or a"
            " mapping {path: FILE}, got 3",
        ),
        (
            "buildConstraints: [{path: missing.txt}]\n",
            {},
            "machci.yaml:4: build constraints file '",
        ),
        (
            "buildConstraints: [{path: c.txt}]\n",
            {"c.txt": "--index-url https://example.org/simple\noldtool<2\n"},
            "c.txt: a build constraints file holds requirement lines only; index options and"
            " --pre belong in the requirements",
        ),
        (
            "buildConstraints: [{path: c.txt}]\n",
            {"c.txt": "oldtool<2\noldtool[fast]>1\n"},
            "c.txt:2: 'oldtool[fast]>1': a build constraint restricts versions; it cannot name"
            " extras (write oldtool>1)",
        ),
        (
            "buildConstraints: [{path: c.txt}]\n",
            {"c.txt": "oldtool==1.0 --hash=sha256:" + "0" * 64 + "\n"},
            "c.txt:1: oldtool==1.0: a build constraint restricts versions; --hash pins files",
        ),
    ],
    ids=[
        "extras",
        "url",
        "invalid",
        "unknown-key",
        "number",
        "missing",
        "index",
        "file-extras",
        "hash",
    ],
)
def test_a_bad_build_constraint_is_one_message_and_nothing_is_written(
    published: Index, tmp_path: Path, extra: str, files: dict[str, str], message: str
) -> None:
    project = make_project(tmp_path / "project", published, extra)
    for name, text in files.items():
        (project / name).write_text(text)
    result = machci(project, "sync")
    assert result.code == 2
    assert result.err.startswith(f"machci: error: {message}"), result.err
    assert result.err.count("\n") == 1
    assert not (project / "default.nix").exists()


def test_a_missing_constraints_file_on_the_command_line_is_named(
    published: Index, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project", published)
    result = machci(project, "lock", "--build-constraint", "absent.txt")
    assert result.code == 2
    assert result.err == (
        "machci: error: --build-constraint: build constraints file 'absent.txt' not found\n"
    )


@pytest.mark.parametrize("kind", ["fifo", "directory", "loop"])
def test_a_constraints_file_that_is_no_file_is_one_message(
    published: Index, tmp_path: Path, kind: str
) -> None:
    project = make_project(tmp_path / "project", published)
    path = project / "c.txt"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(path)
    result = machci(project, "sync", "--build-constraint", "c.txt")
    assert result.code == 2
    assert result.err.startswith("machci: error: ")
    assert result.err.count("\n") == 1
    assert "c.txt" in result.err
    assert not (project / "default.nix").exists()
