"""untrusted.url_problem: its fast path for plain URLs agrees with the full check."""

from __future__ import annotations

import re

import pytest

from machci import untrusted
from machci.untrusted import url_problem

URLS = [
    "https://files.pythonhosted.org/packages/aa/bb/x-1.0.tar.gz#sha256=" + "0" * 64,
    "http://127.0.0.1/simple/x/",
    "https://a..b/x",
    "https://ex.com/p?q=1&r=[2]",
    "https://-a/x",
    "HTTPS://A/x",
    "https://a.b-c/x y",
    "https://a/\u2028",
    "https://ex.com/\x85",
    "https://user:pa/ss@host/x",
    "https://host:99999/x",
    "https://host:65536/x",
    "https://host:65535/x",
    "https://host:0/x",
    "https://host:/x",
    "https://host:12a/x",
    "http://127.0.0.1:8765/packages/x-1.0.tar.gz",
    "https://[::1/x",
    "https://ex\uff0ecom/x",
    "ftp://host/x",
    "https:///x",
    "javascript:alert(1)",
]


def slow(url: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    with monkeypatch.context() as patched:
        patched.setattr(untrusted, "_PLAIN_URL", re.compile(r"(?!)"))
        return url_problem(url)


@pytest.mark.parametrize("url", URLS)
def test_the_fast_path_gives_the_full_checks_answer(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert url_problem(url) == slow(url, monkeypatch)


def test_the_fast_path_is_taken_for_index_urls() -> None:
    assert untrusted._PLAIN_URL.match(URLS[0]) and untrusted._PLAIN_URL.match(URLS[1])
    assert untrusted._PLAIN_URL.match("http://127.0.0.1:8765/packages/x-1.0.tar.gz")
    assert not untrusted._PLAIN_URL.match("https://user@host/x")
