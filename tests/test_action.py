"""The GitHub Action: bump pull requests against a real git remote and the GitHub emulator."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from action.__main__ import main as action_main
from tests.fixtures.github import GitHubEmulator
from tests.fixtures.index import Index
from tests.fixtures.repos import BRANCH, ActionRun, Workspace, git, parse_outputs
from tests.helpers import run

BOT = "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"


TOKEN_NAMES = ("MACHCI_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "INPUT_TOKEN")


@pytest.fixture
def action(
    workspace: Workspace, github: GitHubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    """Runs the action's steps in-process as action.yml does: the command without any token,
    then, for bump, `publish` with the token and the first step's result."""

    def step(argv: list[str], env: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        output = tmp_path / "output.txt"
        output.write_text("")
        for name in TOKEN_NAMES:
            monkeypatch.delenv(name, raising=False)
        for key, value in {**env, "GITHUB_OUTPUT": str(output)}.items():
            monkeypatch.setenv(key, value)
        stdout, stderr = io.StringIO(), io.StringIO()
        with (
            contextlib.chdir(workspace.path),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            code = action_main(argv)
        outputs = parse_outputs(output.read_text())
        seen.append(stdout.getvalue() + stderr.getvalue() + output.read_text())
        return code, stdout.getvalue(), outputs

    def invoke(command: str = "bump", **inputs: str) -> ActionRun:
        summary = tmp_path / "summary.md"
        summary.write_text("")
        env = {
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_REPOSITORY": "acme/app",
            "GITHUB_API_URL": github.url,
            "GITHUB_WORKSPACE": str(workspace.path),
            "MACHCI_COMMAND": command,
        }
        env.update({f"MACHCI_{k.upper()}": v for k, v in inputs.items() if k != "token"})
        code, stdout, outputs = step([], env)
        if command == "bump" and code == 0:
            token = inputs.get("token", github.token)
            bump = {"MACHCI_TOKEN": token, "MACHCI_BUMP": outputs.pop("bump")}
            code, published, outputs = step(["publish"], {**env, **bump})
            stdout += published
        seen.append(summary.read_text())
        return ActionRun(code, stdout, outputs, summary.read_text())

    seen: list[str] = []
    yield invoke
    for text in seen:
        assert github.token not in text  # the token never reaches any output


def publish_v2(index: Index) -> None:
    index.publish("app", "2.0", upload_time="2025-06-01T00:00:00Z")


def test_first_bump_opens_a_pull_request(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    result = action(labels="dependencies, nix", reviewers="alice")  # type: ignore[operator]
    assert result.code == 0, result.stdout
    assert result.outputs["changed"] == "true"
    assert result.outputs["pull-request-number"] == "1"
    assert result.outputs["pull-request-url"].endswith("/acme/app/pull/1")
    pull = github.pulls[1]
    assert pull["head"]["ref"] == BRANCH and pull["base"]["ref"] == "main"
    assert "| app | x86_64-linux | 1.0 → 2.0 | upgraded |" in pull["body"]
    assert [label["name"] for label in pull["labels"]] == ["dependencies", "nix"]
    assert [r["login"] for r in pull["requested_reviewers"]] == ["alice"]
    assert "1.0 → 2.0" in result.summary
    head = workspace.remote_branch()
    assert head is not None
    assert git(workspace.remote, "log", "-1", "--format=%ae %s", head).startswith(
        "41898282+github-actions[bot]@users.noreply.github.com machci: bump dependency data"
    )
    trailer = git(workspace.remote, "log", "-1", "--format=%(trailers:key=Machci-Bump)", head)
    assert re.fullmatch(r"Machci-Bump: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", trailer)
    changed = git(workspace.remote, "diff", "--name-only", "main", head).split()
    assert changed == ["default.nix", "machci.yaml"]
    assert git(workspace.remote, "rev-parse", "main") == git(workspace.path, "rev-parse", "main")


def with_flake(workspace: Workspace) -> None:
    """The workspace's project with `flake: true`, synced and committed on main."""
    config = workspace.path / "machci.yaml"
    config.write_text(config.read_text() + "flake: true\n")
    with contextlib.chdir(workspace.path):
        assert run("sync").code == 1
    git(workspace.path, "add", ".")
    git(workspace.path, "commit", "--quiet", "-m", "flake")
    git(workspace.path, "push", "--quiet", "origin", "main")


def test_a_bump_commits_the_flake_too(workspace: Workspace, action: object) -> None:
    with_flake(workspace)
    publish_v2(workspace.index)
    result = action()  # type: ignore[operator]
    assert result.code == 0, result.stdout
    head = workspace.remote_branch()
    assert head is not None
    changed = git(workspace.remote, "diff", "--name-only", "main", head).split()
    assert changed == ["default.nix", "flake.nix", "machci.yaml"]


def test_check_command_annotates_a_hand_edited_flake(workspace: Workspace, action: object) -> None:
    with_flake(workspace)
    flake = workspace.path / "flake.nix"
    flake.write_text(flake.read_text().replace("nixos-unstable", "nixos-25.11"))
    stale = action("check")  # type: ignore[operator]
    assert stale.code == 1
    assert "::error file=flake.nix::flake.nix was edited by hand" in stale.stdout


def test_second_bump_updates_the_same_pull_request(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    assert action().code == 0  # type: ignore[operator]
    first_head = workspace.remote_branch()
    workspace.reset_to_main()
    unchanged = action()  # type: ignore[operator]
    assert unchanged.code == 0 and unchanged.outputs["changed"] == "false"
    assert workspace.remote_branch() == first_head  # same changes: no new push
    workspace.index.publish("app", "3.0", upload_time="2025-09-01T00:00:00Z")
    workspace.reset_to_main()
    second = action()  # type: ignore[operator]
    assert second.code == 0 and second.outputs["pull-request-number"] == "1"
    assert list(github.pulls) == [1]
    assert "| app | x86_64-linux | 1.0 → 3.0 | upgraded |" in github.pulls[1]["body"]
    assert workspace.remote_branch() != first_head
    posts = [r for r in github.requests if r[0] == "POST" and r[1].endswith("/pulls")]
    assert len(posts) == 1


def test_bump_with_no_change_does_nothing(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    result = action()  # type: ignore[operator]
    assert result.code == 0
    assert result.outputs == {"changed": "false"}
    assert github.pulls == {}
    assert workspace.remote_branch() is None
    assert "is current" in result.summary
    assert git(workspace.path, "status", "--porcelain") == ""


def test_unneeded_bump_closes_its_pull_request(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    assert action().code == 0  # type: ignore[operator]
    # Someone merges the bump into main by hand: the open pull request has nothing left to do.
    workspace.reset_to_main()
    git(workspace.path, "merge", "--quiet", "--ff-only", f"origin/{BRANCH}")
    git(workspace.path, "push", "--quiet", "origin", "main")
    result = action()  # type: ignore[operator]
    assert result.code == 0
    assert github.pulls[1]["state"] == "closed"
    assert "no longer needed" in github.comments[1][0]


def test_branch_changed_by_someone_else_is_not_clobbered(
    workspace: Workspace, github: GitHubEmulator, action: object, tmp_path: Path
) -> None:
    publish_v2(workspace.index)
    assert action().code == 0  # type: ignore[operator]
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", "--branch", BRANCH, str(workspace.remote), str(other))
    (other / "notes.txt").write_text("a human fix\n")
    git(other, "add", "notes.txt")
    git(other, "commit", "--quiet", "-m", "fix", author="alice")
    git(other, "push", "--quiet", "origin", BRANCH)
    theirs = workspace.remote_branch()
    workspace.index.publish("app", "3.0", upload_time="2025-09-01T00:00:00Z")
    workspace.reset_to_main()
    result = action()  # type: ignore[operator]
    assert result.code == 2
    assert "has commits machci did not make (" in result.stdout
    assert " by alice@example.com); machci will not overwrite them" in result.stdout
    assert workspace.remote_branch() == theirs


def remote_refs(workspace: Workspace) -> str:
    return git(workspace.remote, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.mark.parametrize(
    "inputs, role",
    [
        ({"branch": "main"}, "main is the base branch"),
        ({"branch": "Main"}, "Main is the base branch"),
        ({"branch": "develop", "base": "develop"}, "develop is the base branch"),
        ({"branch": "main", "base": "develop"}, "main is the repository's default branch"),
    ],
)
def test_bump_never_pushes_to_the_base_or_the_default_branch(
    workspace: Workspace,
    github: GitHubEmulator,
    action: object,
    inputs: dict[str, str],
    role: str,
) -> None:
    git(workspace.path, "push", "--quiet", "origin", "main:develop")
    before = remote_refs(workspace)
    publish_v2(workspace.index)
    result = action(**inputs)  # type: ignore[operator]
    assert result.code == 2
    assert f"::error::branch {role}: the bump needs a branch of its own" in result.stdout
    assert remote_refs(workspace) == before
    assert github.pulls == {}


def test_an_existing_branch_machci_did_not_write_is_refused(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    # A branch at a commit of main's history: nothing beyond HEAD, but not machci's either.
    git(workspace.path, "push", "--quiet", "origin", "main:release")
    before = remote_refs(workspace)
    publish_v2(workspace.index)
    result = action(branch="release")  # type: ignore[operator]
    assert result.code == 2
    main = git(workspace.path, "rev-parse", "--short", "main")
    assert (
        f"::error::branch release has commits machci did not make ({main} by dev@example.com);"
        " machci will not overwrite them" in result.stdout
    )
    assert remote_refs(workspace) == before
    assert github.pulls == {}


def test_a_commit_with_machcis_author_is_not_enough(
    workspace: Workspace, github: GitHubEmulator, action: object, tmp_path: Path
) -> None:
    """Another job of the same bot pushed to the branch: its commit has no bump trailer."""
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(workspace.remote), str(other))
    git(other, "checkout", "--quiet", "-b", BRANCH)
    (other / "notes.txt").write_text("from another workflow\n")
    git(other, "add", "notes.txt")
    bot = ("-c", "user.name=github-actions[bot]", "-c", f"user.email={BOT.split('<')[1][:-1]}")
    subprocess.run(["git", *bot, "commit", "--quiet", "-m", "notes"], cwd=other, check=True)
    git(other, "push", "--quiet", "origin", BRANCH)
    theirs = workspace.remote_branch()
    publish_v2(workspace.index)
    result = action()  # type: ignore[operator]
    assert result.code == 2
    assert "has commits machci did not make" in result.stdout
    assert workspace.remote_branch() == theirs


def test_a_merged_bump_branch_is_machcis_to_update(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    assert action().code == 0  # type: ignore[operator]
    merged = workspace.remote_branch()
    # The bump is merged, and main moves on: here it pins the data back.
    workspace.reset_to_main()
    git(workspace.path, "merge", "--quiet", "--ff-only", f"origin/{BRANCH}")
    config = workspace.path / "machci.yaml"
    config.write_text(
        re.sub(r'snapshot: "[^"]*"', 'snapshot: "2025-01-01T00:00:00Z"', config.read_text())
    )
    git(workspace.path, "commit", "--quiet", "-am", "pin the data back")
    git(workspace.path, "push", "--quiet", "origin", "main")
    workspace.index.publish("app", "3.0", upload_time="2025-09-01T00:00:00Z")
    result = action()  # type: ignore[operator]
    assert result.code == 0, result.stdout
    head = workspace.remote_branch()
    assert head != merged
    assert git(workspace.remote, "rev-parse", f"{head}^") == git(
        workspace.remote, "rev-parse", "main"
    )


def test_push_race_is_refused_by_the_lease(
    workspace: Workspace, github: GitHubEmulator, action: object, tmp_path: Path
) -> None:
    publish_v2(workspace.index)
    # A pre-push hook moves the remote branch after machci looked at it, before its push lands.
    racer = tmp_path / "racer"
    git(tmp_path, "clone", "--quiet", str(workspace.remote), str(racer))
    git(racer, "checkout", "--quiet", "-b", BRANCH)
    git(racer, "commit", "--quiet", "--allow-empty", "-m", "racing")
    hook = workspace.path / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ngit -C {racer} push --quiet origin {BRANCH} >/dev/null 2>&1\n")
    hook.chmod(0o755)
    result = action()  # type: ignore[operator]
    assert result.code == 2
    assert "changed while machci was updating it; nothing was overwritten" in result.stdout
    assert workspace.remote_branch() == git(racer, "rev-parse", "HEAD")
    assert github.pulls == {}


def test_transient_server_errors_are_retried(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    github.fault("GET", r"/pulls", status=502, times=1)
    github.fault("POST", r"/pulls$", status=503, times=1)
    result = action()  # type: ignore[operator]
    assert result.code == 0, result.stdout
    assert list(github.pulls) == [1]


@pytest.mark.parametrize(
    "method, path, status, permission",
    [
        ("POST", r"/pulls$", 403, "`pull-requests: write`"),
        ("GET", r"^/repos/acme/app$", 404, "`contents: read`"),
    ],
)
def test_missing_permission_is_named(
    workspace: Workspace,
    github: GitHubEmulator,
    action: object,
    method: str,
    path: str,
    status: int,
    permission: str,
) -> None:
    publish_v2(workspace.index)
    github.fault(method, path, status=status, times=None)
    result = action()  # type: ignore[operator]
    assert result.code == 2
    assert f"GitHub answered {status}" in result.stdout and permission in result.stdout


def test_bad_token(workspace: Workspace, github: GitHubEmulator, action: object) -> None:
    result = action(token="ghs_wrong_token_value")  # type: ignore[operator]
    assert result.code == 2
    assert "401 Bad credentials" in result.stdout
    assert "ghs_wrong_token_value" not in result.stdout


def test_check_command_annotates_the_stale_input(workspace: Workspace, action: object) -> None:
    systems = {"systems": '["x86_64-linux"]', "image-systems": '["x86_64-linux"]'}
    in_sync = action("check")  # type: ignore[operator]
    assert in_sync.code == 0 and in_sync.outputs == {"changed": "false", **systems}
    assert "in sync" in in_sync.summary
    (workspace.path / "requirements.txt").write_text("app\nother\n")
    stale = action("check")  # type: ignore[operator]
    assert stale.code == 1 and stale.outputs == {"changed": "true", **systems}
    assert (
        "::error file=requirements.txt::requirements.txt changed since default.nix was generated;"
        " run `machci sync`" in stale.stdout
    )
    assert "out of sync" in stale.summary


def test_unknown_command(action: object) -> None:
    result = action("deploy")  # type: ignore[operator]
    assert result.code == 2
    assert "::error::unknown command 'deploy'" in result.stdout


@pytest.mark.parametrize("result", ["", "{", '{"changes": [["app", 1, null, []]]}'])
def test_publish_needs_the_result_of_the_bump_step(
    result: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MACHCI_BUMP", result)
    assert action_main(["publish"]) == 2
    assert capsys.readouterr().out == (
        "::error::the bump step left no readable result; publish runs only after"
        " `command: bump` in the same action\n"
    )


def test_environment_without_github_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs and summaries are skipped, not crashed on, outside a runner."""
    from action.workflow import add_summary, set_output

    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    set_output("x", "y")
    add_summary("text")
    assert "GITHUB_OUTPUT" not in os.environ


def test_config_errors_are_annotated_on_their_line(workspace: Workspace, action: object) -> None:
    (workspace.path / "machci.yaml").write_text("requirements: [requirements.txt]\npython: 3.10\n")
    result = action("check")  # type: ignore[operator]
    assert result.code == 2
    assert result.stdout.startswith("::error file=machci.yaml,line=2::python: 3.1 was read as a")


def test_refused_push_names_the_permission(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    hook = workspace.remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'Permission to acme/app.git denied to github-actions[bot].' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    result = action()  # type: ignore[operator]
    assert result.code == 2
    assert "the workflow needs `permissions: contents: write`" in result.stdout
    assert github.pulls == {}


def test_secondary_rate_limit_is_waited_out(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    github.fault(
        "POST",
        r"/pulls$",
        status=403,
        times=1,
        headers={"Retry-After": "1"},
        body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
    )
    result = action()  # type: ignore[operator]
    assert result.code == 0, result.stdout
    assert list(github.pulls) == [1]
    posts = [r for r in github.requests if r[0] == "POST" and r[1].endswith("/pulls")]
    assert len(posts) == 2


def test_annotations_never_show_index_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    from action.workflow import error

    error("cannot reach https://user:hunter2@index.example/simple/pkg/?token=abc")
    out = capsys.readouterr().out
    assert "hunter2" not in out and "abc" not in out
    assert out.startswith("::error::cannot reach https://")


def test_the_pull_request_body_is_what_bump_format_markdown_prints(
    workspace: Workspace, github: GitHubEmulator, action: object, tmp_path: Path
) -> None:
    workspace.index.set_release_info(
        "app", "2.0", project_urls={"Changelog": "https://example.org/app/changes"}
    )
    workspace.index.set_release_info(
        "app",
        "1.0",
        vulnerabilities=[{"id": "PYSEC-0001", "summary": "bad", "link": "https://osv.dev/x"}],
    )
    copy = tmp_path / "before"
    shutil.copytree(workspace.path, copy, ignore=shutil.ignore_patterns(".git"))
    publish_v2(workspace.index)
    result = action()  # type: ignore[operator]
    assert result.code == 0, result.stdout
    pull = github.pulls[1]
    assert pull["title"] == "[security] machci: bump the dependency data"
    head = workspace.remote_branch()
    assert head is not None
    trailer = git(workspace.remote, "log", "-1", "--format=%(trailers:key=Machci-Bump)", head)
    snapshot = trailer.split(": ", 1)[1].strip()
    with contextlib.chdir(copy):
        printed = run("bump", "--dry-run", "--format", "markdown", "--to", snapshot)
    assert printed.code == 0, printed.err
    assert printed.out == pull["body"]
    assert "[app 2.0](<https://example.org/app/changes>)" in pull["body"]
    assert "PYSEC-0001" in pull["body"]


def test_advisories_false_asks_the_index_for_none(
    workspace: Workspace, github: GitHubEmulator, action: object
) -> None:
    publish_v2(workspace.index)
    result = action(advisories="false")  # type: ignore[operator]
    assert result.code == 0, result.stdout
    assert not any(path.startswith("/pypi/") for _, path in workspace.index.requests)
    pull = github.pulls[1]
    assert pull["title"] == "machci: bump the dependency data"
    assert "Known vulnerabilities: not asked for" in pull["body"]
