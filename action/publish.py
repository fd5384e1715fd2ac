"""`publish`, the bump's second step and the only one given the token: push, keep one pull request.

One fixed branch per repository, updated in place; no pull request when nothing changes; the
pull request is closed when the base branch no longer needs it. machci never pushes to the base
or the default branch, nor over a branch whose history it did not write.
"""

from __future__ import annotations

import contextlib

from github.PullRequest import PullRequest

from machci.commands.bump_body import MARKER, changes_digest, markdown_body, title

from .git import Author, GitError, Repository
from .pull_request import PullRequests, ref
from .result import decode
from .workflow import Inputs, add_summary, set_output

__all__ = ["MARKER", "changes_digest", "refuse_shared_branch", "run"]


def refuse_shared_branch(branch: str, base: str, default: str) -> None:
    """The bump's branch must be its own: never the base or the default branch."""
    for name, role in ((base, "the base branch"), (default, "the repository's default branch")):
        if branch.casefold() == name.casefold():
            raise GitError(
                f"branch {branch} is {role}: the bump needs a branch of its own (the `branch`"
                f" input, default machci/bump-data); machci never pushes to {name}"
            )


def run(inputs: Inputs) -> int:
    result = decode(inputs.bump_result)
    author = Author.parse(inputs.author)
    github = PullRequests(inputs.token, inputs.api_url, inputs.repository)
    default = github.default_branch
    base = inputs.base or default
    refuse_shared_branch(inputs.branch, base, default)
    with contextlib.chdir(inputs.working_directory):
        config, project = inputs.project()
        repository = Repository(project, token=inputs.token, server=inputs.server_url)
        existing = github.find_open(inputs.branch, base)
        if not result.changed:
            set_output("changed", "false")
            if existing is not None:
                github.close(
                    existing,
                    f"The data on `{base}` is already current ({result.old_revision}):"
                    " this bump is no longer needed.",
                )
                add_summary(f"### machci: closed #{existing.number}, the bump is no longer needed")
            return 0
        body = markdown_body(result)
        if existing is not None and f"{MARKER} {changes_digest(result)} -->" in (
            existing.body or ""
        ):
            # The open pull request already proposes exactly these changes: leave it as it is.
            _outputs(changed=False, pull=existing)
            return 0
        remote_sha = repository.remote_head(inputs.branch)
        if remote_sha is not None:
            repository.refuse_foreign_history(inputs.branch, remote_sha)
        message = f"machci: bump dependency data to {result.new_revision}\n\n{result.report()}"
        written = [*config.written, *([config.path] if config.path else [])]
        repository.commit(inputs.branch, written, message, author, result.new_revision)
        repository.push(inputs.branch, remote_sha)
        pull_title = title(inputs.title, result)
        pull = github.open_or_update(existing, inputs.branch, base, pull_title, body)
        github.decorate(pull, inputs.labels, inputs.reviewers)
        _outputs(changed=True, pull=pull)
    return 0


def _outputs(*, changed: bool, pull: PullRequest) -> None:
    info = ref(pull)
    set_output("changed", "true" if changed else "false")
    set_output("pull-request-number", str(info.number))
    set_output("pull-request-url", info.url)
