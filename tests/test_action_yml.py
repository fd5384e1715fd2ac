"""action.yml itself: its steps run as a runner would run them, inputs only through `env:`.

The composite steps are executed with bash in a temporary runner layout (RUNNER_TEMP,
GITHUB_ACTION_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY); the expressions in `env:`, `if:` and
the outputs are evaluated the way GitHub does, and a failing step skips the ones after it. The
install step pip-installs this checkout offline from the session's wheelhouse
(tests/fixtures/wheelhouse.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.fixtures.github import GitHubEmulator
from tests.fixtures.index import Index
from tests.fixtures.mailbox import MAIL, Mailbox
from tests.fixtures.repos import BRANCH, Workspace, git, parse_outputs
from tests.nixtools import NIX_ENV, require, seed_store, stand_in

ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return data


ACTION = load(ROOT / "action.yml")


TEMPLATE = ROOT / "action" / "templates" / "machci.yml"
TOKENS = (
    "MACHCI_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "INPUT_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


def test_inputs_never_reach_scripts_by_interpolation() -> None:
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step["run"], step["name"]
        for value in step.get("env", {}).values():
            assert re.fullmatch(r"\$\{\{ (inputs|steps\.run\.outputs)\.[a-z-]+ \}\}", value), value
    for block in re.findall(r"run: \|\n((?:\s{10}.*\n)+)|run: (.*)", TEMPLATE.read_text()):
        assert "${{" not in "".join(block)


def test_only_the_publishing_step_gets_the_token() -> None:
    given = {
        step.get("id"): step
        for step in ACTION["runs"]["steps"]
        if "${{ inputs.token }}" in step.get("env", {}).values()
    }
    assert list(given) == ["publish"]
    assert given["publish"]["if"] == "inputs.command == 'bump'"


def expression(text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    """An expression of the few forms action.yml uses; booleans are "true" or ""."""
    text = text.strip()
    if "||" in text:
        values = (expression(part, inputs, steps) for part in text.split("||"))
        return next((value for value in values if value), "")
    if "==" in text:
        left, _, right = text.partition("==")
        literal = re.fullmatch(r"\s*'([^']*)'\s*", right)
        assert literal is not None, text
        return "true" if expression(left, inputs, steps) == literal.group(1) else ""
    if text.startswith("inputs."):
        name = text.removeprefix("inputs.")
        return inputs.get(name, str(ACTION["inputs"][name].get("default", "")))
    step, dot, output = text.removeprefix("steps.").partition(".outputs.")
    assert text.startswith("steps.") and dot, f"the test runner does not know {text!r}"
    return steps.get(step, {}).get(output, "")


def evaluate(value: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    return EXPRESSION.sub(lambda match: expression(match.group(1), inputs, steps), value)


@dataclass(frozen=True)
class ActionRun:
    code: int
    log: str  # every step's stdout and stderr
    outputs: dict[str, str]  # the action's outputs
    summary: str  # every step's summary


class Runner:
    """Runs the composite action's steps the way a GitHub runner does, in a temp layout."""

    def __init__(self, root: Path, wheelhouse: Path) -> None:
        self.temp = root / "runner-temp"
        self.temp.mkdir()
        # Without PYTHONPATH: the steps' virtualenv must run the machci installed into it.
        skipped = ("PIP_", "GITHUB_", "PYTHONPATH")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
        self.env.update(
            RUNNER_TEMP=str(self.temp),
            GITHUB_ACTION_PATH=str(ROOT),
            PIP_NO_INDEX="1",
            PIP_FIND_LINKS=str(wheelhouse),
            PIP_CONFIG_FILE=os.devnull,
        )

    def step(
        self,
        step: dict[str, Any],
        inputs: dict[str, str],
        cwd: Path,
        job: dict[str, str],
        steps: dict[str, dict[str, str]],
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, str], str]:
        """One step; `job` plays the job's `env:`, `steps` the outputs of the steps before."""
        output, summary = self.temp / "output", self.temp / "summary"
        output.write_text("")
        summary.write_text("")
        env = {
            **self.env,
            **job,
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        env.update({k: evaluate(v, inputs, steps) for k, v in step.get("env", {}).items()})
        directory = cwd / evaluate(step.get("working-directory", "."), inputs, steps)
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return result, parse_outputs(output.read_text()), summary.read_text()

    def action(self, inputs: dict[str, str], cwd: Path, job: dict[str, str]) -> ActionRun:
        """Every step after the install, as the runner runs a composite action."""
        steps: dict[str, dict[str, str]] = {}
        log, summaries, code = "", "", 0
        for step in ACTION["runs"]["steps"][1:]:
            if "if" in step and not expression(step["if"], inputs, steps):
                continue
            result, steps[step["id"]], summary = self.step(step, inputs, cwd, job, steps)
            log += result.stdout + result.stderr
            summaries += summary
            if result.returncode != 0:
                code = result.returncode
                break
        outputs = {
            name: evaluate(spec["value"], inputs, steps) for name, spec in ACTION["outputs"].items()
        }
        return ActionRun(code, log, outputs, summaries)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Runner:
    runner = Runner(tmp_path_factory.mktemp("runner"), wheelhouse)
    install = ACTION["runs"]["steps"][0]
    result, _, _ = runner.step(install, {"python": sys.executable}, ROOT, {}, {})
    assert result.returncode == 0, result.stderr
    return runner


def test_check_through_the_composite_action(runner: Runner, workspace: Workspace) -> None:
    ok = runner.action({"command": "check"}, workspace.path, {})
    assert ok.code == 0, ok.log
    assert ok.outputs["changed"] == "false"
    assert "is in sync" in ok.summary
    (workspace.path / "requirements.txt").write_text("app\nmore\n")
    stale = runner.action(
        {"command": "check"}, workspace.path, {"GITHUB_WORKSPACE": str(workspace.path)}
    )
    assert stale.code == 1
    assert stale.outputs["changed"] == "true"
    assert "::error file=requirements.txt::requirements.txt changed" in stale.log
    assert "out of sync" in stale.summary


def test_bump_through_the_composite_action(
    runner: Runner, workspace: Workspace, github: GitHubEmulator, index: Index
) -> None:
    index.publish("app", "2.0", upload_time="2025-06-01T00:00:00Z")
    inputs = {"command": "bump", "token": github.token, "labels": "deps"}
    job = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": "acme/app"}
    result = runner.action(inputs, workspace.path, job)
    assert result.code == 0, result.log
    assert result.outputs == {
        "changed": "true",
        "pull-request-number": "1",
        "pull-request-url": f"{github.url}/acme/app/pull/1",
        "image": "",
        "systems": "",
        "image-systems": "",
    }
    assert "| app | x86_64-linux | 1.0 → 2.0 | upgraded |" in result.summary
    assert github.token not in result.log + result.summary
    assert git(workspace.remote, "log", "-1", "--format=%s", BRANCH).startswith("machci: bump")


# An sdist backend that mails what its process and the process that started it hold in their
# environments; resolving asks every sdist's backend for its build requirements.
SPY_BACKEND = """
import os

def get_requires_for_build_wheel(config_settings=None):
    try:
        with open("/proc/%d/environ" % os.getppid(), "rb") as f:
            parent = f.read().decode("utf-8", "replace")
    except OSError:
        parent = ""
    _mail("spy", {"environ": dict(os.environ), "parent": parent})
    return []
"""


def test_the_resolving_step_never_holds_a_token(
    runner: Runner, workspace: Workspace, github: GitHubEmulator, index: Index, tmp_path: Path
) -> None:
    # A new sdist each run (its sha256 keys the cached answer): its backend runs every time.
    backend = f"{MAIL}\n# {uuid.uuid4()}\n{SPY_BACKEND}".encode()
    later = "2025-06-01T00:00:00Z"
    index.publish("app", "2.0", requires_dist=("helper",), upload_time=later)
    index.publish(
        "helper",
        "1.0",
        kind="sdist",
        upload_time=later,
        extra_files=(("_backend/backend.py", backend),),
    )
    # Tokens the job's env: holds as well as the `token` input.
    job = {name: github.token for name in TOKENS}
    job.update(GITHUB_API_URL=github.url, GITHUB_REPOSITORY="acme/app")
    # machci's default cache, in the environment the runner gives its steps.
    caches = runner.env.get("XDG_CACHE_HOME") or str(Path(runner.env["HOME"]) / ".cache")
    scratch = Path(caches) / "machci" / "v2" / "tmp"
    with Mailbox(scratch) as mailbox:
        result = runner.action({"command": "bump", "token": github.token}, workspace.path, job)
    assert result.code == 0, result.log
    assert result.outputs["pull-request-number"] == "1", result.log  # publish had the token
    assert "spy" in mailbox.letters, (scratch, result.log)
    seen = mailbox.letters["spy"]
    assert github.token not in json.dumps(seen["environ"])
    assert github.token not in seen["parent"]


def test_image_names_are_lowercased_by_the_action(
    runner: Runner, workspace: Workspace, tmp_path: Path
) -> None:
    require("nix-build", "nix-bin")
    seed_store(workspace.index, workspace.path / "default.nix")
    tools = tmp_path / "bin"
    tools.mkdir()
    docker = tools / "docker"  # stands in for the docker CLI: records its arguments
    docker.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "docker.log"}\n')
    docker.chmod(0o755)
    inputs = {
        "command": "build",
        "systems": "x86_64-linux",
        "image-name": "ghcr.io/Acme/App",
        "nix-args": f"--arg pkgs '{stand_in()}'",
    }
    job = {"PATH": f"{tools}:{os.environ['PATH']}", "NIX_CONFIG": NIX_ENV["NIX_CONFIG"]}
    result = runner.action(inputs, workspace.path, job)
    assert result.code == 0, result.log
    assert result.outputs["image"] == "ghcr.io/acme/app:latest-amd64"
    image = workspace.path / "result-image-x86_64-linux"
    assert (tmp_path / "docker.log").read_text().splitlines() == [
        f"load --input {image}",
        "tag machci-env:latest ghcr.io/acme/app:latest-amd64",
    ]


def test_image_names_are_lowercased_by_the_workflow_template(tmp_path: Path) -> None:
    workflow = load(TEMPLATE)
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    naming = [step for step in steps if "github.repository" in json.dumps(step)]
    assert len(naming) == 2  # in the build and the manifest job, nowhere else
    output = tmp_path / "output"
    for step in naming:
        assert step["env"] == {"REPOSITORY": "${{ github.repository }}"}
        output.write_text("")
        env = {"PATH": os.environ["PATH"], "REPOSITORY": "Acme/App", "GITHUB_OUTPUT": str(output)}
        subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, check=True)
        assert output.read_text() == "name=ghcr.io/acme/app\n"
