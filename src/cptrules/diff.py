"""What changes between two fee-schedule releases, or two ruleset revisions: the report a
billing team reads before a quarterly update."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .data.pfs import PfsRelease, PfsRow
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
class ModifierRowChange:
    """One (code, modifier) row of the fee schedule (26, TC, 53) that changed between releases."""

    code: str
    modifier: str
    status: tuple[str, str] | None = None
    rvus: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.code}-{self.modifier}"


@dataclass
class DiffReport:
    """Added and removed codes and every change above the threshold; for two releases also
    the conversion factors and the modifier rows, each an item of its own."""

    old: str
    new: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[CodeChange] = field(default_factory=list)
    releases: bool = False
    conversion_factor: tuple[float, float] | None = None
    qp_conversion_factor: tuple[float, float] | None = None
    partial: tuple[bool, bool] = (False, False)
    modifier_rows_added: list[str] = field(default_factory=list)
    modifier_rows_removed: list[str] = field(default_factory=list)
    modifier_rows_changed: list[ModifierRowChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "old": self.old, "new": self.new, "added": self.added, "removed": self.removed,
            "changed": [{"code": c.code,
                         "status": list(c.status) if c.status else None,
                         "rvus": {k: {"old": a, "new": b} for k, (a, b) in c.rvus.items()},
                         "answers": {k: {"old": a, "new": b} for k, (a, b) in c.answers.items()}}
                        for c in self.changed],
        }
        if self.releases:
            def pair(values: tuple[float, float] | None) -> dict[str, float] | None:
                return {"old": values[0], "new": values[1]} if values else None

            report.update({
                "partial": {"old": self.partial[0], "new": self.partial[1]},
                "conversion_factor": pair(self.conversion_factor),
                "qp_conversion_factor": pair(self.qp_conversion_factor),
                "modifier_rows": {
                    "added": self.modifier_rows_added, "removed": self.modifier_rows_removed,
                    "changed": [{"code": m.code, "modifier": m.modifier,
                                 "status": list(m.status) if m.status else None,
                                 "rvus": {k: {"old": a, "new": b} for k, (a, b) in m.rvus.items()}}
                                for m in self.modifier_rows_changed]},
            })
        return report

    def as_text(self, limit: int = 40) -> str:
        def listing(codes: list[str]) -> str:
            shown = ", ".join(codes[:limit]) or "-"
            return shown + (f" … and {len(codes) - limit} more (see --json)" if len(codes) > limit else "")

        lines = [f"{self.old} → {self.new}"]
        if self.releases:
            for key, flag in zip((self.old, self.new), self.partial):
                if flag:
                    lines.append(f"{key} is a partial release: codes it does not list are unknown for it, "
                                 "so they are not counted as added or removed")
            lines.append(_factor("conversion factor", self.conversion_factor))
            lines.append(_factor("qualifying-APM conversion factor", self.qp_conversion_factor))
        lines += [f"added ({len(self.added)}): {listing(self.added)}",
                  f"removed ({len(self.removed)}): {listing(self.removed)}"]
        if self.releases:
            added, removed = self.modifier_rows_added, self.modifier_rows_removed
            lines += [f"modifier rows added ({len(added)}): {listing(added)}",
                      f"modifier rows removed ({len(removed)}): {listing(removed)}",
                      f"modifier rows changed: {len(self.modifier_rows_changed)}"]
            for row in self.modifier_rows_changed:
                lines.append(f"{row.label}:")
                if row.status:
                    lines.append(f"  status {row.status[0]} → {row.status[1]}")
                for name, (a, b) in row.rvus.items():
                    lines.append(f"  {name} {a:.2f} → {b:.2f} ({b - a:+.2f})")
        lines.append(f"changed: {len(self.changed)}")
        for change in self.changed:
            lines.append(f"{change.code}:")
            if change.status:
                lines.append(f"  status {change.status[0]} → {change.status[1]}")
            for name, (a, b) in change.rvus.items():
                lines.append(f"  {name} {a:.2f} → {b:.2f} ({b - a:+.2f})")
            for intent, (a, b) in change.answers.items():
                lines.append(f"  answer '{intent}' changes:\n    - {a}\n    + {b}")
        return "\n".join(lines)


def _factor(name: str, change: tuple[float, float] | None) -> str:
    if change is None:
        return f"{name}: unchanged"
    a, b = change
    shown = [f"{v:.4f}" if v else "none" for v in (a, b)]
    return f"{name}: {shown[0]} → {shown[1]}" + (f" ({b - a:+.4f})" if a and b else "")


def _row_changes(a: PfsRow, b: PfsRow, threshold: float) -> tuple[tuple[str, str] | None,
                                                                    dict[str, tuple[float, float]]]:
    """A row's status change and its RVU moves above the threshold."""
    status = (a["status"], b["status"]) if a["status"] != b["status"] else None
    rvus = {name: (float(a[key]), float(b[key])) for key, name in _RVU_FIELDS
            if abs(float(a[key]) - float(b[key])) > threshold}
    return status, rvus


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
    """Codes added, removed, with a new status or RVUs moved by more than `threshold`; the
    conversion factors; and modifier rows (26, TC, 53) added, removed or changed.

    A partial release does not speak for codes it does not list: they are neither added nor
    removed by it."""
    report = DiffReport(old.key, new.key, releases=True, partial=(old.partial, new.partial))
    if old.conversion_factor != new.conversion_factor:
        report.conversion_factor = (old.conversion_factor, new.conversion_factor)
    if old.qp_conversion_factor != new.qp_conversion_factor:
        report.qp_conversion_factor = (old.qp_conversion_factor, new.qp_conversion_factor)
    old_codes, new_codes = set(old.rows) | set(old.modifiers), set(new.rows) | set(new.modifiers)
    report.added = [] if old.partial else sorted(new_codes - old_codes)
    report.removed = [] if new.partial else sorted(old_codes - new_codes)
    old_mods = {(r["code"], r["mod"]): r for rows in old.modifier_rows.values() for r in rows}
    new_mods = {(r["code"], r["mod"]): r for rows in new.modifier_rows.values() for r in rows}
    both = old_codes & new_codes
    report.modifier_rows_added = [f"{c}-{m}" for c, m in sorted(set(new_mods) - set(old_mods))
                                  if c in both or not old.partial]
    report.modifier_rows_removed = [f"{c}-{m}" for c, m in sorted(set(old_mods) - set(new_mods))
                                    if c in both or not new.partial]
    for code, mod in sorted(set(old_mods) & set(new_mods)):
        status, rvus = _row_changes(old_mods[code, mod], new_mods[code, mod], threshold)
        if status or rvus:
            report.modifier_rows_changed.append(ModifierRowChange(code, mod, status, rvus))
    snap = engine.snapshot
    for code in sorted(set(old.rows) & set(new.rows)):
        change = CodeChange(code)
        change.status, change.rvus = _row_changes(old.rows[code], new.rows[code], threshold)
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
