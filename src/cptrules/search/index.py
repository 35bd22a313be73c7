"""Ranked code search over every text we may show: BM25 (bm25s) over stemmed words, rapidfuzz to
read misspelt words as the nearest word the texts use, and search.yaml's synonyms and
abbreviations added to the query. Built once per snapshot (data + rules), read-only after."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from rapidfuzz import fuzz, process

from ..data.store import CodeData
from .rules import SearchRules, Synonym, words

# How much a hit in each text counts: our own descriptor and the names people use first, CMS's
# and the AMA's short texts next, the longer plain-language text least (it names neighbours).
FIELD_WEIGHTS = {
    "synonym": 1.0,
    "descriptor": 1.0,
    "hcpcs_long_description": 0.95,
    "cpt_short_descriptor": 0.9,
    "hcpcs_short_description": 0.85,
    "plain_language": 0.6,
}
SECOND_FIELD_SHARE = 0.3   # a code matched in two texts ranks above one matched in a single text
RETRIEVE = 300             # texts scored in full per query, best BM25 first
TYPO_MIN_LENGTH = 4        # shorter words are too ambiguous to correct
TYPO_CUTOFF = 84           # rapidfuzz ratio a misspelt word needs to a word of the texts
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on itself at import
_STOP = frozenset(STOPWORDS_EN) | {"s"}
_CODE_SHAPE = re.compile(r"^(\d{5}|\d{4}[A-Z]|[A-Z]\d{4})$")


@dataclass(frozen=True)
class Match:
    """One code found, with the text that matched it and why."""

    code: str
    score: float            # 0..1: half the share of query words the text holds, half BM25 relative to the best
    matched_text: str
    matched_field: str
    category: str
    category_label: str
    descriptor: str
    descriptor_source: str
    why: str


@dataclass(frozen=True)
class Query:
    """A query as searched: its words with synonyms added and typos read, and how it was read."""

    text: str
    stems: tuple[str, ...]
    readings: tuple[str, ...]       # "'tka' read as 'total knee arthroplasty' (search.yaml:12)"
    synonym_lines: tuple[int, ...]


@dataclass(frozen=True)
class _Doc:
    code: str
    field: str
    text: str


class SearchIndex:
    """Every searchable text of one snapshot's data, indexed for ranked search."""

    def __init__(self, data: CodeData, rules: SearchRules,
                 category_of: Callable[[str], tuple[str, str]]) -> None:
        self.rules = rules
        self._category_of = category_of
        self._stemmer = Stemmer.Stemmer("english")
        self._docs = list(_documents(data))
        self._descriptors = _descriptors(data)
        tokens = [self._stems(words(d.text)) for d in self._docs]
        self._doc_stems = [frozenset(t) for t in tokens]
        self._bm25 = bm25s.BM25()
        self._bm25.index([t or [""] for t in tokens], show_progress=False)
        # Misspellings are read as words of the texts or of search.yaml's terms ("arthroplsty"),
        # not of CMS's short descriptions: those abbreviate words ("replacemnt") on purpose.
        written = [d.text for d in self._docs if d.field != "hcpcs_short_description"]
        written += [t.text for s in rules.synonyms for t in s.terms]
        self._vocabulary = sorted({w for text in written for w in words(text)
                                   if len(w) >= TYPO_MIN_LENGTH and not w.isdigit()})
        self._known_words = frozenset(self._vocabulary)
        self._codes = {d.code for d in self._docs} | set(data.codes())

    def __len__(self) -> int:
        return len(self._docs)

    def _stems(self, found: Iterable[str]) -> list[str]:
        return self._stemmer.stemWords([w for w in found if w not in _STOP])

    def read(self, text: str) -> Query:
        """The query's words, misspellings read as the nearest word of the texts, and each
        synonym's meaning added where one of its terms appears."""
        found = list(words(text))
        typed: list[str] = []
        readings: list[str] = []
        for i, word in enumerate(found):
            if len(word) < TYPO_MIN_LENGTH or word in self._known_words or word in _STOP or word.isdigit():
                continue
            if any(word in t.words for s in self.rules.synonyms for t in s.terms):
                continue
            best = process.extractOne(word, self._vocabulary, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
            if best is not None:
                readings.append(f"{word!r} read as {best[0]!r}")
                found[i] = best[0]
                typed.append(word)  # still searched as written: CMS's abbreviations match it
        added: list[str] = []
        lines: list[int] = []
        for synonym in self.rules.synonyms:
            term = _first_term(synonym, found)
            if term is not None:
                added += words(synonym.means)
                lines.append(synonym.line)
                readings.append(f"{term!r} read as {synonym.means!r} ({self.rules.path}:{synonym.line})")
        return Query(text, tuple(self._stems(found + added + typed)), tuple(readings), tuple(lines))

    def search(self, text: str, limit: int, categories: Iterable[str] = (),
               prefer: Iterable[str] = ()) -> tuple[Query, list[Match]]:
        """The best `limit` codes for the text, best first; only `categories` when given; codes of
        `prefer` categories ahead of equally good others."""
        wanted = set(categories)
        preferred = set(prefer)
        query = self.read(text)
        exact = text.strip().upper()
        matches: list[Match] = []
        if _CODE_SHAPE.match(exact) and exact in self._codes:
            category, label = self._category_of(exact)
            if not wanted or category in wanted:
                descriptor, source = self._descriptors.get(exact, ("", ""))
                matches.append(Match(exact, 1.0, exact, "code", category, label, descriptor, source,
                                     "the query is this code"))
        stems = set(query.stems)
        if not stems:
            return query, matches[:limit]
        scores = self._bm25.get_scores(list(query.stems))
        top = np.argsort(-scores, kind="stable")[:RETRIEVE]
        by_code: dict[str, list[tuple[float, int]]] = {}
        for i in top:
            score = float(scores[i])
            if score <= 0:
                break
            doc = self._docs[i]
            by_code.setdefault(doc.code, []).append((score * FIELD_WEIGHTS[doc.field], int(i)))
        ranked = []
        for code, hits in by_code.items():
            if code in {m.code for m in matches}:
                continue
            category, label = self._category_of(code)
            if wanted and category not in wanted:
                continue
            hits.sort(reverse=True)
            total = hits[0][0] + (SECOND_FIELD_SHARE * hits[1][0] if len(hits) > 1 else 0.0)
            if preferred and category not in preferred:
                total *= 0.8
            ranked.append((total, code, hits[0][1], category, label))
        ranked.sort(key=lambda r: (-r[0], r[1]))
        best = ranked[0][0] if ranked else 1.0
        for total, code, at, category, label in ranked[:max(0, limit - len(matches))]:
            doc = self._docs[at]
            share = len(stems & self._doc_stems[at]) / len(stems)
            descriptor, source = self._descriptors.get(code, ("", ""))
            matches.append(Match(code, round(0.5 * share + 0.5 * total / best, 4), doc.text, doc.field,
                                 category, label, descriptor, source, _why(doc, query)))
        return query, matches


def _first_term(synonym: Synonym, found: list[str]) -> str | None:
    """The first of the synonym's terms whose words appear together in `found`."""
    for term in synonym.terms:
        size = len(term.words)
        if any(tuple(found[i:i + size]) == term.words for i in range(len(found) - size + 1)):
            return term.text
    return None


_FIELD_NAMES = {
    "synonym": "a name for it in our catalogue",
    "descriptor": "our descriptor",
    "plain_language": "our plain-language text",
    "hcpcs_long_description": "CMS's HCPCS long description",
    "hcpcs_short_description": "CMS's HCPCS short description",
    "cpt_short_descriptor": "the CPT short descriptor in your imported file",
}


def _why(doc: _Doc, query: Query) -> str:
    text = doc.text if len(doc.text) <= 90 else doc.text[:89] + "…"
    why = f"matched {_FIELD_NAMES[doc.field]} \"{text}\""
    return why + (f"; {'; '.join(query.readings)}" if query.readings else "")


def _documents(data: CodeData) -> Iterable[_Doc]:
    """Every text we may show, one document per (code, field): the curated catalogue, CMS's
    HCPCS descriptions (newest file listing the code) and imported CPT short descriptors."""
    for code, entry in data.catalogue.entries.items():
        for name in ("descriptor", "plain_language"):
            if entry.text(name):
                yield _Doc(code, name, entry.text(name))
        for synonym in entry.texts("synonyms"):
            yield _Doc(code, "synonym", synonym)
    seen: set[str] = set()
    for file in reversed(data.hcpcs_files):
        for code, row in file.rows.items():
            if code in seen:
                continue
            seen.add(code)
            for name, key in (("hcpcs_long_description", "long"), ("hcpcs_short_description", "short")):
                if row.values[key]:
                    yield _Doc(code, name, str(row.values[key]))
    for code, (text, _) in data.cpt_descriptors.items():
        yield _Doc(code, "cpt_short_descriptor", text)


def _descriptors(data: CodeData) -> dict[str, tuple[str, str]]:
    """Each code's one-line description and where it comes from: ours first, then CMS's HCPCS
    long description, then the CPT short descriptor of the user's imported file."""
    found: dict[str, tuple[str, str]] = {}
    for code, (text, release) in data.cpt_descriptors.items():
        found[code] = (text, descriptor_label(release))
    for file in data.hcpcs_files:
        for code, row in file.rows.items():
            if row.values["long"]:
                found[code] = (str(row.values["long"]), f"CMS HCPCS file {file.key}")
    for code, entry in data.catalogue.entries.items():
        found[code] = (entry.text("descriptor"), CATALOGUE_SOURCE)
    return found


CATALOGUE_SOURCE = "cptrules curated catalogue (our own words)"


def descriptor_label(release: str) -> str:
    """How an imported CPT short descriptor is labelled wherever it is shown."""
    return f"CPT short descriptor © American Medical Association, from your imported file ({release})"
