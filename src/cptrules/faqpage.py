"""FAQ sets as documents: structured JSON with provenance, schema.org FAQPage JSON-LD, Markdown."""

from __future__ import annotations

from typing import Any

from .engine import AnswerResult, CodeReport


def faq_document(report: CodeReport, entries: list[AnswerResult]) -> dict[str, Any]:
    """Questions, answers and where each came from."""
    prov = report.provenance
    return {
        "code": report.code,
        "date_of_service": prov.date_of_service,
        "ruleset_version": prov.ruleset_revision,
        "data_releases": [s.label() for s in prov.sources],
        "entries": [{"intent": e.intent, "question": e.question, "answer": e.text,
                     "faq_entry": e.matched[0] if e.matched else ""} for e in entries],
    }


def faq_jsonld(entries: list[AnswerResult]) -> dict[str, Any]:
    """schema.org FAQPage; provenance stays outside it, as schema validators reject extra fields."""
    return {
        "@context": "https://schema.org",
        "@type": "FAQPage",
        "mainEntity": [{"@type": "Question", "name": e.question,
                        "acceptedAnswer": {"@type": "Answer", "text": e.text}} for e in entries],
    }


def faq_markdown(report: CodeReport, entries: list[AnswerResult]) -> str:
    """A page a support team can publish."""
    lines = [f"# {report.facts['code_label']}", ""]
    for entry in entries:
        lines += [f"## {entry.question}", "", entry.text, ""]
    lines.append("Sources: " + "; ".join(s.label() for s in report.provenance.sources)
                 + f". Ruleset {report.provenance.ruleset_revision}.")
    lines.append("CPT is a registered trademark of the American Medical Association.")
    return "\n".join(lines)
