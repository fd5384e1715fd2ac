"""Secrets in URLs: user-info and secret query parameters hidden in what machci prints and
dropped from what it writes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from machci.notices import warn
from machci.redaction import redact, strip_credentials
from tests.fixtures.index import Index
from tests.helpers import lock

TOKEN = "tok-4f9a2c"


def test_a_signed_direct_reference_resolves_and_its_token_is_dropped(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = index.publish("direct", "1.0").filename
    url = f"{index.files_url}/{wheel}"
    monkeypatch.setenv("FILES_TOKEN", TOKEN)
    reference = f"direct @ {url}?token=${{FILES_TOKEN}}#sha256={index.sha256(wheel)}"
    result = lock(index, tmp_path, f"{reference}\n")
    assert result.packages()["direct"]["file"]["url"] == url
    assert result.lock["systems"]["x86_64-linux"]["roots"][0]["requirement"] == (
        f"direct @ {url}#sha256={index.sha256(wheel)}"
    )
    assert TOKEN not in result.out + result.err


@pytest.mark.parametrize(
    "url, shown, stored",
    [
        ("https://h/x?token=abc", "https://h/x?token=***", "https://h/x"),
        (
            "https://u:p@h/x.whl?a=1&Access_Token=z&b=2#sha256=00",
            "https://***@h/x.whl?a=1&Access_Token=***&b=2#sha256=00",
            "https://h/x.whl?a=1&b=2#sha256=00",
        ),
        (
            "https://b.s3/x.whl?X-Amz-Signature=q&KEY=k&sig=s&password=p&client_secret=c",
            "https://b.s3/x.whl?X-Amz-Signature=***&KEY=***&sig=***&password=***&client_secret=***",
            "https://b.s3/x.whl",
        ),
        ("https://h/x?monkey=1&keyring=2", "https://h/x?monkey=1&keyring=2", None),
        (
            'app @ https://u:p@ss@h/a.whl?api_key=k ; python_version > "3"',
            'app @ https://***@h/a.whl?api_key=*** ; python_version > "3"',
            'app @ https://h/a.whl ; python_version > "3"',
        ),
        (
            "cannot fetch http://h/x?token=a: timed out",
            "cannot fetch http://h/x?token=***: timed out",
            "cannot fetch http://h/x: timed out",
        ),
    ],
)
def test_secret_query_parameters_are_hidden_and_dropped(
    url: str, shown: str, stored: str | None
) -> None:
    assert redact(url) == shown
    assert redact(shown) == shown
    assert strip_credentials(url) == (url if stored is None else stored)


def test_warnings_hide_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    warn("see https://u:p@h/simple/x/?token=abc")
    assert capsys.readouterr().err == "machci: warning: see https://***@h/simple/x/?token=***\n"


def test_hiding_secrets_takes_linear_time() -> None:
    hostile = "https://" + "h" * 100_000 + "/x?" + "a=1&token=2&" * 100_000 + "." * 50_000 + "x"
    start = time.monotonic()
    assert "token=***" in redact(hostile)
    assert "token" not in strip_credentials(hostile)
    assert time.monotonic() - start < 2.0
