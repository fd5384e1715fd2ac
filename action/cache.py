"""`cache`, the step before a build: which binary cache the job uses, and whether it may write.

One binary cache serves every job of the matrix: Cachix (the `cachix` input, a cache name) or
Attic (the `attic` input, the cache's URL, https://HOST/CACHE), else GitHub's Actions cache of
the Nix store (nix-community/cache-nix-action), which needs no account. Every run reads it; only
a push event of the repository itself, not of a fork, writes to it, and for Cachix and Attic
only when the workflow gave the cache a token. Pull requests, from forks or not, never get the
token: action.yml hands it to the cache's action only in the step that runs when `push` is true.

This step never sees the token (only whether one was given); its outputs choose the steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from machci.errors import InputError
from machci.redaction import redact_unparsed

from .build import runner_system
from .workflow import Inputs, add_summary, set_output

CACHIX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Cache:
    service: str  # cachix | attic | actions | none
    push: bool
    name: str = ""  # the Cachix or Attic cache
    endpoint: str = ""  # Attic's server, the cache's URL without the cache name
    key: str = ""  # the Actions cache's key, and the prefix a first run restores from
    restore_prefix: str = ""


def repository_push(event_name: str, event_path: str) -> bool:
    """A push to the repository itself: not a pull request, not a fork's push. When the event
    cannot be read, the run is taken for one that may not write."""
    if event_name != "push" or not event_path:
        return False
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    repository = event.get("repository") if isinstance(event, dict) else None
    return isinstance(repository, dict) and repository.get("fork") is False


def attic_cache(url: str) -> tuple[str, str]:
    """Attic's endpoint and cache name from the cache's URL (https://HOST[/PREFIX]/CACHE)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    endpoint, _, name = path.rpartition("/")
    if parts.scheme not in ("http", "https") or not parts.hostname or not name:
        raise InputError(
            f"attic: {redact_unparsed(url)} is not an Attic cache's URL (https://HOST/CACHE)"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError(
            "attic: the cache's URL carries no credentials or query: pass the token as"
            " cache-token, from a secret"
        )
    return f"{parts.scheme}://{parts.netloc}{endpoint}/", name


def store_key(output: Path, systems: tuple[str, ...], nix_args: tuple[str, ...]) -> tuple[str, str]:
    """The Actions cache's key: the systems, then a digest of what the build is made from. A new
    default.nix misses the key and restores the newest store saved for the same systems."""
    digest = hashlib.sha256()
    digest.update(output.read_bytes() if output.is_file() else b"")
    digest.update(json.dumps(nix_args).encode())
    prefix = f"machci-nix-{'+'.join(systems)}-"
    return prefix + digest.hexdigest()[:16], prefix


def choose(inputs: Inputs, output: Path) -> Cache:
    if inputs.cachix and inputs.attic:
        raise InputError("cachix and attic: give one binary cache, not both")
    writes = repository_push(inputs.event_name, inputs.event_path)
    if inputs.cachix:
        if not CACHIX_NAME.fullmatch(inputs.cachix):
            raise InputError(f"cachix: {inputs.cachix!r} is not a Cachix cache name")
        return Cache("cachix", writes and inputs.cache_token_given, name=inputs.cachix)
    if inputs.attic:
        endpoint, name = attic_cache(inputs.attic)
        return Cache("attic", writes and inputs.cache_token_given, name=name, endpoint=endpoint)
    if inputs.actions_cache:
        systems = inputs.systems or (runner_system(),)
        key, prefix = store_key(output, systems, inputs.nix_args)
        return Cache("actions", writes, key=key, restore_prefix=prefix)
    return Cache("none", False)


def run(inputs: Inputs) -> int:
    with contextlib.chdir(inputs.working_directory):
        config, _base = inputs.project()
        cache = choose(inputs, config.output)
    set_output("service", cache.service)
    set_output("push", "true" if cache.push else "false")
    set_output("name", cache.name)
    set_output("endpoint", cache.endpoint)
    set_output("key", cache.key)
    set_output("restore-prefix", cache.restore_prefix)
    if cache.service != "none":
        where = cache.name or cache.key
        mode = "reads and writes" if cache.push else "only reads"
        add_summary(f"### machci: binary cache\n\n{cache.service} `{where}`: this run {mode}")
    return 0
