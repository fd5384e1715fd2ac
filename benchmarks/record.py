#!/usr/bin/env python3
"""Record a trimmed snapshot of real PyPI metadata for the resolver benchmark.

Run once by hand; it needs https://pypi.org and ``uv`` on PATH.  The result, ``data/`` beside
this file, is committed and served by ``server.py``::

    python benchmarks/record.py [--snapshot 2026-11-01T00:00:00Z]

What it does:

1. Resolves ``requirements.txt`` against real PyPI with ``uv pip compile`` (CPython 3.12,
   ``{x86_64,aarch64}-manylinux_2_28``, wheels only, ``--exclude-newer SNAPSHOT``).  The pins
   are kept in the manifest as the reference answer, and their names seed the closure.
2. For every project reached, fetches the PEP 691 JSON page and trims it: wheels only, uploaded
   no later than the snapshot, not yanked, Requires-Python admitting 3.12, compatible with
   CPython 3.12 on manylinux x86_64 or aarch64 (``py3-none-any``, ``abi3`` and ``cp312``
   manylinux tags; no musllinux, Windows, macOS, other CPythons, bare ``linux_*`` tags or
   sdists), from the newest ``--max-versions`` final releases (plus the reference pin, should
   it be older).
3. Fetches each kept wheel's PEP 658 ``.metadata`` and verifies it (see ``Fetcher.metadata``),
   then stores it gzip'd under its sha256 (identical metadata of sibling wheels is stored
   once).  A wheel whose metadata cannot be had or verified is dropped.  The recorded pages
   carry ``core-metadata`` (and the legacy ``data-dist-info-metadata``) for every kept wheel.

   The PyPI reached from the recording machine is a mirror: its simple pages lack the
   ``core-metadata`` key, its JSON API (``/pypi/<name>/json``) has it for some files only,
   and some ``.metadata`` files are missing.  So the published hash is taken from the page
   or else the JSON API; a ``.metadata`` file is checked against it, or, where no hash is
   published, against the ``METADATA`` member of the wheel itself (read with HTTP range
   requests, the wheel is not downloaded); where no ``.metadata`` file is served, that member
   is the metadata (PEP 658 defines the file as that member).  ``manifest.json`` counts each
   way under ``stats.metadata_sources``.
4. Follows every kept version's ``Requires-Dist`` (markers evaluated for CPython 3.12 on
   linux x86_64 and aarch64; ``extra`` markers only for extras that something requests) to
   more projects until nothing new turns up, so that whatever a resolver might explore while
   backtracking is on the local index.

Layout of ``data/``:

* ``manifest.json``: snapshot, roots, project list, reference pins, statistics.
* ``projects/<normalized-name>.json``: the trimmed PEP 691 page; file URLs are relative to the
  page (``../../files/<name>/<filename>``).
* ``metadata/<sha256>.gz``: the core metadata files.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import email.parser
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import urllib3
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"
DEFAULT_REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_SNAPSHOT = "2026-11-01T00:00:00Z"
PYPI_SIMPLE = "https://pypi.org/simple/"
PYPI_JSON = "https://pypi.org/pypi/"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
API_VERSION = "1.1"
FORMAT = 1
DEFAULT_MAX_VERSIONS = 8
PYTHON = (3, 12)
ARCHES = ("x86_64", "aarch64")
UV_PLATFORMS = tuple(f"{arch}-manylinux_2_28" for arch in ARCHES)
# Keep manylinux wheels for any glibc up to 2.50 (none newer exist): machci targets nixpkgs'
# glibc (2.42 by default), uv's ``*-manylinux_2_28`` targets take the older subset, pip-compile
# takes what the machine running it has.
GLIBC_MAX_MINOR = 50
# Patch releases a resolver might assume for "3.12": 3.12.0 (uv's --python-version), a
# pyenv 3.12.1 (pip-compile here), nixpkgs' 3.12.13 (machci), and a later one.
PATCHES = (0, 1, 13, 20)
WORKERS = 16
KEPT_FILE_KEYS = ("filename", "hashes", "requires-python", "size", "upload-time")


def log(message: str) -> None:
    print(f"record: {message}", file=sys.stderr, flush=True)


# -- compatibility ---------------------------------------------------------------------------


def supported_tags() -> frozenset[Tag]:
    """Wheel tags installable on CPython 3.12, manylinux x86_64 or aarch64."""
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MAX_MINOR, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    platforms += [f"manylinux_2_{minor}_aarch64" for minor in range(GLIBC_MAX_MINOR, 16, -1)]
    platforms += ["manylinux2014_aarch64"]
    tags = set(cpython_tags(PYTHON, abis=["cp312"], platforms=platforms))
    tags.update(compatible_tags(PYTHON, "cp312", platforms))
    return frozenset(tags)


def marker_environments() -> list[dict[str, str]]:
    """The PEP 508 environments of the benchmark's targets (several 3.12 patch releases)."""
    envs: list[dict[str, str]] = []
    for arch in ARCHES:
        for full in (f"3.12.{patch}" for patch in PATCHES):
            envs.append(
                {
                    "implementation_name": "cpython",
                    "implementation_version": full,
                    "os_name": "posix",
                    "platform_machine": arch,
                    "platform_python_implementation": "CPython",
                    "platform_release": "",
                    "platform_system": "Linux",
                    "platform_version": "",
                    "python_full_version": full,
                    "python_version": "3.12",
                    "sys_platform": "linux",
                }
            )
    return envs


def requires_python_ok(value: object) -> bool:
    if value is None or value == "":
        return True
    if not isinstance(value, str):
        return False
    try:
        spec = SpecifierSet(value)
    except InvalidSpecifier:
        return False  # tools disagree on invalid specifiers: keep them out of the benchmark
    return any(spec.contains(f"3.12.{patch}") for patch in PATCHES)


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Candidate:
    version: Version
    file: dict[str, Any]
    published: str | None  # the index's core-metadata sha256, when it says
    metadata_sha256: str | None = None  # of the metadata recorded

    @property
    def key(self) -> str:
        return self.published or self.file["url"]


def wheel_candidates(
    page: Mapping[str, Any],
    snapshot: datetime,
    tags: frozenset[Tag],
    extra_core: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[Version, list[Candidate]]:
    """The page's wheels that a cp312 manylinux resolver could use at the snapshot, by version.

    ``extra_core`` maps filenames to ``{"sha256": <metadata>, "file_sha256": <wheel>}`` for
    pages that lack ``core-metadata`` (see ``Fetcher.core_metadata``).  A wheel for which
    neither says is still a candidate: ``Fetcher.metadata`` then cross-checks the served
    ``.metadata`` with the wheel's own ``METADATA``.
    """
    out: dict[Version, list[Candidate]] = {}
    for raw in page.get("files", []):
        if not isinstance(raw, dict):
            continue
        filename = raw.get("filename")
        if not isinstance(filename, str) or not filename.endswith(".whl"):
            continue
        try:
            _name, version, _build, file_tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if raw.get("yanked"):
            continue
        uploaded = raw.get("upload-time")
        if not isinstance(uploaded, str) or parse_time(uploaded) > snapshot:
            continue
        if file_tags.isdisjoint(tags) or not requires_python_ok(raw.get("requires-python")):
            continue
        hashes = raw.get("hashes")
        if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
            continue
        core = raw.get("core-metadata", raw.get("data-dist-info-metadata"))
        if not isinstance(core, dict) and extra_core is not None:
            core = extra_core.get(filename)
            if isinstance(core, dict) and core.get("file_sha256") != hashes["sha256"]:
                continue  # the two APIs disagree on the file: leave it out
        published = core.get("sha256") if isinstance(core, dict) else None
        published = published if isinstance(published, str) else None
        out.setdefault(version, []).append(Candidate(version, raw, published))
    return out


def choose_versions(
    candidates: Mapping[Version, list[Candidate]], max_versions: int, keep: Iterable[Version]
) -> list[Version]:
    """The newest max_versions final releases (pre-releases only when there is nothing else)."""
    ordered = sorted(candidates, reverse=True)
    finals = [v for v in ordered if not v.is_prerelease]
    chosen = set((finals or ordered)[:max_versions])
    chosen.update(v for v in keep if v in candidates)
    return sorted(chosen, reverse=True)


# -- fetching --------------------------------------------------------------------------------


class Fetcher:
    def __init__(self) -> None:
        retry = urllib3.Retry(
            total=5,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
        )
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=WORKERS,
            retries=retry,
            timeout=urllib3.Timeout(connect=30, read=60),
            headers={"User-Agent": "machci-benchmark-recorder/1"},
        )
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.how: dict[str, int] = {}

    def get(
        self, url: str, accept: str | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        sent = dict(headers or {})
        if accept:
            sent["Accept"] = accept
        response = self.pool.request("GET", url, headers=sent)
        with self.lock:
            self.requests += 1
            self.bytes += len(response.data)
        return response.status, response.data

    def page(self, name: str) -> dict[str, Any] | None:
        status, body = self.get(f"{PYPI_SIMPLE}{name}/", JSON_TYPE)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"{name}: PyPI answered HTTP {status}")
        return cast(dict[str, Any], json.loads(body))

    def core_metadata(self, name: str) -> dict[str, dict[str, str]]:
        """PEP 658 hashes from PyPI's JSON API: {filename: {"sha256", "file_sha256"}}.

        The simple pages reached from here come through a mirror that drops the
        ``core-metadata`` key; its JSON API carries the key for some release files (and says
        ``false`` for others whose ``.metadata`` is nevertheless served).
        """
        status, body = self.get(f"{PYPI_JSON}{name}/json")
        if status != 200:
            return {}
        out: dict[str, dict[str, str]] = {}
        releases = json.loads(body).get("releases") or {}
        for files in releases.values():
            for f in files or []:
                core = f.get("core-metadata", f.get("data-dist-info-metadata"))
                digest = (f.get("digests") or {}).get("sha256")
                if isinstance(core, dict) and isinstance(core.get("sha256"), str) and digest:
                    out[f["filename"]] = {"sha256": core["sha256"], "file_sha256": digest}
        return out

    def metadata(self, url: str, published: str | None, size: int) -> bytes | None:
        """The wheel's PEP 658 metadata, verified; None when it cannot be.

        With a published hash: ``<url>.metadata`` checked against it, or failing that the
        wheel's ``*.dist-info/METADATA`` member (read with HTTP range requests; PyPI's
        ``.metadata`` file is that very member) checked against it.  Without one: the served
        ``.metadata`` must equal the wheel's member byte for byte; when nothing is served the
        member alone is taken (it is, by definition, the wheel's core metadata).
        """
        served: bytes | None = None
        for _attempt in range(2):
            status, body = self.get(url + ".metadata")
            if status == 200 and (published is None or _sha256(body) == published):
                served = body
                break
            if status == 404:
                break
        if served is not None and published is not None:
            return self._took(served, "matched the published hash")
        try:
            member = self.metadata_from_wheel(url, size)
        except (OSError, zipfile.BadZipFile, urllib3.exceptions.HTTPError) as exc:
            log(f"warning: cannot read the metadata out of {url}: {exc}")
            member = None
        if member is None:
            return None
        if published is not None:
            if _sha256(member) != published:
                return None
            return self._took(member, "read from the wheel, matched the published hash")
        if served is not None:
            if served != member:
                log(f"warning: {url}.metadata differs from the wheel's METADATA")
                return None
            return self._took(served, "served .metadata equal to the wheel's METADATA")
        return self._took(member, "read from the wheel (no .metadata, no published hash)")

    def _took(self, body: bytes, how: str) -> bytes:
        with self.lock:
            self.how[how] = self.how.get(how, 0) + 1
        return body

    def metadata_from_wheel(self, url: str, size: int) -> bytes | None:
        with zipfile.ZipFile(cast(IO[bytes], RangeFile(self, url, size))) as wheel:
            members = [
                n
                for n in wheel.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(members) != 1:
                return None
            return wheel.read(members[0])


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file through HTTP range requests."""

    BLOCK = 64 * 1024

    def __init__(self, fetcher: Fetcher, url: str, size: int) -> None:
        super().__init__()
        self.fetcher = fetcher
        self.url = url
        self.size = size
        self.pos = 0
        self.chunks: list[tuple[int, bytes]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        if end <= self.pos:
            return b""
        data = self._range(self.pos, end)
        self.pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def _range(self, start: int, end: int) -> bytes:
        for chunk_start, chunk in self.chunks:
            if chunk_start <= start and end <= chunk_start + len(chunk):
                return chunk[start - chunk_start : end - chunk_start]
        # Fetch a whole block; anything in the last block fetches the whole tail, where the
        # end-of-central-directory record and (usually) the central directory live.
        first = max(0, self.size - self.BLOCK) if start >= self.size - self.BLOCK else start
        last = max(end, min(self.size, first + self.BLOCK))
        status, body = self.fetcher.get(self.url, headers={"Range": f"bytes={first}-{last - 1}"})
        if status == 200 and len(body) == self.size:
            body = body[first:last]
        elif status != 206 or len(body) != last - first:
            raise OSError(f"range request answered HTTP {status} with {len(body)} bytes")
        self.chunks.append((first, body))
        return body[start - first : end - first]


# -- the closure -----------------------------------------------------------------------------


@dataclass
class Project:
    name: NormalizedName
    page: dict[str, Any] | None = None  # trimmed; None when PyPI has no such project
    requires: list[Requirement] = field(default_factory=list)
    dropped: int = 0


@dataclass
class Recorder:
    snapshot: datetime
    snapshot_text: str
    max_versions: int
    reference: dict[str, dict[str, str]]
    fetcher: Fetcher = field(default_factory=Fetcher)
    tags: frozenset[Tag] = field(default_factory=supported_tags)
    envs: list[dict[str, str]] = field(default_factory=marker_environments)
    projects: dict[NormalizedName, Project] = field(default_factory=dict)
    extras: dict[NormalizedName, set[str]] = field(default_factory=dict)
    metadata: dict[str, bytes] = field(default_factory=dict)

    def want(self, name: str, extras: Iterable[str] = ()) -> bool:
        """Ask for a project (with extras); True when that is news."""
        key = canonicalize_name(name)
        have = self.extras.get(key)
        wanted: set[str] = {canonicalize_name(e) for e in extras}
        if have is None:
            self.extras[key] = wanted
            return True
        if wanted - have:
            have.update(wanted)
            return True
        return False

    def run(self, seeds: Iterable[tuple[str, Iterable[str]]]) -> None:
        pending: set[NormalizedName] = set()
        for name, extras in seeds:
            self.want(name, extras)
            pending.add(canonicalize_name(name))
        rounds = 0
        while pending:
            rounds += 1
            fresh = sorted(n for n in pending if n not in self.projects)
            log(f"round {rounds}: {len(fresh)} new projects, {len(pending)} to expand")
            self.fetch(fresh)
            grown: set[NormalizedName] = set()
            for name in sorted(pending):
                grown |= self.expand(self.projects[name])
            pending = grown

    def fetch(self, names: list[NormalizedName]) -> None:
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            pages = dict(zip(names, pool.map(self.fetcher.page, names), strict=True))
            lacking = [n for n in names if pages[n] is not None and not has_core(pages[n])]
            extra_core = dict(
                zip(lacking, pool.map(self.fetcher.core_metadata, lacking), strict=True)
            )
            jobs: list[tuple[NormalizedName, Candidate]] = []
            chosen: dict[NormalizedName, list[Candidate]] = {}
            for name in names:
                page = pages[name]
                if page is None:
                    log(f"warning: {name} is not on PyPI")
                    self.projects[name] = Project(name)
                    continue
                candidates = wheel_candidates(page, self.snapshot, self.tags, extra_core.get(name))
                keep = [Version(pins[name]) for pins in self.reference.values() if name in pins]
                versions = choose_versions(candidates, self.max_versions, keep)
                chosen[name] = [c for v in versions for c in candidates[v]]
                jobs.extend((name, c) for c in chosen[name])
            todo: dict[str, Candidate] = {}
            for _, c in jobs:
                todo.setdefault(c.key, c)
            fetched = pool.map(
                lambda c: self.fetcher.metadata(
                    c.file["url"], c.published, int(c.file.get("size") or 0)
                ),
                todo.values(),
            )
            found: dict[str, str] = {}
            for key, body in zip(todo, fetched, strict=True):
                if body is not None:
                    sha = _sha256(body)
                    self.metadata[sha] = body
                    found[key] = sha
        for name, files in chosen.items():
            project = Project(name)
            kept: list[Candidate] = []
            for c in files:
                c.metadata_sha256 = found.get(c.key)
                if c.metadata_sha256 is not None:
                    kept.append(c)
            project.dropped = len(files) - len(kept)
            if project.dropped:
                log(f"warning: {name}: dropped {project.dropped} wheels without usable metadata")
            project.page = self.trimmed_page(name, kept)
            seen: set[str] = set()
            for sha in sorted({c.metadata_sha256 for c in kept if c.metadata_sha256}):
                for req in requires_dist(self.metadata[sha]):
                    if str(req) not in seen:
                        seen.add(str(req))
                        project.requires.append(req)
            self.projects[name] = project

    def trimmed_page(self, name: NormalizedName, kept: list[Candidate]) -> dict[str, Any]:
        files: list[dict[str, Any]] = []
        for c in sorted(kept, key=lambda c: (c.version, c.file["filename"])):
            entry = {k: c.file.get(k) for k in KEPT_FILE_KEYS}
            entry["hashes"] = {"sha256": c.file["hashes"]["sha256"]}
            entry["url"] = f"../../files/{name}/{c.file['filename']}"
            entry["yanked"] = False
            entry["core-metadata"] = {"sha256": c.metadata_sha256}
            entry["data-dist-info-metadata"] = {"sha256": c.metadata_sha256}
            files.append(entry)
        versions = sorted({c.version for c in kept})
        return {
            "meta": {"api-version": API_VERSION},
            "name": name,
            "versions": [str(v) for v in versions],
            "files": files,
        }

    def expand(self, project: Project) -> set[NormalizedName]:
        """Ask for the dependencies of every kept version; the projects that grew."""
        grown: set[NormalizedName] = set()
        extras = sorted(self.extras.get(project.name, set()))
        for req in project.requires:
            if req.url or not self.applies(req, extras):
                continue
            if self.want(req.name, req.extras):
                grown.add(canonicalize_name(req.name))
        return grown

    def applies(self, req: Requirement, extras: list[str]) -> bool:
        if req.marker is None:
            return True
        for env in self.envs:
            for extra in ["", *extras]:
                if req.marker.evaluate({**env, "extra": extra}):
                    return True
        return False


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def has_core(page: Mapping[str, Any] | None) -> bool:
    files = page.get("files", []) if page else []
    return any(
        isinstance(f, dict) and ("core-metadata" in f or "data-dist-info-metadata" in f)
        for f in files
    )


def requires_dist(metadata: bytes) -> list[Requirement]:
    message = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
    out: list[Requirement] = []
    for value in message.get_all("Requires-Dist") or []:
        try:
            out.append(Requirement(str(value)))
        except InvalidRequirement:
            log(f"warning: unparsable Requires-Dist {value!r}")
    return out


# -- roots and the reference resolution -------------------------------------------------------


def read_roots(path: Path) -> list[Requirement]:
    roots: list[Requirement] = []
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            roots.append(Requirement(text))
    return roots


def uv_reference(requirements: Path, snapshot: str) -> dict[str, dict[str, str]]:
    """``uv pip compile`` against real PyPI for each platform: {platform: {name: version}}."""
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("record: uv is needed on PATH to discover the closure")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env["UV_NO_CONFIG"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    out: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="machci-record-") as tmp:
        for platform in UV_PLATFORMS:
            target = Path(tmp) / f"{platform}.txt"
            cmd = [
                uv, "pip", "compile", str(requirements),
                "--index-url", PYPI_SIMPLE,
                "--python-version", f"{PYTHON[0]}.{PYTHON[1]}",
                "--python-platform", platform,
                "--exclude-newer", snapshot,
                "--only-binary", ":all:",
                "--no-header", "--no-annotate", "--quiet",
                "--cache-dir", str(Path(tmp) / "cache"),
                "-o", str(target),
            ]  # fmt: skip
            log(f"resolving the roots on real PyPI for {platform}")
            subprocess.run(cmd, check=True, env=env)
            out[platform] = parse_pins(target.read_text())
    return out


def parse_pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0].strip())] = version.split(";")[0].strip()
    return pins


# -- writing ---------------------------------------------------------------------------------


def write_data(recorder: Recorder, target: Path, roots: list[Requirement]) -> dict[str, Any]:
    staging = Path(tempfile.mkdtemp(prefix=".data-", dir=target.parent))
    staging.chmod(0o755)
    try:
        (staging / "projects").mkdir()
        (staging / "metadata").mkdir()
        used: set[str] = set()
        files = versions = dropped = 0
        for name, project in sorted(recorder.projects.items()):
            if project.page is None:
                continue
            page = project.page
            files += len(page["files"])
            versions += len(page["versions"])
            dropped += project.dropped
            used.update(f["core-metadata"]["sha256"] for f in page["files"])
            text = json.dumps(page, indent=1, sort_keys=True) + "\n"
            (staging / "projects" / f"{name}.json").write_text(text)
        for sha in sorted(used):
            body = gzip.compress(recorder.metadata[sha], compresslevel=9, mtime=0)
            (staging / "metadata" / f"{sha}.gz").write_bytes(body)
        names = sorted(n for n, p in recorder.projects.items() if p.page is not None)
        missing = sorted(n for n, p in recorder.projects.items() if p.page is None)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "snapshot": recorder.snapshot_text,
            "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source_index": PYPI_SIMPLE,
            "python": f"{PYTHON[0]}.{PYTHON[1]}",
            "platforms": list(UV_PLATFORMS),
            "filter": (
                "wheels only; upload-time <= snapshot; not yanked; Requires-Python admits 3.12;"
                " tags for CPython 3.12 (cp312, abi3, py3-none-any) on manylinux x86_64 or"
                f" aarch64 up to glibc 2.{GLIBC_MAX_MINOR}; PEP 658 metadata present and"
                f" verified; newest {recorder.max_versions} final releases with such a wheel"
                " (plus the reference pins)"
            ),
            "max_versions": recorder.max_versions,
            "roots": [str(r) for r in roots],
            "projects": names,
            "not_on_pypi": missing,
            "reference": recorder.reference,
            "stats": {
                "projects": len(names),
                "versions": versions,
                "files": files,
                "metadata_files": len(used),
                "dropped_wheels": dropped,
                "metadata_sources": dict(sorted(recorder.fetcher.how.items())),
                "pypi_requests": recorder.fetcher.requests,
                "pypi_bytes": recorder.fetcher.bytes,
            },
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--snapshot", default=DEFAULT_SNAPSHOT, help="RFC 3339 UTC time")
    parser.add_argument("-r", "--requirements", type=Path, default=DEFAULT_REQUIREMENTS)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="output directory")
    parser.add_argument("--max-versions", type=int, default=DEFAULT_MAX_VERSIONS)
    args = parser.parse_args(argv)

    started = time.monotonic()
    roots = read_roots(args.requirements)
    reference = uv_reference(args.requirements, args.snapshot)
    recorder = Recorder(
        snapshot=parse_time(args.snapshot.replace("Z", "+00:00")),
        snapshot_text=args.snapshot,
        max_versions=args.max_versions,
        reference=reference,
    )
    seeds: list[tuple[str, Iterable[str]]] = [(r.name, r.extras) for r in roots]
    seeds += [(name, ()) for pins in reference.values() for name in pins]
    recorder.run(seeds)
    manifest = write_data(recorder, args.data.resolve(), roots)
    stats = manifest["stats"]
    size = directory_size(args.data)
    log(
        f"{len(roots)} roots, {stats['projects']} projects, {stats['versions']} versions,"
        f" {stats['files']} wheels, {stats['metadata_files']} metadata files;"
        f" {size / 1e6:.1f} MB in {args.data} ({time.monotonic() - started:.0f} s,"
        f" {stats['pypi_requests']} requests)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
