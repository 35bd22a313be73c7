"""The base facts every rule can read, with their types and empty values.

These are what the data sources provide for one code on one date of service.
Rule files add facts of their own (their declared outputs); the rule compiler
type-checks every condition against this schema plus the outputs of earlier
tables, so a misspelt fact is a load-time error, never a silent false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Type names used in rule files; each maps to a CEL type in ruleset/conditions.py.
FACT_TYPES = ("string", "double", "bool", "int", "list")


@dataclass(frozen=True, slots=True)
class FactSpec:
    """One base fact: its type, its value when the data has none, and what it means."""

    type: str
    empty: Any
    doc: str


def _s(doc: str) -> FactSpec:
    return FactSpec("string", "", doc)


def _d(doc: str) -> FactSpec:
    return FactSpec("double", 0.0, doc)


def _b(doc: str) -> FactSpec:
    return FactSpec("bool", False, doc)


BASE_FACTS: dict[str, FactSpec] = {
    "code": _s("The normalised code, e.g. 0556T."),
    "date_of_service": _s("ISO date the question is about."),
    "today": _s("ISO date the service is answering on."),
    "date_of_service_given": _b("The caller stated the date of service (else: today, newest data)."),
    # Fee schedule (CMS PFS RVU file), global row of the release in force.
    "on_fee_schedule": _b("The code has a global row in the fee-schedule release in force."),
    "pfs_release": _s("Release key of the fee-schedule file, e.g. RVU25D; empty when none covers the date."),
    "pfs_release_effective": _s("ISO date the release took effect."),
    "pfs_covers_date": _b("A loaded fee-schedule release is in force on the date of service."),
    "pfs_release_year": FactSpec("int", 0, "The calendar year the release prices; 0 when none."),
    "pfs_release_stale": _b("No date was given and the newest release loaded prices an earlier year than today's."),
    "status_indicator": _s("PFS status indicator letter; empty when not on the fee schedule."),
    "not_used_for_payment": _b("The file marks the RVUs as not used for Medicare payment (+)."),
    "work_rvu": _d("Work RVU."),
    "non_facility_pe_rvu": _d("Non-facility practice expense RVU."),
    "facility_pe_rvu": _d("Facility practice expense RVU."),
    "mp_rvu": _d("Malpractice RVU."),
    "non_facility_total_rvu": _d("Non-facility total RVU."),
    "facility_total_rvu": _d("Facility total RVU."),
    "non_facility_na": _b("NA: rarely or never performed in a non-facility setting."),
    "facility_na": _b("NA: rarely or never performed in a facility setting."),
    "global_days": _s("Global surgery period code (000, 010, 090, MMM, XXX, YYY, ZZZ)."),
    "pctc_indicator": _s("Professional/technical component indicator, 0-9."),
    "conversion_factor": _d("The release's conversion factor in dollars per RVU."),
    "qp_conversion_factor": _d("The qualifying-APM conversion factor, when the release has one; else 0."),
    "modifier_rows": FactSpec("list", [], "Modifiers with rows of their own, e.g. 26, TC."),
    "paid_modifier_rows": FactSpec("list", [], "Modifier rows whose status (A, R, T) and RVUs mean Medicare pays them from RVUs."),
    "pfs_row_modifier": _s("The modifier whose row the fee-schedule facts come from (asked for, or the only row); empty for the global row."),
    # HCPCS Level II quarterly file.
    "on_hcpcs_file": _b("The code is on the loaded HCPCS Level II file."),
    "hcpcs_stale": _b("The HCPCS file used is from an earlier year than the date of service."),
    "hcpcs_release": _s("HCPCS file key, e.g. HCPC2025_OCT."),
    "hcpcs_add_date": _s("ISO date the HCPCS code was added."),
    "hcpcs_action_effective_date": _s("ISO date of the latest action."),
    "hcpcs_termination_date": _s("ISO last date the code may be used; empty when open."),
    "hcpcs_action_code": _s("HCPCS action code letter."),
    "hcpcs_coverage_code": _s("HCPCS coverage code (C, D, I, M, S)."),
    "hcpcs_pricing_indicator": _s("HCPCS pricing indicator (PRICE1)."),
    "hcpcs_betos": _s("BETOS classification."),
    # Curated catalogue (our own words).
    "curated": _b("The curated catalogue has an entry for the code."),
    "published_date": _s("ISO date a Category III code was published; empty when unknown."),
    "published_basis": _s("stated or inferred."),
    "effective_date": _s("ISO date the code took effect; empty when unknown."),
    "extended_date": _s("ISO date of the latest Category III extension; empty when none known."),
    "explicit_sunset_date": _s("An archive date stated by a source; empty when none."),
    "replaced_by": FactSpec("list", [], "Codes that replace this one."),
    "replaced_from": _s("ISO first date of service of the replacement codes."),
    "replaced_source": _s("Where the replacement is stated."),
    "lifecycle_sources": FactSpec("list", [], "Sources of the lifecycle dates, in our words."),
    "descriptor": _s("Our own short descriptor; empty when the catalogue has none."),
    "plain_language": _s("Plain-language explanation; empty when none."),
    "clinical_context": _s("When and by whom the code is used; empty when none."),
    "synonyms": FactSpec("list", [], "Other names for the service."),
    "specialties": FactSpec("list", [], "Specialties or settings that typically report it."),
    "curated_coverage_notes": FactSpec("list", [], "Dated, sourced coverage notes from the catalogue."),
    "catalogue_sources": FactSpec("list", [], "Sources of the catalogue's descriptive text."),
    "hcpcs_long_description": _s("CMS's long description (HCPCS Level II only)."),
    "hcpcs_short_description": _s("CMS's short description (HCPCS Level II only)."),
}


def empty_facts() -> dict[str, Any]:
    """A fact record with every base fact at its empty value (lists copied)."""
    return {name: (list(spec.empty) if isinstance(spec.empty, list) else spec.empty)
            for name, spec in BASE_FACTS.items()}
