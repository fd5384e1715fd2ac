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
        if "uses" in step:
            continue
        assert "${{" not in step["run"], step["name"]
        for value in step.get("env", {}).values():
            assert re.fullmatch(
                r"\$\{\{ ((inputs|steps\.run\.outputs)\.[a-z-]+|inputs\.cache-token != '') \}\}",
                value,
            ), value
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
    if "&&" in text:
        terms = [expression(part, inputs, steps) for part in text.split("&&")]
        return terms[-1] if all(terms) else ""
    for operator in ("==", "!="):
        if operator in text:
            left, _, right = text.partition(operator)
            literal = re.fullmatch(r"\s*'([^']*)'\s*", right)
            assert literal is not None, text
            equal = expression(left, inputs, steps) == literal.group(1)
            return "true" if equal == (operator == "==") else ""
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
    used: dict[str, dict[str, str]]  # the `uses:` steps that ran, by name: their `with:`


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
        used: dict[str, dict[str, str]] = {}
        log, summaries, code = "", "", 0
        for step in ACTION["runs"]["steps"][1:]:
            if "if" in step and not expression(step["if"], inputs, steps):
                continue
            if "uses" in step:  # another action: recorded with its inputs, not run
                given = step.get("with", {}).items()
                used[step["name"]] = {k: evaluate(str(v), inputs, steps) for k, v in given}
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
        return ActionRun(code, log, outputs, summaries, used)


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


def test_manifest_names_are_lowercased_by_the_action(
    runner: Runner, workspace: Workspace, build_job: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "docker.log"
    docker = Path(build_job["PATH"].split(":")[0]) / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    inputs = {"command": "manifest", "image-name": "ghcr.io/Acme/App", "systems": "x86_64-linux"}
    result = runner.action(inputs, workspace.path, build_job)
    assert result.code == 0, result.log
    assert result.outputs["image"] == "ghcr.io/acme/app:latest"
    assert log.read_text() == (
        "buildx imagetools create --tag ghcr.io/acme/app:latest ghcr.io/acme/app:latest-amd64\n"
    )


PINNED = re.compile(r"uses: (?:[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d[\w.]*|machci/action@v[\d.]+)$")


def test_every_other_action_is_pinned_to_a_commit() -> None:
    for path in (ROOT / "action.yml", TEMPLATE):
        uses = [line.strip().removeprefix("- ") for line in path.read_text().splitlines()]
        uses = [line for line in uses if line.startswith("uses:")]
        assert uses
        for line in uses:
            assert PINNED.fullmatch(line), (path.name, line)


def test_the_cache_token_reaches_only_the_writing_steps() -> None:
    given = []
    for step in ACTION["runs"]["steps"]:
        if "inputs.cache-token" not in json.dumps(step):
            continue
        if "uses" in step:
            assert [k for k, v in step["with"].items() if "cache-token" in v] in (
                ["authToken"],
                ["token"],
            )
            assert step["if"].endswith("&& steps.cache.outputs.push == 'true'")
            given.append(step["name"])
        else:  # the choosing step learns whether there is a token, not the token
            assert step["id"] == "cache"
            assert step["env"]["MACHCI_CACHE_TOKEN_GIVEN"] == "${{ inputs.cache-token != '' }}"
            assert [v for v in step["env"].values() if "cache-token" in v] == [
                "${{ inputs.cache-token != '' }}"
            ]
    assert given == ["Cachix, reading and writing", "Attic, reading and writing"]


FAKE_TOOLS = {
    "nix-build": (
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && ln -sfn /dev/null "$2"; shift; done\n'
    ),
    "docker": "#!/bin/sh\nexit 0\n",
}


@pytest.fixture
def build_job(tmp_path: Path) -> dict[str, str]:
    """A job's environment whose nix-build and docker are stand-ins that succeed."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, script in FAKE_TOOLS.items():
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    return {"PATH": f"{tools}:{os.environ['PATH']}"}


def event(tmp_path: Path, name: str, fork: bool) -> dict[str, str]:
    """GITHUB_EVENT_NAME and the event's payload, as the runner gives them to every step."""
    path = tmp_path / f"event-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"repository": {"full_name": "acme/app", "fork": fork}}))
    return {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(path)}


TOKEN = "cachix-secret-3f9a"  # a stand-in for the secret


@pytest.mark.parametrize(
    ("name", "fork", "token", "writes"),
    [
        ("push", False, TOKEN, True),  # a push to the repository itself
        ("push", True, TOKEN, False),  # a push to a fork, which has set the secret too
        ("push", False, "", False),  # no token: nothing to write with
        ("pull_request", False, TOKEN, False),  # a pull request, even from the repository
        ("pull_request_target", False, TOKEN, False),
        ("schedule", False, TOKEN, False),
        ("workflow_dispatch", False, TOKEN, False),
    ],
)
def test_cachix_is_written_only_by_the_repositorys_pushes(
    runner: Runner,
    workspace: Workspace,
    build_job: dict[str, str],
    tmp_path: Path,
    name: str,
    fork: bool,
    token: str,
    writes: bool,
) -> None:
    inputs = {"command": "build", "systems": "x86_64-linux", "cachix": "acme", "cache-token": token}
    job = {**build_job, **event(tmp_path, name, fork)}
    result = runner.action(inputs, workspace.path, job)
    assert result.code == 0, result.log
    if writes:
        assert result.used == {"Cachix, reading and writing": {"name": "acme", "authToken": TOKEN}}
    else:
        assert result.used == {"Cachix, reading": {"name": "acme", "skipPush": "true"}}
    assert TOKEN not in result.log + result.summary + json.dumps(result.outputs)
    assert "cachix `acme`: this run " + ("reads and writes" if writes else "only reads") in (
        result.summary
    )


@pytest.mark.parametrize(
    ("url", "endpoint", "cache"),
    [
        ("https://attic.example.com/acme", "https://attic.example.com/", "acme"),
        ("https://example.com/attic/acme-ci/", "https://example.com/attic/", "acme-ci"),
    ],
)
def test_attic_takes_the_caches_url(
    runner: Runner,
    workspace: Workspace,
    build_job: dict[str, str],
    tmp_path: Path,
    url: str,
    endpoint: str,
    cache: str,
) -> None:
    inputs = {"command": "build", "systems": "x86_64-linux", "attic": url, "cache-token": TOKEN}
    pushed = runner.action(inputs, workspace.path, {**build_job, **event(tmp_path, "push", False)})
    assert pushed.code == 0, pushed.log
    given = {"endpoint": endpoint, "cache": cache}
    assert pushed.used == {"Attic, reading and writing": {**given, "token": TOKEN}}
    pulled = runner.action(
        inputs, workspace.path, {**build_job, **event(tmp_path, "pull_request", False)}
    )
    assert pulled.used == {"Attic, reading": {**given, "skip-push": "true"}}
    assert TOKEN not in pushed.log + pulled.log + pushed.summary + pulled.summary


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"cachix": "acme", "attic": "https://attic.example.com/acme"}, "not both"),
        ({"attic": "https://user:hunter2@attic.example.com/acme"}, "carries no credentials"),
        ({"attic": "attic.example.com/acme"}, "is not an Attic cache's URL"),
        ({"cachix": "acme cache"}, "is not a Cachix cache name"),
    ],
)
def test_a_wrong_cache_stops_the_build(
    runner: Runner,
    workspace: Workspace,
    build_job: dict[str, str],
    tmp_path: Path,
    inputs: dict[str, str],
    message: str,
) -> None:
    job = {**build_job, **event(tmp_path, "push", False)}
    result = runner.action({"command": "build", **inputs}, workspace.path, job)
    assert result.code == 2
    assert message in result.log
    assert "hunter2" not in result.log
    assert result.used == {}


def test_without_an_account_the_store_goes_to_the_actions_cache(
    runner: Runner, workspace: Workspace, build_job: dict[str, str], tmp_path: Path
) -> None:
    inputs = {"command": "build", "systems": "x86_64-linux"}
    runs = {
        name: runner.action(inputs, workspace.path, {**build_job, **event(tmp_path, name, False)})
        for name in ("push", "pull_request")
    }
    push, pull = (runs[name].used["Nix store from GitHub's Actions cache"] for name in runs)
    assert push["save"] == "true" and pull["save"] == "false"
    # The same default.nix, the same key: a second run restores what the first saved; a new
    # default.nix restores the newest store saved for the system, by the prefix.
    assert push["primary-key"] == pull["primary-key"]
    assert re.fullmatch(r"machci-nix-x86_64-linux-[0-9a-f]{16}", push["primary-key"])
    assert push["restore-prefixes-first-match"] == "machci-nix-x86_64-linux-"
    (workspace.path / "default.nix").write_text("{ }: { }\n")
    changed = runner.action(
        inputs, workspace.path, {**build_job, **event(tmp_path, "push", False)}
    ).used["Nix store from GitHub's Actions cache"]
    assert changed["primary-key"] != push["primary-key"]
    assert changed["primary-key"].startswith(changed["restore-prefixes-first-match"])
    off = runner.action({**inputs, "actions-cache": "false"}, workspace.path, build_job)
    assert off.code == 0, off.log
    assert off.used == {}


def test_only_builds_use_a_cache(runner: Runner, workspace: Workspace) -> None:
    result = runner.action({"command": "check", "cachix": "acme"}, workspace.path, {})
    assert result.code == 0, result.log
    assert result.used == {}
