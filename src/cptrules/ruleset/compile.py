"""RuleSources → Ruleset, or every problem found, each with file:line.

Stages, as in a compiler: parse YAML, validate each file's shape against its
schema, type-check every CEL condition against the facts known at that point of
the table order, check hit policies, compile answer templates and phrasings.
Nothing is swapped in by this module; it only builds or refuses.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any

from ..answers.templates import compile_question, compile_templates
from ..errors import RuleFileErrors, RuleProblem
from ..facts import BASE_FACTS
from ..questions.phrasebook import compile_phrasebook
from .conditions import ConditionError, Environment, Where
from .model import FaqEntry, Output, Rule, Ruleset, RuleTest, Table, facts_read
from .source import RuleSources, SourceFile, line_of, parse_yaml, read_sources

MANIFEST = "ruleset.yaml"
_PY_TYPES = {"string": str, "double": (int, float), "bool": bool, "int": int, "list": list}


def load_ruleset(root: Path) -> Ruleset:
    """Read and compile a rules directory; raise RuleFileErrors listing every problem."""
    return compile_ruleset(read_rules(root))


def read_rules(root: Path) -> RuleSources:
    """A rules directory's files, read but not compiled (their revision names the ruleset before
    any compiling); RuleFileErrors when the directory has no manifest."""
    if not (root / MANIFEST).is_file():
        raise RuleFileErrors([RuleProblem(str(root), 0, "NO_MANIFEST",
                                          f"{MANIFEST} not found in {root}")])
    return read_sources(root)


def compile_ruleset(sources: RuleSources) -> Ruleset:
    """Compile sources; raise RuleFileErrors with all problems, sorted by location.

    A refused ruleset still has its tests run where they can be (see `_Compiler.test_problems`),
    so one report lists every problem across the stages.
    """
    compiler = _Compiler(sources)
    ruleset = compiler.run()
    if compiler.problems or ruleset is None:
        raise RuleFileErrors(compiler.problems + compiler.test_problems())
    return ruleset


def _schema() -> Any:
    """The rule files' schemas, imported on the first compile (with jsonschema, a tenth of a
    second): a start from a persisted snapshot compiles nothing."""
    from . import schema

    return schema


def plain_yaml(value: Any) -> Any:
    """ruamel's round-trip containers and scalars as plain Python values."""
    if isinstance(value, dict):
        return {str(k): plain_yaml(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_yaml(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _suggest(message: str, names: dict[str, str]) -> str:
    """' (did you mean x?)' for an undeclared name close to a declared one."""
    found = re.search(r"undeclared reference to '(\w+)'", message)
    close = difflib.get_close_matches(found.group(1), list(names), n=1) if found else []
    return f" (did you mean {close[0]}?)" if close else ""


def _fits(value: Any, kind: str) -> bool:
    if kind in ("double", "int") and isinstance(value, bool):
        return False
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, _PY_TYPES[kind])


class _Compiler:
    """Holds the problems found so far; each stage adds to them and goes on."""

    def __init__(self, sources: RuleSources) -> None:
        self.sources = sources
        self.problems: list[RuleProblem] = list(sources.problems)
        self.fact_types = {name: spec.type for name, spec in BASE_FACTS.items()}
        self.rule_ids: dict[str, tuple[str, int]] = {}
        self.loaded: list[Table | None] = []    # tables in manifest order; None where one failed
        self.runnable: set[str] = set()         # tables whose every rule and output compiled
        self.bad_tests: set[tuple[str, int]] = set()  # tests with problems of their own
        self.phrasebook: Any = None
        self.name = ""

    def problem(self, path: str, line: int, kind: str, message: str) -> None:
        self.problems.append(RuleProblem(path, line, kind, message))

    def document(self, name: str, shape: dict[str, Any], named_at: int = 1) -> tuple[Any, SourceFile | None]:
        source = self.sources.files.get(name)
        if source is None:
            close = difflib.get_close_matches(name, list(self.sources.files), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.problem(MANIFEST if name != MANIFEST else name, named_at if name != MANIFEST else 0,
                         "MISSING_FILE", f"{name} does not exist{hint}")
            return None, None
        doc, problems = parse_yaml(source)
        self.problems.extend(problems)
        if doc is None:
            if not problems:
                self.problem(name, 1, "EMPTY_FILE", "the file is empty")
            return None, source
        found, usable = _schema().validate(doc, shape, name)
        self.problems.extend(found)
        return (doc if usable else None), source

    def run(self) -> Ruleset | None:
        manifest, _ = self.document(MANIFEST, _schema().MANIFEST_SCHEMA)
        if manifest is None:
            return None
        self.name = str(manifest["name"])
        self.loaded = [self.table(str(name), line_of(manifest, ["tables", i]))
                       for i, name in enumerate(manifest["tables"])]
        tables = [t for t in self.loaded if t is not None]
        complete = len(tables) == len(manifest["tables"])
        folder = str(manifest["answers"]).rstrip("/") + "/"
        template_files = {n[len(folder):-3] for n in self.sources.files if n.startswith(folder) and n.endswith(".j2")}
        templates, template_problems = compile_templates(
            self.sources, str(manifest["answers"]), set(self.fact_types))
        # A table that failed to load leaves its facts unknown: templates naming them are not
        # wrong, so those reports wait until the table loads.
        self.problems.extend(p for p in template_problems
                             if complete or not p.message.startswith("unknown fact"))
        faq = self.faq(str(manifest["faq"]), template_files)
        phrasebook = None
        questions, qsource = self.document(str(manifest["questions"]), _schema().QUESTIONS_SCHEMA)
        if questions is not None and qsource is not None:
            phrasebook, problems = compile_phrasebook(plain_yaml(questions), questions, qsource.path,
                                                      template_files)
            self.problems.extend(problems)
            self.phrasebook = None if problems else phrasebook
        topics = self.topics(manifest, tables, complete)
        if self.problems:
            return None
        return Ruleset(
            name=str(manifest["name"]),
            revision=self.sources.revision(),
            root=self.sources.root,
            tables=tuple(tables),
            faq=tuple(faq),
            templates=templates,
            phrasebook=phrasebook,
            fact_types=dict(self.fact_types),
            files=tuple(sorted(self.sources.files)),
            topics=topics,
        )

    def topics(self, manifest: Any, tables: list[Table], complete: bool) -> Any:
        """The topics file named by the manifest, if any (see topics.py)."""
        from ..topics import TOPICS_SCHEMA, compile_topics, topic_templates

        if "topics" not in manifest:
            return None
        name = str(manifest["topics"])
        doc, _ = self.document(name, TOPICS_SCHEMA, line_of(manifest, ["topics"]))
        if doc is None or not complete:
            return None
        topics, problems = compile_topics(doc, name, tables,
                                          topic_templates(self.sources, str(manifest["answers"])), line_of)
        self.problems.extend(problems)
        return topics

    def test_problems(self) -> list[RuleProblem]:
        """Failing tests of a ruleset refused for other problems: the rule tests of every table
        that compiled whole, as long as every table before it did too (a test runs the tables
        up to its own), and the phrasing examples when the phrasebook and the category table
        compiled. Tests with problems of their own, and tables after a broken one, are left out,
        so one mistake gives one report."""
        from .check import TestReport, phrasebook_problems, run_test, test_problems

        prefix: list[Table] = []
        for table in self.loaded:
            if table is None or table.name not in self.runnable:
                break
            prefix.append(table)
        if not prefix:
            return []
        partial = Ruleset(name=self.name, revision=self.sources.revision(), root=self.sources.root,
                          tables=tuple(prefix), faq=(), templates={}, phrasebook=self.phrasebook,
                          fact_types=dict(self.fact_types), files=tuple(sorted(self.sources.files)))
        outcomes = [run_test(partial, test)[0] for table in prefix for test in table.tests
                    if (test.path, test.line) not in self.bad_tests]
        problems = test_problems(TestReport(outcomes=outcomes))
        if self.phrasebook is not None:
            problems += phrasebook_problems(partial, dt.datetime.now(dt.timezone.utc).date())
        return problems

    def table(self, name: str, named_at: int) -> Table | None:
        doc, _ = self.document(name, _schema().TABLE_SCHEMA, named_at)
        if doc is None:
            return None
        table_name = str(doc["table"])
        outputs: dict[str, Output] = {}
        before = len(self.problems)
        for out_name, spec in doc["outputs"].items():
            line = line_of(doc, ["outputs", out_name])
            kind = str(spec["type"])
            default = plain_yaml(spec["default"])
            values = tuple(plain_yaml(spec.get("values", [])))
            if out_name in self.fact_types:
                self.problem(name, line, "DUPLICATE_FACT",
                             f"output {out_name!r} is already a fact set elsewhere")
                continue
            if not _fits(default, kind):
                self.problem(name, line, "TYPE", f"default of {out_name!r} is not a {kind}")
            if doc["hit"] == "collect" and kind != "list":
                self.problem(name, line, "HIT_POLICY",
                             f"a collect table appends to lists; {out_name!r} is a {kind}")
            outputs[str(out_name)] = Output(str(out_name), kind, default, values,
                                            str(spec.get("doc", "")))
        env = Environment({**self.fact_types, **{o.name: o.type for o in outputs.values()}})
        outputs_ok = len(self.problems) == before
        rules = [r for i, raw in enumerate(doc["rules"])
                 if (r := self.rule(name, table_name, doc, i, raw, outputs, env)) is not None]
        if outputs_ok and len(rules) == len(doc["rules"]):
            self.runnable.add(table_name)
        if doc["hit"] == "first":
            for earlier, later in zip(rules, rules[1:]):
                if earlier.when.text.strip() == "true":
                    self.problem(name, later.line, "UNREACHABLE",
                                 f"rule {later.id!r} can never fire: {earlier.id!r} "
                                 f"(line {earlier.line}) always matches first")
                    break
        tests = self.tests(name, table_name, doc, outputs, {str(raw["id"]) for raw in doc["rules"]})
        self.fact_types.update({o.name: o.type for o in outputs.values()})
        return Table(table_name, name, str(doc["hit"]), outputs, tuple(rules), tuple(tests),
                     str(doc.get("description", "")), facts_read(tuple(rules)))

    def rule(self, path: str, table: str, doc: Any, index: int, raw: Any,
             outputs: dict[str, Output], env: Environment) -> Rule | None:
        line = line_of(doc, ["rules", index])
        rule_id = str(raw["id"])
        ok = True
        if rule_id in self.rule_ids:
            first = self.rule_ids[rule_id]
            self.problem(path, line, "DUPLICATE_ID",
                         f"rule id {rule_id!r} is also used at {first[0]}:{first[1]}")
            # The rule itself compiles on, so the table's tests still run and report.
        self.rule_ids.setdefault(rule_id, (path, line))
        when = None
        try:
            when = env.compile(str(raw["when"]), "bool", Where(path, line, rule_id))
        except ConditionError as exc:
            self.problem(path, line_of(doc, ["rules", index, "when"]), "CEL",
                         f"rule {rule_id!r}, when: {exc}{_suggest(str(exc), env.fact_types)}")
            ok = False
        sets = plain_yaml(raw.get("set", {}))
        for key, value in sets.items():
            out, key_line = self.declared(path, doc, index, "set", key, rule_id, outputs)
            if out is None:
                ok = False
                continue
            item_kind = "string" if out.type == "list" else out.type
            if not _fits(value, item_kind):
                self.problem(path, key_line, "TYPE",
                             f"rule {rule_id!r} sets {key!r} to {value!r}, not a {item_kind}")
                ok = False
            elif out.values and value not in out.values:
                self.problem(path, key_line, "VALUE",
                             f"rule {rule_id!r} sets {key!r} to {value!r}; allowed: "
                             + ", ".join(map(str, out.values)))
                ok = False
        lets = {}
        for key, text in plain_yaml(raw.get("let", {})).items():
            out, key_line = self.declared(path, doc, index, "let", key, rule_id, outputs)
            if out is None:
                ok = False
                continue
            if key in sets:
                self.problem(path, key_line, "CONFLICT",
                             f"rule {rule_id!r} both sets and computes {key!r}")
                ok = False
            try:
                lets[key] = env.compile(text, out.type, Where(path, key_line, rule_id))
            except ConditionError as exc:
                self.problem(path, key_line, "CEL",
                             f"rule {rule_id!r}, let {key}: {exc}{_suggest(str(exc), env.fact_types)}")
                ok = False
        if not ok or when is None:
            return None
        return Rule(rule_id, table, path, line, when, sets, lets, str(raw["because"]),
                    str(raw.get("source", "")))

    def declared(self, path: str, doc: Any, index: int, part: str, key: str, rule_id: str,
                 outputs: dict[str, Output]) -> tuple[Output | None, int]:
        """The output a rule's set/let key names, or a located problem when the table lacks it."""
        key_line = line_of(doc, ["rules", index, part, key])
        out = outputs.get(key)
        if out is None:
            verb = "sets" if part == "set" else "computes"
            self.problem(path, key_line, "UNKNOWN_OUTPUT",
                         f"rule {rule_id!r} {verb} {key!r}, which this table does not declare")
        return out, key_line

    def tests(self, path: str, table: str, doc: Any, outputs: dict[str, Output],
              rule_ids: set[str]) -> list[RuleTest]:
        known = {**self.fact_types, **{o.name: o.type for o in outputs.values()}}
        tests = []
        for index, raw in enumerate(doc.get("tests", []) or []):
            line = line_of(doc, ["tests", index])
            plain = plain_yaml(raw)
            before = len(self.problems)
            for part in ("given", "expect"):
                for key, value in plain[part].items():
                    if key not in known:
                        self.problem(path, line_of(doc, ["tests", index, part, key]),
                                     "UNKNOWN_FACT", f"test {plain['name']!r}: {part} names "
                                     f"unknown fact {key!r}")
                    elif not _fits(value, known[key]):
                        self.problem(path, line_of(doc, ["tests", index, part, key]), "TYPE",
                                     f"test {plain['name']!r}: {key} = {value!r} is not a "
                                     f"{known[key]}")
            for rule_id in plain.get("fired", []):
                if rule_id not in rule_ids:
                    self.problem(path, line, "UNKNOWN_RULE",
                                 f"test {plain['name']!r} expects unknown rule {rule_id!r}")
            fired = plain.get("fired")
            if len(self.problems) != before:
                self.bad_tests.add((path, line))
            tests.append(RuleTest(table, path, line, str(plain["name"]), plain["given"],
                                  plain["expect"], tuple(fired) if fired is not None else None))
        return tests

    def faq(self, name: str, intents: set[str]) -> list[FaqEntry]:
        doc, _ = self.document(name, _schema().FAQ_SCHEMA)
        if doc is None:
            return []
        env = Environment(self.fact_types)
        entries = []
        for index, raw in enumerate(doc["entries"]):
            line = line_of(doc, ["entries", index])
            intent = str(raw["intent"])
            if intent not in intents:
                self.problem(name, line, "NO_TEMPLATE", f"no answer template for intent {intent!r}")
                continue
            try:
                applies = env.compile(str(raw["applies_when"]), "bool",
                                      Where(name, line_of(doc, ["entries", index, "applies_when"]),
                                            f"faq {intent}"))
            except ConditionError as exc:
                self.problem(name, line_of(doc, ["entries", index, "applies_when"]), "CEL",
                             f"entry {intent!r}, applies_when: {exc}")
                continue
            question, problem = compile_question(str(raw["question"]), name,
                                                 line_of(doc, ["entries", index, "question"]),
                                                 set(self.fact_types))
            if problem is not None:
                self.problems.append(problem)
                continue
            entries.append(FaqEntry(intent, question, str(raw["question"]), applies, name, line))
        return entries
