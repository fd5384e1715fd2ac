"""sources/coding.py: pages kept as they came read as they were sent, inflated under the page
limit without ever holding more than it, and anything else is a clear error."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Callable

import pytest

from machci.errors import SourceError
from machci.limits import MIB, Limit
from machci.sources.coding import CODINGS, coding, inflate

LIMIT = Limit("index page", "MACHCI_MAX_PAGE_BYTES", MIB)
PAGE = b'{"meta": {"api-version": "1.1"}, "files": []}\n' * 100
WHERE = "https://index.example/simple/demo/"


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("header", "stored"),
    [
        (None, ""),
        ("", ""),
        ("identity", ""),
        ("gzip", "gzip"),
        (" GZip ", "gzip"),
        ("x-gzip", "gzip"),
        ("deflate", "deflate"),
        ("br", None),
        ("zstd", None),
        ("gzip, gzip", None),
    ],
)
def test_content_codings_read_and_refused(header: str | None, stored: str | None) -> None:
    assert coding(header) == stored
    assert stored is None or stored in CODINGS


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("", PAGE),
        ("gzip", gzip.compress(PAGE)),
        ("deflate", zlib.compress(PAGE)),
        ("deflate", raw_deflate(PAGE)),  # as some servers send "deflate"
    ],
)
def test_a_page_reads_as_sent(encoding: str, body: bytes) -> None:
    assert inflate(body, encoding, LIMIT, WHERE) == PAGE


def test_gzip_members_are_read_in_turn_and_trailing_bytes_ignored() -> None:
    half = len(PAGE) // 2
    members = gzip.compress(PAGE[:half]) + gzip.compress(PAGE[half:])
    assert inflate(members, "gzip", LIMIT, WHERE) == PAGE
    assert inflate(gzip.compress(PAGE) + b"\0" * 16, "gzip", LIMIT, WHERE) == PAGE


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("gzip", gzip.compress(PAGE)[:-12], "the page's gzip data ends early"),
        ("gzip", PAGE, "the page is not valid gzip data (Error -3 while decompressing data:"),
        ("deflate", b"\x78\x9c" + b"\xff" * 20, "the page is not valid deflate data ("),
    ],
)
def test_a_broken_page_names_what_is_wrong(encoding: str, body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as error:
        inflate(body, encoding, LIMIT, WHERE)
    assert error.value.message.startswith(f"{WHERE}: {message}")


@pytest.mark.parametrize("encoding", ["", "gzip", "deflate"])
def test_a_page_at_the_limit_is_read_and_one_byte_more_refused(encoding: str) -> None:
    packers: dict[str, Callable[[bytes], bytes]] = {
        "": bytes,
        "gzip": gzip.compress,
        "deflate": zlib.compress,
    }
    pack = packers[encoding]
    assert inflate(pack(bytes(LIMIT.size)), encoding, LIMIT, WHERE) == bytes(LIMIT.size)
    with pytest.raises(SourceError) as error:
        inflate(pack(bytes(LIMIT.size + 1)), encoding, LIMIT, WHERE)
    assert error.value.message == (
        f"{WHERE}: index page larger than the limit of 1 MiB; set MACHCI_MAX_PAGE_BYTES to raise it"
    )


def test_a_bomb_is_refused_after_the_limits_worth() -> None:
    bomb = gzip.compress(bytes(256 * MIB), compresslevel=9)  # about 256 KiB
    assert len(bomb) < MIB
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match="larger than the limit of 1 MiB"):
            inflate(bomb, "gzip", LIMIT, WHERE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB
    # Over the limit in its second member, after a first within it.
    with pytest.raises(SourceError, match="larger than the limit"):
        inflate(gzip.compress(bytes(MIB // 2)) + bomb, "gzip", LIMIT, WHERE)
