"""machci.yaml's JSON Schema (machci/config/machci.schema.json): a valid draft 2020-12 schema that
names the keys the loader knows, accepts the README's examples, and is what `machci init` points
editors at."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from machci import __version__
from machci.commands.init import SCHEMA_URL, write_config
from machci.config import model as config
from machci.config import properties as properties_module
from machci.config.defaults import (
    DEFAULT_GLIBC,
    DEFAULT_MACOS,
    DEFAULT_OUTPUT,
    SYSTEMS,
    parse_glibc,
    parse_macos,
)
from machci.config.load import load_config
from machci.errors import InputError, Location

README = Path(__file__).resolve().parent.parent / "README.md"


def schema() -> dict[str, Any]:
    schema_file = resources.files("machci.config").joinpath("machci.schema.json")
    text = schema_file.read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def errors(document: object) -> list[str]:
    """Schema errors of a parsed machci.yaml. YAML reads an unquoted time as a datetime, which
    the loader accepts as a snapshot: it is checked as the text it stands for."""
    plain = json.loads(json.dumps(document, default=str))
    return [error.message for error in Draft202012Validator(schema()).iter_errors(plain)]


def readme_configs() -> list[tuple[int, str]]:
    """The README's ```yaml blocks whose top-level keys are all machci.yaml keys (templates
    with "<placeholders>" left out)."""
    text = README.read_text(encoding="utf-8")
    known = set(schema()["properties"])
    found = []
    for match in re.finditer(r"```yaml\n(.*?)```", text, re.DOTALL):
        document = YAML(typ="rt").load(match.group(1))
        template = '"<' in match.group(1)
        if isinstance(document, dict) and document and set(document) <= known and not template:
            found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(schema())


def test_the_loader_validates_with_the_shipped_schema() -> None:
    properties = schema()["properties"]
    assert schema() == properties_module.SCHEMA
    assert tuple(properties)[:3] == ("requirements", "python", "systems")
    assert len(properties) == 22
    assert properties["data"]["properties"]["source"]["enum"] == list(config.SOURCES)
    assert properties["metadataFailures"]["enum"] == list(config.METADATA_FAILURES)
    assert schema()["$defs"]["system"]["enum"] == sorted(SYSTEMS)


def test_the_defaults_are_the_schemas() -> None:
    """Config's defaults come from the schema; the few that live in config/defaults.py (shared with
    `machci check`, which does not load the schema) must agree with it."""
    properties = schema()["properties"]
    default = config.Config()
    assert default.python == properties["python"]["default"]
    assert list(default.systems) == properties["systems"]["default"]
    assert str(default.output) == properties["output"]["default"] == DEFAULT_OUTPUT
    assert parse_glibc(properties["glibc"]["default"]) == DEFAULT_GLIBC
    assert parse_macos(properties["macos"]["default"]) == DEFAULT_MACOS
    assert default.image == config.Image(
        properties["image"]["properties"]["name"]["default"],
        properties["image"]["properties"]["tag"]["default"],
    )
    assert ",".join(default.providers.default) == properties["providers"]["default"]["_default"]
    assert default.build is properties["build"]["default"] is True
    assert default.ignore_collisions is properties["ignoreCollisions"]["default"] is False
    assert default.metadata_failures == properties["metadataFailures"]["default"]
    assert properties["data"]["properties"]["index"]["default"] == config.DEFAULT_INDEX


# Typos and wrong types, and what loading says about them (after "machci.yaml:LINE: ").
MESSAGES = [
    (
        "python: '3.12'\nsytems: [x86_64-linux]\n",
        2,
        "unknown key 'sytems'; did you mean 'systems'? (known: requirements, python, systems,"
        " data, providers, output, glibc, macos, image, ignore-missing-libraries, nixpkgs,"
        " overrides, overridesPre, overridesPost, ignoreCollisions, build, packagesExtra,"
        " project, flake, rPackages, buildConstraints, metadataFailures)",
    ),
    ("python: 3.10\n", 1, 'python: 3.1 was read as a number; quote it, e.g. "3.10"'),
    ("python: [3]\n", 1, "python: expected a string, got [3]"),
    (
        "systems:\n  - x86_64-linux\n  - aarch64-linx\n",
        3,
        "systems: unknown system 'aarch64-linx'; did you mean 'aarch64-linux'? (known:"
        " aarch64-darwin, aarch64-linux, x86_64-darwin, x86_64-linux)",
    ),
    ("systems: []\n", 1, "systems: the list is empty"),
    ("systems: [1, 2]\n", 1, "systems: expected a list of strings, got [1, 2]"),
    (
        "data:\n  snapshots: '2026-11-01T00:00:00Z'\n",
        2,
        "unknown key data: 'snapshots'; did you mean 'snapshot'? (known: source, index,"
        " extra-indexes, snapshot, repository, rev, sha256, path)",
    ),
    ("data: {source: pip}\n", 1, "data: source: unknown source 'pip' (known: pypi, pypi-deps-db)"),
    ("data: {index: 5}\n", 1, "data: index: expected a string, got 5"),
    (
        "data: {source: pypi-deps-db, rev: abc, sha256: x}\n",
        1,
        "data: rev: 'abc' is not a commit id (40 hexadecimal digits)",
    ),
    (
        "providers: {numpy: 1.5}\n",
        1,
        'providers: numpy: 1.5 was read as a number; quote it, e.g. "3.10"',
    ),
    ("glibc: 2.3\n", 1, 'glibc: 2.3 was read as a number; quote it, e.g. "3.10"'),
    (
        "image: {nam: x}\n",
        1,
        "unknown key image: 'nam'; did you mean 'name'? (known: name, tag, cmd)",
    ),
    (
        "image:\n  name: x\n  tag: '-x'\n",
        3,
        "image: tag: '-x' is not an image tag (up to 128 letters, digits, '_', '.' and '-',"
        " not starting with '.' or '-')",
    ),
    (
        'image: {tag: "latest\\n"}\n',
        1,
        "image: tag: 'latest\\n' is not an image tag (up to 128 letters, digits, '_', '.' and"
        " '-', not starting with '.' or '-')",
    ),
    ("image: {cmd: 3}\n", 1, "image: cmd: expected a list of strings, got 3"),
    (
        "nixpkgs: {index: a, path: b}\n",
        1,
        "nixpkgs: give exactly one of index (a file from `machci nixpkgs-index`) or path (a"
        " nixpkgs tree)",
    ),
    (
        "nixpkgs: {indx: a}\n",
        1,
        "unknown key nixpkgs: 'indx'; did you mean 'index'? (known: index, path)",
    ),
    (
        "overrides:\n  numpy:\n    doCheck: false\n    'a b': x\n",
        4,
        "overrides: numpy: 'a b' is not an attribute name",
    ),
    (
        "overrides: {numpy: {doCheck: {add: x, mod: y}}}\n",
        1,
        "overrides: numpy: doCheck: expected a Nix expression, {add: EXPR} or {mod: EXPR}",
    ),
    (
        "overrides: {numpy: {doCheck: {add: 3}}}\n",
        1,
        "overrides: numpy: doCheck: add: expected a string, got 3",
    ),
    ("ignoreCollisions: 'yes'\n", 1, "ignoreCollisions: expected true or false, got 'yes'"),
    (
        "packagesExtra: [3]\n",
        1,
        "packagesExtra: expected a mapping such as {path: ./src}, got 3",
    ),
    (
        "packagesExtra:\n  - path: a\n    url: b\n",
        2,
        "packagesExtra: each entry needs exactly one of path (a source tree), url (an archive)"
        " or git (a repository)",
    ),
    (
        "packagesExtra: [{pth: a}]\n",
        1,
        "unknown key packagesExtra: 'pth'; did you mean 'path'? (known: path, url, git, rev,"
        " extras, requirements, requirementsExtra)",
    ),
    ("flake: {nixpkgs: 3}\n", 1, "flake: nixpkgs: expected a string, got 3"),
    (
        "rPackages:\n  - ggplot2\n  - 3\n",
        3,
        "rPackages: expected a list of strings, got ['ggplot2', 3]",
    ),
    (
        "buildConstraints: [3]\n",
        1,
        "buildConstraints: expected a requirement such as 'setuptools<70' or a mapping {path:"
        " FILE}, got 3",
    ),
    ("buildConstraints: [{}]\n", 1, "buildConstraints: entry needs a 'path'"),
    ("metadataFailures: ignore\n", 1, "metadataFailures: expected error or skip, got 'ignore'"),
    ("requirements: []\n", 1, "requirements: the list is empty"),
    ("requirements: [3]\n", 1, "requirements: expected a file name or a mapping, got 3"),
    ("requirements: [{path: 3}]\n", 1, "requirements: path: expected a string, got 3"),
    (
        "requirements:\n  - path: pyproject.toml\n    extra: [x]\n",
        3,
        "unknown key requirements: 'extra'; did you mean 'extras'? (known: path, extras, groups)",
    ),
    ('python: "3\\0"\n', 1, "python: '3\\x00' contains a NUL character"),
]


@pytest.mark.parametrize(("text", "line", "message"), MESSAGES, ids=lambda v: str(v)[:24])
def test_typos_and_wrong_types_are_refused_on_their_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert (info.value.message, info.value.location) == (message, Location.of(path, line))


def test_a_credential_in_a_wrongly_typed_value_is_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text("data:\n  index: [https://user:s3cret@mirror.example/simple]\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert "s3cret" not in str(info.value)
    assert "data: index: expected a string" in str(info.value)


def test_an_unquoted_snapshot_and_an_anchored_boolean_are_accepted(tmp_path: Path) -> None:
    """ruamel.yaml reads these as a datetime and a ScalarBoolean; editors read a string and a
    boolean, and so does loading."""
    path = tmp_path / "machci.yaml"
    path.write_text(
        "data: {snapshot: 2026-11-01T00:00:00Z}\nbuild: &no false\nignoreCollisions: *no\n"
    )
    loaded = load_config(path)
    assert loaded.data.snapshot_text == "2026-11-01T00:00:00Z"
    assert (loaded.build, loaded.ignore_collisions) == (False, False)


def test_readme_has_configs() -> None:
    assert len(readme_configs()) >= 3


@pytest.mark.parametrize(("line", "text"), readme_configs(), ids=lambda v: str(v)[:12])
def test_readme_examples_validate(line: int, text: str) -> None:
    document = YAML(typ="rt").load(text)
    assert errors(document) == [], f"README.md:{line}"


@pytest.mark.parametrize(
    "path", sorted(README.parent.glob("examples/**/machci.yaml")), ids=lambda p: p.parent.name
)
def test_example_projects_validate(path: Path) -> None:
    assert errors(YAML(typ="rt").load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    "text",
    [
        "sytems: [x86_64-linux]\n",
        "python: 3.10\n",
        "data: {snapshots: '2026-11-01T00:00:00Z'}\n",
        "systems: [aarch64-linx]\n",
        "ignoreCollisions: 'yes'\n",
        "metadataFailures: ignore\n",
        "requirements: []\n",
    ],
)
def test_schema_refuses_what_the_loader_refuses(tmp_path: Path, text: str) -> None:
    path = tmp_path / "machci.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError):
        load_config(path)
    assert errors(YAML(typ="rt").load(text))


def test_init_writes_the_schema_line_and_the_file_loads(tmp_path: Path) -> None:
    step = write_config(
        tmp_path,
        "requirements.txt",
        "3.12",
        ["x86_64-linux"],
        "2026-11-01T00:00:00Z",
        "https://pypi.org/simple",
    )
    text = step.path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={SCHEMA_URL}"
    assert SCHEMA_URL.endswith(f"/v{__version__}/machci/config/machci.schema.json")
    assert load_config(step.path).python == "3.12"
    assert errors(YAML(typ="rt").load(text)) == []
