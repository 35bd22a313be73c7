"""The curated catalogue: our own descriptions and Category III dates, each with its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


@dataclass(frozen=True)
class CatalogueEntry:
    """One code's curated text and lifecycle, as written in catalogue.yaml."""

    code: str
    raw: dict[str, Any]

    def text(self, key: str) -> str:
        value = self.raw.get(key)
        return str(value).strip() if value else ""

    def texts(self, key: str) -> list[str]:
        return [str(v) for v in self.raw.get(key) or []]

    def lifecycle_date(self, key: str) -> tuple[str, str, str]:
        """(ISO date, basis, source) of a lifecycle date, empty strings when unknown."""
        item = (self.raw.get("lifecycle") or {}).get(key)
        if not item:
            return "", "", ""
        return str(item.get("date") or ""), str(item.get("basis") or ""), str(item.get("source") or "")

    def replacement(self) -> tuple[list[str], str, str]:
        """(codes, ISO first date, source) of the codes replacing this one."""
        item = (self.raw.get("lifecycle") or {}).get("replaced_by")
        if not item:
            return [], "", ""
        return [str(c) for c in item.get("codes", [])], str(item.get("effective") or ""), str(item.get("source") or "")

    def facts(self) -> dict[str, Any]:
        """The base facts this entry provides."""
        published, published_basis, published_source = self.lifecycle_date("published")
        effective, _, effective_source = self.lifecycle_date("effective")
        extended, _, extended_source = self.lifecycle_date("extended")
        sunset, _, sunset_source = self.lifecycle_date("sunset")
        replaced_by, replaced_from, replaced_source = self.replacement()
        sources = []
        for label, date, source in (("publication", published, published_source),
                                    ("effective date", effective, effective_source),
                                    ("extension", extended, extended_source),
                                    ("archive date", sunset, sunset_source),
                                    ("replacement", replaced_from, replaced_source)):
            if date and source:
                sources.append(f"{label} {date}: {source}")
        notes = []
        for note in self.raw.get("coverage_notes") or []:
            text = str(note.get("text", "")).strip()
            text = text if text.endswith((".", "!", "?")) else text + "."
            where = f"Source: {str(note.get('source', '')).strip().rstrip('.')}"
            notes.append(f"{text} {where}" + (f", as of {note['as_of']}." if note.get("as_of") else "."))
        return {
            "curated": True,
            "descriptor": self.text("descriptor"),
            "plain_language": self.text("plain_language"),
            "clinical_context": self.text("clinical_context"),
            "synonyms": self.texts("synonyms"),
            "specialties": self.texts("specialties"),
            "catalogue_sources": self.texts("sources"),
            "curated_coverage_notes": notes,
            "published_date": published,
            "published_basis": published_basis,
            "effective_date": effective,
            "extended_date": extended,
            "explicit_sunset_date": sunset,
            "replaced_by": replaced_by,
            "replaced_from": replaced_from,
            "lifecycle_sources": sources,
        }


@dataclass
class Catalogue:
    """All curated entries and the catalogue's version."""

    version: str
    entries: dict[str, CatalogueEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """Read catalogue.yaml; dates are kept as ISO text."""
        doc = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        catalogue = cls(str(doc.get("version", "")))
        for raw in doc.get("codes", []):
            entry = _stringify(raw)
            code = str(entry["code"]).strip().upper()
            catalogue.entries[code] = CatalogueEntry(code, entry)
        return catalogue


def _stringify(value: Any) -> Any:
    """Dates the YAML parser made into date objects back to ISO text."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
