"""Tests of the hermetic test index itself: it must serve exactly what it says."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.builders import Dist, as_wheel, build, build_bytes, core_metadata, expand_tag
from tests.fixtures.index import JSON_CONTENT_TYPE, Index

JSON_ACCEPT = {"Accept": f"{JSON_CONTENT_TYPE}, text/html;q=0.1"}


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def _connect(index: Index) -> http.client.HTTPConnection:
    host = urlsplit(index.url).netloc
    return http.client.HTTPConnection(host, timeout=5)


def get(
    index: Index,
    path: str,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> Reply:
    """GET without following redirects; ``path`` may be absolute or a full URL."""
    own = conn is None
    conn = conn or _connect(index)
    try:
        conn.request("GET", urlsplit(path).path, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        if own:
            conn.close()


def project_json(index: Index, project: str) -> Any:
    reply = get(index, f"/simple/{project}/", JSON_ACCEPT)
    assert reply.status == 200
    return reply.json()


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._attrs: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self.anchors.append((self._attrs, data))
            self._attrs = None


def anchors(body: bytes) -> dict[str, dict[str, str | None]]:
    parser = _Anchors()
    parser.feed(body.decode())
    return {text: attrs for attrs, text in parser.anchors}


# -- builders ---------------------------------------------------------------------------


def test_filenames_are_normalised() -> None:
    assert Dist("Foo.Bar__baz", "1.0").filename == "foo_bar_baz-1.0-py3-none-any.whl"
    assert Dist("Foo.Bar", "1.0", kind="sdist").filename == "foo_bar-1.0.tar.gz"
    tag = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
    assert Dist("x", "2", tag=tag).filename == f"x-2-{tag}.whl"


def test_build_is_deterministic(tmp_path: Path) -> None:
    from tests.fixtures import builders

    for kind in ("wheel", "sdist"):
        dist = Dist("Det", "1.0", kind=kind, requires_dist=("a>=1",))
        first = build(dist, tmp_path / "a").read_bytes()
        builders._CACHE.clear()
        second = build(dist, tmp_path / "b").read_bytes()
        assert first == second
        # fields that only affect publication share the cached bytes
        published = Dist("Det", "1.0", kind=kind, requires_dist=("a>=1",), yanked="x")
        assert build_bytes(published) == first


def test_wheel_contents(tmp_path: Path) -> None:
    tag = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
    dist = Dist(
        "Foo.Bar",
        "1.2",
        tag=tag,
        requires_dist=("dep>=1", 'extra-dep; extra == "x"'),
        requires_python=">=3.8",
        provides_extra=("x",),
    )
    with zipfile.ZipFile(build(dist, tmp_path)) as zf:
        names = zf.namelist()
        assert names == [
            "foo_bar/__init__.py",
            "foo_bar-1.2.dist-info/METADATA",
            "foo_bar-1.2.dist-info/WHEEL",
            "foo_bar-1.2.dist-info/RECORD",
        ]
        assert zf.read("foo_bar/__init__.py") == b'__version__ = "1.2"\n'
        assert zf.read("foo_bar-1.2.dist-info/METADATA") == core_metadata(dist)
        wheel = zf.read("foo_bar-1.2.dist-info/WHEEL").decode()
        assert "Root-Is-Purelib: true" in wheel
        assert re.findall(r"^Tag: (.*)$", wheel, re.M) == [
            "cp312-cp312-manylinux_2_17_x86_64",
            "cp312-cp312-manylinux2014_x86_64",
        ]
        record = zf.read("foo_bar-1.2.dist-info/RECORD").decode().splitlines()
        assert record[-1] == "foo_bar-1.2.dist-info/RECORD,,"
        for line in record[:-1]:
            name, digest, size = line.split(",")
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(data)
    msg = BytesParser().parsebytes(core_metadata(dist))
    assert msg["Name"] == "Foo.Bar"
    assert msg["Requires-Python"] == ">=3.8"
    assert msg.get_all("Requires-Dist") == ["dep>=1", 'extra-dep; extra == "x"']
    assert msg.get_all("Provides-Extra") == ["x"]
    assert expand_tag("py2.py3-none-any") == ["py2-none-any", "py3-none-any"]


def test_sdist_pkg_info_dynamic(tmp_path: Path) -> None:
    dist = Dist(
        "dyn",
        "1.0",
        kind="sdist",
        requires_dist=("a",),
        dynamic=("Requires-Dist",),
        build_requires=("flit_core>=3",),
    )
    with tarfile.open(build(dist, tmp_path)) as tf:
        names = tf.getnames()
        pkg_info = tf.extractfile("dyn-1.0/PKG-INFO")
        assert pkg_info is not None
        pkg = pkg_info.read()
        pyproject = tf.extractfile("dyn-1.0/pyproject.toml")
        assert pyproject is not None
        assert b'requires = ["flit_core>=3"]' in pyproject.read()
    assert "dyn-1.0/_backend/backend.py" in names
    assert "dyn-1.0/dyn/__init__.py" in names
    assert pkg == core_metadata(dist)
    assert b"Dynamic: Requires-Dist" in pkg
    assert b"Requires-Dist" not in pkg.replace(b"Dynamic: Requires-Dist", b"")

    bare = Dist("dyn", "1.0", kind="sdist", pkg_info=False)
    with tarfile.open(build(bare, tmp_path / "bare")) as tf:
        assert "dyn-1.0/PKG-INFO" not in tf.getnames()


def test_wheel_installs_with_pip_and_imports(tmp_path: Path) -> None:
    dist = Dist("Pip.Check_Me", "3.1.4", requires_dist=("nonexistent-dep",))
    wheel = build(dist, tmp_path / "dist")
    target = tmp_path / "target"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
            "--disable-pip-version-check", "--no-cache-dir", "--quiet",
            "--target", str(target), str(wheel),
        ],
        check=True,
    )  # fmt: skip
    out = subprocess.run(
        [
            sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {str(target)!r}); "
            "import pip_check_me; print(pip_check_me.__version__)",
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout.strip() == "3.1.4"
    assert (target / "pip_check_me-3.1.4.dist-info" / "METADATA").read_bytes() == core_metadata(
        dist
    )


def test_sdist_backend_runs_isolated(tmp_path: Path) -> None:
    dist = Dist(
        "Back.End",
        "0.9",
        kind="sdist",
        requires_dist=("a>=1", 'b; extra == "x"'),
        provides_extra=("x",),
        requires_python=">=3.9",
        dynamic=("Requires-Dist",),
        pkg_info=False,
    )
    with tarfile.open(build(dist, tmp_path)) as tf:
        tf.extractall(tmp_path / "src", filter="data")
    src = tmp_path / "src" / "back_end-0.9"
    script = (
        "import sys; sys.path.insert(0, '_backend'); import backend; "
        "assert backend.get_requires_for_build_wheel() == []; "
        "print(backend.prepare_metadata_for_build_wheel('out')); "
        "print(backend.build_wheel('wheels'))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=src, check=True, capture_output=True, text=True
    )
    dist_info, wheel_name = out.stdout.split()
    full = as_wheel(dist)
    assert dist_info == "back_end-0.9.dist-info"
    assert wheel_name == full.filename == "back_end-0.9-py3-none-any.whl"
    metadata = (src / "out" / dist_info / "METADATA").read_bytes()
    assert metadata == core_metadata(full)
    requires = BytesParser().parsebytes(metadata).get_all("Requires-Dist")
    assert requires == ["a>=1", 'b; extra == "x"']
    # the backend's wheel is byte-identical to the one build() makes
    assert (src / "wheels" / wheel_name).read_bytes() == build_bytes(full)


# -- index ------------------------------------------------------------------------------


def test_urls(index: Index) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/simple", index.url)
    assert index.files_url == index.url.removesuffix("/simple") + "/files"


def test_root_index(index: Index) -> None:
    index.publish("Foo_Bar", "1.0")
    index.publish("baz", "2.0", kind="sdist")
    reply = get(index, "/simple/", JSON_ACCEPT)
    assert reply.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert reply.json() == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "baz"}, {"name": "foo-bar"}],
    }
    html_reply = get(index, "/simple/")
    assert html_reply.headers["Content-Type"].startswith("text/html")
    assert set(anchors(html_reply.body)) == {"baz", "foo-bar"}


def test_project_json(index: Index) -> None:
    wheel = index.publish(
        "Foo_Bar", "1.0", requires_python=">=3.8", upload_time="2024-05-06T07:08:09Z"
    )
    sdist = index.publish("foo-bar", "1.0", kind="sdist")
    newer = index.publish("foo.bar", "1.10", serve_metadata=False)
    index.publish("foo-bar", "1.2")
    reply = get(index, "/simple/foo-bar/", JSON_ACCEPT)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == JSON_CONTENT_TYPE
    doc = reply.json()
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == "foo-bar"
    assert doc["versions"] == ["1.0", "1.2", "1.10"]
    files = {f["filename"]: f for f in doc["files"]}
    assert set(files) == {
        "foo_bar-1.0-py3-none-any.whl",
        "foo_bar-1.0.tar.gz",
        "foo_bar-1.2-py3-none-any.whl",
        "foo_bar-1.10-py3-none-any.whl",
    }
    w = files[wheel.filename]
    meta_sha = hashlib.sha256(core_metadata(wheel)).hexdigest()
    assert w == {
        "filename": wheel.filename,
        "url": f"{index.files_url}/{wheel.filename}",
        "hashes": {"sha256": index.sha256(wheel.filename)},
        "requires-python": ">=3.8",
        "yanked": False,
        "size": index.path_of(wheel.filename).stat().st_size,
        "upload-time": "2024-05-06T07:08:09Z",
        "core-metadata": {"sha256": meta_sha},
        "data-dist-info-metadata": {"sha256": meta_sha},
    }
    assert files[sdist.filename]["core-metadata"] is False
    assert files[sdist.filename]["requires-python"] is None
    assert files[newer.filename]["core-metadata"] is False
    assert files[newer.filename]["data-dist-info-metadata"] is False


def test_file_and_metadata_hashes(index: Index) -> None:
    dist = index.publish("hashy", "1.0", requires_dist=("x",))
    entry = project_json(index, "hashy")["files"][0]
    file_reply = get(index, entry["url"])
    assert file_reply.status == 200
    assert int(file_reply.headers["Content-Length"]) == len(file_reply.body) == entry["size"]
    assert hashlib.sha256(file_reply.body).hexdigest() == entry["hashes"]["sha256"]
    assert file_reply.body == index.path_of(dist.filename).read_bytes()
    meta_reply = get(index, entry["url"] + ".metadata")
    assert meta_reply.status == 200
    assert hashlib.sha256(meta_reply.body).hexdigest() == entry["core-metadata"]["sha256"]
    with zipfile.ZipFile(index.path_of(dist.filename)) as zf:
        assert zf.read("hashy-1.0.dist-info/METADATA") == meta_reply.body


def test_project_html(index: Index) -> None:
    wheel = index.publish("Esc", "1.0", requires_python=">=3.8,<4", yanked='bad "build" <x>')
    sdist = index.publish("esc", "1.0", kind="sdist", yanked=True)
    plain = index.publish("esc", "0.9", serve_metadata=False)
    reply = get(index, "/simple/esc/", {"Accept": "text/html"})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert b"&gt;=3.8,&lt;4" in reply.body
    assert b"upload" not in reply.body
    links = anchors(reply.body)
    assert set(links) == {wheel.filename, sdist.filename, plain.filename}
    meta = f"sha256={hashlib.sha256(core_metadata(wheel)).hexdigest()}"
    assert links[wheel.filename] == {
        "href": f"{index.files_url}/{wheel.filename}#sha256={index.sha256(wheel.filename)}",
        "data-requires-python": ">=3.8,<4",
        "data-yanked": 'bad "build" <x>',
        "data-core-metadata": meta,
        "data-dist-info-metadata": meta,
    }
    assert links[sdist.filename]["data-yanked"] == ""
    assert "data-core-metadata" not in links[sdist.filename]
    assert set(links[plain.filename]) == {"href"}
    # no Accept header at all -> HTML too
    assert get(index, "/simple/esc/").headers["Content-Type"].startswith("text/html")


def test_yanked_json(index: Index) -> None:
    index.publish("yank", "1.0", yanked=True)
    index.publish("yank", "1.1", yanked="broken")
    index.publish("yank", "1.2")
    files = {f["filename"]: f["yanked"] for f in project_json(index, "yank")["files"]}
    assert files == {
        "yank-1.0-py3-none-any.whl": True,
        "yank-1.1-py3-none-any.whl": "broken",
        "yank-1.2-py3-none-any.whl": False,
    }
    # republishing the same file replaces it (e.g. to yank later)
    index.publish("yank", "1.2", yanked="later")
    files = {f["filename"]: f["yanked"] for f in project_json(index, "yank")["files"]}
    assert files["yank-1.2-py3-none-any.whl"] == "later"
    assert len(files) == 3


def test_redirects_and_404(index: Index) -> None:
    index.publish("Foo_Bar", "1.0")
    for path in ("/simple/Foo_Bar/", "/simple/foo.bar/", "/simple/FOO-BAR", "/simple/foo-bar"):
        reply = get(index, path, JSON_ACCEPT)
        assert reply.status == 301, path
        assert reply.headers["Location"] == f"{index.url}/foo-bar/"
        assert reply.headers["Content-Length"] == str(len(reply.body))
    assert get(index, "/simple").headers["Location"] == f"{index.url}/"
    assert get(index, "/simple/nope/").status == 404
    assert get(index, "/simple/nope/", JSON_ACCEPT).status == 404
    assert get(index, "/files/nope-1.0-py3-none-any.whl").status == 404
    assert get(index, "/files/foo_bar-1.0-py3-none-any.whl/x").status == 404
    assert get(index, "/elsewhere").status == 404
    sdist = index.publish("foo-bar", "2.0", kind="sdist")
    no_meta = index.publish("foo-bar", "3.0", serve_metadata=False)
    assert get(index, f"/files/{sdist.filename}.metadata").status == 404
    assert get(index, f"/files/{no_meta.filename}.metadata").status == 404
    assert get(index, f"/files/{no_meta.filename}").status == 200


def test_etag_and_keep_alive(index: Index) -> None:
    dist = index.publish("etag", "1.0")
    conn = _connect(index)
    try:
        for path, headers in (
            ("/simple/etag/", JSON_ACCEPT),
            ("/simple/etag/", {}),
            (f"/files/{dist.filename}", {}),
        ):
            first = get(index, path, headers, conn)
            etag = first.headers["ETag"]
            assert first.status == 200
            assert etag == f'"{hashlib.sha256(first.body).hexdigest()}"'
            again = get(index, path, {**headers, "If-None-Match": etag}, conn)
            assert (again.status, again.body, again.headers["ETag"]) == (304, b"", etag)
            stale = get(index, path, {**headers, "If-None-Match": '"other"'}, conn)
            assert stale.status == 200
        assert get(index, f"/files/{dist.filename}", {}, conn).headers["ETag"] == (
            f'"{index.sha256(dist.filename)}"'
        )
        assert conn.sock is not None  # still the same connection
    finally:
        conn.close()
    # JSON and HTML representations have different ETags
    assert (
        get(index, "/simple/etag/", JSON_ACCEPT).headers["ETag"]
        != get(index, "/simple/etag/").headers["ETag"]
    )


def test_requests_are_recorded(index: Index) -> None:
    index.publish("rec", "1.0")
    get(index, "/simple/rec/")
    get(index, "/simple/Rec/")
    get(index, "/files/rec-1.0-py3-none-any.whl.metadata")
    assert index.requests == [
        ("GET", "/simple/rec/"),
        ("GET", "/simple/Rec/"),
        ("GET", "/files/rec-1.0-py3-none-any.whl.metadata"),
    ]


def test_fault_status_and_times(index: Index) -> None:
    dist = index.publish("flaky", "1.0")
    index.fault("/simple/flaky/", status=503, body=b"busy", times=2)
    first, second = get(index, "/simple/flaky/"), get(index, "/simple/flaky/")
    assert (first.status, first.body) == (second.status, second.body) == (503, b"busy")
    assert get(index, "/simple/flaky/").status == 200
    index.fault(".whl", status=500)
    for _ in range(3):
        assert get(index, f"/files/{dist.filename}").status == 500
    assert get(index, f"/files/{dist.filename}.metadata").status == 200
    index.clear_faults()
    assert get(index, f"/files/{dist.filename}").status == 200


def test_fault_body(index: Index) -> None:
    dist = index.publish("corrupt", "1.0")
    index.fault(dist.filename, body=b"garbage", times=1)
    reply = get(index, f"/files/{dist.filename}")
    assert (reply.status, reply.body) == (200, b"garbage")
    assert "ETag" not in reply.headers
    assert get(index, f"/files/{dist.filename}").body == index.path_of(dist.filename).read_bytes()


def test_ranges_only_when_asked_for(index: Index) -> None:
    dist = index.publish("parts", "1.0")
    path = f"/files/{dist.filename}"
    data = index.path_of(dist.filename).read_bytes()
    size = len(data)
    assert get(index, path, {"Range": "bytes=0-9"}).status == 200  # ranges are off
    index.ranges = True
    for asked, first, last in [("bytes=2-5", 2, 5), ("bytes=-7", size - 7, size - 1)]:
        reply = get(index, path, {"Range": asked})
        assert (reply.status, reply.body) == (206, data[first : last + 1])
        assert reply.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert get(index, path, {"Range": f"bytes={size}-"}).status == 416
    assert get(index, path, {"Range": "bytes=0-1,4-5"}).body == data  # one range only
    assert get(index, f"{path}.metadata", {"Range": "bytes=0-1"}).status == 206
    assert get(index, "/simple/parts/", {"Range": "bytes=0-1"}).status == 200  # files only
    assert index.served(path) == size + 4 + 7 + 0 + size


def test_fault_truncate(index: Index) -> None:
    dist = index.publish("short", "1.0")
    size = index.path_of(dist.filename).stat().st_size
    index.fault(dist.filename, truncate=10, times=1)
    conn = _connect(index)
    try:
        conn.request("GET", f"/files/{dist.filename}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(size)
        with pytest.raises(http.client.IncompleteRead) as err:
            resp.read()
        assert len(err.value.partial) == 10
    finally:
        conn.close()
    assert len(get(index, f"/files/{dist.filename}").body) == size


def test_fault_delay(index: Index) -> None:
    index.publish("slow", "1.0")
    index.fault("/simple/slow/", delay=0.3, times=1)
    start = time.monotonic()
    assert get(index, "/simple/slow/").status == 200
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    assert get(index, "/simple/slow/").status == 200
    assert time.monotonic() - start < 0.3


def test_add_after_start_and_stop(tmp_path: Path) -> None:
    idx = Index(tmp_path / "idx")
    with pytest.raises(RuntimeError):
        _ = idx.url
    idx.add(Dist("early", "1.0"))
    with idx:
        assert project_json(idx, "early")["versions"] == ["1.0"]
        assert get(idx, "/simple/late/").status == 404
        idx.add(Dist("late", "1.0"), Dist("late", "1.1", kind="sdist"))
        assert project_json(idx, "late")["versions"] == ["1.0", "1.1"]
        assert idx.path_of("late-1.1.tar.gz").parent == tmp_path / "idx"
    idx.stop()  # idempotent
