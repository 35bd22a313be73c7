"""Glossary pages taken from the rule files themselves: each indicator value and the meaning the
rule for it sets, so an explanation is written once, in the rules, and the site quotes it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..ruleset.model import Ruleset

_EQUALS = re.compile(r"^\s*(\w+)\s*==\s*'([^']*)'\s*$")
_IN = re.compile(r"^\s*(\w+)\s+in\s+\[([^\]]*)\]\s*$")


@dataclass(frozen=True)
class GlossaryEntry:
    """One value of an indicator, what it means, and the rule line that says so."""

    values: tuple[str, ...]
    name: str
    meaning: str
    because: str
    source: str
    where: str


@dataclass(frozen=True)
class GlossaryPage:
    slug: str
    title: str
    intro: str
    entries: tuple[GlossaryEntry, ...]


def _values(condition: str, indicator: str) -> tuple[str, ...]:
    """The indicator values a rule's condition names when it tests only that indicator."""
    match = _EQUALS.match(condition)
    if match and match.group(1) == indicator:
        return (match.group(2),)
    match = _IN.match(condition)
    if match and match.group(1) == indicator:
        return tuple(v.strip().strip("'\"") for v in match.group(2).split(",") if v.strip())
    return ()


def glossary_pages(ruleset: Ruleset, config: list[dict[str, Any]]) -> list[GlossaryPage]:
    """One page per configured table whose rules test an indicator's value; a table the
    ruleset does not have (e.g. payment-policy indicators before they exist) gives no page."""
    pages = []
    for item in config:
        try:
            table = ruleset.table(item["table"])
        except KeyError:
            continue
        entries = []
        for rule in table.rules:
            values = _values(rule.when.text, item["indicator"])
            if not values:
                continue
            meaning = str(rule.sets.get(item["meaning"], "")) or rule.because
            name = str(rule.sets.get(item["name"], "")) if item.get("name") else ""
            entries.append(GlossaryEntry(values, name, meaning, rule.because, rule.source,
                                         f"{rule.path}:{rule.line} {rule.id}"))
        if entries:
            pages.append(GlossaryPage(item["slug"], item["title"], item.get("intro", ""), tuple(entries)))
    return pages
