"""Pure parts of the renderer: store names, derivation names, library search paths."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from machci.lock.model import Lock, LockedFile, LockedPackage, Root, SystemLock
from machci.nix.render import RenderOptions, derivation_name, render, store_name

VALID = re.compile(r"[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*")


@given(st.text(min_size=1, max_size=400).filter(lambda t: "\0" not in t))
def test_store_names_are_always_valid_and_keep_the_archive_suffix(filename: str) -> None:
    name = store_name(filename)
    assert VALID.fullmatch(name) and len(name) <= 207
    for suffix in (".whl", ".tar.gz", ".zip"):
        if filename.endswith(suffix):
            assert name.endswith(suffix)


def test_a_valid_file_name_is_its_own_store_name_and_others_stay_distinct() -> None:
    plain = "charset_normalizer-3.5.2-cp312-cp312-manylinux_2_17_x86_64.whl"
    assert store_name(plain) == plain
    long_a = "a-1.0+" + "x" * 250 + "-py3-none-any.whl"
    long_b = "a-1.0+" + "x" * 251 + "-py3-none-any.whl"
    assert store_name(long_a) != store_name(long_b)
    assert store_name("epoch-1!2.0.tar.gz").startswith("epoch-1_2.0-")


def test_derivation_names_only_when_the_default_would_fail() -> None:
    assert derivation_name("requests", "2.34.2") is None
    assert derivation_name("epoch", "1!2.0") == "epoch-1_2.0"
    long = derivation_name("x", "1.0+" + "a" * 300)
    assert long is not None and len(long) <= 190 and VALID.fullmatch(long)


def _wheel(name: str, deps: tuple[str, ...] = (), tag: str = "py3-none-any") -> LockedPackage:
    filename = f"{name.replace('-', '_')}-1.0-{tag}.whl"
    return LockedPackage(
        name, "1.0", "wheel", LockedFile(filename, f"https://x/{filename}", "0" * 64), deps
    )


def test_binary_wheels_search_the_libraries_of_their_closure_but_not_of_their_cycle() -> None:
    binary = "cp312-cp312-manylinux_2_17_x86_64"
    packages = (
        _wheel("nvidia-cublas", tag=binary),
        _wheel("nvidia-cudnn", ("nvidia-cublas",), binary),
        _wheel("plugin", ("torch",), binary),  # in a cycle with torch
        _wheel("torch", ("nvidia-cudnn", "plugin", "typing"), binary),
        _wheel("typing"),
    )
    lock = Lock(
        (SystemLock("x86_64-linux", "3.12", packages, (Root("torch", "torch", "r:1"),)),),
        "https://x/simple",
        None,
    )
    text = render(lock, RenderOptions())
    torch = text.split("      torch = {", 1)[1].split("};", 1)[0]
    assert 'libraries-from = [\n            "nvidia-cublas"\n            "nvidia-cudnn"\n' in torch
    assert "plugin" not in torch.split("libraries-from", 1)[1]
    cudnn = text.split("      nvidia-cudnn = {", 1)[1].split("};", 1)[0]
    assert 'libraries-from = [ "nvidia-cublas" ];' in cudnn
    plugin = text.split("      plugin = {", 1)[1].split("libraries-from", 1)[1].split("];", 1)[0]
    assert '"nvidia-cudnn"' in plugin and '"torch"' not in plugin
    for name in ("typing", "nvidia-cublas"):
        section = text.split(f"      {name} = {{", 1)[1].split("};", 1)[0]
        assert "libraries-from" not in section
