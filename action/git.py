"""The bump's git side: one commit on one fixed branch, pushed without clobbering anyone.

Runs the real `git`. The token reaches git through GIT_CONFIG_* environment variables of the
fetch and push processes only: it is never written to .git/config, never on a command line, and
never printed, so the checkout can keep `persist-credentials: false`.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from machci.errors import MachciError

# Marks the commits machci makes on the bump branch (a git trailer, valued with the new data
# revision); a commit there without it is someone else's work.
TRAILER = "Machci-Bump"
_AUTHOR = re.compile(r"([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\Z")


class GitError(MachciError):
    """A git operation failed or would overwrite someone else's work (exit 2)."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output  # everything git printed, for callers that classify failures


@dataclass(frozen=True)
class Author:
    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Author:
        # Not email.utils.parseaddr: it mangles "github-actions[bot]", whose brackets are
        # special in RFC 5322 but fine for git.
        match = _AUTHOR.match(text.strip())
        if not match:
            raise GitError(f"invalid author {text!r}: expected 'Name <email>'")
        return cls(match.group(1), match.group(2))


def credential_environment(token: str, server: str) -> dict[str, str]:
    """Environment that makes git send the token to `server` as actions/checkout would."""
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{server.rstrip('/')}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


class Repository:
    def __init__(
        self,
        path: Path,
        remote: str = "origin",
        token: str = "",
        server: str = "https://github.com",
    ) -> None:
        self.remote = remote
        self._token = token
        self._credentials = credential_environment(token, server)
        self.root = Path(self._run(["rev-parse", "--show-toplevel"], cwd=path).strip())

    def _run(
        self, args: Sequence[str], cwd: Path | None = None, author: Author | None = None
    ) -> str:
        command = ["git"]
        if author is not None:
            command += ["-c", f"user.name={author.name}", "-c", f"user.email={author.email}"]
        remote = args[0] in ("fetch", "push", "ls-remote")  # only these need the token
        result = subprocess.run(
            [*command, *args],
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **self._credentials} if remote else None,
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            if self._token:
                output = output.replace(self._token, "***")
            last = output.splitlines()[-1] if output else "no output"
            raise GitError(f"git {args[0]} failed: {last}", output)
        return result.stdout

    def remote_head(self, branch: str) -> str | None:
        """The commit the remote branch points at, or None when it does not exist."""
        out = self._run(["ls-remote", "--heads", self.remote, f"refs/heads/{branch}"])
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def refuse_foreign_history(self, branch: str, remote_sha: str) -> None:
        """Refuse to replace a remote branch that holds any commit machci did not make.

        Those are the commits the branch has beyond HEAD or, when it has none (a branch at a
        point of HEAD's history, such as a release branch), its tip; a merged bump branch is
        machci's own commit either way.
        """
        self._run(["fetch", "--quiet", self.remote, f"+refs/heads/{branch}:refs/machci/remote"])
        commits = self._commits(f"HEAD..{remote_sha}") or self._commits("-1", remote_sha)
        foreign = [who for who, ours in commits if not ours]
        if foreign:
            shown = ", ".join(foreign[:3]) + (
                f" and {len(foreign) - 3} more" if foreign[3:] else ""
            )
            raise GitError(
                f"branch {branch} has commits machci did not make ({shown}); machci will not"
                " overwrite them (merge or close its pull request and delete the branch, or give"
                " the bump a branch of its own with the `branch` input)"
            )

    def _commits(self, *revisions: str) -> list[tuple[str, bool]]:
        """("<short sha> by <email>", made by machci) for each commit `git log` lists.

        machci's commits are how `commit` leaves them: one parent and the bump trailer.
        """
        fields = f"%h by %ae%x1f%P%x1f%(trailers:key={TRAILER},valueonly)"
        out = self._run(["log", "-z", f"--format={fields}", *revisions])
        commits = []
        for record in filter(None, out.split("\0")):
            who, parents, trailer = record.split("\x1f")
            commits.append((who, len(parents.split()) == 1 and bool(trailer.strip())))
        return commits

    def commit(
        self, branch: str, files: Sequence[Path], message: str, author: Author, revision: str
    ) -> str:
        """Commit `files` on `branch`, started fresh from the current HEAD, with the trailer."""
        self._run(["checkout", "--quiet", "-B", branch])
        self._run(["add", "--", *(str(f) for f in files)])
        marked = f"{message.rstrip()}\n\n{TRAILER}: {revision}\n"
        self._run(["commit", "--quiet", "--no-verify", "-m", marked], author=author)
        return self._run(["rev-parse", "HEAD"]).strip()

    def push(self, branch: str, expected: str | None) -> None:
        """Force-push HEAD to the branch, but only if it still is where we last saw it."""
        lease = f"--force-with-lease=refs/heads/{branch}:{expected or ''}"
        try:
            self._run(["push", "--quiet", lease, self.remote, f"HEAD:refs/heads/{branch}"])
        except GitError as exc:
            text = exc.output.lower()
            # Our lease lost: rejected locally ("stale info"), or by the remote when the branch
            # moved while the push was on its way ("cannot lock ref …").
            if any(m in text for m in ("(stale info)", "(fetch first)", "cannot lock ref")):
                raise GitError(
                    f"the remote branch {branch} changed while machci was updating it;"
                    " nothing was overwritten (run the bump again)"
                ) from exc
            if "error: 403" in text or "denied" in text or "[remote rejected]" in text:
                raise GitError(
                    f"pushing {branch} was refused: the workflow needs"
                    f" `permissions: contents: write` ({exc.message})"
                ) from exc
            raise
