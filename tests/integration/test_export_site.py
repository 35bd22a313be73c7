"""`cptrules export`: determinism, reruns that write nothing, pages rewritten only where answers
changed, and the changes page across two real releases (RVU25D and the 2026 excerpt)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from cptrules.cli import main
from cptrules.data.pfs import import_pfs_csv, write_release
from cptrules.engine import Engine
from cptrules.export.site import ExportOptions, export_site
from cptrules.faqpage import faq_jsonld

DAY = dt.date(2025, 11, 1)
SAMPLE = ["0554T", "0555T", "0556T", "0557T", "0558T", "0042T", "99213", "27447", "71046", "1036F", "0001U", "G0463"]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stamps(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _jsonld(page: Path) -> dict:
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', page.read_text(), re.S)
    assert found, page
    return json.loads(found.group(1))


@pytest.mark.parametrize("fmt", ["html", "markdown", "json", "jsonld"])
def test_the_same_inputs_give_byte_identical_folders(engine, tmp_path, fmt):
    first, second = tmp_path / "a", tmp_path / "b"
    export_site(engine, ExportOptions(first, fmt, SAMPLE, dos=DAY))
    export_site(engine, ExportOptions(second, fmt, SAMPLE, dos=DAY))
    tree = _tree(first)
    assert tree == _tree(second)
    ext = {"html": "html", "markdown": "md", "json": "json", "jsonld": "jsonld"}[fmt]
    assert {f"codes/{c}.{ext}" for c in SAMPLE} <= set(tree)
    assert "manifest.json" in tree and "records.jsonl.gz" in tree


def test_a_second_run_with_no_changes_writes_nothing(engine, tmp_path):
    out = tmp_path / "site"
    first = export_site(engine, ExportOptions(out, codes=SAMPLE, dos=DAY))
    assert "codes/0556T.html" in first.written
    before, stamps = _tree(out), _stamps(out)
    again = export_site(engine, ExportOptions(out, codes=SAMPLE, dos=DAY))
    assert again.written == [] and again.removed == [] and again.changes == []
    assert _tree(out) == before and _stamps(out) == stamps


def test_every_format_carries_the_engines_answers(engine, tmp_path):
    report, entries = engine.faq("0556T", DAY)
    export_site(engine, ExportOptions(tmp_path / "ld", "jsonld", ["0556T"], dos=DAY))
    ld = json.loads((tmp_path / "ld" / "codes" / "0556T.jsonld").read_text())
    assert ld["mainEntity"] == faq_jsonld(entries)["mainEntity"]
    assert ld["dateModified"] == engine.clock().isoformat()
    export_site(engine, ExportOptions(tmp_path / "js", "json", ["0556T"], dos=DAY))
    doc = json.loads((tmp_path / "js" / "codes" / "0556T.json").read_text())
    assert [e["answer"] for e in doc["entries"]] == [e.text for e in entries]
    assert doc["facts"]["status_indicator"] == "C" and doc["rule_lines"]
    export_site(engine, ExportOptions(tmp_path / "md", "markdown", ["0556T"], dos=DAY))
    md = (tmp_path / "md" / "codes" / "0556T.md").read_text()
    assert all(f"### {e.question}" in md and e.text in md for e in entries)
    assert "CPT® is a trademark of the American Medical Association" in md


def test_a_changed_rule_rewrites_only_the_pages_it_changes(engine, rules_copy, tmp_path):
    out = tmp_path / "site"
    export_site(engine, ExportOptions(out, codes=SAMPLE, dos=DAY))
    stamps = _stamps(out)
    status = rules_copy / "status_indicator.yaml"
    status.write_text(status.read_text().replace("status_name: contractor-priced", "status_name: priced by the contractor"))
    later = Engine.load(rules_copy, check_data=False, clock=lambda: dt.date(2026, 12, 24))
    result = export_site(later, ExportOptions(out, codes=SAMPLE, dos=DAY))
    status_c = {c for c in SAMPLE if engine.get_code(c, DAY).facts["status_indicator"] == "C"}
    assert status_c >= {"0554T", "0556T"} and "99213" not in status_c
    assert {c.code for c in result.changes} == status_c
    written = set(result.written)
    assert {f"codes/{c}.html" for c in status_c} <= written
    assert not {f"codes/{c}.html" for c in set(SAMPLE) - status_c} & written
    assert _stamps(out)["codes/99213.html"] == stamps["codes/99213.html"]
    assert _jsonld(out / "codes" / "0556T.html")["dateModified"] == "2026-12-24"
    assert _jsonld(out / "codes" / "99213.html")["dateModified"] == engine.clock().isoformat()
    changes = (out / "changes.html").read_text()
    assert "status_indicator.yaml" in changes and "priced by the contractor" in changes
    assert "status_indicator.yaml:24 status-c</code>: status_name=contractor-priced → status_name=priced by the contractor" in changes


@pytest.fixture(scope="module")
def engine_2026(tmp_path_factory, cms_dir):
    """RVU25D embedded, and RVU26D's published excerpt imported as a partial release."""
    folder = tmp_path_factory.mktemp("data2026")
    write_release(import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv", partial=True), folder)
    return Engine.load(data_dirs=[folder], check_data=False, clock=lambda: dt.date(2026, 11, 27))


def test_the_changes_page_names_the_causes_across_two_releases(engine_2026, tmp_path):
    out = tmp_path / "site"
    result = export_site(engine_2026, ExportOptions(out, codes=["27447", "99213", "71046", "0556T"],
                                                    dos=dt.date(2026, 10, 15), since="RVU25D"))
    changes = {c.code: c for c in result.changes}
    assert set(changes) == {"27447", "99213", "71046", "0556T"}
    data = {c.code: {k.name: (k.old, k.new) for k in c.causes if k.kind == "data"} for c in result.changes}
    assert data["27447"]["work_rvu"] == (19.60, 19.11)
    assert data["27447"]["conversion_factor"] == (32.3465, 33.4009)
    assert data["27447"]["pfs_release"] == ("RVU25D", "RVU26D")
    assert data["99213"]["facility_pe_rvu"] == (0.57, 0.33)
    assert "work_rvu" not in data["99213"]  # 1.30 in both releases
    assert data["0556T"]["pfs_covers_date"] == (True, False)  # the excerpt does not list it
    rules = {k.name for k in changes["0556T"].causes if k.kind == "rule"}
    assert "fee_schedule.yaml:37 no-release-for-date" in {r for r in rules if "no-release" in r} or \
        any(r.endswith(" no-release-for-date") for r in rules)
    assert "rvu" in changes["27447"].answers
    old, new = changes["27447"].answers["rvu"]
    assert "19.60" in old["answer"] and "19.11" in new["answer"]
    page = (out / "changes.html").read_text()
    assert "work_rvu</code>: 19.6 → 19.11" in page
    assert "conversion_factor</code>: 32.3465 → 33.4009" in page
    assert "RVU25D" in page


@pytest.mark.slow  # 590 codes exported twice by the command, each run loading its own engine
def test_the_command_exports_category_iii_and_a_rerun_writes_nothing(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["export", str(out), "--category", "CATEGORY_III", "--format", "html", "--date", "2025-11-01",
                 "--base-url", "https://codes.example.org/"]) == 0
    first = capsys.readouterr()
    assert first.out.startswith("590 codes")
    assert "exported 590/590 codes" in first.err  # plain progress lines when not on a terminal
    assert len(list((out / "codes").glob("*.html"))) == 590
    assert (out / "sitemap.xml").read_text().count("<url>") > 590
    assert {p.name for p in (out / "glossary").iterdir()} >= {"status-indicators.html", "global-periods.html",
                                                             "pc-tc-indicators.html"}
    assert main(["export", str(out), "--category", "CATEGORY_III", "--date", "2025-11-01",
                 "--base-url", "https://codes.example.org"]) == 0  # the same base, normalised
    assert ": 0 written, 0 removed" in capsys.readouterr().out


def test_bad_export_input_is_refused_with_a_precise_error(engine, tmp_path, capsys):
    from cptrules.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="release 'RVU19Z' is not loaded"):
        export_site(engine, ExportOptions(tmp_path, codes=["0556T"], since="RVU19Z"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is not a folder"):
        export_site(engine, ExportOptions(tmp_path / "file", codes=["0556T"]))
    with pytest.raises(InvalidInputError, match="format must be one of"):
        export_site(engine, ExportOptions(tmp_path, "pdf", codes=["0556T"]))
    assert main(["export", str(tmp_path / "out"), "--category", "CATEGORY_IV"]) == 1
    assert "is not a category" in capsys.readouterr().err  # one line from the command, no traceback
    assert not (tmp_path / "out").exists()
    # A folder holding files no export made is never written into (its files could be overwritten
    # or removed as pages of codes no longer exported).
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "index.html").write_text("the team's own page")
    with pytest.raises(InvalidInputError, match="holds files that no export made"):
        export_site(engine, ExportOptions(foreign, codes=["0556T"]))
    assert [p.name for p in foreign.iterdir()] == ["index.html"]
    assert (foreign / "index.html").read_text() == "the team's own page"
