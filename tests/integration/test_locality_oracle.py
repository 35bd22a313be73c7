"""CMS's own computed amounts for 76145 in every locality (PFREV25C.txt), reproduced to the
cent by the default install: GPCIs from the embedded GPCI2025, formula from the rules."""

from __future__ import annotations

import csv
import datetime as dt

ON = dt.date(2025, 11, 1)


def test_every_locality_amount_for_76145(engine, cms_dir):
    rows = [r for r in csv.reader((cms_dir / "locality" / "PFREV25C.txt").read_text().splitlines())
            if not r[0].startswith("TRL-")]  # the AMA/ADA trailer lines
    assert len(rows) == 109
    wrong = []
    for year, carrier, locality, code, _mod, non_facility, _facility, *_ in rows:
        assert (year, code) == ("2025", "76145")
        report = engine.get_code(code, ON, locality=f"{carrier}-{locality}")
        got = report.facts["locality_non_facility_payment"]
        if round(got, 2) != float(non_facility):
            wrong.append((carrier, locality, float(non_facility), got))
    assert not wrong, wrong


def test_the_amount_comes_from_the_rules(engine):
    report = engine.get_code("76145", ON, locality="01112-05")
    fired = [f.rule.id for f in report.evaluation.fired_in("locality_payment")]
    assert fired == ["locality-gpci-adjusted"]
    assert report.facts["locality_non_facility_payment"] == 1339.81
    assert report.facts["facility_na"] and report.facts["locality_facility_payment"] == 0.0
