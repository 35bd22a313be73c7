"""The locality options of the command line."""

from pathlib import Path

from cptrules.cli import main
from cptrules.data.files import read_json_gz


def test_explain_with_a_zip_code(capsys):
    assert main(["explain", "99213", "--zip", "10001", "--date", "2025-11-01"]) == 0
    out = capsys.readouterr().out
    assert "locality_non_facility_payment = 101.06" in out and "locality_name = 'MANHATTAN'" in out
    assert "locality_payment.yaml:" in out


def test_explain_with_an_unknown_locality_fails_precisely(capsys):
    assert main(["explain", "99213", "--locality", "99999-99"]) == 1
    assert "'99999-99' is not a Medicare payment locality" in capsys.readouterr().err


def test_import_locality_checks_every_file_before_writing_any(cms_dir, tmp_path, capsys):
    src = cms_dir / "locality"
    damaged = tmp_path / "ANES2025.csv"
    damaged.write_text((src / "ANES2025.csv").read_text().replace("27.86", "27,86", 1))
    assert main(["import-locality", str(src / "GPCI2026.csv"), str(damaged), "--data-dir", str(tmp_path / "d")]) == 1
    assert "ANES2025.csv:3" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    assert main(["import-locality", str(src / "GPCI2026.csv"), str(src / "OPPSCAP_Oct.csv"), "--year", "2025",
                 "--data-dir", str(tmp_path / "d")]) == 0
    written = sorted(p.name for p in Path(tmp_path / "d" / "locality").iterdir())
    assert written == ["GPCI2026.json.gz", "OPPSCAP_OCT2025.json.gz"]
    assert read_json_gz(tmp_path / "d" / "locality" / "GPCI2026.json.gz")["year"] == 2026


def test_the_gpci_year_follows_the_release_year(cms_dir, tmp_path):
    """A 2026 release prices with 2026 GPCIs once they are imported, and with none before."""
    import datetime as dt

    from cptrules.data.pfs import import_pfs_csv, write_release
    from cptrules.engine import Engine

    data = tmp_path / "data"
    write_release(import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv", partial=True), data)
    day = dt.date(2026, 10, 15)
    without = Engine.load(data_dirs=[data], check_data=False, clock=lambda: day)
    facts = without.get_code("99213", day, locality="13202-01").facts
    assert (facts["pfs_release"], facts["locality_payment_status"], facts["gpci_year"]) == ("RVU26D", "no_gpci_for_year", 0)
    assert facts["payable_non_facility"] == 0.0  # a named place never falls back to national figures
    assert main(["import-locality", str(cms_dir / "locality" / "GPCI2026.csv"), "--data-dir", str(data)]) == 0
    facts = Engine.load(data_dirs=[data], check_data=False, clock=lambda: day).get_code(
        "99213", day, locality="13202-01").facts
    assert (facts["gpci_year"], facts["gpci_release"], facts["locality_payment_status"]) == (2026, "GPCI2026", "priced")
    work, pe, mp = facts["locality_work_gpci"], facts["locality_pe_gpci"], facts["locality_mp_gpci"]
    expected = (facts["work_rvu"] * work + facts["non_facility_pe_rvu"] * pe + facts["mp_rvu"] * mp) * facts["conversion_factor"]
    assert abs(facts["locality_non_facility_payment"] - expected) < 0.006 and facts["conversion_factor"] == 33.4009
    # A 2025 date still uses the 2025 GPCIs shipped with the default install.
    old = Engine.load(data_dirs=[data], check_data=False, clock=lambda: day).get_code(
        "99213", dt.date(2025, 11, 1), locality="13202-01").facts
    assert (old["gpci_year"], old["locality_non_facility_payment"]) == (2025, 101.06)
