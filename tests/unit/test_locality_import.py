"""The locality importers against the real CMS files, and their refusals."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cptrules.data.locality import LocalityData, import_locality_file, write_locality_file
from cptrules.errors import DataImportError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {"GPCI2025.csv": "GPCI2025", "25LOCCO.csv": "LOCCO2025", "ANES2025.csv": "ANES2025",
           "OPPSCAP_Oct.csv": "OPPSCAP_OCT2025", "ZIP5_OCT2025.txt": "ZIP5_20254"}


@pytest.fixture(scope="module")
def loc_dir(cms_dir: Path) -> Path:
    return cms_dir / "locality"


def _import(path: Path):
    return import_locality_file(path, 2025 if path.name.startswith("OPPSCAP") else None)


@pytest.mark.parametrize("name,key", sorted(SHIPPED.items()))
def test_shipped_files_are_the_importer_output(loc_dir, tmp_path, name, key):
    """data/locality/ holds exactly what the importers make from CMS's files, byte for byte."""
    written = write_locality_file(_import(loc_dir / name), tmp_path)
    assert written.name == f"{key}.json.gz"
    assert written.read_bytes() == (REPO / "data" / "locality" / written.name).read_bytes()
    assert write_locality_file(_import(loc_dir / name), tmp_path).read_bytes() == written.read_bytes()


def test_shipped_files_stay_small():
    sizes = {p.name: p.stat().st_size for p in (REPO / "data" / "locality").glob("*.json.gz")}
    assert sizes and all(size < 200_000 for size in sizes.values()), sizes


def test_each_file_is_recognised_by_its_header(loc_dir):
    kinds = {name: _import(loc_dir / name).kind for name in SHIPPED}
    assert kinds == {"GPCI2025.csv": "gpci", "25LOCCO.csv": "locco", "ANES2025.csv": "anes",
                     "OPPSCAP_Oct.csv": "oppscap", "ZIP5_OCT2025.txt": "zip5"}
    assert import_locality_file(loc_dir / "GPCI2026.csv").key == "GPCI2026"


def test_contents(loc_dir, tmp_path):
    for name in [*SHIPPED, "GPCI2026.csv"]:
        write_locality_file(_import(loc_dir / name), tmp_path)
    data = LocalityData.load_folder(tmp_path)
    assert len(data.gpci[2025]) == len(data.gpci[2026]) == 109
    manhattan = data.gpci[2025]["13202-01"]
    assert (manhattan.name, manhattan.work_gpci, manhattan.pe_gpci, manhattan.mp_gpci) == ("MANHATTAN", 1.065, 1.166, 1.656)
    assert data.gpci[2025]["02102-01"].name == "ALASKA"  # the footnote star is not part of the name
    assert len(data.zips) == 42956
    assert data.zips["10001"].locality == "13202-01" and not data.zips["10001"].needs_plus_four
    assert data.zips["77030"].locality == "04412-18"
    assert sum(z.needs_plus_four for z in data.zips.values()) == 580
    assert ("TEXAS", "HOUSTON", "HARRIS") in data.counties["04412-18"]
    assert data.anes[2025]["13202-01"] == 22.76
    assert data.caps[2025][("0633T", "TC")]["01112-05"] == (150.69, 150.69)


def _damaged(src: Path, tmp_path: Path, change) -> Path:
    lines = src.read_text().split("\n")
    change(lines)
    out = tmp_path / src.name
    out.write_text("\n".join(lines))
    return out


def _refusal(path: Path, year=None) -> DataImportError:
    with pytest.raises(DataImportError) as caught:
        import_locality_file(path, year)
    return caught.value


def test_refuses_damaged_gpci(loc_dir, tmp_path):
    def change(lines):
        lines[10] = lines[10].replace(",0.", ",x.", 1)
    error = _refusal(_damaged(loc_dir / "GPCI2025.csv", tmp_path, change))
    assert error.problem.line == 11 and "GPCI" in error.problem.column and "not a number" in error.message


def test_refuses_truncated_gpci_row(loc_dir, tmp_path):
    def change(lines):
        lines[20] = ",".join(lines[20].split(",")[:5])
    error = _refusal(_damaged(loc_dir / "GPCI2025.csv", tmp_path, change))
    assert error.problem.line == 21 and "truncated" in error.message


def test_refuses_extra_field(loc_dir, tmp_path):
    def change(lines):
        lines[30] += ",oops"
    error = _refusal(_damaged(loc_dir / "GPCI2025.csv", tmp_path, change))
    assert error.problem.line == 31 and "damaged row" in error.message


def test_refuses_duplicate_locality(loc_dir, tmp_path):
    def change(lines):
        lines.insert(6, lines[5])
    assert _refusal(_damaged(loc_dir / "GPCI2025.csv", tmp_path, change)).problem.line == 7


def test_refuses_damaged_zip_record(loc_dir, tmp_path):
    def change(lines):
        lines[99] = lines[99][:7] + "0A102" + lines[99][12:]
    error = _refusal(_damaged(loc_dir / "ZIP5_OCT2025.txt", tmp_path, change))
    assert (error.problem.line, error.problem.column) == (100, "Carrier")


def test_refuses_bad_plus_four_flag(loc_dir, tmp_path):
    def change(lines):
        lines[4] = lines[4][:20] + "7" + lines[4][21:]
    error = _refusal(_damaged(loc_dir / "ZIP5_OCT2025.txt", tmp_path, change))
    assert (error.problem.line, error.problem.column) == (5, "Plus Four Flag")


def test_refuses_damaged_cap_price(loc_dir, tmp_path):
    def change(lines):
        lines[300] = lines[300].rsplit(",", 1)[0] + ",12..5"
    error = _refusal(_damaged(loc_dir / "OPPSCAP_Oct.csv", tmp_path, change), 2025)
    assert error.problem.line == 301 and error.problem.column == "NON-FACILTY PRICE"


def test_cap_file_needs_a_year(loc_dir, tmp_path):
    copy = tmp_path / "caps.csv"
    copy.write_bytes((loc_dir / "OPPSCAP_Oct.csv").read_bytes())
    assert "--year" in _refusal(copy).message


def test_refuses_damaged_county_and_anesthesia_rows(loc_dir, tmp_path):
    def county(lines):
        lines[4] = lines[4].replace("10112", "1O112")
    assert _refusal(_damaged(loc_dir / "25LOCCO.csv", tmp_path, county)).problem.line == 5

    def anes(lines):
        lines[2] = lines[2].replace("27.86", "n/a")
    assert _refusal(_damaged(loc_dir / "ANES2025.csv", tmp_path, anes)).problem.line == 3


def test_refuses_unknown_file(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    assert "not a CMS locality file" in _refusal(path).message


def test_a_refused_import_changes_nothing(loc_dir, tmp_path):
    data_dir = tmp_path / "data"
    target = write_locality_file(_import(loc_dir / "GPCI2025.csv"), data_dir)
    before = target.read_bytes()

    def change(lines):
        lines[31] = lines[31].replace(",", ";")
    damaged = _damaged(loc_dir / "GPCI2025.csv", tmp_path, change)
    with pytest.raises(DataImportError):
        write_locality_file(import_locality_file(damaged), data_dir)
    assert target.read_bytes() == before
    assert json.loads(gzip.decompress(before))["kind"] == "gpci"
