"""Every global row of the real RVU25D file gets an RVU answer that agrees with its status and values."""

import csv
import datetime as dt

DOS = dt.date(2025, 11, 1)


def expected_availability(status: str, not_used: str, total: float) -> str:
    """An oracle written from CMS's status definitions, independent of the rule files."""
    if status in {"A", "T"} and total > 0:
        return "national" if status == "A" else "conditional"
    if status == "R":
        return "conditional" if total > 0 else "contractor_priced"
    if status == "C":
        return "contractor_priced"
    if not_used == "+" or total > 0:
        return "not_used_for_payment"
    return "none"


def test_every_global_row(engine, cms_dir):
    with (cms_dir / "PPRRVU2025_Oct.csv").open(newline="") as handle:
        rows = [r for r in list(csv.reader(handle))[10:] if r and not r[1]]
    assert len(rows) == 16851
    template = engine.ruleset.templates["rvu"]
    from cptrules.answers.templates import render

    mismatches = []
    for row in rows:
        code, status, not_used, nf_na, f_na = row[0], row[3], row[4], row[7] == "NA", row[9] == "NA"
        work, nf_total, f_total, cf = float(row[5]), float(row[11]), float(row[12]), float(row[24])
        facts = engine.get_code(code, DOS).facts
        want = expected_availability(status, not_used, nf_total + f_total)
        text = render(template, facts)
        problems = []
        if facts["status_indicator"] != status or facts["rvu_availability"] != want:
            problems.append(f"{facts['status_indicator']} {facts['rvu_availability']} != {status} {want}")
        if facts["work_rvu"] != work or facts["non_facility_total_rvu"] != nf_total:
            problems.append("values differ")
        if f"status {status}" not in text or "RVU25D" not in text:
            problems.append("text does not name status and release")
        if want in {"national", "conditional"}:
            shown = [work] + ([] if nf_na else [nf_total]) + ([] if f_na else [f_total])
            if any(f"{value:.2f}" not in text for value in shown):
                problems.append("text lacks the RVU values")
            amount = f"${round(nf_total * cf + 1e-9, 2):,.2f}"
            if not nf_na and amount not in text:
                problems.append(f"text lacks the payment {amount}")
            if nf_na and (facts["non_facility_payment"] != 0 or "non-facility setting NA" not in text
                          or amount.replace("$", "") + " non-facility" in text):
                problems.append("a non-facility amount is quoted for an NA setting")
        elif want == "contractor_priced":
            if "No national RVUs" not in text:
                problems.append("contractor-priced text")
        elif want == "not_used_for_payment":
            if "does not pay from them" not in text:
                problems.append("unused RVU text")
        elif not text.startswith("No RVUs."):
            problems.append("no-RVU text")
        if problems:
            mismatches.append((code, problems, text[:160]))
    assert mismatches == []
