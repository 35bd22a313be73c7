"""Core values → protobuf messages; the only module that knows both."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from google.type import date_pb2

from ..data.locality import LocalityInfo
from ..engine import AnswerResult, CodeReport
from ..provenance import DataSource, Provenance
from ..ruleset import Ruleset
from ..search import CATALOGUE_SOURCE, Match, descriptor_label
from ..v1 import code_pb2
from ..version import version

_RVU = {
    "national": code_pb2.RVU_AVAILABILITY_NATIONAL,
    "conditional": code_pb2.RVU_AVAILABILITY_CONDITIONAL,
    "contractor_priced": code_pb2.RVU_AVAILABILITY_CONTRACTOR_PRICED,
    "not_used_for_payment": code_pb2.RVU_AVAILABILITY_NOT_USED_FOR_PAYMENT,
    "none": code_pb2.RVU_AVAILABILITY_NONE,
    "not_on_fee_schedule": code_pb2.RVU_AVAILABILITY_NOT_ON_FEE_SCHEDULE,
    "no_release": code_pb2.RVU_AVAILABILITY_NO_RELEASE,
    "not_yet_effective": code_pb2.RVU_AVAILABILITY_NOT_YET_EFFECTIVE,
}


def to_date(iso: str) -> date_pb2.Date | None:
    if not iso:
        return None
    day = dt.date.fromisoformat(iso)
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def from_date(message: Any, has: bool) -> dt.date | None:
    """A google.type.Date field as a date; None when unset. Raises ValueError when invalid."""
    if not has:
        return None
    return dt.date(message.year, message.month, message.day)


def category_enum(name: str) -> int:
    return code_pb2.CodeCategory.Value(f"CODE_CATEGORY_{name}") if name else 0


def category_name(value: int) -> str:
    return code_pb2.CodeCategory.Name(value).removeprefix("CODE_CATEGORY_") if value else ""


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def data_release(source: DataSource) -> code_pb2.DataRelease:
    message = code_pb2.DataRelease(key=source.key, title=source.title, sha256=source.sha256)
    if source.effective:
        message.effective_date.CopyFrom(to_date(source.effective))
    if source.released:
        message.released_date.CopyFrom(to_date(source.released))
    return message


# Converted firings by the firing object: a cached report's firings recur in every answer about
# it, and building a FiredRule's maps costs far more than copying one. Each entry holds its
# firing, so the id stays that object's while the entry lives; bounded by clearing when full.
_FIRED: dict[int, tuple[Any, code_pb2.FiredRule]] = {}
_FIRED_MAX = 8192


def fired_rule(firing: Any) -> code_pb2.FiredRule:
    known = _FIRED.get(id(firing))
    if known is not None and known[0] is firing:
        return known[1]
    rule = firing.rule
    message = code_pb2.FiredRule(
        rule_id=rule.id, table=rule.table, file=rule.path, line=rule.line, code=firing.code,
        inputs={k: _text(v) for k, v in firing.inputs.items()},
        outputs={k: _text(v) for k, v in firing.outputs.items()})
    if len(_FIRED) >= _FIRED_MAX:
        _FIRED.clear()
    _FIRED[id(firing)] = (firing, message)
    return message


def provenance(prov: Provenance) -> code_pb2.Provenance:
    message = code_pb2.Provenance(ruleset_version=prov.ruleset_revision)
    message.fired_rules.extend(fired_rule(firing) for firing in prov.fired)
    message.data_releases.extend(data_release(s) for s in prov.sources)
    if prov.date_of_service:
        message.date_of_service.CopyFrom(to_date(prov.date_of_service))
    return message


def code(report: CodeReport) -> code_pb2.Code:
    f = report.facts
    message = code_pb2.Code(
        code=report.code, category=category_enum(f["category"]), descriptor=f["descriptor"],
        plain_language=f["plain_language"], synonyms=f["synonyms"],
        clinical_context=f["clinical_context"], specialties=f["specialties"], curated=f["curated"])
    if not message.descriptor and f["hcpcs_long_description"]:
        message.descriptor = f["hcpcs_long_description"]
    message.cpt_short_descriptor = f["cpt_short_descriptor"]
    message.descriptor_source = descriptor_source(f)
    message.fee_schedule.CopyFrom(code_pb2.FeeSchedule(
        on_fee_schedule=f["on_fee_schedule"], release=f["pfs_release"],
        status_indicator=f["status_indicator"], status_meaning=f["status_meaning"],
        rvu_availability=_RVU.get(f["rvu_availability"], 0),
        rvus_used_for_payment=f["rvus_used_for_payment"], work_rvu=f["work_rvu"],
        non_facility_pe_rvu=f["non_facility_pe_rvu"], facility_pe_rvu=f["facility_pe_rvu"],
        mp_rvu=f["mp_rvu"], non_facility_total_rvu=f["non_facility_total_rvu"],
        facility_total_rvu=f["facility_total_rvu"], non_facility_not_applicable=f["non_facility_na"],
        facility_not_applicable=f["facility_na"], global_days=f["global_days"],
        global_days_meaning=f["global_days_meaning"], pctc_indicator=f["pctc_indicator"],
        conversion_factor=f["conversion_factor"], non_facility_payment=f["non_facility_payment"],
        facility_payment=f["facility_payment"], has_national_payment=f["has_national_payment"],
        modifiers=f["modifier_rows"], covers_date_of_service=f["pfs_covers_date"],
        release_in_force=f["pfs_release_in_force"], release_in_force_partial=f["pfs_partial"],
        component_only=f["pfs_component_only"], facility_not_applicable_meaning=f["facility_na_meaning"],
        non_facility_not_applicable_meaning=f["non_facility_na_meaning"]))
    message.billed_by = f["billed_by"]
    life = code_pb2.Lifecycle(
        permanent=f["permanent"], policy=f["lifecycle_policy"], sunset_basis=f["sunset_basis"],
        replaced_by=f["replaced_by"], sources=f["lifecycle_sources"], status=f["code_status"])
    for field, key in (("published_date", "published_date"), ("effective_date", "effective_date"),
                       ("extended_date", "extended_date"), ("sunset_date", "sunset_date"),
                       ("replaced_from", "replaced_from")):
        if f[key]:
            getattr(life, field).CopyFrom(to_date(f[key]))
    message.lifecycle.CopyFrom(life)
    rule_notes = [firing for firing in report.evaluation.fired if firing.rule.table == "coverage"]
    for firing in rule_notes:
        for note in firing.outputs.values():
            message.coverage_notes.append(code_pb2.CoverageNote(
                text=str(note), source=firing.rule.source or f"{firing.rule.path}:{firing.rule.line}",
                rule_id=firing.rule.id))
    for note in f["curated_coverage_notes"]:
        message.coverage_notes.append(code_pb2.CoverageNote(text=note, source="curated catalogue"))
    if f["on_hcpcs_file"]:
        entry = code_pb2.HcpcsEntry(
            release=f["hcpcs_release"], long_description=f["hcpcs_long_description"],
            short_description=f["hcpcs_short_description"], action_code=f["hcpcs_action_code"],
            coverage_code=f["hcpcs_coverage_code"], pricing_indicator=f["hcpcs_pricing_indicator"],
            pricing_meaning=f["hcpcs_pricing_meaning"], betos=f["hcpcs_betos"],
            covers_date_of_service=f["hcpcs_covers_date"])
        for field, key in (("add_date", "hcpcs_add_date"), ("termination_date", "hcpcs_termination_date"),
                           ("action_effective_date", "hcpcs_action_effective_date")):
            if f[key]:
                getattr(entry, field).CopyFrom(to_date(f[key]))
        message.hcpcs.CopyFrom(entry)
    message.hcpcs_cross_references.extend(f["hcpcs_cross_references"])
    message.provenance.CopyFrom(provenance(report.provenance))
    message.date_of_service.CopyFrom(to_date(f["date_of_service"]))
    if f["locality_id"]:
        message.locality_payment.CopyFrom(locality_payment(f))
    if f["on_fee_schedule"]:
        message.payment_policy.CopyFrom(payment_policy(f))
    return message


def descriptor_source(f: dict[str, Any]) -> str:
    """Where the code's description comes from, in the order answers prefer them."""
    if f["descriptor"]:
        return CATALOGUE_SOURCE
    if f["hcpcs_long_description"]:
        return f"CMS HCPCS file {f['hcpcs_release']}"
    if f["cpt_short_descriptor"]:
        return descriptor_label(f["cpt_short_descriptor_release"])
    return ""


def code_match(match: Match) -> Any:
    """A SearchCodes match."""
    from ..v1 import code_rules_service_pb2

    return code_rules_service_pb2.CodeMatch(
        code=match.code, score=match.score, matched_text=match.matched_text,
        matched_field=match.matched_field, category=category_enum(match.category),
        descriptor=match.descriptor)


_OUTCOMES = {name: code_pb2.AnswerOutcome.Value(f"ANSWER_OUTCOME_{name}")
             for name in ("ANSWERED", "CODE_NOT_FOUND", "NEED_CODE", "MALFORMED_CODE", "NOT_UNDERSTOOD")}


def answer(result: AnswerResult) -> code_pb2.Answer:
    message = code_pb2.Answer(
        text=result.text, intent=result.intent, code=result.code, outcome=_OUTCOMES[result.outcome],
        confidence=result.confidence, codes=result.codes, runner_up_intent=result.runner_up,
        malformed_codes=result.malformed, matched_phrasings=result.matched, question=result.question,
        fee_schedule_release=result.fee_schedule_release, covers_date_of_service=result.covers_date_of_service,
        topic=result.topic)
    message.candidates.extend(code_pb2.CodeCandidate(code=m.code, score=m.score, why=m.why,
                                                     descriptor=m.descriptor) for m in result.candidates)
    if result.provenance is not None:
        message.provenance.CopyFrom(provenance(result.provenance))
    if result.date_of_service:
        message.date_of_service.CopyFrom(to_date(result.date_of_service))
    return message


def ruleset(rules: Ruleset, sources: list[DataSource], code_count: int) -> code_pb2.Ruleset:
    message = code_pb2.Ruleset(
        revision=rules.revision, rule_files=list(rules.files), rule_count=len(rules.rules),
        code_count=code_count, template_count=len(rules.templates),
        phrasing_count=len(rules.phrasebook.cues), rules_source=Path(rules.root).name,
        version=version())
    message.load_time.FromDatetime(rules.loaded_at)
    message.data_releases.extend(data_release(s) for s in sources)
    return message


def locality(info: LocalityInfo) -> code_pb2.Locality:
    loc = info.locality
    return code_pb2.Locality(id=loc.id, mac=loc.mac, locality_number=loc.number, name=loc.name,
                             state=loc.state, counties=info.counties, gpci_year=info.gpci_year,
                             work_gpci=loc.work_gpci if info.gpci_year else 0.0,
                             pe_gpci=loc.pe_gpci if info.gpci_year else 0.0,
                             mp_gpci=loc.mp_gpci if info.gpci_year else 0.0,
                             anesthesia_conversion_factor=info.anesthesia_conversion_factor)


def locality_payment(f: dict[str, Any]) -> code_pb2.LocalityPayment:
    """The locality facts and the amounts the locality rules computed."""
    return code_pb2.LocalityPayment(
        locality=code_pb2.Locality(
            id=f["locality_id"], mac=f["locality_mac"], locality_number=f["locality_number"],
            name=f["locality_name"], state=f["locality_state"], counties=f["locality_counties"],
            gpci_year=f["gpci_year"], work_gpci=f["locality_work_gpci"], pe_gpci=f["locality_pe_gpci"],
            mp_gpci=f["locality_mp_gpci"], anesthesia_conversion_factor=f["anesthesia_conversion_factor"]),
        zip_code=f["locality_zip"], rural_indicator=f["locality_rural"],
        status=f["locality_payment_status"], release=f["pfs_release"],
        conversion_factor=f["conversion_factor"], gpci_source=f["gpci_release"],
        non_facility_amount=f["locality_non_facility_payment"], facility_amount=f["locality_facility_payment"],
        non_facility_uncapped=f["locality_non_facility_uncapped"],
        facility_uncapped=f["locality_facility_uncapped"],
        opps_cap_applied_non_facility=f["opps_cap_applied_non_facility"],
        opps_cap_applied_facility=f["opps_cap_applied_facility"], opps_cap_source=f["opps_cap_release"],
        non_participating_non_facility=f["non_participating_non_facility"] if f["payment_basis"] == "locality" else 0.0,
        non_participating_facility=f["non_participating_facility"] if f["payment_basis"] == "locality" else 0.0,
        limiting_charge_non_facility=f["limiting_charge_non_facility"] if f["payment_basis"] == "locality" else 0.0,
        limiting_charge_facility=f["limiting_charge_facility"] if f["payment_basis"] == "locality" else 0.0)


def payment_policy(f: dict[str, Any]) -> code_pb2.PaymentPolicy:
    """The row's indicators with the meanings and amounts the policy rules set."""
    ind = code_pb2.PolicyIndicator
    return code_pb2.PaymentPolicy(
        amount_basis=f["payment_basis"],
        multiple_procedure=ind(indicator=f["mult_proc_indicator"], rule=f["multiple_procedure_rule"],
                               meaning=f["multiple_procedure_meaning"],
                               percent=f["multiple_procedure_subsequent_percent"],
                               non_facility_amount=f["multiple_procedure_subsequent_non_facility"],
                               facility_amount=f["multiple_procedure_subsequent_facility"]),
        endoscopic_base_code=f["endoscopic_base_code"],
        bilateral_surgery=ind(indicator=f["bilateral_indicator"], rule=f["bilateral_rule"],
                              meaning=f["bilateral_meaning"], percent=f["bilateral_percent"],
                              non_facility_amount=f["bilateral_non_facility_amount"],
                              facility_amount=f["bilateral_facility_amount"]),
        assistant_at_surgery=ind(indicator=f["assistant_indicator"], rule=f["assistant_rule"],
                                 meaning=f["assistant_meaning"],
                                 percent=16.0 if f["assistant_rule"] in ("paid", "with_documentation") else 0.0,
                                 non_facility_amount=f["assistant_non_facility_amount"],
                                 facility_amount=f["assistant_facility_amount"],
                                 non_physician_non_facility_amount=f["assistant_npp_non_facility_amount"],
                                 non_physician_facility_amount=f["assistant_npp_facility_amount"]),
        co_surgeons=ind(indicator=f["co_surgeon_indicator"], rule=f["co_surgeon_rule"],
                        meaning=f["co_surgeon_meaning"],
                        percent=62.5 if f["co_surgeon_rule"] in ("permitted", "with_documentation") else 0.0,
                        non_facility_amount=f["co_surgeon_non_facility_amount"],
                        facility_amount=f["co_surgeon_facility_amount"]),
        team_surgery=ind(indicator=f["team_surgery_indicator"], rule=f["team_surgery_rule"],
                         meaning=f["team_surgery_meaning"]),
        physician_supervision=ind(indicator=f["supervision_indicator"], meaning=f["supervision_meaning"]),
        diagnostic_imaging_family=ind(indicator=f["imaging_family_indicator"],
                                      meaning=f["imaging_family_meaning"]),
        pre_op_share=f["pre_op_share"], intra_op_share=f["intra_op_share"], post_op_share=f["post_op_share"],
        surgical_care_only=ind(indicator="54", percent=round(f["intra_op_share"] * 100, 2),
                               non_facility_amount=f["surgical_care_only_non_facility"],
                               facility_amount=f["surgical_care_only_facility"]),
        postoperative_care_only=ind(indicator="55", percent=round(f["post_op_share"] * 100, 2),
                                    non_facility_amount=f["postoperative_only_non_facility"],
                                    facility_amount=f["postoperative_only_facility"]),
        preoperative_care_only=ind(indicator="56", percent=round(f["pre_op_share"] * 100, 2),
                                   non_facility_amount=f["preoperative_only_non_facility"],
                                   facility_amount=f["preoperative_only_facility"]))
