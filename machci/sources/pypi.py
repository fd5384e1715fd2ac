"""The PyPI snapshot source: a simple index frozen at an instant.

Pages come from the PEP 691 JSON API (PEP 503 HTML as the fallback); only files uploaded at or
before the snapshot (PEP 700 upload-time) exist. Metadata comes from PEP 658/714 `.metadata`
files (hash-checked), else from the wheel itself (read with range requests where the server
allows, sources/lazywheel.py), else from the sdist (static PKG-INFO or its PEP 517 backend).
Pages and metadata are fetched in parallel ahead of the resolver's questions.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
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
from machci.notices import warn
from machci.sources.buildenv import BuildEnvironments
from machci.sources.cache import CachedPage
from machci.sources.http import WORKERS, Http, redact
from machci.sources.lazywheel import remote_metadata
from machci.sources.sdist import sdist_info
from machci.sources.wheels import read_member
from machci.untrusted import control_character, url_problem

# Derived records of sdists; the name changes whenever what a record holds changes (v2: the
# backend's dynamic build requirements, v3: build needs), so older records are recomputed.
SDIST_RECORD = "sdist-info-v3"
# The same without running the backend (building is off): static build requirements only.
SDIST_UNBUILT_RECORD = "sdist-unbuilt-v1"

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class ProjectFiles:
    """A project's files as of the snapshot, plus what the snapshot hid (for diagnostics)."""

    name: NormalizedName
    index: str | None  # None: no index knows the project
    files: tuple[DistFile, ...]
    newer_than_snapshot: int = 0
    without_upload_time: int = 0


class _BadEntry(Exception):
    """A file entry of an index page that breaks its PEP; the caller names the page."""


def _sha256(value: object, what: str) -> str | None:
    """A sha256 from the index: 64 hex digits (it names cache entries and pins files)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _BadEntry(f"{what} {value!r} is not 64 hex digits")
    return value.lower()


def _upload_time(value: object) -> datetime | None:
    """PEP 700's upload-time: an ISO 8601 instant with its time zone, or absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _BadEntry(f"upload-time {value!r} is not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadEntry(f"upload-time {value!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise _BadEntry(f"upload-time {value!r} has no time zone")
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise _BadEntry(f"upload-time {value!r} is out of range") from exc


def _metadata_hash(value: object) -> tuple[bool, str | None]:
    """(has .metadata, its sha256) from a PEP 691/714 core-metadata value."""
    if isinstance(value, dict):
        return True, _sha256(value.get("sha256"), "core-metadata sha256")
    if not isinstance(value, bool):
        raise _BadEntry(f"core-metadata {value!r} is neither a boolean nor an object")
    return value, None


def _make_file(
    filename: str,
    url: str,
    sha256: str | None,
    requires_python: str | None,
    yanked: str | None,
    upload_time: datetime | None,
    metadata: tuple[bool, str | None],
) -> DistFile | None:
    """The file, if its name is a distribution's; its URL and name are checked then, since
    they reach requests, cache keys and default.nix."""
    parsed = classify(filename)
    if parsed is None:
        return None
    if char := control_character(filename):
        raise _BadEntry(f"the file name contains {char!r}")
    if problem := url_problem(url):
        raise _BadEntry(f"URL {url!r} is not usable: {problem}")
    name, version, kind, wheel_tags = parsed
    has_metadata, metadata_sha = metadata
    return DistFile(
        name=name,
        version=version,
        kind=kind,
        filename=filename,
        url=url,
        sha256=sha256,
        tags=wheel_tags,
        requires_python=parse_requires_python(requires_python),
        yanked=yanked,
        upload_time=upload_time,
        metadata_sha256=metadata_sha,
        has_metadata_file=has_metadata,
    )


def _absolute(base: str, url: str) -> str:
    # Indexes usually give absolute URLs; urljoin is costly across thousands of files.
    return url if url.startswith(("https://", "http://")) else urljoin(base, url)


def _json_kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _json_string(entry: Mapping[str, object], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise _BadEntry(f"{key!r} is {_json_kind(value)}, not a string")
    return value


def _json_optional_string(entry: Mapping[str, object], key: str) -> str | None:
    return None if entry.get(key) is None else _json_string(entry, key)


def _json_file(entry: object, base: str) -> DistFile | None:
    if not isinstance(entry, dict):
        raise _BadEntry(f"a file entry is {_json_kind(entry)}, not an object")
    filename = _json_string(entry, "filename")
    url = _json_string(entry, "url")
    try:
        hashes = entry.get("hashes") or {}
        if not isinstance(hashes, dict):
            raise _BadEntry(f"'hashes' is {_json_kind(hashes)}, not an object")
        yanked = entry.get("yanked", False)
        if not isinstance(yanked, bool | str):
            raise _BadEntry(f"'yanked' is {_json_kind(yanked)}, not a boolean or a reason")
        return _make_file(
            filename,
            _absolute(base, url),
            _sha256(hashes.get("sha256"), "sha256"),
            _json_optional_string(entry, "requires-python"),
            # Any string means yanked, as in pip (PEP 691 asks for a non-empty reason).
            yanked if isinstance(yanked, str) else ("" if yanked else None),
            _upload_time(entry.get("upload-time")),
            _metadata_hash(entry.get("core-metadata", entry.get("data-dist-info-metadata", False))),
        )
    except _BadEntry as exc:
        raise _BadEntry(f"file {filename!r}: {exc}") from exc


def parse_json_page(page: CachedPage) -> list[DistFile]:
    where = f"{redact(page.url)}: invalid JSON index page"
    try:
        document = json.loads(page.body)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{where} ({exc})") from exc
    entries = document.get("files") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SourceError(f"{where} (no list of files)")
    files = []
    for entry in entries:
        try:
            made = _json_file(entry, page.url)
        except _BadEntry as exc:
            raise SourceError(f"{where}: {exc}") from exc
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


def _html_file(attrs: Mapping[str, str | None], text: str, base: str) -> DistFile | None:
    href = attrs.get("href")
    if not href:
        return None
    url, fragment = urldefrag(urljoin(base, href))
    filename = text or url.rsplit("/", 1)[-1]
    try:
        sha256 = (
            _sha256(fragment[len("sha256=") :], "sha256")
            if fragment.startswith("sha256=")
            else None
        )
        metadata: tuple[bool, str | None] = (False, None)
        metadata_attr = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        if metadata_attr is not None:
            algo, _, digest = metadata_attr.partition("=")
            has_sha = algo == "sha256" and digest
            metadata = (True, _sha256(digest, "core-metadata sha256") if has_sha else None)
        # PEP 592: the attribute's presence means yanked; its value, if any, is the reason.
        yanked = (attrs["data-yanked"] or "") if "data-yanked" in attrs else None
        return _make_file(
            filename, url, sha256, attrs.get("data-requires-python"), yanked, None, metadata
        )
    except _BadEntry as exc:
        raise _BadEntry(f"file {filename!r}: {exc}") from exc


def parse_html_page(page: CachedPage) -> list[DistFile]:
    parser = _AnchorParser()
    parser.feed(page.body.decode("utf-8", errors="replace"))
    files = []
    for attrs, text in parser.anchors:
        try:
            made = _html_file(attrs, text, page.url)
        except _BadEntry as exc:
            raise SourceError(f"{redact(page.url)}: invalid HTML index page: {exc}") from exc
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
        self.warned: set[str] = set()  # files whose versions were skipped, warned about once
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
            with self._file_errors():
                page = self.http.page(f"{index}/{name}/", ACCEPT)
            if page is not None:
                return self._snapshot_files(name, index, parse_page(page))
        return ProjectFiles(name, None, ())

    @contextlib.contextmanager
    def _file_errors(self) -> Iterator[None]:
        """A file that cannot be read or written, most likely a cache entry (a directory where
        a file belongs, no permission), is named rather than ending the run with a traceback."""
        try:
            yield
        except OSError as exc:
            name, problem = str(exc.filename or ""), exc.strerror or str(exc)
            if name.startswith(str(self.http.cache.root)):
                raise SourceError(
                    f"cannot use the cache entry {name}: {problem}"
                    " (remove it, or pass another --cache-dir)"
                ) from exc
            raise SourceError(f"{name or 'a file'}: {problem}") from exc

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

    def skipped(self, file: DistFile, reason: str) -> None:
        """Warn, once per run whichever target asks, that a file's version was passed over
        because its metadata is unusable."""
        with self.lock:
            if file.filename in self.warned:
                return
            self.warned.add(file.filename)
        warn(f"skipping {file.name} {file.version} ({file.filename}): {reason}")

    def direct_sha256(self, url: str, hashes: frozenset[str]) -> str:
        """Which of a direct reference's --hash values its file has: the only one, or the one
        the file (from the cache, else downloaded) turns out to match."""
        ordered = sorted(hashes)
        if len(ordered) == 1:
            return ordered[0]
        for sha256 in ordered:
            try:
                with self._file_errors():
                    self.http.file(url, sha256)
            except SourceError as exc:
                if "hash mismatch" in exc.message:
                    continue
                raise
            return sha256
        raise SourceError(
            f"{redact(url)}: the file's sha256 is none of its {len(ordered)} --hash values"
        )

    def _load_metadata(self, file: DistFile) -> DistMetadata:
        if file.sha256 is None:
            raise SourceError(f"{redact(file.url)}: the index gives no sha256 for this file")
        with self._file_errors():
            if file.kind == "wheel":
                metadata = parse_metadata(self._wheel_metadata(file))
            else:
                metadata = self._sdist_metadata(file)
        if metadata.name != file.name or metadata.version != file.version:
            raise InvalidMetadata(f"its metadata declares {metadata.name} {metadata.version}")
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
        metadata = remote_metadata(self.http, file.url, file.sha256, file.filename)
        if metadata is not None:
            return metadata
        wheel = self.http.file(file.url, file.sha256)
        try:
            with zipfile.ZipFile(BytesIO(wheel)) as archive:
                names = [
                    n
                    for n in archive.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
                ]
                if len(names) != 1:
                    raise InvalidMetadata("the wheel has no single .dist-info/METADATA")
                return read_member(archive, names[0], file.filename, self.http.limits.metadata)
        except zipfile.BadZipFile as exc:
            raise InvalidMetadata(f"not a valid wheel ({exc})") from exc

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
                    try:
                        info = sdist_info(data, file.filename, environments)
                    except SourceError as exc:  # the sdist, not the index: try other versions
                        reason = exc.message.removeprefix(f"{file.filename}: ")
                        raise InvalidMetadata(reason) from exc
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
    requires, needs = value.get("build_requires"), value.get("build_needs")
    return (
        isinstance(value.get("metadata"), str)
        and isinstance(requires, list)
        and all(isinstance(r, str) for r in requires)
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
