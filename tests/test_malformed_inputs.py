"""Hostile and malformed inputs: YAML and TOML that would exhaust the stack or memory, include
chains and symbolic link loops, machci.yaml that is no regular file, empty option values, lock
files given as requirements, quadratic requirement lists, damaged cache entries and image names
that would break default.nix. Each ends in one message naming the file (and line) and exit 2,
or, for the cache, in the same lock as before."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from machci.config.load import load_config
from machci.dists import InvalidMetadata, parse_metadata
from machci.errors import InputError
from machci.inputs.requirements import read_pyproject, read_requirements_file
from machci.sources.pypi.pages import LISTING_RECORD
from tests.fixtures.depsdb import Pin, Tarballs, publish
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, lock, machci, run
from tests.test_depsdb import make_project, pinned, small_db
from tests.test_inputs import fifo

ROOT = Path(__file__).resolve().parent.parent


def machci_in(project: Path, *argv: str) -> tuple[int, str]:
    """`machci ARGV` run in `project`; (exit code, stderr)."""
    with contextlib.chdir(project):
        result = run(*argv)
    return result.code, result.err


def error_of(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        load_config(path)
    return str(caught.value)


# machci.yaml: aliases and nesting ------------------------------------------------------------


def alias_bomb(levels: int) -> str:
    """A "billion laughs" document: each level lists the one before nine times."""
    lines = ["python:", '  - &l0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels):
        lines.append(f"  - &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]")
    lines.append(f"requirements: [*l{levels - 1}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    # Seven levels stand for 4.8 million strings (nine levels crashed after 35 s and 2.1 GB).
    path = tmp_path / "machci.yaml"
    path.write_text(alias_bomb(7))
    assert error_of(path) == (
        f"{path}:6: YAML aliases (*l3) stand for more than 10,000 values; write the settings"
        " out instead"
    )


def test_yaml_aliases_within_the_bound_are_read(tmp_path: Path) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text(
        'requirements: [requirements.txt]\noverrides:\n  a: &same {doCheck: "false"}\n  b: *same\n'
    )
    config = load_config(path)
    assert [(o.name, o.attributes[0].expression) for o in config.overrides] == [
        ("a", "false"),
        ("b", "false"),
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("requirements: " + "[" * 2000 + "]" * 2000 + "\n", 1),  # flow style
        ("requirements:\n" + "".join("  " * i + "-\n" for i in range(1, 2000)), 51),  # block
    ],
)
def test_deep_yaml_nesting_is_refused(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text(text)
    assert error_of(path) == (
        f"{path}:{line}: YAML nested more than 50 levels deep; machci.yaml needs a few"
    )


# machci.yaml: image name and tag -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ['my"app', "app${x}", "My-App", "a//b", "", "-app", "app-", "a/b:1", "a" * 256, "app\\n"],
)
def test_image_names_outside_the_reference_grammar_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text(f"requirements: [r.txt]\nimage:\n  name: {json.dumps(name)}\n")
    assert error_of(path) == (
        f"{path}:3: image: name: {name!r} is not an image name (lower-case letters and digits,"
        " with '.', '_', '__' or '-' between them, in parts separated by '/', optionally after"
        " a registry host[:port]/)"
    )


@pytest.mark.parametrize("tag", ["-x", ".x", "a b", "x" * 129, 'a"', "${x}", ""])
def test_image_tags_outside_the_reference_grammar_are_refused(tmp_path: Path, tag: str) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text(f"requirements: [r.txt]\nimage: {{name: app, tag: {json.dumps(tag)}}}\n")
    assert error_of(path) == (
        f"{path}:2: image: tag: {tag!r} is not an image tag (up to 128 letters, digits, '_',"
        " '.' and '-', not starting with '.' or '-')"
    )


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("machci-env", "latest"),
        ("localhost:5000/team/my_app", "v1.2.3"),
        ("registry.example.com/a__b/c-d--e.f", "_build-7"),
        ("ghcr.io/acme/app", "T" * 128),
    ],
)
def test_image_names_and_tags_of_the_grammar_are_kept(tmp_path: Path, name: str, tag: str) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text(f"requirements: [r.txt]\nimage: {{name: {name}, tag: {tag}}}\n")
    image = load_config(path).image
    assert (image.name, image.tag) == (name, tag)


# machci.yaml that is no regular file ---------------------------------------------------------


def special_config(tmp_path: Path, kind: str) -> contextlib.AbstractContextManager[Path]:
    path = tmp_path / "machci.yaml"
    if kind == "fifo":
        return fifo(path)
    if kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/null")
    elif kind == "symlink loop":
        path.symlink_to("machci.yaml")
    return contextlib.nullcontext(path)


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("fifo", "it is a FIFO, not a regular file"),
        ("directory", "it is a directory, not a regular file"),
        ("device", "it is a character device, not a regular file"),
        ("symlink loop", os.strerror(40)),  # ELOOP
    ],
)
@pytest.mark.parametrize("command", ["lock", "sync", "check"])
def test_a_machci_yaml_that_is_no_regular_file_is_named(
    tmp_path: Path, kind: str, problem: str, command: str
) -> None:
    """Found by its name (no --config), it is read and refused, not taken for "no machci.yaml"
    (which said "no requirements given")."""
    with special_config(tmp_path, kind):
        code, err = machci_in(tmp_path, command)
    assert (code, err) == (2, f"machci: error: machci.yaml: cannot read: {problem}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["machci.yaml"]


def test_a_machci_yaml_that_links_to_nothing_is_named(tmp_path: Path) -> None:
    (tmp_path / "machci.yaml").symlink_to("nowhere.yaml")
    assert machci_in(tmp_path, "lock") == (
        2,
        "machci: error: config file 'machci.yaml' not found\n",
    )


# Requirement files ---------------------------------------------------------------------------


def test_nested_toml_arrays_are_one_message(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ' + "[" * 5000 + "]" * 5000 + "\n"
    )
    with pytest.raises(InputError) as caught:
        read_pyproject(path)
    assert str(caught.value) == (
        f"{path}:4: invalid TOML: arrays or inline tables nested too deeply to read"
    )


def test_a_deep_include_chain_is_one_message(tmp_path: Path) -> None:
    for number in range(600):
        (tmp_path / f"r{number}.txt").write_text(f"-r r{number + 1}.txt\n")
    (tmp_path / "r600.txt").write_text("six\n")
    with pytest.raises(InputError) as caught:
        read_requirements_file(tmp_path / "r0.txt")
    assert str(caught.value) == (
        f"{tmp_path / 'r99.txt'}:1: -r/-c includes nested more than 100 files deep"
    )


def test_an_include_chain_of_a_hundred_files_is_read(tmp_path: Path) -> None:
    for number in range(99):
        (tmp_path / f"r{number}.txt").write_text(f"-r r{number + 1}.txt\n")
    (tmp_path / "r99.txt").write_text("six\n")
    result = read_requirements_file(tmp_path / "r0.txt")
    assert [str(line.requirement) for line in result.requirements] == ["six"]


def test_a_deep_dependency_group_chain_is_one_message(tmp_path: Path) -> None:
    groups = "".join(f'g{n} = [{{include-group = "g{n + 1}"}}]\n' for n in range(600))
    path = tmp_path / "pyproject.toml"
    path.write_text(
        f'[project]\nname = "x"\nversion = "1"\n[dependency-groups]\n{groups}g600 = []\n'
    )
    with pytest.raises(InputError) as caught:
        read_pyproject(path, groups=["g0"])
    assert str(caught.value) == (
        f"{path}: [dependency-groups] include-group nested more than 100 groups deep"
    )


@pytest.mark.parametrize("included", [False, True])
def test_a_requirements_file_that_is_a_symlink_to_itself(tmp_path: Path, included: bool) -> None:
    (tmp_path / "loop.txt").symlink_to("loop.txt")
    (tmp_path / "requirements.txt").write_text("-r loop.txt\n")
    name = "requirements.txt" if included else "loop.txt"
    code, err = machci_in(tmp_path, "lock", "-r", name, "--index-url", "http://127.0.0.1:9/simple")
    assert (code, err) == (2, f"machci: error: loop.txt: cannot read: {os.strerror(40)}\n")


def test_a_byte_order_mark_is_accepted_as_pip_does(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"\xef\xbb\xbfsix==1.16.0\nidna\n")
    result = read_requirements_file(path)
    assert [(str(r.requirement), r.location.line) for r in result.requirements] == [
        ("six==1.16.0", 1),
        ("idna", 2),
    ]


UV_LOCK = """version = 1
requires-python = ">=3.12"

[[package]]
name = "six"
version = "1.16.0"
source = { registry = "https://pypi.org/simple" }
"""
POETRY_LOCK = """# This file is automatically @generated by Poetry; do not change it by hand.

[[package]]
name = "six"
version = "1.16.0"

[metadata]
lock-version = "2.0"
"""
PYLOCK = """lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "six"
version = "1.16.0"
"""
LOCK_MESSAGE = (
    "it is a lock file; machci reads pylock.toml, pylock.NAME.toml, uv.lock and poetry.lock as"
    " inputs by those names, not other lock files or other names (give the lock under its own"
    " name, or the requirements it was made from)"
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pdm.lock", POETRY_LOCK),
        ("Pipfile.lock", '{"_meta": {}, "default": {}}'),
        ("locked.toml", PYLOCK),  # by content: a pylock under another name
        ("requirements.lock", UV_LOCK),  # by content
    ],
)
def test_a_lock_machci_does_not_read_is_refused(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    code, err = machci_in(tmp_path, "lock", "-r", name, "--index-url", "http://127.0.0.1:9/simple")
    assert (code, err) == (2, f"machci: error: {name}: {LOCK_MESSAGE}\n")


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("uv.lock", UV_LOCK, 4),
        ("poetry.lock", POETRY_LOCK, 3),
    ],
)
def test_a_lock_without_hashes_is_refused_naming_the_entry(
    tmp_path: Path, name: str, text: str, line: int
) -> None:
    """Every pin keeps its files' hashes: an entry without any is an error on its line."""
    (tmp_path / name).write_text(text)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\ndependencies = ["six"]\n')
    code, err = machci_in(tmp_path, "lock", "-r", name, "--index-url", "http://127.0.0.1:9/simple")
    assert (code, err) == (
        2,
        f"machci: error: {name}:{line}: six 1.16.0: the lock lists no file with a sha256 hash\n",
    )


@pytest.mark.parametrize("name", ["pylock.toml", "pylock.dev.toml"])
def test_a_pylock_entry_without_files_is_refused_on_its_line(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(PYLOCK)
    code, err = machci_in(tmp_path, "lock", "-r", name, "--index-url", "http://127.0.0.1:9/simple")
    assert (code, err) == (
        2,
        f"machci: error: {name}:4: not a valid pylock.toml: Exactly one of vcs, directory,"
        " archive must be set if sdist and wheels are not set in 'packages[0]'\n",
    )


def test_a_lock_file_included_by_a_requirements_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    path = tmp_path / "requirements.txt"
    path.write_text("six\n-r uv.lock\n")
    with pytest.raises(InputError) as caught:
        read_requirements_file(path)
    assert str(caught.value) == (
        f"{path}:2: {tmp_path / 'uv.lock'} is a lock file; machci reads it as an input of its"
        " own (-r, or requirements: in machci.yaml), not included from a requirements file"
    )


def test_a_pip_style_requirements_lock_is_still_read(tmp_path: Path) -> None:
    # rye writes pip requirements files named requirements.lock
    path = tmp_path / "requirements.lock"
    path.write_text("# generated by rye\nsix==1.16.0\n")
    assert [str(r.requirement) for r in read_requirements_file(path).requirements] == [
        "six==1.16.0"
    ]


def test_a_pyproject_without_a_project_table_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")
    code, err = machci_in(
        tmp_path, "sync", "-r", "pyproject.toml", "--index-url", "http://127.0.0.1:9/simple"
    )
    assert (code, err) == (
        2,
        "machci: error: pyproject.toml: no [project] table: machci reads a pyproject.toml's"
        " [project].dependencies (PEP 621) and [dependency-groups] (PEP 735, with --group)\n",
    )
    assert not (tmp_path / "default.nix").exists()


def test_dependency_groups_alone_need_no_project_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[dependency-groups]\ntest = ["pytest"]\n')
    result = read_pyproject(path, groups=["test"])
    assert [(str(r.requirement), r.location.line) for r in result.requirements] == [("pytest", 2)]


def test_dynamic_dependencies_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\nversion = "1"\ndynamic = ["dependencies"]\n')
    with pytest.raises(InputError) as caught:
        read_pyproject(path)
    assert str(caught.value) == (
        f"{path}:4: [project].dependencies is dynamic (computed by the build backend); machci"
        " reads only static dependencies: list them, or give a requirements file"
    )


# Empty option values and selections that select nothing -------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--snapshot=", "invalid snapshot '': expected an RFC 3339 time such as"),
        ("--python=", "invalid Python version '': expected X.Y"),
        ("--index-url=", "--index-url '' is not an index URL: it must start with http://"),
        ("--glibc=", "invalid glibc ''"),
        ("--macos=", "invalid macos ''"),
    ],
)
@pytest.mark.parametrize("command", ["lock", "sync", "check"])
def test_an_empty_option_value_is_an_error(
    tmp_path: Path, option: str, message: str, command: str
) -> None:
    (tmp_path / "requirements.txt").write_text("six\n")
    code, err = machci_in(tmp_path, command, "-r", "requirements.txt", option)
    assert code == 2
    assert err.startswith(f"machci: error: {message}"), err
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requirements.txt"]


def test_an_empty_bump_target_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six\n")
    code, err = machci_in(tmp_path, "bump", "-r", "requirements.txt", "--to=")
    assert (code, err.splitlines()[0]) == (
        2,
        "machci: error: invalid snapshot '': expected an RFC 3339 time such as"
        " '2026-11-01T00:00:00Z'",
    )


@pytest.mark.parametrize("option", ["--extra=server", "--group=test"])
def test_a_selection_without_a_pyproject_is_an_error(tmp_path: Path, option: str) -> None:
    (tmp_path / "requirements.txt").write_text("six\n")
    code, err = machci_in(tmp_path, "lock", "-r", "requirements.txt", option)
    assert (code, err) == (
        2,
        f"machci: error: {option.partition('=')[0]} selects optional dependencies or groups of"
        " a pyproject.toml, a uv.lock or a poetry.lock, and no input is one (inputs:"
        " requirements.txt)\n",
    )


def test_a_selection_of_a_requirements_file_in_machci_yaml_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text("requirements:\n  - path: requirements.txt\n    extras: [server]\n")
    assert error_of(path) == (
        f"{path}:3: requirements: extras select parts of a pyproject.toml, a uv.lock or a"
        " poetry.lock; 'requirements.txt'"
        " is a requirements file"
    )


def test_a_selection_applies_to_the_pyproject_among_several_inputs(
    index: Index, tmp_path: Path
) -> None:
    index.publish("six", "1.16.0")
    index.publish("idna", "3.7")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\n[project.optional-dependencies]\nnet = ["idna"]\n'
    )
    result = lock(index, tmp_path, "six\n", "-r", "pyproject.toml", "--extra", "net")
    assert result.versions() == {"six": "1.16.0", "idna": "3.7"}


# Quadratic costs -----------------------------------------------------------------------------


def metadata_text(requires: list[str]) -> bytes:
    lines = ["Metadata-Version: 2.1", "Name: big", "Version: 1.0"]
    return ("\n".join(lines + [f"Requires-Dist: {r}" for r in requires]) + "\n").encode()


def test_repeated_requires_dist_entries_reach_the_resolver_once() -> None:
    """The resolver compares each requirement on a project with every other one: 20,000 copies
    of one line cost it minutes; once is what they mean."""
    metadata = parse_metadata(metadata_text(["six>=1.0"] * 20_000 + ["idna"]))
    assert [str(r) for r in metadata.requirements()] == ["six>=1.0", "idna"]


def test_too_many_different_requires_dist_on_one_project_are_invalid() -> None:
    metadata = parse_metadata(metadata_text([f"six!=0.{n}" for n in range(1001)]))
    with pytest.raises(InvalidMetadata) as caught:
        metadata.requirements()
    assert str(caught.value) == (
        "its metadata has more than 1,000 different Requires-Dist entries on six"
    )
    assert (
        len(parse_metadata(metadata_text([f"six!=0.{n}" for n in range(1000)])).requirements())
        == 1000
    )


def test_a_package_with_20000_requires_dist_lines_locks(index: Index, tmp_path: Path) -> None:
    index.publish("six", "1.16.0")
    index.publish("big", "1.0", requires_dist=("six>=1.0",) * 20_000)
    assert lock(index, tmp_path, "big\n").versions() == {"big": "1.0", "six": "1.16.0"}


def test_a_package_with_too_many_requirements_on_one_project_is_skipped_by_name(
    index: Index, tmp_path: Path
) -> None:
    index.publish("six", "1.16.0")
    index.publish("big", "1.0", requires_dist=tuple(f"six!=0.{n}" for n in range(2000)))
    result = lock(index, tmp_path, "big\n")
    assert result.code == 1
    assert (
        "big-1.0-py3-none-any.whl: its metadata has more than 1,000 different Requires-Dist"
        " entries on six"
    ) in result.err
    assert "Traceback" not in result.err


def test_too_many_requirements_on_one_project_are_refused(tmp_path: Path) -> None:
    dependencies = "".join(f'  "six!=0.{n}",\n' for n in range(40_000))
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nversion = "1"\ndependencies = [\n{dependencies}]\n'
    )
    code, err = machci_in(
        tmp_path, "lock", "-r", "pyproject.toml", "--index-url", "http://127.0.0.1:9/simple"
    )
    assert (code, err) == (
        2,
        "machci: error: pyproject.toml:1005: more than 1,000 requirements on six; the resolver"
        " checks each against every other, so machci refuses so many: merge them\n",
    )


def test_forty_thousand_dependencies_are_read_in_linear_time(tmp_path: Path) -> None:
    """Each dependency's line was found by scanning the file again: 40,000 took minutes. The
    bound is generous; it only tells linear from quadratic."""
    dependencies = "".join(f'  "pkg{n}>=1",\n' for n in range(40_000))
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[project]\nname = "x"\nversion = "1"\ndependencies = [\n{dependencies}]\n')
    started = time.monotonic()
    result = read_pyproject(path)
    assert time.monotonic() - started < 20
    assert [r.location.line for r in result.requirements[:2]] == [5, 6]
    assert result.requirements[-1].location.line == 40_004


# Cache damage ---------------------------------------------------------------------------------


def lock_process(index: Index, project: Path) -> subprocess.CompletedProcess[str]:
    """`machci lock --json` in its own process, bounded in time and memory (a damaged cache
    entry used to hang on a FIFO or fill the memory from /dev/zero)."""

    def bound() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    argv = ["lock", "--json", "-r", "requirements.txt", "--index-url", index.url]
    argv += ["--cache-dir", ".cache", "--snapshot", SNAPSHOT, "--system", "x86_64-linux"]
    return subprocess.run(
        [sys.executable, "-m", "machci", *argv],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=bound,
        check=False,
    )


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.unlink()
    if how == "directory":
        path.mkdir()
        (path / "inside").write_text("x")
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "/dev/zero":
        path.symlink_to("/dev/zero")
    elif how == "symlink loop":
        path.symlink_to(path.name)
    elif how == "forged":  # another file's bytes under this one's address
        path.write_bytes(b"forged" + data)


@pytest.mark.parametrize("how", ["directory", "fifo", "/dev/zero", "symlink loop", "forged"])
@pytest.mark.parametrize("entries", ["blobs", "pages", LISTING_RECORD])
def test_a_damaged_cache_entry_is_discarded_and_fetched_again(
    index: Index, tmp_path: Path, how: str, entries: str
) -> None:
    index.publish("six", "1.16.0")
    index.publish("app", "1.0", requires_dist=("six",))
    index.publish("app", "1.0", kind="sdist", requires_dist=("six",))
    first = lock(index, tmp_path, "app\n")
    damaged = sorted((tmp_path / ".cache").rglob(f"{entries}/*"))
    assert damaged
    for path in damaged:
        damage(path, how)
    again = lock_process(index, tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    assert json.loads(again.stdout) == first.lock
    for path in damaged:  # replaced by what was fetched again, or gone
        assert path.is_file() or not os.path.lexists(path)


def test_a_record_moved_under_another_address_is_not_used(index: Index, tmp_path: Path) -> None:
    """Derived records (here pages' listings) cannot be checked against their input without it;
    each names the address it was written for, so one copied over another's is computed again
    instead of trusted."""
    index.publish("six", "1.16.0")
    index.publish("app", "1.0", requires_dist=("six",))
    first = lock(index, tmp_path, "app\n")
    records = sorted((tmp_path / ".cache").rglob(f"{LISTING_RECORD}/*.txt"))
    assert len(records) == 2
    contents = [path.read_bytes() for path in records]
    for path, content in zip(records, reversed(contents), strict=True):
        path.write_bytes(content)
    again = lock(index, tmp_path, "app\n")
    assert (again.code, again.err, again.lock) == (0, "", first.lock)


@pytest.fixture
def depsdb_pin(tarballs: Tarballs, tmp_path: Path) -> Pin:
    return publish(small_db(), tarballs, tmp_path / "published")


@pytest.mark.parametrize("how", ["file", "fifo", "/dev/zero", "link to another tree"])
def test_a_damaged_cached_tree_is_fetched_again(depsdb_pin: Pin, tmp_path: Path, how: str) -> None:
    project = make_project(tmp_path / "project", pinned(depsdb_pin), "app\n")
    first = machci(project, "lock", "--json")
    tree = project / ".cache" / "v2" / "trees" / depsdb_pin.sha256
    assert tree.is_dir()
    shutil.rmtree(tree)
    if how == "file":
        tree.write_text("not a tree")
    elif how == "fifo":
        os.mkfifo(tree)
    elif how == "/dev/zero":
        tree.symlink_to("/dev/zero")
    else:  # a directory that is not the pinned tree
        (tmp_path / "other").mkdir()
        tree.symlink_to(tmp_path / "other")
    again = machci(project, "lock", "--json")
    assert (again.code, again.err, again.lock) == (0, "", first.lock)
    assert tree.is_dir() and not tree.is_symlink()


def test_the_project_s_deeply_nested_pyproject_is_one_message(tmp_path: Path) -> None:
    """`project: .` reads the project's pyproject.toml as an sdist's (its build system)."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ' + "[" * 5000 + "]" * 5000 + "\n"
    )
    (tmp_path / "machci.yaml").write_text("project: .\nsystems: [x86_64-linux]\n")
    code, err = machci_in(tmp_path, "lock", "--index-url", "http://127.0.0.1:9/simple")
    assert (code, err) == (
        2,
        f"machci: error: machci.yaml:1: packagesExtra: {tmp_path}: source.tar.gz: invalid"
        " pyproject.toml (maximum recursion depth exceeded)\n",
    )


@pytest.mark.parametrize(
    ("name", "text", "pyproject", "message"),
    [
        (
            "uv.lock",
            'version = 1\n[[package]]\nname = "app"\nversion = "0.1"\nsource = { virtual = "." }\n'
            'dependencies = [{ name = "x" }, { name = 3 }]\n',
            "",
            "uv.lock:2: not a uv.lock machci can read: package.0.dependencies.1.name: 3 is not of"
            " type 'string'",
        ),
        (
            "uv.lock",
            'version = 1\n[[package]]\nname = "app"\nsource = { virtual = "." }\n'
            'dependencies = "nope"\n',
            "",
            "uv.lock:2: not a uv.lock machci can read: package.0.dependencies: 'nope' is not of"
            " type 'array'",
        ),
        (
            "poetry.lock",
            '[metadata]\nlock-version = "2.0"\n[[package]]\nname = "x"\nversion = "1"\n'
            'source = "weird"\n',
            "",
            "poetry.lock:3: not a poetry.lock machci can read: package.0.source: 'weird' is not"
            " of type 'object'",
        ),
        (
            "poetry.lock",
            '[metadata]\nlock-version = "2.0"\n',
            "[tool.poetry.dependencies]\nx = 5\n",
            "pyproject.toml: not a pyproject.toml machci can read: tool.poetry.dependencies.x: 5"
            " is not valid under any of the given schemas",
        ),
    ],
)
def test_a_lock_of_the_wrong_shape_is_one_error_at_its_entry(
    tmp_path: Path, name: str, text: str, pyproject: str, message: str
) -> None:
    """Locks are input like any other: wrong types are the file's error, never a traceback."""
    (tmp_path / name).write_text(text)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    code, err = machci_in(tmp_path, "lock", "-r", name, "--index-url", "http://127.0.0.1:9/simple")
    assert (code, err) == (2, f"machci: error: {message}\n")
