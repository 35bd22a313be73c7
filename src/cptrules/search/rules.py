"""rules/search.yaml: the analyst-edited words of code search (synonyms and abbreviations, the
cues of a find-code question, the distinctions a question may leave open) and the find-code
answer template, validated like the other rule files, every problem with file:line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ..answers.templates import compile_question, render
from ..errors import RuleFileErrors, RuleProblem, TemplateRenderError
from ..ruleset.compile import plain_yaml
from ..ruleset.source import SourceFile, line_of, parse_yaml

FILE = "search.yaml"
TEMPLATE = "search/find_code.j2"
# What the find-code template may read (each candidate is a mapping with the keys below).
TEMPLATE_NAMES = {"subject", "candidates", "notes", "readings"}
CANDIDATE_KEYS = ("code", "descriptor", "descriptor_source", "category_label", "why", "score")

_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
_WORDS = {"type": "array", "items": _TEXT}
_CODE = {"type": "string", "pattern": "^[0-9A-Z]{5}$"}
SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["version", "find_code", "synonyms", "distinctions"],
    "properties": {
        "version": {"type": "string", "minLength": 1},
        "find_code": {
            "type": "object", "additionalProperties": False,
            "required": ["cues", "endings", "filler", "candidates", "min_score"],
            "properties": {
                "cues": _WORDS, "endings": _WORDS, "filler": _WORDS, "not_when": _WORDS,
                "candidates": {"type": "integer", "minimum": 1, "maximum": 10},
                "min_score": {"type": "number", "minimum": 0, "maximum": 1},
                "prefer": {"type": "object", "additionalProperties": False, "properties": {
                    word: {"type": "array", "minItems": 1, "items": {"enum": [
                        "CATEGORY_I", "CATEGORY_II", "CATEGORY_III", "PLA", "MAAA", "HCPCS_LEVEL_II"]}}
                    for word in ("cpt", "hcpcs")}},
            }},
        "synonyms": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["terms", "means"],
            "properties": {"terms": {"type": "array", "minItems": 1, "items": _TEXT}, "means": _TEXT}}},
        "distinctions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "codes", "said_by", "note"],
            "properties": {"name": _TEXT, "codes": {"type": "array", "minItems": 2, "items": _CODE},
                           "said_by": {"type": "array", "minItems": 1, "items": _TEXT},
                           "note": {"type": "string", "minLength": 1, "maxLength": 600}}}},
    },
}


def words(text: str) -> tuple[str, ...]:
    """Lower-case word tokens (letters, digits, apostrophes inside words)."""
    return tuple(re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower()))


@dataclass(frozen=True)
class Located:
    """A phrase of search.yaml with the line it is written on."""

    words: tuple[str, ...]
    text: str
    line: int


@dataclass(frozen=True)
class Synonym:
    """Terms a person writes (TKA, flu shot) and the words the code texts use for them."""

    terms: tuple[Located, ...]
    means: str
    line: int


@dataclass(frozen=True)
class Distinction:
    """Codes between which the choice turns on something a question may not say."""

    name: str
    codes: tuple[str, ...]
    said_by: tuple[tuple[str, ...], ...]
    note: str
    line: int


@dataclass(frozen=True)
class SearchRules:
    """The compiled search.yaml and find-code template; empty when a rules folder has none."""

    path: str = FILE
    version: str = ""
    cues: tuple[Located, ...] = ()
    endings: tuple[Located, ...] = ()
    filler: frozenset[str] = frozenset()
    not_when: tuple[Located, ...] = ()
    candidates: int = 3
    min_score: float = 0.3
    prefer: dict[str, tuple[str, ...]] = field(default_factory=dict)
    synonyms: tuple[Synonym, ...] = ()
    distinctions: tuple[Distinction, ...] = ()
    template: Any = None

    @property
    def finds_codes(self) -> bool:
        return bool(self.template is not None and (self.cues or self.endings))

    def render(self, values: dict[str, Any]) -> str:
        return render(self.template, values)


def load_search_rules(root: Path) -> SearchRules:
    """Read and check rules/search.yaml and rules/search/find_code.j2; RuleFileErrors lists every
    problem. A rules folder without search.yaml searches without synonyms and finds no codes
    from questions."""
    path = root / FILE
    if not path.is_file():
        return SearchRules()
    template_path = root / TEMPLATE
    template_text = template_path.read_text(encoding="utf-8") if template_path.is_file() else None
    return compile_search_rules(SourceFile(FILE, path.read_text(encoding="utf-8")), template_text)


def compile_search_rules(source: SourceFile, template_text: str | None) -> SearchRules:
    """search.yaml's text (and the template's) → SearchRules, or RuleFileErrors with file:line."""
    doc, problems = parse_yaml(source)
    if doc is None and not problems:
        problems = [RuleProblem(source.path, 1, "EMPTY_FILE", "the file is empty")]
    if problems:
        raise RuleFileErrors(problems)
    plain = plain_yaml(doc)
    problems = [RuleProblem(source.path, line_of(doc, list(e.absolute_path)), "SCHEMA",
                            f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
                for e in Draft202012Validator(SCHEMA).iter_errors(plain)]
    if problems:
        raise RuleFileErrors(problems)
    finding = plain["find_code"]

    def located(part: str, index: int, text: str, *where: Any) -> Located:
        line = line_of(doc, [*where, index]) if where else line_of(doc, ["find_code", part, index])
        found = words(text)
        if not found:
            problems.append(RuleProblem(source.path, line, "SCHEMA", f"{text!r} has no words"))
        return Located(found, text, line)

    cues = tuple(located("cues", i, t) for i, t in enumerate(finding["cues"]))
    endings = tuple(located("endings", i, t) for i, t in enumerate(finding["endings"]))
    not_when = tuple(located("not_when", i, t) for i, t in enumerate(finding.get("not_when") or []))
    synonyms = []
    seen: dict[tuple[str, ...], int] = {}
    for i, raw in enumerate(plain["synonyms"]):
        terms = tuple(located("", j, t, "synonyms", i, "terms") for j, t in enumerate(raw["terms"]))
        for term in terms:
            if term.words in seen:
                problems.append(RuleProblem(source.path, term.line, "DUPLICATE",
                                            f"{term.text!r} is also a term at line {seen[term.words]}"))
            seen.setdefault(term.words, term.line)
        synonyms.append(Synonym(terms, raw["means"], line_of(doc, ["synonyms", i])))
    distinctions = tuple(
        Distinction(raw["name"], tuple(raw["codes"]), tuple(words(w) for w in raw["said_by"]),
                    raw["note"], line_of(doc, ["distinctions", i]))
        for i, raw in enumerate(plain["distinctions"]))
    template = None
    if template_text is None:
        problems.append(RuleProblem(TEMPLATE, 0, "MISSING_FILE",
                                    f"{TEMPLATE} does not exist: find-code questions need it"))
    else:
        template, problem = compile_question(template_text, TEMPLATE, 1, TEMPLATE_NAMES)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise RuleFileErrors(problems)
    rules = SearchRules(source.path, plain["version"], cues, endings,
                        frozenset(w for t in finding["filler"] for w in words(t)), not_when,
                        finding["candidates"], float(finding["min_score"]),
                        {k: tuple(v) for k, v in (finding.get("prefer") or {}).items()},
                        tuple(synonyms), distinctions, template)
    _sample_render(rules)
    return rules


def _sample_render(rules: SearchRules) -> None:
    """Render the template once with every part filled, so a template that fails on real
    values (a bad filter argument, a wrong key) is refused at load, not on a question."""
    candidate = {"code": "99213", "descriptor": "An office visit", "descriptor_source": "curated catalogue",
                 "category_label": "CPT Category I", "why": "matched 'office visit'", "score": 0.9}
    try:
        rules.render({"subject": "office visit", "candidates": [candidate, dict(candidate, code="99214")],
                      "notes": ["a note"], "readings": ["'ov' read as 'office visit'"]})
    except TemplateRenderError as error:
        raise RuleFileErrors([RuleProblem(error.path, error.line, "TEMPLATE", error.detail)]) from None
