"""action.yml itself: its steps run as a runner would run them, inputs only through `env:`.

The composite steps are executed with bash in a temporary runner layout (RUNNER_TEMP,
GITHUB_ACTION_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY); `${{ inputs.* }}` in `env:` is filled
in the way GitHub does. The install step pip-installs this checkout offline from the session's
wheelhouse (tests/fixtures/wheelhouse.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.fixtures.github import GitHubEmulator
from tests.fixtures.index import Index
from tests.fixtures.repos import Workspace, parse_outputs

ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return data


ACTION = load(ROOT / "action.yml")


def test_inputs_never_reach_scripts_by_interpolation() -> None:
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step["run"], step["name"]
        for value in step.get("env", {}).values():
            assert re.fullmatch(r"\$\{\{ inputs\.[a-z-]+ \}\}", value), value
    template = (ROOT / "action" / "templates" / "machci.yml").read_text()
    for block in re.findall(r"run: \|\n((?:\s{10}.*\n)+)|run: (.*)", template):
        assert "${{" not in "".join(block)


def evaluate(value: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    def replace(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("inputs."):
            name = expression.removeprefix("inputs.")
            return inputs.get(name, str(ACTION["inputs"][name].get("default", "")))
        step, _, output = expression.removeprefix("steps.").partition(".outputs.")
        return steps.get(step, {}).get(output, "")

    return EXPRESSION.sub(replace, value)


class Runner:
    """Runs the composite action's steps the way a GitHub runner does, in a temp layout."""

    def __init__(self, root: Path, wheelhouse: Path) -> None:
        self.temp = root / "runner-temp"
        self.temp.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "GITHUB_"))}
        self.env.update(
            RUNNER_TEMP=str(self.temp),
            GITHUB_ACTION_PATH=str(ROOT),
            PIP_NO_INDEX="1",
            PIP_FIND_LINKS=str(wheelhouse),
            PIP_CONFIG_FILE=os.devnull,
        )

    def step(
        self, step: dict[str, Any], inputs: dict[str, str], cwd: Path, extra: dict[str, str]
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, str], str]:
        output, summary = self.temp / "output", self.temp / "summary"
        output.write_text("")
        summary.write_text("")
        env = {
            **self.env,
            **extra,
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        env.update({k: evaluate(v, inputs, {}) for k, v in step.get("env", {}).items()})
        directory = cwd / evaluate(step.get("working-directory", "."), inputs, {})
        result = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return result, parse_outputs(output.read_text()), summary.read_text()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Runner:
    runner = Runner(tmp_path_factory.mktemp("runner"), wheelhouse)
    install = ACTION["runs"]["steps"][0]
    result, _, _ = runner.step(install, {"python": sys.executable}, ROOT, {})
    assert result.returncode == 0, result.stderr
    return runner


def action_outputs(step_outputs: dict[str, str]) -> dict[str, str]:
    return {
        name: evaluate(spec["value"], {}, {"run": step_outputs})
        for name, spec in ACTION["outputs"].items()
    }


def test_check_through_the_composite_action(runner: Runner, workspace: Workspace) -> None:
    step = ACTION["runs"]["steps"][1]
    ok, outputs, summary = runner.step(step, {"command": "check"}, workspace.path, {})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert action_outputs(outputs)["changed"] == "false"
    assert "is in sync" in summary
    (workspace.path / "requirements.txt").write_text("app\nmore\n")
    stale, outputs, summary = runner.step(
        step, {"command": "check"}, workspace.path, {"GITHUB_WORKSPACE": str(workspace.path)}
    )
    assert stale.returncode == 1
    assert action_outputs(outputs)["changed"] == "true"
    assert "::error file=requirements.txt::requirements.txt changed" in stale.stdout
    assert "out of sync" in summary


def test_bump_through_the_composite_action(
    runner: Runner, workspace: Workspace, github: GitHubEmulator, index: Index
) -> None:
    index.publish("app", "2.0", upload_time="2025-06-01T00:00:00Z")
    step = ACTION["runs"]["steps"][1]
    inputs = {"command": "bump", "token": github.token, "labels": "deps"}
    extra = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": "acme/app"}
    result, outputs, summary = runner.step(step, inputs, workspace.path, extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert action_outputs(outputs) == {
        "changed": "true",
        "pull-request-number": "1",
        "pull-request-url": f"{github.url}/acme/app/pull/1",
        "image": "",
    }
    assert "| app | x86_64-linux | 1.0 → 2.0 | upgraded |" in summary
    assert github.token not in result.stdout + result.stderr + summary
