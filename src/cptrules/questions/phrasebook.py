"""The compiled form of rules/questions.yaml: weighted phrasings per intent, the word classes and
intent-deciding patterns, and the vocabulary a misspelt word is corrected against."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler

from ..errors import RuleProblem
from ..ruleset.source import line_of

# Corrections are remembered per word: questions reuse a small vocabulary.
_CORRECTION_CACHE = 16_384
# A hyphen between letters joins words ("known-as", "non-facility"); it reads as a space.
_JOINING_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])")
_PATTERN_PART = re.compile(r"\{([a-z_]+)\}|(\.\.\.)|([^\s{}]+)")
GAP_WORDS = 3  # how many words "..." in a pattern stands for, at most


@dataclass(frozen=True, slots=True)
class Cue:
    """A phrase, keyword or pattern that points to an intent, with its weight and location."""

    intent: str
    text: str
    weight: float
    line: int
    is_phrase: bool


@dataclass(frozen=True, slots=True)
class Pattern:
    """An intent-deciding pattern over word classes ("{profession} ... {performs}")."""

    cue: Cue
    regex: re.Pattern[str]
    anchors: frozenset[str]  # one of these words must be in the question for the pattern to be tried


@dataclass(frozen=True)
class Phrasebook:
    """Every cue, the abbreviation rewrites and the matching thresholds."""

    path: str
    cues: tuple[Cue, ...]
    keywords: dict[str, tuple[Cue, ...]]
    phrases: tuple[Cue, ...]
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
    needs_code: frozenset[str]
    source_formats: dict[str, re.Pattern[str]]
    patterns: tuple[Pattern, ...]
    vocabulary: frozenset[str]
    rewrite: Callable[[str], str]
    correct: Callable[[str], tuple[str, float]]
    year_cues: tuple[tuple[str, ...], ...] = ()  # phrases beside which a four-digit number is a year


def normalise_words(text: str) -> str:
    """Lowercase words separated by single spaces; apostrophes and slashes kept."""
    return " ".join(re.findall(r"[a-z0-9'&/®.-]+", text.lower())).strip(" .")


def cue_words(text: str) -> str:
    """The words a cue or a question is matched on: normalised, hyphens between letters as spaces."""
    return _JOINING_HYPHEN.sub(" ", normalise_words(text))


def _same_letters(word: str, other: str) -> bool:
    return len(word) == len(other) and sorted(word) == sorted(other)


class WordCorrector:
    """A word's nearest cue word and how close it is (the word itself and 1.0 when it is known or
    too far from any). A typo keeps its first letter; long words may have one letter wrong, short
    ones only one letter missing, extra or swapped, so ordinary words are not taken for cue words.
    A class rather than a closure, so a compiled phrasebook can be persisted with its snapshot."""

    def __init__(self, vocabulary: frozenset[str], ordinary: frozenset[str], min_score: float) -> None:
        self.vocabulary, self.ordinary, self.min_score = vocabulary, ordinary, min_score
        self.buckets: dict[str, list[str]] = {}
        for word in sorted(vocabulary):
            if len(word) >= 5 and word.isalpha():  # short cue words are matched exactly
                self.buckets.setdefault(word[0], []).append(word)
        self._known: dict[str, tuple[str, float]] = {}

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_known": {}}  # the corrections made so far stay with the process

    def __call__(self, word: str) -> tuple[str, float]:
        known = self._known.get(word)
        if known is None:
            if len(self._known) >= _CORRECTION_CACHE:  # bounded: questions can hold any words
                self._known.clear()
            known = self._known[word] = self._correct(word)
        return known

    def _correct(self, word: str) -> tuple[str, float]:
        if len(word) < 5 or word in self.vocabulary or word in self.ordinary or not word.isalpha():
            return word, 1.0
        min_score = self.min_score
        choices = self.buckets.get(word[0], ())
        best = process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=min_score)
        # One edit, a swapped pair included, is nearer than a ratio that counts a swap as two.
        near = process.extractOne(word, choices, scorer=OSA.distance, score_cutoff=1)
        if near and (best is None or near[0] != best[0]) and (
                best is not None or len(word) >= 7 or _same_letters(word, near[0])):
            return near[0], max(fuzz.ratio(word, near[0]), min_score) / 100.0
        if best:
            return best[0], best[1] / 100.0
        if len(word) >= 7:
            # Swapped vowels ("permenant") defeat edit ratios; Jaro-Winkler keeps them close.
            best = process.extractOne(word, choices, scorer=JaroWinkler.normalized_similarity,
                                      score_cutoff=0.95)
            if best:
                return best[0], float(best[1])
        return word, 1.0


class AbbreviationRewriter:
    """One pass over the words for every abbreviation, the longest first where two start together
    (a class, not a closure, so the phrasebook can be persisted)."""

    def __init__(self, abbreviations: dict[str, str]) -> None:
        self.table = {normalise_words(str(k)): normalise_words(str(v)) for k, v in abbreviations.items()}
        alternatives = "|".join(re.escape(k) for k in sorted(self.table, key=lambda k: (-len(k), k)))
        self.pattern = re.compile(r"(?<![\w'])(?:" + alternatives + r")(?![\w'])") if self.table else None

    def __call__(self, words: str) -> str:
        if self.pattern is None:
            return words
        return self.pattern.sub(self._expand, words)

    def _expand(self, match: re.Match[str]) -> str:
        return self.table[match.group(0)]


def _compile_pattern(text: str, classes: dict[str, tuple[str, ...]]) -> tuple[str, frozenset[str]] | str:
    """A pattern as a regular expression over the question's words, with its anchor words;
    or the reason it cannot be compiled. Class words and longer words also match with a plural "s"."""
    parts: list[tuple[str, bool]] = []  # (regex, is a gap)
    anchors: frozenset[str] | None = None
    for klass, gap, word in _PATTERN_PART.findall(text):
        if klass:
            if klass not in classes:
                return f"unknown word class {{{klass}}}"
            words = sorted(classes[klass], key=lambda w: (-len(w), w))
            parts.append(("(?:" + "|".join(re.escape(w) + "s?" for w in words) + ")", False))
            if anchors is None:
                firsts = [w.split()[0] for w in words]
                anchors = frozenset(firsts) | frozenset(f + "s" for f in firsts)
        elif gap:
            parts.append((f"(?:\\S+ ){{0,{GAP_WORDS}}}", True))
        else:
            norm = cue_words(word)
            if not norm:
                return f"empty word {word!r}"
            parts.append((re.escape(norm) + ("s?" if norm.isalpha() and len(norm) > 3 else ""), False))
            if anchors is None:
                anchors = frozenset([norm.split()[0]])
    if not parts or anchors is None or parts[0][1] or parts[-1][1]:
        return "a pattern needs a word or a class at each end"
    regex = parts[0][0]
    for (before, _), (part, _) in zip(parts, parts[1:]):
        regex += part if before.endswith(f"{{0,{GAP_WORDS}}}") else " " + part
    return r"(?<!\S)" + regex + r"(?!\S)", anchors


def compile_phrasebook(doc: dict[str, Any], located: Any, path: str,
                       templates: set[str]) -> tuple[Phrasebook | None, list[RuleProblem]]:
    """Build the phrasebook; every intent must have an answer template."""
    problems: list[RuleProblem] = []
    found: dict[tuple[str, str], Cue] = {}
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
                norm = cue_words(str(text))
                if kind == "keywords" and " " in normalise_words(str(text)):
                    problems.append(RuleProblem(path, cue_line, "SCHEMA",
                                                f"keyword {text!r} has spaces; put it under phrases"))
                    continue
                if not norm:
                    problems.append(RuleProblem(path, cue_line, "SCHEMA", f"empty cue {text!r}"))
                    continue
                # "post-op" and "post op" are one cue: the heavier counts once. A hyphenated cue
                # also matches written as one word ("postop", "cosurgery").
                forms = [norm] + ([norm.replace(" ", "")] if "-" in str(text) and norm != normalise_words(str(text)) else [])
                for form in forms:
                    cue = Cue(intent, form, float(weight), cue_line, " " in form)
                    if (intent, form) not in found or found[(intent, form)].weight < cue.weight:
                        found[(intent, form)] = cue
    cues = list(found.values())
    classes = {str(name): tuple(cue_words(str(w)) for w in words)
               for name, words in (doc.get("word_classes") or {}).items()}
    patterns: list[Pattern] = []
    for i, rule in enumerate(doc.get("patterns") or ()):
        rule_line = line_of(located, ["patterns", i])
        if rule["intent"] not in doc["intents"]:
            problems.append(RuleProblem(path, rule_line, "SCHEMA", f"pattern for unknown intent {rule['intent']!r}"))
            continue
        compiled = _compile_pattern(str(rule["when"]), classes)
        if isinstance(compiled, str):
            problems.append(RuleProblem(path, rule_line, "SCHEMA", f"pattern {rule['when']!r}: {compiled}"))
            continue
        cue = Cue(rule["intent"], str(rule["when"]), float(rule["weight"]), rule_line, True)
        patterns.append(Pattern(cue, re.compile(compiled[0]), compiled[1]))
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
    index: dict[str, list[Cue]] = {}
    for cue in cues:
        if cue.is_phrase:
            index.setdefault(cue.text.split()[0], []).append(cue)
        else:
            keywords.setdefault(cue.text, []).append(cue)
    vocabulary = frozenset(w for cue in cues for w in cue.text.split()) | frozenset(
        w for words in classes.values() for phrase in words for w in phrase.split())
    ordinary = frozenset(cue_words(str(w)) for w in doc.get("ordinary_words") or ())
    min_fuzzy = float(doc.get("fuzzy_min_score", 86))
    book = Phrasebook(
        path=path,
        cues=tuple(cues) + tuple(p.cue for p in patterns),
        keywords={k: tuple(v) for k, v in keywords.items()},
        phrases=tuple(c for c in cues if c.is_phrase),
        intents=tuple(doc["intents"]),
        bare_code_intent=bare,
        prefixes=frozenset(normalise_words(p) for p in doc.get("code_prefixes", [])),
        modifiers=frozenset(str(m).upper() for m in doc.get("modifiers", [])),
        fuzzy_min_score=min_fuzzy,
        runner_up_margin=float(doc.get("runner_up_margin", 0.25)),
        min_score=float(doc.get("min_score", 1.0)),
        tests=tuple({**test, "line": line_of(located, ["tests", i])}
                    for i, test in enumerate(doc.get("tests") or ())),
        examples=examples,
        phrase_index={k: tuple(v) for k, v in index.items()},
        needs_code=frozenset(i for i, spec in doc["intents"].items() if spec.get("needs_code")),
        source_formats=formats,
        patterns=tuple(patterns),
        vocabulary=vocabulary,
        rewrite=AbbreviationRewriter(doc.get("abbreviations") or {}),
        correct=WordCorrector(vocabulary, ordinary, min_fuzzy),
        year_cues=tuple(dict.fromkeys(tuple(cue_words(str(c)).split()) for c in doc.get("year_cues") or ())),
    )
    return (None if problems else book), problems
