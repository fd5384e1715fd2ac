"""machci.yaml's JSON Schema (machci/machci.schema.json): a valid draft 2020-12 schema that
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

from machci import __version__, config
from machci.config import load_config
from machci.defaults import SYSTEMS
from machci.errors import InputError
from machci.init import SCHEMA_URL, write_config

README = Path(__file__).resolve().parent.parent / "README.md"


def schema() -> dict[str, Any]:
    text = resources.files("machci").joinpath("machci.schema.json").read_text(encoding="utf-8")
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


def test_schema_names_the_keys_the_loader_knows() -> None:
    """The loader's key lists come from the schema; these are the keys it knew before."""
    properties = schema()["properties"]
    assert schema() == config.SCHEMA
    assert tuple(properties)[:3] == ("requirements", "python", "systems")
    assert len(properties) == 22
    assert tuple(properties["data"]["properties"]) == config._DATA_KEYS
    assert tuple(properties["image"]["properties"]) == config._IMAGE_KEYS
    assert tuple(properties["nixpkgs"]["properties"]) == config._NIXPKGS_KEYS
    assert tuple(properties["flake"]["anyOf"][1]["properties"]) == config._FLAKE_KEYS
    assert tuple(properties["packagesExtra"]["items"]["properties"]) == config._EXTRA_KEYS
    assert properties["data"]["properties"]["source"]["enum"] == list(config.SOURCES)
    assert properties["metadataFailures"]["enum"] == list(config.METADATA_FAILURES)
    assert schema()["$defs"]["system"]["enum"] == sorted(SYSTEMS)


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
    assert SCHEMA_URL.endswith(f"/v{__version__}/machci/machci.schema.json")
    assert load_config(step.path).python == "3.12"
    assert errors(YAML(typ="rt").load(text)) == []
