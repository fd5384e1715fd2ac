"""The bump's GitHub side: find, open, update or close the one pull request of the branch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from github import Auth, Github, GithubException
from github.GithubRetry import GithubRetry
from github.PullRequest import PullRequest
from github.Repository import Repository
from requests.exceptions import RequestException

from machci.errors import MachciError

T = TypeVar("T")

# What each kind of call needs, for the message when GitHub says 403/404.
PERMISSIONS = {
    "read": "`contents: read`",
    "pulls": "`pull-requests: write`",
    "issues": "`pull-requests: write` (labels and comments also need `issues: write`)",
}


class GitHubError(MachciError):
    """GitHub refused or kept failing (exit 2); the message names the missing permission."""


@dataclass(frozen=True)
class PullRequestRef:
    number: int
    url: str


class PullRequests:
    def __init__(self, token: str, api_url: str, repository: str, *, retries: int = 5) -> None:
        if not token:
            raise GitHubError(
                "the `token` input is empty: bump needs a token to open pull requests"
            )
        self._token = token
        retry = GithubRetry(total=retries, backoff_factor=0.5)
        self.github = Github(
            auth=Auth.Token(token),
            base_url=api_url.rstrip("/"),
            retry=retry,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self.name = repository
        self.repo: Repository = self._call("read", lambda: self.github.get_repo(repository))

    def _call(self, kind: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except GithubException as exc:
            raise GitHubError(self._describe(exc, kind)) from None
        except RequestException as exc:  # retries used up (5xx, secondary rate limits)
            raise GitHubError(f"GitHub kept failing: {self._redact(str(exc))}") from None

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")

    def _describe(self, exc: GithubException, kind: str) -> str:
        message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
        message = self._redact(str(message))
        if exc.status == 401:
            return "GitHub rejected the token (401 Bad credentials): check the `token` input"
        if exc.status in (403, 404):
            return (
                f"GitHub answered {exc.status} ({message}) for {self.name}: the token needs"
                f" {PERMISSIONS[kind]} (set `permissions:` in the workflow; for GITHUB_TOKEN also"
                " allow GitHub Actions to create pull requests in the repository settings)"
            )
        return f"GitHub answered {exc.status}: {message}"

    @property
    def default_branch(self) -> str:
        return str(self.repo.default_branch)

    def find_open(self, branch: str, base: str) -> PullRequest | None:
        owner = self.name.split("/", 1)[0]
        pulls = self._call(
            "read",
            lambda: list(self.repo.get_pulls(state="open", head=f"{owner}:{branch}", base=base)),
        )
        return pulls[0] if pulls else None

    def open_or_update(
        self, existing: PullRequest | None, branch: str, base: str, title: str, body: str
    ) -> PullRequest:
        if existing is not None:
            self._call("pulls", lambda: existing.edit(title=title, body=body))
            return existing
        return self._call(
            "pulls", lambda: self.repo.create_pull(title=title, body=body, head=branch, base=base)
        )

    def decorate(self, pull: PullRequest, labels: Sequence[str], reviewers: Sequence[str]) -> None:
        if labels:
            self._call("issues", lambda: pull.add_to_labels(*labels))
        if reviewers:
            users = [r for r in reviewers if "/" not in r]
            teams = [r.split("/", 1)[1] for r in reviewers if "/" in r]
            self._call(
                "pulls", lambda: pull.create_review_request(reviewers=users, team_reviewers=teams)
            )

    def close(self, pull: PullRequest, comment: str) -> None:
        self._call("issues", lambda: pull.create_issue_comment(comment))
        self._call("pulls", lambda: pull.edit(state="closed"))


def ref(pull: PullRequest) -> PullRequestRef:
    return PullRequestRef(pull.number, pull.html_url)
