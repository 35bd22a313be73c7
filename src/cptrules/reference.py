"""Where the public CMS reference files sit beside a source checkout (tests and benchmarks only)."""

from __future__ import annotations

from pathlib import Path


def shared_dir() -> Path | None:
    """The shared reference folder beside a source checkout, when there is one."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent.parent / "shared" / "data" / "cms"
        if candidate.is_dir():
            return candidate.parent.parent
    return None
