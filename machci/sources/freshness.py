"""How long a cached index page may be used without asking the index again (RFC 9111).

Only the directives a private cache acts on are read: `no-store` (keep nothing), `no-cache`
(always revalidate), `max-age` less the response's `Age`. Without them the page is revalidated
every time, as before: guessing a lifetime from `Last-Modified` is allowed but would hide uploads.
Files and `.metadata` need none of this: they are stored under their sha256, so they never
change and are never asked for twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NO_STORE = -1.0  # a lifetime that means: do not keep the page at all


@dataclass(frozen=True)
class Freshness:
    """When a stored page was received, and for how many seconds it stays fresh."""

    received: float  # seconds since the epoch
    lifetime: float  # 0: revalidate every time

    def fresh(self, now: float, not_before: float | None = None) -> bool:
        """Whether the page can be used without asking: still within its lifetime, and (for a
        snapshot instant `not_before`) received after that instant, so it can hold every file
        uploaded up to it."""
        if not_before is not None and self.received < not_before:
            return False
        return 0 <= now - self.received < self.lifetime


def directives(header: str) -> dict[str, str]:
    """`Cache-Control` as lower-cased directive names and their (unquoted) values."""
    found: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found.setdefault(name.strip().lower(), value.strip().strip('"'))
    return found


def lifetime(headers: Mapping[str, str]) -> float:
    """Seconds a response stays fresh from when it was received; NO_STORE when it must not be
    kept. `headers` must be case-insensitive (urllib3's are)."""
    control = directives(headers.get("Cache-Control", ""))
    if "no-store" in control:
        return NO_STORE
    if "no-cache" in control:
        return 0.0
    max_age = _seconds(control.get("max-age"))
    if max_age is None:
        return 0.0
    return max(0.0, max_age - (_seconds(headers.get("Age")) or 0))


def _seconds(value: str | None) -> int | None:
    """A delta-seconds value; None when absent or not a non-negative integer."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text)
