"""Per-file rules beyond the shape check (filled in below)."""

from __future__ import annotations

from typing import Any


def check_file(rep: Any, kind: str, doc: dict) -> None:
    """Apply the per-file semantic rules to a document whose shape was checked."""
