"""How to reach the data: options that never change what is locked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from machci.config.defaults import DEFAULT_TIMEOUT


@dataclass(frozen=True)
class SourceOptions:
    cache_dir: Path | None = None
    offline: bool = False
    timeout: float = DEFAULT_TIMEOUT
    refresh: bool = False  # revalidate every cached index page, fresh or not
