"""Index pages reduced to the files a run can use: what is kept, what is checked, and that the
listing a warm run reads back is the one it stored."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.version import Version

from machci.config.model import format_snapshot
from machci.dists import DistFile, dist_file
from machci.errors import SourceError
from machci.inputs.targets import Target
from machci.sources.pypi.pages import (
    Listed,
    Listing,
    WheelFilter,
    _formatted_time,
    _upload_time,
    listing,
    listing_key,
)
from tests.fixtures.index import Index
from tests.helpers import lock

URL = "https://index.example/simple/demo/"
JSON = "application/vnd.pypi.simple.v1+json"
FILES = "https://files.example/"
X86 = WheelFilter(str(t) for t in Target("x86_64-linux", "3.12").tags)


def page(*files: dict[str, object]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": files}).encode()


def entry(filename: str, **extra: object) -> dict[str, object]:
    return {
        "filename": filename,
        "url": FILES + filename,
        "hashes": {"sha256": "ab" * 32},
        "upload-time": "2024-01-01T00:00:00Z",
        **extra,
    }


def dist_files(found: Listing) -> tuple[DistFile, ...]:
    """Every file of a listing, newest version first (per kind), built as a resolution would."""
    releases = found.by_kind(URL, JSON).values()
    return tuple(f for of_kind in releases for release in of_kind for f in release.files)


def kept(body: bytes, snapshot: datetime | None = None) -> list[str]:
    found = listing(URL, "application/vnd.pypi.simple.v1+json", body, X86, snapshot, "demo")
    return sorted(f.filename for f in dist_files(found))


def test_only_files_some_target_can_use_are_kept() -> None:
    body = page(
        entry("demo-1.0.tar.gz"),
        entry("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        entry("demo-1.0-cp312-cp312-win_amd64.whl"),
        entry("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
        entry("demo-1.0-py3-none-any.whl"),
        entry("demo-1.0.exe"),
    )
    assert kept(body) == [
        "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.tar.gz",
    ]


def test_a_version_with_no_usable_file_keeps_one_to_read_its_metadata() -> None:
    body = page(
        entry("demo-2.0-cp312-cp312-win_amd64.whl"),
        entry("demo-2.0-cp312-cp312-macosx_11_0_arm64.whl"),
        entry("demo-1.0-py3-none-any.whl"),
    )
    assert kept(body) == ["demo-1.0-py3-none-any.whl", "demo-2.0-cp312-cp312-win_amd64.whl"]


def test_the_snapshot_hides_later_and_undated_files() -> None:
    body = page(
        entry("demo-1.0.tar.gz"),
        entry("demo-2.0.tar.gz", **{"upload-time": "2026-01-01T00:00:00Z"}),
        entry("demo-3.0.tar.gz", **{"upload-time": None}),
    )
    found = listing(URL, "application/json", body, X86, datetime(2025, 1, 1, tzinfo=UTC), "demo")
    assert [f.filename for f in dist_files(found)] == ["demo-1.0.tar.gz"]
    assert (found.newer_than_snapshot, found.without_upload_time) == (1, 1)


def test_a_broken_entry_is_an_error_when_kept_and_ignored_when_not() -> None:
    bad_url = {"url": "file:///etc/passwd"}
    unusable = page(
        entry("demo-1.0.tar.gz"), entry("demo-1.0-cp312-cp312-win_amd64.whl", **bad_url)
    )
    assert kept(unusable) == ["demo-1.0.tar.gz"]
    with pytest.raises(SourceError) as error:
        kept(page(entry("demo-1.0-py3-none-any.whl", **bad_url)))
    assert str(error.value) == (
        f"{URL}: invalid JSON index page: file 'demo-1.0-py3-none-any.whl': URL"
        " 'file:///etc/passwd' is not usable: it must start with http:// or https://"
    )
    with pytest.raises(SourceError, match="sha256 'nope' is not 64 hex digits"):
        kept(page(entry("demo-1.0.tar.gz", hashes={"sha256": "nope"})))
    with pytest.raises(SourceError, match="has no time zone"):  # every date is read
        kept(
            page(entry("demo-1.0-cp312-cp312-win_amd64.whl", **{"upload-time": "2024-01-01"})),
            datetime(2025, 1, 1, tzinfo=UTC),
        )


def test_a_versions_entries_are_checked_when_it_is_looked_at() -> None:
    """Reducing reads each entry's name and upload time only; the rest of a file's entry is
    checked when a run first asks for its version's files, and an error then names the page."""
    body = page(entry("demo-2.0.tar.gz"), entry("demo-1.0.tar.gz", url="file:///etc/passwd"))
    found = listing(URL, JSON, body, X86, None, "demo")
    newest, oldest = found.by_kind(URL, JSON)["sdist"]
    assert [f.filename for f in newest.files] == ["demo-2.0.tar.gz"]
    assert oldest.version == Version("1.0")
    with pytest.raises(SourceError) as error:
        _ = oldest.files
    assert str(error.value) == (
        f"{URL}: invalid JSON index page: file 'demo-1.0.tar.gz': URL 'file:///etc/passwd' is"
        " not usable: it must start with http:// or https://"
    )


def test_size_and_upload_time_are_kept_for_lock_files() -> None:
    """PEP 700's size and upload-time reach the DistFile (pylock.toml records both); the
    upload time in one spelling, UTC with a Z."""
    body = page(
        entry("demo-1.0.tar.gz", size=1234, **{"upload-time": "2024-01-01T02:00:00.5+02:00"}),
        entry("demo-1.0-py3-none-any.whl"),
    )
    found = dist_files(listing(URL, "application/json", body, X86, None, "demo"))
    assert [(f.size, f.upload_time) for f in found] == [
        (1234, "2024-01-01T00:00:00.5Z"),
        (None, "2024-01-01T00:00:00Z"),
    ]
    for size in (-1, "12", True, 1.5):
        with pytest.raises(SourceError, match=r"size .* is not a number of bytes"):
            kept(page(entry("demo-1.0.tar.gz", size=size)))


def test_a_wheel_name_with_an_invalid_tag_is_skipped() -> None:
    assert kept(page(entry("demo-1.0-py36+-none-any.whl"), entry("demo-1.0.tar.gz"))) == [
        "demo-1.0.tar.gz"
    ]


def test_html_pages_reduce_alike() -> None:
    body = (
        b'<a href="https://files.example/demo-1.0-py3-none-any.whl#sha256='
        + b"cd" * 32
        + b'" data-requires-python="&gt;=3.8" data-core-metadata="sha256='
        + b"ef" * 32
        + b'">demo-1.0-py3-none-any.whl</a>'
        b'<a href="https://files.example/demo-1.0-cp39-cp39-win32.whl">x</a>'
    )
    found = listing(URL, "text/html", body, X86, None, "demo")
    (only,) = dist_files(found)
    assert only.filename == "demo-1.0-py3-none-any.whl"
    assert (only.sha256, only.metadata_sha256) == ("cd" * 32, "ef" * 32)
    assert str(only.requires_python) == ">=3.8"


def assert_survives_text(found: Listing) -> None:
    again = Listing.from_text(found.to_text())
    assert again == found
    assert dist_files(again) == dist_files(found)


def test_a_listing_survives_its_json_and_rejects_damage() -> None:
    body = page(entry("demo-1.0-py3-none-any.whl", **{"requires-python": ">=3.9"}))
    found = listing(URL, "application/json", body, X86, None, "demo")
    assert_survives_text(found)
    assert Listing.from_text('{"files": []}') is None
    assert Listing.from_text('[0, 0, [], [["wheel", 2]]]\n1.0\t[]') is None  # a line short
    assert Listing.from_text("[0, 0, []]\nwheel\t1.0\t[]") is None  # an earlier record kind
    assert Listing.from_text("5") is None


def test_files_named_for_another_project_are_left_out_and_named() -> None:
    body = page(
        entry("demo-1.0-py3-none-any.whl"),
        entry("Demo-1.0.tar.gz"),
        entry("good_b-9.0-py3-none-any.whl"),
        entry("good_b-9.0.tar.gz"),
        entry("good-b-9.0.zip"),
        entry("demo_x-9.0-cp312-cp312-win_amd64.whl"),  # unusable, foreign all the same
        entry("good_b-9.1-py3-none-any.whl", **{"upload-time": "2030-01-01T00:00:00Z"}),
        entry("good_b-9.0.exe"),  # not a distribution: never kept, not named
    )
    found = listing(URL, "application/json", body, X86, datetime(2025, 1, 1, tzinfo=UTC), "demo")
    assert [f.filename for f in dist_files(found)] == [
        "demo-1.0-py3-none-any.whl",
        "Demo-1.0.tar.gz",
    ]
    assert found.foreign == (
        "good_b-9.0-py3-none-any.whl",
        "good_b-9.0.tar.gz",
        "good-b-9.0.zip",
        "demo_x-9.0-cp312-cp312-win_amd64.whl",
    )
    assert_survives_text(found)


def test_the_listing_key_changes_with_body_targets_and_snapshot() -> None:
    arm = WheelFilter(str(t) for t in Target("aarch64-linux", "3.12").tags)
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    keys = {
        listing_key("a" * 64, X86, None, "demo"),
        listing_key("b" * 64, X86, None, "demo"),
        listing_key("a" * 64, arm, None, "demo"),
        listing_key("a" * 64, X86, moment, "demo"),
        listing_key("a" * 64, X86, None, "other"),
    }
    assert len(keys) == 5


def test_diagnostics_name_files_for_other_systems(index: Index, tmp_path: Path) -> None:
    """Files no target can use are not kept, but a failure still lists them."""
    index.publish("winonly", "1.0", tag="cp312-cp312-win_amd64")
    index.publish("winonly", "1.0", tag="cp312-cp312-macosx_11_0_arm64")
    result = lock(index, tmp_path, "winonly\n")
    assert result.code == 1
    assert (
        "its files: winonly-1.0-cp312-cp312-macosx_11_0_arm64.whl,"
        " winonly-1.0-cp312-cp312-win_amd64.whl"
    ) in result.err


def test_old_uploads_with_a_dash_in_the_version_are_left_out_but_not_foreign() -> None:
    """`demo-1.0.2-2.tar.gz` is an old upload of demo (packaging reads the name `demo-1.0.2`):
    left out, and not reported as another project's file, which `other-9.0.tar.gz` is."""
    body = page(
        entry("demo-1.0.tar.gz"),
        entry("demo-1.0.2-2.tar.gz"),
        entry("Demo-1.0.2-r1.tar.gz"),
        entry("other-9.0.tar.gz"),
        entry("demo_evil-9.0.tar.gz"),
    )
    found = listing(URL, "application/json", body, X86, None, "demo")
    assert [f.filename for f in dist_files(found)] == ["demo-1.0.tar.gz"]
    assert found.foreign == ("other-9.0.tar.gz", "demo_evil-9.0.tar.gz")


def test_releases_are_grouped_by_version_newest_first() -> None:
    """Versions order as versions, not as text (10.0 after 9.0), and spellings of one version
    share its release; within a release the files keep the page's order."""
    body = page(
        entry("demo-9.0.tar.gz"),
        entry("demo-10.0-py3-none-any.whl"),
        entry("demo-1.0.0.tar.gz"),
        entry("demo-10.0.tar.gz"),
        entry("demo-1.0.zip"),
        entry("demo-10.0-py2.py3-none-any.whl"),
    )
    found = listing(URL, "application/json", body, X86, None, "demo")
    releases = {
        kind: [(r.version, [f.filename for f in r.files]) for r in of_kind]
        for kind, of_kind in found.by_kind(URL, JSON).items()
    }
    assert releases == {
        "wheel": [
            (Version("10.0"), ["demo-10.0-py3-none-any.whl", "demo-10.0-py2.py3-none-any.whl"])
        ],
        "sdist": [
            (Version("10.0"), ["demo-10.0.tar.gz"]),
            (Version("9.0"), ["demo-9.0.tar.gz"]),
            (Version("1.0.0"), ["demo-1.0.0.tar.gz", "demo-1.0.zip"]),
        ],
    }
    assert_survives_text(found)


def test_a_listed_file_holds_dist_files_arguments_in_order() -> None:
    """Cached rows are passed to dist_file positionally (dists.Release)."""
    assert Listed._fields == tuple(inspect.signature(dist_file).parameters)


@pytest.mark.parametrize("line", ['1.0\t[["too", "short"]]', "1.0\t[[", "1.0", "not a version\t[]"])
def test_a_damaged_release_in_the_cache_is_an_error_not_an_empty_release(line: str) -> None:
    damaged = Listing.from_text(f'[0, 0, [], [["wheel", 1]]]\n{line}')
    assert damaged is not None
    (release,) = damaged.by_kind(URL, JSON)["wheel"]
    with pytest.raises(SourceError, match="cached index listing is damaged"):
        _ = release.version, release.files


@pytest.mark.parametrize(
    "given",
    [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.000000Z",
        "2024-01-01T00:00:00.120000Z",
        "2024-02-29T12:34:56.000100Z",
        "9999-12-31T23:59:59.999999Z",
        "2024-01-01T01:00:00+01:00",  # not PyPI's form: through datetime
        "2024-01-01T00:00:00.5Z",
        "2024-01-01T00:00:00.123Z",
    ],
)
def test_upload_times_are_written_as_format_snapshot_writes_them(given: str) -> None:
    moment = _upload_time(given)
    assert moment is not None
    assert _formatted_time(given, moment) == format_snapshot(moment)
