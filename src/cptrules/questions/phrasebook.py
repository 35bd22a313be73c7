"""The compiled form of rules/questions.yaml: weighted phrasings per intent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import RuleProblem
from ..ruleset.source import line_of


@dataclass(frozen=True, slots=True)
class Cue:
    """A phrase or keyword that points to an intent, with its weight and location."""

    intent: str
    text: str
    weight: float
    line: int
    is_phrase: bool


@dataclass(frozen=True)
class Phrasebook:
    """Every cue, the abbreviation rewrites and the matching thresholds."""

    path: str
    cues: tuple[Cue, ...]
    keywords: dict[str, tuple[Cue, ...]]
    phrases: tuple[Cue, ...]
    abbreviations: tuple[tuple[re.Pattern[str], str], ...]
    intents: tuple[str, ...]
    bare_code_intent: str
    prefixes: frozenset[str]
    modifiers: frozenset[str]
    fuzzy_min_score: float
    runner_up_margin: float
    min_score: float
    tests: tuple[dict[str, Any], ...]
    examples: dict[str, str]
    phrase_index: dict[str, tuple[Cue, ...]]
    fuzzy_phrases: tuple[Cue, ...]
    fuzzy_texts: tuple[str, ...]
    needs_code: frozenset[str]
    source_formats: dict[str, re.Pattern[str]]


def normalise_words(text: str) -> str:
    """Lowercase words separated by single spaces; apostrophes and slashes kept."""
    return " ".join(re.findall(r"[a-z0-9'&/®.-]+", text.lower())).strip(" .")


def compile_phrasebook(doc: dict[str, Any], located: Any, path: str,
                       templates: set[str]) -> tuple[Phrasebook | None, list[RuleProblem]]:
    """Build the phrasebook; every intent must have an answer template."""
    problems: list[RuleProblem] = []
    cues: list[Cue] = []
    bare = ""
    examples = {}
    for intent, spec in doc["intents"].items():
        line = line_of(located, ["intents", intent])
        if intent not in templates and intent != "none":
            problems.append(RuleProblem(path, line, "NO_TEMPLATE",
                                        f"intent {intent!r} has no answer template"))
        if spec.get("bare_code"):
            if bare:
                problems.append(RuleProblem(path, line, "CONFLICT",
                                            f"both {bare!r} and {intent!r} claim bare codes"))
            bare = intent
        examples[intent] = spec.get("example", "")
        for kind in ("phrases", "keywords"):
            for text, weight in (spec.get(kind) or {}).items():
                cue_line = line_of(located, ["intents", intent, kind, text])
                norm = normalise_words(str(text))
                if kind == "keywords" and " " in norm:
                    problems.append(RuleProblem(path, cue_line, "SCHEMA",
                                                f"keyword {text!r} has spaces; put it under phrases"))
                    continue
                if not norm:
                    problems.append(RuleProblem(path, cue_line, "SCHEMA", f"empty cue {text!r}"))
                    continue
                cues.append(Cue(intent, norm, float(weight), cue_line, kind == "phrases"))
    formats: dict[str, re.Pattern[str]] = {}
    for intent, spec in doc["intents"].items():
        if spec.get("source_code_format"):
            try:
                # Matched against five-character codes only, so backtracking is bounded.
                formats[intent] = re.compile(spec["source_code_format"])
            except re.error as exc:
                problems.append(RuleProblem(path, line_of(located, ["intents", intent, "source_code_format"]),
                                            "SCHEMA", f"source_code_format: {exc}"))
    if not bare:
        problems.append(RuleProblem(path, 1, "SCHEMA", "no intent has bare_code: true"))
    keywords: dict[str, list[Cue]] = {}
    for cue in cues:
        if not cue.is_phrase:
            keywords.setdefault(cue.text, []).append(cue)
    abbreviations = tuple(
        (re.compile(r"(?<![\w'])" + re.escape(normalise_words(str(k))) + r"(?![\w'])"),
         normalise_words(str(v)))
        for k, v in sorted((doc.get("abbreviations") or {}).items(), key=lambda kv: -len(str(kv[0]))))
    index: dict[str, list[Cue]] = {}
    for cue in cues:
        if cue.is_phrase:
            index.setdefault(cue.text.split()[0], []).append(cue)
    fuzzy = tuple(c for c in cues if c.is_phrase and len(c.text) >= 8)
    book = Phrasebook(
        path=path,
        cues=tuple(cues),
        keywords={k: tuple(v) for k, v in keywords.items()},
        phrases=tuple(c for c in cues if c.is_phrase),
        abbreviations=abbreviations,
        intents=tuple(doc["intents"]),
        bare_code_intent=bare,
        prefixes=frozenset(normalise_words(p) for p in doc.get("code_prefixes", [])),
        modifiers=frozenset(str(m).upper() for m in doc.get("modifiers", [])),
        fuzzy_min_score=float(doc.get("fuzzy_min_score", 86)),
        runner_up_margin=float(doc.get("runner_up_margin", 0.25)),
        min_score=float(doc.get("min_score", 1.0)),
        tests=tuple({**test, "line": line_of(located, ["tests", i])}
                    for i, test in enumerate(doc.get("tests") or ())),
        examples=examples,
        phrase_index={k: tuple(v) for k, v in index.items()},
        fuzzy_phrases=fuzzy,
        fuzzy_texts=tuple(c.text for c in fuzzy),
        needs_code=frozenset(i for i, spec in doc["intents"].items() if spec.get("needs_code")),
        source_formats=formats,
    )
    return (None if problems else book), problems
