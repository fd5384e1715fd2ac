"""The PyPI snapshot source: a simple index frozen at an instant.

Pages come from the PEP 691 JSON API (PEP 503 HTML as the fallback); only files uploaded at or
before the snapshot (PEP 700 upload-time) exist. Metadata comes from PEP 658/714 `.metadata`
files (hash-checked), else from the wheel itself (read with range requests where the server
allows, sources/pypi/lazywheel.py), else from the sdist (static PKG-INFO or its PEP 517 backend).
Pages and metadata are fetched in parallel ahead of the resolver's questions.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from io import BytesIO
from typing import TypeVar

from packaging.utils import NormalizedName, canonicalize_name

from machci.backends.buildenv import BackendError, BuildEnvironments
from machci.config.defaults import DEFAULT_TIMEOUT
from machci.dists import (
    SOURCE_KINDS,
    DistFile,
    DistMetadata,
    InvalidMetadata,
    MetadataFailure,
    ProjectFiles,
    parse_metadata,
    parse_requirement_strings,
)
from machci.errors import SourceError
from machci.notices import warn
from machci.sources.cache import CachedPage
from machci.sources.http import WORKERS, CacheMiss, Http, redact
from machci.sources.pypi.lazywheel import remote_metadata
from machci.sources.pypi.pages import LISTING_RECORD, Listing, WheelFilter, listing_key
from machci.sources.pypi.reducer import Reducer
from machci.sources.pypi.wheels import read_member
from machci.sources.trees.extra import PreparedSource

# Derived records of sdists; the name changes whenever what a record holds changes (v2: the
# backend's dynamic build requirements, v3: build needs, v4: keyed by the build environment too,
# with failures), so older records are recomputed.
SDIST_RECORD = "sdist-info-v4"
# The same without running the backend (building is off): static build requirements only.
SDIST_UNBUILT_RECORD = "sdist-unbuilt-v1"

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)

FOREIGN_SHOWN = 5  # file names a warning about other projects' files quotes

_T = TypeVar("_T")


def _on_success(future: Future[_T], then: Callable[[_T], object]) -> None:
    """Run `then` on the future's result when it succeeds, in turn (`_in_turn`). A failure is
    left for whoever asks for that result (the resolver reports it only if it needs it)."""

    def done(finished: Future[_T]) -> None:
        if not finished.cancelled() and finished.exception() is None:
            _in_turn(functools.partial(then, finished.result()))

    future.add_done_callback(done)


_turns = threading.local()


def _in_turn(call: Callable[[], object]) -> None:
    """Run `call` now or, when this thread is running such a call already, right after it.

    A page read from the cache calls back at once, for the metadata of its likely file, whose
    callback asks for the pages of its dependencies, and so on down the graph: nested, that is
    a dozen frames per edge, and a long enough chain of dependencies would exhaust the stack.
    In turn, the thread works through the graph breadth first, at a constant depth.

    A call that fails is passed over: fetching ahead is a guess, and what failed in it (a
    broken entry of the version guessed, say) fails again, as one readable error, if the
    resolver asks for it itself. Let through, it would reach the futures' logger, which prints
    a traceback, and would end the calls still queued."""
    queue: deque[Callable[[], object]] | None = getattr(_turns, "queue", None)
    if queue is not None:
        queue.append(call)
        return
    queue = _turns.queue = deque([call])
    try:
        while queue:
            with contextlib.suppress(Exception):
                queue.popleft()()
    finally:
        _turns.queue = None


def _settle(future: Future[_T], load: Callable[[], _T]) -> None:
    """Run `load` for `future`, in the pool, as the pool runs what is submitted to it."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = load()
    except BaseException as exc:  # the future holds it for whoever asks
        future.set_exception(exc)
    else:
        future.set_result(result)


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
        wheels: WheelFilter | None = None,
        build_constraints: Sequence[str] = (),
    ) -> None:
        """`wheels`: the wheels to consider (those some target can install); None: all.
        `build_constraints`: requirement strings the build requirements pip installs for
        sdist backends must satisfy."""
        self.http = http
        self.indexes = [i.rstrip("/") for i in indexes]
        self.snapshot = snapshot
        self.not_before = snapshot.timestamp() if snapshot else None
        self.wheels = wheels
        self.reducing = threading.Semaphore(2)
        self.reducer = Reducer()
        self.local: dict[str, PreparedSource] = {}
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="machci-fetch")
        self.lock = threading.Lock()
        self.pages: dict[str, Future[ProjectFiles]] = {}
        self.metadata_futures: dict[str, Future[DistMetadata]] = {}
        self.warned: set[str] = set()  # files whose versions were skipped, warned about once
        self.build_environments = BuildEnvironments(
            self.indexes, http.cache.root / "tmp", timeout, build_constraints
        )
        self.build = build
        # sdists whose backend could not say its build requirements, by sha256: why (their
        # static ones stand in; resolve/locking.py warns about those that are locked).
        self.requires_failures: dict[str, str] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for table in (self.pages, self.metadata_futures):
            for future in table.values():
                future.cancel()  # those the pool never started
        self.reducer.close()
        self.build_environments.close()
        # The futures' callbacks hold this source: without the tables, reference counting frees
        # every page and file now, instead of a cycle collection over them all later.
        self.pages.clear()
        self.metadata_futures.clear()

    # Project pages -----------------------------------------------------------------------

    def _submit_once(
        self, table: dict[str, Future[_T]], key: str, load: Callable[[], _T]
    ) -> Future[_T]:
        """The one future for `key`: every fetch happens once per run, however often asked.

        What the cache answers is read here, in the thread that asks; only what needs a
        request (or reducing a page, or a build) goes to the pool. Handing the few hundred
        cache reads of a warm lock to threads that take turns with the resolver at the
        interpreter lock cost it a third of its time."""
        with self.lock:
            future = table.get(key)
            if future is not None:
                return future
            future = table[key] = Future()
        try:
            with self.http.cache_only():
                result = load()
        except CacheMiss:
            self.pool.submit(_settle, future, load)
        except Exception as exc:  # the future holds it for whoever asks
            future.set_exception(exc)
        else:
            future.set_result(result)
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

    def add_sources(self, sources: Iterable[PreparedSource]) -> None:
        """Packages from packagesExtra: their names are answered from them, never the index."""
        self.local.update((s.name, s) for s in sources)

    def _load_project(self, name: NormalizedName) -> ProjectFiles:
        if name in self.local:
            return ProjectFiles.of(name, "packagesExtra", (self.local[name].file,))
        # First index that knows the project wins (no mixing across indexes: that is how
        # dependency-confusion attacks work).
        for index in self.indexes:
            url = f"{index}/{name}/"
            with self._file_errors():
                answer = self.http.page(url, ACCEPT, not_before=self.not_before)
                if answer is not None:
                    found = self._listing(url, name, *answer, self.wheels)
                    if found.foreign:
                        warn(_foreign_files(url, name, found.foreign))
                    return ProjectFiles(
                        name,
                        index,
                        found.by_kind(answer[0].url, answer[0].content_type),
                        found.newer_than_snapshot,
                        found.without_upload_time,
                    )
        return ProjectFiles(name, None, {})

    def _listing(
        self,
        url: str,
        name: NormalizedName,
        page: CachedPage,
        body: bytes | None,
        wheels: WheelFilter | None,
    ) -> Listing:
        """The page's listing: from the cache when this page, targets and snapshot were seen
        before, else reduced from the body (a few at a time: a page's entries are transient
        but many megabytes)."""
        cache = self.http.cache
        key = listing_key(page.digest, wheels, self.snapshot, name) if wheels else None
        if key is not None:
            found = Listing.from_text(cache.derived_text(LISTING_RECORD, key))
            if found is not None:
                return found
        self.http.beyond_cache()
        with self.reducing:
            if body is None:
                body = self.http.page_body(url, ACCEPT, page)
            found, text = self.reducer.listing(
                page, body, self.http.limits.page, wheels, self.snapshot, name
            )
            del body
        if key is not None:
            cache.put_derived_text(LISTING_RECORD, key, text)
        return found

    def every_file(self, name: str) -> ProjectFiles:
        """The project with every file of the snapshot, usable by a target or not: for
        diagnostics, which name what exists for other systems."""
        project = self.project(name)
        if project.index is None:
            return project
        url = f"{project.index}/{project.name}/"
        with self._file_errors():
            answer = self.http.page(url, ACCEPT, not_before=self.not_before)
            if answer is None:
                return project
            found = self._listing(url, project.name, *answer, None)
        return replace(project, releases=found.by_kind(answer[0].url, answer[0].content_type))

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
        with self._file_errors():
            return self.http.sha256_among(url, hashes)

    def _load_metadata(self, file: DistFile) -> DistMetadata:
        if file.kind in SOURCE_KINDS:
            return self.local[file.name].metadata
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
        """From the sdist's record: one per sdist and build environment, failures included, so
        a backend that failed is not run again for the same answer."""
        assert file.sha256 is not None
        cache = self.http.cache
        record, key = SDIST_UNBUILT_RECORD, file.sha256
        if self.build:
            record, key = SDIST_RECORD, f"{file.sha256}-{self.build_environments.identity}"
        cached = cache.derived(record, key)
        if not self._reusable(cached):
            self.http.beyond_cache()
            with cache.derived_lock(record, key):
                cached = cache.derived(record, key)
                if not self._reusable(cached):
                    cached = self._prepare_sdist(file, record, key)
        assert isinstance(cached, dict)
        if "failure" in cached:
            raise MetadataFailure(
                cached["failure"], tuple(cached["tail"]), tuple(cached["build_requires"])
            )
        if cached.get("requires_failure"):
            self.requires_failures[file.sha256] = cached["requires_failure"]
        metadata = parse_metadata(cached["metadata"])
        return metadata.with_build(
            parse_requirement_strings(cached["build_requires"]), tuple(cached["build_needs"])
        )

    def _reusable(self, record: object) -> bool:
        """Whether a stored sdist record answers this run: a valid one, and no failure (nor a
        failed build-requirements query) when --refresh asks backends again: one may have
        failed for want of a tool installed since."""
        if not _valid_sdist_record(record):
            return False
        assert isinstance(record, dict)
        failed = "failure" in record or bool(record.get("requires_failure"))
        return not (self.http.refresh and failed)

    def _prepare_sdist(self, file: DistFile, record: str, key: str) -> dict[str, object]:
        """The record of an sdist, from its archive and (building) its backend; stored unless
        the outcome may differ next time (a time limit, pip)."""
        assert file.sha256 is not None
        data = self.http.file(file.url, file.sha256)
        environments = self.build_environments if self.build else None
        # Imported here: the sdist reader (zip, tar, PKG-INFO, backends) is for cold runs only.
        from machci.backends.sdist import sdist_info

        value: dict[str, object]
        try:
            info = sdist_info(data, file.filename, environments)
        except BackendError as exc:
            reason = exc.message.removeprefix(f"{file.filename}: ")
            value = {
                "failure": reason,
                "tail": list(exc.tail),
                "build_requires": list(exc.build_requires),
            }
            transient = exc.transient
        except SourceError as exc:  # the sdist, not the index: try other versions
            reason = exc.message.removeprefix(f"{file.filename}: ")
            raise InvalidMetadata(reason) from exc
        else:
            value = {
                "metadata": info.metadata.decode("utf-8", errors="replace"),
                "build_requires": list(info.build_requires),
                "build_needs": list(info.build_needs),
            }
            if info.requires_failure is not None:
                value["requires_failure"] = info.requires_failure
            transient = info.transient
        if not transient:
            self.http.cache.put_derived(record, key, value)
        return value


def _foreign_files(url: str, name: str, filenames: Sequence[str]) -> str:
    """The one warning for a page that lists files of other projects. The names come from the
    index unchecked: quoted (a control character shows escaped) and cut short."""
    shown = ", ".join(
        repr(f if len(f) <= 120 else f"{f[:120]}…") for f in filenames[:FOREIGN_SHOWN]
    )
    if len(filenames) > FOREIGN_SHOWN:
        shown += f" and {len(filenames) - FOREIGN_SHOWN} more"
    return (
        f"{redact(url)}: skipping files named for another project than {name}, as pip and uv"
        f" do: {shown}"
    )


def _valid_sdist_record(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    if "failure" in value:
        tail, requires = value.get("tail"), value.get("build_requires")
        return (
            isinstance(value["failure"], str)
            and isinstance(tail, list)
            and all(isinstance(line, str) for line in tail)
            and isinstance(requires, list)
            and all(isinstance(r, str) for r in requires)
        )
    if not isinstance(value.get("requires_failure", ""), str):
        return False
    requires, needs = value.get("build_requires"), value.get("build_needs")
    return (
        isinstance(value.get("metadata"), str)
        and isinstance(requires, list)
        and all(isinstance(r, str) for r in requires)
        and isinstance(needs, list)
        and all(isinstance(n, str) for n in needs)
    )
