"""The pypi-deps-db source: mach-nix's dependency database at a pinned commit.

The database (`sdist/`, `wheel/`) pins the URL index it was made from (nix-pypi-fetcher-2) in
`PYPI_FETCHER_COMMIT` and `PYPI_FETCHER_SHA256`; both trees are fetched as GitHub tarballs and
checked against their NAR hashes (sources/depsdb/tarballs.py), or the database is a local checkout.
Only the buckets of the projects the resolver asks about are read, each project once. Files come
from the URL index, and only those the tables have dependency data for: wheels by file name,
sdists by version and by the target's Python (setup.py ran on each Python separately).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from machci.config.model import DataRevision
from machci.dists import DistFile, DistMetadata, InvalidMetadata, ProjectFiles
from machci.errors import InputError, SourceError
from machci.hashes import parse_sha256
from machci.notices import warn
from machci.sources.depsdb.data import (
    Project,
    bucket_of,
    keys_for,
    python_key,
    read_project,
    sdist_metadata,
    wheel_metadata,
)
from machci.sources.depsdb.tarballs import pinned_tree
from machci.sources.http import Http

URL_INDEX_REPOSITORY = "DavHau/nix-pypi-fetcher-2"
INDEX_NAME = "pypi-deps-db"  # ProjectFiles.index of the projects it knows
_COMMIT = re.compile(r"[0-9a-f]{40}")


def open_database(http: Http, data: DataRevision) -> Path:
    """The database tree: the checkout `path`, or the tarball pinned by `rev` and `sha256`."""
    if data.path is not None:
        if not data.path.is_dir():
            raise InputError(f"data: path: {data.path} is not a directory")
        return data.path
    assert data.rev is not None and data.sha256 is not None  # checked by the config loader
    nar = parse_sha256(data.sha256)
    return pinned_tree(http, data.repository, data.rev, nar, "data: sha256 in machci.yaml")


def open_url_index(http: Http, database: Path) -> Path:
    """The URL index the database pins with PYPI_FETCHER_COMMIT and PYPI_FETCHER_SHA256."""
    commit = _pin_file(database / "PYPI_FETCHER_COMMIT")
    if not _COMMIT.fullmatch(commit):
        raise SourceError(f"{database / 'PYPI_FETCHER_COMMIT'}: not a commit id: {commit!r}")
    sha256 = _pin_file(database / "PYPI_FETCHER_SHA256")
    try:
        nar = parse_sha256(sha256)
    except InputError as exc:
        raise SourceError(f"{database / 'PYPI_FETCHER_SHA256'}: {exc.message}") from None
    pinned_by = "the database's PYPI_FETCHER_SHA256"
    return pinned_tree(http, URL_INDEX_REPOSITORY, commit, nar, pinned_by)


def _pin_file(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the database's pin: {exc}") from exc


class DepsDbSource:
    """Answers "which files does X have" and "what does this file need" from the tables."""

    def __init__(self, http: Http, database: Path, url_index: Path, python: str) -> None:
        """`python`: the targets' CPython X.Y, whose sdist data is used."""
        self.http = http
        self.database = database
        self.url_index = url_index
        self.pyver = python_key(python)
        self.lock = threading.Lock()
        self.projects: dict[NormalizedName, Project | None] = {}
        self.answers: dict[DistFile, DistMetadata | InvalidMetadata] = {}
        self.warned: set[str] = set()

    @classmethod
    def open(cls, http: Http, data: DataRevision, python: str) -> DepsDbSource:
        database = open_database(http, data)
        return cls(http, database, open_url_index(http, database), python)

    def close(self) -> None:
        """Let go of what was read (the tables of a large resolution)."""
        with self.lock:
            self.projects.clear()
            self.answers.clear()

    # Fetching ahead (sources/pypi/prefetch.py): the tables are on disk, read when asked -------

    def prefetch(
        self,
        names: Iterable[str],
        then: Callable[[ProjectFiles], Iterable[DistFile]] | None = None,
    ) -> None:
        """Nothing to fetch ahead: a project's buckets are read when it is asked about."""

    def when_metadata(self, file: DistFile, then: Callable[[DistMetadata], None]) -> None:
        """Nothing to fetch ahead: metadata is in the tables already read."""

    def prefetch_metadata(self, files: Iterable[DistFile]) -> None:
        """Nothing to fetch ahead: metadata is in the tables already read."""

    # The resolver's questions (resolve.Finder) ------------------------------------------

    def project(self, name: str) -> ProjectFiles:
        canonical = canonicalize_name(name)
        found = self._project(canonical)
        if found is None:
            return ProjectFiles(canonical, None, {})
        return ProjectFiles.of(canonical, INDEX_NAME, found.files)

    def every_file(self, name: str) -> ProjectFiles:
        """Every file a target may use or not: the tables do not sort them by target."""
        return self.project(name)

    def metadata(self, file: DistFile) -> DistMetadata:
        with self.lock:
            answer = self.answers.get(file)
        if answer is None:
            try:
                answer = self._metadata(file)
            except InvalidMetadata as exc:
                answer = exc
            with self.lock:
                self.answers[file] = answer
        if isinstance(answer, InvalidMetadata):
            raise InvalidMetadata(str(answer))  # a fresh one: tracebacks would pile up
        return answer

    def _metadata(self, file: DistFile) -> DistMetadata:
        project = self._project(file.name)
        if project is not None and file.kind == "wheel" and file.filename in project.wheels:
            return wheel_metadata(file, project.wheels[file.filename])
        if project is not None and file.kind == "sdist" and file.version in project.sdists:
            return sdist_metadata(file, project.sdists[file.version], self.pyver)
        raise InvalidMetadata(f"pypi-deps-db has no dependency data for {file.filename}")

    def skipped(self, file: DistFile, reason: str) -> None:
        """Warn once per reason: sdists skipped for want of data for the target's Python share
        one, which names the project and the Pythons the data covers."""
        with self.lock:
            if reason in self.warned:
                return
            self.warned.add(reason)
        warn(f"skipping {file.name} {file.version} ({file.filename}): {reason}")

    def direct_sha256(self, url: str, hashes: frozenset[str]) -> str:
        return self.http.sha256_among(url, hashes)

    # Reading the tables -------------------------------------------------------------------

    def _project(self, name: NormalizedName) -> Project | None:
        with self.lock:
            if name in self.projects:
                return self.projects[name]
        found = None
        for key in keys_for(name):
            urls = self._entry(self.url_index, "pypi", key)
            if urls is not None:
                wheel = self._entry(self.database, "wheel", key)
                sdist = self._entry(self.database, "sdist", key)
                found = read_project(name, key, urls, wheel, sdist)
                break
        with self.lock:
            self.projects[name] = found
        return found

    def _entry(self, tree: Path, table: str, key: str) -> object:
        """One key of a bucket. The bucket is parsed and let go: a resolution visits a few
        hundred projects, and keeping whole buckets would hold gigabytes."""
        path = tree / table / f"{bucket_of(key)}.json"
        try:
            bucket = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SourceError(f"{path}: cannot read pypi-deps-db's table: {exc}") from exc
        if not isinstance(bucket, dict):
            raise SourceError(f"{path}: expected a JSON object")
        return bucket.get(key)
