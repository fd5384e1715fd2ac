"""action.yml and the workflow template pass the linters GitHub workflows are held to.

check-jsonschema against GitHub's schemas (vendored in it: no network), actionlint (with
shellcheck for the `run:` scripts when it is installed) and zizmor offline, with this
repository's zizmor.yml. The three come with the `test` extra; outside CI a missing one skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ACTION = "action.yml"
TEMPLATE = "action/templates/machci.yml"


def tool(name: str) -> str:
    """The tool installed beside this Python (the test extra), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:  # pragma: no cover - the test extra installs it
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs {name}: pip install '.[test]'")
        pytest.skip(f"{name} is not installed")
    return found


def lint(*command: str) -> None:
    result = subprocess.run(
        list(command), cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-actions", ACTION), ("vendor.github-workflows", TEMPLATE)],
)
def test_check_jsonschema(schema: str, path: str) -> None:
    lint(tool("check-jsonschema"), "--builtin-schema", schema, path)


def test_actionlint() -> None:
    lint(tool("actionlint"), TEMPLATE)  # action.yml is no workflow: actionlint reads none


def test_zizmor() -> None:
    lint(tool("zizmor"), "--offline", "--config", "zizmor.yml", ACTION, TEMPLATE)
