"""The facade the transports call: holds one ruleset-and-data snapshot, answers from it,
and swaps in a new snapshot only when it compiles, passes its tests and fits the data."""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from . import limits

from .answers.templates import render
from .caches import BytePool, CacheBudget, ReportCache, size_of
from .cancellation import raise_if_abandoned
from .codes import normalise_code
from .data.locality import LocalityInfo, Place, display_name
from .data.store import CodeData, descriptors_source
from .embedded import default_data_dir, default_rules_dir
from .errors import (CodeNotFoundError, InvalidInputError, MalformedCodeError,
                     QuestionTooLongError, RuleFileErrors, RuleProblem, ZipNeedsPlusFourError)
from .evaluate import Evaluation, Firing, evaluate
from .provenance import DataSource, Provenance
from .questions.extract import without_date
from .questions.matcher import NO_INTENT, Interpretation, interpret, normalise_question
from .questions.places import PlaceFinder, PlaceMention
from .ruleset import Ruleset, load_ruleset
from .ruleset.check import (TestReport, classify, data_problems, phrasebook_problems,
                             run_rule_tests, test_problems)
from .ruleset.dateclass import DATE
from .ruleset.model import Rule
from .search import CATALOGUE_SOURCE, Match, SearchIndex, SearchRules, load_search_rules
from .search.finding import open_distinctions, read_find_code
from .search.query_text import search_query
from .timeline import Timeline


T = TypeVar("T")


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


@dataclass(frozen=True)
class CodeReport:
    """Every fact about one code on one date, with its provenance."""

    code: str
    facts: dict[str, Any]
    evaluation: Evaluation
    provenance: Provenance
    # Answer texts rendered over this report, by intent (see Engine._rendered).
    rendered: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def on(self, day: str) -> CodeReport:
        """This report for another date of its date class: only the date changes."""
        if self.facts[DATE] == day:
            return self
        facts = {**self.facts, DATE: day}
        fired = tuple(Firing(f.rule, {**f.inputs, DATE: day}, f.outputs, f.code) if DATE in f.inputs else f
                      for f in self.evaluation.fired)
        return CodeReport(self.code, facts, Evaluation(facts, fired),
                          replace(self.provenance, fired=fired, date_of_service=day))


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
    topic: str = ""  # for intent "topic": the term asked about, e.g. "status_indicator:C"
    candidates: tuple[Match, ...] = ()  # a find-code answer's codes, best first


@dataclass(frozen=True)
class Snapshot:
    """A ruleset and the data it was checked against; replaced whole, never edited."""

    ruleset: Ruleset
    data: CodeData
    rules_dir: Path
    data_dirs: tuple[Path, ...]
    codes: tuple[str, ...] = field(default=())
    search_rules: SearchRules = field(default_factory=SearchRules)
    _search: list[SearchIndex] = field(default_factory=list, init=False, compare=False, repr=False)
    _search_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                         compare=False, repr=False)
    _by_category: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False,
                                                     compare=False, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                        compare=False, repr=False)
    # Reports by date class (see timeline.py): bounded, so random dates cannot grow memory.
    timeline: Timeline | None = field(default=None, compare=False, repr=False)
    # Reports are large (every fact and firing): the server keeps the bytes derived from them
    # (see `derived`), so only recently used reports stay.
    reports: ReportCache = field(default_factory=lambda: ReportCache(2_000), compare=False, repr=False)
    categories: ReportCache = field(default_factory=lambda: ReportCache(100_000), compare=False, repr=False)
    answers: ReportCache = field(default_factory=lambda: ReportCache(2_000), compare=False, repr=False)
    # What the transports derive from a report (serialised responses), by (name, date class):
    # bounded by their size (a code's response is a few KB, a FAQ set tens of KB), and replaced
    # with the snapshot, so a reload never serves stale bytes.
    budget: CacheBudget = field(default_factory=CacheBudget, compare=False, repr=False)
    derived: ReportCache = field(init=False, compare=False, repr=False)
    # Responses by the request that asked them and the day it was asked on, one cache per
    # method (transports only): see `requests`.
    _requests: dict[str, ReportCache] = field(default_factory=dict, init=False, compare=False, repr=False)
    _request_pool: BytePool = field(init=False, compare=False, repr=False)
    _requests_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                           compare=False, repr=False)
    # Codes already resolved as written, in canonical form: a request naming one skips the
    # normalising, the category table and the source lookups. At most one entry per known code.
    resolved: set[str] = field(default_factory=set, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "derived", ReportCache(self.budget.derived_bytes, size_of))
        object.__setattr__(self, "_request_pool", BytePool(self.budget.request_bytes))
        if self.timeline is None:
            object.__setattr__(self, "timeline", Timeline(self.ruleset, self.data))

    def index_categories(self) -> Mapping[str, tuple[str, ...]]:
        """Every code grouped by category, in code order; computed once per snapshot, and
        callers that arrive while it is being computed wait for that one computation."""
        with self._index_lock:
            if not self._by_category and self.codes:
                groups: dict[str, list[str]] = {}
                for code in self.codes:
                    groups.setdefault(classify(self.ruleset, code)[0], []).append(code)
                self._by_category.update((k, tuple(v)) for k, v in groups.items())
        return MappingProxyType(self._by_category)

    def requests(self, method: str) -> ReportCache:
        """A method's responses by request, bounded in bytes (values are (bytes, request
        size) pairs). The methods share one pool: a flood of one method's requests evicts its
        own entries first, and a few large pages cannot hold more than the pool."""
        known = self._requests.get(method)
        if known is None:
            with self._requests_lock:  # not the index lock: a first listing may hold that for seconds
                known = self._requests.get(method)
                if known is None:
                    known = ReportCache(self.budget.request_bytes,
                                        lambda value: len(value[0]) + value[1] + 100, self._request_pool)
                    self._requests[method] = known
        return known

    def caches(self) -> dict[str, ReportCache]:
        """Every cache of the snapshot by name, for metrics."""
        named = {"reports": self.reports, "categories": self.categories, "answers": self.answers,
                 "derived": self.derived}
        with self._requests_lock:
            named.update((f"requests:{method}", cache) for method, cache in self._requests.items())
        return named

    def codes_in(self, category: str) -> tuple[str, ...]:
        """The snapshot's codes of one category, in code order."""
        return self.index_categories().get(category, ())

    def search_index(self) -> SearchIndex:
        """The code search index, built on first use (about a second) and kept for the
        snapshot's life; callers arriving while it is built wait for that one build."""
        with self._search_lock:
            if not self._search:
                self._search.append(SearchIndex(self.data, self.search_rules, self.category_of))
        return self._search[0]

    def category_of(self, code: str) -> tuple[str, str]:
        """(category, label) by the category table, remembered per snapshot."""
        known = self.categories.get(code)
        if known is None:
            known = classify(self.ruleset, code)
            self.categories.put(code, known)
        return known


@dataclass(frozen=True)
class Located:
    """A code request checked and resolved but not yet answered: the code, the day and the
    variant (modifier, place) that pick its entry, on the snapshot it was resolved on."""

    snapshot: Snapshot = field(repr=False, compare=False)
    code: str
    day: str
    modifier: str = ""
    place: Place | None = None

    def date_class(self) -> Hashable | None:
        """The key of the date class this request falls in; None until one of its days was computed."""
        timeline = self.snapshot.timeline
        assert timeline is not None
        return timeline.date_class(self.code, (self.modifier, self.place), self.day)


@dataclass(frozen=True)
class LocatedPage:
    """One page of a listing, resolved but not yet answered."""

    items: list[Located]
    next_after: str
    total: int
    revision: str


@dataclass(frozen=True)
class LocalityPage:
    """One page of the locality listing; `next_after` is the cursor for the next page."""

    localities: list[Any]
    next_after: str
    total: int
    revision: str


@dataclass(frozen=True)
class CodePage:
    """One page of a listing; `next_after` is the cursor for the next page ("" at the end)."""

    reports: list[CodeReport]
    next_after: str
    total: int
    revision: str


def ruleset_problems(ruleset: Ruleset, data: CodeData, codes: list[str], today: dt.date,
                     check_data: bool = True) -> tuple[TestReport, list[RuleProblem]]:
    """Everything that keeps a compiled ruleset from serving: failing rule and phrasing tests,
    and (with check_data) conflicts or errors when every rule runs over every loaded code, and
    templates or FAQ entries that fail when rendered over a sample of those codes' facts on
    dates before, inside and after the loaded releases."""
    from .ruleset.render_check import FactSampler, more_records, render_problems

    report = run_rule_tests(ruleset)
    problems = test_problems(report) + phrasebook_problems(ruleset, today)
    if check_data:
        sampler = FactSampler(ruleset)
        problems += data_problems(ruleset, (data.base_facts(c, day)[0]
                                            for day in check_dates(data, today) for c in codes),
                                  sampler.offer)
        problems += more_records(ruleset, data, sampler, today)
        problems += render_problems(ruleset, sampler)
    unique = {(p.path, p.line, p.kind): p for p in reversed(problems)}  # one report per place
    return report, [p for p in problems if unique[(p.path, p.line, p.kind)] is p]


def check_dates(data: CodeData, today: dt.date) -> list[dt.date]:
    """Dates at which every rule runs over every code at load: each release's first day
    (where it speaks) and today (often past every release: the reference path)."""
    return sorted({r.effective for r in data.releases} | {today})


def build_snapshot(rules_dir: Path, data_dirs: list[Path], check_data: bool = True,
                   today: dt.date | None = None, budget: CacheBudget | None = None) -> Snapshot:
    """Compile rules, load data, and refuse the pair on any problem ruleset_problems finds.

    A pair that passed the full check is persisted, compiled and with its codes classified,
    under the content of its rules, data and code (see persisted.py): a restart on the same
    inputs maps that file in instead of compiling, loading and classifying again. The full check
    of a pair that passed it before on the same day is not redone (see checked.py); on another
    day it runs again, on the mapped-in snapshot."""
    from . import checked, persisted
    from .ruleset.compile import compile_ruleset, read_rules

    day = today or utc_today()
    sources = read_rules(rules_dir)
    search_rules = load_search_rules(rules_dir)
    inputs = checked.Inputs.of(sources.revision(), data_dirs)
    stored = persisted.read(inputs.key)
    if stored is not None:
        ruleset = replace(stored.ruleset, root=sources.root, loaded_at=dt.datetime.now(dt.timezone.utc))
        data, codes = stored.data, list(stored.codes)
    else:
        ruleset = compile_ruleset(sources)
        data = CodeData.load(data_dirs)
        codes = data.codes()
    check_key = inputs.check_key(day)
    if not (check_data and checked.passed_before(check_key)):
        _, problems = ruleset_problems(ruleset, data, codes, day, check_data)
        if problems:
            raise RuleFileErrors(problems)
        if check_data:
            checked.record_pass(check_key)
    snapshot = Snapshot(ruleset, data, rules_dir, tuple(data_dirs), tuple(codes), search_rules,
                        budget=budget or CacheBudget())
    if stored is not None:
        snapshot._by_category.update(stored.by_category)
    elif check_data:  # a snapshot about to serve: classify every code now, not on the first listing
        snapshot.index_categories()
        # Persisted only when nothing changed while it was loaded: the key must name what is inside.
        if checked.Inputs.of(read_rules(rules_dir).revision(), data_dirs) == inputs:
            persisted.write(inputs.key, persisted.Stored(ruleset, data, tuple(codes),
                                                         dict(snapshot.index_categories())))
    return snapshot


class Engine:
    """Answers GetCode, FAQ and free-text questions from the current snapshot."""

    def __init__(self, snapshot: Snapshot, clock: Callable[[], dt.date] = utc_today) -> None:
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self.clock = clock

    @classmethod
    def load(cls, rules_dir: Path | None = None, data_dirs: list[Path] | None = None,
             check_data: bool = True, clock: Callable[[], dt.date] = utc_today,
             budget: CacheBudget | None = None) -> Engine:
        """An engine on the given rules and data; the embedded defaults when not given."""
        rules = rules_dir or default_rules_dir()
        dirs = [default_data_dir(), *(data_dirs or [])]
        return cls(build_snapshot(rules, dirs, check_data, clock(), budget), clock)

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
                                      True, self.clock(), current.budget)
            self._snapshot = snapshot
            return snapshot

    # -- codes -----------------------------------------------------------------

    def category_of(self, code: str, snapshot: Snapshot | None = None) -> tuple[str, str]:
        """(category, label) from the category table alone; empty for no known format.
        Remembered per snapshot: the table reads only the code."""
        return (snapshot or self._snapshot).category_of(code)

    def _resolve(self, text: str, snap: Snapshot, field_name: str = "code") -> str:
        if text in snap.resolved:
            return text
        try:
            code = normalise_code(text)
        except MalformedCodeError:
            raise MalformedCodeError(text.strip(), field_name) from None
        category, label = self.category_of(code, snap)
        if not category:
            raise MalformedCodeError(code, field_name)
        if not snap.data.knows(code):
            raise CodeNotFoundError(code, label, snap.data.source_names())
        if code == text:
            snap.resolved.add(code)
        return code

    def resolve_listed(self, texts: Sequence[str], snap: Snapshot) -> list[str]:
        """The codes of a request's list, in its order; a bad one raises naming its place
        (`codes[i]`, and the index of an unknown code)."""
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
        return resolved

    def _report(self, code: str, day: str, snap: Snapshot, modifier: str = "",
                place: Place | None = None) -> CodeReport:
        """A code's report on a date (ISO): from its date class when that was computed before."""
        timeline = snap.timeline
        assert timeline is not None
        variant = (modifier, place)
        key = timeline.date_class(code, variant, day)
        if key is not None:
            known = snap.reports.get(key)
            if known is not None:
                return known.on(day)
        base, used = snap.data.base_facts(code, dt.date.fromisoformat(day), modifier, place)
        evaluation = evaluate(snap.ruleset, base)
        provenance = Provenance(evaluation.fired, tuple(used), snap.ruleset.revision, day)
        report = CodeReport(code, evaluation.facts, evaluation, provenance)
        timeline.remember(code, variant, day, evaluation.facts)
        snap.reports.put(timeline.date_class(code, variant, day), report)
        return report

    def _day(self, dos: dt.date | None) -> str:
        return (dos or self.clock()).isoformat()

    def locate(self, text: str, dos: dt.date | None = None, modifier: str = "",
               zip_code: str = "", locality: str = "") -> Located:
        """Check and resolve a GetCode request (bad input raises) without answering it."""
        snap = self._snapshot
        code = self._resolve(text, snap)
        place = snap.data.localities.resolve(zip_code, locality)
        return Located(snap, code, self._day(dos), modifier.strip().upper(), place)

    def report(self, located: Located) -> CodeReport:
        """The report that answers a located request; a modifier without a row of its own raises."""
        report = self._report(located.code, located.day, located.snapshot, located.modifier, located.place)
        if located.modifier and report.facts["pfs_row_modifier"] != located.modifier:
            rows = ", ".join(report.facts["modifier_rows"]) or "none"
            raise InvalidInputError(
                f"the fee schedule in force has no row for {located.code} with modifier "
                f"{located.modifier} (modifier rows: {rows})", "modifier",
                {"code": located.code, "modifier": located.modifier}, reason="MODIFIER_NOT_PRICED")
        return report

    def derived(self, located: Located, name: str, build: Callable[[CodeReport], T],
                per_day: bool = False) -> T:
        """`build(report)` for a located request, computed once per date class (per day with
        `per_day`, for what reads the date in more ways than writing it) and kept with the
        snapshot: what is built from a report must be the same for every day of the class."""
        snap = located.snapshot
        key = located.date_class()
        if key is not None:
            known = snap.derived.get((name, key, located.day if per_day else None))
            if known is not None:
                return known
        value = build(self.report(located))
        snap.derived.put((name, located.date_class(), located.day if per_day else None), value)
        return value

    def get_code(self, text: str, dos: dt.date | None = None, modifier: str = "",
                 zip_code: str = "", locality: str = "") -> CodeReport:
        """Facts for one code (and a priced modifier's row, e.g. 26 or TC), priced in a
        locality when a ZIP code or locality is named; bad input raises."""
        return self.report(self.locate(text, dos, modifier, zip_code, locality))

    def locate_batch(self, texts: list[str], dos: dt.date | None = None, zip_code: str = "",
                     locality: str = "") -> list[Located]:
        """Several codes in request order, checked; the whole batch fails on the first bad code."""
        if not texts:
            raise InvalidInputError("at least one code is required", "codes")
        if len(texts) > limits.BATCH_MAX_CODES:
            raise InvalidInputError(f"at most {limits.BATCH_MAX_CODES} codes per batch", "codes",
                                    {"count": str(len(texts)), "limit": str(limits.BATCH_MAX_CODES)})
        snap = self._snapshot
        place = snap.data.localities.resolve(zip_code, locality)
        day = self._day(dos)
        return [Located(snap, code, day, "", place) for code in self.resolve_listed(texts, snap)]

    def batch_get(self, texts: list[str], dos: dt.date | None = None, zip_code: str = "",
                  locality: str = "") -> list[CodeReport]:
        """Several codes in request order; the whole batch fails on the first bad code."""
        return self.reports(self.locate_batch(texts, dos, zip_code, locality))

    def reports(self, items: Sequence[Located]) -> list[CodeReport]:
        """The reports that answer located requests; long work stops when its caller has gone."""
        reports = []
        for index, item in enumerate(items):
            if index % 25 == 0:
                raise_if_abandoned()
            reports.append(self.report(item))
        return reports

    def locate_page(self, page_size: int, after: str = "", category: str = "",
                    dos: dt.date | None = None, revision: str = "") -> LocatedPage:
        """A page of codes in code order, starting after the code `after`, not yet answered.

        A cursor means something only on the ruleset revision it came from: with `revision`
        given, a cursor from any other revision is refused (the caller starts again).
        """
        if page_size < 0:
            raise InvalidInputError("page_size must not be negative", "page_size")
        size = min(page_size or limits.PAGE_SIZE_DEFAULT, limits.PAGE_SIZE_MAX)
        snap = self._snapshot
        if revision and revision != snap.ruleset.revision:
            raise InvalidInputError("page_token belongs to another ruleset revision; start again "
                                    "without it", "page_token", reason="INVALID_PAGE_TOKEN")
        codes = snap.codes_in(category) if category else snap.codes
        start = bisect.bisect_right(codes, after) if after else 0
        page = codes[start:start + size]
        more = start + size < len(codes)
        day = self._day(dos)
        return LocatedPage([Located(snap, c, day) for c in page], page[-1] if more and page else "",
                           len(codes), snap.ruleset.revision)

    def list_codes(self, page_size: int, after: str = "", category: str = "",
                   dos: dt.date | None = None, revision: str = "") -> CodePage:
        """A page of codes in code order (see locate_page), answered."""
        page = self.locate_page(page_size, after, category, dos, revision)
        return CodePage(self.reports(page.items), page.next_after, page.total, page.revision)

    def list_localities(self, page_size: int, after: str = "", state: str = "",
                        dos: dt.date | None = None, revision: str = "") -> LocalityPage:
        """A page of payment localities in id order, optionally of one state, starting after the
        locality id `after`; a cursor from another ruleset revision is refused, as ListCodes'."""
        if page_size < 0:
            raise InvalidInputError("page_size must not be negative", "page_size")
        state = state.strip().upper()
        snap = self._snapshot
        if revision and revision != snap.ruleset.revision:
            raise InvalidInputError("page_token belongs to another ruleset revision; start again "
                                    "without it", "page_token", reason="INVALID_PAGE_TOKEN")
        places = snap.data.localities
        if state and state not in {loc.state for loc in places.names().values()}:
            raise InvalidInputError(f"{state[:8]!r} is not the two-letter state of any loaded locality",
                                    "state", {"state": state[:8]}, reason="UNKNOWN_STATE")
        size = min(page_size or limits.PAGE_SIZE_DEFAULT, limits.PAGE_SIZE_MAX)
        release = snap.data.release_for(dos or self.clock())
        year = release.year if release is not None and release.year in places.gpci else max(places.gpci, default=0)
        ids = sorted(k for k, v in places.names().items() if not state or v.state == state)
        start = bisect.bisect_right(ids, after) if after else 0
        page = ids[start:start + size]
        more = start + size < len(ids)
        return LocalityPage([places.info(k, year) for k in page], page[-1] if more and page else "",
                            len(ids), snap.ruleset.revision)

    def search_codes(self, query: str, category: str = "", page_size: int = 0) -> list[Match]:
        """Codes ranked by how well their texts match the query (synonyms and typos read),
        optionally of one category; bad input raises InvalidInputError."""
        if page_size < 0:
            raise InvalidInputError("page_size must not be negative", "page_size")
        text = search_query(query)
        size = min(page_size or limits.SEARCH_PAGE_SIZE_DEFAULT, limits.SEARCH_PAGE_SIZE_MAX)
        return self._snapshot.search_index().search(text, size, [category] if category else [])[1]

    # -- answers ---------------------------------------------------------------

    def render(self, intent: str, report: CodeReport) -> str:
        """One intent's answer text for a code."""
        return render(self._snapshot.ruleset.templates[intent], report.facts)

    def faq(self, text: str, dos: dt.date | None = None, zip_code: str = "",
            locality: str = "", snapshot: Snapshot | None = None) -> tuple[CodeReport, list[AnswerResult]]:
        """Every FAQ entry whose condition holds for the code (priced in a place, if named);
        a long export passes the one snapshot it started on, so a reload cannot mix two."""
        snap = snapshot or self._snapshot
        code = self._resolve(text, snap)
        place = snap.data.localities.resolve(zip_code, locality)
        report = self.report(Located(snap, code, self._day(dos), "", place))
        return report, self.faq_entries(report, snap)

    def faq_entries(self, report: CodeReport, snap: Snapshot | None = None) -> list[AnswerResult]:
        """The FAQ entries whose condition holds for a report, answered."""
        snap = snap or self._snapshot
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
        return entries

    def interpret(self, question: str) -> Interpretation:
        """How the phrasebook reads a question (for `ask --explain`)."""
        snap = self._snapshot
        return interpret(question, snap.ruleset.phrasebook,
                         lambda c: bool(self.category_of(c, snap)[0]), self.clock(), _place_finder(snap.data))

    def answer(self, question: str, dos: dt.date | None = None) -> AnswerResult:
        """Answer a free-text question, or say precisely what is missing. Questions repeat:
        the answer is remembered per snapshot by the question, the date and today, and the
        reading by the normalised question (questions that differ only in what NFKC and
        control characters change share one reading and differ only in the echo)."""
        # The raw length first: normalising costs time per character, so an over-long question
        # is refused before any work on it (and before it is hashed as a cache key).
        if len(question) > limits.QUESTION_MAX_CHARS:
            raise QuestionTooLongError(len(question), limits.QUESTION_MAX_CHARS)
        snap = self._snapshot
        key = (question, dos, self.clock())
        known = snap.answers.get(key)
        if known is None:
            text = normalise_question(question)
            # NFKC can lengthen text, so the limit holds after normalising too.
            if len(text) > limits.QUESTION_MAX_CHARS:
                raise QuestionTooLongError(len(text), limits.QUESTION_MAX_CHARS)
            reading_key = (_NORMALISED, text, dos, key[2])
            known = snap.answers.get(reading_key)
            if known is None:
                known = self._answer(text, dos, snap)
                snap.answers.put(reading_key, known)
            known = replace(known, question=limits.echo(question))  # what the answer repeats back
            snap.answers.put(key, known)
        return known

    def _answer(self, text: str, dos: dt.date | None, snap: Snapshot) -> AnswerResult:
        """The answer to a normalised question, without the question's echo."""
        question = ""
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
        if not found.codes and not found.malformed:
            topical = self._topic_answer(text, day or self.clock(), common, snap)
            if topical is None:
                # The date says when the service was done; the other words name the service.
                topical = self._find_code_answer(without_date(text, found), common, snap)
            if topical is not None:
                if found.unreadable_date:
                    note = _unreadable_date_note(found.unreadable_date, dos is not None, common["date_of_service"])
                    topical = replace(topical, text=f"({note[0].upper() + note[1:]}.) {topical.text}")
                return topical
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
                         "characters: five digits (99213), four digits and A, F, M, T or U (0001A, 1036F, "
                         "0002M, 0556T, 0001U), or a letter and four digits (G0439). Please check the code "
                         "and ask again.",
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
        reports = [self._report(c, self._day(day), snap, modifiers.get(c, ""), place) for c in subjects]
        parts = [self._rendered(reading.intent, r, snap) for r in reports]
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
        left = [f"{m} for {c}" for c, m in found.unanswered_modifiers if c in subjects]
        if left:
            notes.append(f"modifier {', '.join(left)} not answered: one modifier per code is answered in a "
                         "question; ask about each code and modifier on its own")
        if found.malformed:
            notes.append(f"not a valid code format, so not answered: {', '.join(found.malformed)}")
        if found.diagnosis_codes:
            notes.append(f"{', '.join(found.diagnosis_codes)} looks like an ICD-10-CM diagnosis code; "
                         "coverage by diagnosis is not in our data")
        day_text = reports[0].facts["date_of_service"]
        first_notes = []  # about the date itself: read before the answer, not after it
        if found.unreadable_date:
            first_notes.append(_unreadable_date_note(found.unreadable_date, dos is not None, day_text))
        elif dos is not None and found.date_of_service and found.date_of_service != dos:
            first_notes.append(f"the question names {found.date_text!r}, but the request's date of service, "
                               f"{_long(day_text)}, is the one used")
        elif dos is None and found.date_of_service and found.date_text.isdigit():
            notes.append(f"'{found.date_text}' was read as the date of service {_long(day_text)}")
        if first_notes:
            body = "(" + "; ".join(n[0].upper() + n[1:] for n in first_notes) + ".) " + body
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

    def _rendered(self, intent: str, report: CodeReport, snap: Snapshot) -> str:
        """An intent's template rendered over a report, remembered on the report (questions
        differently worded ask the same of the same report), so it lives and goes with it and
        the caches' bounds hold."""
        known = report.rendered.get(intent)
        if known is None:
            known = render(snap.ruleset.templates[intent], report.facts)
            report.rendered[intent] = known
        return known

    def _topic_answer(self, text: str, day: dt.date, common: dict[str, Any],
                      snap: Snapshot) -> AnswerResult | None:
        """A question about a term rather than a code (rules/topics.yaml), or None."""
        topics = snap.ruleset.topics
        found = topics.answer(text, snap.data, day) if topics is not None else None
        if found is None:
            return None
        provenance = Provenance(found.fired, found.sources, snap.ruleset.revision, day.isoformat())
        first = found.sources[0].key if found.sources else ""
        return AnswerResult(**{**common, "intent": "topic", "confidence": found.confidence,
                               "runner_up": "", "matched": found.matched},
                            text=found.text, outcome=Outcome.ANSWERED, topic=found.topic,
                            provenance=provenance, fee_schedule_release=first)

    def _find_code_answer(self, text: str, common: dict[str, Any], snap: Snapshot) -> AnswerResult | None:
        """A question asking which code to use (search.yaml's cues): the best candidates, each
        with why it matched and its one-line description, and notes on what the question left
        open; None when the question asks something else or nothing matches well enough."""
        rules = snap.search_rules
        asked = read_find_code(text, rules)
        if asked is None:
            return None
        query, matches = snap.search_index().search(" ".join(asked.subject), rules.candidates,
                                                    prefer=asked.prefer)
        if not matches or matches[0].score < rules.min_score:
            return None
        codes = [m.code for m in matches]
        open_ = open_distinctions(rules, asked.said, codes)
        body = rules.render({
            "subject": " ".join(asked.subject), "notes": [d.note for d in open_],
            "readings": list(query.readings),
            "candidates": [{"code": m.code, "descriptor": m.descriptor, "descriptor_source": m.descriptor_source,
                            "category_label": m.category_label, "why": m.why, "score": m.score}
                           for m in matches]})

        def fired(rule_id: str, line: int, because: str, outputs: dict[str, Any]) -> Firing:
            rule = Rule(rule_id, "search", rules.path, line, None, {}, {}, because)  # type: ignore[arg-type]
            return Firing(rule, {"question": common["question"]}, outputs)

        firings = [fired("find_code.cue", asked.cue.line, "the question asks which code to use",
                         {"cue": asked.cue.text, "searched": " ".join(asked.subject)})]
        firings += [fired("find_code.synonym", line, "a name or abbreviation read by its meaning", {})
                    for line in query.synonym_lines]
        firings += [fired("find_code.distinction", d.line, f"open: {d.name}", {"codes": list(d.codes)})
                    for d in open_]
        used = {m.descriptor_source for m in matches} | {m.matched_field for m in matches}
        sources = [s for s in snap.data.sources()
                   if (s.key.startswith("catalogue-") and used & {"synonym", "descriptor", "plain_language", CATALOGUE_SOURCE})
                   or (s.key == (snap.data.hcpcs_files[-1].key if snap.data.hcpcs_files else "")
                       and any(u.startswith(("hcpcs_", "CMS HCPCS")) for u in used))]
        sources += [descriptors_source(r) for r in sorted({snap.data.cpt_descriptors[c][1] for c in codes
                                                            if c in snap.data.cpt_descriptors})]
        runner_up = common["intent"] if common["intent"] != NO_INTENT else ""
        values = {**common, "intent": "find_code", "runner_up": runner_up, "codes": tuple(codes),
                  "confidence": matches[0].score,
                  "matched": (f"{rules.path}:{asked.cue.line} find_code {asked.cue.text!r}",)}
        return AnswerResult(text=body, outcome=Outcome.ANSWERED, code=codes[0], candidates=tuple(matches),
                            provenance=Provenance(tuple(firings), tuple(sources), snap.ruleset.revision,
                                                  common["date_of_service"]), **values)

    def sources(self) -> list[DataSource]:
        return self._snapshot.data.sources()


_NORMALISED = object()  # marks answer-cache keys by normalised text apart from raw-text keys


def _unreadable_date_note(said: str, requested: bool, day: str) -> str:
    """Why a date the question states is not used, and which day the answer is for instead."""
    return (f"{said!r} is not a date we can use (not a calendar date, or outside {limits.DATE_MIN_YEAR}-"
            f"{limits.DATE_MAX_YEAR}), so this answer is for "
            + ("the request's date of service" if requested else "today") + f", {_long(day)}")


def _long(iso: str) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{day:%B} {day.day}, {day.year}"


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
