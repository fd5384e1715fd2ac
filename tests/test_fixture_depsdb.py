"""Tests of the pypi-deps-db fixture: the layout and the tarballs are what the real ones are."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

from tests.fixtures.depsdb import DATABASE, URL_INDEX, DepsDb, Tarballs, publish


def get(server: Tarballs, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(urlsplit(server.base_url).netloc, timeout=5)
    connection.request("GET", path)
    return connection.getresponse()


def test_trees_are_bucketed_and_pinned(tarballs: Tarballs, tmp_path: Path) -> None:
    db = DepsDb()
    db.sdist("Zope_Thing", "1.0", {"312": {}})
    pin = publish(db, tarballs, tmp_path)
    bucket = hashlib.sha256(b"zope-thing").hexdigest()[:2]
    assert set(json.loads((pin.tree / "sdist" / f"{bucket}.json").read_text())) == {"zope-thing"}
    urls = (tmp_path / "url-index" / "pypi" / f"{bucket}.json").read_text()
    assert json.loads(urls)["zope-thing"]["1.0"]["sdist"][1] == "Zope_Thing-1.0.tar.gz"
    assert len((pin.tree / "PYPI_FETCHER_COMMIT").read_text().strip()) == 40
    assert len((pin.tree / "PYPI_FETCHER_SHA256").read_text().strip()) == 52
    assert (pin.tree / "UNIX_TIMESTAMP").read_text().strip().isdigit()
    assert {repository for repository, _rev in tarballs.archives} == {DATABASE, URL_INDEX}


def test_tarballs_are_served_like_github(tarballs: Tarballs, tmp_path: Path) -> None:
    pin = publish(DepsDb(), tarballs, tmp_path)
    redirect = get(tarballs, f"/{DATABASE}/tarball/{pin.rev}")
    assert redirect.status == 302
    location = redirect.getheader("Location") or ""
    assert location == f"/codeload/{DATABASE}/legacy.tar.gz/{pin.rev}"
    body = get(tarballs, location).read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        names = archive.getnames()
        assert archive.pax_headers["comment"] == pin.rev
    top = f"DavHau-pypi-deps-db-{pin.rev[:7]}"
    assert names[0] == top and all(n == top or n.startswith(f"{top}/") for n in names)
    assert get(tarballs, f"/{DATABASE}/tarball/{'0' * 40}").status == 302
    assert get(tarballs, f"/codeload/{DATABASE}/legacy.tar.gz/{'0' * 40}").status == 404
