"""Reading back what default.nix records: a rendered lock reads back as the same packages, hostile
strings and quoted names included, and anything but the shape machci writes is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machci.lock.model import Lock, LockedFile, LockedPackage, Root, SystemLock
from machci.nix.header import split
from machci.nix.recorded import NotRecorded, read_recorded
from machci.nix.render import RenderOptions, render

# Interpolations, quotes, backslashes, an escaped interpolation, `$$`, Nix's escapes and line
# breaks Nix does not escape.
HOSTILE = '${builtins.abort"pwned"}"\\\'\\${x}$${y}${\n\r\t\u2028$'
ROOT = Path(__file__).resolve().parents[1]
BINARY = "cp312-cp312-manylinux_2_17_x86_64"


def wheel(name: str, deps: tuple[str, ...] = (), tag: str = "py3-none-any") -> LockedPackage:
    filename = f"{name.replace('-', '_')}-1.0-{tag}.whl"
    file = LockedFile(filename, f"https://x/{filename}", "0123456789abcdef" * 4)
    return LockedPackage(name, "1.0", "wheel", file, deps)


def hostile_system(system: str) -> SystemLock:
    packages = (
        # A name that must be quoted, a URL and a file name with hostile characters.
        LockedPackage(
            "3to2",
            "1.0",
            "wheel",
            LockedFile(f"x{HOSTILE}.whl", f"https://x/a.whl?q={HOSTILE}", "ff" * 32),
            ("if", "lib"),
        ),
        # A keyword as a name; an sdist with build requirements and an epoch (a drv-name).
        LockedPackage(
            "if",
            "1!2.0",
            "sdist",
            LockedFile("if-1!2.0.tar.gz", "https://x/if-1!2.0.tar.gz", "ee" * 32),
            build_requires=("3to2", "lib"),
        ),
        wheel("lib", tag=BINARY),
        # A binary wheel that loads another's libraries (libraries-from).
        wheel("native", ("lib",), BINARY),
        # From nixpkgs, with a hostile attribute and version, and a wheel as input (inputs-from).
        LockedPackage("nix-pkg", f"9{HOSTILE}", "nixpkgs", None, ("lib",), attr=f"a{HOSTILE}"),
    )
    roots = (Root("3to2", "3to2", "r.txt:1"), Root("native", "native>=1", "r.txt:2"))
    return SystemLock(system, "3.12", packages, roots)


def test_a_rendered_lock_reads_back() -> None:
    lock = Lock(
        (hostile_system("aarch64-darwin"), hostile_system("x86_64-linux")), "https://x", None
    )
    body = render(lock, RenderOptions())
    assert "libraries-from" in body and "inputs-from" in body and "drv-name" in body
    recorded = read_recorded(body)
    assert list(recorded) == ["aarch64-darwin", "x86_64-linux"]
    for system in lock.systems:
        assert recorded[system.system].roots == ("3to2", "native")
        assert recorded[system.system].packages == system.packages


def test_the_example_reads_back() -> None:
    parsed = split((ROOT / "examples" / "basic" / "default.nix").read_text())
    assert parsed is not None
    recorded = read_recorded(parsed[1])
    assert list(recorded) == ["aarch64-linux", "x86_64-linux"]
    requests = next(p for p in recorded["x86_64-linux"].packages if p.name == "requests")
    assert requests.dependencies == ("certifi", "charset-normalizer", "idna", "urllib3")


@given(
    st.text(min_size=1).filter(lambda t: "\0" not in t),
    st.text(min_size=1).filter(lambda t: "\0" not in t),
)
def test_any_string_reads_back(version: str, attr: str) -> None:
    package = LockedPackage("p", version, "nixpkgs", None, attr=attr)
    lock = Lock((SystemLock("x86_64-linux", "3.12", (package,)),), "https://x", None)
    assert read_recorded(render(lock, RenderOptions()))["x86_64-linux"].packages == (package,)


def _body() -> str:
    packages = (wheel("lib"), wheel("app", ("lib",)))
    system = replace(hostile_system("x86_64-linux"), packages=packages)
    return render(Lock((system,), "https://x", None), RenderOptions())


@pytest.mark.parametrize(
    "old, new",
    [
        ('version = "1.0";', 'version = "${x}";'),  # an interpolation
        ('version = "1.0";', 'version = "1\\z";'),  # an escape escape.py never writes
        ('version = "1.0";', "version = 1;"),
        ('provider = "wheel";', 'provider = "wheel";\n          provider = "wheel";'),
        ('provider = "wheel";', 'provider = "wheel";\n          extra = "x";'),
        ("binary = false;", ""),
        ('file = "app-1.0-py3-none-any.whl";', 'file = "other.whl";'),
        ('file = "app-1.0-py3-none-any.whl";', 'attr = "app";'),
        ('"native"\n', "native\n"),  # a name where a string belongs
        ("  systems = {\n", "  systems = rec {\n"),
        ('hash = "sha256-', 'hash = "sha512-'),
        ("dependencies = [ ];", "dependencies = [ ] ++ [ ];"),
    ],
)
def test_anything_else_is_refused(old: str, new: str) -> None:
    body = _body()
    assert old in body
    with pytest.raises(NotRecorded):
        read_recorded(body.replace(old, new, 1))
