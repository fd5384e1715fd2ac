"""Fetching ahead of the resolver, so that its questions find their answers already on the way.

For each name a resolution will want: its page, then the metadata of the file it will most
likely take (the newest the versions asked of it allow: a guess ignoring them fetched pages for
dependencies of versions never chosen, a sixth of an application's pages), then the pages of
that file's dependencies, and so on down the graph. When the resolver passes over a project's
newest versions, the metadata of the next ones down (`files`). Only pages and metadata are
fetched ahead, never whole distributions for versions that may not be chosen.
Which file is likely and which dependencies apply are the resolution's to say (`Guess`); this
module only schedules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from packaging.specifiers import SpecifierSet

from machci.dists import DistFile, DistMetadata, InvalidMetadata, ProjectFiles

Wanted = tuple[str, SpecifierSet]  # a name, and the versions first asked of it


class Guess(Protocol):
    def likely_file(self, project: ProjectFiles, specifier: SpecifierSet) -> DistFile | None: ...
    def dependencies(self, metadata: DistMetadata) -> Iterable[Wanted]: ...


class Ahead(Protocol):
    """What a source does with names asked about ahead: start fetching their pages and, once a
    page is there, the metadata of the files `then` picks; call back when metadata arrives."""

    def prefetch(
        self,
        names: Iterable[str],
        then: Callable[[ProjectFiles], Iterable[DistFile]] | None = None,
    ) -> None: ...
    def when_metadata(self, file: DistFile, then: Callable[[DistMetadata], None]) -> None: ...
    def prefetch_metadata(self, files: Iterable[DistFile]) -> None: ...


class Prefetcher:
    """Fetches ahead for one resolution; each name once."""

    def __init__(self, source: Ahead, guess: Guess) -> None:
        self.source = source
        self.guess: Guess | None = guess
        self.asked: dict[str, SpecifierSet] = {}
        self.lock = threading.Lock()

    def stop(self) -> None:
        """Its resolution is over: fetch nothing more for it, and let go of what guessed (the
        source's finished fetches keep their callbacks, and so this prefetcher, until closed)."""
        self.guess = None

    def ahead(self, wanted: Iterable[Wanted]) -> None:
        if self.guess is None:
            return
        fresh = []
        with self.lock:
            for name, specifier in wanted:
                if name not in self.asked:
                    self.asked[name] = specifier
                    fresh.append(name)
        if fresh:
            self.source.prefetch(fresh, self._likely)

    def files(self, files: Iterable[DistFile]) -> None:
        """Start fetching the metadata of files the resolver is about to consider."""
        if self.guess is not None:
            self.source.prefetch_metadata(files)

    def _likely(self, project: ProjectFiles) -> list[DistFile]:
        guess = self.guess
        specifier = self.asked.get(project.name, SpecifierSet())
        file = guess.likely_file(project, specifier) if guess is not None else None
        if file is None:
            return []
        self.source.when_metadata(file, self._dependencies)
        return [file]

    def _dependencies(self, metadata: DistMetadata) -> None:
        guess = self.guess
        if guess is None:
            return
        try:
            wanted = list(guess.dependencies(metadata))
        except InvalidMetadata:
            return  # the resolver reports it when it considers this candidate
        self.ahead(wanted)
