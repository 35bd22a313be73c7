"""Read rule files from a directory: the only I/O of the ruleset package.

YAML is parsed with ruamel's round-trip loader so that every mapping and list
item keeps its line; `line_of` turns a path inside a document into a line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.composer import Composer
from ruamel.yaml.events import AliasEvent

from ..errors import RuleFileErrors, RuleProblem


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file's text, with its path relative to the rules directory."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class RuleSources:
    """Every file of a rules directory, plus where it came from."""

    root: str
    files: dict[str, SourceFile]
    problems: tuple[RuleProblem, ...] = ()

    def revision(self) -> str:
        """Content hash over every file name and text: the ruleset version."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + self.files[name].text.encode() + b"\0")
        return "sha256:" + digest.hexdigest()[:16]


def read_sources(root: Path) -> RuleSources:
    """Read every .yaml and .j2 file under root."""
    files: dict[str, SourceFile] = {}
    problems: list[RuleProblem] = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".yaml", ".yml", ".j2"}:
            rel = path.relative_to(root).as_posix()
            raw = path.read_bytes()
            try:
                files[rel] = SourceFile(rel, raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                line = raw[: exc.start].count(b"\n") + 1
                problems.append(RuleProblem(rel, line, "ENCODING", "the file is not UTF-8 text"))
    return RuleSources(str(root), files, tuple(problems))


class _AliasFound(Exception):
    """Raised by the composer at the first alias, before it is expanded."""

    def __init__(self, event: Any) -> None:
        super().__init__(event.anchor)
        self.event = event


class _NoAliasComposer(Composer):  # type: ignore[misc]
    """Builds documents as usual but stops at the first alias and notes the first anchor."""

    first_anchor: Any = None

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            raise _AliasFound(event)
        if getattr(event, "anchor", None) and self.first_anchor is None:
            self.first_anchor = event
        return super().compose_node(parent, index)


def load_yaml(text: str, path: str) -> Any:
    """A round-trip YAML document with line positions, refusing anchors and aliases.

    Aliases let a few kilobytes expand into gigabytes once the document is built (each
    level repeating the one before), so the composer stops at the first one, before it
    is expanded; a file with only anchors is refused too, as rule files never need them.
    Raises RuleFileErrors for an alias or anchor, ruamel's errors for bad YAML.
    """
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Composer = _NoAliasComposer
    try:
        doc = yaml.load(text)
    except _AliasFound as found:
        raise RuleFileErrors([_alias_problem(path, found.event, "alias *")]) from None
    anchor = yaml.composer.first_anchor
    if anchor is not None:
        raise RuleFileErrors([_alias_problem(path, anchor, "anchor &")])
    return doc


def _alias_problem(path: str, event: Any, what: str) -> RuleProblem:
    return RuleProblem(path, event.start_mark.line + 1, "YAML_ALIAS",
                       f"YAML {what}{event.anchor} is refused (aliases can expand a small file "
                       "into gigabytes): write the value out where it is used")


def parse_yaml(source: SourceFile) -> tuple[Any, list[RuleProblem]]:
    """Parse a YAML file keeping positions; a syntax error or an alias becomes a located problem."""
    try:
        return load_yaml(source.text, source.path), []
    except RuleFileErrors as refused:
        return None, list(refused.problems)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [RuleProblem(source.path, line, "YAML_SYNTAX", str(exc.problem or exc))]
    except Exception as exc:  # ruamel raises plain errors for e.g. duplicate keys
        return None, [RuleProblem(source.path, 1, "YAML_SYNTAX", str(exc).splitlines()[0])]


def line_of(document: Any, path: list[Any] | tuple[Any, ...]) -> int:
    """1-based line of the node at `path`, falling back to its nearest located parent."""
    line = 1
    node = document
    for key in path:
        lc = getattr(node, "lc", None)
        if lc is not None:
            try:
                if isinstance(key, int):
                    line = lc.item(key)[0] + 1
                else:
                    line = lc.key(key)[0] + 1
            except (KeyError, IndexError, TypeError, AttributeError):
                line = (lc.line or 0) + 1
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    return line
