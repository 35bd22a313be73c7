"""Codes over time: several fee-schedule releases, HCPCS terminations, Category III replacement,
release diffs, and imports that are refused without changing what is served."""

import datetime as dt

import pytest

from cptrules.cli import main
from cptrules.data.pfs import import_pfs_csv, write_release
from cptrules.engine import Engine
from cptrules.errors import DataImportError

CLOCK = lambda: dt.date(2026, 11, 27)  # noqa: E731


@pytest.fixture(scope="module")
def data_2026(tmp_path_factory, cms_dir):
    folder = tmp_path_factory.mktemp("data2026")
    write_release(import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv", partial=True), folder)
    return folder


@pytest.fixture(scope="module")
def engine_2026(data_2026):
    return Engine.load(data_dirs=[data_2026], check_data=False, clock=CLOCK)


def test_date_of_service_picks_the_release(engine_2026):
    old = engine_2026.get_code("27447", dt.date(2025, 11, 15))
    new = engine_2026.get_code("27447", dt.date(2026, 10, 15))
    assert (old.facts["work_rvu"], old.facts["pfs_release"]) == (19.60, "RVU25D")
    assert (new.facts["work_rvu"], new.facts["pfs_release"]) == (19.11, "RVU26D")
    assert {s.key for s in new.provenance.sources} >= {"RVU26D"}
    text = engine_2026.render("rvu", new)
    assert "RVU26D" in text and "19.11" in text and "$33.4009" in text and "October 1, 2026" in text


def test_no_release_covers_the_date(engine_2026):
    early = engine_2026.get_code("27447", dt.date(2025, 3, 1))
    assert early.facts["rvu_availability"] == "no_release"
    text = engine_2026.render("rvu", early)
    assert text.startswith("No loaded Medicare fee schedule release speaks for March 1, 2025")
    assert "For reference" not in text  # no release before the date lists it
    # RVU25D prices 2025 only: a mid-2026 date before RVU26D is not silently answered from it.
    gap = engine_2026.get_code("27447", dt.date(2026, 5, 1))
    assert gap.facts["rvu_availability"] == "no_release"


def test_hcpcs_termination_dates(engine):
    j2310 = engine.get_code("J2310", dt.date(2025, 8, 1))  # J0171 ends the same day but has a curated replacement
    assert j2310.facts["code_status"] == "terminated"
    assert "June 30, 2025" in engine.render("status", j2310)
    assert engine.get_code("J2310", dt.date(2025, 6, 30)).facts["code_status"] == "active"
    c9088 = engine.get_code("C9088")
    assert c9088.facts["hcpcs_termination_date"] == "2025-09-30"
    assert c9088.facts["code_status"] == "terminated"


def test_hcpcs_description_and_fee_schedule_together(engine):
    g0439 = engine.get_code("G0439", dt.date(2025, 11, 1))
    assert g0439.facts["hcpcs_long_description"].lower().startswith("annual wellness visit")
    assert g0439.facts["status_indicator"] == "A" and g0439.facts["work_rvu"] == 1.92
    assert {"HCPC2025_OCT", "RVU25D"} <= {s.key for s in g0439.provenance.sources}


def test_hcpcs_code_off_the_fee_schedule_says_why(engine):
    e0100 = engine.get_code("E0100", dt.date(2025, 11, 1))
    assert e0100.facts["on_hcpcs_file"] and not e0100.facts["on_fee_schedule"]
    text = engine.render("rvu", e0100)
    assert "not on the Medicare Physician Fee Schedule" in text


def test_0042T_answers_by_date_of_service(engine):
    before = engine.answer("is 0042T still valid?", dt.date(2025, 12, 31))
    after = engine.answer("is 0042T still valid?", dt.date(2026, 1, 1))
    assert before.text != after.text
    assert "70472" in after.text and "70473" in after.text and "replaced" in after.text
    assert after.provenance and any(f.rule.id == "replaced-on-date" for f in after.provenance.fired)
    stated = engine.answer("is 0042T active for 2026 DOS")
    assert stated.date_of_service.startswith("2026") and "replaced" in stated.text


def test_diff_lists_27447_and_its_answers(data_2026, capsys):
    assert main(["diff", "RVU25D", "RVU26D", "--data-dir", str(data_2026), "--threshold", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "27447:" in out and "work RVU 19.60 → 19.11" in out and "answer 'rvu' changes" in out
    assert main(["diff", "RVU25D", "RVU26D", "--data-dir", str(data_2026), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    change = next(c for c in report["changed"] if c["code"] == "27447")
    assert change["rvus"]["work RVU"] == {"old": 19.6, "new": 19.11}


@pytest.mark.parametrize("damage", ["truncate", "drop_column", "bad_number"])
def test_refused_import_leaves_answers_unchanged(tmp_path, cms_dir, damage):
    data = tmp_path / "data"
    source = cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv"
    write_release(import_pfs_csv(source, partial=True), data)
    before_bytes = (data / "pfs" / "RVU26D.json.gz").read_bytes()
    engine = Engine.load(data_dirs=[data], check_data=False, clock=CLOCK)
    questions = ["what is the wRVU for 27447", "is 0556T permanent", "G0439 rvu"]
    before = [engine.answer(q).text for q in questions]

    lines = source.read_bytes().split(b"\r\n")
    if damage == "truncate":
        lines = lines[:12] + [lines[12][:30]]
    elif damage == "drop_column":
        lines = [b",".join(c for i, c in enumerate(l.split(b",")) if i != 5) for l in lines]
    else:
        cells = lines[11].split(b",")
        cells[5] = b"19.1x"
        lines[11] = b",".join(cells)
    broken = tmp_path / "PPRRVU2026_Oct_nonQPP.csv"
    broken.write_bytes(b"\r\n".join(lines))
    assert main(["import-pfs", str(broken), "--partial", "--data-dir", str(data)]) == 1
    with pytest.raises(DataImportError):
        import_pfs_csv(broken, partial=True)
    assert (data / "pfs" / "RVU26D.json.gz").read_bytes() == before_bytes
    engine.reload()
    assert [engine.answer(q).text for q in questions] == before


def test_a_correction_release_replaces_its_quarter(tmp_path, cms_dir):
    """An AR-style correction (RVU26DR) takes effect with its quarter and wins over the original."""
    source = cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv"
    corrected = tmp_path / "PPRRVU2026_Oct_corrected.csv"
    corrected.write_bytes(source.read_bytes().replace(b",19.11,11.58,NA,11.58,,4.02,34.71,34.71,",
                                                      b",19.15,11.58,NA,11.58,,4.02,34.75,34.75,"))
    data = tmp_path / "data"
    write_release(import_pfs_csv(source, partial=True), data)
    write_release(import_pfs_csv(corrected, release="RVU26DR", partial=True), data)
    engine = Engine.load(data_dirs=[data], check_data=False, clock=CLOCK)
    report = engine.get_code("27447", dt.date(2026, 11, 1))
    assert (report.facts["pfs_release"], report.facts["work_rvu"]) == ("RVU26DR", 19.15)


def test_codes_absent_from_a_partial_release_are_unknown_for_its_period(engine_2026):
    """RVU26D here is an 11-row excerpt imported with --partial: it speaks for its own codes only."""
    listed = engine_2026.get_code("27447", dt.date(2026, 10, 15)).facts
    assert listed["pfs_covers_date"] and listed["pfs_release"] == "RVU26D"
    for code in ("0556T", "G0439"):
        report = engine_2026.get_code(code, dt.date(2026, 10, 15))
        f = report.facts
        assert (f["pfs_release_in_force"], f["pfs_partial"], f["pfs_covers_date"]) == ("RVU26D", True, False)
        assert f["pfs_release"] == "RVU25D"  # the newest release that lists it, for reference
        assert f["code_status"] == "no_data_for_date" and f["rvu_availability"] == "no_release"
        for intent in ("rvu", "status", "coverage", "billing", "what_is"):
            text = engine_2026.render(intent, report)
            assert "partial excerpt without it" in text, (code, intent)
            assert "no longer lists" not in text and "not on the" not in text, (code, intent)
            assert "past sunset" not in text.lower()
