#!/usr/bin/env python3
"""Serve the recorded snapshot in ``data/`` as a simple index on 127.0.0.1.

``run.py`` starts it in a thread; by hand::

    python benchmarks/server.py [--port 0] [--stubs]

Routes (``PREFIX`` is empty, or ``/stub`` for the stub view below):

* ``PREFIX/simple/`` and ``PREFIX/simple/<normalized-name>/``: PEP 691 JSON
  (``application/vnd.pypi.simple.v1+json``) or PEP 503 HTML, by the ``Accept`` header (HTML
  when nothing better is asked for).  A non-normalised name, or a missing trailing slash,
  answers 301 to the normalised URL.  File URLs on the pages are absolute
  (``http://127.0.0.1:PORT/files/<name>/<filename>``), as on pypi.org; with
  ``absolute_urls=False`` (``--relative-urls``) they are served page-relative, as recorded
  (``../../files/<name>/<filename>``).
* ``PREFIX/files/<name>/<wheel>.metadata``: the PEP 658 core metadata.
* ``/files/<name>/<wheel>``: 404, the wheels themselves were not recorded; a resolver needs only
  the metadata.
* ``/stub/files/<name>/<wheel>``: a stub wheel -- a valid, empty wheel whose ``METADATA`` is the
  recorded metadata.  The ``/stub`` pages list the stubs' own sha256 and size (everything
  else is as recorded).  It exists for pip-compile: pip downloads every pinned wheel after
  resolving, even when it resolved from ``.metadata`` alone, and checks it against the
  page's hash.

Every 200 carries an ``ETag`` (and ``Vary: Accept`` on pages); ``If-None-Match`` answers 304.
No ``Cache-Control`` is sent, so clients revalidate.  HTTP/1.1 with keep-alive.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import html
import io
import json
import socket
import sys
import threading
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name, parse_wheel_filename

__all__ = ["DEFAULT_DATA", "IndexServer", "Snapshot", "stub_wheel"]

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"
API_VERSION = "1.1"
JSON_TYPES = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json")
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html")
JSON_CONTENT_TYPE = JSON_TYPES[0]
STUB_PREFIX = "/stub"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    data: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, data: bytes, content_type: str) -> Body:
        return cls(data, content_type, f'"{_sha256(data)[:32]}"')


@dataclass
class View:
    """The pages of one view of the index (the plain one, or the stub one)."""

    json_pages: dict[str, Body] = field(default_factory=dict)
    html_pages: dict[str, Body] = field(default_factory=dict)
    json_root: Body | None = None
    html_root: Body | None = None
    wheels: dict[tuple[str, str], Body] = field(default_factory=dict)


class Snapshot:
    """The recorded data, loaded into memory (metadata decompressed)."""

    def __init__(self, data_dir: Path = DEFAULT_DATA) -> None:
        self.data_dir = data_dir
        manifest_path = data_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{manifest_path} is missing: record the data first (python benchmarks/record.py)"
            )
        self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        self.pages: dict[str, dict[str, Any]] = {}
        for path in sorted((data_dir / "projects").glob("*.json")):
            page = json.loads(path.read_text())
            self.pages[canonicalize_name(page["name"])] = page
        self.metadata: dict[str, Body] = {}
        self.files: dict[tuple[str, str], dict[str, Any]] = {}
        for name, page in self.pages.items():
            for entry in page["files"]:
                self.files[(name, entry["filename"])] = entry
                sha = entry["core-metadata"]["sha256"]
                if sha not in self.metadata:
                    raw = gzip.decompress((data_dir / "metadata" / f"{sha}.gz").read_bytes())
                    if _sha256(raw) != sha:
                        raise ValueError(f"metadata/{sha}.gz does not match its name")
                    self.metadata[sha] = Body(raw, "application/octet-stream", f'"{sha[:32]}"')

    @property
    def snapshot(self) -> str:
        return str(self.manifest["snapshot"])

    @property
    def roots(self) -> list[str]:
        return [str(r) for r in self.manifest["roots"]]

    def view(self, *, stubs: bool, base: str | None = None) -> View:
        """The pages to serve; with ``base``, file URLs are absolute (``{base}/files/...``)."""
        view = View()
        for name, page in self.pages.items():
            if stubs or base:
                page = dict(page, files=[dict(f) for f in page["files"]])
            for entry in page["files"] if base else ():
                entry["url"] = base + entry["url"].removeprefix("../..")
            if stubs:
                for entry in page["files"]:
                    meta = self.metadata[entry["core-metadata"]["sha256"]].data
                    wheel = Body.of(stub_wheel(entry["filename"], meta), "application/zip")
                    view.wheels[(name, entry["filename"])] = wheel
                    entry["hashes"] = {"sha256": _sha256(wheel.data)}
                    entry["size"] = len(wheel.data)
            view.json_pages[name] = Body.of(_json(page), JSON_CONTENT_TYPE)
            view.html_pages[name] = Body.of(_project_html(name, page), "text/html")
        names = sorted(self.pages)
        root = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
        view.json_root = Body.of(_json(root), JSON_CONTENT_TYPE)
        links = "".join(f'    <a href="{n}/">{n}</a><br/>\n' for n in names)
        view.html_root = Body.of(_html_page("Simple index", links), "text/html")
        return view


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _html_page(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n{body}  </body>\n</html>\n"
    ).encode()


def _project_html(name: str, page: Mapping[str, Any]) -> bytes:
    links: list[str] = []
    for entry in page["files"]:
        attrs = [("href", f"{entry['url']}#sha256={entry['hashes']['sha256']}")]
        if entry.get("requires-python"):
            attrs.append(("data-requires-python", entry["requires-python"]))
        if entry.get("yanked"):
            reason = entry["yanked"]
            attrs.append(("data-yanked", reason if isinstance(reason, str) else ""))
        core = entry.get("core-metadata")
        if isinstance(core, dict):
            attrs.append(("data-core-metadata", f"sha256={core['sha256']}"))
            attrs.append(("data-dist-info-metadata", f"sha256={core['sha256']}"))
        rendered = " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs)
        links.append(f"    <a {rendered}>{html.escape(entry['filename'])}</a><br/>\n")
    return _html_page(f"Links for {name}", "".join(links))


def stub_wheel(filename: str, metadata: bytes) -> bytes:
    """A valid wheel with no code: ``METADATA`` (the given bytes), ``WHEEL`` and ``RECORD``.

    Deterministic (stored, fixed timestamps), so its hash is the same on every start.
    """
    _name, _version, _build, tags = parse_wheel_filename(filename)
    distribution, version = filename[: -len(".whl")].split("-")[:2]
    dist_info = f"{distribution}-{version}.dist-info"
    wheel = "Wheel-Version: 1.0\nGenerator: machci-benchmark-stub\nRoot-Is-Purelib: true\n"
    wheel += "".join(f"Tag: {tag}\n" for tag in sorted(str(t) for t in tags))
    members = [("METADATA", metadata), ("WHEEL", wheel.encode())]
    record = ""
    for member, data in members:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{dist_info}/{member},sha256={digest},{len(data)}\n"
    record += f"{dist_info}/RECORD,,\n"
    members.append(("RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for member, data in members:
            info = zipfile.ZipInfo(f"{dist_info}/{member}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


# -- content negotiation -------------------------------------------------------------------


def _accepts(accept: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in accept.split(","):
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


def wants_json(accept: str) -> tuple[bool, str]:
    """(JSON?, the HTML content type to answer with) for an ``Accept`` header."""
    prefs = _accepts(accept)
    json_q = max((prefs.get(t, 0.0) for t in JSON_TYPES), default=0.0)
    vnd_html_q = max((prefs.get(t, 0.0) for t in HTML_TYPES), default=0.0)
    text_html_q = max(prefs.get("text/html", 0.0), prefs.get("*/*", 0.0), 0.0 if prefs else 1.0)
    html_type = HTML_TYPES[0] if vnd_html_q > text_html_q else "text/html"
    return json_q > 0 and json_q >= max(vnd_html_q, text_html_q), html_type


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


# -- HTTP ------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: Body | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""


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
    server_version = "machci-benchmark-index/1"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out as two writes
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, *, head: bool) -> None:
        index = self.server.index
        path = unquote(urlsplit(self.path).path)
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        response = index.route(path, self.headers.get("Accept", ""), f"http://{host}")
        body = response.body
        if (
            response.status == 200
            and body is not None
            and _etag_matches(self.headers.get("If-None-Match"), body.etag)
        ):
            index.count("304")
            self.send_response(304)
            self.send_header("ETag", body.etag)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        data = body.data if body is not None else response.text.encode()
        self.send_response(response.status)
        if body is not None:
            self.send_header("Content-Type", body.content_type)
            self.send_header("ETag", body.etag)
        else:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)


class IndexServer:
    """The recorded snapshot on 127.0.0.1 (random port), served from a daemon thread."""

    def __init__(
        self,
        data_dir: Path = DEFAULT_DATA,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        absolute_urls: bool = True,
    ) -> None:
        self.snapshot = Snapshot(data_dir)
        self.host = host
        self.port = port
        self.absolute_urls = absolute_urls
        self.plain = View()
        self._stub_view: View | None = None
        self._stub_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = _HTTPServer(self, self.host, self.port)
        self.plain = self.snapshot.view(stubs=False, base=self._base(""))
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

    @property
    def stub_url(self) -> str:
        """The stub view's index URL (wheels served as metadata-only stubs)."""
        return f"{self.base_url}{STUB_PREFIX}/simple/"

    def prepare_stubs(self) -> None:
        """Build the stub view now (otherwise it is built on its first request); once started."""
        self._stubs()

    def _stubs(self) -> View:
        with self._stub_lock:
            if self._stub_view is None:
                base = self._base(STUB_PREFIX)
                self._stub_view = self.snapshot.view(stubs=True, base=base)
            return self._stub_view

    def _base(self, prefix: str) -> str | None:
        return f"{self.base_url}{prefix}" if self.absolute_urls else None

    # -- statistics --------------------------------------------------------------------------

    def count(self, kind: str) -> None:
        with self._count_lock:
            self._counts[kind] += 1

    def counts(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._count_lock:
            self._counts.clear()

    # -- routing -----------------------------------------------------------------------------

    def route(self, path: str, accept: str, base: str) -> Response:
        prefix = ""
        if path == STUB_PREFIX or path.startswith(f"{STUB_PREFIX}/"):
            prefix, path = STUB_PREFIX, path[len(STUB_PREFIX) :]
        view = self._stubs() if prefix else self.plain
        if path == "/simple":
            return self._redirect(f"{base}{prefix}/simple/")
        if path == "/simple/":
            self.count("root")
            return self._page(view.json_root, view.html_root, accept)
        if path.startswith("/simple/"):
            raw = path[len("/simple/") :]
            name = raw.removesuffix("/")
            if not name or "/" in name:
                return self._not_found()
            normalized = canonicalize_name(name)
            if normalized not in view.json_pages:
                return self._not_found()
            if raw != f"{normalized}/":
                return self._redirect(f"{base}{prefix}/simple/{normalized}/")
            self.count("page")
            return self._page(view.json_pages[normalized], view.html_pages[normalized], accept)
        if path.startswith("/files/"):
            project, _, filename = path[len("/files/") :].partition("/")
            if filename.endswith(".metadata"):
                entry = self.snapshot.files.get((project, filename.removesuffix(".metadata")))
                if entry is None:
                    return self._not_found()
                self.count("metadata")
                return Response(200, self.snapshot.metadata[entry["core-metadata"]["sha256"]])
            wheel = view.wheels.get((project, filename))
            if wheel is not None:
                self.count("stub wheel")
                return Response(200, wheel)
            if (project, filename) in self.snapshot.files:
                self.count("wheel 404")
                return Response(404, text="Not Found: only the wheels' .metadata was recorded\n")
        return self._not_found()

    def _page(self, json_body: Body | None, html_body: Body | None, accept: str) -> Response:
        as_json, html_type = wants_json(accept)
        body = json_body if as_json else html_body
        if body is not None and not as_json and html_type != "text/html":
            body = Body(body.data, html_type, body.etag[:-1] + '-vnd"')
        return Response(200, body, {"Vary": "Accept"})

    def _redirect(self, location: str) -> Response:
        self.count("redirect")
        return Response(301, headers={"Location": location}, text=f"Moved to {location}\n")

    def _not_found(self) -> Response:
        self.count("404")
        return Response(404, text="Not Found\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve benchmarks/data as a simple index.")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--stubs", action="store_true", help="build the stub view up front")
    parser.add_argument(
        "--relative-urls",
        action="store_true",
        help="page-relative file URLs, as recorded (default: absolute, as on pypi.org)",
    )
    args = parser.parse_args(argv)
    with IndexServer(args.data, port=args.port, absolute_urls=not args.relative_urls) as server:
        if args.stubs:
            server.prepare_stubs()
        print(f"index:      {server.url}", flush=True)
        print(f"stub index: {server.stub_url}", flush=True)
        print(f"snapshot:   {server.snapshot.snapshot}  (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
