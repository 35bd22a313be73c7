"""The curated catalogue: validated with located errors, complete for the BCT family, our own words."""

import re
from pathlib import Path

import pytest

from cptrules.data.catalogue import Catalogue
from cptrules.errors import RuleFileErrors

REPO = Path(__file__).resolve().parents[2]


def test_family_and_sources():
    catalogue = Catalogue.load(REPO / "data" / "catalogue.yaml")
    for code in ("0554T", "0555T", "0556T", "0557T", "0558T"):
        entry = catalogue.entries[code]
        assert entry.text("descriptor") and entry.text("clinical_context") and entry.texts("sources")
        assert entry.lifecycle_date("effective")[0] == "2019-07-01"
    categories = {"T": 0, "F": 0, "U": 0, "digit": 0, "letter": 0}
    for code in catalogue.entries:
        key = code[-1] if code[-1] in "TFU" else ("letter" if code[0].isalpha() else "digit")
        categories[key] += 1
    assert all(count >= 2 for count in categories.values()), categories


def test_broken_entries_are_located(tmp_path):
    text = (REPO / "data" / "catalogue.yaml").read_text()
    broken = text.replace('effective: {date: "2019-07-01"', 'effective: {date: "2019-07"', 1)
    broken = broken.replace('  - code: "0555T"', '  - code: "0554T"', 1)
    path = tmp_path / "catalogue.yaml"
    path.write_text(broken)
    with pytest.raises(RuleFileErrors) as caught:
        Catalogue.load(path)
    found = {(p.path, p.line): p.message for p in caught.value.problems}
    date_line = broken[: broken.index('date: "2019-07"')].count("\n") + 1
    twice_line = broken[: broken.index('  - code: "0554T"', broken.index('  - code: "0554T"') + 1)].count("\n") + 1
    assert ("catalogue.yaml", date_line) in found
    assert any("listed twice" in m for (_, line), m in found.items() if line == twice_line)


def _shingles(text: str, size: int = 7) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


def test_our_words_not_the_reference_pages(cms_dir):
    """No run of seven words from the reference code page appears in what we ship."""
    reference = (cms_dir.parent.parent / "reference" / "0556T-code-page.txt").read_text()
    ours = (REPO / "data" / "catalogue.yaml").read_text()
    ours += "".join(p.read_text() for p in (REPO / "rules").rglob("*") if p.is_file())
    assert _shingles(reference) & _shingles(ours) == set()
