"""The runner's side of a step: inputs from the environment, outputs, summary, annotations.

Inputs arrive only as environment variables set by action.yml's `env:` (never interpolated into
a script), and results leave through the files GitHub names in GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from machci.cli import build_parser
from machci.config.layers import load_project
from machci.config.model import Config
from machci.redaction import redact

DEFAULT_AUTHOR = "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _items(text: str) -> tuple[str, ...]:
    """Split a list input written with commas, spaces or newlines."""
    return tuple(item for item in text.replace(",", " ").split() if item)


@dataclass(frozen=True)
class Inputs:
    command: str
    working_directory: Path
    config: str
    systems: tuple[str, ...]
    token: str
    branch: str
    base: str
    labels: tuple[str, ...]
    reviewers: tuple[str, ...]
    title: str
    advisories: bool  # bump: ask the index for known vulnerabilities
    author: str
    image_name: str
    push: bool
    load: bool
    nix_args: tuple[str, ...]
    repository: str
    api_url: str
    server_url: str
    bump_result: str  # what the bump's resolving step handed to `publish` (result.py)
    cachix: str
    attic: str
    actions_cache: bool
    cache_token_given: bool  # whether the workflow passed cache-token; the token itself is not here
    event_name: str
    event_path: str

    @classmethod
    def from_environment(cls) -> Inputs:
        return cls(
            command=_env("MACHCI_COMMAND", "check"),
            working_directory=Path(_env("MACHCI_WORKING_DIRECTORY", ".") or "."),
            config=_env("MACHCI_CONFIG"),
            systems=_items(_env("MACHCI_SYSTEMS")),
            token=_env("MACHCI_TOKEN"),
            branch=_env("MACHCI_BRANCH", "machci/bump-data") or "machci/bump-data",
            base=_env("MACHCI_BASE"),
            labels=_items(_env("MACHCI_LABELS")),
            reviewers=_items(_env("MACHCI_REVIEWERS")),
            title=_env("MACHCI_TITLE") or "machci: bump the dependency data",
            advisories=_env("MACHCI_ADVISORIES", "true").lower() in ("1", "true", "yes", ""),
            author=_env("MACHCI_AUTHOR") or DEFAULT_AUTHOR,
            image_name=_env("MACHCI_IMAGE_NAME"),
            push=_env("MACHCI_PUSH").lower() in ("1", "true", "yes"),
            load=_env("MACHCI_LOAD", "true").lower() in ("1", "true", "yes"),
            nix_args=tuple(shlex.split(_env("MACHCI_NIX_ARGS"))),
            repository=_env("GITHUB_REPOSITORY"),
            api_url=_env("GITHUB_API_URL") or "https://api.github.com",
            server_url=_env("GITHUB_SERVER_URL") or "https://github.com",
            bump_result=_env("MACHCI_BUMP"),
            cachix=_env("MACHCI_CACHIX"),
            attic=_env("MACHCI_ATTIC"),
            actions_cache=_env("MACHCI_ACTIONS_CACHE", "true").lower() in ("1", "true", "yes"),
            cache_token_given=_env("MACHCI_CACHE_TOKEN_GIVEN").lower() == "true",
            event_name=_env("GITHUB_EVENT_NAME"),
            event_path=_env("GITHUB_EVENT_PATH"),
        )

    def project(self) -> tuple[Config, Path]:
        """machci's configuration, read as the CLI reads it (call inside the working directory)."""
        args = build_parser().parse_args(
            ["check", *(["--config", self.config] if self.config else [])]
        )
        return load_project(args)


def set_output(name: str, value: str) -> None:
    """Append `name=value` to GITHUB_OUTPUT (heredoc form, safe for any value)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    delimiter = f"machci_{secrets.token_hex(8)}"
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def add_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error(message: str, file: str | None = None, line: int | None = None) -> None:
    """An `::error` workflow command, shown as an annotation on the file (and line); index
    credentials in the message are masked, as everywhere machci prints."""
    properties = []
    if file:
        properties.append(f"file={_escape_property(file)}")
    if line:
        properties.append(f"line={line}")
    head = "::error " + ",".join(properties) if properties else "::error"
    sys.stdout.write(f"{head}::{_escape_data(redact(message))}\n")
    sys.stdout.flush()


def workspace_path(path: Path) -> str:
    """A path as annotations want it: relative to the repository (GITHUB_WORKSPACE)."""
    workspace = Path(os.environ.get("GITHUB_WORKSPACE", ".")).resolve()
    resolved = path.resolve()
    try:
        return resolved.relative_to(workspace).as_posix()
    except ValueError:
        return path.as_posix()
