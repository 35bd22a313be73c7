"""Rule files name a manual section only where its number was checked against the public
manuals; any other citation names the manual and chapter only."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML

RULES = Path(__file__).resolve().parents[2] / "rules"
MODIFIERS = RULES / "modifier.yaml"
# Sections whose numbers public text confirms (chapter, section).
CHECKED = {
    "Medicare Claims Processing Manual": {("12", "20.4.3"), ("12", "40.6"), ("12", "40.8")},
    "CMS NCCI Policy Manual for Medicare Services": {("I", "E")},
}
_CITED = re.compile(r"(?P<doc>Medicare Claims Processing Manual|CMS NCCI Policy Manual for Medicare Services)"
                    r"(?P<rest>[^;]*(?:;\s*ch\.[^;]*)*)")


def _sections(source: str) -> list[tuple[str, str, str]]:
    """(document, chapter, section) of every section a source names."""
    found = []
    for cited in _CITED.finditer(source):
        chapter = ""
        for part in re.finditer(r"ch\. ([0-9IVX]+)|§([0-9.A-Z]+)", cited.group("rest")):
            if part.group(1):
                chapter = part.group(1)
            else:
                found.append((cited.group("doc"), chapter, part.group(2).rstrip(".")))
    return found


def test_every_cited_section_is_one_that_was_checked():
    rules = YAML(typ="safe").load(MODIFIERS.read_text(encoding="utf-8"))["rules"]
    cited = [(rule["id"], section) for rule in rules for section in _sections(rule.get("source", ""))]
    assert cited, "the file cites no section at all: the parser no longer reads it"
    unchecked = [(rule_id, doc, chapter, section) for rule_id, (doc, chapter, section) in cited
                 if (chapter, section) not in CHECKED[doc]]
    assert unchecked == []


def test_no_rule_file_cites_a_section_that_was_not_checked():
    """The same holds for every rule's source and reason, in every rule file."""
    unchecked = []
    for path in sorted(RULES.glob("*.yaml")):
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        rules = document.get("rules", []) if isinstance(document, dict) else []
        for rule in rules:
            for field in ("source", "because"):
                for doc, chapter, section in _sections(str(rule.get(field, ""))):
                    if (chapter, section) not in CHECKED[doc]:
                        unchecked.append((path.name, rule.get("id"), field, chapter, section))
    assert unchecked == []


def test_the_parser_reads_chapters_and_sections():
    assert _sections("Medicare Claims Processing Manual, ch. 12, §40.2 and §30.6.6") == [
        ("Medicare Claims Processing Manual", "12", "40.2"), ("Medicare Claims Processing Manual", "12", "30.6.6")]
    assert _sections("CMS NCCI Policy Manual for Medicare Services, ch. I, §E; CMS MLN fact sheet") == [
        ("CMS NCCI Policy Manual for Medicare Services", "I", "E")]
    assert _sections("Medicare Claims Processing Manual, ch. 12, §20.4.3; ch. 13, §20") == [
        ("Medicare Claims Processing Manual", "12", "20.4.3"), ("Medicare Claims Processing Manual", "13", "20")]
    assert _sections("Medicare Claims Processing Manual, ch. 12") == []
