"""Where the embedded default rules and data live, installed or in a source checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _locate(name: str) -> Path:
    installed = Path(str(resources.files("cptrules"))) / "embedded" / name
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"the embedded {name} folder is missing from this installation")


def default_rules_dir() -> Path:
    """The rules shipped with the package (rules/ in the source tree)."""
    return _locate("rules")


def default_data_dir() -> Path:
    """The code data shipped with the package (data/ in the source tree)."""
    return _locate("data")


def protos_dir() -> Path:
    """The service's .proto files (protos/ in the source tree), shipped for clients."""
    return _locate("protos")
