"""A question that asks which code to use ("what's the CPT code for a knee replacement?",
"cpap machine code"): recognised by search.yaml's cues, reduced to the words that name the
service, and checked for the distinctions it leaves open."""

from __future__ import annotations

from dataclasses import dataclass

from .rules import Distinction, Located, SearchRules, words


@dataclass(frozen=True)
class FindCodeQuestion:
    """What a find-code question asks for, and the cue that showed it."""

    cue: Located
    subject: tuple[str, ...]
    prefer: tuple[str, ...]     # categories the question's own words point to (CPT or HCPCS)
    said: tuple[str, ...]       # every word of the question


def _holds(found: tuple[str, ...], phrase: tuple[str, ...]) -> int:
    """Index where `phrase` starts in `found`, or -1."""
    size = len(phrase)
    return next((i for i in range(len(found) - size + 1) if found[i:i + size] == phrase), -1)


def read_find_code(text: str, rules: SearchRules) -> FindCodeQuestion | None:
    """The find-code reading of a question that names no code, or None when it asks something else."""
    found = words(text)
    if not found or not rules.finds_codes:
        return None
    cue = next((c for c in rules.cues if _holds(found, c.words) >= 0), None)
    if cue is None:  # "cpap machine code", or a code word after the thing: "awv code medicare"
        cue = next((e for e in sorted(rules.endings, key=lambda e: -len(e.words))
                    if len(found) > len(e.words) and found[-len(e.words):] == e.words), None)
    if cue is None:
        cue = next((e for e in sorted(rules.endings, key=lambda e: -len(e.words))
                    if _holds(found[1:], e.words) >= 0), None)
    if cue is None or any(_holds(found, w.words) >= 0 for w in rules.not_when):
        return None
    start = _holds(found, cue.words)
    rest = found[:start] + found[start + len(cue.words):]
    subject = tuple(w for w in rest if w not in rules.filler)
    if not subject:
        return None
    prefer: tuple[str, ...] = ()
    if "cpt" in found and "hcpcs" not in found:
        prefer = rules.prefer.get("cpt", ())
    elif "hcpcs" in found and "cpt" not in found:
        prefer = rules.prefer.get("hcpcs", ())
    return FindCodeQuestion(cue, subject, prefer, found)


def open_distinctions(rules: SearchRules, said: tuple[str, ...], codes: list[str]) -> list[Distinction]:
    """The distinctions among the candidates that the question does not settle."""
    return [d for d in rules.distinctions
            if set(codes) & set(d.codes) and not any(_holds(said, w) >= 0 for w in d.said_by)]
