"""Index pages (PEP 691 JSON, PEP 503 HTML) reduced to the files a run can use.

A real page lists thousands of files (numpy's: 4,415), most of them wheels no target of the run
can install. A page is reduced once to its *listing*: the files of the snapshot that some target
can use (every sdist, the wheels whose tags some target supports), grouped by version. The
listing is kept in the cache under the page body's digest, the run's targets and the snapshot,
so a warm run neither parses the page nor builds an object for a file it will never consider.
Entries are checked where they matter: every entry as far as deciding to skip it needs (its
name, its upload time), and the files of a version completely (their URLs and names reach
requests, cache keys and default.nix) when a run first looks at that version: a resolution
looks at the newest few of each project's hundreds, and checking every file kept was a third
of reducing a page.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from html.parser import HTMLParser
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import urldefrag, urljoin

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from machci.config.model import format_snapshot
from machci.dists import (
    DistFile,
    ListedReleases,
    classify,
    damaged_listing,
    dist_file,
    parse_version,
)
from machci.errors import SourceError
from machci.redaction import redact
from machci.untrusted import control_character, url_problem

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_PLAIN_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?Z")
LISTING_RECORD = "listing-v7"  # the derived cache kind; renamed whenever listings change


class BadEntry(Exception):
    """A file entry of an index page that breaks its PEP; the caller names the page."""


class Entry(NamedTuple):
    """One file entry of a page, as the page gives it (nothing checked beyond its types)."""

    filename: str
    url: str  # absolute
    sha256: object
    requires_python: str | None
    yanked: str | None  # None = not yanked; otherwise the reason ("" if none given)
    upload_time: object
    core_metadata: object  # PEP 691 `core-metadata` (bool or hashes) or an HTML attribute
    size: object = None  # PEP 700's size, in bytes (JSON pages only)


_Read = TypeVar("_Read")  # a file entry as a page format reads it


class Reading(NamedTuple, Generic[_Read]):
    """A page's file entries as far as deciding whether to keep each needs: its name, its
    upload time and the entry as read; `complete` reads the rest of an entry (checking the
    types of its fields), only for those kept. Plain tuples: a page has thousands of entries,
    most of them never kept."""

    peeked: Iterator[tuple[str, object, _Read]]
    complete: Callable[[_Read], Entry]


class Listed(NamedTuple):
    """A file checked and classified: dist_file's arguments, in order."""

    name: str
    version: str
    kind: str
    filename: str
    url: str
    sha256: str | None
    tag_triple: str  # "" for an sdist
    requires_python: str | None
    yanked: str | None
    metadata_sha256: str | None
    has_metadata_file: bool
    size: int | None  # bytes, as the index says (PEP 700); None when it does not
    upload_time: str | None  # RFC 3339 in UTC (PEP 700); None when the index does not say


@dataclass(frozen=True)
class Listing:
    """A page's files as of the snapshot that some target can use, and what was hidden.

    Per kind, a line per version, newest first: the version, a tab, and its files' entries as a
    JSON array of Entry arrays (neither a version nor compact JSON holds a tab or a line break).
    A line stays text until a run looks at its version (dists.Release), which checks its
    entries then: pages list hundreds of versions, and a resolution looks at the newest few.
    """

    releases: Mapping[str, Sequence[str]]
    newer_than_snapshot: int = 0
    without_upload_time: int = 0
    foreign: tuple[str, ...] = ()  # files named for another project, left out

    def to_text(self) -> str:
        """What was hidden and how many lines each kind has (JSON), then the lines."""
        counts = [[kind, len(lines)] for kind, lines in self.releases.items()]
        head = [self.newer_than_snapshot, self.without_upload_time, self.foreign, counts]
        return "\n".join([json.dumps(head), *(line for s in self.releases.values() for line in s)])

    @classmethod
    def from_text(cls, text: str | None) -> Listing | None:
        """The listing a cache record holds, or None if it is not one (then it is recomputed).
        A release's line is checked when it is read."""
        if text is None:
            return None
        head, *lines = text.split("\n")
        try:
            parts = json.loads(head)
        except ValueError:
            return None
        if not (isinstance(parts, list) and len(parts) == 4):
            return None
        newer, untimed, foreign, counts = parts
        if not (isinstance(newer, int) and isinstance(untimed, int)):
            return None
        if not (isinstance(foreign, list) and all(isinstance(f, str) for f in foreign)):
            return None
        if not (isinstance(counts, list) and all(_is_count(c) for c in counts)):
            return None
        if sum(count for _kind, count in counts) != len(lines):
            return None
        releases: dict[str, Sequence[str]] = {}
        start = 0
        for kind, count in counts:
            releases[kind] = lines[start : start + count]
            start += count
        return cls(releases, newer, untimed, tuple(foreign))

    def by_kind(self, url: str, content_type: str) -> dict[str, ListedReleases]:
        """ProjectFiles.releases of this listing of the page at `url`, nothing parsed, checked
        or built yet."""
        read = partial(_release_files, redact(url), kind_of(content_type))
        return {kind: ListedReleases(lines, read) for kind, lines in self.releases.items()}


def _is_count(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and value[1] >= 0
    )


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # made once: json.dumps makes one per call


def _grouped(kept: Iterable[tuple[str, Version, Entry]]) -> dict[str, list[str]]:
    """Per kind, a line per version, newest first (its files in page order)."""
    grouped: dict[str, dict[Version, list[Entry]]] = {}
    for kind, version, entry in kept:
        grouped.setdefault(kind, {}).setdefault(version, []).append(entry)
    return {
        kind: [
            f"{version}\t{_COMPACT.encode(versions[version])}"
            for version in sorted(versions, reverse=True)
        ]
        for kind, versions in grouped.items()
    }


def _release_files(where: str, page_kind: str, text: str) -> tuple[DistFile, ...]:
    """The files of a listing's release, from its entries, each checked completely now; a
    broken one is an error naming the page (`where`, redacted) as reading it whole would."""
    files = []
    for row in _entry_rows(text):
        entry = Entry(*row)
        try:
            listed = _kept(entry, None)
        except BadEntry as exc:
            raise SourceError(
                f"{where}: invalid {page_kind} index page: file {entry.filename!r}: {exc}"
            ) from exc
        if listed is not None:
            files.append(dist_file(*listed))
    return tuple(files)


def _entry_rows(text: str) -> list[list[Any]]:
    """A release's entries, checked for their shape, as the listing was (its cache record is
    machci's own; a damaged one must not read as a release without files)."""
    try:
        rows = json.loads(text)
    except ValueError:
        rows = None
    if not (isinstance(rows, list) and all(_is_entry_row(row) for row in rows)):
        raise damaged_listing()
    return rows


def _is_entry_row(row: object) -> bool:
    return (
        isinstance(row, list)
        and len(row) == len(Entry._fields)
        and isinstance(row[0], str)  # filename
        and isinstance(row[1], str)  # url
        and isinstance(row[3], str | None)  # requires_python
        and isinstance(row[4], str | None)  # yanked
    )


class WheelFilter:
    """Which wheels some target of the run can install, decided once per tag triple."""

    def __init__(self, tags: Iterable[str]) -> None:
        self.tags = frozenset(tags)
        self.key = hashlib.sha256("\n".join(sorted(self.tags)).encode()).hexdigest()
        self._decided: dict[str, bool] = {}

    def wanted(self, tag_triple: str) -> bool:
        decided = self._decided.get(tag_triple)
        if decided is None:
            try:
                decided = any(str(tag) in self.tags for tag in parse_tag(tag_triple))
            except ValueError:  # packaging's InvalidTag: a file name no installer accepts
                decided = False
            self._decided[tag_triple] = decided
        return decided


def listing_key(digest: str, wheels: WheelFilter, snapshot: datetime | None, project: str) -> str:
    """The derived cache key of a page's listing for a run's targets, snapshot and project (an
    index may serve one body for two projects; what belongs to each differs)."""
    moment = snapshot.isoformat() if snapshot else "-"
    text = f"{digest}\n{wheels.key}\n{moment}\n{project}"
    return hashlib.sha256(text.encode()).hexdigest()


# Checking entries -------------------------------------------------------------------------


def _sha256(value: object, what: str) -> str | None:
    """A sha256 from the index: 64 hex digits (it names cache entries and pins files)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise BadEntry(f"{what} {value!r} is not 64 hex digits")
    return value.lower()


def _upload_time(value: object) -> datetime | None:
    """PEP 700's upload-time: an ISO 8601 instant with its time zone, or absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadEntry(f"upload-time {value!r} is not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadEntry(f"upload-time {value!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is UTC:  # PyPI's (a `Z`): nothing to convert, for each of its files
        return moment
    if moment.tzinfo is None:
        raise BadEntry(f"upload-time {value!r} has no time zone")
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise BadEntry(f"upload-time {value!r} is out of range") from exc


def _metadata_hash(value: object) -> tuple[bool, str | None]:
    """(has .metadata, its sha256) from a PEP 691/714 core-metadata value or PEP 658's
    `data-core-metadata` attribute ("sha256=<hex>", or another hash, or empty)."""
    if isinstance(value, dict):
        return True, _sha256(value.get("sha256"), "core-metadata sha256")
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str):  # from an HTML attribute
        algo, _, digest = value.partition("=")
        named = algo == "sha256" and digest
        return True, _sha256(digest, "core-metadata sha256") if named else None
    raise BadEntry(f"core-metadata {value!r} is neither a boolean nor an object")


def _kept(entry: Entry, moment: datetime | None) -> Listed | None:
    """The entry checked completely, if it is a distribution file; None otherwise. `moment`:
    its upload time if already read."""
    parsed = classify(entry.filename)
    if parsed is None:
        return None
    if char := control_character(entry.filename):
        raise BadEntry(f"the file name contains {char!r}")
    if problem := url_problem(entry.url):
        raise BadEntry(f"URL {entry.url!r} is not usable: {problem}")
    name, version, kind, _tags = parsed
    has_metadata, metadata_sha256 = _metadata_hash(entry.core_metadata)
    if moment is None:
        moment = _upload_time(entry.upload_time)
    return Listed(
        name,
        str(version),
        kind,
        entry.filename,
        entry.url,
        _sha256(entry.sha256, "sha256"),
        _tag_triple(entry.filename) if kind == "wheel" else "",
        entry.requires_python,
        entry.yanked,
        metadata_sha256,
        has_metadata,
        _size(entry.size),
        _formatted_time(entry.upload_time, moment) if moment is not None else None,
    )


def _formatted_time(given: object, moment: datetime) -> str:
    """An upload time as format_snapshot writes it; `given` is the page's text of `moment`.
    PyPI gives RFC 3339 in UTC already, with six digits of fraction or none: then only the
    fraction's trailing zeros go, with no datetime arithmetic (done for every file kept)."""
    if isinstance(given, str) and _PLAIN_TIME.fullmatch(given):
        fraction = given[20:26].rstrip("0")
        return f"{given[:19]}.{fraction}Z" if fraction else f"{given[:19]}Z"
    return format_snapshot(moment)


def _size(value: object) -> int | None:
    """PEP 700's size: a non-negative integer of bytes, or absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadEntry(f"size {value!r} is not a number of bytes")
    return value


def _tag_triple(filename: str) -> str:
    """`py-abi-platform` of a wheel file name (its last three dash-separated parts)."""
    return "-".join(filename[: -len(".whl")].rsplit("-", 3)[1:])


def _foreign(name: str, project: str, canonical: dict[str, str]) -> bool:
    """Whether a distribution file whose name gives `name` as its project's (a wheel's first
    part, an sdist's stem before its last `-`, as packaging reads it) is another project's than
    the page's. pip and uv skip such files: `a`'s page listing `good_b-9.0-py3-none-any.whl`
    must not make it a 9.0. `canonical`: names already normalized (a page spells its project
    the same way throughout)."""
    normal = canonical.get(name)
    if normal is None:
        normal = canonical[name] = canonicalize_name(name)
    return normal != project


def _own_legacy(filename: str, project: str) -> bool:
    """A file of the project itself whose version holds a dash, as very old uploads do
    (`cffi-1.0.2-2.tar.gz`, `regex-2013-02-16.tar.gz`): packaging reads another name from it, so
    it is left out, but it is no other project's file and not worth a warning."""
    parts = filename.split("-")
    return any(canonicalize_name("-".join(parts[:end])) == project for end in range(1, len(parts)))


def reduce(
    reading: Reading[_Read],
    wheels: WheelFilter | None,
    snapshot: datetime | None,
    project: str,
) -> Listing:
    """The listing of a page's entries: those of the snapshot some target can use, named for
    `project` (normalized).

    A version none of whose files is kept keeps one wheel anyway, so that a nixpkgs package of
    that version still has a file to read its dependencies from.
    """
    kept: list[tuple[str, Version, Entry]] = []
    newer = untimed = 0
    stand_ins: dict[str, tuple[_Read, datetime | None]] = {}
    foreign: list[str] = []
    canonical: dict[str, str] = {}
    complete = reading.complete
    # Most entries are wheels no target installs: they are told apart with as little work as
    # possible, their name split once. A kept file's version is read from its name as
    # packaging reads it (dists.classify); the rest of its name is checked with the rest of
    # the entry, when a run looks at that version (_release_files).
    for filename, uploaded, read in reading.peeked:
        try:
            moment = None
            if snapshot is not None:
                moment = _upload_time(uploaded)
                if moment is None:
                    untimed += 1
                    continue
                if moment > snapshot:
                    newer += 1
                    continue
            if filename.endswith(".whl"):
                parts = filename[:-4].split("-")
                if len(parts) < 2:
                    continue
                kind, name, text = "wheel", parts[0], parts[1]
            elif filename.endswith((".tar.gz", ".zip")):
                stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
                name, dash, text = stem.rpartition("-")
                if not dash:
                    continue
                kind = "sdist"
            else:
                continue  # not a distribution: never kept
            if _foreign(name, project, canonical):
                if not _own_legacy(filename, project):
                    foreign.append(filename)
                continue
            if kind == "wheel":
                if len(parts) not in (5, 6):  # name-version[-build]-py-abi-platform
                    continue
                if wheels is not None and not wheels.wanted("-".join(parts[-3:])):
                    stand_ins.setdefault(text, (read, moment))
                    continue
            version = _named_version(text)
            if version is not None:
                kept.append((kind, version, complete(read)))
        except BadEntry as exc:
            raise BadEntry(f"file {filename!r}: {exc}") from exc
    seen = {version for _kind, version, _entry in kept}
    for text, (read, moment) in stand_ins.items():
        version = _named_version(text)
        if version is None or version in seen:
            continue
        try:
            entry = complete(read)
            usable = _kept(entry, moment) is not None
        except BadEntry:
            continue  # only a stand-in: a broken one is no loss
        if usable:
            kept.append(("wheel", version, entry))
    return Listing(_grouped(kept), newer, untimed, tuple(foreign))


def _named_version(text: str) -> Version | None:
    """A version as a file name spells it, or None if it is none (the file is not kept)."""
    try:
        return parse_version(text)
    except InvalidVersion:
        return None


# Reading pages ----------------------------------------------------------------------------


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
        raise BadEntry(f"{key!r} is {_json_kind(value)}, not a string")
    return value


def _complete_json(base: str, item: dict[str, object]) -> Entry:
    url = _json_string(item, "url")
    hashes = item.get("hashes") or {}
    if not isinstance(hashes, dict):
        raise BadEntry(f"'hashes' is {_json_kind(hashes)}, not an object")
    yanked = item.get("yanked", False)
    if not isinstance(yanked, bool | str):
        raise BadEntry(f"'yanked' is {_json_kind(yanked)}, not a boolean or a reason")
    requires_python = item.get("requires-python")
    if requires_python is not None and not isinstance(requires_python, str):
        raise BadEntry(f"'requires-python' is {_json_kind(requires_python)}, not a string")
    return Entry(
        _json_string(item, "filename"),
        _absolute(base, url),
        hashes.get("sha256"),
        requires_python,
        # Any string means yanked, as in pip (PEP 691 asks for a non-empty reason).
        yanked if isinstance(yanked, str) else ("" if yanked else None),
        item.get("upload-time"),
        item.get("core-metadata", item.get("data-dist-info-metadata", False)),
        item.get("size"),
    )


def _json_peeked(
    files: list[object], where: str
) -> Iterator[tuple[str, object, dict[str, object]]]:
    try:
        for item in files:
            if not isinstance(item, dict):
                raise BadEntry(f"a file entry is {_json_kind(item)}, not an object")
            filename = item.get("filename")
            if filename.__class__ is not str:  # checked inline: this runs for every entry
                filename = _json_string(item, "filename")  # raises, naming what it is
            yield filename, item.get("upload-time"), item
    except BadEntry as exc:
        raise SourceError(f"{where}: {exc}") from exc


def json_entries(url: str, body: bytes) -> Reading[dict[str, object]]:
    """A JSON page's entries; each is checked completely only if it is kept (see reduce)."""
    where = f"{redact(url)}: invalid JSON index page"
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{where} ({exc})") from exc
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, list):
        raise SourceError(f"{where} (no list of files)")
    del document  # only the entries are needed; let the rest go early
    return Reading(_json_peeked(files, where), partial(_complete_json, url))


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


def _html_entry(attrs: Mapping[str, str | None], text: str, base: str) -> Entry | None:
    href = attrs.get("href")
    if not href:
        return None
    url, fragment = urldefrag(urljoin(base, href))
    filename = text or url.rsplit("/", 1)[-1]
    metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    return Entry(
        filename,
        url,
        fragment[len("sha256=") :] if fragment.startswith("sha256=") else None,
        attrs.get("data-requires-python"),
        # PEP 592: the attribute's presence means yanked; its value, if any, is the reason.
        (attrs["data-yanked"] or "") if "data-yanked" in attrs else None,
        None,
        False if metadata is None else metadata,
    )


def _html_peeked(url: str, body: bytes) -> Iterator[tuple[str, object, Entry]]:
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    for attrs, text in parser.anchors:
        entry = _html_entry(attrs, text, url)
        if entry is not None:
            yield entry.filename, entry.upload_time, entry


def _as_read(entry: Entry) -> Entry:
    return entry  # an HTML anchor is read whole, and checked when kept


def html_entries(url: str, body: bytes) -> Reading[Entry]:
    return Reading(_html_peeked(url, body), _as_read)


def kind_of(content_type: str) -> str:
    return "JSON" if "json" in content_type else "HTML"


def listing(
    url: str,
    content_type: str,
    body: bytes,
    wheels: WheelFilter | None,
    snapshot: datetime | None,
    project: str,
) -> Listing:
    """A page's listing, JSON or HTML by its content type; a broken entry among the files
    considered is an error naming the page."""
    try:
        if "json" in content_type:
            return reduce(json_entries(url, body), wheels, snapshot, project)
        if "html" in content_type or not content_type:
            return reduce(html_entries(url, body), wheels, snapshot, project)
    except BadEntry as exc:
        raise SourceError(
            f"{redact(url)}: invalid {kind_of(content_type)} index page: {exc}"
        ) from exc
    raise SourceError(f"{redact(url)}: unexpected content type {content_type!r}")
