"""A wheel's METADATA read with range requests when the index serves no PEP 658 file."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from machci.sources.auth import Credentials
from machci.sources.cache import Cache
from machci.sources.http import Http
from machci.sources.pypi.lazywheel import TAIL, remote_metadata
from tests.fixtures.builders import Dist, build_bytes, core_metadata
from tests.fixtures.index import Index
from tests.helpers import lock

MIB = 1 << 20
# Random bytes do not compress: a wheel holding them is as large in the archive as here.
NOISE = random.Random(0).randbytes(2 * MIB)


def big(
    name: str,
    version: str = "1.0",
    requires_dist: tuple[str, ...] = (),
    provides_extra: tuple[str, ...] = (),
) -> Dist:
    """A wheel without a .metadata file, megabytes larger than its metadata."""
    return Dist(
        name,
        version,
        requires_dist=requires_dist,
        provides_extra=provides_extra,
        serve_metadata=False,
        extra_files=(("noise.bin", NOISE),),
    )


def wheel_path(dist: Dist) -> str:
    return f"/files/{dist.filename}"


def ranges_asked(index: Index, dist: Dist) -> list[str | None]:
    return [r.headers.get("Range") for r in index.log if r.path == wheel_path(dist)]


def blob(project: Path, data: bytes) -> Path:
    return project / ".cache" / "v2" / "blobs" / hashlib.sha256(data).hexdigest()


def read(index: Index, tmp_path: Path, filename: str, data: bytes) -> bytes | None:
    """remote_metadata for `data` served at `filename` (as a fault's body: ranges apply)."""
    index.fault(f"/files/{filename}", body=data)
    http = Http(Cache(tmp_path / "cache"), credentials=Credentials([index.url]))
    sha256 = hashlib.sha256(data).hexdigest()
    return remote_metadata(http, f"{index.files_url}/{filename}", sha256, filename)


def test_ranges_read_the_metadata_and_a_fraction_of_the_wheel(index: Index, tmp_path: Path) -> None:
    index.ranges = True
    app = big("app", requires_dist=("dep",))
    index.add(app, Dist("dep", "1.0"))
    result = lock(index, tmp_path, "app\n")
    assert result.versions() == {"app": "1.0", "dep": "1.0"}
    assert result.packages()["app"]["dependencies"] == ["dep"]
    size = len(build_bytes(app))
    assert size > 2 * MIB
    # One request: the end of the wheel holds its directory and, just before, METADATA.
    assert ranges_asked(index, app) == [f"bytes=-{TAIL}"]
    assert index.served(wheel_path(app)) == TAIL
    assert not blob(tmp_path, build_bytes(app)).exists()  # the wheel was never downloaded


def test_a_warm_lock_asks_for_nothing_of_the_wheel(index: Index, tmp_path: Path) -> None:
    index.ranges = True
    app = big("app", requires_dist=("dep",))
    index.add(app, Dist("dep", "1.0"))
    first = lock(index, tmp_path, "app\n")
    before = len(index.log)
    again = lock(index, tmp_path, "app\n")
    offline = lock(index, tmp_path, "app\n", "--offline")
    assert again.out == offline.out == first.out
    assert not [r for r in index.log[before:] if r.path.startswith("/files/")]


def test_a_server_without_ranges_sends_the_wheel_once_and_it_is_kept(
    index: Index, tmp_path: Path
) -> None:
    app = big("app", requires_dist=("dep",))
    index.add(app, Dist("dep", "1.0"))
    assert lock(index, tmp_path, "app\n").packages()["app"]["dependencies"] == ["dep"]
    data = build_bytes(app)
    assert ranges_asked(index, app) == [f"bytes=-{TAIL}"]  # answered with the whole file
    assert index.served(wheel_path(app)) == len(data)
    assert blob(tmp_path, data).read_bytes() == data


def test_a_whole_wheel_sent_instead_of_a_range_is_checked_against_its_hash(
    index: Index, tmp_path: Path
) -> None:
    app = big("app", requires_dist=("dep",))
    index.add(app, Dist("dep", "1.0"), Dist("evil", "1.0"))
    evil = build_bytes(big("app", requires_dist=("evil",)))
    index.fault(app.filename, body=evil)
    result = lock(index, tmp_path, "app\n")
    assert result.code == 2
    assert f"hash mismatch for {index.files_url}/{app.filename}: expected sha256" in result.err
    assert not blob(tmp_path, evil).exists()


def test_a_refused_range_falls_back_to_the_whole_wheel(index: Index, tmp_path: Path) -> None:
    index.ranges = True
    app = big("app", requires_dist=("dep",))
    index.add(app, Dist("dep", "1.0"))
    index.fault(app.filename, status=416, times=1)
    assert lock(index, tmp_path, "app\n").packages()["app"]["dependencies"] == ["dep"]
    assert ranges_asked(index, app) == [f"bytes=-{TAIL}", None]
    assert blob(tmp_path, build_bytes(app)).is_file()


def test_a_wheel_no_larger_than_the_tail_comes_whole_and_is_kept(
    index: Index, tmp_path: Path
) -> None:
    index.ranges = True
    small = index.publish("small", "1.0", serve_metadata=False)
    assert lock(index, tmp_path, "small\n").code == 0
    data = build_bytes(small)
    assert len(data) < TAIL
    assert ranges_asked(index, small) == [f"bytes=-{TAIL}"]
    assert blob(tmp_path, data).read_bytes() == data  # checked against its hash, as a download


def test_the_longest_zip_comment_is_in_the_first_request(index: Index, tmp_path: Path) -> None:
    index.ranges = True
    dist = big("commented")
    buffer = io.BytesIO(build_bytes(dist))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"#" * 0xFFFF
    data = buffer.getvalue()
    assert read(index, tmp_path, dist.filename, data) == core_metadata(dist)
    # The end with its comment, the central directory before it, METADATA before that.
    assert len(ranges_asked(index, dist)) == 3
    assert index.served(wheel_path(dist)) < len(data) // 10


def as_zip64(data: bytes) -> bytes:
    """The archive with a ZIP64 end record and locator, to which its end record defers."""
    end = data.rindex(b"PK\x05\x06")
    fields = struct.unpack("<4s4H2LH", data[end : end + 22])
    count, size, offset = fields[4], fields[5], fields[6]
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    deferring = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 2**32 - 1, 2**32 - 1, 0
    )
    return data[:end] + record + locator + deferring


def test_a_zip64_end_record(index: Index, tmp_path: Path) -> None:
    index.ranges = True
    dist = big("wide")
    data = as_zip64(build_bytes(dist))
    assert read(index, tmp_path, dist.filename, data) == core_metadata(dist)
    assert index.served(wheel_path(dist)) < len(data) // 10


def test_metadata_over_the_limit_is_refused_before_it_is_fetched(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.ranges = True
    extras = tuple(f"extra-{i:04}" for i in range(500))
    index.add(dist := big("big", provides_extra=extras))
    monkeypatch.setenv("MACHCI_MAX_METADATA_BYTES", "4096")
    result = lock(index, tmp_path, "big\n")
    assert result.code == 2
    assert result.err == (
        f"machci: error: {dist.filename}: big-1.0.dist-info/METADATA: metadata file larger"
        f" than the limit of 4 KiB ({len(core_metadata(dist))} bytes);"
        " set MACHCI_MAX_METADATA_BYTES to raise it\n"
    )
    assert ranges_asked(index, dist) == ["bytes=-4096"]  # no part over the limit is asked for


def cut_before_the_end(data: bytes) -> bytes:
    return data[: data.rindex(b"PK\x05\x06")]


def break_the_directory(data: bytes) -> bytes:
    offset = data.rindex(b"PK\x01\x02")  # the last central directory entry
    return data[:offset] + b"XX" + data[offset + 2 :]


def break_the_metadata(data: bytes) -> bytes:
    start = data.index(b".dist-info/METADATA") + len(".dist-info/METADATA")  # its local header
    return data[:start] + bytes(b ^ 0xFF for b in data[start : start + 64]) + data[start + 64 :]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (cut_before_the_end, "File is not a zip file"),
        (break_the_directory, "Bad magic number for central directory"),
        (break_the_metadata, ""),
    ],
)
def test_a_damaged_wheel_read_by_ranges_is_skipped(
    index: Index, tmp_path: Path, damage: Callable[[bytes], bytes], reason: str
) -> None:
    index.ranges = True
    index.add(big("app", "1.0"), newer := big("app", "2.0"))
    index.fault(newer.filename, body=damage(build_bytes(newer)))
    result = lock(index, tmp_path, "app\n")
    assert result.versions() == {"app": "1.0"}
    assert f"skipping app 2.0 ({newer.filename}): not a valid wheel ({reason}" in result.err
    assert index.served(wheel_path(newer)) < len(NOISE) // 10
