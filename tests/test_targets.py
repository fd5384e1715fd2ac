"""Unit tests of machci.inputs.targets: marker environments and wheel tags of target systems."""

from __future__ import annotations

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, parse_tag

from machci.config.defaults import (
    DEFAULT_GLIBC,
    DEFAULT_MACOS,
    NIXPKGS_PATCH_RELEASES,
    SYSTEMS,
    parse_glibc,
    parse_macos,
    parse_version_pair,
)
from machci.errors import InputError
from machci.inputs.targets import Target


def rank(target: Target, tag: str) -> int | None:
    return target.wheel_rank(frozenset(parse_tag(tag)))


def ranked(target: Target, tag: str) -> int:
    value = rank(target, tag)
    assert value is not None, f"{tag} should be compatible with {target}"
    return value


# --- marker environments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "sys_platform", "platform_system", "machine"),
    [
        ("x86_64-linux", "linux", "Linux", "x86_64"),
        ("aarch64-linux", "linux", "Linux", "aarch64"),
        ("x86_64-darwin", "darwin", "Darwin", "x86_64"),
        ("aarch64-darwin", "darwin", "Darwin", "arm64"),
    ],
)
def test_environment_of_each_system(
    system: str, sys_platform: str, platform_system: str, machine: str
) -> None:
    env = Target(system, "3.12").environment
    assert env["sys_platform"] == sys_platform
    assert env["platform_system"] == platform_system
    assert env["platform_machine"] == machine
    assert env["os_name"] == "posix"
    assert env["implementation_name"] == "cpython"
    assert env["platform_python_implementation"] == "CPython"
    assert env["python_version"] == "3.12"
    assert env["python_full_version"] == "3.12.13"
    assert env["implementation_version"] == "3.12.13"


def test_environment_has_every_pep508_variable() -> None:
    env = Target("x86_64-linux", "3.12").environment
    assert set(env) == {
        "implementation_name",
        "implementation_version",
        "os_name",
        "platform_machine",
        "platform_python_implementation",
        "platform_release",
        "platform_system",
        "platform_version",
        "python_full_version",
        "python_version",
        "sys_platform",
    }


@pytest.mark.parametrize(
    ("python", "full"),
    [("3.11", "3.11.15"), ("3.12", "3.12.13"), ("3.13", "3.13.14"), ("3.14", "3.14.6")],
)
def test_python_full_version_uses_nixpkgs_patch_release(python: str, full: str) -> None:
    target = Target("aarch64-linux", python)
    assert NIXPKGS_PATCH_RELEASES[python] == full
    assert target.python_full_version == full
    assert target.environment["python_full_version"] == full
    assert target.environment["python_version"] == python


@pytest.mark.parametrize("python", ["3.10", "3.15", "2.7", "3.012", "4.0"])
def test_only_the_interpreters_nixpkgs_ships_are_targets(python: str) -> None:
    with pytest.raises(InputError) as info:
        Target("x86_64-linux", python)
    assert str(info.value) == (
        f"unsupported Python version {python!r}: machci targets the CPython versions nixpkgs"
        " ships, 3.11, 3.12, 3.13, 3.14"
    )


MARKERS = {
    # triton / nvidia wheels in torch's metadata
    'platform_system == "Linux" and platform_machine == "x86_64"': {"x86_64-linux"},
    # tensorflow-metal and friends
    'sys_platform == "darwin" and platform_machine == "arm64"': {"aarch64-darwin"},
    'platform_machine == "aarch64" or platform_machine == "arm64"': {
        "aarch64-linux",
        "aarch64-darwin",
    },
    'sys_platform == "win32"': set(),
    'os_name == "nt"': set(),
    'sys_platform != "darwin"': {"x86_64-linux", "aarch64-linux"},
    'implementation_name == "cpython" and platform_python_implementation != "PyPy"': set(SYSTEMS),
    'python_version < "3.13" and python_full_version >= "3.12.4"': set(SYSTEMS),
    'python_version >= "3.13"': set(),
}


@pytest.mark.parametrize("marker", sorted(MARKERS))
def test_realistic_markers(marker: str) -> None:
    matching = {
        system
        for system in SYSTEMS
        if Marker(marker).evaluate(dict(Target(system, "3.12").environment))
    }
    assert matching == MARKERS[marker]


def test_markers_depend_on_python_version() -> None:
    marker = Marker('python_version < "3.12"')
    assert not marker.evaluate(dict(Target("x86_64-linux", "3.12").environment))
    assert marker.evaluate(dict(Target("x86_64-linux", "3.11").environment))
    patched = Marker('python_full_version >= "3.12.10"')
    assert patched.evaluate(dict(Target("x86_64-linux", "3.12").environment))
    assert not patched.evaluate(dict(Target("x86_64-linux", "3.11").environment))
    assert Marker('python_full_version == "3.14.6"').evaluate(
        dict(Target("x86_64-linux", "3.14").environment)
    )


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("system", ["x86_64-windows", "i686-linux", "", "X86_64-linux"])
def test_invalid_system(system: str) -> None:
    with pytest.raises(InputError, match=r"unknown system") as info:
        Target(system, "3.12")
    assert "aarch64-darwin" in str(info.value)


@pytest.mark.parametrize("python", ["3", "three", "3.x", "", "3.12.1.0", "3..12", " 3.12"])
def test_invalid_python_version(python: str) -> None:
    with pytest.raises(InputError, match=r"invalid Python version"):
        Target("x86_64-linux", python)


@pytest.mark.parametrize(
    ("text", "expected"), [("3.12", (3, 12)), ("2.42", (2, 42)), ("14.0", (14, 0))]
)
def test_parse_version_pair(text: str, expected: tuple[int, int]) -> None:
    assert parse_version_pair(text, "thing") == expected


def test_parse_version_pair_error_names_what() -> None:
    with pytest.raises(InputError, match=r"invalid glibc '2'"):
        parse_version_pair("2", "glibc")


def test_three_part_python_version_is_rejected() -> None:
    with pytest.raises(InputError, match=r"expected X\.Y"):
        Target("x86_64-linux", "3.12.1")


def test_non_ascii_digit_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_version_pair("3.\u00b2", "Python version")


@pytest.mark.parametrize(
    ("text", "pair"), [("2.17", (2, 17)), ("2.42", (2, 42)), ("2.99", (2, 99))]
)
def test_glibc_within_its_range(text: str, pair: tuple[int, int]) -> None:
    assert parse_glibc(text) == pair


@pytest.mark.parametrize("text", ["2.9999", "2.5", "3.0", "1.99", "2.100"])
def test_absurd_glibc_is_out_of_range(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_glibc(text)
    assert str(info.value) == f"glibc {text} is out of range: expected 2.17 to 2.99"


@pytest.mark.parametrize(
    ("text", "pair"), [("11.0", (11, 0)), ("14.0", (14, 0)), ("40.99", (40, 99))]
)
def test_macos_within_its_range(text: str, pair: tuple[int, int]) -> None:
    assert parse_macos(text) == pair


@pytest.mark.parametrize("text", ["99.0", "10.15", "41.0", "0.0", "14.100"])
def test_absurd_macos_is_out_of_range(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_macos(text)
    assert str(info.value) == f"macos {text} is out of range: expected 11.0 to 40.99"


def test_defaults() -> None:
    target = Target("x86_64-linux", "3.12")
    assert target.glibc == DEFAULT_GLIBC == (2, 42)
    assert target.macos == DEFAULT_MACOS == (14, 0)
    assert target.python_version == (3, 12)
    assert target.arch == "x86_64"
    assert not target.is_darwin
    assert Target("aarch64-darwin", "3.12").is_darwin


# --- tags: interpreter and ABI -------------------------------------------------------------------


@pytest.mark.parametrize("system", SYSTEMS)
def test_first_tag_is_cpython_of_the_target(system: str) -> None:
    target = Target(system, "3.12")
    first = target.tags[0]
    assert (first.interpreter, first.abi) == ("cp312", "cp312")
    assert len(set(target.tags)) == len(target.tags)
    assert target.tag_rank[first] == 0


def test_first_tags_per_system() -> None:
    assert Target("x86_64-linux", "3.12").tags[0] == Tag("cp312", "cp312", "manylinux_2_42_x86_64")
    assert Target("aarch64-darwin", "3.13").tags[0] == Tag("cp313", "cp313", "macosx_14_0_arm64")


def test_abi3_of_older_minors_accepted_after_exact_abi() -> None:
    target = Target("x86_64-linux", "3.12")
    exact = ranked(target, "cp312-cp312-manylinux2014_x86_64")
    abi3_new = ranked(target, "cp312-abi3-manylinux2014_x86_64")
    abi3_old = ranked(target, "cp38-abi3-manylinux2014_x86_64")
    assert exact < abi3_new < abi3_old
    assert rank(target, "cp32-abi3-manylinux2014_x86_64") is not None


def test_abi3_of_newer_minor_rejected() -> None:
    target = Target("x86_64-linux", "3.12")
    assert rank(target, "cp313-abi3-manylinux2014_x86_64") is None


@pytest.mark.parametrize(
    "tag",
    [
        "cp311-cp311-manylinux2014_x86_64",
        "cp313-cp313-manylinux2014_x86_64",
        "cp312-cp312t-manylinux2014_x86_64",
        "pp310-pypy310_pp73-manylinux2014_x86_64",
        "cp312-cp312-win_amd64",
        "py2-none-any",
    ],
)
def test_incompatible_interpreters_rejected(tag: str) -> None:
    assert rank(Target("x86_64-linux", "3.12"), tag) is None


@pytest.mark.parametrize("system", SYSTEMS)
def test_pure_python_ranks_after_every_binary_tag(system: str) -> None:
    target = Target(system, "3.12")
    pure = ranked(target, "py3-none-any")
    worst_binary = max(target.tag_rank[t] for t in target.tags if t.platform != "any")
    assert pure > worst_binary
    assert ranked(target, "cp312-none-any") < pure
    assert rank(target, "py2.py3-none-any") == pure
    assert ranked(target, "py312-none-any") < pure


def test_wheel_rank_takes_best_of_compressed_tag_set() -> None:
    target = Target("x86_64-linux", "3.12")
    multi = ranked(target, "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64")
    assert multi == ranked(target, "cp312-cp312-manylinux_2_17_x86_64")
    assert multi < ranked(target, "cp312-cp312-manylinux2014_x86_64")
    mixed = frozenset({*parse_tag("cp312-cp312-musllinux_1_2_x86_64"), *parse_tag("py3-none-any")})
    assert target.wheel_rank(mixed) == ranked(target, "py3-none-any")
    assert target.wheel_rank(frozenset()) is None


# --- tags: Linux ---------------------------------------------------------------------------------


def test_manylinux_2_28_before_manylinux2014_on_x86_64() -> None:
    target = Target("x86_64-linux", "3.12")
    assert ranked(target, "cp312-cp312-manylinux_2_28_x86_64") < ranked(
        target, "cp312-cp312-manylinux2014_x86_64"
    )
    assert ranked(target, "cp312-cp312-manylinux2014_x86_64") < ranked(
        target, "cp312-cp312-manylinux1_x86_64"
    )


def test_manylinux_newer_than_glibc_rejected() -> None:
    tag = "cp312-cp312-manylinux_2_43_x86_64"
    assert rank(Target("x86_64-linux", "3.12"), tag) is None
    assert ranked(Target("x86_64-linux", "3.12"), "cp312-cp312-manylinux_2_42_x86_64") == 0
    newer = Target("x86_64-linux", "3.12", glibc=(2, 43))
    assert ranked(newer, tag) == 0
    older = Target("x86_64-linux", "3.12", glibc=(2, 28))
    assert rank(older, "cp312-cp312-manylinux_2_31_x86_64") is None
    assert rank(older, "cp312-cp312-manylinux_2_28_x86_64") == 0


@pytest.mark.parametrize(
    ("system", "tag"),
    [
        ("x86_64-linux", "cp312-cp312-musllinux_1_2_x86_64"),
        ("x86_64-linux", "cp312-abi3-musllinux_1_1_x86_64"),
        ("aarch64-linux", "cp312-cp312-musllinux_1_2_aarch64"),
        ("x86_64-linux", "cp312-cp312-manylinux2014_aarch64"),
        ("x86_64-linux", "cp312-cp312-manylinux_2_17_i686"),
        ("aarch64-linux", "cp312-cp312-manylinux_2_28_x86_64"),
        ("x86_64-linux", "cp312-cp312-macosx_11_0_x86_64"),
        ("aarch64-linux", "cp312-cp312-manylinux_2_17_armv7l"),
    ],
)
def test_wrong_libc_or_arch_rejected(system: str, tag: str) -> None:
    assert rank(Target(system, "3.12"), tag) is None


def test_legacy_manylinux_aliases_on_x86_64() -> None:
    platforms = Target("x86_64-linux", "3.12").platforms
    assert platforms[0] == "manylinux_2_42_x86_64"
    assert platforms[-1] == "manylinux1_x86_64"
    for alias, minor in (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5)):
        assert platforms.index(f"{alias}_x86_64") == (
            platforms.index(f"manylinux_2_{minor}_x86_64") + 1
        )
    assert "manylinux_2_4_x86_64" not in platforms
    assert len(platforms) == (42 - 5 + 1) + 3


def test_legacy_manylinux_aliases_on_aarch64() -> None:
    target = Target("aarch64-linux", "3.12")
    platforms = target.platforms
    assert platforms[0] == "manylinux_2_42_aarch64"
    assert platforms[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert "manylinux2010_aarch64" not in platforms
    assert "manylinux1_aarch64" not in platforms
    assert "manylinux_2_16_aarch64" not in platforms
    assert rank(target, "cp312-cp312-manylinux2014_aarch64") is not None
    assert rank(target, "cp312-cp312-manylinux_2_12_aarch64") is None


# --- tags: macOS ---------------------------------------------------------------------------------


def test_arm64_before_universal2_on_aarch64_darwin() -> None:
    target = Target("aarch64-darwin", "3.12")
    for version in ("14_0", "12_0", "11_0"):
        arm = ranked(target, f"cp312-cp312-macosx_{version}_arm64")
        universal = ranked(target, f"cp312-cp312-macosx_{version}_universal2")
        assert arm < universal
    assert ranked(target, "cp312-cp312-macosx_14_0_arm64") < ranked(
        target, "cp312-cp312-macosx_11_0_arm64"
    )
    assert rank(target, "cp312-cp312-macosx_10_9_universal2") is not None


def test_macos_newer_than_deployment_target_rejected() -> None:
    tag = "cp312-cp312-macosx_15_0_arm64"
    assert rank(Target("aarch64-darwin", "3.12"), tag) is None
    assert rank(Target("aarch64-darwin", "3.12", macos=(15, 0)), tag) == 0
    assert rank(Target("x86_64-darwin", "3.12"), "cp312-cp312-macosx_15_0_x86_64") is None


def test_x86_64_macos_wheels_rejected_on_aarch64_darwin() -> None:
    target = Target("aarch64-darwin", "3.12")
    assert rank(target, "cp312-cp312-macosx_14_0_x86_64") is None
    assert rank(target, "cp312-cp312-macosx_10_9_x86_64") is None
    assert rank(target, "cp312-cp312-macosx_10_9_intel") is None
    assert rank(target, "cp312-cp312-manylinux2014_aarch64") is None


def test_x86_64_darwin_accepts_old_x86_64_and_universal_wheels() -> None:
    target = Target("x86_64-darwin", "3.12")
    assert ranked(target, "cp312-cp312-macosx_10_9_x86_64") < ranked(
        target, "cp312-cp312-macosx_10_9_universal2"
    )
    assert rank(target, "cp312-cp312-macosx_11_0_arm64") is None
    assert rank(target, "cp312-cp312-manylinux2014_x86_64") is None
    assert target.environment["platform_machine"] == "x86_64"
