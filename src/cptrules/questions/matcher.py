"""Score a question against the phrasebook: intent, codes, date, confidence, and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from .extract import Extraction, extract
from .phrasebook import Cue, Phrasebook, cue_words, normalise_words
from .places import PlaceFinder, find_zip

NO_INTENT = "none"
_CODEISH = re.compile(r"(?<![\w$.])[A-Za-z0-9]{3,10}(?![\w])(?!\.\d)")


@dataclass(frozen=True, slots=True)
class Interpretation:
    """How a question was read, with every cue that contributed."""

    intent: str
    confidence: float
    runner_up: str
    scores: dict[str, float]
    matched: tuple[tuple[Cue, float], ...]
    extraction: Extraction
    normalised: str


def normalise_question(text: str) -> str:
    """NFKC, so full-width digits and ligatures read as plain text; controls become spaces."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isprintable():
        # Only the distinct characters are looked at, never every character of the text.
        controls = {ord(c): " " for c in set(text) if unicodedata.category(c).startswith("C")}
        text = text.translate(controls)
    return text.strip()


def _words_without_codes(text: str, extraction: Extraction) -> str:
    found = {c.upper() for c in extraction.codes} | {m.upper() for m in extraction.malformed}

    def blank(match: re.Match[str]) -> str:
        token = match.group(0).upper()
        return " " if token in found or token[:5] in found or token[-5:] in found else match.group(0)

    return _CODEISH.sub(blank, text)


def score(words: str, book: Phrasebook) -> tuple[dict[str, float], list[tuple[Cue, float]]]:
    """Sum cue weights per intent. Every word is first corrected to its nearest cue word, so a
    misspelt word counts inside a phrase as well as alone, in proportion to its closeness."""
    tokens, closeness = [], []
    for raw in words.split():
        word, close = book.correct(raw.strip(".'\""))
        tokens.append(word)
        closeness.append(close)
    matched: dict[Cue, float] = {}
    for start, token in enumerate(tokens):
        for cue in book.keywords.get(token, ()):
            matched[cue] = max(matched.get(cue, 0.0), closeness[start])
        for cue in book.phrase_index.get(token, ()):
            size = cue.text.count(" ") + 1
            if " ".join(tokens[start:start + size]) == cue.text:
                matched[cue] = max(matched.get(cue, 0.0), min(closeness[start:start + size]))
    if book.patterns:
        corrected = " ".join(tokens)
        present = set(tokens)
        for pattern in book.patterns:
            if not pattern.anchors.isdisjoint(present) and pattern.regex.search(corrected):
                matched[pattern.cue] = 1.0
    totals: dict[str, float] = {}
    for cue, close in matched.items():
        totals[cue.intent] = totals.get(cue.intent, 0.0) + cue.weight * close
    # A negative pattern takes a cue back; it never makes an intent less than unmentioned.
    totals = {intent: max(total, 0.0) for intent, total in totals.items()}
    return totals, sorted(matched.items(), key=lambda kv: (-kv[0].weight * kv[1], kv[0].line))


_PLACE_WORDS = frozenset({"locality", "localitystate"})


def interpret(question: str, book: Phrasebook, is_code: Callable[[str], bool],
              today: dt.date, places: PlaceFinder | None = None) -> Interpretation:
    """Read a question: codes, date and place first, then the intent from the remaining words.
    A named place reads as the word "locality", so the phrasebook can weigh it."""
    text = normalise_question(question)
    extraction = extract(text, is_code, book.prefixes, book.modifiers, today, book.year_cues)
    mention, numbers = find_zip(text, extraction.codes, places.is_locality if places else None, book.modifiers)
    if mention is None and places is not None:
        mention = places.find(text)
    if mention is not None or numbers:
        extraction = dataclasses.replace(
            extraction, place=mention, codes=tuple(c for c in extraction.codes if c not in numbers),
            modifiers=tuple(m for m in extraction.modifiers if m[0] not in numbers))
    words = normalise_words(_words_without_codes(text, extraction))
    for number in numbers:
        words = re.sub(rf"(?<![\w-]){number}(?:-\d{{2,4}})?(?![\w-])", " ", words)
    if mention is not None:
        # A named place reads as a word the phrasebook weighs: a locality or ZIP strongly, a state less.
        if places is not None and not mention.zip_code and mention.text in words:
            words = places.words_without(words)
        else:
            words = " ".join(words.split() + ["locality" if mention.locality or mention.zip_code else "localitystate"])
    words = cue_words(book.rewrite(words))
    totals, matched = score(words, book)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], book.intents.index(kv[0])))
    has_code = bool(extraction.codes or extraction.malformed)
    if not has_code:
        # An intent that only makes sense about a code ("what is a deductible") is no intent.
        ranked = [(NO_INTENT, s) if i in book.needs_code else (i, s) for i, s in ranked]
    elif ranked and ranked[0][0] == NO_INTENT:
        # Out-of-scope cues do not override a question about a real code.
        ranked = ranked[1:]
    best, best_score = ranked[0] if ranked else (NO_INTENT, 0.0)
    second, second_score = ranked[1] if len(ranked) > 1 else ("", 0.0)
    # A place alone ("a good surgeon in Dallas", "my zip is 30303") is not a question about
    # payment: without a code, the place must come with some other cue.
    place_only = mention is not None and all(cue.text in _PLACE_WORDS for cue, _ in matched)
    if (best == NO_INTENT or extraction.diagnosis_codes or place_only) and not has_code:
        return Interpretation(NO_INTENT, 0.0, "", totals, tuple(matched), extraction, words)
    if best_score < book.min_score:
        if extraction.codes or extraction.malformed:
            leftover = [w for w in words.split() if w not in {"cpt", "hcpcs", "code", "the", "a"}]
            confidence = 0.9 if not leftover else 0.4
            return Interpretation(book.bare_code_intent, confidence, "", totals, tuple(matched),
                                  extraction, words)
        return Interpretation(NO_INTENT, 0.0, "", totals, tuple(matched), extraction, words)
    source = book.source_formats.get(best)
    if source is not None and len(extraction.codes) > 1:
        codes = sorted(extraction.codes, key=lambda c: not source.match(c))
        extraction = dataclasses.replace(extraction, codes=tuple(codes))
    confidence = round(best_score / (best_score + second_score) * min(1.0, best_score / 4.0), 3)
    runner_up = second if second and second_score >= best_score * (1 - book.runner_up_margin) else ""
    return Interpretation(best, confidence, runner_up, totals, tuple(matched), extraction, words)
