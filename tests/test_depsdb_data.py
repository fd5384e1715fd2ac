"""pypi-deps-db's table entries read into files and metadata (machci.sources.depsdb.data)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from machci.dists import DistFile, InvalidMetadata
from machci.sources.depsdb.data import (
    bucket_of,
    hex_sha256,
    keys_for,
    python_label,
    read_project,
    sdist_entries,
    sdist_metadata,
    table_key,
    wheel_entries,
    wheel_metadata,
)

DIGEST = hashlib.sha256(b"file").digest()
B64 = base64.b64encode(DIGEST).decode()


def sdist_file(name: str = "pkg", version: str = "1.0") -> DistFile:
    return DistFile(NormalizedName(name), Version(version), "sdist", "f", "u", DIGEST.hex())


def test_keys_and_buckets() -> None:
    assert table_key("Zope_Interface") == "zope-interface"
    assert bucket_of("requests") == hashlib.sha256(b"requests").hexdigest()[:2]
    assert keys_for(NormalizedName("six")) == ["six"]
    assert keys_for(NormalizedName("zope-interface")) == ["zope-interface", "zope.interface"]
    assert keys_for(NormalizedName("a-b-c"))[:2] == ["a-b-c", "a-b.c"]
    assert len(keys_for(NormalizedName("a-b-c"))) == 4
    assert keys_for(NormalizedName("a-b-c-d-e-f")) == ["a-b-c-d-e-f", "a.b.c.d.e.f"]
    assert python_label("27") == "2.7" and python_label("310") == "3.10"


def test_hex_sha256_from_base64() -> None:
    assert hex_sha256(B64) == DIGEST.hex()
    assert hex_sha256(DIGEST.hex()) == DIGEST.hex()
    assert hex_sha256(B64[:-4]) is None  # not 32 bytes
    assert hex_sha256("not base64!") is None
    assert hex_sha256(None) is None


def test_wheel_references_are_followed_within_their_tag() -> None:
    entries = wheel_entries(
        {
            "py3": {
                "1.0": {"p-1.0-py3-none-any.whl": {"requires_dist": ["a"]}},
                "1.1": {"p-1.1-py3-none-any.whl": "1.0@p-1.0-py3-none-any.whl"},
                "1.2": {"p-1.2-py3-none-any.whl": "9.9@missing.whl"},
            },
            "cp312": {"1.1": {"p-1.1-cp312-cp312-linux_x86_64.whl": "1.0@p-1.0-py3-none-any.whl"}},
        }
    )
    assert entries == {
        "p-1.0-py3-none-any.whl": {"requires_dist": ["a"]},
        "p-1.1-py3-none-any.whl": {"requires_dist": ["a"]},
    }


def test_sdist_version_references_are_followed() -> None:
    entries = sdist_entries({"1.0": {"36": {}}, "1.1": "1.0", "1.2": "0.1", "bad version": {}})
    assert entries == {Version("1.0"): {"36": {}}, Version("1.1"): {"36": {}}}


def test_read_project_offers_only_files_with_data() -> None:
    urls = {
        "1.0": {
            "sdist": [B64, "pkg-1.0.tar.gz"],
            "wheels": {
                "pkg-1.0-py3-none-any.whl": [B64, "py3"],
                "pkg-1.0-cp312-cp312-linux_x86_64.whl": [B64, "cp312"],  # never crawled
                "other-1.0-py3-none-any.whl": [B64, "py3"],  # another project's name
                "pkg-2.0-py3-none-any.whl": [B64, "py3"],  # another version
            },
        },
        "2.0": {"sdist": [B64, "pkg-2.0.tar.gz"]},  # no sdist data for 2.0
        "3.0": {"sdist": ["not a hash", "pkg-3.0.tar.gz"]},
        "4.0": {"sdist": [B64, "../pkg-4.0.tar.gz"]},
    }
    wheel = {
        "py3": {
            "1.0": {
                name: {"requires_python": ">=3.8,"}
                for name in (
                    "pkg-1.0-py3-none-any.whl",
                    "other-1.0-py3-none-any.whl",
                    "pkg-2.0-py3-none-any.whl",
                )
            }
        }
    }
    sdist: dict[str, object] = {v: {"312": {}} for v in ("1.0", "3.0", "4.0")}
    project = read_project(NormalizedName("pkg"), "pkg", urls, wheel, sdist)
    assert sorted(f.filename for f in project.files) == [
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0.tar.gz",
    ]
    wheel_file = next(f for f in project.files if f.kind == "wheel")
    assert (
        wheel_file.url
        == "https://files.pythonhosted.org/packages/py3/p/pkg/pkg-1.0-py3-none-any.whl"
    )
    assert wheel_file.sha256 == DIGEST.hex()
    assert wheel_file.requires_python == SpecifierSet(">=3.8")


def test_wheel_metadata() -> None:
    file = DistFile(NormalizedName("w"), Version("1"), "wheel", "w-1-py3-none-any.whl", "u", "0")
    entry = {
        "requires_dist": ["a (>=1)", 'b ; extra == "x"'],
        "provides_extras": ["X"],
        "requires_python": ">=3.6, <4",
    }
    metadata = wheel_metadata(file, entry)
    assert metadata.requires_dist == ("a (>=1)", 'b ; extra == "x"')
    assert metadata.provides_extra == {"x"}
    assert metadata.requires_python == SpecifierSet(">=3.6,<4")
    with pytest.raises(InvalidMetadata, match="requires_dist is not a list of strings"):
        wheel_metadata(file, {"requires_dist": "a"})


def test_sdist_metadata_from_setup_py_data() -> None:
    pyvers = {
        "27": {"install_requires": ["py2only"]},
        "36": {
            "install_requires": "a>=1\n\n# comment\nb; python_version > '3'",
            "extras_require": {
                "x": ["c"],
                "y:sys_platform == 'linux'": ["d; os_name == 'posix'"],
                ":python_version < '3.8'": ["e"],
            },
            "setup_requires": ["pbr"],
            "python_requires": [">=3.6,"],
        },
        "312": "36",
    }
    metadata = sdist_metadata(sdist_file(), pyvers, "312")
    assert metadata.requires_dist == (
        "a>=1",
        "b; python_version > '3'",
        'c; extra == "x"',
        'd; (os_name == "posix") and (sys_platform == \'linux\') and extra == "y"',
        "e; (python_version < '3.8')",
    )
    assert metadata.provides_extra == {"x", "y"}
    assert metadata.requires_python == SpecifierSet(">=3.6")
    assert [str(r) for r in metadata.build_requires] == ["setuptools>=40.8.0", "pbr"]
    base = {r.name for r in metadata.requirements()}
    assert {"a", "b", "e"} <= base


def test_sdist_metadata_names_the_pythons_it_has() -> None:
    pyvers = {"27": {}, "36": "27", "310": "27", "38": "missing"}
    with pytest.raises(InvalidMetadata) as info:
        sdist_metadata(sdist_file("old"), pyvers, "312")
    assert str(info.value) == (
        "pypi-deps-db has no sdist data of old for Python 3.12"
        " (it has data for Python 2.7, 3.6, 3.10)"
    )


@pytest.mark.parametrize(
    ("release", "problem"),
    [
        ({"extras_require": {'x"; os_name=="nt': ["a"]}}, "invalid extra name"),
        ({"extras_require": {"x": ["not a requirement!"]}}, "invalid requirement"),
        ({"install_requires": [1]}, "install_requires is not a list of strings"),
        ({"setup_requires": ["%%%"]}, "invalid requirement"),
    ],
)
def test_sdist_metadata_refuses_broken_data(release: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidMetadata, match=problem):
        sdist_metadata(sdist_file(), {"312": release}, "312")
