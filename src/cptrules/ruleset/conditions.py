"""CEL conditions: a typed environment per table, compile-time checks, bounded evaluation.

The C++ CEL runtime (cel-expr-python) rejects unknown names and type errors when
a rule is loaded and has no I/O functions and no access to Python objects. Its cost
is bounded by the runtime itself, which cel-expr-python does not let us configure:
an expression is at most 100,000 code points and 32 levels of nesting (compile
errors), the only loops are comprehension macros (all, exists, map, filter), which
share a budget of 10,000 iterations per evaluation, and `matches` uses RE2 (linear
time). Evaluation errors come back as values and an exhausted budget as a
RuntimeError; `evaluate` turns both into a RuleEvaluationError located at the rule.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from google.protobuf import any_pb2

from ..errors import RuleEvaluationError
from ..internal import cel_checked_pb2

_T = cel.Type
CEL_TYPES = {
    "string": _T.STRING,
    "double": _T.DOUBLE,
    "bool": _T.BOOL,
    "int": _T.INT,
    "list": _T.List(_T.STRING),
}
_TYPE_NAMES = {"STRING": "string", "DOUBLE": "double", "BOOL": "bool", "INT": "int"}


def _add_years(date: str, years: int) -> str:
    """ISO date plus whole calendar years; 29 February falls back to the 28th."""
    day = dt.date.fromisoformat(date)
    try:
        return day.replace(year=day.year + years).isoformat()
    except ValueError:
        return day.replace(year=day.year + years, day=28).isoformat()


def _is_date(text: str) -> bool:
    """True for an ISO date string."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _round_cents(amount: float) -> float:
    """Round half up to whole cents, as payment amounts are quoted."""
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(repr(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


_FUNCTIONS = [
    cel.FunctionDecl("round_cents", [cel.Overload(
        "round_cents_double", return_type=_T.DOUBLE, parameters=[_T.DOUBLE], impl=_round_cents)]),
    cel.FunctionDecl("add_years", [cel.Overload(
        "add_years_string_int", return_type=_T.STRING, parameters=[_T.STRING, _T.INT],
        impl=_add_years)]),
    cel.FunctionDecl("is_date", [cel.Overload(
        "is_date_string", return_type=_T.BOOL, parameters=[_T.STRING], impl=_is_date)]),
]

_LOCATION = re.compile(r"<input>:(\d+):(\d+): (.*)")
_STATUS = re.compile(r"^[A-Z_]+: |\s*\[[A-Z_]+\]$")


class ConditionError(Exception):
    """A CEL text that does not compile or does not have the required type."""


@dataclass(frozen=True, slots=True)
class Where:
    """Where an expression is written: file, line, and the rule or entry it belongs to."""

    path: str = ""
    line: int = 0
    owner: str = ""


@dataclass(frozen=True)
class Condition:
    """A compiled CEL expression and the facts it reads."""

    text: str
    program: Any
    reads: tuple[str, ...]
    where: Where = Where()

    def evaluate(self, facts: dict[str, Any]) -> Any:
        """Evaluate on a full fact record; a CEL error value or an exhausted iteration
        budget raises RuleEvaluationError with the expression's file and line."""
        try:
            value = self.program.eval(data={name: facts[name] for name in self.reads})
        except RuntimeError as exc:  # the runtime's own limits, e.g. "Iteration budget exceeded"
            detail = _clean_message(str(exc))
            if "budget" in detail.lower():
                detail = ("the expression exceeds CEL's budget of 10,000 comprehension iterations "
                          f"per evaluation ({detail})")
            raise self._failed(facts, detail) from None
        if value.type() == _T.ERROR:
            raise self._failed(facts, _clean_message(str(value.value())))
        return value.value()

    def _failed(self, facts: dict[str, Any], detail: str) -> RuleEvaluationError:
        return RuleEvaluationError(self.where.owner, self.where.path, self.where.line, detail,
                                   str(facts.get("code", "")))


class Environment:
    """The facts a table's rules may read, with their types."""

    def __init__(self, fact_types: dict[str, str]) -> None:
        self.fact_types = dict(fact_types)
        self._env = cel.NewEnv(
            variables={name: CEL_TYPES[kind] for name, kind in fact_types.items()},
            functions=_FUNCTIONS,
        )

    def compile(self, text: str, want: str, where: Where = Where()) -> Condition:
        """Compile and type-check; `want` is the fact type the result must have."""
        try:
            program = self._env.compile(text)
        except RuntimeError as exc:
            raise ConditionError(_clean_message(str(exc))) from None
        got = _type_name(program.return_type())
        if want == "double" and got == "int":
            raise ConditionError("gives an int where a double is needed (write 1.0, not 1)")
        if got != want and got != "dyn":
            raise ConditionError(f"gives a {got} where a {want} is needed")
        return Condition(text, program, _reads(program, text, self.fact_types), where)


def _type_name(cel_type: Any) -> str:
    name = str(cel_type).rsplit(".", 1)[-1].upper()
    if name.startswith("LIST"):
        return "list"
    return _TYPE_NAMES.get(name, "dyn" if name == "DYN" else name.lower())


def _reads(program: Any, text: str, names: dict[str, str]) -> tuple[str, ...]:
    """The facts an expression reads, from the type checker's reference map (not the text)."""
    checked = any_pb2.Any.FromString(program.serialize())
    refs = cel_checked_pb2.CheckedReferences.FromString(checked.value)
    found = {r.name for r in refs.reference_map.values() if r.name and not r.overload_id}
    return tuple(sorted((n for n in found if n in names), key=lambda n: (text.find(n), n)))


def _clean_message(raw: str) -> str:
    """CEL's message without the status prefix or the trailing status code; column kept."""
    for line in raw.splitlines():
        found = _LOCATION.search(line)
        if found:
            return f"column {found.group(2)}: {found.group(3)}"
    first = raw.splitlines()[0] if raw else "invalid expression"
    return _STATUS.sub("", first).strip() or first
