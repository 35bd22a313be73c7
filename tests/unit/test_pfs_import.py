"""The PPRRVU importer against the real CMS files, and its refusals."""

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cptrules.data.pfs import FIELDS, PfsRelease, import_pfs_csv, release_effective, write_release
from cptrules.errors import DataImportError

REPO = Path(__file__).resolve().parents[2]


def test_release_keys():
    assert str(release_effective("RVU25D")) == "2025-10-01"
    assert str(release_effective("RVU26A")) == "2026-01-01"
    assert str(release_effective("RVU26AR")) == "2026-01-01"
    with pytest.raises(ValueError):
        release_effective("RVU26E")


def test_imports_october_2025(cms_dir):
    imported = import_pfs_csv(cms_dir / "PPRRVU2025_Oct.csv")
    payload = imported.payload
    assert payload["release"] == "RVU25D"
    assert payload["released"] == "2025-09-11"
    assert payload["effective"] == "2025-10-01"
    assert payload["conversion_factor"] == 32.3465
    assert len(payload["rows"]) == 19090
    assert payload["sha256"] == "8af460f38bf982b79b07269fbc8b7256a8ef3bd3aa025a9c5cb71c1e52523c56"
    assert "DESCRIPTION" not in json.dumps(payload["fields"]) and "description" not in payload["fields"]


def test_embedded_release_is_the_importer_output(cms_dir, tmp_path):
    """The shipped data file is exactly what the importer makes from the CMS file."""
    write_release(import_pfs_csv(cms_dir / "PPRRVU2025_Oct.csv"), tmp_path)
    shipped = REPO / "data" / "pfs" / "RVU25D.json.gz"
    assert gzip.decompress((tmp_path / "pfs" / "RVU25D.json.gz").read_bytes()) == \
        gzip.decompress(shipped.read_bytes())


def test_no_ama_descriptor_ships(cms_dir):
    """No DESCRIPTION cell of the CMS file appears in any shipped data file."""
    import csv

    descriptors = set()
    with (cms_dir / "PPRRVU2025_Oct.csv").open(newline="") as handle:
        for row in list(csv.reader(handle))[10:]:
            if row[0][:1].isdigit() and len(row[2]) > 12:
                descriptors.add(row[2])
    shipped = "".join(gzip.decompress(p.read_bytes()).decode() for p in (REPO / "data").rglob("*.gz")
                      if "pfs" in p.parts)
    shipped += (REPO / "data" / "catalogue.yaml").read_text()
    leaked = [d for d in descriptors if d in shipped]
    assert leaked == []


def test_imports_2026_layout(cms_dir):
    october = import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv", partial=True)
    assert october.key == "RVU26D" and october.payload["conversion_factor"] == 33.4009
    july = import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Jul_nonQPP.excerpt.redacted.csv", partial=True)
    assert july.key == "RVU26C"
    rows = {r[0]: r for r in october.payload["rows"] if not r[1]}
    fields = october.payload["fields"]
    assert rows["27447"][fields.index("work")] == 19.11
    assert "pric" in fields


def _damaged(cms_dir, tmp_path, change):
    lines = (cms_dir / "PPRRVU2025_Oct.csv").read_bytes().split(b"\r\n")
    lines = change(lines)
    path = tmp_path / "damaged.csv"
    path.write_bytes(b"\r\n".join(lines))
    return path


def test_refuses_truncated_row(cms_dir, tmp_path):
    path = _damaged(cms_dir, tmp_path, lambda ls: ls[:500] + [ls[500][:40]])
    with pytest.raises(DataImportError) as caught:
        import_pfs_csv(path)
    assert caught.value.problem.line == 501


def test_refuses_non_numeric_rvu(cms_dir, tmp_path):
    def change(lines):
        cells = lines[20].split(b",")
        cells[5] = b"abc"
        lines[20] = b",".join(cells)
        return lines

    with pytest.raises(DataImportError) as caught:
        import_pfs_csv(_damaged(cms_dir, tmp_path, change))
    assert caught.value.problem.line == 21 and caught.value.problem.column == "WORK RVU"


def test_refuses_removed_column(cms_dir, tmp_path):
    def change(lines):
        return [b",".join(c for i, c in enumerate(l.split(b",")) if i != 7) for l in lines]

    with pytest.raises(DataImportError) as caught:
        import_pfs_csv(_damaged(cms_dir, tmp_path, change))
    assert caught.value.problem.line == 10
    assert "column 8" in caught.value.message


def test_refuses_a_file_that_is_not_pprrvu(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataImportError, match="HCPCS"):
        import_pfs_csv(path)


def test_same_file_twice_changes_nothing(cms_dir, tmp_path):
    source = cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv"
    first = write_release(import_pfs_csv(source, partial=True), tmp_path).read_bytes()
    second = write_release(import_pfs_csv(source, partial=True), tmp_path).read_bytes()
    assert first == second
    assert PfsRelease.load(tmp_path / "pfs" / "RVU26D.json.gz").rows["27447"]["work"] == 19.11


def test_qpp_file_adds_its_conversion_factor(cms_dir, tmp_path):
    """A 2026 release comes as a non-QPP and a QPP file that differ only in the conversion factor."""
    source = cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv"
    qpp = tmp_path / "PPRRVU2026_Oct_QPP.csv"
    qpp.write_bytes(source.read_bytes().replace(b"33.4009", b"33.5675"))
    with pytest.raises(DataImportError, match="non-QPP file of the same release first"):
        write_release(import_pfs_csv(qpp, partial=True), tmp_path / "data")
    write_release(import_pfs_csv(source, partial=True), tmp_path / "data")
    write_release(import_pfs_csv(qpp, partial=True), tmp_path / "data")
    release = PfsRelease.load(tmp_path / "data" / "pfs" / "RVU26D.json.gz")
    assert (release.conversion_factor, release.qp_conversion_factor) == (33.4009, 33.5675)
    write_release(import_pfs_csv(source, partial=True), tmp_path / "data")  # re-importing keeps the QP factor
    assert PfsRelease.load(tmp_path / "data" / "pfs" / "RVU26D.json.gz").qp_conversion_factor == 33.5675
    other = tmp_path / "other" / "PPRRVU2026_Oct_QPP.csv"
    other.parent.mkdir()
    other.write_bytes(qpp.read_bytes().replace(b",19.11,11.58,NA,11.58,,4.02,34.71,34.71,",
                                               b",19.12,11.58,NA,11.58,,4.02,34.72,34.72,"))
    with pytest.raises(DataImportError, match="RVUs differ"):
        write_release(import_pfs_csv(other, partial=True), tmp_path / "data")


# -- every stored column is checked against CMS's layout ---------------------------------------

def _with_cell(source: Path, tmp_path: Path, line: int, column: str, value: str, name: str = "damaged.csv"):
    """A copy of a PPRRVU CSV with one cell (1-based line, column by header name) replaced."""
    import csv
    import io

    from cptrules.data.pfs import COLUMNS_2025, COLUMNS_2026

    lines = source.read_bytes().split(b"\r\n")
    row = next(csv.reader([lines[line - 1].decode()]))
    names = COLUMNS_2026 if len(row) == len(COLUMNS_2026) else COLUMNS_2025
    row[names.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    lines[line - 1] = out.getvalue().encode()
    path = tmp_path / name
    path.write_bytes(b"\r\n".join(lines))
    return path


EXCERPT = "excerpts-2026/PPRRVU2026_Oct_nonQPP.csv"
LINE_27447 = 12  # 27447,,,A,,19.11,11.58,NA,11.58,,4.02,34.71,34.71,0,090,...


@pytest.mark.parametrize("column, value, says", [
    ("WORK RVU", "1" * 400, "outside 0.00 to 999.99"),  # once read as Infinity
    ("WORK RVU", "-5.00", "negative"),
    ("MP RVU", "1000.00", "outside 0.00 to 999.99"),
    ("NON-FAC PE RVU", "nan", "not a number"),
    ("FACILITY TOTAL", "inf", "not a number"),
    ("STATUS CODE", "banana", "not a PFS status indicator"),
    ("STATUS CODE", "L", "not a PFS status indicator"),
    ("MOD", "51", "not a PFS modifier"),
    ("NOT USED FOR MEDICARE PAYMENT", "*", "not-used-for-payment flag"),
    ("NON-FAC NA INDICATOR", "banana", "NA indicator"),
    ("FACILITY NA INDICATOR", "N/A", "NA indicator"),
    ("PCTC IND", "banana", "PC/TC indicator"),
    ("PCTC IND", "10", "PC/TC indicator"),
    ("GLOB DAYS", "045", "global period"),
    ("GLOB DAYS", "banana", "global period"),
    ("MULT PROC", "8", "multiple-procedure indicator"),
    ("BILAT SURG", "4", "bilateral-surgery indicator"),
    ("ASST SURG", "3", "assistant-at-surgery indicator"),
    ("CO- SURG", "banana", "co-surgeon indicator"),
    ("TEAM SURG", "5", "team-surgery indicator"),
    ("PHYSICIAN SUPERVISION OF DIAGNOSTIC PROCEDURES", "07", "physician-supervision level"),
    ("PRIC IND", "banana", "PRIC IND value"),
    ("ENDO BASE", "banana", "endoscopic base code"),
    ("CONV FACTOR", "banana", "not a conversion factor"),
    ("CONV FACTOR", "334.0090", "not a plausible conversion factor"),
    ("CONV FACTOR", "33.4010", "a release has one conversion factor"),
    ("HCPCS", "2744", "not a five-character"),
    ("NON-FACILITY TOTAL", "34.81", "not work + PE + MP"),
    ("FACILITY TOTAL", "34.61", "not work + PE + MP"),
    ("NOT USED FOR MEDICARE PAYMENT", "+", "used for payment, yet the row is flagged +"),
    ("MULT PROC", "3", "endoscopic base code goes with multiple-procedure indicator 3"),
])
def test_every_stored_column_is_checked(cms_dir, tmp_path, column, value, says):
    """A bad value in any stored column is refused with its line and column, and nothing is written."""
    path = _with_cell(cms_dir / EXCERPT, tmp_path, LINE_27447, column, value)
    with pytest.raises(DataImportError) as caught:
        import_pfs_csv(path, partial=True)
    problem = caught.value.problem
    assert problem.line == LINE_27447 and says in problem.message
    expected = {"used for payment": "NOT USED FOR MEDICARE PAYMENT", "endoscopic base code goes": "ENDO BASE",
                "one conversion factor": "CONV FACTOR"}
    assert problem.column == next((c for k, c in expected.items() if k in says), column)
    assert str(caught.value).startswith(f"{path}:{LINE_27447} (column {problem.column}): ")


def test_the_real_files_keep_every_invariant_enforced(cms_dir):
    """The checks hold on every row CMS published (RVU25D whole, and both 2026 excerpts)."""
    assert len(import_pfs_csv(cms_dir / "PPRRVU2025_Oct.csv").payload["rows"]) == 19090
    for name in ("PPRRVU2026_Oct_nonQPP.csv", "PPRRVU2026_Jul_nonQPP.excerpt.redacted.csv"):
        assert import_pfs_csv(cms_dir / "excerpts-2026" / name, partial=True).payload["partial"] is True


def test_a_file_cut_in_half_is_refused_unless_partial(cms_dir, tmp_path):
    """19,090 rows cut at a line boundary to 9,991 imported silently before; now it needs --partial."""
    lines = (cms_dir / "PPRRVU2025_Oct.csv").read_bytes().split(b"\r\n")
    cut = tmp_path / "PPRRVU2025_Oct.csv"
    cut.write_bytes(b"\r\n".join(lines[:10 + 9991]) + b"\r\n")
    with pytest.raises(DataImportError, match="only 9,991 data rows.*--partial"):
        import_pfs_csv(cut)
    imported = import_pfs_csv(cut, partial=True)
    assert imported.payload["partial"] is True and len(imported.payload["rows"]) == 9991
    write_release(imported, tmp_path / "data")
    assert PfsRelease.load(tmp_path / "data" / "pfs" / "RVU25D.json.gz").partial is True
    whole = tmp_path / "whole"
    write_release(import_pfs_csv(cms_dir / "PPRRVU2025_Oct.csv"), whole)
    assert PfsRelease.load(whole / "pfs" / "RVU25D.json.gz").partial is False


def test_a_release_key_must_match_the_banner_year(cms_dir):
    source = cms_dir / EXCERPT
    with pytest.raises(DataImportError, match="banner says 2026 but release RVU25D prices 2025"):
        import_pfs_csv(source, release="RVU25D", partial=True)
    forced = import_pfs_csv(source, release="RVU25D", partial=True, ignore_banner_year=True)
    assert forced.key == "RVU25D"
    assert import_pfs_csv(source, release="RVU26C", partial=True).key == "RVU26C"  # same year: allowed


def test_a_loaded_key_is_replaced_only_when_asked(cms_dir, tmp_path):
    """`--release RVU25D` on a 2026 file once replaced the embedded RVU25D silently."""
    from cptrules.embedded import default_data_dir

    embedded = default_data_dir()
    forced = import_pfs_csv(cms_dir / EXCERPT, release="RVU25D", partial=True, ignore_banner_year=True)
    data = tmp_path / "data"
    with pytest.raises(DataImportError, match=r"release RVU25D is already loaded from .*data/pfs/RVU25D") as caught:
        write_release(forced, data, loaded_from=[embedded])
    assert caught.value.path == str(cms_dir / EXCERPT)
    assert not (data / "pfs" / "RVU25D.json.gz").exists()
    write_release(forced, data, replace=True, loaded_from=[embedded])
    assert PfsRelease.load(data / "pfs" / "RVU25D.json.gz").partial is True
    # The same key in the data directory itself, with other content, is refused too.
    excerpt = import_pfs_csv(cms_dir / EXCERPT, partial=True)
    write_release(excerpt, data)
    changed = _with_cell(cms_dir / EXCERPT, tmp_path, LINE_27447, "GLOB DAYS", "010",
                         name="PPRRVU2026_Oct_nonQPP.csv")
    with pytest.raises(DataImportError, match=r"release RVU26D \(partial\) is already loaded"):
        write_release(import_pfs_csv(changed, partial=True), data)
    write_release(import_pfs_csv(changed, partial=True), data, replace=True)
    assert PfsRelease.load(data / "pfs" / "RVU26D.json.gz").rows["27447"]["global"] == "010"


def test_importing_the_embedded_release_again_writes_nothing(cms_dir, tmp_path):
    from cptrules.embedded import default_data_dir

    where = write_release(import_pfs_csv(cms_dir / "PPRRVU2025_Oct.csv"), tmp_path, loaded_from=[default_data_dir()])
    assert where == default_data_dir() / "pfs" / "RVU25D.json.gz" and not (tmp_path / "pfs").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(0, 10), column=st.sampled_from([c for k, c in FIELDS if k not in ("code", "mod")]),
       value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=8))
def test_any_cell_is_stored_as_read_or_refused_on_its_line(cms_dir, tmp_path, row, column, value):
    """Open-ended: whatever one cell holds, the import either refuses that line or stores a value
    from CMS's layout (finite, in range, from the value set)."""
    import math

    from cptrules.data.pfs import VALUE_SETS

    line = 11 + row
    path = _with_cell(cms_dir / EXCERPT, tmp_path, line, column, value)
    try:
        imported = import_pfs_csv(path, partial=True)
    except DataImportError as error:
        assert error.problem.line == line
        return
    fields = imported.payload["fields"]
    stored = imported.payload["rows"][row][[c for k, c in FIELDS if k in fields].index(column)]
    key = fields[[c for k, c in FIELDS if k in fields].index(column)]
    if key in VALUE_SETS:
        assert stored == value.strip() and stored in VALUE_SETS[key][0]
    elif isinstance(stored, float):
        assert math.isfinite(stored) and 0 <= stored <= 999.99 and stored == float(value)
    else:
        assert stored == value.strip()


def test_a_release_may_not_shrink_far_below_the_newest_whole_one(cms_dir, tmp_path, capsys):
    """A cut above the absolute floor (17,000 of 19,090 rows) is caught against RVU25D, loaded."""
    from cptrules.cli import main
    from cptrules.data.pfs import newest_whole_release
    from cptrules.embedded import default_data_dir

    lines = (cms_dir / "PPRRVU2025_Oct.csv").read_bytes().split(b"\r\n")
    cut = tmp_path / "PPRRVU2025_Oct.csv"
    cut.write_bytes(b"\r\n".join(lines[:10 + 17000]) + b"\r\n")
    assert len(import_pfs_csv(cut, release="RVU25C").payload["rows"]) == 17000  # over the floor alone
    assert newest_whole_release([default_data_dir()]) == ("RVU25D", 19090)
    with pytest.raises(DataImportError, match="at least 17,181 .90% of the 19,090 of RVU25D"):
        import_pfs_csv(cut, release="RVU25C", reference=("RVU25D", 19090))
    data = tmp_path / "data"
    assert main(["import-pfs", str(cut), "--release", "RVU25C", "--data-dir", str(data)]) == 1
    assert "newest whole release loaded" in capsys.readouterr().err and not data.exists()
    assert main(["import-pfs", str(cut), "--release", "RVU25C", "--partial", "--data-dir", str(data)]) == 0
    assert PfsRelease.load(data / "pfs" / "RVU25C.json.gz").partial is True
