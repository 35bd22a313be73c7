"""The installed package's version: what `cptrules --version`, GetRuleset and the build-info
metric report, so an operator can tell which build answered."""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    """The version of the installed distribution ("0+unknown" when run from an unbuilt tree)."""
    try:
        return metadata.version("cptrules")
    except metadata.PackageNotFoundError:
        return "0+unknown"
