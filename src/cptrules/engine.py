"""The facade the transports call: holds one ruleset-and-data snapshot, answers from it,
and swaps in a new snapshot only when it compiles, passes its tests and fits the data."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import limits
from .answers.templates import render
from .codes import normalise_code
from .data.locality import LocalityInfo, Place, display_name
from .data.store import CodeData
from .embedded import default_data_dir, default_rules_dir
from .errors import (CodeNotFoundError, InvalidInputError, MalformedCodeError,
                     QuestionTooLongError, RuleFileErrors, RuleProblem, ZipNeedsPlusFourError)
from .evaluate import Evaluation, evaluate
from .provenance import DataSource, Provenance
from .questions.matcher import NO_INTENT, Interpretation, interpret, normalise_question
from .questions.places import PlaceFinder, PlaceMention
from .ruleset import Ruleset, load_ruleset
from .ruleset.check import (TestReport, classify, data_problems, phrasebook_problems,
                             run_rule_tests, test_problems)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


@dataclass(frozen=True)
class CodeReport:
    """Every fact about one code on one date, with its provenance."""

    code: str
    facts: dict[str, Any]
    evaluation: Evaluation
    provenance: Provenance


class Outcome:
    """What happened to a question (mirrors the proto's AnswerOutcome)."""

    ANSWERED = "ANSWERED"
    CODE_NOT_FOUND = "CODE_NOT_FOUND"
    NEED_CODE = "NEED_CODE"
    MALFORMED_CODE = "MALFORMED_CODE"
    NOT_UNDERSTOOD = "NOT_UNDERSTOOD"


@dataclass(frozen=True)
class AnswerResult:
    """An answer with the interpretation behind it."""

    text: str
    intent: str
    outcome: str
    question: str = ""
    code: str = ""
    codes: tuple[str, ...] = ()
    malformed: tuple[str, ...] = ()
    confidence: float = 0.0
    runner_up: str = ""
    matched: tuple[str, ...] = ()
    provenance: Provenance | None = None
    date_of_service: str = ""
    fee_schedule_release: str = ""
    covers_date_of_service: bool = False


@dataclass(frozen=True)
class Snapshot:
    """A ruleset and the data it was checked against; replaced whole, never edited."""

    ruleset: Ruleset
    data: CodeData
    rules_dir: Path
    data_dirs: tuple[Path, ...]
    codes: tuple[str, ...] = field(default=())
    by_category: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def codes_in(self, category: str) -> tuple[str, ...]:
        """The snapshot's codes of one category, classified once and remembered."""
        if category not in self.by_category:
            self.by_category[category] = tuple(
                c for c in self.codes if classify(self.ruleset, c)[0] == category)
        return self.by_category[category]


def ruleset_problems(ruleset: Ruleset, data: CodeData, codes: list[str], today: dt.date,
                     check_data: bool = True) -> tuple[TestReport, list[RuleProblem]]:
    """Everything that keeps a compiled ruleset from serving: failing rule and phrasing tests,
    and (with check_data) conflicts or errors when every rule runs over every loaded code."""
    report = run_rule_tests(ruleset)
    problems = test_problems(report) + phrasebook_problems(ruleset, today)
    if check_data:
        problems += data_problems(ruleset, (data.base_facts(c, day, today)[0]
                                            for day in check_dates(data, today) for c in codes))
    return report, problems


def check_dates(data: CodeData, today: dt.date) -> list[dt.date]:
    """Dates at which every rule runs over every code at load: each release's first day
    (where it speaks) and today (often past every release: the reference path)."""
    return sorted({r.effective for r in data.releases} | {today})


def build_snapshot(rules_dir: Path, data_dirs: list[Path], check_data: bool = True,
                   today: dt.date | None = None) -> Snapshot:
    """Compile rules, load data, and refuse the pair on any problem ruleset_problems finds."""
    ruleset = load_ruleset(rules_dir)
    data = CodeData.load(data_dirs)
    codes = data.codes()
    _, problems = ruleset_problems(ruleset, data, codes, today or utc_today(), check_data)
    if problems:
        raise RuleFileErrors(problems)
    return Snapshot(ruleset, data, rules_dir, tuple(data_dirs), tuple(codes))


class Engine:
    """Answers GetCode, FAQ and free-text questions from the current snapshot."""

    def __init__(self, snapshot: Snapshot, clock: Callable[[], dt.date] = utc_today) -> None:
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self.clock = clock
        self._token_key = secrets.token_bytes(32)  # page tokens die with the process, as AIP-158 allows

    @classmethod
    def load(cls, rules_dir: Path | None = None, data_dirs: list[Path] | None = None,
             check_data: bool = True, clock: Callable[[], dt.date] = utc_today) -> Engine:
        """An engine on the given rules and data; the embedded defaults when not given."""
        rules = rules_dir or default_rules_dir()
        dirs = [default_data_dir(), *(data_dirs or [])]
        return cls(build_snapshot(rules, dirs, check_data, clock()), clock)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def ruleset(self) -> Ruleset:
        return self._snapshot.ruleset

    def reload(self, rules_dir: Path | None = None, data_dirs: list[Path] | None = None) -> Snapshot:
        """Build a new snapshot aside and swap it in; on any error the old one keeps serving."""
        with self._lock:
            current = self._snapshot
            snapshot = build_snapshot(rules_dir or current.rules_dir,
                                      list(data_dirs) if data_dirs is not None else list(current.data_dirs),
                                      True, self.clock())
            self._snapshot = snapshot
            return snapshot

    # -- codes -----------------------------------------------------------------

    def category_of(self, code: str, snapshot: Snapshot | None = None) -> tuple[str, str]:
        """(category, label) from the category table alone; empty for no known format."""
        return classify((snapshot or self._snapshot).ruleset, code)

    def _resolve(self, text: str, snap: Snapshot, field_name: str = "code") -> str:
        try:
            code = normalise_code(text)
        except MalformedCodeError:
            raise MalformedCodeError(text.strip(), field_name) from None
        category, label = self.category_of(code, snap)
        if not category:
            raise MalformedCodeError(code, field_name)
        if not snap.data.knows(code):
            raise CodeNotFoundError(code, label, snap.data.source_names())
        return code

    def _report(self, code: str, dos: dt.date | None, snap: Snapshot, modifier: str = "",
                place: Place | None = None) -> CodeReport:
        today = self.clock()
        day = dos or today
        base, used = snap.data.base_facts(code, day, today, modifier, place)
        evaluation = evaluate(snap.ruleset, base)
        provenance = Provenance(evaluation.fired, tuple(used), snap.ruleset.revision, day.isoformat())
        return CodeReport(code, evaluation.facts, evaluation, provenance)

    def get_code(self, text: str, dos: dt.date | None = None, modifier: str = "",
                 zip_code: str = "", locality: str = "") -> CodeReport:
        """Facts for one code (and a priced modifier's row, e.g. 26 or TC), priced in a
        locality when a ZIP code or locality is named; bad input raises."""
        snap = self._snapshot
        code = self._resolve(text, snap)
        place = snap.data.localities.resolve(zip_code, locality)
        modifier = modifier.strip().upper()
        report = self._report(code, dos, snap, modifier, place)
        if modifier and report.facts["pfs_row_modifier"] != modifier:
            rows = ", ".join(report.facts["modifier_rows"]) or "none"
            raise InvalidInputError(
                f"the fee schedule in force has no row for {code} with modifier {modifier} "
                f"(modifier rows: {rows})", "modifier", {"code": code, "modifier": modifier},
                reason="MODIFIER_NOT_PRICED")
        return report

    def batch_get(self, texts: list[str], dos: dt.date | None = None, zip_code: str = "",
                  locality: str = "") -> list[CodeReport]:
        """Several codes in request order; the whole batch fails on the first bad code."""
        if not texts:
            raise InvalidInputError("at least one code is required", "codes")
        if len(texts) > limits.BATCH_MAX_CODES:
            raise InvalidInputError(f"at most {limits.BATCH_MAX_CODES} codes per batch", "codes",
                                    {"count": str(len(texts)), "limit": str(limits.BATCH_MAX_CODES)})
        snap = self._snapshot
        place = snap.data.localities.resolve(zip_code, locality)
        resolved = []
        for index, text in enumerate(texts):
            try:
                resolved.append(self._resolve(text, snap, f"codes[{index}]"))
            except InvalidInputError as error:
                error.field = f"codes[{index}]"
                raise
            except CodeNotFoundError as error:
                error.metadata["index"] = str(index)
                raise
        return [self._report(c, dos, snap, place=place) for c in resolved]

    def list_codes(self, page_size: int, page_token: str, category: str = "",
                   dos: dt.date | None = None) -> tuple[list[CodeReport], str, int]:
        """A page of codes in code order; the token is opaque and bound to the revision."""
        if page_size < 0:
            raise InvalidInputError("page_size must not be negative", "page_size")
        size = min(page_size or limits.PAGE_SIZE_DEFAULT, limits.PAGE_SIZE_MAX)
        snap = self._snapshot
        after = _read_token(page_token, self._token_key, snap.ruleset.revision, category) if page_token else ""
        codes = snap.codes_in(category) if category else snap.codes
        start = 0
        if after:
            import bisect

            start = bisect.bisect_right(codes, after)
        page = codes[start:start + size]
        more = start + size < len(codes)
        token = _make_token(page[-1], self._token_key, snap.ruleset.revision, category) if more and page else ""
        return [self._report(c, dos, snap) for c in page], token, len(codes)

    def list_localities(self, page_size: int, page_token: str, state: str = "",
                        dos: dt.date | None = None) -> tuple[list[LocalityInfo], str, int]:
        """A page of payment localities in id order, optionally of one state; tokens as ListCodes'."""
        if page_size < 0:
            raise InvalidInputError("page_size must not be negative", "page_size")
        state = state.strip().upper()
        snap = self._snapshot
        places = snap.data.localities
        if state and state not in {loc.state for loc in places.names().values()}:
            raise InvalidInputError(f"{state!r} is not the two-letter state of any loaded locality",
                                    "state", {"state": state}, reason="UNKNOWN_STATE")
        size = min(page_size or limits.PAGE_SIZE_DEFAULT, limits.PAGE_SIZE_MAX)
        scope = f"localities:{state}"
        after = _read_token(page_token, self._token_key, snap.ruleset.revision, scope) if page_token else ""
        release = snap.data.release_for(dos or self.clock())
        year = release.year if release is not None and release.year in places.gpci else max(places.gpci, default=0)
        ids = sorted(k for k, v in places.names().items() if not state or v.state == state)
        start = next((i for i, k in enumerate(ids) if k > after), len(ids)) if after else 0
        page = ids[start:start + size]
        more = start + size < len(ids)
        token = _make_token(page[-1], self._token_key, snap.ruleset.revision, scope) if more and page else ""
        return [places.info(k, year) for k in page], token, len(ids)

    # -- answers ---------------------------------------------------------------

    def render(self, intent: str, report: CodeReport) -> str:
        """One intent's answer text for a code."""
        return render(self._snapshot.ruleset.templates[intent], report.facts)

    def faq(self, text: str, dos: dt.date | None = None, zip_code: str = "",
            locality: str = "") -> tuple[CodeReport, list[AnswerResult]]:
        """Every FAQ entry whose condition holds for the code (priced in a place, if named)."""
        snap = self._snapshot
        code = self._resolve(text, snap)
        report = self._report(code, dos, snap, place=snap.data.localities.resolve(zip_code, locality))
        entries = []
        for entry in snap.ruleset.faq:
            if not entry.applies_when.evaluate(report.facts):
                continue
            entries.append(AnswerResult(
                text=render(snap.ruleset.templates[entry.intent], report.facts),
                intent=entry.intent, outcome=Outcome.ANSWERED,
                question=render(entry.question, report.facts), code=report.code,
                codes=(report.code,), confidence=1.0,
                matched=(f"{entry.path}:{entry.line} {entry.intent}",),
                provenance=report.provenance, date_of_service=report.facts["date_of_service"],
                fee_schedule_release=report.facts["pfs_release"],
                covers_date_of_service=report.facts["pfs_covers_date"]))
        return report, entries

    def interpret(self, question: str) -> Interpretation:
        """How the phrasebook reads a question (for `ask --explain`)."""
        snap = self._snapshot
        return interpret(question, snap.ruleset.phrasebook,
                         lambda c: bool(self.category_of(c, snap)[0]), self.clock(), _place_finder(snap.data))

    def answer(self, question: str, dos: dt.date | None = None) -> AnswerResult:
        """Answer a free-text question, or say precisely what is missing."""
        text = normalise_question(question)
        if len(text) > limits.QUESTION_MAX_CHARS:
            raise QuestionTooLongError(len(text), limits.QUESTION_MAX_CHARS)
        snap = self._snapshot
        book = snap.ruleset.phrasebook
        reading = interpret(text, book, lambda c: bool(self.category_of(c, snap)[0]), self.clock(),
                            _place_finder(snap.data))
        found = reading.extraction
        day = dos or found.date_of_service
        matched = tuple(f"{book.path}:{cue.line} {cue.intent} {cue.text!r}"
                        + (f" ~{closeness:.2f}" if closeness < 1 else "")
                        for cue, closeness in reading.matched)
        common = dict(question=question, intent=reading.intent, codes=found.codes,
                      malformed=found.malformed, confidence=reading.confidence,
                      runner_up=reading.runner_up, matched=matched,
                      date_of_service=(day or self.clock()).isoformat())
        if reading.intent == NO_INTENT:
            text = _help_text(book)
            if found.diagnosis_codes:
                text = (f"{', '.join(found.diagnosis_codes)} looks like an ICD-10-CM diagnosis code; "
                        "this service answers about procedure codes (CPT and HCPCS). " + text)
            return AnswerResult(text=text, outcome=Outcome.NOT_UNDERSTOOD, **common)
        if not found.codes:
            if found.malformed:
                shown = ", ".join(found.malformed)
                return AnswerResult(
                    text=f"{shown} is not a valid code format. CPT and HCPCS codes have five "
                         "characters: five digits (99213), four digits and F, T or U (1036F, 0556T, "
                         "0001U), or a letter and four digits (G0439). Please check the code and ask again.",
                    outcome=Outcome.MALFORMED_CODE, **common)
            example = book.examples.get(reading.intent) or "What is 0556T?"
            return AnswerResult(
                text="Which code do you mean? Please include the CPT or HCPCS code in the question, "
                     f"for example: {example}", outcome=Outcome.NEED_CODE, **common)
        known = [c for c in found.codes if snap.data.knows(c)]
        unknown = [c for c in found.codes if c not in known]
        if not known:
            code = found.codes[0]
            common["code"] = code
            _, label = self.category_of(code, snap)
            return AnswerResult(
                text=f"{code} has the format of a {label} code, but none of the loaded sources "
                     f"({', '.join(snap.data.source_names())}) lists it. It may be new, deleted, "
                     "or mistyped.", outcome=Outcome.CODE_NOT_FOUND, **common)
        common["code"] = known[0]
        # Several codes ("99213 vs 99214 wRVU") get one answer each, unless the intent is
        # about the first code only (a conversion names its source, then its target).
        single = reading.intent in book.source_formats
        subjects = known[:1] if single else known[:limits.ANSWER_MAX_CODES]
        modifiers = dict(found.modifiers)
        place, place_note = _place_of(found.place, snap.data)
        reports = [self._report(c, day, snap, modifiers.get(c, ""), place) for c in subjects]
        template = snap.ruleset.templates[reading.intent]
        parts = [render(template, r.facts) for r in reports]
        if len(parts) > 1:
            parts = [text if text.startswith((r.code, r.facts["code_label"])) else f"{r.facts['code_label']}: {text}"
                     for r, text in zip(reports, parts)]
        body = "\n\n".join(parts)
        notes = [place_note] if place_note else []
        if unknown:
            notes.append(f"{', '.join(unknown)}: not in any loaded source")
        if not single and len(known) > len(subjects):
            notes.append(f"not answered, at most {limits.ANSWER_MAX_CODES} codes per question: "
                         + ", ".join(known[len(subjects):]))
        if found.malformed:
            notes.append(f"not a valid code format, so not answered: {', '.join(found.malformed)}")
        if found.diagnosis_codes:
            notes.append(f"{', '.join(found.diagnosis_codes)} looks like an ICD-10-CM diagnosis code; "
                         "coverage by diagnosis is not in our data")
        if found.unreadable_date and dos is None:
            notes.append(f"{found.unreadable_date!r} is not a calendar date, so this answer is for "
                         + ("the date given" if found.date_of_service else "today"))
        elif dos is None and found.date_of_service and found.date_text.isdigit():
            notes.append(f"'{found.date_text}' was read as the date of service "
                         f"{found.date_of_service:%B} {found.date_of_service.day}, {found.date_of_service.year}")
        if notes:
            body += " (" + "; ".join(notes) + ".)"
        first = reports[0].provenance
        provenance = Provenance(
            tuple(f for r in reports for f in r.provenance.fired),
            tuple(dict.fromkeys(s for r in reports for s in r.provenance.sources)),
            first.ruleset_revision, first.date_of_service)
        common["date_of_service"] = reports[0].facts["date_of_service"]
        return AnswerResult(text=body, outcome=Outcome.ANSWERED, provenance=provenance,
                            fee_schedule_release=reports[0].facts["pfs_release"],
                            covers_date_of_service=reports[0].facts["pfs_covers_date"], **common)

    def sources(self) -> list[DataSource]:
        return self._snapshot.data.sources()


def _place_finder(data: CodeData) -> PlaceFinder | None:
    """The question matcher's view of the loaded localities, built once per data load."""
    places = data.localities
    if not places.gpci:
        return None
    if places.question_places is None:
        places.question_places = PlaceFinder(places.names(), places.state_names(), places.counties)
    return places.question_places


def _place_of(mention: PlaceMention | None, data: CodeData) -> tuple[Place | None, str]:
    """The locality a question names, or why it names none precisely (said in the answer)."""
    if mention is None:
        return None, ""
    if mention.locality or mention.zip_code:
        try:
            return data.localities.resolve(zip_code=mention.zip_code, locality=mention.locality), ""
        except (InvalidInputError, ZipNeedsPlusFourError) as error:
            return None, error.message
    names = data.localities.names()
    listed = ", ".join(f"{k} {display_name(names[k].name)}" for k in mention.state_localities)
    return None, (f"{mention.text.title()} has {len(mention.state_localities)} Medicare payment "
                  f"localities ({listed}): name one, or give a ZIP code")


def _help_text(book: Any) -> str:
    examples = [e for e in book.examples.values() if e][:6]
    return ("We answer questions about CPT and HCPCS codes: what a code is, its category, "
            "RVUs and Medicare payment, whether it is permanent, when it sunsets, coverage, "
            "billing and more. For example: " + " / ".join(examples))


def _sign(payload: bytes, key: bytes, revision: str) -> str:
    return hmac.new(key, revision.encode() + b"\0" + payload, hashlib.sha256).hexdigest()[:32]


def _make_token(after: str, key: bytes, revision: str, category: str) -> str:
    payload = json.dumps({"a": after, "c": category}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(payload, key, revision)


def _read_token(token: str, key: bytes, revision: str, category: str) -> str:
    """The last code of the previous page; the token must be ours, for this revision and filter."""
    bad = InvalidInputError("page_token is invalid, expired, or belongs to another ruleset revision "
                            "or filter; start again without it", "page_token", reason="INVALID_PAGE_TOKEN")
    try:
        body, signature = token.rsplit(".", 1)
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(payload) if hmac.compare_digest(signature, _sign(payload, key, revision)) else None
    except (ValueError, json.JSONDecodeError):
        raise bad from None
    if not isinstance(data, dict) or data.get("c") != category or not isinstance(data.get("a"), str):
        raise bad
    return data["a"]
