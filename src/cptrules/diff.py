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


# -- answer-level changes with their causes (the export's changes page) ----------------------

@dataclass
class Cause:
    """Why answers changed: a data field that moved, or a rule whose result changed.
    `kind` is "data" or "rule"; `name` is the fact, or the rule as file:line id."""

    kind: str
    name: str
    old: Any
    new: Any

    @property
    def old_text(self) -> str:
        return _shown(self.old)

    @property
    def new_text(self) -> str:
        return _shown(self.new)

    def as_text(self) -> str:
        return f"{self.name}: {self.old_text} → {self.new_text}"


@dataclass
class AnswerChange:
    """One code's answers that differ between two records, old and new side by side, and why."""

    code: str
    answers: dict[str, tuple[dict[str, str] | None, dict[str, str] | None]]
    causes: list[Cause]


def _shown(value: Any) -> str:
    if value is None:
        return "(rule did not fire)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in sorted(value.items())) or "(nothing set)"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if value == "":
        return "(empty)"
    if isinstance(value, str) and value.startswith(("text sha256:", "list sha256:")):
        return "(a text)" if value.startswith("text") else "(a list)"
    return str(value)


def _plain(value: Any) -> Any:
    """A fact value as plain JSON data (tuples become lists) so records compare after a round trip."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _short(value: Any) -> Any:
    """Long texts a rule sets (meanings, notes) kept as a digest: a record only needs to tell
    that they changed, and the answers that quote them are stored whole."""
    import hashlib

    if isinstance(value, str) and len(value) > 80:
        return "text sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]
    if isinstance(value, list) and len(repr(value)) > 80:
        return "list sha256:" + hashlib.sha256(repr(value).encode()).hexdigest()[:12]
    return value


def answer_record(report: Any, entries: Any) -> dict[str, Any]:
    """What a later run needs to say what changed and why: the data fields that are set, each
    fired rule (file:line id) with what it set, and every answer, all plain JSON data."""
    from .facts import BASE_FACTS

    facts = report.facts
    data = {name: _plain(facts[name]) for name in BASE_FACTS
            if name not in ("code", "date_of_service") and facts.get(name) not in (None, "", 0.0, 0, False, [], ())}
    rules = {f"{f.rule.path}:{f.rule.line} {f.rule.id}": {k: _short(_plain(v)) for k, v in f.outputs.items()}
             for f in report.evaluation.fired}
    return {"code": report.code, "date_of_service": facts["date_of_service"], "data": data, "rules": rules,
            "answers": {e.intent: {"question": e.question, "answer": e.text} for e in entries}}


def _neutral_record_text(text: str, record: dict[str, Any]) -> str:
    """An answer with its date of service and fee-schedule release masked, so answers for two
    dates or releases compare on substance (as _neutral does for diff_releases)."""
    day = dt.date.fromisoformat(record["date_of_service"])
    tokens = [f"{day:%B} {day.day}, {day.year}", day.isoformat()]
    for name in ("pfs_release", "pfs_release_in_force", "pfs_newest_listing"):
        key = record["data"].get(name)
        if key:
            tokens.append(key)
    for token in sorted(set(tokens), key=len, reverse=True):
        text = text.replace(token, "<release>" if token.startswith("RVU") else "<date>")
    return text


def record_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """The data fields that moved and the rules whose result changed (fired in one record and
    not the other, or set other values), in a stable order."""
    def pair(name: str) -> tuple[Any, Any]:
        """Both values, a field left out of one record (as records keep only set fields)
        taking the empty value of the other's type: False, 0, [] or ""."""
        a, b = old["data"].get(name), new["data"].get(name)
        return (type(b)() if a is None else a), (type(a)() if b is None else b)

    causes = [Cause("data", name, *pair(name)) for name in sorted(set(old["data"]) | set(new["data"]))
              if pair(name)[0] != pair(name)[1]]

    def line_order(key: str) -> tuple[str, int, str]:
        where, _, rule_id = key.partition(" ")
        path, _, line = where.rpartition(":")
        return path, int(line) if line.isdigit() else 0, rule_id

    for key in sorted(set(old["rules"]) | set(new["rules"]), key=line_order):
        before, after = old["rules"].get(key), new["rules"].get(key)
        if before is not None and after is not None:  # fired both times: name what it set differently
            moved = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            before, after = {k: before.get(k, "") for k in moved}, {k: after.get(k, "") for k in moved}
        if before != after:
            causes.append(Cause("rule", key, before, after))
    return causes


def diff_answer_records(old: dict[str, Any], new: dict[str, Any]) -> AnswerChange | None:
    """The answers of one code that differ in substance between two records (a question gone
    or new counts), with the causes; None when every answer is the same."""
    answers: dict[str, tuple[dict[str, str] | None, dict[str, str] | None]] = {}
    for intent in list(old["answers"]) + [k for k in new["answers"] if k not in old["answers"]]:
        a, b = old["answers"].get(intent), new["answers"].get(intent)
        if a is None or b is None or (_neutral_record_text(a["answer"], old)
                                      != _neutral_record_text(b["answer"], new)):
            answers[intent] = (a, b)
    if not answers:
        return None
    return AnswerChange(new["code"], answers, record_causes(old, new))
