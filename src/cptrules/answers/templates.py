"""Answer templates: sandboxed Jinja with StrictUndefined, checked against the fact schema.

A template that names a fact the rules do not provide is refused when the
ruleset loads (with its file and line), so an answer never renders a blank.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import RuleProblem


def _rvu(value: float) -> str:
    return f"{value:.2f}"


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _factor(value: float) -> str:
    """A conversion factor as CMS prints it: $32.3465."""
    return f"${value:,.4f}"


def _longdate(iso: str) -> str:
    """ISO date as "July 1, 2019"."""
    day = dt.date.fromisoformat(iso)
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def _years_before(earlier: str, later: str) -> int:
    """Whole years from one ISO date to a later one (negative when it is not later)."""
    a, b = dt.date.fromisoformat(earlier), dt.date.fromisoformat(later)
    return b.year - a.year - ((b.month, b.day) < (a.month, a.day))


def _join_and(items: list[str], word: str = "and") -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _sentence(text: str) -> str:
    """Text ending in a full stop, for catalogue fields written with or without one."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def make_environment() -> ImmutableSandboxedEnvironment:
    """The one Jinja environment answers use: sandboxed, strict, no autoescape (plain text)."""
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=False)
    env.filters.update(rvu=_rvu, money=_money, factor=_factor, longdate=_longdate, join_and=_join_and, years_before=_years_before,
                       sentence=_sentence)
    return env


ENVIRONMENT = make_environment()


def _check(source: str, path: str, base_line: int, known: set[str]) -> tuple[Any, RuleProblem | None]:
    """Compile a template; a syntax error, unknown filter or unknown fact is a located problem."""
    try:
        tree = ENVIRONMENT.parse(source)
        unknown = meta.find_undeclared_variables(tree) - known - set(ENVIRONMENT.globals)
        if unknown:
            name = sorted(unknown)[0]
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), 1)
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            return None, RuleProblem(path, base_line + line - 1, "TEMPLATE", f"unknown fact {name!r}{more}")
        return ENVIRONMENT.from_string(source), None
    except TemplateError as exc:  # syntax errors, unknown filters and tests
        line = getattr(exc, "lineno", None) or 1
        return None, RuleProblem(path, base_line + line - 1, "TEMPLATE", getattr(exc, "message", None) or str(exc))


def compile_templates(sources: Any, folder: str, known: set[str]) -> tuple[dict[str, Any], list[RuleProblem]]:
    """Compile answers/<intent>.j2 files; the intent is the file's stem."""
    prefix = folder.rstrip("/") + "/"
    templates: dict[str, Any] = {}
    problems: list[RuleProblem] = []
    for name, source in sources.files.items():
        if not (name.startswith(prefix) and name.endswith(".j2")):
            continue
        intent = name[len(prefix):-3]
        template, problem = _check(source.text, name, 1, known)
        if problem:
            problems.append(problem)
        else:
            templates[intent] = template
    if not templates:
        problems.append(RuleProblem(folder, 0, "NO_TEMPLATES", f"no *.j2 templates in {folder}"))
    return templates, problems


def compile_question(source: str, path: str, line: int, known: set[str]) -> tuple[Any, RuleProblem | None]:
    """Compile an FAQ question form written inline in a YAML file."""
    return _check(source, path, line, known)


def render(template: Any, facts: dict[str, Any]) -> str:
    """Render with facts; whitespace runs collapse so templates can be laid out freely."""
    text = template.render(facts)
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)
