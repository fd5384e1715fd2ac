"""The PyPI snapshot source and its cache, under faults: every failure is one clear message."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import pytest

from machci.backends.buildenv import BuildEnvironments
from machci.backends.sdist import sdist_info
from machci.sources.cache import Cache, CachedPage
from machci.sources.freshness import Freshness
from tests.fixtures.builders import Dist, build_bytes, core_metadata
from tests.fixtures.index import Index
from tests.helpers import lock


def test_json_page_is_preferred_and_html_is_the_fallback(index: Index, tmp_path: Path) -> None:
    index.publish("both", "1.0", requires_python=">=3.8")
    index.publish("both", "2.0", requires_python=">=3.13")
    index.publish("both", "0.9", yanked="bad")
    index.json_api = False
    result = lock(index, tmp_path / "html", "both\n", snapshot=None)
    assert result.versions() == {"both": "1.0"}  # data-requires-python and data-yanked honoured
    snapshot = lock(index, tmp_path / "html-snap", "both\n")
    assert snapshot.code == 1
    assert "no upload-time" in snapshot.err
    index.json_api = True
    assert lock(index, tmp_path / "json", "both\n").versions() == {"both": "1.0"}


def test_metadata_comes_from_pep658_file_without_downloading_wheel(
    index: Index, tmp_path: Path
) -> None:
    index.publish("meta", "1.0", requires_dist=("dep",))
    index.publish("dep", "1.0")
    assert lock(index, tmp_path, "meta\n").code == 0
    paths = [path for _method, path in index.requests]
    assert "/files/meta-1.0-py3-none-any.whl.metadata" in paths
    assert "/files/meta-1.0-py3-none-any.whl" not in paths


def test_metadata_from_the_wheel_when_no_metadata_file(index: Index, tmp_path: Path) -> None:
    index.publish("nometa", "1.0", requires_dist=("dep",), serve_metadata=False)
    index.publish("dep", "1.0")
    result = lock(index, tmp_path, "nometa\n")
    assert result.packages()["nometa"]["dependencies"] == ["dep"]
    assert ("GET", "/files/nometa-1.0-py3-none-any.whl") in index.requests


@pytest.mark.parametrize("times, code", [(1, 0), (None, 2)])
def test_server_errors_are_retried_then_reported(
    index: Index, tmp_path: Path, times: int | None, code: int
) -> None:
    index.publish("flaky", "1.0")
    index.fault("/simple/flaky/", status=503, times=times)
    result = lock(index, tmp_path, "flaky\n")
    assert result.code == code, result.err
    if code:
        assert f"{index.url}/flaky/: the index answered HTTP 503" in result.err
        assert "Traceback" not in result.err


def test_timeout_is_reported_with_the_url(index: Index, tmp_path: Path) -> None:
    index.publish("slow", "1.0")
    index.fault("/simple/slow/", delay=1.0)
    result = lock(index, tmp_path, "slow\n", "--timeout", "0.2")
    assert result.code == 2
    assert f"cannot fetch {index.url}/slow/: timed out" in result.err


def test_unreachable_index(tmp_path: Path) -> None:
    class Closed:
        url = "http://127.0.0.1:9/simple"

    result = lock(Closed(), tmp_path, "anything\n", "--timeout", "0.5")  # type: ignore[arg-type]
    assert result.code == 2
    assert "cannot fetch http://127.0.0.1:9/simple/anything/" in result.err


def test_invalid_json_page(index: Index, tmp_path: Path) -> None:
    index.publish("broken", "1.0")
    index.fault("/simple/broken/", body=b"{not json")
    result = lock(index, tmp_path, "broken\n")
    assert result.code == 2
    assert f"{index.url}/broken/: invalid JSON index page" in result.err


def test_metadata_hash_mismatch(index: Index, tmp_path: Path) -> None:
    index.publish("tampered", "1.0")
    index.fault("tampered-1.0-py3-none-any.whl.metadata", body=b"Name: evil\n")
    result = lock(index, tmp_path, "tampered\n")
    assert result.code == 2
    assert "metadata hash mismatch" in result.err
    assert "tampered-1.0-py3-none-any.whl.metadata" in result.err


def test_truncated_download_is_retried_then_reported(index: Index, tmp_path: Path) -> None:
    index.publish("cut", "1.0", serve_metadata=False)
    index.fault("/files/cut-1.0-py3-none-any.whl", truncate=10, times=1)
    assert lock(index, tmp_path / "once", "cut\n").code == 0
    index.fault("/files/cut-1.0-py3-none-any.whl", truncate=10)
    result = lock(index, tmp_path / "always", "cut\n")
    assert result.code == 2
    assert "cut-1.0-py3-none-any.whl" in result.err
    assert "truncated" in result.err or "hash mismatch" in result.err


def test_corrupted_cache_entry_is_refetched(index: Index, tmp_path: Path) -> None:
    index.publish("cached", "1.0", requires_dist=("dep",))
    index.publish("dep", "1.0")
    first = lock(index, tmp_path, "cached\n")
    blobs = list((tmp_path / ".cache").rglob("blobs/*"))
    assert blobs
    for blob in blobs:
        blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    before = len(index.requests)
    second = lock(index, tmp_path, "cached\n")
    assert second.out == first.out
    assert any(path.endswith(".metadata") for _m, path in index.requests[before:])


def test_a_page_body_that_is_not_its_records_is_fetched_again(index: Index, tmp_path: Path) -> None:
    """A page's record and body share a file; a body that no longer has the record's digest
    is discarded when a run needs it (here: a listing for another system) and fetched again."""
    index.publish("paged", "1.0")
    assert lock(index, tmp_path, "paged\n").versions() == {"paged": "1.0"}
    (path,) = (tmp_path / ".cache").rglob("pages/*.page")
    record, body = path.read_bytes().split(b"\n", 1)
    path.write_bytes(record + b"\n" + body[:-1] + b"!")
    before = len(index.requests)
    again = lock(index, tmp_path, "paged\n", systems=("aarch64-linux",))
    assert again.versions("aarch64-linux") == {"paged": "1.0"}
    assert ("GET", "/simple/paged/") in index.requests[before:]
    repaired_record, repaired = path.read_bytes().split(b"\n", 1)
    assert repaired == body
    assert json.loads(repaired_record)["digest"] == json.loads(record)["digest"]


def test_a_revalidated_page_renews_its_record_without_writing_its_body_again(
    tmp_path: Path,
) -> None:
    """A 304 renews a page's freshness in a small record beside it; a new body replaces both."""
    cache = Cache(tmp_path)
    url = "https://index.example/simple/demo/"
    first = CachedPage(
        url, "application/json", hashlib.sha256(b"one").hexdigest(), Freshness(1.0, 600.0), '"e1"'
    )
    cache.put_page(url, first, b"one")
    (stored,) = tmp_path.rglob("pages/*.page")
    written = stored.stat().st_mtime_ns
    renewed = CachedPage(url, "application/json", first.digest, Freshness(2000.0, 600.0), '"e1"')
    cache.put_page(url, renewed)
    assert cache.page(url) == renewed
    assert cache.page_body(url, renewed) == b"one"
    assert stored.stat().st_mtime_ns == written  # the body was not written again
    second = CachedPage(
        url,
        "application/json",
        hashlib.sha256(b"two").hexdigest(),
        Freshness(3000.0, 600.0),
        '"e2"',
    )
    cache.put_page(url, second, b"two")
    assert cache.page(url) == second
    assert cache.page_body(url, second) == b"two"
    assert [p.suffix for p in tmp_path.rglob("pages/*")] == [".page"]


def test_offline_uses_only_the_cache(index: Index, tmp_path: Path) -> None:
    index.publish("local", "1.0")
    online = lock(index, tmp_path, "local\n")
    before = len(index.requests)
    offline = lock(index, tmp_path, "local\n", "--offline")
    assert offline.out == online.out
    assert len(index.requests) == before
    missing = lock(index, tmp_path / "empty", "local\n", "--offline")
    assert missing.code == 2
    assert "offline:" in missing.err and "/simple/local/ is not in the cache" in missing.err


def test_warm_run_revalidates_pages_with_etags(index: Index, tmp_path: Path) -> None:
    index.publish("etag", "1.0")
    assert lock(index, tmp_path, "etag\n").code == 0
    before = len(index.requests)
    assert lock(index, tmp_path, "etag\n").code == 0
    again = [path for _m, path in index.requests[before:]]
    assert again == ["/simple/etag/"]  # metadata came from the cache


def test_cache_blob_round_trip_and_corruption(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    digest = hashlib.sha256(b"hello").hexdigest()
    calls: list[int] = []

    def fetch() -> bytes:
        calls.append(1)
        return b"hello"

    assert cache.blob(digest) is None
    assert cache.blob_or_fetch(digest, fetch) == b"hello"
    assert cache.blob_or_fetch(digest, fetch, lock=False) == b"hello"
    assert calls == [1]
    path = next(tmp_path.rglob(digest))
    path.write_bytes(b"HELLO")
    assert cache.blob(digest) is None
    assert not path.exists()
    assert cache.blob_or_fetch(digest, fetch) == b"hello"
    assert calls == [1, 1]


@pytest.mark.parametrize(
    ("recorded", "read"),
    [
        ({}, ""),  # recorded before pages were kept as they came: inflated already
        ({"encoding": ""}, ""),
        ({"encoding": "gzip"}, "gzip"),
        ({"encoding": "br"}, None),  # no coding machci reads: damage, fetched again
        ({"encoding": ["gzip"]}, None),
        ({"encoding": None}, None),
    ],
)
def test_a_page_record_keeps_the_coding_of_its_body(
    tmp_path: Path, recorded: dict[str, object], read: str | None
) -> None:
    cache = Cache(tmp_path)
    url = "https://index.example/simple/demo/"
    page = CachedPage(
        url, "application/json", "ab" * 32, Freshness(1.0, 600.0), '"e"', None, "gzip"
    )
    cache.put_page(url, page, b"\x1f\x8b...")
    assert cache.page(url) == page
    path = next(tmp_path.rglob("pages/*.page"))
    line, body = path.read_bytes().split(b"\n", 1)
    assert body == b"\x1f\x8b..."  # the body follows its record, as it came
    record = json.loads(line)
    del record["encoding"]
    path.write_bytes(json.dumps({**record, **recorded}).encode() + b"\n" + body)
    found = cache.page(url)
    assert (found.encoding if found is not None else None) == read


def test_concurrent_runs_share_one_cache(index: Index, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from machci.config.model import Config, DataRevision, RequirementInput
    from machci.config.options import SourceOptions
    from machci.inputs.spec import build_spec
    from machci.resolve.locking import lock as do_lock

    for i in range(8):
        index.publish(f"pkg{i}", "1.0", requires_dist=(f"pkg{i + 1}",) if i < 7 else ())
    (tmp_path / "requirements.txt").write_text("pkg0\n")
    config = Config(
        requirements=(RequirementInput(tmp_path / "requirements.txt"),),
        data=DataRevision(index=index.url),
    )
    spec = build_spec(config, tmp_path)
    options = SourceOptions(cache_dir=tmp_path / "shared-cache")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: do_lock(spec, options).dumps(), range(4)))
    assert len(set(results)) == 1
    with contextlib.suppress(FileNotFoundError):
        leftovers = list((tmp_path / "shared-cache").rglob("*.tmp"))
        assert leftovers == []


def test_sdist_backend_runs_with_its_build_requirements_installed(
    index: Index, tmp_path: Path
) -> None:
    # The backend only needs its in-tree code, but pip must still install what
    # [build-system].requires names, from the same index, before the hook runs.
    index.publish("helper-build", "1.0")
    index.publish(
        "needsbuild",
        "1.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        requires_dist=("leaf",),
        build_requires=("helper-build",),
    )
    index.publish("leaf", "1.0")
    result = lock(index, tmp_path, "needsbuild\n")
    package = result.packages()["needsbuild"]
    assert package["dependencies"] == ["leaf"]
    assert package["build_requires"] == ["helper-build"]
    assert ("GET", "/files/helper_build-1.0-py3-none-any.whl") in index.requests


def test_sdist_build_requirement_missing_from_the_index(index: Index, tmp_path: Path) -> None:
    index.publish(
        "brokenbuild",
        "1.0",
        kind="sdist",
        dynamic=("Requires-Dist",),
        build_requires=("not-published",),
    )
    result = lock(index, tmp_path, "brokenbuild\n")
    assert result.code == 2  # its metadata cannot be prepared: an error, not a skipped version
    assert result.err.startswith(
        "machci: error: cannot prepare the metadata of brokenbuild 1.0 (brokenbuild-1.0.tar.gz):"
        " cannot install build requirements ['not-published']"
    )
    assert "not-published" in result.err.split("last lines of output:\n", 1)[1]  # pip's


def test_static_build_requirements_come_first_then_the_backends_own(
    index: Index, tmp_path: Path
) -> None:
    index.publish("helper-build", "1.0")
    dist = Dist(
        "ordered",
        "1.0",
        kind="sdist",
        build_requires=("helper-build",),
        dynamic_build_requires=("zeta-tool", "helper-build", "alpha-tool"),
    )
    environments = BuildEnvironments([index.url], tmp_path, 30.0)
    try:
        info = sdist_info(build_bytes(dist), dist.filename, environments)
    finally:
        environments.close()
    assert info.build_requires == ("helper-build", "zeta-tool", "alpha-tool")


def test_one_install_per_set_of_build_requirements(index: Index, tmp_path: Path) -> None:
    index.publish("helper-build", "1.0")
    for name in ("first", "second", "third"):
        index.publish(
            name, "1.0", kind="sdist", dynamic=("Requires-Dist",), build_requires=("helper-build",)
        )
    assert lock(index, tmp_path / "p", "first\nsecond\nthird\n").code == 0
    assert index.requests.count(("GET", "/files/helper_build-1.0-py3-none-any.whl")) == 1
    # The installs and extracted sdists go when the run ends.
    assert list((tmp_path / "p" / ".cache" / "v2" / "tmp").iterdir()) == []


def test_a_backend_without_the_hook_needs_only_its_static_requirements(
    index: Index, tmp_path: Path
) -> None:
    index.publish("helper-build", "1.0")
    bare = b"# A backend with none of the optional PEP 517 hooks.\n"
    index.publish(
        "bare",
        "1.0",
        kind="sdist",
        build_requires=("helper-build",),
        extra_files=(("_backend/backend.py", bare),),
    )
    assert lock(index, tmp_path, "bare\n").packages()["bare"]["build_requires"] == ["helper-build"]


@pytest.mark.parametrize(
    "backend, asks, message",
    [
        (
            b"def get_requires_for_build_wheel(config_settings=None):\n"
            b"    raise RuntimeError('no compiler here')\n",
            (),
            "asking the build backend for its build requirements failed:"
            " RuntimeError: no compiler here",
        ),
        (
            None,
            ("not a requirement!",),
            "the build backend asks for an invalid build requirement 'not a requirement!'",
        ),
    ],
)
def test_a_failing_requirements_hook_falls_back_to_the_static_requirements(
    index: Index, tmp_path: Path, backend: bytes | None, asks: tuple[str, ...], message: str
) -> None:
    """Its static PKG-INFO is the metadata; the build requirements are [build-system]'s, and
    one warning names the package and why."""
    index.publish("helper-build", "1.0")
    extra = (("_backend/backend.py", backend),) if backend is not None else ()
    index.publish(
        "failing",
        "1.0",
        kind="sdist",
        build_requires=("helper-build",),
        dynamic_build_requires=asks,
        extra_files=extra,
    )
    result = lock(index, tmp_path, "failing\n")
    assert result.packages()["failing"]["build_requires"] == ["helper-build"]
    assert result.err == (
        f"machci: warning: failing 1.0 (failing-1.0.tar.gz): {message}; locked with its static"
        " [build-system].requires instead (nixpkgs' build asks the backend again, with"
        " default.nix's inputs)\n"
    )


def test_records_without_the_backends_requirements_are_not_reused(
    index: Index, tmp_path: Path
) -> None:
    index.publish("helper-tool", "1.0")
    dist = index.publish("asks", "1.0", kind="sdist", dynamic_build_requires=("helper-tool",))
    old = {"metadata": core_metadata(dist).decode(), "build_requires": []}
    Cache(tmp_path / ".cache").put_derived("sdist-info", index.sha256(dist.filename), old)
    result = lock(index, tmp_path, "asks\n")
    assert result.packages()["asks"]["build_requires"] == ["helper-tool"]


def test_progress_is_shown_only_on_a_terminal() -> None:
    import io

    from machci.sources.http import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(stream, delay=0.0)
        for _ in range(3):
            progress.tick()
        progress.close()
    assert "\rmachci: fetched 3 index pages and files" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\033[K")
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("json_api", [True, False])
def test_relative_file_urls_resolve_against_the_page(
    index: Index, tmp_path: Path, json_api: bool
) -> None:
    index.publish("rel", "1.0")
    index.relative_urls = True
    index.json_api = json_api
    result = lock(
        index, tmp_path, "rel\n", snapshot=None if not json_api else "2025-01-01T00:00:00Z"
    )
    url = result.packages()["rel"]["file"]["url"]
    assert url == f"{index.files_url}/rel-1.0-py3-none-any.whl"


def test_first_index_that_knows_a_project_wins(index: Index, tmp_path: Path) -> None:
    other = Index(tmp_path / "other")
    other.start()
    try:
        index.publish("shared", "1.0")
        other.publish("shared", "9.0")  # a look-alike on the second index is never used
        other.publish("private", "2.0")
        result = lock(index, tmp_path / "p", "shared\nprivate\n", "--extra-index-url", other.url)
        assert result.versions() == {"shared": "1.0", "private": "2.0"}
        assert result.packages()["private"]["file"]["url"].startswith(other.files_url)
    finally:
        other.stop()


@pytest.mark.parametrize(
    "url, shown, stored",
    [
        ("https://u:p@h:8080/simple", "https://***@h:8080/simple", "https://h:8080/simple"),
        ("https://token@h/simple", "https://***@h/simple", "https://h/simple"),
        ("https://h/simple", "https://h/simple", "https://h/simple"),
    ],
)
def test_credentials_never_leave_a_url(url: str, shown: str, stored: str) -> None:
    from machci.sources.http import redact, strip_credentials

    assert redact(url) == shown
    assert strip_credentials(url) == stored
