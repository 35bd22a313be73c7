"""The PPRRVU importer against the real CMS files, and its refusals."""

import gzip
import json
from pathlib import Path

import pytest

from cptrules.data.pfs import PfsRelease, import_pfs_csv, release_effective, write_release
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
    october = import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv")
    assert october.key == "RVU26D" and october.payload["conversion_factor"] == 33.4009
    july = import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Jul_nonQPP.excerpt.redacted.csv")
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
    first = write_release(import_pfs_csv(source), tmp_path).read_bytes()
    second = write_release(import_pfs_csv(source), tmp_path).read_bytes()
    assert first == second
    assert PfsRelease.load(tmp_path / "pfs" / "RVU26D.json.gz").rows["27447"]["work"] == 19.11


def test_qpp_file_adds_its_conversion_factor(cms_dir, tmp_path):
    """A 2026 release comes as a non-QPP and a QPP file that differ only in the conversion factor."""
    source = cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv"
    qpp = tmp_path / "PPRRVU2026_Oct_QPP.csv"
    qpp.write_bytes(source.read_bytes().replace(b"33.4009", b"33.5675"))
    with pytest.raises(DataImportError, match="non-QPP file of the same release first"):
        write_release(import_pfs_csv(qpp), tmp_path / "data")
    write_release(import_pfs_csv(source), tmp_path / "data")
    write_release(import_pfs_csv(qpp), tmp_path / "data")
    release = PfsRelease.load(tmp_path / "data" / "pfs" / "RVU26D.json.gz")
    assert (release.conversion_factor, release.qp_conversion_factor) == (33.4009, 33.5675)
    write_release(import_pfs_csv(source), tmp_path / "data")  # re-importing keeps the QP factor
    assert PfsRelease.load(tmp_path / "data" / "pfs" / "RVU26D.json.gz").qp_conversion_factor == 33.5675
    other = tmp_path / "other" / "PPRRVU2026_Oct_QPP.csv"
    other.parent.mkdir()
    other.write_bytes(qpp.read_bytes().replace(b",19.11,", b",19.12,"))
    with pytest.raises(DataImportError, match="RVUs differ"):
        write_release(import_pfs_csv(other), tmp_path / "data")
