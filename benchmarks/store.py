"""The recording: PyPI's pages, PEP 658 metadata and files as fetched, kept outside the repository.

A recording lives in ``benchmarks/.work/recording/<snapshot>/`` (git-ignored)::

    manifest.json              what is recorded, with the sha256 of every item (see Manifest)
    pages/<name>.json.gz       a PEP 691 JSON page, byte for byte as the index sent it (gzip'd)
    metadata/<sha256>.gz       a wheel's core metadata (gzip'd), named after its own sha256
    files/<sha256>             a whole wheel or sdist, only when a tool downloaded it
    parts/<sha256>.gz          a byte range of a wheel a tool read with a range request, when
                               the index hid its metadata (server.py --no-metadata)

The repository keeps ``benchmarks/manifest.json``: the same manifest, so that a re-recording can
be compared with the recording the README's figures came from (``compare``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"  # git-ignored
RECORDINGS = WORK / "recording"
COMMITTED_MANIFEST = HERE / "manifest.json"
FORMAT = 2
PYPI_SIMPLE = "https://pypi.org/simple/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recording_dir(snapshot: str) -> Path:
    """Where the recording of a snapshot lives by default (a name without colons)."""
    return RECORDINGS / snapshot.replace(":", "")


def as_of_snapshot(page: bytes, snapshot: datetime) -> str:
    """A digest of what the page held at the snapshot: its files uploaded by then.

    A page recorded later also lists newer uploads, so its own sha256 differs; this digest
    stays the same unless PyPI changed a file of that time (a yank, say).
    """
    files = [
        f
        for f in json.loads(page).get("files", [])
        if isinstance(f.get("upload-time"), str) and parse_time(f["upload-time"]) <= snapshot
    ]
    files.sort(key=lambda f: str(f.get("filename")))
    return sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Metadata:
    sha256: str
    size: int
    source: str  # "index": PyPI served the .metadata file; "wheel": the wheel's METADATA member


@dataclass(frozen=True)
class File:
    sha256: str
    size: int


@dataclass(frozen=True)
class Part:
    first: int  # the first and last byte of the wheel it holds
    last: int
    sha256: str


class Recording:
    """One recording on disk, loaded lazily; adding to it is thread-safe (the recording proxy)."""

    def __init__(self, root: Path, snapshot: str) -> None:
        self.root = root
        self.snapshot = snapshot
        self.instant = parse_time(snapshot)
        self.lock = threading.Lock()
        self.pages: dict[NormalizedName, dict[str, Any]] = {}  # name -> manifest entry
        self.not_on_index: set[NormalizedName] = set()
        self.metadata: dict[str, Metadata] = {}  # wheel filename -> its metadata
        self.files: dict[str, File] = {}  # filename -> a whole file a tool downloaded
        self.parts: dict[str, list[Part]] = {}  # wheel filename -> ranges a tool read
        self.sets: dict[str, Any] = {}
        self.recorded: list[str] = []  # when pages were fetched: [first, last]
        manifest = root / "manifest.json"
        if manifest.is_file():
            self._load(json.loads(manifest.read_text()))

    def _load(self, doc: Mapping[str, Any]) -> None:
        if doc.get("format") != FORMAT or doc.get("snapshot") != self.snapshot:
            raise ValueError(f"{self.root}: not a recording of {self.snapshot} (format {FORMAT})")
        self.pages = {canonicalize_name(n): dict(e) for n, e in doc["pages"].items()}
        self.not_on_index = {canonicalize_name(n) for n in doc["not_on_index"]}
        self.metadata = {n: Metadata(**e) for n, e in doc["metadata"].items()}
        self.files = {n: File(**e) for n, e in doc["files"].items()}
        self.parts = {n: [Part(*p) for p in e] for n, e in doc.get("parts", {}).items()}
        self.sets = dict(doc.get("sets", {}))
        self.recorded = list(doc.get("recorded", []))

    # -- reading -----------------------------------------------------------------------------

    def page(self, name: NormalizedName) -> bytes:
        data = gzip.decompress((self.root / "pages" / f"{name}.json.gz").read_bytes())
        if sha256(data) != self.pages[name]["sha256"]:
            raise ValueError(f"{self.root}: pages/{name}.json.gz does not match the manifest")
        return data

    def metadata_bytes(self, filename: str) -> bytes:
        entry = self.metadata[filename]
        data = gzip.decompress((self.root / "metadata" / f"{entry.sha256}.gz").read_bytes())
        if sha256(data) != entry.sha256:
            raise ValueError(f"{self.root}: metadata/{entry.sha256}.gz does not match its name")
        return data

    def file_path(self, filename: str) -> Path:
        return self.root / "files" / self.files[filename].sha256

    def part(self, filename: str, first: int, last: int) -> bytes | None:
        """Bytes first..last of a wheel, if a recorded part holds them."""
        with self.lock:
            held = [p for p in self.parts.get(filename, []) if p.first <= first and last <= p.last]
        if not held:
            return None
        data = gzip.decompress((self.root / "parts" / f"{held[0].sha256}.gz").read_bytes())
        if sha256(data) != held[0].sha256:
            raise ValueError(f"{self.root}: parts/{held[0].sha256}.gz does not match its name")
        return data[first - held[0].first : last - held[0].first + 1]

    # -- adding ------------------------------------------------------------------------------

    def add_page(self, name: NormalizedName, data: bytes) -> None:
        entry = {
            "sha256": sha256(data),
            "size": len(data),
            "files": len(json.loads(data).get("files", [])),
            "as_of_snapshot": as_of_snapshot(data, self.instant),
        }
        _write_atomic(self.root / "pages" / f"{name}.json.gz", gzip.compress(data, 6, mtime=0))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.pages[name] = entry
            self.recorded = [self.recorded[0] if self.recorded else now, now]

    def add_missing(self, name: NormalizedName) -> None:
        with self.lock:
            self.not_on_index.add(name)

    def add_metadata(self, filename: str, data: bytes, source: str) -> Metadata:
        entry = Metadata(sha256(data), len(data), source)
        _write_atomic(
            self.root / "metadata" / f"{entry.sha256}.gz", gzip.compress(data, 9, mtime=0)
        )
        with self.lock:
            self.metadata[filename] = entry
        return entry

    def add_part(self, filename: str, first: int, data: bytes) -> Part:
        entry = Part(first, first + len(data) - 1, sha256(data))
        _write_atomic(self.root / "parts" / f"{entry.sha256}.gz", gzip.compress(data, 6, mtime=0))
        with self.lock:
            self.parts.setdefault(filename, []).append(entry)
        return entry

    def add_file(self, filename: str, source: Path, digest: str) -> File:
        """Move a downloaded file (already checked against digest) into the recording."""
        entry = File(digest, source.stat().st_size)
        target = self.root / "files" / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        with self.lock:
            self.files[filename] = entry
        return entry

    def manifest(self) -> dict[str, Any]:
        with self.lock:
            return {
                "format": FORMAT,
                "snapshot": self.snapshot,
                "index": PYPI_SIMPLE,
                "recorded": list(self.recorded),
                "sets": self.sets,
                "pages": {n: self.pages[n] for n in sorted(self.pages)},
                "not_on_index": sorted(self.not_on_index),
                "metadata": {
                    n: vars(m) for n, m in sorted(self.metadata.items(), key=lambda i: i[0])
                },
                "files": {n: vars(f) for n, f in sorted(self.files.items(), key=lambda i: i[0])},
                "parts": {
                    n: sorted([p.first, p.last, p.sha256] for p in parts)
                    for n, parts in sorted(self.parts.items(), key=lambda i: i[0])
                },
            }

    def save(self) -> None:
        text = json.dumps(self.manifest(), indent=1) + "\n"
        _write_atomic(self.root / "manifest.json", text.encode())

    def sizes(self) -> dict[str, int]:
        """Bytes on disk, by kind (compressed as stored)."""
        out: dict[str, int] = {}
        for kind in ("pages", "metadata", "files", "parts"):
            folder = self.root / kind
            out[kind] = sum(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() else 0
        return out


def load_committed(path: Path = COMMITTED_MANIFEST) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _differences(
    kind: str, ours: Mapping[str, Any], theirs: Mapping[str, Any], field: str
) -> Iterator[str]:
    same = [n for n in ours if n in theirs and ours[n][field] == theirs[n][field]]
    differ = sorted(n for n in ours if n in theirs and ours[n][field] != theirs[n][field])
    only_ours = sorted(set(ours) - set(theirs))
    only_theirs = sorted(set(theirs) - set(ours))
    line = f"{kind}: {len(same)} identical"
    if differ:
        line += f", {len(differ)} differ ({', '.join(differ[:5])}{', ...' if differ[5:] else ''})"
    if only_ours:
        line += f", {len(only_ours)} only in the recording"
    if only_theirs:
        line += f", {len(only_theirs)} only in the committed manifest"
    yield line


def compare(recorded: Mapping[str, Any], committed: Mapping[str, Any]) -> list[str]:
    """How a recording differs from the committed manifest, one line per kind of item."""
    if recorded["snapshot"] != committed["snapshot"]:
        return [f"snapshot {recorded['snapshot']} is not the committed {committed['snapshot']}"]
    lines = list(_differences("pages (bytes)", recorded["pages"], committed["pages"], "sha256"))
    lines += _differences(
        "pages (as of the snapshot)", recorded["pages"], committed["pages"], "as_of_snapshot"
    )
    lines += _differences("metadata", recorded["metadata"], committed["metadata"], "sha256")
    lines += _differences("files", recorded["files"], committed["files"], "sha256")
    for name, entry in committed["sets"].items():
        ours = recorded["sets"].get(name, {}).get("reference")
        if ours is not None and ours != entry.get("reference"):
            lines.append(f"set {name}: the reference pins differ from the committed ones")
    return lines


def _changed(ours: Mapping[str, Any], theirs: Mapping[str, Any], field: str) -> list[str]:
    return sorted(n for n in ours if n in theirs and ours[n][field] != theirs[n][field])


def mismatches(recorded: Mapping[str, Any], committed: Mapping[str, Any]) -> list[str]:
    """Why a recording is not the one the committed manifest describes, if it is not: another
    snapshot, a page whose files as of the snapshot differ, metadata or files with other bytes,
    other reference pins. A page whose bytes differ only by uploads after the snapshot still
    matches (the tools see the same files), and items only one side holds are not mismatches
    (the recording is extended as sets need it)."""
    if recorded["snapshot"] != committed["snapshot"]:
        return [f"snapshot {recorded['snapshot']} is not the committed {committed['snapshot']}"]
    found = []
    for kind, field in (
        ("pages", "as_of_snapshot"),
        ("metadata", "sha256"),
        ("files", "sha256"),
    ):
        changed = _changed(recorded[kind], committed[kind], field)
        if changed:
            shown = ", ".join(changed[:5]) + (", ..." if changed[5:] else "")
            found.append(f"{len(changed)} {kind} differ from the manifest ({shown})")
    for name, entry in committed["sets"].items():
        ours = recorded["sets"].get(name, {}).get("reference")
        if ours is not None and ours != entry.get("reference"):
            found.append(f"set {name}: the reference pins differ from the committed ones")
    return found
