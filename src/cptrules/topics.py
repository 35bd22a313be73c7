"""Questions about a term rather than a code ("what does status indicator C mean?", "what is
a 090 global?", "what was the 2025 conversion factor?").

rules/topics.yaml says which words name each topic, how its value is read from the question
and where its meaning lives: a rule table run on that value alone (the same entry a per-code
answer reads, so both say the same thing), named rules whose reasons explain it, or the
loaded fee-schedule releases. rules/answers/topic_*.j2 word the answer. Cues are matched word
by word, in any order, with rapidfuzz for typos in longer words.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from .answers.templates import AnswerTemplate, compile_question, render
from .errors import RuleEvaluationError, RuleProblem, TemplateRenderError
from .evaluate import Firing, evaluate_table
from .facts import BASE_FACTS, empty_facts
from .limits import ANSWER_MAX_CODES
from .ruleset.model import Rule, Table

TEMPLATE_PREFIX = "topic_"

_WORDS = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[a-z0-9]+( [a-z0-9]+)*$"}
_WORD_LIST = {"type": "array", "items": _WORDS}
_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_LITERAL = {"type": ["string", "number", "boolean"]}

TOPICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topics"],
    "properties": {
        "description": {"type": "string"},
        "min_word_score": {"type": "number", "minimum": 50, "maximum": 100},
        "filler": _WORD_LIST,
        "vetoes": _WORD_LIST,
        "topics": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "cues", "answer"],
                "properties": {
                    "id": _NAME,
                    "doc": {"type": "string"},
                    "cues": {**_WORD_LIST, "minItems": 1},
                    "weak_cues": _WORD_LIST,
                    "value": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["pattern"],
                        "properties": {
                            "pattern": {"type": "string", "minLength": 1, "maxLength": 200},
                            "aliases": {"type": "object", "additionalProperties": {"type": "string"}},
                            "upper": {"type": "boolean"},
                            "anywhere": {"type": "boolean"},
                        },
                    },
                    "table": _NAME,
                    "input": _NAME,
                    "given": {"type": "object", "additionalProperties": _LITERAL},
                    "choices": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["cues", "given"],
                            "properties": {
                                "cues": {**_WORD_LIST, "minItems": 1},
                                "given": {"type": "object", "additionalProperties": _LITERAL},
                            },
                        },
                    },
                    "rules": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "related": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["table", "input", "output"],
                            "properties": {"table": _NAME, "input": _NAME, "output": _NAME},
                        },
                    },
                    "meaning": {"type": "string"},
                    "source": {"type": "string"},
                    "data": {"enum": ["conversion_factor"]},
                    "answer": {"type": "string", "pattern": "^topic_[a-z0-9_]+$"},
                },
            },
        },
    },
}

# What a topic template may name besides the facts.
TEMPLATE_NAMES = frozenset({"topic", "asked", "known", "values", "entries", "related", "rules", "meaning", "source",
                            "releases", "loaded_releases", "year", "date_of_service", "in_force"})
_FILLER_REACH = 4  # filler words skipped between a cue and its value
_LIST_JOINERS = frozenset({",", "&", "/", "and", "or", "vs", "versus"})  # between listed values
MAX_VALUE_CHARS = 12
MAX_LISTED = ANSWER_MAX_CODES  # values of one topic answered in one question, as codes are


@dataclass(frozen=True, slots=True)
class Cue:
    """Words that name a topic (any order), where they are written, and whether they name it
    only together with a value ("status C", but not "status" alone)."""

    words: tuple[str, ...]
    line: int
    weak: bool = False
    choice: str = ""


@dataclass(frozen=True)
class ValueSpec:
    """How a topic's value is read from the word beside its cue."""

    pattern: re.Pattern[str]
    aliases: dict[str, str]
    upper: bool
    anywhere: bool

    def read(self, token: str) -> str:
        if len(token) > MAX_VALUE_CHARS:  # values are short; no pattern runs over a long word
            return ""
        value = self.aliases.get(token, token)
        if token not in self.aliases and not self.pattern.fullmatch(token):
            return ""
        return value.upper() if self.upper else value


@dataclass(frozen=True)
class Topic:
    """One topic of rules/topics.yaml, resolved against the compiled tables."""

    id: str
    line: int
    cues: tuple[Cue, ...]
    template: AnswerTemplate
    value: ValueSpec | None = None
    table: Table | None = None
    input: str = ""
    given: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    meaning: str = ""
    source: str = ""
    data: str = ""
    related: dict[str, Related] = field(default_factory=dict)
    empty: dict[str, Any] = field(default_factory=dict, repr=False)  # every fact at its empty value

    def known_values(self) -> list[str]:
        """The values the topic's table defines: those its rules compare the input with."""
        if self.choices:
            return list(self.choices)
        if self.table is None or not self.input:
            return []
        return compared_values(self.table, self.input)


def compared_values(table: Table, name: str) -> list[str]:
    """The values a table's rules compare one fact with (`name == 'C'`), in rule order."""
    equal = re.compile(rf"^\s*{re.escape(name)}\s*==\s*['\"]([^'\"]*)['\"]\s*$")
    found = (equal.match(rule.when.text) for rule in table.rules)
    return list(dict.fromkeys(m.group(1) for m in found if m))


@dataclass(frozen=True)
class Related:
    """Another table that says more about one value: e.g. for modifier 50, what each bilateral
    surgery indicator means (its rules run on each value of `input`, reading `output`)."""

    table: Table
    input: str
    output: str
    empty: dict[str, Any] = field(default_factory=dict, repr=False)

    def entries(self) -> tuple[list[dict[str, Any]], list[Firing]]:
        rows, fired = [], []
        for value in compared_values(self.table, self.input):
            facts = dict(self.empty)
            facts[self.input] = value
            try:
                firings = evaluate_table(self.table, facts)
            except RuleEvaluationError:
                continue
            if firings and facts[self.output]:
                rows.append({"value": value, "meaning": facts[self.output]})
                fired += firings
        return rows, fired


@dataclass(frozen=True)
class TopicMatch:
    """The topic a question is about, the value it names ('' for none), and the cue that matched."""

    topic: Topic
    value: str
    cue: Cue
    closeness: float
    more: tuple[str, ...] = ()  # further values listed with it ("modifier 59 and 25"), in question order


@dataclass(frozen=True)
class TopicAnswer:
    """A rendered topic answer with what it came from."""

    topic: str
    text: str
    fired: tuple[Firing, ...]
    sources: tuple[Any, ...]
    matched: tuple[str, ...]
    confidence: float


@dataclass(frozen=True)
class Topics:
    """Every topic of a ruleset, matched against questions that name no code."""

    path: str
    topics: tuple[Topic, ...]
    filler: frozenset[str]
    vetoes: tuple[str, ...]
    min_word_score: float = 85.0

    def find(self, question: str) -> TopicMatch | None:
        """The topic the question is about; None when it names none or asks for a code."""
        tokens = re.findall(r"[a-z0-9]+", question.lower())
        joined = f" {' '.join(tokens)} "
        if not tokens or any(f" {veto} " in joined for veto in self.vetoes):
            return None
        best: tuple[tuple[int, float, int], TopicMatch] | None = None
        places: dict[str, list[tuple[float, int]]] = {}  # cue word -> (closeness, position), best first
        for order, topic in enumerate(self.topics):
            for cue in topic.cues:
                found = self._match(cue.words, tokens, places)
                if found is None:
                    continue
                positions, closeness = found
                value = cue.choice or self._value(topic, tokens, positions)
                if cue.weak and not value:
                    continue
                rank = (len(cue.words) + (1 if value and not cue.choice else 0), closeness, -order)
                if best is None or rank > best[0]:
                    best = (rank, TopicMatch(topic, value, cue, closeness))
        if best is None:
            return None
        match = best[1]
        if match.value and not match.cue.choice:
            listed = self._listed(match.topic, question, match.value)
            if len(listed) > 1:
                match = TopicMatch(match.topic, listed[0], match.cue, match.closeness, tuple(listed[1:]))
        return match

    def _listed(self, topic: Topic, question: str, value: str) -> list[str]:
        """The value with the others listed beside it ("59 and 25", "2025, 2026 or 2027"), in
        question order. A listed word counts when the topic defines it, or when it holds a digit
        (years, modifiers such as 25): "modifier 59 and is it..." lists no modifier IS."""
        spec = topic.value
        assert spec is not None
        tokens = re.findall(r"[a-z0-9]+|[,&/]", question.lower())
        known = set(topic.known_values())
        at = next((i for i, t in enumerate(tokens) if spec.read(t) == value), None)
        if at is None:
            return [value]

        def more(step: int) -> list[str]:
            found, i = [], at + step
            while 0 <= i < len(tokens):
                gap = 0
                while 0 <= i < len(tokens) and tokens[i] in _LIST_JOINERS and gap < 2:
                    i, gap = i + step, gap + 1
                if not gap or not 0 <= i < len(tokens) or tokens[i] in self.filler:
                    break
                other = spec.read(tokens[i])
                if not other or not (other in known or any(c.isdigit() for c in other)):
                    break
                found.append(other)
                i += step
            return found

        return list(dict.fromkeys(more(-1)[::-1] + [value] + more(1)))

    def _match(self, words: tuple[str, ...], tokens: list[str],
               places: dict[str, list[tuple[float, int]]]) -> tuple[list[int], float] | None:
        """Where each cue word is in the question (each at its own place) and the weakest match."""
        used: list[int] = []
        weakest = 1.0
        for word in words:
            if word not in places:
                places[word] = self._places(word, tokens)
            at = next(((score, i) for score, i in places[word] if i not in used), None)
            if at is None:
                return None
            used.append(at[1])
            weakest = min(weakest, at[0])
        return used, weakest

    def _places(self, word: str, tokens: list[str]) -> list[tuple[float, int]]:
        """Every position of a word in the question, exact or misspelt, closest first. Misspellings
        are tried only for words of five letters or more, against tokens of a length that could
        reach the score (so a long question costs little)."""
        found = [(1.0, i) for i, token in enumerate(tokens) if token == word]
        if len(word) >= 5:
            scores: dict[str, float] = {}
            for i, token in enumerate(tokens):
                if token == word or len(token) < 4 or abs(len(token) - len(word)) > 3:
                    continue
                if token not in scores:
                    scores[token] = fuzz.ratio(token, word, score_cutoff=self.min_word_score) / 100.0
                if scores[token] > 0.0:
                    found.append((scores[token], i))
        return sorted(found, key=lambda p: (-p[0], p[1]))

    def _value(self, topic: Topic, tokens: list[str], positions: list[int], reach: int = _FILLER_REACH) -> str:
        """The value written right after the cue (past filler words), else right before it. A
        filler word is a value only right after the cue ("status indicator A", not "the status
        of a claim" nor "what is a status indicator")."""
        spec = topic.value
        if spec is None:
            return ""
        after = max(positions) + 1
        for i in range(after, min(len(tokens), after + reach)):
            if i in positions:
                continue
            filler = tokens[i] in self.filler
            value = spec.read(tokens[i]) if i == after or not filler else ""
            if value:
                return value
            if not filler:
                break
        before = min(positions) - 1
        for i in range(before, max(-1, before - reach), -1):
            if tokens[i] in self.filler:  # "what is a status indicator" names no status A
                continue
            value = spec.read(tokens[i])
            if value:
                return value
            break
        if spec.anywhere:
            for token in tokens:
                value = spec.read(token)
                if value:
                    return value
        return ""

    def answer(self, question: str, data: Any, day: dt.date) -> TopicAnswer | None:
        """The answer to a question about a topic, or None when it names no topic."""
        match = self.find(question)
        if match is None:
            return None
        text, fired, sources = explain(match.topic, match.value, data, day)
        for value in match.more[:MAX_LISTED - 1]:  # each value listed gets its own answer
            more_text, more_fired, more_sources = explain(match.topic, value, data, day)
            text += "\n\n" + more_text
            fired += tuple(f for f in more_fired if f not in fired)
            sources += tuple(s for s in more_sources if s not in sources)
        if len(match.more) >= MAX_LISTED:
            text += (f" (Not answered, at most {MAX_LISTED} per question: "
                     f"{', '.join(match.more[MAX_LISTED - 1:])}; ask about each on its own.)")
        cue = match.cue
        matched = (f"{self.path}:{cue.line} topic {match.topic.id} {' '.join(cue.words)!r}"
                   + (f" ~{match.closeness:.2f}" if match.closeness < 1 else ""),)
        name = f"{match.topic.id}:{match.value}" if match.value else match.topic.id
        return TopicAnswer(name, text, fired, sources, matched, match.closeness)


def _evaluate(topic: Topic, value: str, extra: dict[str, Any]) -> tuple[dict[str, Any], list[Firing]]:
    """The topic's table run on the value alone (every other fact empty)."""
    facts = dict(topic.empty)
    facts.update(topic.given)
    facts.update(extra)
    if topic.input:
        facts[topic.input] = value
    if topic.table is None:
        return facts, []
    try:
        return facts, evaluate_table(topic.table, facts)
    except RuleEvaluationError:
        return facts, []


def _defines(topic: Topic, value: str, fired: list[Firing]) -> bool:
    """Whether a rule written for this very value fired (not a catch-all such as status-other)."""
    return value in topic.known_values() and bool(fired)


def _rule(rule: Rule) -> dict[str, Any]:
    return {"id": rule.id, "because": rule.because, "source": rule.source, "file": rule.path, "line": rule.line}


def context(topic: Topic, value: str, data: Any, day: dt.date) -> tuple[dict[str, Any], list[Firing], list[Any]]:
    """Everything a topic template may name, the rules it rests on and the data releases used."""
    extra = topic.choices.get(value, {}) if topic.choices else {}
    facts, fired = _evaluate(topic, value, extra)
    known = _defines(topic, value, fired) if value else False
    entries: list[dict[str, Any]] = []
    if not value and (topic.table is not None and (topic.input or topic.choices)):
        for known in topic.known_values():
            entry, more = _evaluate(topic, known, topic.choices.get(known, {}) if topic.choices else {})
            entries.append({**entry, "value": known})
            fired += more
    related: list[dict[str, Any]] = []
    if value in topic.related:
        related, more = topic.related[value].entries()
        fired += more
    fired += [Firing(rule, {}, {}) for rule in topic.rules]
    sources: list[Any] = []
    releases: list[dict[str, Any]] = []
    loaded: list[dict[str, Any]] = []
    year = 0
    covered = False  # whether a loaded release is in force on the day (undated questions)
    if topic.data == "conversion_factor" and data is not None:
        from .data.store import pfs_source

        loaded = [_release(r) for r in data.releases]
        if value:
            year = int(value)
            chosen = [r for r in data.releases if r.year == year]
        else:
            in_force = data.release_for(day)
            current = in_force or (data.releases[-1] if data.releases else None)
            chosen = [current] if current is not None else []
            covered = in_force is not None
        releases = [_release(r) for r in chosen]
        sources = [pfs_source(r) for r in chosen]
    names = {**facts, "topic": topic.id, "asked": value,
             "known": known,
             "values": topic.known_values(), "entries": entries, "related": related, "rules": [_rule(f.rule) for f in fired],
             "meaning": topic.meaning, "source": topic.source, "releases": releases,
             "loaded_releases": loaded, "year": year, "date_of_service": day.isoformat(),
             "in_force": covered}
    return names, fired, sources


def _release(release: Any) -> dict[str, Any]:
    return {"key": release.key, "year": release.year, "effective": release.effective.isoformat(),
            "conversion_factor": release.conversion_factor,
            "qp_conversion_factor": release.qp_conversion_factor, "partial": release.partial}


def explain(topic: Topic, value: str, data: Any, day: dt.date) -> tuple[str, tuple[Firing, ...], tuple[Any, ...]]:
    """The answer text for one topic and value, with the rules and releases behind it."""
    names, fired, sources = context(topic, value, data, day)
    unique = tuple({(f.rule.path, f.rule.line): f for f in fired}.values())
    return render(topic.template, names), unique, tuple(sources)


# -- loading -------------------------------------------------------------------------------


def compile_topics(doc: Any, path: str, tables: list[Table], templates: dict[str, Any],
                   line_of: Any) -> tuple[Topics | None, list[RuleProblem]]:
    """Build the topics of a schema-valid topics.yaml; every problem with its file and line.

    `templates` maps each topic_* template's name to its (text, path); they are compiled here
    with the names a topic answer has, and rendered once for every value each topic defines.
    """
    problems: list[RuleProblem] = []
    by_name = {t.name: t for t in tables}
    rules = {r.id: r for t in tables for r in t.rules}
    known_names = set(BASE_FACTS) | {o for t in tables for o in t.outputs} | TEMPLATE_NAMES
    compiled: dict[str, AnswerTemplate] = {}
    empty = {**empty_facts(), **{o.name: copy.copy(o.default) for t in tables for o in t.outputs.values()}}
    topics: list[Topic] = []
    seen: dict[str, int] = {}

    def problem(where: list[Any], kind: str, message: str) -> None:
        problems.append(RuleProblem(path, line_of(doc, where), kind, message))

    for index, raw in enumerate(doc["topics"]):
        here = ["topics", index]
        topic_id = str(raw["id"])
        if topic_id in seen:
            problem([*here, "id"], "DUPLICATE_ID", f"topic {topic_id!r} is already defined on line {seen[topic_id]}")
            continue
        seen[topic_id] = line_of(doc, [*here, "id"])
        start = len(problems)
        table = None
        if "table" in raw:
            table = by_name.get(str(raw["table"]))
            if table is None:
                problem([*here, "table"], "UNKNOWN_TABLE", f"no table {raw['table']!r} in ruleset.yaml")
        elif "input" in raw or "choices" in raw:
            problem(here, "TOPIC", "input and choices need a table to run")
        facts_known = set(BASE_FACTS) | {o for t in tables for o in t.outputs}
        if "input" in raw and str(raw["input"]) not in facts_known:
            problem([*here, "input"], "UNKNOWN_FACT", f"no fact {raw['input']!r}")
        given = {str(k): v for k, v in (raw.get("given") or {}).items()}
        choices = {str(k): {str(f): v for f, v in (c.get("given") or {}).items()}
                   for k, c in (raw.get("choices") or {}).items()}
        for where, values in [([*here, "given"], given)] + [
                ([*here, "choices", k, "given"], v) for k, v in choices.items()]:
            for name, value in values.items():
                if name not in facts_known:
                    problem([*where, name], "UNKNOWN_FACT", f"no fact {name!r}")
                elif name in BASE_FACTS and not _fits(value, BASE_FACTS[name].type):
                    problem([*where, name], "TYPE", f"{name} is a {BASE_FACTS[name].type}")
        listed = []
        for i, rule_id in enumerate(raw.get("rules") or []):
            if rule_id in rules:
                listed.append(rules[rule_id])
            else:
                problem([*here, "rules", i], "UNKNOWN_RULE", f"no rule {rule_id!r} in the tables")
        related = {}
        for key, link in (raw.get("related") or {}).items():
            other = by_name.get(str(link["table"]))
            where = [*here, "related", key]
            if other is None:
                problem([*where, "table"], "UNKNOWN_TABLE", f"no table {link['table']!r} in ruleset.yaml")
            elif str(link["output"]) not in other.outputs:
                problem([*where, "output"], "UNKNOWN_FACT", f"table {other.name} sets no {link['output']!r}")
            elif not compared_values(other, str(link["input"])):
                problem([*where, "input"], "UNKNOWN_FACT",
                        f"no rule of table {other.name} compares {link['input']!r} with a value")
            else:
                related[str(key)] = Related(other, str(link["input"]), str(link["output"]), empty)
        spec = None
        if "value" in raw:
            try:
                pattern = re.compile(str(raw["value"]["pattern"]))
                spec = ValueSpec(pattern, {str(k): str(v) for k, v in (raw["value"].get("aliases") or {}).items()},
                                 bool(raw["value"].get("upper", False)), bool(raw["value"].get("anywhere", False)))
            except re.error as exc:
                problem([*here, "value", "pattern"], "PATTERN", f"not a regular expression: {exc}")
        if raw.get("data") == "conversion_factor" and spec is None:
            problem(here, "TOPIC", "a conversion_factor topic needs a value pattern for the year")
        name = str(raw["answer"])
        template = compiled.get(name)
        if template is None and name in templates:
            text, template_path = templates[name]
            template, failed = compile_question(text, template_path, 1, known_names)
            if failed:
                problems.append(failed)
                template = None
            else:
                compiled[name] = template
        if template is None:
            if name not in templates:
                problem([*here, "answer"], "NO_TEMPLATE", f"no answer template answers/{name}.j2")
            continue
        cues = [Cue(tuple(str(c).split()), line_of(doc, [*here, "cues", i])) for i, c in enumerate(raw["cues"])]
        cues += [Cue(tuple(str(c).split()), line_of(doc, [*here, "weak_cues", i]), weak=True)
                 for i, c in enumerate(raw.get("weak_cues") or [])]
        for key, choice in (raw.get("choices") or {}).items():
            cues += [Cue(tuple(str(c).split()), line_of(doc, [*here, "choices", key, "cues", i]), choice=str(key))
                     for i, c in enumerate(choice["cues"])]
        if len(problems) > start:
            continue
        topic = Topic(topic_id, seen[topic_id], tuple(cues), template, spec, table, str(raw.get("input", "")),
                      given, choices, tuple(listed), str(raw.get("meaning", "")), str(raw.get("source", "")),
                      str(raw.get("data", "")), related, empty)
        problems += _render_problems(topic)
        topics.append(topic)
    if problems:
        return None, problems
    return Topics(path, tuple(topics), frozenset(str(w) for w in doc.get("filler") or ()),
                  tuple(str(v) for v in doc.get("vetoes") or ()),
                  float(doc.get("min_word_score", 85))), []


def _fits(value: Any, kind: str) -> bool:
    types = {"string": str, "double": (int, float), "bool": bool, "int": int, "list": list}
    return isinstance(value, types[kind]) and not (kind in ("double", "int") and isinstance(value, bool))


@dataclass(frozen=True)
class _SampleRelease:
    """A release shape for rendering conversion-factor templates at load, before data loads."""

    key: str = "RVU00A"
    title: str = "sample release"
    released: str = "2000-01-01"
    sha256: str = ""
    year: int = 2000
    effective: dt.date = dt.date(2000, 1, 1)
    conversion_factor: float = 1.0
    qp_conversion_factor: float = 0.0
    partial: bool = False


@dataclass(frozen=True)
class _SampleData:
    releases: tuple[Any, ...]

    def release_for(self, day: dt.date) -> Any:
        return self.releases[0] if self.releases else None


def _render_problems(topic: Topic) -> list[RuleProblem]:
    """Render the topic's template for no value, every value it defines and one it does not."""
    day = dt.date(2000, 6, 1)
    values = ["", *topic.known_values(), "ZZZZ"]
    datas: list[Any] = [None]
    if topic.data == "conversion_factor":
        values = ["", "2000", "1999"]
        datas = [_SampleData((_SampleRelease(),)), _SampleData((_SampleRelease(qp_conversion_factor=2.0),)),
                 _SampleData(())]
    found: list[RuleProblem] = []
    for data in datas:
        for value in values:
            try:
                explain(topic, value, data, day)
            except TemplateRenderError as exc:
                return [RuleProblem(exc.path, exc.line, "TEMPLATE_RENDER",
                                    f"topic {topic.id} with value {value!r}: {exc.detail}")]
    return found


def topic_templates(sources: Any, folder: str) -> dict[str, tuple[str, str]]:
    """The topic_*.j2 templates of the answers folder: name → (text, path)."""
    prefix = folder.rstrip("/") + "/"
    return {name[len(prefix):-3]: (source.text, name) for name, source in sources.files.items()
            if name.startswith(prefix + TEMPLATE_PREFIX) and name.endswith(".j2")}

