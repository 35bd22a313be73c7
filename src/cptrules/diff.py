"""What changes between two fee-schedule releases, or two ruleset revisions: the report a
billing team reads before a quarterly update."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .data.pfs import PfsRelease
from .engine import Engine, Snapshot

_RVU_FIELDS = (("work", "work RVU"), ("nf_total", "non-facility total"), ("f_total", "facility total"))


@dataclass
class CodeChange:
    """One code's differences: status, RVUs and the answers whose text changed."""

    code: str
    status: tuple[str, str] | None = None
    rvus: dict[str, tuple[float, float]] = field(default_factory=dict)
    answers: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class DiffReport:
    """Added and removed codes and every change above the threshold."""

    old: str
    new: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[CodeChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old, "new": self.new, "added": self.added, "removed": self.removed,
            "changed": [{"code": c.code,
                         "status": list(c.status) if c.status else None,
                         "rvus": {k: {"old": a, "new": b} for k, (a, b) in c.rvus.items()},
                         "answers": {k: {"old": a, "new": b} for k, (a, b) in c.answers.items()}}
                        for c in self.changed],
        }

    def as_text(self, limit: int = 40) -> str:
        def listing(codes: list[str]) -> str:
            shown = ", ".join(codes[:limit]) or "-"
            return shown + (f" … and {len(codes) - limit} more (see --json)" if len(codes) > limit else "")

        lines = [f"{self.old} → {self.new}",
                 f"added ({len(self.added)}): {listing(self.added)}",
                 f"removed ({len(self.removed)}): {listing(self.removed)}",
                 f"changed: {len(self.changed)}"]
        for change in self.changed:
            lines.append(f"{change.code}:")
            if change.status:
                lines.append(f"  status {change.status[0]} → {change.status[1]}")
            for name, (a, b) in change.rvus.items():
                lines.append(f"  {name} {a:.2f} → {b:.2f} ({b - a:+.2f})")
            for intent, (a, b) in change.answers.items():
                lines.append(f"  answer '{intent}' changes:\n    - {a}\n    + {b}")
        return "\n".join(lines)


def _answers(engine: Engine, snapshot: Snapshot, code: str, day: dt.date) -> dict[str, str]:
    """Every FAQ answer for a code on a date, from a given snapshot."""
    from .answers.templates import render
    from .evaluate import evaluate

    base, _ = snapshot.data.base_facts(code, day)
    facts = evaluate(snapshot.ruleset, base).facts
    return {e.intent: render(snapshot.ruleset.templates[e.intent], facts)
            for e in snapshot.ruleset.faq if e.applies_when.evaluate(facts)}


def _neutral(text: str, release: PfsRelease) -> str:
    """An answer with its release's name and dates masked, so only substantive changes count."""
    day = release.effective
    for token in (release.key, f"{day:%B} {day.day}, {day.year}", day.isoformat()):
        text = text.replace(token, "<release>")
    return text


def diff_releases(engine: Engine, old: PfsRelease, new: PfsRelease, threshold: float = 0.0) -> DiffReport:
    """Codes added, removed, with a new status or RVUs moved by more than `threshold`."""
    report = DiffReport(old.key, new.key)
    report.added = sorted(set(new.rows) - set(old.rows))
    report.removed = sorted(set(old.rows) - set(new.rows))
    snap = engine.snapshot
    for code in sorted(set(old.rows) & set(new.rows)):
        a, b = old.rows[code], new.rows[code]
        change = CodeChange(code)
        if a["status"] != b["status"]:
            change.status = (a["status"], b["status"])
        for key, name in _RVU_FIELDS:
            if abs(float(a[key]) - float(b[key])) > threshold:
                change.rvus[name] = (float(a[key]), float(b[key]))
        if change.status or change.rvus:
            before = _answers(engine, snap, code, old.effective)
            after = _answers(engine, snap, code, new.effective)
            change.answers = {k: (before[k], after.get(k, "")) for k in before
                              if _neutral(before[k], old) != _neutral(after.get(k, ""), new)}
            report.changed.append(change)
    return report


def diff_rulesets(engine: Engine, old: Snapshot, new: Snapshot, codes: list[str], day: dt.date) -> DiffReport:
    """Answers whose text differs between two ruleset revisions, for the given codes."""
    report = DiffReport(old.ruleset.revision, new.ruleset.revision)
    for code in codes:
        before = _answers(engine, old, code, day)
        after = _answers(engine, new, code, day)
        report.added += [f"{code}:{k}" for k in after if k not in before]
        report.removed += [f"{code}:{k}" for k in before if k not in after]
        changed = {k: (before[k], after[k]) for k in before if k in after and before[k] != after[k]}
        if changed:
            report.changed.append(CodeChange(code, answers=changed))
    return report
