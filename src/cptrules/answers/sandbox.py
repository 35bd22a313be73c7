"""A Jinja sandbox whose every render has a bounded cost.

Answer templates are code the service runs for each request. Jinja's own sandbox
keeps them away from Python internals but not from unbounded work: nested loops,
`'x' * 10**9`, `9 ** N`, `lipsum(n=200000)`, a macro that calls itself twice per
level. Here every render gets a `Budget` (limits.TEMPLATE_*) and each way a
template can spend time or memory charges it:

- loop iterations and every call or filter use count as steps; `range` charges its
  length up front, so nested loops exhaust the budget instead of running for ever;
- no single operation may produce a value over TEMPLATE_MAX_VALUE_CHARS; `*`, `**`,
  `+`, `%`, `~`, `replace` and `join` are checked before they build anything;
- text written to the answer or to a macro's or block's buffer is counted;
- macros may nest only TEMPLATE_MAX_CALL_DEPTH deep;
- only a listed set of methods (`upper`, `split`, `get`, ...) and filters can be
  called; `format`, `center`, `indent`, `random` and the like, `lipsum`,
  `include`/`import`/`extends` and recursive loops are not available.

An overrun raises `TemplateOverrun`; `templates.AnswerTemplate.render` turns it into
a TemplateBudgetError naming the template's file and line.
"""

from __future__ import annotations

import contextvars
import functools
import operator
import re
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, _PassArg

from .. import limits


class TemplateOverrun(SecurityError):
    """A render went past one of its limits."""


class Budget:
    """What one render has spent so far."""

    __slots__ = ("steps", "produced", "depth")

    def __init__(self) -> None:
        self.steps = 0
        self.produced = 0
        self.depth = 0

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > limits.TEMPLATE_MAX_STEPS:
            raise TemplateOverrun(f"the template takes more than {limits.TEMPLATE_MAX_STEPS:,} steps "
                                  "(loop iterations, range items, calls and filters) in one render")

    def produce(self, size: int) -> None:
        self.produced += size
        if self.produced > limits.TEMPLATE_MAX_PRODUCED_CHARS:
            raise TemplateOverrun(f"the template produces more than {limits.TEMPLATE_MAX_PRODUCED_CHARS:,} "
                                  "characters of text in one render")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("template_budget", default=None)


def current_budget() -> Budget:
    """The budget of the render under way (a fresh one outside a render, so limits still hold)."""
    return _BUDGET.get() or Budget()


def start_render() -> contextvars.Token[Budget | None]:
    """Give the render that starts now a budget of its own; pass the token to end_render."""
    return _BUDGET.set(Budget())


def end_render(token: contextvars.Token[Budget | None]) -> None:
    _BUDGET.reset(token)


def _too_big(what: str, size: int) -> TemplateOverrun:
    return TemplateOverrun(f"{what} would be {size:,} long; a template value may be at most "
                           f"{limits.TEMPLATE_MAX_VALUE_CHARS:,} characters or items")


def weight(value: Any, limit: int = limits.TEMPLATE_MAX_VALUE_CHARS) -> int:
    """How long a value would be as text or items, counting a shared part each time it
    appears (a list of one long string repeated is as long as its text); stops past limit."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, range):
            total += len(item)
        else:
            total += 1
    return total


def _light(value: Any, what: str) -> Any:
    """A value about to be used (turned into text, passed on): refuse it when too heavy."""
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        size = weight(value)
        if size > limits.TEMPLATE_MAX_VALUE_CHARS:
            raise _too_big(what, size)
    return value


def _sized(value: Any, what: str = "a value") -> Any:
    """A value produced by an operation: refuse it when too large, count it when text."""
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        size = weight(value)
        if size > limits.TEMPLATE_MAX_VALUE_CHARS:
            raise _too_big(what, size)
        current_budget().produce(size)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > limits.TEMPLATE_MAX_INT_BITS:
            raise TemplateOverrun(f"{what} would be a number of {value.bit_length():,} bits; "
                                  f"the limit is {limits.TEMPLATE_MAX_INT_BITS}")
    elif isinstance(value, types.GeneratorType):
        return budgeted(value)
    return value


def _check_count(value: Any, what: str) -> None:
    """An int argument that sets a size (a width, a repeat count, a range end) must be small."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limits.TEMPLATE_MAX_VALUE_CHARS:
        raise TemplateOverrun(f"{what} {value:,} is over the limit of {limits.TEMPLATE_MAX_VALUE_CHARS:,}")


def budgeted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate, charging one step per item (every `for` loop goes through this)."""
    budget = current_budget()
    for item in iterable:
        budget.step()
        yield item


def budget_range(*args: int) -> range:
    """`range`, charged its whole length up front."""
    for arg in args:
        _check_count(arg, "range bound")
    rng = range(*args)
    current_budget().step(len(rng))
    return rng


def _output(value: Any) -> Any:
    return _light(value, "an output value")


class OutputBuffer(list):  # type: ignore[type-arg]
    """The buffer of a macro, call or set block: every piece written to it is counted."""

    def append(self, item: Any) -> None:
        current_budget().produce(len(item) if isinstance(item, str) else 1)
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        for item in items:
            self.append(item)


# -- operators ---------------------------------------------------------------------

_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d{6,})|%[-#0 +]*\d*\.(\*|\d{6,})")


def _multiply(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            if weight(seq) * max(count, 0) > limits.TEMPLATE_MAX_VALUE_CHARS:
                raise _too_big("a repeated value", weight(seq) * count)
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > limits.TEMPLATE_MAX_INT_BITS + 1:
            raise TemplateOverrun(f"a product of {left.bit_length() + right.bit_length():,} bits is "
                                  f"over the limit of {limits.TEMPLATE_MAX_INT_BITS}")
    return _sized(operator.mul(left, right))


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        bits = right * (abs(left).bit_length() - 1)
        if bits > limits.TEMPLATE_MAX_INT_BITS:
            raise TemplateOverrun(f"a power of about {bits:,} bits is over the limit of "
                                  f"{limits.TEMPLATE_MAX_INT_BITS}")
    return _sized(operator.pow(left, right))


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        if weight(left) + weight(right) > limits.TEMPLATE_MAX_VALUE_CHARS:
            raise _too_big("a joined value", weight(left) + weight(right))
    return _sized(operator.add(left, right))


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str) and _FORMAT_WIDTH.search(left):
        raise TemplateOverrun("a %-format with a '*' or a six-digit width or precision is not allowed")
    _light(right, "a %-format's arguments")
    return _sized(operator.mod(left, right))


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {"*": _multiply, "**": _power, "+": _add, "%": _modulo}


# -- filters -----------------------------------------------------------------------

# Jinja filters that fit plain-text answers and cannot build more than their input
# (with the size checks below); the rest (center, indent, wordwrap, random, pprint,
# tojson, urlize, xmlattr, ...) are not available to answer templates.
ALLOWED_BUILTIN_FILTERS = frozenset({
    "abs", "attr", "batch", "capitalize", "count", "d", "default", "dictsort", "first", "float",
    "format", "groupby", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "replace", "reverse", "round", "select", "selectattr", "slice",
    "sort", "string", "sum", "title", "trim", "truncate", "unique", "upper", "wordcount",
})


def _replace_size(value: Any, old: Any, new: Any, count: Any = None) -> int:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _join_size(value: Any, sep: Any = "", attribute: Any = None) -> int:
    if not isinstance(value, (list, tuple, str, dict, set, frozenset)):
        return 0  # an iterator: guard_filter and call turn it into a list (and weigh it) first
    items = list(value)
    return weight(items) + max(len(items) - 1, 0) * len(str(sep))


def _format_size(value: Any, *args: Any, **kwargs: Any) -> int:
    """A %-format's result is about its text plus its arguments, unless a width says otherwise."""
    if isinstance(value, str) and _FORMAT_WIDTH.search(value):
        raise TemplateOverrun("a %-format with a '*' or a six-digit width or precision is not allowed")
    return 0


_PRECHECKS: dict[str, Callable[..., int]] = {"replace": _replace_size, "join": _join_size,
                                             "format": _format_size}


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that charges a step, refuses oversized counts and checks what it returns."""
    skip = 1 if _PassArg.from_obj(func) is not None else 0
    precheck = _PRECHECKS.get(name)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        current_budget().step()
        if name == "join" and len(args) > skip and not hasattr(args[skip], "__len__"):
            args = (*args[:skip], list(args[skip]), *args[skip + 1:])
        for arg in [*args[skip + 1:], *kwargs.values()]:
            _check_count(arg, f"the {name} filter's argument")
        for arg in [*args[skip:], *kwargs.values()]:
            _light(arg, f"the {name} filter's input")
        if precheck is not None:
            size = precheck(*args[skip:], **kwargs)
            if size > limits.TEMPLATE_MAX_VALUE_CHARS:
                raise _too_big(f"the {name} filter's result", size)
        return _sized(func(*args, **kwargs), f"the {name} filter's result")

    return guarded


# -- calls -------------------------------------------------------------------------

SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip",
        "join", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper"}),
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    LoopContext: frozenset({"cycle", "changed"}),
    Cycler: frozenset({"next", "reset"}),
}


def _method_allowed(obj: Any) -> bool:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if owner is None or isinstance(owner, types.ModuleType):
        return False
    return any(isinstance(owner, kind) and name in names for kind, names in SAFE_METHODS.items())


class _BudgetedCodeGenerator(CodeGenerator):
    """Compiles templates so loops, buffers and `~` go through the budget."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            if loop.recursive:
                self.fail("recursive loops are not available in answer templates", loop.lineno)
            if not (isinstance(loop.iter, nodes.Filter) and loop.iter.name == "_budgeted"):
                loop.iter = nodes.Filter(loop.iter, "_budgeted", [], [], None, None, lineno=loop.iter.lineno)
        for kind in (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends):
            for found in node.find_all(kind):
                self.fail(f"{kind.__name__.lower()} is not available in answer templates: each "
                          "template stands alone", found.lineno)
        super().visit_Template(node, frame)

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with a cost budget per render (see the module doc)."""

    code_generator_class = _BudgetedCodeGenerator
    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["finalize"] = _output  # every {{ value }} is weighed before it becomes text
        super().__init__(*args, **kwargs)
        self.binop_table.update(_BINOPS)
        self.globals = {"range": budget_range, "dict": dict, "cycler": Cycler, "joiner": Joiner,
                        "namespace": Namespace}
        self.filters = {name: guard_filter(name, f) for name, f in self.filters.items()
                        if name in ALLOWED_BUILTIN_FILTERS}
        self.filters["_budgeted"] = budgeted
        self._callables = {id(f) for f in self.globals.values()}

    def add_filters(self, **filters: Callable[..., Any]) -> None:
        """Register filters of our own, each guarded like the built-in ones."""
        self.filters.update({name: guard_filter(name, f) for name, f in filters.items()})

    def output_buffer(self) -> OutputBuffer:
        return OutputBuffer()

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        """`a ~ b`: each part weighed before it becomes text, the result checked after."""
        size = sum(weight(part) for part in parts)
        if size > limits.TEMPLATE_MAX_VALUE_CHARS:
            raise _too_big("a ~ concatenation", size)
        return _sized("".join(str(part) for part in parts), "a ~ concatenation")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = current_budget()
        budget.step()
        if not (isinstance(__obj, (Macro, Joiner)) or id(__obj) in __self._callables
                or _method_allowed(__obj)):
            name = getattr(__obj, "__name__", type(__obj).__name__)
            raise SecurityError(f"{name!r} cannot be called in an answer template")
        if not isinstance(__obj, Macro):  # a macro's arguments are values, not sizes
            for key, arg in [*enumerate(args), *kwargs.items()]:
                if key not in ("_loop_vars", "_block_vars"):
                    _check_count(arg, "an argument")
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name == "join" and args and not hasattr(args[0], "__len__"):
            args = (list(args[0]), *args[1:])
        for key, arg in [*enumerate(args), *kwargs.items()]:
            if key not in ("_loop_vars", "_block_vars"):
                _light(arg, "an argument")
        if isinstance(owner, str) and name in ("replace", "join"):
            plain = [a for k, a in kwargs.items() if k not in ("_loop_vars", "_block_vars")]
            size = (_replace_size(owner, *args, *plain) if name == "replace"
                    else _join_size(args[0] if args else "", owner))
            if size > limits.TEMPLATE_MAX_VALUE_CHARS:
                raise _too_big(f"the {name} method's result", size)
        budget.depth += 1
        try:
            if budget.depth > limits.TEMPLATE_MAX_CALL_DEPTH:
                raise TemplateOverrun(f"macros nest more than {limits.TEMPLATE_MAX_CALL_DEPTH} deep "
                                      "(a macro that calls itself?)")
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return _sized(result, "a call's result")
