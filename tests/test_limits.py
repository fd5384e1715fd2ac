"""Size caps: oversized pages, metadata and distributions are refused with one line, and never
read past the cap (the index counts what it managed to send)."""

from __future__ import annotations

import gzip
import io
import re
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from machci.errors import SourceError
from machci.limits import Limit
from machci.sources.pypi.wheels import read_contents
from tests.fixtures.builders import core_metadata
from tests.fixtures.index import Index
from tests.helpers import lock

MIB = 1 << 20
PAD = 256 * MIB  # far more than any socket buffer holds, so bytes sent show what was read


def refused_with_peak(index: Index, tmp_path: Path) -> tuple[str, int]:
    """The refusal of a lock of `big`, and the most memory Python held meanwhile."""
    tracemalloc.start()
    try:
        err = refused(index, tmp_path)
        return err, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def refused(index: Index, tmp_path: Path, requirements: str = "big\n") -> str:
    result = lock(index, tmp_path, requirements)
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    return result.err


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_oversized_page_is_refused_before_it_is_read(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, declare_length: bool
) -> None:
    monkeypatch.setenv("MACHCI_MAX_PAGE_BYTES", str(MIB))
    index.publish("big", "1.0")
    index.fault("/simple/big/", pad=PAD, declare_length=declare_length)
    err, peak = refused_with_peak(index, tmp_path)
    declared = r" \(\d+ bytes\)" if declare_length else ""
    assert re.fullmatch(
        f"machci: error: {re.escape(index.url)}/big/: index page larger than the limit of 1 MiB"
        f"{declared}; set MACHCI_MAX_PAGE_BYTES to raise it\n",
        err,
    )
    assert index.bytes_sent("/simple/big/") < 32 * MIB
    assert peak < 16 * MIB


def test_an_oversized_metadata_file_is_refused(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACHCI_MAX_METADATA_BYTES", str(MIB))
    dist = index.publish("big", "1.0")
    path = f"/files/{dist.filename}.metadata"
    index.fault(path, pad=PAD, declare_length=False)
    err = refused(index, tmp_path)
    assert err == (
        f"machci: error: {index.files_url}/{dist.filename}.metadata: metadata file larger than"
        " the limit of 1 MiB; set MACHCI_MAX_METADATA_BYTES to raise it\n"
    )
    assert index.bytes_sent(path) < 32 * MIB


def test_the_metadata_limit_is_inclusive(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = index.publish("big", "1.0")
    size = len(core_metadata(dist))
    monkeypatch.setenv("MACHCI_MAX_METADATA_BYTES", str(size))
    assert lock(index, tmp_path / "exact", "big\n").versions() == {"big": "1.0"}
    monkeypatch.setenv("MACHCI_MAX_METADATA_BYTES", str(size - 1))
    err = refused(index, tmp_path / "over")
    assert (
        f".metadata: metadata file larger than the limit of {size - 1} bytes ({size} bytes)" in err
    )


def test_an_oversized_distribution_is_refused(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACHCI_MAX_DISTRIBUTION_BYTES", str(MIB))
    dist = index.publish("big", "1.0", serve_metadata=False)
    path = f"/files/{dist.filename}"
    index.fault(path, pad=PAD)
    err = refused(index, tmp_path)
    assert err == (
        f"machci: error: {index.files_url}/{dist.filename}: distribution file larger than the"
        f" limit of 1 MiB ({PAD + len(index.path_of(dist.filename).read_bytes())} bytes);"
        " set MACHCI_MAX_DISTRIBUTION_BYTES to raise it\n"
    )
    assert index.bytes_sent(path) < 32 * MIB


def test_a_wheels_metadata_member_is_checked_before_it_is_inflated(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extras = tuple(f"extra-{i:04}" for i in range(500))
    dist = index.publish("big", "1.0", provides_extra=extras, serve_metadata=False)
    size = len(core_metadata(dist))
    monkeypatch.setenv("MACHCI_MAX_METADATA_BYTES", "4096")
    err = refused(index, tmp_path)
    assert err == (
        f"machci: error: {dist.filename}: big-1.0.dist-info/METADATA: metadata file larger"
        f" than the limit of 4 KiB ({size} bytes); set MACHCI_MAX_METADATA_BYTES to raise it\n"
    )


def test_a_wheels_record_is_checked_before_it_is_inflated() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x-1.dist-info/RECORD", b"\n" * (2 * MIB))  # 2 KiB compressed
    limit = Limit("metadata file", "MACHCI_MAX_METADATA_BYTES", MIB)
    with pytest.raises(SourceError, match=r"^x-1-py3-none-any.whl: x-1.dist-info/RECORD: "):
        read_contents(buffer.getvalue(), "x-1-py3-none-any.whl", limit)


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1e6", "٣"])
def test_a_bad_limit_setting_is_one_line(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MACHCI_MAX_PAGE_BYTES", value)
    result = lock(index, tmp_path, "anything\n")
    assert result.code == 2
    assert result.err == (
        f"machci: error: MACHCI_MAX_PAGE_BYTES={value!r}: expected a positive number of bytes\n"
    )


def test_pages_are_asked_for_gzip_and_inflated(index: Index, tmp_path: Path) -> None:
    index.publish("zipped", "1.0")
    assert lock(index, tmp_path / "plain", "zipped\n").code == 0
    asked = [r for r in index.log if r.path == "/simple/zipped/"]
    assert asked and all(r.headers.get("Accept-Encoding") == "gzip" for r in asked)
    files = [r for r in index.log if r.path.startswith("/files/")]
    assert all("gzip" not in r.headers.get("Accept-Encoding", "") for r in files)
    body = io.BytesIO()
    with gzip.GzipFile(fileobj=body, mode="wb") as packed:
        packed.write(index.page_body("zipped"))
    headers = {"Content-Type": "application/vnd.pypi.simple.v1+json", "Content-Encoding": "gzip"}
    index.fault("/simple/zipped/", status=200, body=body.getvalue(), headers=headers, times=1)
    assert lock(index, tmp_path / "gzip", "zipped\n").versions() == {"zipped": "1.0"}
    # Kept as it came, and read so again: offline, and for other systems (a new listing).
    stored = [p.read_bytes() for p in (tmp_path / "gzip/.cache/v2/pages").iterdir()]
    assert [page.split(b"\n", 1)[1] for page in stored] == [body.getvalue()]
    again = lock(index, tmp_path / "gzip", "zipped\n", "--offline", systems=("aarch64-linux",))
    assert again.versions("aarch64-linux") == {"zipped": "1.0"}


def test_a_page_that_says_gzip_but_is_not_is_refused(index: Index, tmp_path: Path) -> None:
    index.publish("liar", "1.0")
    headers = {"Content-Type": "application/vnd.pypi.simple.v1+json", "Content-Encoding": "gzip"}
    plain = index.page_body("liar")
    index.fault("/simple/liar/", status=200, body=plain, headers=headers, times=1)
    err = refused(index, tmp_path, "liar\n")
    assert err.startswith(
        f"machci: error: {index.url}/liar/: the page is not valid gzip data (Error -3 while"
    )
    cut = gzip.compress(plain)[:-20]
    index.fault("/simple/liar/", status=200, body=cut, headers=headers)
    assert refused(index, tmp_path / "cut", "liar\n") == (
        f"machci: error: {index.url}/liar/: the page's gzip data ends early\n"
    )


def test_a_page_in_a_coding_not_asked_for_is_refused(index: Index, tmp_path: Path) -> None:
    index.publish("squeezed", "1.0")
    headers = {"Content-Type": "application/vnd.pypi.simple.v1+json", "Content-Encoding": "br"}
    index.fault("/simple/squeezed/", status=200, body=b"\x8b\x02\x80", headers=headers)
    assert refused(index, tmp_path, "squeezed\n") == (
        f"machci: error: {index.url}/squeezed/: the index sent the page in the content coding"
        " 'br'; machci asks for gzip or the page as it is\n"
    )


def test_a_gzip_bomb_page_is_refused_without_inflating_it(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACHCI_MAX_PAGE_BYTES", str(MIB))
    index.publish("big", "1.0")
    body = io.BytesIO()
    with gzip.GzipFile(fileobj=body, mode="wb") as packed:
        for _ in range(64):
            packed.write(bytes(4 * MIB))  # 256 MiB of zeros in about 256 KiB
    headers = {"Content-Type": "application/vnd.pypi.simple.v1+json", "Content-Encoding": "gzip"}
    index.fault("/simple/big/", status=200, body=body.getvalue(), headers=headers)
    err, peak = refused_with_peak(index, tmp_path)
    assert err == (
        f"machci: error: {index.url}/big/: index page larger than the limit of 1 MiB;"
        " set MACHCI_MAX_PAGE_BYTES to raise it\n"
    )
    assert peak < 16 * MIB
