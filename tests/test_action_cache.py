"""The build's binary cache policy (action/cache.py): who may write, and to which cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from action.cache import attic_cache, repository_push, store_key
from machci.errors import InputError


@pytest.mark.parametrize(
    ("name", "payload", "writes"),
    [
        ("push", {"repository": {"fork": False}}, True),
        ("push", {"repository": {"fork": True}}, False),
        ("push", {"repository": {}}, False),  # fork unknown: may not write
        ("push", {}, False),
        ("push", [], False),
        ("push", None, False),  # no event file
        ("pull_request", {"repository": {"fork": False}}, False),
        ("", {"repository": {"fork": False}}, False),
    ],
)
def test_only_a_push_to_the_repository_itself_writes(
    tmp_path: Path, name: str, payload: object, writes: bool
) -> None:
    path = tmp_path / "event.json"
    if payload is not None:
        path.write_text(json.dumps(payload))
    assert repository_push(name, str(path)) is writes


def test_an_unreadable_event_does_not_write(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text("{")
    assert repository_push("push", str(path)) is False
    assert repository_push("push", "") is False


def test_attic_endpoint_and_cache() -> None:
    assert attic_cache("https://attic.example.com/ci") == ("https://attic.example.com/", "ci")
    assert attic_cache("http://10.0.0.1:8080/x/ci/") == ("http://10.0.0.1:8080/x/", "ci")
    for url in ("https://attic.example.com", "https://attic.example.com/", "ftp://h/ci"):
        with pytest.raises(InputError, match="is not an Attic cache's URL"):
            attic_cache(url)
    for url in ("https://t:x@h/ci", "https://h/ci?token=x", "https://h/ci#x"):
        with pytest.raises(InputError, match="carries no credentials") as error:
            attic_cache(url)
        assert "x@" not in str(error.value) and "token=x" not in str(error.value)


def test_the_store_key_follows_the_build_inputs(tmp_path: Path) -> None:
    output = tmp_path / "default.nix"
    output.write_text("{ }: 1\n")
    key, prefix = store_key(output, ("x86_64-linux",), ())
    assert key.startswith(prefix) and prefix == "machci-nix-x86_64-linux-"
    assert store_key(output, ("x86_64-linux",), ()) == (key, prefix)
    assert store_key(output, ("x86_64-linux",), ("--arg", "x", "1"))[0] != key
    assert store_key(output, ("aarch64-linux", "x86_64-linux"), ())[1] == (
        "machci-nix-aarch64-linux+x86_64-linux-"
    )
    output.write_text("{ }: 2\n")
    assert store_key(output, ("x86_64-linux",), ())[0] != key
