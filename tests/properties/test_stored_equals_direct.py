"""The bytes the server keeps per date class are, for every day, the bytes a direct evaluation
builds and serialises for that day: every code (a stratified sample by default, all under the
slow test) at each boundary of its timeline, the days either side and days inside each class,
with a priced modifier and with a place for some."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from cptrules.engine import CodeReport, Engine
from cptrules.errors import InvalidInputError
from cptrules.evaluate import evaluate
from cptrules.provenance import Provenance
from cptrules.server import convert
from cptrules.server.servicer import CodeRulesServicer
from cptrules.v1 import code_rules_service_pb2 as svc

ONE = dt.timedelta(days=1)


def _dates(engine: Engine, code: str) -> list[dt.date]:
    """The code's class boundaries, the days either side, a day inside each class, and days
    far before and after."""
    timeline = engine.snapshot.timeline
    edges = set(timeline.bounds)
    for anchor in [*timeline.bounds, engine.clock().isoformat()]:
        facts = engine.get_code(code, dt.date.fromisoformat(anchor)).facts
        for plan in timeline.plans or ():
            edges |= {facts[n] for n in plan.compared if facts[n]} | set(plan.literals)
    days = sorted(dt.date.fromisoformat(e) for e in edges)
    around = {d + k * ONE for d in days for k in (-1, 0, 1)}
    inside = {a + (b - a) / 3 for a, b in zip(days, days[1:])} | {a + (b - a) * 2 / 3 for a, b in zip(days, days[1:])}
    served = (dt.date(1990, 1, 1), dt.date(2100, 12, 31))
    return sorted(d for d in around | inside | {days[0] - 400 * ONE, days[-1] + 400 * ONE}
                  if served[0] <= d <= served[1])


def _direct(engine: Engine, plain, code: str, day: dt.date, modifier: str = "", zip_code: str = "") -> bytes:
    """The Code message for a day, evaluated without any cache and serialised; b"" when the
    release in force has no row for the modifier."""
    data = engine.snapshot.data
    place = data.localities.resolve(zip_code, "")
    base, used = data.base_facts(code, day, modifier, place)
    evaluation = evaluate(plain, base)
    if modifier and evaluation.facts["pfs_row_modifier"] != modifier:
        return b""
    report = CodeReport(code, evaluation.facts, evaluation,
                        Provenance(evaluation.fired, tuple(used), plain.revision, day.isoformat()))
    return convert.code(report).SerializeToString(deterministic=True)


def _sample(engine: Engine) -> list[str]:
    """Codes of every category and source: every 400th code of each category, a quarter of the
    catalogue's codes and codes known for lifecycles (sunset, replaced, terminated)."""
    snap = engine.snapshot
    codes = {c for category in snap.index_categories().values() for c in category[::400]}
    codes |= set(sorted(snap.data.catalogue.entries)[::4]) | {"0042T", "J0171", "C9088", "70472", "0556T", "86153"}
    return sorted(c for c in codes if snap.data.knows(c))


def _via_reports(engine: Engine, plain, code: str, day: dt.date, modifier: str = "", zip_code: str = "") -> bytes:
    """The Code message built from the engine's report for the day (whose equality with direct
    evaluation test_cached_equals_direct checks for every code) and serialised."""
    return convert.code(engine.get_code(code, day, modifier, zip_code)).SerializeToString(deterministic=True)


def _compare(engine: Engine, codes: list[str], variants: list[tuple[str, str, str]] = (),
             reference=_direct) -> int:
    servicer = CodeRulesServicer(engine)
    plain = replace(engine.ruleset, memo={}, date_plans={t.name: None for t in engine.ruleset.tables})
    checked = 0
    for code, modifier, zip_code in [(c, "", "") for c in codes] + list(variants):
        for day in _dates(engine, code):
            request = svc.GetCodeRequest(code=code, modifier=modifier, zip_code=zip_code)
            request.date_of_service.year, request.date_of_service.month, request.date_of_service.day = \
                day.year, day.month, day.day
            try:
                stored = servicer._get_code(request)
            except InvalidInputError as error:
                assert error.reason == "MODIFIER_NOT_PRICED"
                stored = b""
            assert stored == reference(engine, plain, code, day, modifier, zip_code), (code, modifier, zip_code, day)
            checked += 1
    return checked


def test_stored_code_bytes_equal_direct_evaluation_on_a_stratified_sample(engine):
    variants = [("71046", "26", ""), ("71046", "TC", ""), ("99213", "", "10001"), ("27447", "", "77030")]
    assert _compare(engine, _sample(engine), variants) > 2000


def test_a_batch_and_a_page_are_the_stored_codes_in_order(engine):
    """BatchGetCodes and ListCodes assemble stored pieces into exactly the response message."""
    servicer = CodeRulesServicer(engine)
    codes = ["0556T", "99213", "G0439", "71046", "0042T"]
    request = svc.BatchGetCodesRequest(codes=codes)
    request.date_of_service.year, request.date_of_service.month, request.date_of_service.day = 2025, 11, 3
    direct = svc.BatchGetCodesResponse(codes=[convert.code(r) for r in engine.batch_get(codes, dt.date(2025, 11, 3))])
    assert servicer._batch_get_codes(request) == direct.SerializeToString(deterministic=True)
    first = svc.ListCodesResponse.FromString(servicer._list_codes(svc.ListCodesRequest(page_size=7)))
    page = engine.list_codes(7)
    assert [c.code for c in first.codes] == [r.code for r in page.reports] and first.next_page_token
    second = servicer._list_codes(svc.ListCodesRequest(page_size=7, page_token=first.next_page_token))
    page = engine.list_codes(7, page.next_after)
    expected = svc.ListCodesResponse(codes=[convert.code(r) for r in page.reports], total_size=page.total,
                                     next_page_token=servicer._next_token(page.next_after, "", page.revision))
    assert second == expected.SerializeToString(deterministic=True)


@pytest.mark.slow
def test_stored_code_bytes_equal_the_built_message_for_every_code(engine):
    """Every code at every class: stored bytes against the message built from the report for
    the day (reports equal direct evaluation: test_cached_equals_direct's slow test)."""
    print(f"{_compare(engine, list(engine.snapshot.codes), reference=_via_reports)} responses compared")
