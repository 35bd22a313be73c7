"""Codes → FAQ sets, one at a time in code order: the one iteration both the static export and
the streaming RPC use, so a page and a streamed set of the same code are the same answers.

Everything comes from the one snapshot the iteration starts on (a reload mid-export cannot mix
two rulesets) and from one date of service (an export running past midnight keeps its date).
Sets are produced lazily: memory stays flat however many codes are exported."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..engine import AnswerResult, CodeReport, Engine, Snapshot
from ..errors import InvalidInputError


@dataclass(frozen=True)
class FaqSet:
    """One code's FAQ: every entry that applies, as the engine's faq() gives it, and a hash of
    what a reader sees (questions and answers), so a consumer can tell a changed set cheaply."""

    code: str
    report: CodeReport
    entries: tuple[AnswerResult, ...]
    content_hash: str

    @property
    def ruleset_revision(self) -> str:
        return self.report.provenance.ruleset_revision

    @property
    def date_of_service(self) -> str:
        return self.report.provenance.date_of_service


def canonical_json(value: Any) -> bytes:
    """The one deterministic encoding used wherever bytes are hashed: sorted keys, no
    insignificant whitespace, UTF-8, floats as Python's shortest round-trip repr."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def content_of(code: str, entries: Iterable[AnswerResult]) -> dict[str, Any]:
    """What a set's hash covers: the code and each entry's intent, question and answer, in order.
    Provenance (file lines, ruleset revision) is left out: moving a rule without changing any
    answer must not make every published page look changed."""
    return {"code": code,
            "entries": [{"intent": e.intent, "question": e.question, "answer": e.text} for e in entries]}


def content_hash(code: str, entries: Iterable[AnswerResult]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(content_of(code, entries))).hexdigest()


def known_categories(snapshot: Snapshot) -> tuple[str, ...]:
    """The category names the ruleset's category table can give (e.g. CATEGORY_III)."""
    return tuple(str(v) for v in snapshot.ruleset.tables[0].outputs["category"].values)


def select_codes(engine: Engine, snapshot: Snapshot, codes: Iterable[str] | None = None,
                 category: str = "") -> list[str]:
    """The codes to export, in code order without repeats; every bad code or category is
    refused before anything is produced (an explicit code names its index in `codes`)."""
    if codes is not None and category:
        raise InvalidInputError("give either codes or a category, not both", "category",
                                reason="CONFLICTING_SELECTION")
    if category:
        if category not in known_categories(snapshot):
            raise InvalidInputError(
                f"{category[:40]!r} is not a category; one of {', '.join(known_categories(snapshot))}",
                "category", {"category": category[:40]}, reason="INVALID_CATEGORY")
        return list(snapshot.codes_in(category))
    if codes is None:
        return list(snapshot.codes)
    chosen = set(engine.resolve_listed(list(codes), snapshot))
    if not chosen:
        raise InvalidInputError("at least one code is required", "codes")
    return sorted(chosen)


@dataclass(frozen=True)
class Selection:
    """What one export answers: the snapshot it started on, its codes in code order, its date."""

    snapshot: Snapshot
    codes: tuple[str, ...]
    day: dt.date


def select(engine: Engine, codes: Iterable[str] | None = None, category: str = "",
           dos: dt.date | None = None) -> Selection:
    """Fix an export's snapshot, codes and date (default: the engine's today, now); bad input
    raises here, before anything is produced."""
    snapshot = engine.snapshot
    return Selection(snapshot, tuple(select_codes(engine, snapshot, codes, category)), dos or engine.clock())


def produce(engine: Engine, selection: Selection, after: str = "") -> Iterator[FaqSet]:
    """The selection's FAQ sets in code order, lazily; `after` resumes after that code."""
    start = bisect.bisect_right(selection.codes, after) if after else 0
    for code in selection.codes[start:]:
        report, entries = engine.faq(code, selection.day, snapshot=selection.snapshot)
        yield FaqSet(code, report, tuple(entries), content_hash(code, entries))


def iter_faq_sets(engine: Engine, codes: Iterable[str] | None = None, category: str = "",
                  dos: dt.date | None = None, *, after: str = "") -> Iterator[FaqSet]:
    """FAQ sets for the given codes, or a category's codes, or (neither given) every loaded code,
    in code order, answered for `dos` (default: the engine's today, fixed at the start).

    `after` resumes an interrupted export: only codes sorting after it are produced. Bad input
    raises when the iterator is created, not halfway through."""
    return produce(engine, select(engine, codes, category, dos), after)
