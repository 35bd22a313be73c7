"""The curated catalogue: our own descriptions and Category III dates, each with its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from ..errors import RuleFileErrors, RuleProblem
from ..ruleset.source import line_of, load_yaml

_DATE = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_TEXT = {"type": "string", "minLength": 1}
_DATED = {"oneOf": [{"type": "null"}, {
    "type": "object", "additionalProperties": False, "required": ["date", "basis", "source"],
    "properties": {"date": _DATE, "basis": {"enum": ["stated", "inferred"]}, "source": _TEXT}}]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "codes"],
    "properties": {
        "version": _TEXT,
        "codes": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "descriptor"],
            "properties": {
                "code": {"type": "string", "pattern": "^[0-9A-Z]{5}$"},
                "descriptor": {"type": "string", "minLength": 1, "maxLength": 120},
                "plain_language": _TEXT, "clinical_context": _TEXT, "family": _TEXT,
                "synonyms": {"type": "array", "items": _TEXT},
                "specialties": {"type": "array", "items": _TEXT},
                "related": {"type": "array", "items": {"type": "string"}},
                "billed_by": {"enum": ["physician", "supplier", "hospital", "laboratory"]},
                "sources": {"type": "array", "items": _TEXT},
                "lifecycle": {"type": ["object", "null"], "additionalProperties": False, "properties": {
                    "published": _DATED, "effective": _DATED, "extended": _DATED, "sunset": _DATED,
                    "replaced_by": {"oneOf": [{"type": "null"}, {
                        "type": "object", "additionalProperties": False,
                        "required": ["codes", "effective", "source"],
                        "properties": {"codes": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                                       "effective": _DATE, "source": _TEXT}}]}}},
                "coverage_notes": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["text", "source"],
                    "properties": {"text": _TEXT, "source": _TEXT,
                                   "as_of": {"oneOf": [{"type": "null"}, _DATE]}}}},
            },
        }},
    },
}


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
        dated = []
        for note in self.raw.get("coverage_notes") or []:
            text = str(note.get("text", "")).strip()
            text = text if text.endswith((".", "!", "?")) else text + "."
            where = f"Source: {str(note.get('source', '')).strip().rstrip('.')}"
            as_of = str(note.get("as_of") or "")
            dated.append((as_of, f"{text} {where}."))
        # Newest first, so conflicting sources read in the order a biller should weigh them;
        # undated notes last, in the catalogue's order.
        dated.sort(key=lambda pair: pair[0] or "0000", reverse=True)
        return {
            "curated": True,
            "descriptor": self.text("descriptor"),
            "plain_language": self.text("plain_language"),
            "clinical_context": self.text("clinical_context"),
            "synonyms": self.texts("synonyms"),
            "specialties": self.texts("specialties"),
            "catalogue_sources": self.texts("sources"),
            "curated_coverage_notes": [text for _, text in dated],
            "curated_coverage_note_dates": [as_of for as_of, _ in dated],
            "catalogue_billed_by": self.text("billed_by"),
            "published_date": published,
            "published_basis": published_basis,
            "effective_date": effective,
            "extended_date": extended,
            "explicit_sunset_date": sunset,
            "replaced_by": replaced_by,
            "replaced_from": replaced_from,
            "replaced_source": replaced_source,
            "lifecycle_sources": sources,
        }


@dataclass
class Catalogue:
    """All curated entries and the catalogue's version."""

    version: str
    entries: dict[str, CatalogueEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """Read and validate catalogue.yaml; every problem is reported with its line."""
        from jsonschema import Draft202012Validator  # here: a start from a persisted snapshot never needs it

        located = load_yaml(path.read_text(encoding="utf-8"), path.name) or {}
        doc = _stringify(located)
        problems = [RuleProblem(path.name, line_of(located, list(e.absolute_path)), "CATALOGUE",
                                f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
                    for e in Draft202012Validator(SCHEMA).iter_errors(doc)]
        seen: dict[str, int] = {}
        for index, raw in enumerate(doc.get("codes") or []):
            code = str(raw.get("code", ""))
            if code in seen:
                problems.append(RuleProblem(path.name, line_of(located, ["codes", index]), "CATALOGUE",
                                            f"{code} is listed twice (first at entry {seen[code]})"))
            seen.setdefault(code, index)
        if problems:
            raise RuleFileErrors(problems)
        catalogue = cls(str(doc["version"]))
        for raw in doc["codes"]:
            catalogue.entries[raw["code"]] = CatalogueEntry(raw["code"], raw)
        return catalogue


def _stringify(value: Any) -> Any:
    """Plain Python values; dates the YAML parser made into date objects back to ISO text."""
    if isinstance(value, dict):
        return {str(k): _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)
    return value
