"""The PyPI snapshot source: a simple index frozen at an instant.

Pages come from the PEP 691 JSON API (PEP 503 HTML as the fallback); only files uploaded at or
before the snapshot (PEP 700 upload-time) exist. Metadata comes from PEP 658/714 `.metadata`
files (hash-checked), else from the wheel itself, else from the sdist (static PKG-INFO or its
PEP 517 backend). Pages and metadata are fetched in parallel ahead of the resolver's questions.
"""

from __future__ import annotations

import contextlib
import json
import threading
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from io import BytesIO
from typing import TypeVar
from urllib.parse import urldefrag, urljoin, urlsplit

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from machci.defaults import DEFAULT_TIMEOUT
from machci.dists import (
    DistFile,
    DistMetadata,
    InvalidMetadata,
    classify,
    parse_metadata,
    parse_requirement_strings,
    parse_requires_python,
)
from machci.errors import SourceError
from machci.sources.buildenv import BuildEnvironments
from machci.sources.cache import CachedPage
from machci.sources.http import WORKERS, Http, redact
from machci.sources.sdist import sdist_info
from machci.sources.wheels import read_member

# Derived records of sdists; the name changes whenever what a record holds changes (v2: the
# backend's dynamic build requirements, v3: build needs), so older records are recomputed.
SDIST_RECORD = "sdist-info-v3"
# The same without running the backend (building is off): static build requirements only.
SDIST_UNBUILT_RECORD = "sdist-unbuilt-v1"

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)


@dataclass(frozen=True)
class ProjectFiles:
    """A project's files as of the snapshot, plus what the snapshot hid (for diagnostics)."""

    name: NormalizedName
    index: str | None  # None: no index knows the project
    files: tuple[DistFile, ...]
    newer_than_snapshot: int = 0
    without_upload_time: int = 0


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _metadata_hash(value: object) -> tuple[bool, str | None]:
    """(has .metadata, its sha256) from a PEP 691/714 core-metadata value."""
    if isinstance(value, dict):
        digest = value.get("sha256")
        return True, digest.lower() if isinstance(digest, str) else None
    return bool(value), None


def _make_file(
    filename: str,
    url: str,
    sha256: str | None,
    requires_python: str | None,
    yanked: object,
    upload_time: object,
    metadata: object,
) -> DistFile | None:
    parsed = classify(filename)
    if parsed is None:
        return None
    name, version, kind, wheel_tags = parsed
    has_metadata, metadata_sha = _metadata_hash(metadata)
    return DistFile(
        name=name,
        version=version,
        kind=kind,
        filename=filename,
        url=url,
        sha256=sha256.lower() if sha256 else None,
        tags=wheel_tags,
        requires_python=parse_requires_python(requires_python),
        yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
        upload_time=_parse_time(upload_time),
        metadata_sha256=metadata_sha,
        has_metadata_file=has_metadata,
    )


def _absolute(base: str, url: str) -> str:
    # Indexes usually give absolute URLs; urljoin is costly across thousands of files.
    return url if url.startswith(("https://", "http://")) else urljoin(base, url)


def parse_json_page(page: CachedPage) -> list[DistFile]:
    try:
        document = json.loads(page.body)
        entries = document["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{redact(page.url)}: invalid JSON index page ({exc})") from exc
    files = []
    for entry in entries:
        if not isinstance(entry, dict) or "filename" not in entry or "url" not in entry:
            raise SourceError(f"{redact(page.url)}: invalid JSON index page (bad file entry)")
        hashes = entry.get("hashes") or {}
        made = _make_file(
            entry["filename"],
            _absolute(page.url, entry["url"]),
            hashes.get("sha256"),
            entry.get("requires-python"),
            entry.get("yanked", False),
            entry.get("upload-time"),
            entry.get("core-metadata", entry.get("data-dist-info-metadata", False)),
        )
        if made is not None:
            files.append(made)
    return files


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def parse_html_page(page: CachedPage) -> list[DistFile]:
    parser = _AnchorParser()
    parser.feed(page.body.decode("utf-8", errors="replace"))
    files = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(page.url, href))
        sha256 = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
        filename = text or url.rsplit("/", 1)[-1]
        metadata_attr = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        metadata: object = False
        if metadata_attr is not None:
            algo, _, digest = metadata_attr.partition("=")
            metadata = {"sha256": digest} if algo == "sha256" and digest else True
        made = _make_file(
            filename,
            url,
            sha256,
            attrs.get("data-requires-python"),
            attrs.get("data-yanked", False) if "data-yanked" in attrs else False,
            None,
            metadata,
        )
        if made is not None:
            files.append(made)
    return files


def parse_page(page: CachedPage) -> list[DistFile]:
    if "json" in page.content_type:
        return parse_json_page(page)
    if "html" in page.content_type or not page.content_type:
        return parse_html_page(page)
    raise SourceError(f"{redact(page.url)}: unexpected content type {page.content_type!r}")


_T = TypeVar("_T")


def _on_success(future: Future[_T], then: Callable[[_T], object]) -> None:
    """Run `then` on the future's result when it succeeds. A failure is left for whoever asks
    for that result (the resolver reports it only if it needs it)."""

    def done(finished: Future[_T]) -> None:
        if not finished.cancelled() and finished.exception() is None:
            with contextlib.suppress(RuntimeError):  # the pool is shutting down
                then(finished.result())

    future.add_done_callback(done)


class PyPISource:
    """Answers "which files does X have" and "what does this file need", with prefetching."""

    def __init__(
        self,
        http: Http,
        indexes: Sequence[str],
        snapshot: datetime | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        build: bool = True,
    ) -> None:
        self.http = http
        self.indexes = [i.rstrip("/") for i in indexes]
        self.snapshot = snapshot
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="machci-fetch")
        self.lock = threading.Lock()
        self.pages: dict[str, Future[ProjectFiles]] = {}
        self.metadata_futures: dict[str, Future[DistMetadata]] = {}
        self.build_environments = BuildEnvironments(self.indexes, http.cache.root / "tmp", timeout)
        self.build = build

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.build_environments.close()

    # Project pages -----------------------------------------------------------------------

    def _submit_once(
        self, table: dict[str, Future[_T]], key: str, load: Callable[[], _T]
    ) -> Future[_T]:
        """The one future for `key`: every fetch happens once per run, however often asked."""
        with self.lock:
            future = table.get(key)
            if future is None:
                future = table[key] = self.pool.submit(load)
            return future

    def prefetch(
        self,
        names: Iterable[str],
        then: Callable[[ProjectFiles], Iterable[DistFile]] | None = None,
    ) -> None:
        """Start fetching pages; when one arrives, start fetching the metadata `then` picks."""
        for name in names:
            future = self._page_future(canonicalize_name(name))
            if then is not None:
                _on_success(future, lambda project: self.prefetch_metadata(then(project)))

    def _page_future(self, name: NormalizedName) -> Future[ProjectFiles]:
        return self._submit_once(self.pages, name, lambda: self._load_project(name))

    def project(self, name: str) -> ProjectFiles:
        return self._page_future(canonicalize_name(name)).result()

    def _load_project(self, name: NormalizedName) -> ProjectFiles:
        # First index that knows the project wins (no mixing across indexes: that is how
        # dependency-confusion attacks work).
        for index in self.indexes:
            page = self.http.page(f"{index}/{name}/", ACCEPT)
            if page is not None:
                return self._snapshot_files(name, index, parse_page(page))
        return ProjectFiles(name, None, ())

    def _snapshot_files(
        self, name: NormalizedName, index: str, files: list[DistFile]
    ) -> ProjectFiles:
        if self.snapshot is None:
            return ProjectFiles(name, index, tuple(files))
        kept, newer, untimed = [], 0, 0
        for file in files:
            if file.upload_time is None:
                untimed += 1
            elif file.upload_time > self.snapshot:
                newer += 1
            else:
                kept.append(file)
        return ProjectFiles(name, index, tuple(kept), newer, untimed)

    # Metadata ----------------------------------------------------------------------------

    def prefetch_metadata(self, files: Iterable[DistFile]) -> None:
        for file in files:
            self._metadata_future(file)

    def when_metadata(self, file: DistFile, then: Callable[[DistMetadata], None]) -> None:
        """Call `then` with the file's metadata once it is fetched (never on failure)."""
        _on_success(self._metadata_future(file), then)

    def _metadata_future(self, file: DistFile) -> Future[DistMetadata]:
        key = file.sha256 or file.url
        return self._submit_once(self.metadata_futures, key, lambda: self._load_metadata(file))

    def metadata(self, file: DistFile) -> DistMetadata:
        """Metadata of one file; InvalidMetadata if the file's metadata is unusable."""
        return self._metadata_future(file).result()

    def _load_metadata(self, file: DistFile) -> DistMetadata:
        if file.sha256 is None:
            raise SourceError(f"{redact(file.url)}: the index gives no sha256 for this file")
        if file.kind == "wheel":
            metadata = parse_metadata(self._wheel_metadata(file))
        else:
            metadata = self._sdist_metadata(file)
        if metadata.name != file.name or metadata.version != file.version:
            raise InvalidMetadata(
                f"{file.filename} declares {metadata.name} {metadata.version} in its metadata"
            )
        return metadata

    def _wheel_metadata(self, file: DistFile) -> bytes:
        assert file.sha256 is not None
        if file.has_metadata_file and file.metadata_sha256:
            url = f"{file.url}.metadata"
            try:
                return self.http.file(url, file.metadata_sha256, small=True)
            except SourceError as exc:
                if "hash mismatch" in exc.message:
                    raise SourceError(f"metadata {exc.message}") from exc
                raise
        wheel = self.http.file(file.url, file.sha256)
        try:
            with zipfile.ZipFile(BytesIO(wheel)) as archive:
                names = [
                    n
                    for n in archive.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
                ]
                if len(names) != 1:
                    raise InvalidMetadata(f"{file.filename}: no single .dist-info/METADATA")
                return read_member(archive, names[0], file.filename, self.http.limits.metadata)
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{file.filename}: not a valid wheel ({exc})") from exc

    def _sdist_metadata(self, file: DistFile) -> DistMetadata:
        assert file.sha256 is not None
        cache = self.http.cache
        record = SDIST_RECORD if self.build else SDIST_UNBUILT_RECORD
        cached = cache.derived(record, file.sha256)
        if not _valid_sdist_record(cached):
            with cache.derived_lock(record, file.sha256):
                cached = cache.derived(record, file.sha256)
                if not _valid_sdist_record(cached):
                    data = self.http.file(file.url, file.sha256)
                    environments = self.build_environments if self.build else None
                    info = sdist_info(data, file.filename, environments)
                    cached = {
                        "metadata": info.metadata.decode("utf-8", errors="replace"),
                        "build_requires": list(info.build_requires),
                        "build_needs": list(info.build_needs),
                    }
                    cache.put_derived(record, file.sha256, cached)
        assert isinstance(cached, dict)
        metadata = parse_metadata(cached["metadata"])
        return metadata.with_build(
            parse_requirement_strings(cached["build_requires"]), tuple(cached["build_needs"])
        )


def _valid_sdist_record(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    needs = value.get("build_needs")
    return (
        isinstance(value.get("metadata"), str)
        and isinstance(value.get("build_requires"), list)
        and isinstance(needs, list)
        and all(isinstance(n, str) for n in needs)
    )


def direct_file(requirement: Requirement, sha256: str | None) -> DistFile | None:
    """A DistFile for a `name @ URL` requirement whose file name can be classified."""
    assert requirement.url is not None
    url, fragment = urldefrag(requirement.url)
    if fragment.startswith("sha256="):
        sha256 = fragment[len("sha256=") :].lower()
    filename = urlsplit(url).path.rsplit("/", 1)[-1]  # a signed URL's query is not part of it
    parsed = classify(filename)
    if parsed is None:
        return None
    name, version, kind, wheel_tags = parsed
    return DistFile(name, version, kind, filename, url, sha256, wheel_tags)
