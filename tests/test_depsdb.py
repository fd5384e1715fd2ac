"""The pypi-deps-db source end to end: a database in the real format, fetched as GitHub
tarballs from 127.0.0.1, checked against its NAR hash, and resolved from."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from machci.hashes import to_nix32
from tests.fixtures.depsdb import DepsDb, Pin, Tarballs, content, publish
from tests.helpers import machci

X86 = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64"
FILES = "https://files.pythonhosted.org/packages"

CONFIG = """\
requirements: [requirements.txt]
python: "3.12"
systems: [x86_64-linux, aarch64-linux]
data:
  source: pypi-deps-db
{pin}
"""


def small_db() -> DepsDb:
    db = DepsDb()
    # An sdist whose data for 3.10 and 3.12 is 3.6's (pyver references), with extras (one
    # behind a marker), a marker-only entry, two requirements in one string and a comment.
    db.sdist(
        "app",
        "1.0",
        {
            "36": {
                "install_requires": ["six>=1.0", "fast\n# the engine\nzope.interface"],
                "extras_require": {
                    "web": ["flask-lite"],
                    'cli:platform_machine == "aarch64"': ["armtool"],
                    ':platform_machine == "x86_64"': ["x86tool"],
                },
                "setup_requires": ["setup-helper"],
                "python_requires": [">=3.6,"],
            },
            "310": "36",
            "312": "36",
        },
    )
    db.sdist("oldref", "1.0", {"312": {"install_requires": ["six"]}})
    db.sdist("oldref", "1.1", "1.0")  # a version sharing another version's entry
    db.sdist("legacy", "1.0", {"27": {"install_requires": ["six"]}, "36": "27"})
    six = db.wheel("six", "1.16.0", "py2.py3-none-any", {})
    db.wheel("six", "1.15.0", "py2.py3-none-any", f"1.16.0@{six}")
    fast = db.wheel("fast", "2.0", X86, {"requires_dist": ["six"], "requires_python": ">=3.8"})
    db.wheel("fast", "2.0", ARM, f"2.0@{fast}")  # the aarch64 wheel shares its entry
    db.wheel("fast", "2.0", "py3-none-any", {"requires_dist": ["six"]})
    db.wheel("fast", "3.0", "py3-none-any", None)  # never crawled: not offered
    db.wheel("zope.interface", "5.0", "py3-none-any", {})
    db.wheel(
        "flask-lite",
        "1.0",
        "py3-none-any",
        {"requires_dist": ['gunicorn ; extra == "serve"'], "provides_extras": ["serve"]},
    )
    for name in ("armtool", "x86tool", "setup-helper"):
        db.wheel(name, "1.0", "py3-none-any", {})
    db.wheel("setuptools", "69.0.0", "py3-none-any", {"requires_python": ">=3.8"})
    return db


def make_project(directory: Path, pin: str, requirements: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "requirements.txt").write_text(requirements)
    (directory / "machci.yaml").write_text(CONFIG.format(pin=pin))
    return directory


def pinned(pin: Pin) -> str:
    return f"  rev: {pin.rev}\n  sha256: {pin.sha256}   # NAR hash of the unpacked tarball"


def sha256(filename: str) -> str:
    return hashlib.sha256(content(filename)).hexdigest()


@pytest.fixture
def pin(tarballs: Tarballs, tmp_path: Path) -> Pin:
    return publish(small_db(), tarballs, tmp_path / "published")


def test_lock_resolves_from_the_database(pin: Pin, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", pinned(pin), "app[web,cli]\noldref\n")
    result = machci(project, "lock", "--json")
    assert result.code == 0, result.err
    assert result.lock["data"] == {
        "source": "pypi-deps-db",
        "repository": "DavHau/pypi-deps-db",
        "rev": pin.rev,
    }
    common = {
        "app": "1.0",
        "fast": "2.0",
        "flask-lite": "1.0",
        "oldref": "1.1",
        "setup-helper": "1.0",
        "setuptools": "69.0.0",
        "six": "1.16.0",
        "zope-interface": "5.0",
    }
    assert result.versions("x86_64-linux") == {**common, "x86tool": "1.0"}
    assert result.versions("aarch64-linux") == {**common, "armtool": "1.0"}

    x86, arm = result.packages("x86_64-linux"), result.packages("aarch64-linux")
    wheel = f"fast-2.0-{X86}.whl"
    assert x86["fast"]["file"] == {
        "filename": wheel,
        "url": f"{FILES}/cp312/f/fast/{wheel}",
        "sha256": sha256(wheel),
    }
    assert arm["fast"]["file"]["filename"] == f"fast-2.0-{ARM}.whl"
    app = x86["app"]
    assert app["provider"] == "sdist"
    assert app["file"]["url"] == f"{FILES}/source/a/app/app-1.0.tar.gz"
    assert app["extras"] == ["cli", "web"]
    assert app["build_requires"] == ["setup-helper", "setuptools"]
    assert app["dependencies"] == ["fast", "flask-lite", "six", "x86tool", "zope-interface"]
    assert "armtool" in arm["app"]["dependencies"]
    assert x86["zope-interface"]["file"]["url"].startswith(f"{FILES}/py3/z/zope.interface/")


def test_the_tree_is_kept_under_its_nar_hash(pin: Pin, tarballs: Tarballs, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", pinned(pin), "six\n")
    assert machci(project, "lock").code == 0
    downloads = list(tarballs.requests)
    assert len(downloads) == 4  # two tarballs, each through GitHub's redirect
    again = machci(project, "lock", "--offline")
    assert again.code == 0, again.err
    assert tarballs.requests == downloads
    assert (project / ".cache" / "v2" / "trees" / pin.sha256 / "PYPI_FETCHER_COMMIT").is_file()


def test_sync_names_the_pin_in_the_header(pin: Pin, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", pinned(pin), "six\n")
    assert machci(project, "sync").code == 1
    text = (project / "default.nix").read_text()
    assert f"# machci-data: pypi-deps-db DavHau/pypi-deps-db {pin.rev}\n" in text
    assert machci(project, "check").code == 0


def test_a_nar_hash_mismatch_is_one_error_and_changes_nothing(pin: Pin, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", pinned(pin), "six\n")
    assert machci(project, "sync").code == 1
    before = (project / "default.nix").read_bytes()
    wrong = to_nix32(hashlib.sha256(b"another tree").digest())
    config = project / "machci.yaml"
    config.write_text(config.read_text().replace(pin.sha256, wrong))
    shutil.rmtree(project / ".cache")

    result = machci(project, "sync")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert result.err.startswith(f"machci: error: DavHau/pypi-deps-db at {pin.rev}: the tarball's")
    assert f"NAR hash is {pin.sha256}" in result.err
    assert f"data: sha256 in machci.yaml pins {wrong}" in result.err
    assert (project / "default.nix").read_bytes() == before
    trees = project / ".cache" / "v2" / "trees"
    assert not trees.exists() or not any(trees.iterdir())
    assert not any((project / ".cache" / "v2" / "tmp").iterdir())


def test_a_python_the_data_lacks_is_named(pin: Pin, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", pinned(pin), "legacy\n")
    result = machci(project, "lock")
    assert result.code == 1
    reason = (
        "pypi-deps-db has no sdist data of legacy for Python 3.12 (it has data for Python 2.7, 3.6)"
    )
    assert f"machci: warning: skipping legacy 1.0 (legacy-1.0.tar.gz): {reason}" in result.err
    assert f"legacy: legacy-1.0.tar.gz: {reason}" in result.err


def test_a_checkout_is_read_in_place(pin: Pin, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", "  path: deps-db", "app[web]\n")
    shutil.copytree(pin.tree, project / "deps-db")
    result = machci(project, "lock", "--json", "--system", "x86_64-linux")
    assert result.code == 0, result.err
    assert result.lock["data"] == {"source": "pypi-deps-db", "path": "deps-db"}
    assert result.versions()["flask-lite"] == "1.0"
    assert machci(project, "sync").code == 1
    assert "# machci-data: pypi-deps-db deps-db checkout\n" in (project / "default.nix").read_text()


def test_a_missing_checkout_is_named(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", "  path: nowhere", "six\n")
    result = machci(project, "lock")
    assert result.code == 2
    assert "data: path:" in result.err and "is not a directory" in result.err


def test_pypi_options_do_not_apply(pin: Pin, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", pinned(pin), "six\n")
    result = machci(project, "lock", "--snapshot", "2025-01-01T00:00:00Z")
    assert result.code == 2
    assert "machci.yaml's data source is pypi-deps-db" in result.err


def test_a_tarball_over_the_limit_is_refused(
    pin: Pin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACHCI_MAX_ARCHIVE_BYTES", "100")
    project = make_project(tmp_path / "project", pinned(pin), "six\n")
    result = machci(project, "lock")
    assert result.code == 2
    assert "data tarball larger than the limit of 100 bytes" in result.err
    assert "MACHCI_MAX_ARCHIVE_BYTES" in result.err


def test_an_unknown_commit_and_offline_are_named(pin: Pin, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", pinned(pin).replace(pin.rev, "f" * 40), "six\n")
    result = machci(project, "lock")
    assert result.code == 2
    assert f"/DavHau/pypi-deps-db/tarball/{'f' * 40}: the server answered HTTP 404" in result.err
    offline = machci(project, "lock", "--offline")
    assert offline.code == 2
    assert "offline: " in offline.err and "is not in the cache" in offline.err
