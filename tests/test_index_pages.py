"""Index pages as the index serves them: what PEP 503/691/700 allow is read as they say, and
anything else is one error naming the page, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.index import Index
from tests.helpers import lock

WHEEL = "broken-1.0-py3-none-any.whl"


def entry(index: Index, **changes: Any) -> dict[str, Any]:
    """The JSON file entry of broken 1.0's wheel, with some fields changed."""
    values: dict[str, Any] = {
        "filename": WHEEL,
        "url": f"{index.files_url}/{WHEEL}",
        "hashes": {"sha256": index.sha256(WHEEL)},
        "requires-python": None,
        "yanked": False,
        "upload-time": "2024-01-01T00:00:00Z",
        "core-metadata": False,
    }
    values.update(changes)
    return values


def serve(index: Index, document: object) -> None:
    index.fault("/simple/broken/", body=json.dumps(document).encode())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"files": None}, "invalid JSON index page (no list of files)"),
        ([], "invalid JSON index page (no list of files)"),
        ({"files": [5]}, "invalid JSON index page: a file entry is a number, not an object"),
        ({"files": ["x"]}, "invalid JSON index page: a file entry is a string, not an object"),
    ],
)
def test_malformed_json_documents_name_the_page(
    index: Index, tmp_path: Path, document: object, message: str
) -> None:
    index.publish("broken", "1.0")
    serve(index, document)
    result = lock(index, tmp_path, "broken\n")
    assert (result.code, result.err) == (2, f"machci: error: {index.url}/broken/: {message}\n")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"filename": 5}, "'filename' is a number, not a string"),
        ({"url": None}, "'url' is null, not a string"),
        ({"url": ["x"]}, "'url' is a list, not a string"),
        ({"requires-python": 3.8}, "'requires-python' is a number, not a string"),
        (
            {"hashes": ["sha256"]},
            "file 'broken-1.0-py3-none-any.whl': 'hashes' is a list, not an object",
        ),
        ({"hashes": "abc"}, "'hashes' is a string, not an object"),
        ({"hashes": {"sha256": 12}}, "sha256 12 is not 64 hex digits"),
        ({"hashes": {"sha256": "../../../etc/passwd"}}, "sha256 '../../../etc/passwd' is not 64"),
        ({"yanked": 1}, "'yanked' is a number, not a boolean or a reason"),
        ({"upload-time": 20240101}, "upload-time 20240101 is not a string"),
        ({"upload-time": "yesterday"}, "upload-time 'yesterday' is not an ISO 8601 time"),
        ({"core-metadata": 1}, "core-metadata 1 is neither a boolean nor an object"),
        ({"core-metadata": {"sha256": "zz"}}, "core-metadata sha256 'zz' is not 64 hex digits"),
        ({"url": "http://127.0.0.1/files/broken-1.0-py3-none-any.whl\0"}, "it contains '\\x00'"),
        ({"url": "http://127.0.0.1/files/x.whl\n"}, "is not usable: it contains '\\n'"),
        ({"url": "file:///etc/passwd"}, "must start with http:// or https://"),
        ({"filename": "broken-1.0-py3-none-any\x1b.whl"}, "the file name contains '\\x1b'"),
    ],
)
def test_wrong_types_and_values_in_a_file_entry_name_the_page(
    index: Index, tmp_path: Path, changes: dict[str, Any], problem: str
) -> None:
    index.publish("broken", "1.0")
    serve(
        index,
        {"meta": {"api-version": "1.1"}, "name": "broken", "files": [entry(index, **changes)]},
    )
    result = lock(index, tmp_path, "broken\n")
    assert result.code == 2
    assert result.err.startswith(f"machci: error: {index.url}/broken/: invalid JSON index page: ")
    assert problem in result.err
    assert result.err.count("\n") == 1


def test_a_broken_entry_is_found_when_its_version_is_looked_at(
    index: Index, tmp_path: Path
) -> None:
    """Entries are checked completely when a resolution first looks at their version, as pip
    reads a candidate: a bad URL on 1.0 does not stop a lock that takes 2.0, and stops one
    that needs 1.0 with the page's name."""
    index.publish("broken", "1.0")
    index.publish("broken", "2.0")
    newer = "broken-2.0-py3-none-any.whl"
    good = entry(
        index,
        filename=newer,
        url=f"{index.files_url}/{newer}",
        hashes={"sha256": index.sha256(newer)},
    )
    serve(index, {"files": [entry(index, url="file:///etc/passwd"), good]})
    assert lock(index, tmp_path / "newest", "broken\n").versions() == {"broken": "2.0"}
    result = lock(index, tmp_path / "old", "broken<2\n")
    assert (result.code, result.err) == (
        2,
        f"machci: error: {index.url}/broken/: invalid JSON index page: file '{WHEEL}': URL"
        " 'file:///etc/passwd' is not usable: it must start with http:// or https://\n",
    )


def test_an_upload_time_without_a_time_zone_is_an_index_error(index: Index, tmp_path: Path) -> None:
    index.publish("broken", "1.0", upload_time="2024-01-01T00:00:00")
    result = lock(index, tmp_path, "broken\n")
    assert (result.code, result.err) == (
        2,
        f"machci: error: {index.url}/broken/: invalid JSON index page: file"
        " 'broken-1.0-py3-none-any.whl': upload-time '2024-01-01T00:00:00' has no time zone\n",
    )


def test_files_machci_cannot_use_are_not_checked(index: Index, tmp_path: Path) -> None:
    """An index may list other files (a .exe, an .egg); only distributions must be sound."""
    index.publish("broken", "1.0")
    other = entry(index, filename="broken-1.0.win32.exe", url="not a url\0")
    serve(index, {"files": [other, entry(index)]})
    assert lock(index, tmp_path, "broken\n").versions() == {"broken": "1.0"}


def test_an_empty_data_yanked_attribute_means_yanked(index: Index, tmp_path: Path) -> None:
    """PEP 592: the attribute's presence yanks the file; its value is only the reason."""
    index.publish("gone", "1.0")
    index.publish("gone", "2.0", yanked=True)  # served as data-yanked=""
    index.json_api = False
    assert 'data-yanked=""' in _html(index, "gone")
    assert lock(index, tmp_path / "free", "gone\n", snapshot=None).versions() == {"gone": "1.0"}
    pinned = lock(index, tmp_path / "pinned", "gone==2.0\n", snapshot=None)
    assert pinned.versions() == {"gone": "2.0"}


def test_a_bad_hash_in_an_html_page_names_the_page(index: Index, tmp_path: Path) -> None:
    index.publish("broken", "1.0")
    index.fault(
        "/simple/broken/",
        body=f'<a href="{index.files_url}/{WHEEL}#sha256=../../x">{WHEEL}</a>'.encode(),
    )
    index.json_api = False
    result = lock(index, tmp_path, "broken\n", snapshot=None)
    assert (result.code, result.err) == (
        2,
        f"machci: error: {index.url}/broken/: invalid HTML index page: file"
        f" '{WHEEL}': sha256 '../../x' is not 64 hex digits\n",
    )


def _html(index: Index, name: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{index.url}/{name}/") as reply:
        text: str = reply.read().decode()
    return text


def test_files_of_another_project_on_a_page_are_skipped_with_one_warning(
    index: Index, tmp_path: Path
) -> None:
    """`a`'s page listing good_b 9.0's wheel and sdist must not make them a 9.0 (pip and uv
    skip such files): a 1.0 is locked, with one warning naming the page and the files, cold
    and warm alike."""
    index.publish("a", "1.0")
    foreign = [
        index.publish("good_b", "9.0").filename,
        index.publish("good_b", "9.0", kind="sdist").filename,
    ]
    for filename in foreign:
        index.list_on("a", filename)
    warning = (
        f"machci: warning: {index.url}/a/: skipping files named for another project than a,"
        f" as pip and uv do: {foreign[0]!r}, {foreign[1]!r}\n"
    )
    for _run in ("cold", "warm"):
        result = lock(index, tmp_path, "a\n")
        assert result.code == 0, result.err
        assert result.versions() == {"a": "1.0"}
        assert result.err == warning
        assert not any(name in result.out for name in (*foreign, "good_b", "good-b", "9.0"))


def test_another_projects_file_never_satisfies_the_requirement(
    index: Index, tmp_path: Path
) -> None:
    index.publish("a", "1.0", kind="sdist")
    index.publish("good_b", "9.0")
    index.list_on("a", "good_b-9.0-py3-none-any.whl")
    result = lock(index, tmp_path, "a>=2\n")
    assert result.code != 0
    assert "good_b-9.0-py3-none-any.whl" in result.err
    assert "9.0" not in result.err.replace("good_b-9.0", "")
