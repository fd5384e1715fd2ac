"""`machci lock --check-collisions`: paths nixpkgs' buildEnv would refuse, found before a build."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from machci.errors import SourceError
from machci.limits import Limits
from machci.lock.collisions import (
    Collision,
    WheelContents,
    WheelEntry,
    collisions,
    installed_files,
)
from machci.sources.pypi.wheels import DERIVED_KIND, read_contents
from tests.fixtures.builders import Dist, build_bytes
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, run

SITE = "lib/python3.12/site-packages"
METADATA_LIMIT = Limits.from_environment().metadata


def check(
    index_url: str,
    project: Path,
    requirements: str,
    *args: str,
    systems: tuple[str, ...] = ("x86_64-linux",),
) -> Run:
    """`machci lock --check-collisions -o lock.json` in `project`: stdout holds only the report."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.txt").write_text(requirements)
    argv = ["lock", "--check-collisions", "-r", "requirements.txt", "--index-url", index_url]
    argv += ["--cache-dir", ".cache", "--snapshot", SNAPSHOT]
    for system in systems:
        argv += ["--system", system]
    if "--json" not in args:
        argv += ["-o", "lock.json"]
    with contextlib.chdir(project):
        return run(*argv, *args)


def test_different_files_at_one_path_collide(index: Index, tmp_path: Path) -> None:
    index.publish("foo", "1.0", extra_files=(("shared/data.json", b"1\n"),))
    index.publish("bar", "1.0", extra_files=(("shared/data.json", b"2\n"),))
    index.publish("baz", "1.0", extra_files=(("shared/other.json", b"2\n"),))
    result = check(index.url, tmp_path, "foo\nbar\nbaz\n")
    assert result.code == 1, result.err
    assert result.out == (
        "x86_64-linux: 1 path installed by more than one package\n"
        f"  {SITE}/shared/data.json: bar, foo\n"
    )
    assert json.loads((tmp_path / "lock.json").read_text())["systems"]["x86_64-linux"]


def test_identical_files_do_not_collide(index: Index, tmp_path: Path) -> None:
    index.publish("foo", "1.0", extra_files=(("shared/schema.json", b"{}\n"),))
    index.publish("bar", "1.0", extra_files=(("shared/schema.json", b"{}\n"),))
    result = check(index.url, tmp_path, "foo\nbar\n")
    assert (result.code, result.out) == (0, "x86_64-linux: no collisions\n"), result.err


def test_identical_modules_collide_through_their_bytecode(index: Index, tmp_path: Path) -> None:
    """installer compiles each .py with its own store path inside, so the .pyc files differ."""
    index.publish("foo", "1.0", extra_files=(("shared/__init__.py", b""),))
    index.publish("bar", "1.0", extra_files=(("shared/__init__.py", b""),))
    result = check(index.url, tmp_path, "foo\nbar\n")
    assert result.code == 1
    assert f"  {SITE}/shared/__init__.py: bar, foo\n" in result.out


def test_top_level_tests_directories_are_removed_before_linking(
    index: Index, tmp_path: Path
) -> None:
    """nixpkgs' pythonRemoveTestsDirHook deletes site-packages/tests and /test."""
    for name, body in (("foo", b"a = 1\n"), ("bar", b"b = 2\n")):
        index.publish(
            name,
            "1.0",
            extra_files=(("tests/__init__.py", body), ("test/conftest.py", body)),
        )
    result = check(index.url, tmp_path, "foo\nbar\n")
    assert (result.code, result.out) == (0, "x86_64-linux: no collisions\n")


def test_scripts_of_the_data_directory_land_in_bin(index: Index, tmp_path: Path) -> None:
    index.publish(
        "app-one", "1.0", extra_files=(("app_one-1.0.data/scripts/serve", b"#!python\n1\n"),)
    )
    index.publish(
        "app-two", "1.0", extra_files=(("app_two-1.0.data/scripts/serve", b"#!python\n2\n"),)
    )
    result = check(index.url, tmp_path, "app-one\napp-two\n")
    assert result.code == 1
    assert result.out == (
        "x86_64-linux: 1 path installed by more than one package\n  bin/serve: app-one, app-two\n"
    )


def test_entry_points_of_the_same_name_collide(index: Index, tmp_path: Path) -> None:
    """installer writes bin/<name> for each console script; nixpkgs wraps it per package."""
    for name in ("foo", "bar"):
        points = b"[console_scripts]\nServe = shared.cli:main\n"
        index.publish(
            name, "1.0", extra_files=((f"{name}-1.0.dist-info/entry_points.txt", points),)
        )
    result = check(index.url, tmp_path, "foo\nbar\n")
    assert result.code == 1
    assert "  bin/Serve: bar, foo\n" in result.out


def test_a_file_where_another_package_has_a_directory(index: Index, tmp_path: Path) -> None:
    index.publish("foo", "1.0", extra_files=(("shared", b"a file\n"),))
    index.publish("bar", "1.0", extra_files=(("shared/inner.txt", b"inside\n"),))
    result = check(index.url, tmp_path, "foo\nbar\n")
    assert result.code == 1
    assert f"  {SITE}/shared: bar, foo\n" in result.out


def test_sdists_are_listed_as_not_checked(index: Index, tmp_path: Path) -> None:
    index.publish("alpha", "1.0", extra_files=(("shared/x.txt", b"x\n"),))
    index.publish("gamma", "1.0", kind="sdist", extra_files=(("shared/x.txt", b"y\n"),))
    result = check(index.url, tmp_path, "alpha\ngamma\n")
    assert result.code == 0, result.err
    assert (
        result.out
        == "x86_64-linux: no collisions\nnot checked (built by Nix from source or nixpkgs): gamma\n"
    )


def test_each_system_is_checked_with_its_own_wheels(index: Index, tmp_path: Path) -> None:
    clash = (("shared/lib.txt", b"native\n"),)
    index.publish("native", "1.0", tag="py3-none-manylinux_2_17_x86_64", extra_files=clash)
    index.publish("native", "1.0", tag="py3-none-manylinux_2_17_aarch64")
    index.publish("pure", "1.0", extra_files=(("shared/lib.txt", b"pure\n"),))
    systems = ("x86_64-linux", "aarch64-linux")
    result = check(index.url, tmp_path, "native\npure\n", "--python", "3.13", systems=systems)
    assert result.code == 1
    assert result.out == (
        "aarch64-linux: no collisions\n"
        "x86_64-linux: 1 path installed by more than one package\n"
        "  lib/python3.13/site-packages/shared/lib.txt: native, pure\n"
    )


def test_with_json_the_report_goes_to_stderr(index: Index, tmp_path: Path) -> None:
    index.publish("foo", "1.0", extra_files=(("shared/data.json", b"1\n"),))
    index.publish("bar", "1.0", extra_files=(("shared/data.json", b"2\n"),))
    result = check(index.url, tmp_path, "foo\nbar\n", "--json")
    assert result.code == 1
    assert sorted(json.loads(result.out)["systems"]["x86_64-linux"]["packages"]) == ["bar", "foo"]
    assert f"  {SITE}/shared/data.json: bar, foo\n" in result.err


def test_the_summary_comes_before_the_report(index: Index, tmp_path: Path) -> None:
    index.publish("foo", "1.0")
    (tmp_path / "requirements.txt").write_text("foo\n")
    argv = ["lock", "--check-collisions", "-r", "requirements.txt", "--index-url", index.url]
    with contextlib.chdir(tmp_path):
        result = run(*argv, "--cache-dir", ".cache", "--system", "x86_64-linux")
    assert result.code == 0
    assert result.out.endswith("  foo==1.0  [wheel]\nx86_64-linux: no collisions\n")


def test_a_second_run_reads_the_cache(index: Index, tmp_path: Path) -> None:
    # foo has no .metadata file: resolving already downloads its wheel, and the check reuses it.
    index.publish("foo", "1.0", serve_metadata=False, extra_files=(("shared/a.json", b"1\n"),))
    index.publish("bar", "1.0", extra_files=(("shared/a.json", b"2\n"),))
    first = check(index.url, tmp_path, "foo\nbar\n")
    wheels = sorted(path for _method, path in index.requests if path.endswith(".whl"))
    assert wheels == ["/files/bar-1.0-py3-none-any.whl", "/files/foo-1.0-py3-none-any.whl"]
    index.requests.clear()
    again = check(index.url, tmp_path, "foo\nbar\n")
    assert not [path for _method, path in index.requests if path.endswith(".whl")]
    url = index.url
    index.stop()
    # What was read from bar's wheel is kept apart from the wheel: the report needs no archive.
    packages = json.loads((tmp_path / "lock.json").read_text())["systems"]["x86_64-linux"][
        "packages"
    ]
    (blob,) = (tmp_path / ".cache").rglob(packages["bar"]["file"]["sha256"])
    blob.unlink()
    offline = check(url, tmp_path, "foo\nbar\n", "--offline")
    assert first.code == again.code == offline.code == 1, offline.err
    assert first.out == again.out == offline.out
    assert f"  {SITE}/shared/a.json: bar, foo\n" in first.out


def test_the_wheel_is_read_again_when_its_cache_entry_is_damaged(
    index: Index, tmp_path: Path
) -> None:
    index.publish("foo", "1.0", extra_files=(("shared/data.json", b"1\n"),))
    index.publish("bar", "1.0", extra_files=(("shared/data.json", b"2\n"),))
    first = check(index.url, tmp_path, "foo\nbar\n")
    entries = sorted((tmp_path / ".cache").rglob(f"{DERIVED_KIND}/*.json"))
    assert len(entries) == 2
    for entry in entries:
        entry.write_text('{"entries": [["x", 1, true]], "scripts": []}')
    again = check(index.url, tmp_path, "foo\nbar\n", "--offline")
    assert (again.code, again.out) == (first.code, first.out), again.err


def test_offline_names_the_missing_wheel(index: Index, tmp_path: Path) -> None:
    index.publish("foo", "1.0")
    with contextlib.chdir(tmp_path):
        (tmp_path / "requirements.txt").write_text("foo\n")
        base = ["lock", "-r", "requirements.txt", "--index-url", index.url, "--cache-dir", ".c"]
        base += ["--system", "x86_64-linux", "-o", "lock.json"]
        assert run(*base).code == 0  # the index pages and metadata, not the wheel
        result = run(*base, "--check-collisions", "--offline")
    assert result.code == 2
    assert result.err == (
        f"machci: error: offline: {index.files_url}/foo-1.0-py3-none-any.whl is not in the cache\n"
    )


# The pure part: what a wheel installs where, and when two files are the same.


def test_members_land_where_installer_puts_them() -> None:
    dist = Dist(
        "Pkg",
        "2.0",
        extra_files=(
            ("pkg-2.0.data/purelib/pure.txt", b"p"),
            ("pkg-2.0.data/platlib/plat.so", b"s"),
            ("pkg-2.0.data/headers/pkg.h", b"h"),
            ("pkg-2.0.data/data/share/doc/pkg.txt", b"d"),
            ("pkg-2.0.data/data/share/mime/text/x.xml", b"m"),
            ("pkg-2.0.data/data/var/log/pkg.txt", b"l"),
            ("pkg-2.0.data/unknown/x", b"u"),
        ),
    )
    contents = read_contents(build_bytes(dist), dist.filename, METADATA_LIMIT)
    paths = sorted(installed_files(contents, dist.filename, "pkg", "3.12"))
    assert paths == [
        "include/python3.12/pkg/pkg.h",
        f"{SITE}/pkg-2.0.dist-info/METADATA",
        f"{SITE}/pkg-2.0.dist-info/RECORD",
        f"{SITE}/pkg-2.0.dist-info/WHEEL",
        f"{SITE}/pkg/__init__.py",
        f"{SITE}/plat.so",
        f"{SITE}/pure.txt",
        "share/doc/pkg.txt",
    ]


def _wheel(mode: int, record_name: str = "x-1.dist-info/RECORD") -> bytes:
    """A wheel whose one file, x/tool.sh, has the given mode (the fixture's are all 0644)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        record = f"x/tool.sh,sha256=abc,3\n{record_name},,\n".encode()
        for name, data, member_mode in (
            ("x/tool.sh", b"sh\n", mode),
            (record_name, record, 0o100644),
        ):
            info = zipfile.ZipInfo(name)
            info.external_attr = member_mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def test_the_mode_counts_as_buildenv_compares_it() -> None:
    name = "x-1-py3-none-any.whl"
    plain = read_contents(_wheel(0o100644), name, METADATA_LIMIT)
    executable = read_contents(_wheel(0o100755), name, METADATA_LIMIT)
    assert [(e.path, e.executable) for e in executable.entries] == [
        ("x/tool.sh", True),
        ("x-1.dist-info/RECORD", False),
    ]
    files = {
        "a": installed_files(plain, name, "a", "3.12"),
        "b": installed_files(executable, name, "b", "3.12"),
        "c": installed_files(plain, name, "c", "3.12"),
    }
    tool = f"{SITE}/x/tool.sh"
    assert [c for c in collisions(files) if c.path == tool] == [Collision(tool, ("a", "b", "c"))]
    assert not [c for c in collisions({"a": files["a"], "c": files["c"]}) if c.path == tool]


def test_a_file_without_a_record_hash_is_never_the_same_as_another() -> None:
    contents = WheelContents((WheelEntry("data.bin", None, False),))
    files = {n: installed_files(contents, "x-1-py3-none-any.whl", n, "3.12") for n in "ab"}
    assert [c.path for c in collisions(files)] == [f"{SITE}/data.bin"]


def test_a_broken_archive_is_one_line() -> None:
    with pytest.raises(SourceError, match=r"^x-1-py3-none-any.whl: not a valid wheel \("):
        read_contents(b"not a zip", "x-1-py3-none-any.whl", METADATA_LIMIT)
    with pytest.raises(SourceError, match=r"no single \.dist-info/RECORD"):
        read_contents(
            _wheel(0o100644, "x-1.dist-info/RECORDS"), "x-1-py3-none-any.whl", METADATA_LIMIT
        )
