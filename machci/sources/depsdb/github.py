"""The newest commit of a GitHub repository's default branch: where `machci bump` moves a
pypi-deps-db pin. Asked through PyGithub, anonymously unless GITHUB_TOKEN is set (reading a
public repository needs no token; one raises GitHub's rate limit)."""

from __future__ import annotations

import os

from machci.errors import InputError, SourceError

API = "https://api.github.com"
# GitHub Enterprise's API (https://HOST/api/v3), or the test suite's loopback emulation.
API_VARIABLE = "MACHCI_GITHUB_API_URL"
TOKEN_VARIABLE = "GITHUB_TOKEN"  # noqa: S105 (the variable's name, not a token)


def newest_commit(repository: str, timeout: float) -> str:
    """The commit id at the head of `repository`'s default branch."""
    try:
        from github import Auth, Github, GithubException
        from github.GithubRetry import GithubRetry
        from requests.exceptions import RequestException
    except ImportError:
        raise InputError(
            "moving a pypi-deps-db pin asks GitHub for the newest commit through PyGithub:"
            " pip install 'machci[pypi-deps-db]'"
        ) from None
    token = os.environ.get(TOKEN_VARIABLE)
    api = (os.environ.get(API_VARIABLE) or API).rstrip("/")
    github = Github(
        auth=Auth.Token(token) if token else None,
        base_url=api,
        timeout=round(timeout),
        retry=GithubRetry(total=3, backoff_factor=0.5),
        seconds_between_requests=None,
    )
    try:
        repo = github.get_repo(repository)
        return str(repo.get_branch(repo.default_branch).commit.sha)
    except GithubException as exc:
        message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
        hint = f" (set {TOKEN_VARIABLE} for a higher rate limit)" if exc.status == 403 else ""
        raise SourceError(
            f"GitHub answered {exc.status} ({message}) for {repository}{hint}"
        ) from None
    except RequestException as exc:
        raise SourceError(f"cannot ask GitHub ({api}) about {repository}: {exc}") from None
    finally:
        github.close()
