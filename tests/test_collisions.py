"""Collisions: what a wheel installs where, and which paths nixpkgs' buildEnv would refuse."""

from __future__ import annotations

import io
import zipfile

import pytest

from machci.collisions import (
    Collision,
    WheelContents,
    WheelEntry,
    collisions,
    installed_files,
)
from machci.errors import SourceError
from machci.sources.wheels import read_contents
from tests.fixtures.builders import Dist, build_bytes

SITE = "lib/python3.12/site-packages"


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
    contents = read_contents(build_bytes(dist), dist.filename)
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
    plain = read_contents(_wheel(0o100644), name)
    executable = read_contents(_wheel(0o100755), name)
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
        read_contents(b"not a zip", "x-1-py3-none-any.whl")
    with pytest.raises(SourceError, match=r"no single \.dist-info/RECORD"):
        read_contents(_wheel(0o100644, "x-1.dist-info/RECORDS"), "x-1-py3-none-any.whl")
