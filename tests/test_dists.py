"""Metadata parsing: the fast header reader agrees with packaging, and falls back to it; file
names read as packaging reads them."""

from __future__ import annotations

import pytest
from packaging.metadata import parse_email
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from machci.dists import (
    DistFile,
    InvalidMetadata,
    ListedReleases,
    _headers,
    _simple_headers,
    classify,
    parse_metadata,
)

PLAIN = b"""Metadata-Version: 2.1
Name: Demo_Pkg
Version: 1.0
Requires-Python: >=3.8
Provides-Extra: test
Requires-Dist: idna>=2
Requires-Dist: pytest ; extra == "test"
Requires-Dist: tomli ; python_version < "3.11" or extra == "test"
Description-Content-Type: text/markdown

# Demo

Requires-Dist: not-a-header-this-is-the-readme
"""


def test_fast_reader_matches_packaging() -> None:
    fast = _simple_headers(_headers(PLAIN))
    assert fast is not None
    slow, _unparsed = parse_email(PLAIN)
    for key in ("name", "version", "requires_python", "requires_dist", "provides_extra"):
        assert fast[key] == slow[key]
    metadata = parse_metadata(PLAIN)
    assert metadata.name == "demo-pkg" and str(metadata.version) == "1.0"
    assert [str(r) for r in metadata.requirements()] == [
        "idna>=2",
        'tomli; python_version < "3.11" or extra == "test"',
    ]
    assert len(metadata.requirements({"test"})) == 3
    assert len(metadata.requirements({"docs"})) == 2


@pytest.mark.parametrize(
    "data",
    [
        b"Name: demo\nVersion: 1\nRequires-Dist: a;\n extra == 'x'\n",  # folded value
        b"Name: =?utf-8?q?demo?=\nVersion: 1\n",  # RFC 2047 encoded word
        b"Name: demo\nVersion: 1\nSummary: caf\xe9\n",  # not UTF-8
        b"Name: demo\nVersion: 1\nthis line has no colon\n",
    ],
)
def test_unusual_files_go_through_packaging(data: bytes) -> None:
    assert _simple_headers(_headers(data)) is None
    expected, _unparsed = parse_email(data)
    assert parse_metadata(data).name == canonicalize_name(expected["name"])


@pytest.mark.parametrize("fold", ["", "\n "])  # the fast reader, and packaging's for a fold
def test_project_urls_keep_the_first_of_each_label(fold: str) -> None:
    data = (
        f"Name: demo\nVersion: 1\nProject-URL: Changelog,{fold} https://x.org/c\n"
        "Project-URL: Home, https://x.org/\nProject-URL: Changelog, https://x.org/again\n"
        "Project-URL: no comma\n"
    )
    urls = dict(parse_metadata(data).project_urls)
    assert urls["Changelog"] == "https://x.org/c" and urls["Home"] == "https://x.org/"
    assert parse_metadata(b"Name: demo\nVersion: 1\n").project_urls == ()


def test_broken_requirement_is_reported_only_when_needed() -> None:
    data = b"Name: demo\nVersion: 1\nRequires-Dist: ok\nRequires-Dist: bad >>> 1 ; extra == 'x'\n"
    metadata = parse_metadata(data)
    assert [r.name for r in metadata.requirements()] == ["ok"]
    assert [r.name for r in metadata.requirements({"y"})] == ["ok"]
    with pytest.raises(InvalidMetadata, match="bad >>> 1"):
        metadata.requirements({"x"})


def test_missing_name_or_bad_version() -> None:
    with pytest.raises(InvalidMetadata, match="no 'name' field"):
        parse_metadata(b"Version: 1\n")
    with pytest.raises(InvalidMetadata, match="invalid version"):
        parse_metadata(b"Name: x\nVersion: not a version\n")


@pytest.mark.parametrize(
    "text, extras",
    [
        ('pytest ; extra == "test"', {"test"}),
        ("pytest; extra=='test' and python_version >= '3.9'", {"test"}),
        ('tomli ; python_version < "3.11" or extra == "test"', None),
        ('win ; sys_platform == "extraterrestrial"', None),
        ('odd ; extra == "or"', {"or"}),
        ('reversed ; "test" == extra', {"test"}),
        ('spelled ; extra == "Foo_Bar"', {"foo-bar"}),
        ('base ; extra != "test"', None),
        ('base ; python_version >= "3" and extra != "docs"', None),
        ('base ; extra == ""', None),
        ("plain", None),
    ],
)
def test_which_requirements_wait_for_an_extra(text: str, extras: set[str] | None) -> None:
    """The extras an entry waits for; None: it may apply without any."""
    from machci.dists import _only_for_extras

    assert _only_for_extras(text) == (None if extras is None else frozenset(extras))


def test_a_name_quoted_elsewhere_in_the_marker_only_keeps_an_entry_more_often() -> None:
    from machci.dists import _only_for_extras

    found = _only_for_extras('x ; sys_platform == "extra == \'y\'" and extra == "z"')
    assert found is not None and "z" in found


@pytest.mark.parametrize(
    "filename",
    [
        "a-1.0-py3-none-any.whl",
        "a.b-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "a-1.0-py2.py3-none-any.whl",
        "a-1.0-1-py3-none-any.whl",
        "a-1.0-1b-py3-none-any.whl",
        "a-1.0-x-py3-none-any.whl",  # a build tag must start with a digit
        "a__b-1.0-py3-none-any.whl",
        "-1.0-py3-none-any.whl",
        "a-bad!-py3-none-any.whl",
        "a-1.0-py3-none.whl",
        "a-1.0-py3--any.whl",
        "a-1.0-3py-none-any.whl",  # an interpreter tag must be an identifier
        "a-1.0-py3.-none-any.whl",
        "a-1.0-1-2-py3-none-any.whl",
        "a-1.0-py3-none-any-x.whl",
        "a-1.0.whl",
        "a.whl",
    ],
)
def test_wheel_names_read_as_packaging_reads_them(filename: str) -> None:
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        assert classify(filename) is None
    else:
        assert classify(filename) == (name, version, "wheel", tags)


def test_listed_releases_are_made_when_reached_and_then_shared() -> None:
    """A cached listing's releases are made one by one as a resolution reaches them, and every
    target then gets the same object (its version and files computed once)."""
    read_texts: list[str] = []

    def read(text: str) -> tuple[DistFile, ...]:
        read_texts.append(text)
        return ()

    releases = ListedReleases(["2.0\t[]", "1.0\t[]", "0.9\t[]"], read)
    assert len(releases) == 3
    first = releases[0]
    assert releases[0] is first and next(iter(releases)) is first
    assert [r.version for r in releases[:2]] == [Version("2.0"), Version("1.0")]
    assert releases[-1].version == Version("0.9")
    assert first.files == () and first.files == ()
    assert read_texts == ["[]"]  # read once, when first asked
