#!/usr/bin/env python3
"""Serve a recording as PyPI serves its index, on 127.0.0.1; or record through it.

``run.py`` and ``record.py`` start it in a thread; by hand::

    python benchmarks/server.py [--port 0] [--record] [--no-metadata] [--latency MS]

Routes, as on pypi.org and files.pythonhosted.org (one host here):

* ``/simple/<name>/``: the recorded PEP 691 JSON page (a non-normalised name, or a missing
  trailing slash, answers 301).  Two changes to what PyPI sent: file URLs point here (same
  paths), and every wheel carries ``core-metadata`` and ``data-dist-info-metadata`` -- pypi.org
  lists them for its wheels; the mirror recorded from omits them.  A wheel whose metadata was
  not recorded gets a stand-in sha256 (so the page keeps pypi.org's size); asking for it is a
  miss.  JSON only (``Accept`` must allow it, else 406); gzip when the client accepts it.
* ``/packages/.../<file>.metadata``: the PEP 658 core metadata.
* ``/packages/.../<file>``: the whole file, when a tool downloaded it while recording.

Caching as PyPI: pages ``Cache-Control: max-age=600``, files and metadata
``Cache-Control: max-age=365000000, immutable``; every 200 has an ``ETag`` and ``If-None-Match``
answers 304.  Files and metadata honour ``Range: bytes=`` (206, ``Accept-Ranges: bytes``).

Without PEP 658 (``pep658=False``, ``--no-metadata``), as on an index that has none: pages list
no ``core-metadata`` or ``data-dist-info-metadata``, ``.metadata`` URLs answer 404, and a tool
reads a wheel's metadata out of the wheel.  A wheel not recorded whole then answers ``HEAD``
with its size, and a range from the recorded parts of it.

A network (``latency``, ``--latency MS``): each answer waits that long before it starts, as a
round trip to a CDN's edge would, and each new connection waits as long once more, for its
handshake (one round trip: there is no TLS here). Bandwidth is not limited: bodies arrive at
loopback speed.

Recording (``upstream`` given, ``--record``): whatever is not recorded yet is fetched from PyPI,
stored in the recording and served.  A wheel whose metadata is not recorded yet is listed with
``core-metadata: true`` (no hash): uv then asks for its ``.metadata``, machci (which wants a
hash) for the wheel itself, by range requests, or whole.  Its metadata is then recorded; a
range is fetched from PyPI and passed through, a whole wheel downloaded and passed through
(refused when huge), neither stored.  Without PEP 658, a range of a wheel is fetched and
recorded as a part.  Without ``upstream``, asking for anything not recorded is a miss: 404,
counted, and named in ``stats()``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from packaging.utils import NormalizedName, canonicalize_name
from store import (
    COMMITTED_MANIFEST,
    PYPI_SIMPLE,
    Recording,
    load_committed,
    recording_dir,
    sha256,
)
from upstream import Upstream, UpstreamError

__all__ = ["IndexServer", "Stats"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
JSON_TYPES = (JSON_TYPE, "application/vnd.pypi.simple.latest+json")
PAGE_CACHE = "max-age=600"
FILE_CACHE = "max-age=365000000, immutable"
# While recording, larger files are not downloaded: a file a tool wants is recorded up to
# MAX_FILE_BYTES; a wheel it downloads only for its metadata is passed through up to
# MAX_PASS_THROUGH_BYTES (its metadata is recorded either way).  torch's wheels are gigabytes.
MAX_FILE_BYTES = 200_000_000
MAX_PASS_THROUGH_BYTES = 20_000_000


@dataclass(frozen=True)
class Body:
    data: bytes
    etag: str
    gzipped: bytes | None = None  # pages: the gzip encoding, served when accepted


@dataclass(frozen=True)
class Entry:
    """One file listed on a recorded page."""

    filename: str
    sha256: str
    size: int
    upstream_url: str


@dataclass
class Stats:
    """What the server answered since the last reset: requests and body bytes by kind."""

    requests: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)  # asked for, not recorded (or refused)
    passed: list[str] = field(default_factory=list)  # whole wheels passed through, not stored


def standin_digest(file_sha256: str) -> str:
    """The sha256 a page lists for metadata that was not recorded: deterministic, not real."""
    return sha256(f"metadata not recorded for {file_sha256}".encode())


def _accepts(header: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out[parts[0].lower()] = max(q, out.get(parts[0].lower(), 0.0))
    return out


def accepts_json(accept: str) -> bool:
    prefs = _accepts(accept)
    return any(prefs.get(t, 0.0) > 0 for t in JSON_TYPES)


def accepts_gzip(accept_encoding: str) -> bool:
    prefs = _accepts(accept_encoding)
    return prefs.get("gzip", prefs.get("*", 0.0)) > 0


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) inclusive for a single ``bytes=`` range; None to send the whole body;
    "unsatisfiable" for 416.  Several ranges get the whole body, as RFC 9110 allows."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[len("bytes=") :].strip().partition("-")
    try:
        if not first_text:
            length = int(last_text)
            if length <= 0:
                return "unsatisfiable"
            return max(0, size - length), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size or last < first:
        return "unsatisfiable"
    return first, min(last, size - 1)


def _etag_matches(if_none_match: str | None, etags: tuple[str, ...]) -> bool:
    if not if_none_match:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or any(c in etags for c in candidates)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, index: IndexServer, host: str, port: int) -> None:
        self.index = index
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response are normal


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "machci-benchmark-index/2"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out as two writes
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        if self.server.index.latency:  # a new connection: its handshake's round trip
            time.sleep(self.server.index.latency)

    def do_GET(self) -> None:
        self.server.index.handle(self, head=False)

    def do_HEAD(self) -> None:
        self.server.index.handle(self, head=True)

    def reply(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes | memoryview = b"",
        *,
        head: bool = False,
        length: int | None = None,
    ) -> int:
        """Send a response; the body bytes sent.  `length`: the Content-Length of a HEAD
        answer whose body is not at hand."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if head or status == 304:
            return 0
        self.wfile.write(body)
        return len(body)


class IndexServer:
    """A recording on 127.0.0.1 (random port), served from a daemon thread."""

    def __init__(
        self,
        recording: Recording,
        upstream: Upstream | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pep658: bool = True,
        latency: float = 0.0,
    ) -> None:
        """`latency`: seconds each answer (and each new connection) waits, as over a network."""
        self.recording = recording
        self.latency = latency
        self.upstream = upstream
        self.pep658 = pep658  # False: no PEP 658 metadata, as on an index without it
        self.host = host
        self.port = port
        self.entries: dict[str, Entry] = {}  # URL path -> the file
        self.pages: dict[NormalizedName, Body] = {}  # served pages, when not recording
        self.metadata: dict[str, Body] = {}
        self._stats = Stats()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = _HTTPServer(self, self.host, self.port)
        if self.upstream is None:  # a fixed recording: render every page once, up front
            for name in self.recording.pages:
                self.pages[name] = self._render(name)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="machci-benchmark-index",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> IndexServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The index URL (``--index-url``): ``http://127.0.0.1:PORT/simple/``."""
        return f"{self.base_url}/simple/"

    # -- statistics --------------------------------------------------------------------------

    def _count(self, kind: str, size: int, miss: str | None = None) -> None:
        with self._lock:
            self._stats.requests[kind] += 1
            self._stats.bytes[kind] += size
            if miss is not None:
                self._stats.misses.append(miss)

    def stats(self) -> Stats:
        with self._lock:
            return Stats(
                Counter(self._stats.requests),
                Counter(self._stats.bytes),
                [*self._stats.misses],
                [*self._stats.passed],
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = Stats()

    # -- pages -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _once(self, key: str) -> Iterator[None]:
        """One thread at a time fetches a given item while recording."""
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def _render(self, name: NormalizedName) -> Body:
        """The page as served: local file URLs, and core-metadata on every wheel (on none
        without PEP 658)."""
        doc = json.loads(self.recording.page(name))
        page_url = f"{PYPI_SIMPLE}{name}/"
        for position, file in enumerate(doc.get("files", [])):
            upstream_url = urljoin(page_url, file["url"])
            path = urlsplit(upstream_url).path
            filename = file["filename"]
            digest = (file.get("hashes") or {}).get("sha256", "")
            with self._lock:
                self.entries[path] = Entry(
                    filename, digest, int(file.get("size") or 0), upstream_url
                )
            file["url"] = self.base_url + path
            if not self.pep658:
                file.pop("core-metadata", None)
                file.pop("data-dist-info-metadata", None)
            elif filename.endswith(".whl"):
                known = self.recording.metadata.get(filename)
                core: object = {"sha256": known.sha256} if known else None
                if core is None:  # recording: no hash yet; else a stand-in (a miss if asked)
                    core = True if self.upstream else {"sha256": standin_digest(digest)}
                file["core-metadata"] = file["data-dist-info-metadata"] = core
            doc["files"][position] = dict(sorted(file.items()))
        data = json.dumps(doc).encode()
        return Body(data, f'"{sha256(data)[:32]}"', gzip.compress(data, 6, mtime=0))

    def _page(self, name: NormalizedName) -> Body | None:
        if self.upstream is None:
            return self.pages.get(name)
        with self._once(f"page {name}"):
            if name not in self.recording.pages and name not in self.recording.not_on_index:
                data = self.upstream.page(name)
                if data is None:
                    self.recording.add_missing(name)
                else:
                    self.recording.add_page(name, data)
        return self._render(name) if name in self.recording.pages else None

    # -- files -------------------------------------------------------------------------------

    def _metadata(self, entry: Entry) -> Body | None:
        with self._lock:
            cached = self.metadata.get(entry.filename)
        if cached is not None:
            return cached
        if entry.filename not in self.recording.metadata:
            if self.upstream is None:
                return None
            with self._once(f"metadata {entry.filename}"):
                if entry.filename not in self.recording.metadata:
                    data, source = self.upstream.metadata(entry.upstream_url, entry.size)
                    self.recording.add_metadata(entry.filename, data, source)
        data = self.recording.metadata_bytes(entry.filename)
        body = Body(data, f'"{sha256(data)[:32]}"')
        with self._lock:
            self.metadata[entry.filename] = body
        return body

    def _download(self, entry: Entry, *, keep: bool) -> bytes:
        """The whole file from PyPI; kept in the recording, or only passed through."""
        assert self.upstream is not None
        with self._once(f"file {entry.filename}"):
            if entry.filename in self.recording.files:
                return self.recording.file_path(entry.filename).read_bytes()
            self.recording.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=self.recording.root, prefix=".download-", delete=False
            ) as tmp:
                target = Path(tmp.name)
            try:
                self.upstream.download(entry.upstream_url, entry.sha256, target)
                data = target.read_bytes()
                if keep:
                    self.recording.add_file(entry.filename, target, entry.sha256)
            finally:
                target.unlink(missing_ok=True)
            return data

    # -- HTTP --------------------------------------------------------------------------------

    def handle(self, request: _Handler, *, head: bool) -> None:
        if self.latency:
            time.sleep(self.latency)  # the request's round trip
        path = unquote(urlsplit(request.path).path)
        try:
            if path == "/simple" or path.startswith("/simple/"):
                self._serve_simple(request, path, head)
            elif path.endswith(".metadata") and path.removesuffix(".metadata") in self.entries:
                if self.pep658:
                    self._serve_metadata(request, path, head)
                else:
                    self._not_found(request, "404", None)
            elif path in self.entries:
                self._serve_file(request, path, head)
            else:
                self._not_found(request, "404", None)
        except UpstreamError as exc:
            sent = request.reply(502, {"Content-Type": "text/plain"}, f"{exc}\n".encode())
            self._count("upstream error", sent, f"{path}: {exc}")

    def _serve_simple(self, request: _Handler, path: str, head: bool) -> None:
        if path in ("/simple", "/simple/"):
            if path == "/simple":
                self._redirect(request, "/simple/")
                return
            names = sorted(self.recording.pages)
            doc = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
            data = json.dumps(doc).encode()
            sent = request.reply(200, {"Content-Type": JSON_TYPE}, data, head=head)
            self._count("root", sent)
            return
        raw = path[len("/simple/") :]
        name = canonicalize_name(raw.removesuffix("/"))
        if raw != f"{name}/":
            self._redirect(request, f"/simple/{name}/")
            return
        if not accepts_json(request.headers.get("Accept", "")):
            text = b"This index serves PEP 691 JSON only (application/vnd.pypi.simple.v1+json).\n"
            sent = request.reply(406, {"Content-Type": "text/plain"}, text, head=head)
            self._count("406", sent)
            return
        body = self._page(name)
        if body is None:
            known = name in self.recording.not_on_index
            self._not_found(request, "page 404" if known else "miss", None if known else path)
            return
        use_gzip = body.gzipped is not None and accepts_gzip(
            request.headers.get("Accept-Encoding", "")
        )
        etag = body.etag[:-1] + '-gzip"' if use_gzip else body.etag
        headers = {
            "Content-Type": JSON_TYPE,
            "ETag": etag,
            "Cache-Control": PAGE_CACHE,
            "Vary": "Accept, Accept-Encoding",
        }
        gzip_etag = body.etag[:-1] + '-gzip"'
        if _etag_matches(request.headers.get("If-None-Match"), (body.etag, gzip_etag)):
            request.reply(304, headers)
            self._count("page 304", 0)
            return
        data = body.gzipped if use_gzip and body.gzipped is not None else body.data
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        self._count("page", request.reply(200, headers, data, head=head))

    def _serve_metadata(self, request: _Handler, path: str, head: bool) -> None:
        entry = self.entries[path.removesuffix(".metadata")]
        body = self._metadata(entry)
        if body is None:
            self._not_found(request, "miss", path)
            return
        self._send_immutable(request, "metadata", body.data, body.etag, head)

    def _serve_file(self, request: _Handler, path: str, head: bool) -> None:
        entry = self.entries[path]
        etag = f'"{entry.sha256[:32]}"'
        what = f"{path} ({entry.size:,} bytes)"
        wanted = parse_range(request.headers.get("Range"), entry.size)
        if entry.filename in self.recording.files:
            data = self.recording.file_path(entry.filename).read_bytes()
            self._send_immutable(request, "file", data, etag, head)
        elif not self.pep658 and (head or isinstance(wanted, tuple)):
            self._serve_part(request, entry, etag, wanted, head)
        elif self.upstream is None:
            self._not_found(request, "miss", what)
        elif entry.filename.endswith(".whl") and isinstance(wanted, tuple):
            # A range of a wheel, while recording: a tool reading the wheel's metadata out of it
            # (its hash is not listed yet).  The metadata is recorded; the range is fetched and
            # passed through, and the wheel is neither downloaded whole nor stored.
            self._metadata(entry)
            first, last = wanted
            part = self.upstream.part(entry.upstream_url, first, last)
            headers = {
                "Content-Type": "application/octet-stream",
                "ETag": etag,
                "Cache-Control": FILE_CACHE,
                "Accept-Ranges": "bytes",
                "Content-Range": f"bytes {first}-{last}/{entry.size}",
            }
            sent = request.reply(206, headers, part, head=head)
            self._count("file passed through range", sent)
            with self._lock:
                self._stats.passed.append(f"{what}, bytes {first}-{last}")
        elif entry.filename.endswith(".whl") and entry.filename not in self.recording.metadata:
            # Listed without a hash while recording: the tool wants the wheel for its metadata.
            self._metadata(entry)
            if entry.size > MAX_PASS_THROUGH_BYTES:
                self._not_found(request, "refused", what)
                return
            data = self._download(entry, keep=False)
            self._send_immutable(request, "file passed through", data, etag, head)
            with self._lock:
                self._stats.passed.append(what)
        elif entry.size > MAX_FILE_BYTES:
            self._not_found(request, "refused", what)
        else:
            data = self._download(entry, keep=True)
            self._send_immutable(request, "file", data, etag, head)

    def _serve_part(
        self,
        request: _Handler,
        entry: Entry,
        etag: str,
        wanted: tuple[int, int] | str | None,
        head: bool,
    ) -> None:
        """A wheel not recorded whole, without PEP 658: HEAD answers its size, a range comes
        from a recorded part (fetched from PyPI and recorded, while recording)."""
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": etag,
            "Cache-Control": FILE_CACHE,
            "Accept-Ranges": "bytes",
        }
        if not isinstance(wanted, tuple):
            request.reply(200, headers, head=True, length=entry.size)
            self._count("file head", 0)
            return
        first, last = wanted
        data = self.recording.part(entry.filename, first, last)
        if data is None and self.upstream is not None:
            with self._once(f"part {entry.filename} {first}-{last}"):
                data = self.recording.part(entry.filename, first, last)
                if data is None:
                    data = self.upstream.part(entry.upstream_url, first, last)
                    self.recording.add_part(entry.filename, first, data)
        if data is None:
            self._not_found(request, "miss", f"{entry.filename} bytes {first}-{last}")
            return
        headers["Content-Range"] = f"bytes {first}-{last}/{entry.size}"
        self._count("file range", request.reply(206, headers, data, head=head))

    def _send_immutable(
        self, request: _Handler, kind: str, data: bytes, etag: str, head: bool
    ) -> None:
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": etag,
            "Cache-Control": FILE_CACHE,
            "Accept-Ranges": "bytes",
        }
        if _etag_matches(request.headers.get("If-None-Match"), (etag,)):
            request.reply(304, headers)
            self._count(f"{kind} 304", 0)
            return
        wanted = parse_range(request.headers.get("Range"), len(data))
        if wanted == "unsatisfiable":
            headers["Content-Range"] = f"bytes */{len(data)}"
            self._count(f"{kind} 416", request.reply(416, headers, b"", head=head))
        elif isinstance(wanted, tuple):
            first, last = wanted
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            part = memoryview(data)[first : last + 1]
            self._count(f"{kind} range", request.reply(206, headers, part, head=head))
        else:
            self._count(kind, request.reply(200, headers, data, head=head))

    def _redirect(self, request: _Handler, location: str) -> None:
        headers = {"Location": f"{self.base_url}{location}", "Content-Type": "text/plain"}
        self._count("redirect", request.reply(301, headers, f"Moved to {location}\n".encode()))

    def _not_found(self, request: _Handler, kind: str, miss: str | None) -> None:
        text = b"Not Found\n" if miss is None else b"Not Found: not recorded\n"
        self._count(kind, request.reply(404, {"Content-Type": "text/plain"}, text), miss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a recording as a PyPI-like index.")
    parser.add_argument("--snapshot", help="the recording's snapshot (default: the manifest's)")
    parser.add_argument("--recording", type=Path, help="recording directory")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--record", action="store_true", help="fetch from PyPI and record what is missing"
    )
    parser.add_argument(
        "--no-metadata", action="store_true", help="serve no PEP 658 metadata (wheels by range)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="MS", help="a round trip, as over a network"
    )
    args = parser.parse_args(argv)
    if args.latency < 0:
        parser.error("--latency must not be negative")
    snapshot = args.snapshot or load_committed(COMMITTED_MANIFEST)["snapshot"]
    recording = Recording(args.recording or recording_dir(snapshot), snapshot)
    upstream = Upstream(PYPI_SIMPLE) if args.record else None
    with IndexServer(
        recording,
        upstream,
        port=args.port,
        pep658=not args.no_metadata,
        latency=args.latency / 1000,
    ) as server:
        print(f"index:    {server.url}", flush=True)
        print(f"snapshot: {snapshot}  (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    if upstream is not None:
        recording.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
