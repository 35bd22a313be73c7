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
    # Fee schedule (CMS PFS RVU file). The row facts come from `pfs_release`: the release in
    # force on the date when it speaks for the code, else the newest earlier release that lists
    # it, shown for reference only. Every claim about the date must also test pfs_covers_date.
    "on_fee_schedule": _b("`pfs_release` has a row for the code (global, or only modifier rows)."),
    "pfs_release": _s("Key of the release the fee-schedule facts come from, e.g. RVU25D; empty when none."),
    "pfs_release_effective": _s("ISO date that release took effect."),
    "pfs_covers_date": _b("`pfs_release` is in force on the date of service and speaks for this code "
                          "(a whole release, or a partial one that lists the code)."),
    "pfs_release_year": FactSpec("int", 0, "The calendar year `pfs_release` prices; 0 when none."),
    "pfs_release_in_force": _s("Key of the release in force on the date, even when it does not speak "
                               "for the code; empty when no loaded release is in force."),
    "pfs_partial": _b("The release in force on the date is a partial release (an excerpt)."),
    "pfs_newest_listing": _s("The newest loaded release that lists the code, whatever the date of service; empty when none."),
    "pfs_newest_listing_effective": _s("ISO date that release took effect."),
    "pfs_component_only": _b("`pfs_release` lists the code only with modifier rows (e.g. 86153-26), "
                             "and the facts are the first such row's."),
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
    "modifier_requested": _s("The modifier the question or request named for the code, e.g. 26 or 50; empty when none."),
    "professional_row_status": _s("Status of the code's modifier-26 row in `pfs_release`; empty when it has none."),
    "professional_row_work_rvu": _d("Work RVU of the modifier-26 row."),
    "professional_row_non_facility_total_rvu": _d("Non-facility total RVU of the modifier-26 row."),
    "professional_row_facility_total_rvu": _d("Facility total RVU of the modifier-26 row."),
    # Payment-policy indicators of the fee-schedule row (RVU file columns; RVU25D.pdf).
    "mult_proc_indicator": _s("MULT PROC: the multiple-procedure rule for modifier 51 (0, 2, 3, 4, 5, 6, 7, 9)."),
    "bilateral_indicator": _s("BILAT SURG: the bilateral rule for modifier 50 (0, 1, 2, 3, 9)."),
    "assistant_indicator": _s("ASST SURG: whether an assistant at surgery is paid (0, 1, 2, 9)."),
    "co_surgeon_indicator": _s("CO-SURG: whether co-surgeons (modifier 62) are paid (0, 1, 2, 9)."),
    "team_surgery_indicator": _s("TEAM SURG: whether team surgery (modifier 66) is paid (0, 1, 2, 9)."),
    "endoscopic_base_code": _s("ENDO BASE: the endoscopic base code for MULT PROC 3; empty when none."),
    "supervision_indicator": _s("Physician supervision level of a diagnostic procedure (01-09, 21, 22, 66, 6A, 77, 7A)."),
    "imaging_family_indicator": _s("Diagnostic imaging family (88: subject to the reduction; 99: not)."),
    "pre_op_share": _d("PRE OP: the pre-operative share of the global package (modifier 56)."),
    "intra_op_share": _d("INTRA OP: the intra-operative share of the global package (modifier 54)."),
    "post_op_share": _d("POST OP: the post-operative share of the global package (modifier 55)."),
    # Payment locality, when the request names a ZIP code or a locality (CMS GPCI, ZIP5,
    # LOCCO, OPPS cap and anesthesia files). Empty when it names none.
    "locality_id": _s("MAC-locality, e.g. 01112-05; empty when the request names no place."),
    "locality_name": _s("CMS's locality name, e.g. MANHATTAN."),
    "locality_label": _s("The locality name as a person writes it, e.g. Rest of Texas."),
    "locality_state": _s("Two-letter state of the locality."),
    "locality_mac": _s("Medicare Administrative Contractor number, e.g. 13202."),
    "locality_number": _s("Locality number within the MAC, e.g. 01."),
    "locality_counties": _s("The counties of the locality (CMS LOCCO file); empty when not loaded."),
    "locality_zip": _s("The ZIP code the locality was found from; empty when given as a locality."),
    "locality_rural": _s("ZIP5 rural indicator: '' urban, R rural, B super rural."),
    "gpci_year": FactSpec("int", 0, "The GPCI year used: the year of `pfs_release`; 0 when no GPCIs of that year are loaded."),
    "gpci_release": _s("The GPCI file used, e.g. GPCI2025."),
    "locality_work_gpci": _d("Work GPCI of the locality in `gpci_year`."),
    "locality_pe_gpci": _d("Practice expense GPCI."),
    "locality_mp_gpci": _d("Malpractice GPCI."),
    "opps_cap_listed": _b("The OPPS cap file of `gpci_year` lists the code (row modifier) in the locality."),
    "opps_cap_release": _s("The OPPS cap file used, e.g. OPPSCAP_OCT2025."),
    "opps_cap_facility": _d("OPPS cap price, facility setting."),
    "opps_cap_non_facility": _d("OPPS cap price, non-facility setting."),
    "anesthesia_conversion_factor": _d("The locality's anesthesia conversion factor in `gpci_year`; 0 when not loaded."),
    # HCPCS Level II quarterly file.
    "on_hcpcs_file": _b("The HCPCS file used (`hcpcs_release`) lists the code."),
    "hcpcs_covers_date": _b("The HCPCS file used speaks for the date of service: it is a file of the "
                            "date's calendar year. Its add and termination dates stay usable outside it."),
    "hcpcs_release": _s("HCPCS file key, e.g. HCPC2025_OCT; empty when no loaded file lists the code."),
    "hcpcs_add_date": _s("ISO date the HCPCS code was added."),
    "hcpcs_action_effective_date": _s("ISO date of the latest action."),
    "hcpcs_termination_date": _s("ISO last date the code may be used; empty when open."),
    "hcpcs_action_code": _s("HCPCS action code letter."),
    "hcpcs_coverage_code": _s("HCPCS coverage code (C, D, I, M, S)."),
    "hcpcs_pricing_indicator": _s("HCPCS pricing indicator (PRICE1)."),
    "hcpcs_betos": _s("BETOS classification."),
    "hcpcs_cross_references": FactSpec("list", [], "Codes the HCPCS file's XREF1-5 columns name for this code, in "
                                       "order: on an ended code, the codes that take its place (they "
                                       "then also fill replaced_by when the catalogue states none)."),
    # Curated catalogue (our own words).
    "curated": _b("The curated catalogue has an entry for the code."),
    "published_date": _s("ISO date a Category III code was published; empty when unknown."),
    "published_basis": _s("stated or inferred."),
    "effective_date": _s("ISO date the code took effect; empty when unknown."),
    "extended_date": _s("ISO date of the latest Category III extension; empty when none known."),
    "explicit_sunset_date": _s("An archive date stated by a source; empty when none."),
    "replaced_by": FactSpec("list", [], "Codes that replace this one: the catalogue's, else the "
                                        "cross-references of a code the HCPCS file ends."),
    "replaced_from": _s("ISO first date of service of the replacement codes (for the HCPCS file's, "
                        "the day after its TERM DT)."),
    "replaced_source": _s("Where the replacement is stated."),
    "lifecycle_sources": FactSpec("list", [], "Sources of the lifecycle dates, in our words."),
    "descriptor": _s("Our own short descriptor; empty when the catalogue has none."),
    "plain_language": _s("Plain-language explanation; empty when none."),
    "clinical_context": _s("When and by whom the code is used; empty when none."),
    "synonyms": FactSpec("list", [], "Other names for the service."),
    "specialties": FactSpec("list", [], "Specialties or settings that typically report it."),
    "curated_coverage_notes": FactSpec("list", [], "Sourced coverage notes from the catalogue, newest first."),
    "curated_coverage_note_dates": FactSpec("list", [], "The ISO date of each note in curated_coverage_notes, or '' when undated."),
    "catalogue_billed_by": _s("Who bills the code per the catalogue (physician, supplier, hospital, laboratory); empty when not stated."),
    "catalogue_sources": FactSpec("list", [], "Sources of the catalogue's descriptive text."),
    "hcpcs_long_description": _s("CMS's long description (HCPCS Level II only)."),
    "hcpcs_short_description": _s("CMS's short description (HCPCS Level II only)."),
    # The user's own import (import-pfs --with-descriptors): AMA text, shown labelled as such.
    "cpt_short_descriptor": _s("The CPT short descriptor from the user's imported RVU file; empty when none "
                               "was imported (the embedded data has none)."),
    "cpt_short_descriptor_release": _s("The release whose file gave `cpt_short_descriptor`, e.g. RVU25D."),
}


_EMPTY = {name: spec.empty for name, spec in BASE_FACTS.items()}


def empty_facts() -> dict[str, Any]:
    """A fact record with every base fact at its empty value.

    The empty lists are shared: fact values are replaced, never changed in place
    (evaluation builds new lists, templates are sandboxed and immutable).
    """
    return dict(_EMPTY)
