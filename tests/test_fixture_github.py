"""Tests of the loopback GitHub emulator, driven by real PyGithub where it matters."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from github import Auth, Github, GithubException
from github.GithubException import BadCredentialsException, UnknownObjectException
from github.GithubRetry import GithubRetry

from tests.fixtures.github import JSON_CONTENT_TYPE, GitHubEmulator

HEAD = "machci/bump-data"
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def _raw(
    emu: GitHubEmulator,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "ghs_test_token",
) -> Reply:
    conn = http.client.HTTPConnection(urlsplit(emu.url).netloc, timeout=5)
    headers = {"Accept": "application/vnd.github+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def _client(
    emu: GitHubEmulator, *, token: str | None = None, per_page: int = 30, total: int = 3
) -> Github:
    # PyGithub throttles by default (0.25 s between requests, 1 s between writes): off here.
    return Github(
        auth=Auth.Token(token or emu.token),
        base_url=emu.url,
        per_page=per_page,
        retry=GithubRetry(total=total, backoff_factor=0.01),
        seconds_between_requests=None,
        seconds_between_writes=None,
        timeout=5,
    )


@pytest.fixture
def gh(github: GitHubEmulator) -> Iterator[Github]:
    client = _client(github)
    try:
        yield client
    finally:
        client.close()


def _calls(emu: GitHubEmulator, method: str, pattern: str) -> list[tuple[str, str, Any]]:
    return [r for r in emu.requests if r[0] == method and re.search(pattern, r[1])]


# -- repository ---------------------------------------------------------------------------


def test_get_repo(github: GitHubEmulator, gh: Github) -> None:
    repo = gh.get_repo("acme/app")
    assert repo.full_name == "acme/app"
    assert repo.name == "app"
    assert repo.owner.login == "acme"
    assert repo.default_branch == "main"
    assert repo.permissions.push is True
    assert repo.url == f"{github.url}/repos/acme/app"
    assert repo.html_url == f"{github.url}/acme/app"
    assert github.requests == [("GET", "/repos/acme/app", None)]


def test_default_branch_is_configurable() -> None:
    with GitHubEmulator(owner="o", repo="r", default_branch="trunk") as emu:
        client = _client(emu)
        try:
            assert client.get_repo("o/r").default_branch == "trunk"
        finally:
            client.close()


def test_unknown_repo_is_404(gh: Github) -> None:
    with pytest.raises(UnknownObjectException) as info:
        gh.get_repo("acme/nope")
    assert info.value.status == 404
    assert info.value.data["message"] == "Not Found"


def test_bad_token_is_401(github: GitHubEmulator) -> None:
    client = _client(github, token="ghs_wrong")
    try:
        with pytest.raises(BadCredentialsException) as info:
            client.get_repo("acme/app")
    finally:
        client.close()
    assert info.value.status == 401
    assert info.value.data["message"] == "Bad credentials"
    assert _raw(github, "GET", "/repos/acme/app", token=None).status == 401


def test_token_and_bearer_schemes_both_accepted(github: GitHubEmulator) -> None:
    conn = http.client.HTTPConnection(urlsplit(github.url).netloc, timeout=5)
    try:
        for scheme in ("token", "Bearer"):
            conn.request(
                "GET", "/repos/acme/app", headers={"Authorization": f"{scheme} ghs_test_token"}
            )
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
    finally:
        conn.close()


def test_common_headers_and_unknown_routes(github: GitHubEmulator) -> None:
    ok = _raw(github, "GET", "/repos/acme/app")
    first_used = int(ok.headers["X-RateLimit-Used"])
    for reply in (ok, _raw(github, "GET", "/nope"), _raw(github, "DELETE", "/repos/acme/app")):
        assert reply.headers["Content-Type"] == JSON_CONTENT_TYPE
        for name in ("Limit", "Remaining", "Reset", "Used", "Resource"):
            assert reply.headers[f"X-RateLimit-{name}"]
    assert int(_raw(github, "GET", "/repos/acme/app").headers["X-RateLimit-Used"]) > first_used
    missing = _raw(github, "GET", "/repos/acme/app/pulls/99")
    assert missing.status == 404
    assert missing.json()["message"] == "Not Found"
    assert _raw(github, "GET", "/user").status == 404


# -- pulls: listing -----------------------------------------------------------------------


def test_pagination_follows_link_headers(github: GitHubEmulator) -> None:
    for i in range(5):
        github.add_pull(f"feature/{i}", title=f"pr {i}")
    client = _client(github, per_page=2)
    try:
        pulls = list(client.get_repo("acme/app").get_pulls(state="all"))
    finally:
        client.close()
    # newest first, like GitHub's default sort=created&direction=desc
    assert [p.number for p in pulls] == [5, 4, 3, 2, 1]
    pages = [
        dict(parse_qsl(urlsplit(path).query))
        for _, path, _ in _calls(github, "GET", r"^/repos/acme/app/pulls\?")
    ]
    # PyGithub rebuilds each Link URL it follows (it reorders the query), so compare params.
    assert pages == [
        {"state": "all", "per_page": "2"},
        {"state": "all", "per_page": "2", "page": "2"},
        {"state": "all", "per_page": "2", "page": "3"},
    ]


def test_link_header_relations(github: GitHubEmulator) -> None:
    for i in range(5):
        github.add_pull(f"feature/{i}")
    base = f"{github.url}/repos/acme/app/pulls?state=all&per_page=2"
    first = _raw(github, "GET", "/repos/acme/app/pulls?state=all&per_page=2")
    assert first.headers["Link"] == (f'<{base}&page=2>; rel="next", <{base}&page=3>; rel="last"')
    middle = _raw(github, "GET", "/repos/acme/app/pulls?state=all&per_page=2&page=2")
    assert middle.headers["Link"] == (
        f'<{base}&page=1>; rel="prev", <{base}&page=3>; rel="next", '
        f'<{base}&page=3>; rel="last", <{base}&page=1>; rel="first"'
    )
    last = _raw(github, "GET", "/repos/acme/app/pulls?state=all&per_page=2&page=3")
    assert [p["number"] for p in last.json()] == [1]
    assert last.headers["Link"] == f'<{base}&page=2>; rel="prev", <{base}&page=1>; rel="first"'
    single = _raw(github, "GET", "/repos/acme/app/pulls?state=all")
    assert len(single.json()) == 5
    assert single.headers["Link"] is None
    capped = _raw(github, "GET", "/repos/acme/app/pulls?state=all&per_page=1000")
    assert len(capped.json()) == 5


def test_list_filters(github: GitHubEmulator, gh: Github) -> None:
    github.add_pull(HEAD)
    github.add_pull("other", base="develop")
    github.add_pull(HEAD, state="closed")
    repo = gh.get_repo("acme/app")

    def numbers(**kwargs: str) -> list[int]:
        return [p.number for p in repo.get_pulls(**kwargs)]

    assert numbers(state="open", head=f"acme:{HEAD}", base="main") == [1]
    assert numbers(state="all", head=f"acme:{HEAD}") == [3, 1]
    assert numbers(state="closed") == [3]
    assert numbers(base="develop") == [2]
    assert numbers(head="ACME:other") == [2]  # the owner is case-insensitive
    assert numbers(head="someone-else:other") == []
    # Like GitHub: a head filter without the OWNER: prefix is silently ignored.
    assert numbers(head=HEAD) == [2, 1]


def test_list_returns_simple_shape_and_pyGithub_completes_lazily(
    github: GitHubEmulator, gh: Github
) -> None:
    github.add_pull(HEAD)
    listed = _raw(github, "GET", "/repos/acme/app/pulls").json()[0]
    assert "mergeable" not in listed
    assert "merged" not in listed
    assert listed["head"]["label"] == f"acme:{HEAD}"
    pr = next(iter(gh.get_repo("acme/app").get_pulls()))
    assert pr.merged is False  # not in the simple shape: PyGithub GETs the PR itself
    assert _calls(github, "GET", r"^/repos/acme/app/pulls/1$")


# -- pulls: create / update ---------------------------------------------------------------


def test_create_pull_then_duplicate_is_422(github: GitHubEmulator, gh: Github) -> None:
    repo = gh.get_repo("acme/app")
    pr = repo.create_pull(title="Bump data", body="hello", head=HEAD, base="main")
    assert pr.number == 1
    assert pr.state == "open"
    assert pr.title == "Bump data"
    assert pr.body == "hello"
    assert pr.head.ref == HEAD
    assert pr.head.label == f"acme:{HEAD}"
    assert pr.head.repo.full_name == "acme/app"
    assert pr.base.ref == "main"
    assert pr.user.login == github.login
    assert pr.html_url == f"{github.url}/acme/app/pull/1"
    assert pr.created_at.tzinfo is not None
    assert github.pulls[1]["title"] == "Bump data"
    assert _calls(github, "POST", r"/pulls$")[0][2] == {
        "title": "Bump data",
        "body": "hello",
        "head": HEAD,
        "base": "main",
    }

    with pytest.raises(GithubException) as info:
        repo.create_pull(title="again", body="", head=HEAD, base="main")
    assert info.value.status == 422
    assert info.value.data["message"] == "Validation Failed"
    assert info.value.data["errors"] == [
        {
            "resource": "PullRequest",
            "code": "custom",
            "message": f"A pull request already exists for acme:{HEAD}.",
        }
    ]
    assert sorted(github.pulls) == [1]

    # Same head into another base, or after closing, is fine.
    assert repo.create_pull(title="x", body="", head=HEAD, base="develop").number == 2
    pr.edit(state="closed")
    assert repo.create_pull(title="y", body="", head=f"acme:{HEAD}", base="main").number == 3


def test_create_pull_201_and_missing_fields_422(github: GitHubEmulator) -> None:
    created = _raw(
        github,
        "POST",
        "/repos/acme/app/pulls",
        {"title": "t", "head": HEAD, "base": "main", "draft": True},
    )
    assert created.status == 201
    assert created.headers["Location"] == f"{github.url}/repos/acme/app/pulls/1"
    assert created.json()["draft"] is True

    missing = _raw(github, "POST", "/repos/acme/app/pulls", {"title": "t"})
    assert missing.status == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"head", "base"}
    not_json = _raw(github, "POST", "/repos/acme/app/pulls", b"{nope")
    assert not_json.status == 400
    assert not_json.json()["message"] == "Problems parsing JSON"


def test_edit_and_close(github: GitHubEmulator, gh: Github) -> None:
    github.add_pull(HEAD, title="old", body="old body")
    pr = gh.get_repo("acme/app").get_pull(1)
    pr.edit(title="new", body="new body")
    assert (github.pulls[1]["title"], github.pulls[1]["body"]) == ("new", "new body")
    assert github.pulls[1]["closed_at"] is None
    pr.edit(state="closed")
    assert github.pulls[1]["state"] == "closed"
    assert github.pulls[1]["closed_at"] is not None
    again = gh.get_repo("acme/app").get_pull(1)
    assert again.state == "closed"
    assert again.closed_at is not None
    assert again.title == "new"
    bad = _raw(github, "PATCH", "/repos/acme/app/pulls/1", {"state": "merged"})
    assert bad.status == 422


def test_live_state_is_mutable(github: GitHubEmulator, gh: Github) -> None:
    github.add_pull(HEAD)
    github.pulls[1]["state"] = "closed"
    assert list(gh.get_repo("acme/app").get_pulls(state="open")) == []


# -- comments, labels, reviewers ----------------------------------------------------------


def test_comments_labels_and_reviewers(github: GitHubEmulator, gh: Github) -> None:
    github.add_pull(HEAD)
    pr = gh.get_repo("acme/app").get_pull(1)

    comment = pr.create_issue_comment("x")
    assert comment.body == "x"
    assert comment.user.login == github.login
    assert comment.html_url.startswith(f"{github.url}/acme/app/pull/1#issuecomment-")
    assert github.comments[1] == ["x"]

    pr.add_to_labels("deps")  # returns None: PyGithub discards the label list GitHub sends
    assert _calls(github, "POST", r"/issues/1/labels$")[-1][2] == ["deps"]
    pr.add_to_labels("deps", "automated")
    assert [label["name"] for label in github.pulls[1]["labels"]] == ["deps", "automated"]
    dict_body = _raw(github, "POST", "/repos/acme/app/issues/1/labels", {"labels": ["ci"]})
    assert dict_body.status == 200
    assert [label["name"] for label in dict_body.json()] == ["deps", "automated", "ci"]

    pr.create_review_request(reviewers=["alice"], team_reviewers=["core"])
    assert _calls(github, "POST", r"/requested_reviewers$")[-1][2] == {
        "reviewers": ["alice"],
        "team_reviewers": ["core"],
    }
    fresh = gh.get_repo("acme/app").get_pull(1)
    assert [u.login for u in fresh.requested_reviewers] == ["alice"]
    assert [t.slug for t in fresh.requested_teams] == ["core"]
    assert [label.name for label in fresh.labels] == ["deps", "automated", "ci"]
    assert fresh.comments == 1

    own = _raw(
        github,
        "POST",
        "/repos/acme/app/pulls/1/requested_reviewers",
        {"reviewers": [github.login]},
    )
    assert own.status == 422


def test_issue_comments_are_paginated(github: GitHubEmulator) -> None:
    github.add_pull(HEAD)
    github.comments[1].extend(["a", "b", "c"])
    client = _client(github, per_page=2)
    try:
        pr = client.get_repo("acme/app").get_pull(1)
        assert [c.body for c in pr.get_issue_comments()] == ["a", "b", "c"]
    finally:
        client.close()
    assert len(_calls(github, "GET", r"/issues/1/comments")) == 2
    assert _raw(github, "GET", "/repos/acme/app/issues/9/comments").status == 404
    empty = _raw(github, "POST", "/repos/acme/app/issues/1/comments", {"body": ""})
    assert empty.status == 422


# -- faults and PyGithub's retries --------------------------------------------------------


def test_502_is_retried_by_github_retry(github: GitHubEmulator, gh: Github) -> None:
    # GithubRetry's default status_forcelist is 500..599 plus 403, for GET and POST alike.
    github.fault("GET", r"^/repos/acme/app$", status=502, times=2)
    assert gh.get_repo("acme/app").full_name == "acme/app"
    assert len(_calls(github, "GET", r"^/repos/acme/app$")) == 3

    repo = gh.get_repo("acme/app")
    github.fault("POST", r"/pulls$", status=502)
    assert repo.create_pull(title="t", body="", head=HEAD, base="main").number == 1
    assert len(_calls(github, "POST", r"/pulls$")) == 2
    assert sorted(github.pulls) == [1]  # the faulted attempt created nothing


def test_persistent_502_exhausts_retries(github: GitHubEmulator) -> None:
    github.fault("*", r"^/repos/", status=502, times=None)
    client = _client(github, total=2)
    try:
        # Once retries run out urllib3 raises MaxRetryError, which requests turns into
        # requests.exceptions.RetryError (an OSError): PyGithub never sees the 502.
        with pytest.raises(OSError) as info:
            client.get_repo("acme/app")
    finally:
        client.close()
    assert type(info.value).__name__ == "RetryError"
    assert "too many 502 error responses" in str(info.value)
    assert len(github.requests) == 3
    github.clear_faults()
    assert _raw(github, "GET", "/repos/acme/app").status == 200


def test_secondary_rate_limit_waits_retry_after(github: GitHubEmulator, gh: Github) -> None:
    github.fault(
        "GET",
        r"^/repos/acme/app$",
        status=403,
        headers={"Retry-After": "1"},
        body={
            "message": SECONDARY,
            "documentation_url": f"{github.url}/docs/rest/overview/rate-limits-for-the-rest-api",
        },
    )
    started = time.monotonic()
    assert gh.get_repo("acme/app").full_name == "acme/app"
    assert time.monotonic() - started >= 0.9
    assert [r[:2] for r in github.requests] == [
        ("GET", "/repos/acme/app"),
        ("GET", "/repos/acme/app"),
    ]


def test_secondary_rate_limit_message_alone_is_retried(github: GitHubEmulator) -> None:
    # Without Retry-After, GithubRetry reads the body and waits secondary_rate_wait (60 s
    # by default, hence the override).
    github.fault("POST", r"/issues/1/comments$", status=403, body={"message": SECONDARY})
    github.add_pull(HEAD)
    client = Github(
        auth=Auth.Token(github.token),
        base_url=github.url,
        retry=GithubRetry(total=3, backoff_factor=0.01, secondary_rate_wait=0.05),
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    try:
        client.get_repo("acme/app").get_pull(1).create_issue_comment("hi")
    finally:
        client.close()
    assert len(_calls(github, "POST", r"/issues/1/comments$")) == 2
    assert github.comments[1] == ["hi"]


def test_faults_without_retry_surface_github_errors(github: GitHubEmulator) -> None:
    client = Github(
        auth=Auth.Token(github.token),
        base_url=github.url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    try:
        github.fault("GET", r"^/repos/acme/app$", status=403, body={"message": SECONDARY})
        with pytest.raises(GithubException) as info:
            client.get_repo("acme/app")
        assert info.value.status == 403
        assert type(info.value).__name__ == "RateLimitExceededException"
        github.fault("GET", r"^/repos/acme/app$", status=404)
        with pytest.raises(UnknownObjectException):
            client.get_repo("acme/app")
        assert client.get_repo("acme/app").name == "app"
    finally:
        client.close()


# -- no other host, anywhere --------------------------------------------------------------

_URL = re.compile(r"[a-z][a-z0-9+.-]*://([^/\s\"'<>?#]+)", re.IGNORECASE)


def test_every_url_points_at_the_emulator(github: GitHubEmulator) -> None:
    github.add_pull("feature/a")
    github.add_pull("feature/b")
    github.add_pull("feature/c")
    github.comments[1].extend(["a", "b", "c"])
    replies = [
        _raw(github, "GET", "/repos/acme/app"),
        _raw(github, "GET", "/repos/acme/app/pulls?per_page=1&page=2"),
        _raw(github, "POST", "/repos/acme/app/pulls", {"title": "t", "head": HEAD, "base": "main"}),
        _raw(github, "POST", "/repos/acme/app/pulls", {"title": "t", "head": HEAD, "base": "main"}),
        _raw(github, "POST", "/repos/acme/app/pulls", {}),
        _raw(github, "GET", "/repos/acme/app/pulls/1"),
        _raw(github, "PATCH", "/repos/acme/app/pulls/1", {"state": "closed"}),
        _raw(github, "POST", "/repos/acme/app/issues/1/comments", {"body": "x"}),
        _raw(github, "GET", "/repos/acme/app/issues/1/comments?per_page=2&page=2"),
        _raw(github, "POST", "/repos/acme/app/issues/1/labels", ["deps"]),
        _raw(github, "POST", "/repos/acme/app/pulls/1/requested_reviewers", {"reviewers": ["a"]}),
        _raw(github, "GET", "/repos/acme/app", token="bad"),
        _raw(github, "GET", "/repos/other/app"),
    ]
    assert [r.status for r in replies] == [
        200,
        200,
        201,
        422,
        422,
        200,
        200,
        201,
        200,
        200,
        201,
        401,
        404,
    ]
    expected = urlsplit(github.url).netloc
    seen: set[str] = set()
    for reply in replies:
        text = reply.body.decode() + "\n" + str(reply.headers)
        hosts = {m.group(1) for m in _URL.finditer(text)}
        assert hosts <= {expected}, hosts
        assert "github.com" not in reply.body.decode().replace("GitHub.com", "")
        seen |= hosts
    assert seen == {expected}


def test_branches_give_their_head_commit(github: GitHubEmulator) -> None:
    client = Github(auth=Auth.Token(github.token), base_url=github.url)
    repo = client.get_repo(github.full_name)
    assert repo.get_branch(repo.default_branch).commit.sha == github.branches["main"]
    github.branches["main"] = "a" * 40
    assert repo.get_branch("main").commit.sha == "a" * 40
    with pytest.raises(UnknownObjectException):
        repo.get_branch("nowhere")
