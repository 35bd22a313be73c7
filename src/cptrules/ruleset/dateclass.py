"""Date classes: dates of service that a table's rules all compare alike share one result.

A table's result depends only on the facts it reads. When its rules only ever compare the
date of service (<, <=, >, >=, ==, !=) with other facts or with string literals, the result
depends on the date only through how it orders against those values. The memo key then
holds those comparisons instead of the date, so every date between two boundaries (release
dates, the code's own effective, replacement and termination dates) shares one entry, and a
fact that is only ever compared with the date (or tested for emptiness) is keyed by that
comparison, not by its value. The plan comes from CEL's checked expression trees, so a new
rule that reads the date in any other way simply turns the plan off for its table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import any_pb2

from ..internal import cel_checked_pb2

DATE = "date_of_service"
_ORDER = {"_<_", "_<=_", "_>_", "_>=_", "_==_", "_!=_"}
_EQUALITY = {"_==_", "_!=_"}


@dataclass(frozen=True, slots=True)
class DatePlan:
    """How a table's memo key stands in for the date of service."""

    plain: tuple[str, ...]      # facts keyed by value
    compared: tuple[str, ...]   # facts the date is compared with: keyed by (empty, order)
    literals: tuple[str, ...]   # string literals the date is compared with: keyed by order


class _Uses:
    """What each name is used for across a table's expressions."""

    def __init__(self) -> None:
        self.with_date: set[str] = set()
        self.emptiness: set[str] = set()
        self.other: set[str] = set()
        self.literals: set[str] = set()

    def walk(self, node: Any) -> None:
        kind = node.WhichOneof("kind")
        if kind == "ident_expr":
            self.other.add(node.ident_expr.name)
        elif kind == "select_expr":
            self.walk(node.select_expr.operand)
        elif kind == "list_expr":
            for element in node.list_expr.elements:
                self.walk(element)
        elif kind == "comprehension_expr":
            c = node.comprehension_expr
            for part in (c.iter_range, c.accu_init, c.loop_condition, c.loop_step, c.result):
                self.walk(part)
        elif kind == "call_expr":
            call = node.call_expr
            if call.function in _ORDER and len(call.args) == 2 and self._comparison(call):
                return
            if call.HasField("target"):
                self.walk(call.target)
            for arg in call.args:
                self.walk(arg)

    def _comparison(self, call: Any) -> bool:
        """Record a comparison of two names, or of a name with a string; False to walk it."""
        sides = [_side(arg) for arg in call.args]
        names = [value for kind, value in sides if kind == "name"]
        strings = [value for kind, value in sides if kind == "string"]
        if DATE in names:
            other_kind, other = sides[1] if sides[0] == ("name", DATE) else sides[0]
            if other_kind == "name" and other != DATE:
                self.with_date.add(other)
                return True
            if other_kind == "string":
                self.literals.add(other)
                return True
            return False
        if len(names) == 1 and strings == [""] and call.function in _EQUALITY:
            self.emptiness.add(names[0])
            return True
        return False


def _side(node: Any) -> tuple[str, str]:
    kind = node.WhichOneof("kind")
    if kind == "ident_expr":
        return "name", node.ident_expr.name
    if kind == "const_expr" and node.const_expr.WhichOneof("kind") == "string_value":
        return "string", node.const_expr.string_value
    return "other", ""


def _tree(program: Any) -> Any:
    checked = any_pb2.Any.FromString(program.serialize())
    return cel_checked_pb2.CheckedTree.FromString(checked.value).expr


def plan_for(reads: tuple[str, ...], programs: Iterable[Any]) -> DatePlan | None:
    """The date plan of a table from its rules' compiled programs; None when the date is
    read in any way other than a comparison with a fact or a string (or not read at all)."""
    if DATE not in reads:
        return None
    uses = _Uses()
    for program in programs:
        uses.walk(_tree(program))
    if DATE in uses.other:
        return None
    compared = tuple(sorted(uses.with_date))
    relative = {name for name in compared if name not in uses.other}
    plain = tuple(name for name in reads if name != DATE and name not in relative)
    return DatePlan(plain, compared, tuple(sorted(uses.literals)))


def _order(a: str, b: str) -> int:
    return (a > b) - (a < b)


def date_key(facts: dict[str, Any], plan: DatePlan) -> tuple[Any, ...]:
    """The memo key of a record under a plan: plain values, then the date's order classes."""
    day = facts[DATE]
    key: list[Any] = [tuple(v) if isinstance(v, list) else v for v in (facts[n] for n in plan.plain)]
    key += [(facts[n] == "", _order(facts[n], day)) for n in plan.compared]
    key += [_order(literal, day) for literal in plan.literals]
    return tuple(key)
