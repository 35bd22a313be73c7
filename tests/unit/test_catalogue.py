"""The curated catalogue: validated with located errors, complete for the BCT family, our own words."""

import csv
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ruamel.yaml import YAML

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


# ---------------------------------------------------------------------------
# Licensing guard: no catalogue text may be a CPT descriptor, word for word or nearly.
# The descriptors are AMA copyright, so they are read from the CMS file at test time only.
# ---------------------------------------------------------------------------

_SKIPPED_KEYS = {"code", "related", "codes", "family", "date", "as_of", "basis"}
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_VIEW_WORDS = {"v", "vw", "vws", "view", "views"}
# Spelled-out forms of abbreviations the CMS short descriptors use, so an expansion is no escape.
_ABBREVIATIONS = {
    "est": "established", "pt": "patient", "pts": "patient", "outpt": "outpatient", "op": "outpatient",
    "inj": "injection", "inject": "injection", "fx": "fracture", "rsk": "risk", "str": "strength",
    "eval": "evaluation", "tx": "treatment", "dx": "diagnostic", "ther": "therapeutic",
    "impltbl": "implantable", "insj": "insertion", "insert": "insertion", "rmvl": "removal",
    "vst": "visit", "proc": "procedure", "anesth": "anesthesia", "anes": "anesthesia",
    "w": "with", "wo": "without", "bilat": "bilateral", "abd": "abdomen", "img": "imaging",
    "ct": "ct", "mri": "mri", "us": "ultrasound", "cntrst": "contrast", "contrst": "contrast",
    "xr": "xray", "radiograph": "xray", "radex": "xray",
}
# Words that carry no meaning of their own in a descriptor.
_FILLER = {"a", "an", "the", "of", "and", "or", "with", "for", "to", "in", "on", "by", "at", "exam", "per"}


def _normal(text: str) -> str:
    """Case, punctuation and spacing removed: what 'word for word' compares."""
    return " ".join(re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKC", text).lower()))


def _canonical(text: str) -> list[str]:
    """Content words with abbreviations, hyphenation, number words and plurals made uniform."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("w/o", " without ").replace("w/", " with ").replace("&", " and ")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", "", text)
    tokens = re.findall(r"[a-z0-9]+", text)
    words: list[str] = []
    i = 0
    while i < len(tokens):
        word = _NUMBER_WORDS.get(tokens[i], tokens[i])
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if word == "x" and following in ("ray", "rays"):
            word, i = "xray", i + 1
        elif word == "w" and following == "o":
            word, i = "without", i + 1
        elif word.isdigit() and following in _VIEW_WORDS:
            word, i = word + "view", i + 1
        elif match := re.fullmatch(r"(\d+)(?:v|vw|vws|view|views)", word):
            word = match.group(1) + "view"
        word = _ABBREVIATIONS.get(word, word)
        if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        if word not in _FILLER:
            words.append(word)
        i += 1
    return words


def _pieces(text: str) -> set[str]:
    """The whole text and each sentence or bracketed part of it."""
    parts = re.split(r"(?<=[.;:!?])\s+|[()\[\]]", text)
    return {text, *(p.strip(" .;:!?,") for p in parts if p.strip(" .;:!?,"))}


def _catalogue_texts(doc: dict) -> list[tuple[str, str, str]]:
    """(code, field, text) for every piece of prose in the catalogue."""
    found: list[tuple[str, str, str]] = []

    def walk(value, code: str, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if str(k) not in _SKIPPED_KEYS and not (k == "effective" and isinstance(v, str)):
                    walk(v, code, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for item in value:
                walk(item, code, key)
        elif isinstance(value, str):
            found.extend((code, key, piece) for piece in _pieces(value))

    for entry in doc["codes"]:
        walk(entry, entry["code"], "")
    return found


def _rvu_descriptions(cms_dir: Path) -> list[tuple[str, str]]:
    """(code, DESCRIPTION cell) of every row of the real RVU file; the header row is found by name."""
    with (cms_dir / "PPRRVU2025_Oct.csv").open(newline="", encoding="latin-1") as handle:
        rows = list(csv.reader(handle))
    start = next(i for i, row in enumerate(rows) if row and row[0] == "HCPCS")
    column = rows[start].index("DESCRIPTION")
    return [(row[0], row[column]) for row in rows[start + 1:] if row and row[0] and row[column].strip()]


def _is_ama_or_ada(code: str) -> bool:
    """CPT codes (AMA) and CDT dental codes (ADA); the other HCPCS Level II text is CMS's own."""
    return code[:1].isdigit() or code[:1] == "D"


@dataclass
class _Descriptors:
    """The RVU descriptors, indexed for word-for-word and near comparison."""

    exact: dict[str, str] = field(default_factory=dict)
    near: dict[tuple[str, ...], str] = field(default_factory=dict)
    by_first_word: dict[str, list[tuple[tuple[str, ...], str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, descriptions: list[tuple[str, str]]) -> "_Descriptors":
        index = cls()
        for code, description in descriptions:
            index.exact.setdefault(_normal(description), code)
            words = _canonical(description)
            if _is_ama_or_ada(code) and len(words) >= 2:
                index.near.setdefault(tuple(sorted(words)), code)
            if _is_ama_or_ada(code) and len(words) >= 3:
                index.by_first_word.setdefault(words[0], []).append((tuple(words), code))
        return index

    def within(self, words: list[str]) -> str:
        """The code of an AMA/ADA descriptor whose words all appear in `words`, in order; else ''."""
        for start, word in enumerate(words):
            for descriptor, code in self.by_first_word.get(word, ()):
                rest = iter(words[start:])
                if all(w in rest for w in descriptor):
                    return code
        return ""

    def clashes(self, texts: list[tuple[str, str, str]]) -> list[str]:
        """Texts equal to a descriptor (any row), nearly equal to an AMA/ADA one, or holding one in order."""
        found = []
        for code, key, text in texts:
            normal = _normal(text)
            words = _canonical(text)
            if len(normal.split()) >= 3 and normal in self.exact:
                found.append(f"{code} {key}: {text!r} equals the RVU file's descriptor of {self.exact[normal]}")
            elif tuple(sorted(words)) in self.near:
                found.append(f"{code} {key}: {text!r} nearly equals the RVU file's descriptor of "
                             f"{self.near[tuple(sorted(words))]}")
            elif not re.search(r"[.;:!?]\s", text) and (hit := self.within(words)):  # within one sentence
                found.append(f"{code} {key}: {text!r} holds every word of the RVU file's descriptor of {hit}, in order")
        return found


def test_near_equality_sees_through_abbreviations():
    """Invented descriptors: the matcher must see through case, punctuation, order and abbreviations."""
    descriptions = [("00001", "Xray exam zorbic flange 2 views"), ("00002", "Inj w/o snarf, bilat"),
                    ("00003", "Plimber non-user"), ("A0001", "Quux mileage fee")]
    index = _Descriptors.of(descriptions)

    def flagged(text: str) -> bool:
        return bool(index.clashes([("X", "synonyms", text)]))

    assert flagged("zorbic flange X-ray 2v")
    assert flagged("ZORBIC FLANGE X RAY, TWO VIEWS")
    assert flagged("bilateral injection without snarf")
    assert flagged("plimber non user.")
    assert flagged("Quux mileage fee")             # word for word: every row counts
    assert flagged("Injection, given without any snarf, on both sides (bilateral)")
    assert not flagged("two-projection radiograph of the zorbic flange with dye")
    assert not flagged("Snarf given on both sides, without an injection")   # same words, another order
    assert not flagged("quux mileage")              # near-equality is for AMA and ADA text only
    assert not flagged("plimber")


def test_near_equality_catches_altered_real_descriptors(cms_dir):
    """The real CPT descriptors, altered in case, punctuation and spelling, are still caught."""
    descriptions = [(c, d) for c, d in _rvu_descriptions(cms_dir) if _is_ama_or_ada(c) and len(_canonical(d)) >= 2]
    assert len(descriptions) > 5000
    index = _Descriptors.of(descriptions)
    missed = []
    for code, description in descriptions[::50]:
        spelled_out = re.sub(r"\bw/", "with ", re.sub(r"\bw/o\b", "without", description, flags=re.I), flags=re.I)
        for variant in (description.upper() + ".", description.replace("/", " ").replace("-", " ") + "!", spelled_out):
            if not index.clashes([(code, "synonyms", variant)]):
                missed.append(code)  # the code only: failure output must not quote AMA text
    assert missed == []


def test_no_catalogue_text_is_a_cpt_descriptor(cms_dir):
    """Issue 7: catalogue strings of three or more words never equal, or nearly equal, an RVU descriptor."""
    doc = YAML(typ="safe").load((REPO / "data" / "catalogue.yaml").read_text(encoding="utf-8"))
    clashes = _Descriptors.of(_rvu_descriptions(cms_dir)).clashes(_catalogue_texts(doc))
    assert clashes == [], "\n".join(clashes)


# ---------------------------------------------------------------------------
# Synonyms are other names for the service, not the name of its code set or the code itself.
# ---------------------------------------------------------------------------

_CODE_WORDS = {"cpt", "hcpcs", "code", "codes", "a", "an", "the"}
_CATEGORY_NAMES = {
    "pla", "proprietary laboratory analysis", "proprietary laboratory analyses", "proprietary lab test",
    "maaa", "administrative maaa", "multianalyte assay with algorithmic analyses",
    "category i", "category ii", "category iii", "cat i", "cat ii", "cat iii", "level i", "level ii",
    "emerging technology", "performance measurement", "quality measure", "tracking",
    "temporary", "temporary national", "permanent national", "national", "dental", "cdt", "dme", "durable medical equipment",
}


def _bare_name(text: str) -> str:
    """A name without the code-set words around it: 'CPT PLA code' -> 'pla'."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    while words and words[0] in _CODE_WORDS:
        words.pop(0)
    while words and words[-1] in _CODE_WORDS:
        words.pop()
    return " ".join(words)


def _category_names() -> set[str]:
    """Our fixed list plus every category label the category rules give, with and without brackets."""
    names = set(_CATEGORY_NAMES)
    rules = YAML(typ="safe").load((REPO / "rules" / "category.yaml").read_text(encoding="utf-8"))
    for rule in rules["rules"]:
        label = str(rule.get("set", {}).get("category_label", ""))
        for part in (label, re.sub(r"\(.*?\)", "", label), *re.findall(r"\((.*?)\)", label)):
            if _bare_name(part):
                names.add(_bare_name(part))
    return names


def _category_synonyms(catalogue: Catalogue) -> list[str]:
    names = _category_names()
    return [f"{code}: {synonym!r}" for code, entry in catalogue.entries.items() for synonym in entry.texts("synonyms")
            if _bare_name(synonym) in names or _bare_name(synonym) == code.lower()]


def test_category_name_check_sees_code_set_words(tmp_path):
    """The check itself: a category name or the bare code, dressed in code-set words, is found."""
    text = (REPO / "data" / "catalogue.yaml").read_text(encoding="utf-8")
    marker = '    synonyms: ["AWV", "initial annual wellness visit"'
    assert marker in text
    planted = text.replace(marker, '    synonyms: ["HCPCS Level II code", "G0438", "a CPT Category III code", "AWV", '
                                   '"initial annual wellness visit"', 1)
    path = tmp_path / "catalogue.yaml"
    path.write_text(planted, encoding="utf-8")
    found = [f for f in _category_synonyms(Catalogue.load(path)) if f.startswith("G0438")]
    assert found == ["G0438: 'HCPCS Level II code'", "G0438: 'G0438'", "G0438: 'a CPT Category III code'"]


def test_no_synonym_is_a_category_name_or_the_code():
    """Issue 7 (0011U): a synonym names the service, never its category or the code again."""
    catalogue = Catalogue.load(REPO / "data" / "catalogue.yaml")
    assert _category_synonyms(catalogue) == []


# ---------------------------------------------------------------------------
# Replacements, coverage-note dates and who bills: what the catalogue says must have a source.
# ---------------------------------------------------------------------------

def _hcpcs_rows(cms_dir: Path) -> dict[str, dict[str, str]]:
    """Procedure rows of the real HCPCS file by code."""
    with (cms_dir / "HCPC2025_OCT_ANWEB.from-xlsx.csv").open(newline="", encoding="utf-8") as handle:
        return {row["HCPC"].strip(): row for row in csv.DictReader(handle) if row["RECID"] == "3"}


def _iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}" if yyyymmdd else ""


def _is_hcpcs(code: str) -> bool:
    return bool(re.fullmatch(r"[A-CE-V][0-9]{4}", code))


def test_hcpcs_replacements_are_what_the_hcpcs_file_shows(cms_dir):
    """Issue 7: J0171's replacement is recorded, and every HCPCS replacement agrees with the file:
    the old code's last day is the day before the new codes' add date."""
    catalogue = Catalogue.load(REPO / "data" / "catalogue.yaml")
    rows = _hcpcs_rows(cms_dir)
    codes, effective, source = catalogue.entries["J0171"].replacement()
    assert codes == ["J0165", "J0166", "J0167", "J0168", "J0169"] and effective == "2025-07-01"
    checked = 0
    for code, entry in catalogue.entries.items():
        codes, effective, source = entry.replacement()
        if not codes or not _is_hcpcs(code):
            continue
        term = dt.date.fromisoformat(_iso(rows[code]["TERM DT"]))
        assert effective == (term + dt.timedelta(days=1)).isoformat(), code
        assert all(_iso(rows[new]["ADD DT"]) == effective for new in codes), code
        assert "HCPCS" in source and "action code" in source and "TERM DT" in source and "ADD DT" in source, code
        checked += 1
    assert checked >= 1


def test_catalogue_hcpcs_codes_with_an_end_date_say_what_follows(cms_dir):
    """A catalogue HCPCS code that the file ends, whose related codes the file adds the next day,
    records those codes as its replacement; without such codes it claims no replacement."""
    catalogue = Catalogue.load(REPO / "data" / "catalogue.yaml")
    rows = _hcpcs_rows(cms_dir)
    ended = [c for c in catalogue.entries if _is_hcpcs(c) and c in rows and rows[c]["TERM DT"]]
    assert "J0171" in ended
    for code in ended:
        entry = catalogue.entries[code]
        next_day = (dt.date.fromisoformat(_iso(rows[code]["TERM DT"])) + dt.timedelta(days=1)).isoformat()
        following = [c for c in entry.texts("related") if c in rows and _iso(rows[c]["ADD DT"]) == next_day]
        recorded, effective, _ = entry.replacement()
        if following:
            assert recorded == following and effective == next_day, code
        else:
            assert not recorded and "replace" not in entry.text("clinical_context").lower(), code


def test_coverage_notes_carry_their_date_or_say_they_have_none():
    """Issue 7: each coverage note has its as_of date; an undated one says so in its source."""
    doc = YAML(typ="safe").load((REPO / "data" / "catalogue.yaml").read_text(encoding="utf-8"))
    for entry in doc["codes"]:
        for note in entry.get("coverage_notes") or []:
            assert "as_of" in note, (entry["code"], note["text"][:40])
            if note["as_of"] is None:
                assert "undated" in note["source"], (entry["code"], note["source"])


def test_bct_coverage_notes_show_both_sides_newest_first():
    """Issue 7: for 0554T-0558T the 2019 payer note and the 2023 radiology society note are both kept,
    dated, in order newest first (undated notes last)."""
    doc = YAML(typ="safe").load((REPO / "data" / "catalogue.yaml").read_text(encoding="utf-8"))
    entries = {e["code"]: e for e in doc["codes"]}
    for code in ("0554T", "0555T", "0556T", "0557T", "0558T"):
        notes = entries[code]["coverage_notes"]
        dates = [str(n["as_of"]) for n in notes if n["as_of"]]
        assert "2019-12-19" in dates and "2023-05-04" in dates, code
        assert dates == sorted(dates, reverse=True), code
        assert [bool(n["as_of"]) for n in notes] == sorted((bool(n["as_of"]) for n in notes), reverse=True), code
        sources = " ".join(n["source"] for n in notes)
        assert "medpolicy.ibx.com" in sources and "acr.org" in sources, code


def test_no_coverage_note_repeats_the_hcpcs_coverage_code():
    """Issue 7 (T1015): the coverage rules state the HCPCS file's coverage code from the loaded file;
    a catalogue note saying the same thing made the answer repeat itself."""
    doc = YAML(typ="safe").load((REPO / "data" / "catalogue.yaml").read_text(encoding="utf-8"))
    for entry in doc["codes"]:
        for note in entry.get("coverage_notes") or []:
            assert not re.search(r"\bCOV\b|coverage code", note["source"] + " " + note["text"]), entry["code"]


_DMEPOS_PRICING = {str(n) for n in range(31, 41)} | {"45", "46"}


def test_supplier_codes_name_the_supplier_as_biller(cms_dir):
    """Issue 7: DME codes are billed by the supplier and ordered by clinicians."""
    catalogue = Catalogue.load(REPO / "data" / "catalogue.yaml")
    rows = _hcpcs_rows(cms_dir)
    supplier_codes = [c for c in catalogue.entries if c in rows and rows[c]["PRICE1"] in _DMEPOS_PRICING]
    assert "E0100" in supplier_codes
    for code in supplier_codes:
        entry = catalogue.entries[code]
        assert entry.texts("specialties") and all("supplier" in s.lower() for s in entry.texts("specialties")), code
        context = entry.text("clinical_context").lower()
        assert "supplier" in context and "bills" in context and "orders" in context, code


def test_hospital_only_codes_name_hospitals_as_billers():
    """Issue 7: the OPPS clinic visit G0463 is billed by hospitals, not by practitioners."""
    entry = Catalogue.load(REPO / "data" / "catalogue.yaml").entries["G0463"]
    assert all(s.lower().startswith("hospital") for s in entry.texts("specialties"))
    assert "billed only by hospitals" in entry.text("clinical_context").lower()


def test_no_hcpcs_entry_claims_permanence():
    """HCPCS series permanence comes from a rule with a source, never from catalogue prose (issue 7: U0001-U0005)."""
    doc = YAML(typ="safe").load((REPO / "data" / "catalogue.yaml").read_text(encoding="utf-8"))
    for entry in doc["codes"]:
        if _is_hcpcs(entry["code"]):
            prose = " ".join(t for _, _, t in _catalogue_texts({"codes": [entry]}))
            assert not re.search(r"\bpermanent|\bno end date|never expires", prose, re.I), entry["code"]
