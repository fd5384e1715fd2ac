"""Unit tests of machci.config: loading and validating machci.yaml."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from machci.config.defaults import DEFAULT_GLIBC, DEFAULT_MACOS
from machci.config.load import load_config
from machci.config.model import (
    DEFAULT_PROVIDERS,
    Config,
    DataRevision,
    Providers,
    RequirementInput,
    format_snapshot,
    parse_providers,
    parse_snapshot,
)
from machci.errors import InputError, Location
from machci.nix.settings import settings_digest

EXAMPLE = """\
requirements: [requirements.txt]
python: "3.12"
systems: [x86_64-linux, aarch64-linux]
data:
  source: pypi
  index: https://pypi.org/simple
  snapshot: "2026-11-01T00:00:00Z"
providers: { _default: "wheel,sdist", torch: wheel }
output: default.nix
"""

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path / "machci.yaml", text))


def load_error(tmp_path: Path, text: str) -> tuple[str, Path]:
    path = write(tmp_path / "machci.yaml", text)
    with pytest.raises(InputError) as info:
        load_config(path)
    return str(info.value), path


# --- valid files ---------------------------------------------------------------------------------


def test_example_config(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE)
    assert config.requirements == (RequirementInput(tmp_path / "requirements.txt"),)
    assert config.python == "3.12"
    assert config.systems == ("x86_64-linux", "aarch64-linux")
    assert config.data == DataRevision(
        index="https://pypi.org/simple", extra_indexes=(), snapshot=NOV_1, source="pypi"
    )
    assert config.data.snapshot_text == "2026-11-01T00:00:00Z"
    assert config.providers.default == ("wheel", "sdist")
    assert dict(config.providers.per_package) == {"torch": ("wheel",)}
    assert config.providers.for_package("torch") == ("wheel",)
    assert config.providers.for_package("numpy") == ("wheel", "sdist")
    assert config.output == tmp_path / "default.nix"
    assert config.glibc == DEFAULT_GLIBC
    assert config.macos == DEFAULT_MACOS
    assert config.path == tmp_path / "machci.yaml"


def test_all_remaining_keys(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        requirements: requirements.txt
        systems: [aarch64-darwin, x86_64-darwin, aarch64-darwin]
        data:
          index: https://mirror.example.org/simple/
          extra-indexes:
            - https://download.pytorch.org/whl/cpu
            - http://internal.example/simple
        glibc: "2.39"
        macos: "13.0"
        output: nix/python.nix
        ignore-missing-libraries: [libnvidia-ml.so.1, "libtorch_*.so"]
        """,
    )
    assert config.requirements == (RequirementInput(tmp_path / "requirements.txt"),)
    assert config.ignore_missing_libraries == ("libnvidia-ml.so.1", "libtorch_*.so")
    assert config.systems == ("aarch64-darwin", "x86_64-darwin")
    assert config.data.index == "https://mirror.example.org/simple"
    assert config.data.extra_indexes == (
        "https://download.pytorch.org/whl/cpu",
        "http://internal.example/simple",
    )
    assert config.data.snapshot is None
    assert config.data.snapshot_text is None
    assert config.glibc == (2, 39)
    assert config.macos == (13, 0)
    assert config.output == tmp_path / "nix" / "python.nix"


def test_extra_indexes_as_single_string(tmp_path: Path) -> None:
    config = load(tmp_path, "data:\n  extra-indexes: https://extra.example/simple\n")
    assert config.data.extra_indexes == ("https://extra.example/simple",)
    assert config.data.index is None


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_defaults_for_empty_file(tmp_path: Path, text: str) -> None:
    config = load(tmp_path, text)
    assert config == Config(output=tmp_path / "default.nix", path=tmp_path / "machci.yaml")
    assert config.requirements == ()
    assert config.python == "3.12"
    assert config.systems == ("x86_64-linux", "aarch64-linux")
    assert config.data == DataRevision()
    assert config.providers == Providers()
    assert config.providers.default == DEFAULT_PROVIDERS


def test_defaults_for_absent_keys(tmp_path: Path) -> None:
    config = load(tmp_path, 'python: "3.13"\n')
    assert config.python == "3.13"
    assert config.systems == ("x86_64-linux", "aarch64-linux")
    assert config.data.index is None
    assert config.data.snapshot is None
    assert config.data.source == "pypi"
    assert config.providers.for_package("anything") == ("wheel", "sdist")
    assert config.output == tmp_path / "default.nix"


def test_paths_relative_to_config_directory(tmp_path: Path) -> None:
    path = write(
        tmp_path / "project" / "ci" / "machci.yaml",
        """\
        requirements:
          - ../requirements.txt
          - path: ../pyproject.toml
            extras: [gpu, docs]
            groups: test
          - {path: dev.txt}
        output: ../nix/default.nix
        """,
    )
    config = load_config(path)
    base = tmp_path / "project" / "ci"
    assert config.requirements == (
        RequirementInput(base / "../requirements.txt"),
        RequirementInput(base / "../pyproject.toml", ("gpu", "docs"), ("test",)),
        RequirementInput(base / "dev.txt"),
    )
    assert config.output == base / "../nix/default.nix"
    assert config.output.resolve() == (tmp_path / "project" / "nix" / "default.nix").resolve()


def test_absolute_output_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "out.nix"
    assert load(tmp_path, f"output: {target}\n").output == target


def test_requirement_mapping_as_single_entry(tmp_path: Path) -> None:
    config = load(tmp_path, "requirements:\n  path: pyproject.toml\n  groups: [dev, lint]\n")
    assert config.requirements == (
        RequirementInput(tmp_path / "pyproject.toml", (), ("dev", "lint")),
    )


def test_providers_canonicalised_and_default(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        providers:
          _default: sdist
          Foo_Bar: sdist
          torch: " wheel , sdist "
          Pillow: wheel
        """,
    )
    assert config.providers.default == ("sdist",)
    assert dict(config.providers.per_package) == {
        "foo-bar": ("sdist",),
        "torch": ("wheel", "sdist"),
        "pillow": ("wheel",),
    }
    assert config.providers.for_package("foo-bar") == ("sdist",)
    assert config.providers.for_package("numpy") == ("sdist",)


# --- unknown keys --------------------------------------------------------------------------------


def test_unknown_top_level_key_with_suggestion(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, 'python: "3.12"\n\nsytems: [x86_64-linux]\n')
    assert message.startswith(f"{path}:3: unknown key 'sytems'")
    assert "did you mean 'systems'?" in message
    assert "known: requirements, python, systems" in message


def test_unknown_top_level_key_without_suggestion(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "zzzzzz: 1\n")
    assert message.startswith(f"{path}:1: unknown key 'zzzzzz'")
    assert "did you mean" not in message


def test_unknown_data_key(tmp_path: Path) -> None:
    message, path = load_error(
        tmp_path, "data:\n  index: https://pypi.org/simple\n  snapshots: x\n"
    )
    assert message.startswith(f"{path}:3: unknown key data: 'snapshots'")
    assert "did you mean 'snapshot'?" in message


def test_unknown_key_in_requirement_entry(tmp_path: Path) -> None:
    message, path = load_error(
        tmp_path, "requirements:\n  - path: pyproject.toml\n    extra: [gpu]\n"
    )
    assert f"{path}:3" in message
    assert "'extra'" in message
    assert "did you mean 'extras'?" in message


def test_requirement_entry_needs_path(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "requirements:\n  - extras: [gpu]\n")
    assert "entry needs a 'path'" in message
    assert f"{path}:2" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("requirements: []\n", "requirements: the list is empty"),
        ("requirements: [3]\n", "expected a file name or a mapping"),
        ("requirements:\n  - path: p.toml\n    extras: 3\n", "extras: expected a list"),
    ],
)
def test_invalid_requirements_entries(tmp_path: Path, text: str, fragment: str) -> None:
    message, path = load_error(tmp_path, text)
    assert fragment in message
    assert message.startswith(f"{path}:")


# --- python ------------------------------------------------------------------------------------


def test_unquoted_python_version_is_a_float(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "systems: [x86_64-linux]\npython: 3.10\n")
    assert message.startswith(f"{path}:2:")
    assert "read as a number" in message
    assert "quote it" in message
    assert '"3.10"' in message


@pytest.mark.parametrize("value", ["'three'", "'3'", "'3.x'", "'3.12.1.1'", "''", "3"])
def test_invalid_python_version(tmp_path: Path, value: str) -> None:
    message, path = load_error(tmp_path, f"\npython: {value}\n")
    assert message.startswith(f"{path}:2:")
    assert "python" in message.lower()


def test_invalid_python_string_mentions_expected_form(tmp_path: Path) -> None:
    message, _ = load_error(tmp_path, "python: 'three'\n")
    assert "invalid Python version 'three'" in message
    assert "X.Y" in message


# --- systems -------------------------------------------------------------------------------------


def test_unknown_system_with_suggestion(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "\nsystems: [x86_64-linux, aarch64-linx]\n")
    assert message.startswith(f"{path}:2: systems: unknown system 'aarch64-linx'")
    assert "did you mean 'aarch64-linux'?" in message
    assert "x86_64-darwin" in message


def test_empty_systems(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "systems: []\n")
    assert message == f"{path}:1: systems: the list is empty"


def test_systems_single_string(tmp_path: Path) -> None:
    assert load(tmp_path, "systems: aarch64-darwin\n").systems == ("aarch64-darwin",)


def test_systems_must_be_strings(tmp_path: Path) -> None:
    message, _ = load_error(tmp_path, "systems: [1, 2]\n")
    assert "expected a list of strings" in message


def test_ignored_libraries_must_be_strings(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "python: '3.12'\nignore-missing-libraries: {a: 1}\n")
    assert message.startswith(f"{path}:2: ignore-missing-libraries: expected a list of strings")


# --- providers -----------------------------------------------------------------------------------


def test_invalid_provider_list(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "providers:\n  _default: wheel\n  torch: wheel,egg\n")
    assert message.startswith(f"{path}:3: invalid provider list 'wheel,egg'")
    assert "wheel, sdist" in message


def test_duplicated_provider(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "providers: {_default: 'wheel,sdist,wheel'}\n")
    assert message.startswith(f"{path}:1:")
    assert "names a provider twice" in message


def test_providers_must_be_a_mapping(tmp_path: Path) -> None:
    message, _ = load_error(tmp_path, "providers: wheel\n")
    assert "providers: expected a mapping" in message


def test_provider_value_must_be_a_string(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "providers:\n  torch: [wheel]\n")
    assert message.startswith(f"{path}:2:")
    assert "expected a string" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wheel", ("wheel",)),
        ("sdist,wheel", ("sdist", "wheel")),
        (" wheel , sdist ", ("wheel", "sdist")),
        ("wheel,", ("wheel",)),
    ],
)
def test_parse_providers_valid(text: str, expected: tuple[str, ...]) -> None:
    assert parse_providers(text) == expected


@pytest.mark.parametrize("text", ["", ",", "egg", "wheel,egg", "Wheel", "wheel sdist"])
def test_parse_providers_invalid(text: str) -> None:
    where = Location("cli", 7)
    with pytest.raises(InputError, match=r"invalid provider list") as info:
        parse_providers(text, where)
    assert info.value.location == where


def test_parse_providers_duplicate() -> None:
    with pytest.raises(InputError, match=r"twice"):
        parse_providers("sdist,sdist")


# --- snapshot ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"2026-11-01T00:00:00Z"', NOV_1),
        ("'2026-11-01T02:00:00+02:00'", NOV_1),
        ("'2026-10-31T19:30:00-04:30'", NOV_1),
        ("2026-11-01T00:00:00Z", NOV_1),
        ("2026-11-01T02:00:00+02:00", NOV_1),
        ('"2026-11-01T12:34:56.5Z"', datetime(2026, 11, 1, 12, 34, 56, 500000, tzinfo=UTC)),
    ],
)
def test_snapshot_parsing(tmp_path: Path, value: str, expected: datetime) -> None:
    config = load(tmp_path, f"data:\n  snapshot: {value}\n")
    snapshot = config.data.snapshot
    assert snapshot is not None
    assert snapshot == expected
    assert snapshot.utcoffset() is not None
    assert snapshot.utcoffset() == expected.utcoffset()
    assert config.data.snapshot_text == format_snapshot(expected)


def test_snapshot_offset_converted_to_utc_text(tmp_path: Path) -> None:
    config = load(tmp_path, "data:\n  snapshot: '2026-11-01T01:30:00+02:00'\n")
    assert config.data.snapshot_text == "2026-10-31T23:30:00Z"


def test_snapshot_null_means_latest(tmp_path: Path) -> None:
    assert load(tmp_path, "data:\n  snapshot:\n").data.snapshot is None


@pytest.mark.parametrize("value", ['"2026-11-01T00:00:00"', "2026-11-01T00:00:00", '"2026-11-01"'])
def test_snapshot_without_time_zone(tmp_path: Path, value: str) -> None:
    message, path = load_error(
        tmp_path, f"data:\n  index: https://x.example\n  snapshot: {value}\n"
    )
    assert message.startswith(f"{path}:3:")
    assert "no time zone" in message
    assert "'Z'" in message


@pytest.mark.parametrize("value", ["garbage", "'2026-13-01T00:00:00Z'", "'yesterday'"])
def test_snapshot_garbage(tmp_path: Path, value: str) -> None:
    message, path = load_error(tmp_path, f"data:\n  snapshot: {value}\n")
    assert message.startswith(f"{path}:2: invalid snapshot")
    assert "RFC 3339" in message


@pytest.mark.parametrize("value", ["12", "2026-11-01", "[a]"])
def test_snapshot_wrong_type(tmp_path: Path, value: str) -> None:
    message, path = load_error(tmp_path, f"data:\n  snapshot: {value}\n")
    assert message.startswith(f"{path}:2: ")
    assert "snapshot" in message
    assert "RFC 3339" in message


def test_parse_snapshot_direct() -> None:
    assert parse_snapshot("2026-11-01T00:00:00Z") == NOV_1
    assert parse_snapshot(" 2026-11-01T03:00:00+03:00 ") == NOV_1
    moment = parse_snapshot(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert moment.tzinfo == UTC
    assert format_snapshot(moment) == "2026-11-01T01:00:00Z"
    with pytest.raises(InputError, match=r"no time zone"):
        parse_snapshot(datetime(2026, 11, 1))
    with pytest.raises(InputError, match=r"RFC 3339"):
        parse_snapshot("not a time", Location("x", 1))


# --- data ----------------------------------------------------------------------------------------


def test_data_source_other_rejected(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "data:\n  index: https://x.example\n  source: other\n")
    assert message.startswith(f"{path}:3:")
    assert "unknown source 'other'" in message
    assert "pypi" in message


def test_data_must_be_a_mapping(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "python: '3.12'\ndata: [pypi]\n")
    assert message == f"{path}:2: data: expected a mapping, got ['pypi']"


@pytest.mark.parametrize("url", ["pypi.org/simple", "ftp://mirror.example/simple", "file:///srv"])
def test_index_without_http_scheme_rejected(tmp_path: Path, url: str) -> None:
    message, path = load_error(tmp_path, f"data:\n  source: pypi\n  index: {url}\n")
    assert message.startswith(f"{path}:3:")
    assert "must start with http:// or https://" in message
    assert url in message


def test_extra_index_without_http_scheme_rejected(tmp_path: Path) -> None:
    message, _ = load_error(tmp_path, "data:\n  extra-indexes: [mirror.example/simple]\n")
    assert (
        "'mirror.example/simple' is not usable: it must start with http:// or https://" in message
    )


def test_extra_index_error_points_at_its_line(tmp_path: Path) -> None:
    message, path = load_error(
        tmp_path,
        "data:\n  index: https://pypi.org/simple\n  extra-indexes:\n    - ftp://bad.example\n",
    )
    assert message.startswith(f"{path}:3:")


# --- data: pypi-deps-db --------------------------------------------------------------------------

REV = "0123456789abcdef0123456789abcdef01234567"
NIX32 = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"  # sha256 of nothing
SRI = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # the same, as SRI


def depsdb(*lines: str) -> str:
    return "data:\n  source: pypi-deps-db\n" + "".join(f"  {line}\n" for line in lines)


def test_depsdb_pin(tmp_path: Path) -> None:
    config = load(tmp_path, depsdb(f"rev: {REV.upper()}", f"sha256: {NIX32}"))
    assert config.data == DataRevision(
        source="pypi-deps-db", repository="DavHau/pypi-deps-db", rev=REV, sha256=NIX32
    )


def test_depsdb_checkout_and_repository(tmp_path: Path) -> None:
    config = load(tmp_path, depsdb("repository: me/deps-db-fork", "path: ../deps-db"))
    assert config.data.path == tmp_path / "../deps-db"
    assert config.data.repository == "me/deps-db-fork"
    assert config.data.rev is None


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        ((f"rev: {REV[:-1]}", f"sha256: {NIX32}"), 3, "rev: '0123"),
        ((f"rev: {REV[:-1]}g", f"sha256: {NIX32}"), 3, "is not a commit id (40 hexadecimal"),
        ((f"rev: {REV}", "sha256: abcd"), 4, "data: sha256: 'abcd' is not a sha256 hash"),
        ((f"rev: {REV}", f"sha256: sha256-{NIX32}"), 4, "is not a sha256 hash"),
        ((f"rev: {REV}",), 2, "needs rev and sha256"),
        ((f"sha256: {SRI}",), 2, "rev is missing"),
        ((f"rev: {REV}", f"sha256: {NIX32}", "path: db"), 3, "either path (a checkout"),
        (("path: db", f"sha256: {NIX32}"), 4, "either path (a checkout"),
        (
            (f"rev: {REV}", f"sha256: {NIX32}", 'snapshot: "2025-01-01T00:00:00Z"'),
            5,
            "data: snapshot: not a setting of source pypi-deps-db",
        ),
        ((f"rev: {REV}", f"sha256: {NIX32}", "index: https://x/simple"), 5, "index: not a"),
        (("repository: just-a-name", "path: db"), 3, "is not a GitHub repository OWNER/NAME"),
        (("path: 1.5",), 3, "read as a number"),
    ],
)
def test_depsdb_errors_name_their_line(
    tmp_path: Path, lines: tuple[str, ...], line: int, fragment: str
) -> None:
    message, path = load_error(tmp_path, depsdb(*lines))
    assert message.startswith(f"{path}:{line}: ")
    assert fragment in message


def test_depsdb_keys_are_refused_for_pypi(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, f"data:\n  source: pypi\n  rev: {REV}\n")
    assert message == (
        f"{path}:3: data: rev: not a setting of source pypi (it takes index, extra-indexes,"
        " snapshot)"
    )


def test_depsdb_settings_digest(tmp_path: Path) -> None:
    def digest(*lines: str) -> str:
        config = load(tmp_path, depsdb(*lines))
        return settings_digest(config, config.output)

    pinned = digest(f"rev: {REV}", f"sha256: {NIX32}")
    assert pinned == digest(f"rev: {REV}", f"sha256: {SRI}")  # one hash, two spellings
    assert pinned != digest(f"rev: {REV[::-1]}", f"sha256: {NIX32}")
    assert pinned != digest("path: db")
    pypi = load(tmp_path, "data: {source: pypi}\n")
    assert pinned != settings_digest(pypi, pypi.output)


# --- glibc / macos -------------------------------------------------------------------------------


def test_unquoted_glibc_rejected(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "glibc: 2.40\n")
    assert message.startswith(f"{path}:1: glibc:")
    assert "quote it" in message


def test_invalid_macos(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "\nmacos: 'fourteen'\n")
    assert message.startswith(f"{path}:2: invalid macos 'fourteen'")


# --- YAML and file problems ----------------------------------------------------------------------


def test_invalid_yaml_syntax_names_line(tmp_path: Path) -> None:
    message, path = load_error(
        tmp_path, 'python: "3.12"\ndata:\n  index: https://x.example\n snapshot: x\n'
    )
    assert message.startswith(f"{path}:4: invalid YAML")


def test_invalid_yaml_tab_names_line(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, 'python: "3.12"\nsystems:\n\t- x86_64-linux\n')
    assert message.startswith(f"{path}:3: invalid YAML")


def test_duplicate_key_is_invalid_yaml(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, "python: '3.12'\npython: '3.11'\n")
    assert message.startswith(f"{path}:2: invalid YAML")
    assert "duplicate" in message


@pytest.mark.parametrize("text", ["- requirements.txt\n", "just a string\n", "42\n"])
def test_non_mapping_top_level(tmp_path: Path, text: str) -> None:
    message, path = load_error(tmp_path, text)
    assert message == f"{path}: expected a mapping of settings at the top level"


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "machci.yaml"
    with pytest.raises(InputError) as info:
        load_config(path)
    assert "not found" in str(info.value)
    assert str(path) in str(info.value)


def test_undecodable_config_file(tmp_path: Path) -> None:
    path = tmp_path / "machci.yaml"
    path.write_bytes(b"systems: [x86_64-linux]\npython: '3.1\xff'\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2: not UTF-8 text (byte 0xff cannot be decoded)"


def test_config_with_changes_returns_new_config(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE)
    changed = config.with_changes(python="3.13")
    assert changed.python == "3.13"
    assert config.python == "3.12"
    assert changed.systems == config.systems


def test_settings_digest_leaves_index_credentials_out(tmp_path: Path) -> None:
    plain = load(tmp_path, "data: {index: 'https://host/simple', extra-indexes: ['https://x/s']}\n")
    secret = load(
        tmp_path,
        "data: {index: 'https://u:hunter2@host/simple', extra-indexes: ['https://x/s?token=t0']}\n",
    )
    assert settings_digest(plain, plain.output) == settings_digest(secret, secret.output)


# --- hostile and out-of-range values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "prefix"),
    [
        ('image: {name: "a\\0b"}\n', 1, "image: name: 'a\\x00b'"),
        ('image:\n  cmd: [python, "-c\\0"]\n', 2, "image: cmd: '-c\\x00'"),
        ('requirements: ["req\\0.txt"]\n', 1, "requirements: 'req\\x00.txt'"),
        ('ignore-missing-libraries: ["lib\\0.so"]\n', 1, "ignore-missing-libraries: 'lib\\x00.so'"),
        ('overrides:\n  "pkg\\0": {doCheck: "false"}\n', 2, "overrides: 'pkg\\x00'"),
        ('providers: {"torch\\0": wheel}\n', 1, "providers: 'torch\\x00'"),
        (
            'overrides:\n  pkg: {postInstall: "rm\\0"}\n',
            2,
            "overrides: pkg: postInstall: 'rm\\x00'",
        ),
    ],
)
def test_nul_characters_are_refused_with_their_line(
    tmp_path: Path, text: str, line: int, prefix: str
) -> None:
    message, path = load_error(tmp_path, text)
    assert message == f"{path}:{line}: {prefix} contains a NUL character"


def test_an_index_url_with_a_newline_is_refused(tmp_path: Path) -> None:
    message, path = load_error(tmp_path, 'data:\n  index: "https://x.example/\\n# pwned"\n')
    assert message == (
        f"{path}:2: data: index URL 'https://x.example/\\n# pwned' is not usable: it contains '\\n'"
    )


@pytest.mark.parametrize("python", ["3.10", "3.15"])
def test_unsupported_python_names_its_line(tmp_path: Path, python: str) -> None:
    message, path = load_error(tmp_path, f'systems: [x86_64-linux]\npython: "{python}"\n')
    assert message == (
        f"{path}:2: unsupported Python version {python!r}: machci targets the CPython versions"
        " nixpkgs ships, 3.11, 3.12, 3.13, 3.14"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('glibc: "2.9999"\n', "glibc 2.9999 is out of range: expected 2.17 to 2.99"),
        ('macos: "99.0"\n', "macos 99.0 is out of range: expected 11.0 to 40.99"),
    ],
)
def test_absurd_glibc_or_macos_names_its_line(tmp_path: Path, text: str, message: str) -> None:
    assert load_error(tmp_path, f"python: '3.12'\n{text}") == (
        f"{tmp_path / 'machci.yaml'}:2: {message}",
        tmp_path / "machci.yaml",
    )


@pytest.mark.parametrize(
    "value", ["'0001-01-01T00:00:00Z'", "'9999-01-01T00:00:00Z'", "'1999-12-31T23:59:59Z'"]
)
def test_out_of_range_snapshot_names_its_line(tmp_path: Path, value: str) -> None:
    message, path = load_error(tmp_path, f"data:\n  snapshot: {value}\n")
    assert message.startswith(f"{path}:2: snapshot {value.strip(chr(39))} is out of range")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2026-11-01T00:00:00.5Z", "2026-11-01T00:00:00.5Z"),
        ("2026-11-01T00:00:00.000001Z", "2026-11-01T00:00:00.000001Z"),
        ("2026-11-01T01:00:00.250+01:00", "2026-11-01T00:00:00.25Z"),
        ("2026-11-01T00:00:00.000Z", "2026-11-01T00:00:00Z"),
    ],
)
def test_fractional_seconds_are_kept(tmp_path: Path, value: str, text: str) -> None:
    config = load(tmp_path, f"data:\n  snapshot: '{value}'\n")
    assert config.data.snapshot_text == text
    assert parse_snapshot(text) == config.data.snapshot
