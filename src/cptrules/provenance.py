"""Where an answer comes from: fired rules, data releases, ruleset revision."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DataSource:
    """A data release an answer used, e.g. CMS PFS RVU25D or the curated catalogue."""

    key: str
    title: str
    effective: str = ""
    released: str = ""
    sha256: str = ""

    def label(self) -> str:
        """"CMS Physician Fee Schedule RVU25D, effective 2025-10-01"."""
        return self.title + (f", effective {self.effective}" if self.effective else "")


@dataclass(frozen=True, slots=True)
class Provenance:
    """Everything needed to audit an answer."""

    fired: tuple  # tuple[evaluate.Firing, ...]
    sources: tuple[DataSource, ...]
    ruleset_revision: str
    date_of_service: str
