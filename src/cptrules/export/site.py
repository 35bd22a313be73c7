"""The static export: FAQ sets → a folder of pages (HTML site, Markdown, JSON or JSON-LD), with
index pages, glossary, search index, sitemap, and a changes page naming why answers changed.

The look lives in `<rules>/site/` (Jinja2 templates, `site.yaml`, assets), so analysts change it
without code. Output is deterministic: the same rules, data, date and options give the same
bytes, and a rerun writes only files whose bytes differ (see files.py). Pages are produced one
code at a time, so memory holds only a short index entry per code, never the answers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from ruamel.yaml import YAML

from ..diff import AnswerChange, answer_record, diff_answer_records
from ..engine import Engine
from ..errors import InvalidInputError
from ..faqpage import faq_document, faq_jsonld
from .base_url import site_base_url
from .faqsets import FaqSet, canonical_json, iter_faq_sets, select_codes
from .files import MANIFEST, ExportFolder, read_manifest, read_records
from .glossary import glossary_pages

FORMATS = ("html", "markdown", "json", "jsonld")
RECORDS = "records.jsonl.gz"
_EXTENSION = {"html": "html", "markdown": "md", "json": "json", "jsonld": "jsonld"}
# The facts a JSON page carries besides its answers (the page sections a reader expects).
_PAGE_FACTS = ("category", "category_label", "descriptor", "plain_language", "synonyms", "clinical_context",
               "specialties", "on_fee_schedule", "pfs_release", "pfs_release_effective", "pfs_covers_date",
               "status_indicator", "status_name", "status_meaning", "work_rvu", "non_facility_pe_rvu",
               "facility_pe_rvu", "mp_rvu", "non_facility_total_rvu", "facility_total_rvu",
               "has_national_payment", "non_facility_payment", "facility_payment", "conversion_factor",
               "global_days", "global_days_meaning", "pctc_indicator", "pctc_meaning", "permanent",
               "effective_date", "sunset_date", "sunset_basis", "replaced_by", "coverage_notes",
               "curated_coverage_notes", "curated_coverage_note_dates", "catalogue_sources")


@dataclass
class ExportOptions:
    """What to export and how; `since` is a fee-schedule release key to compare with."""

    out: Path
    format: str = "html"
    codes: list[str] | None = None
    category: str = ""
    dos: dt.date | None = None
    since: str = ""
    # Where the site is published (absolute http(s) URL); sitemap.xml is written only with one.
    base_url: str = ""


@dataclass
class ExportResult:
    """What a run did: every file it produced, those it wrote or removed, and the changes."""

    codes: int
    files: int
    written: list[str]
    removed: list[str]
    changes: list[AnswerChange] = field(default_factory=list)
    baseline: str = ""


@dataclass(frozen=True)
class _Entry:
    """What the index pages keep per code (small: never the answers)."""

    code: str
    category: str
    category_label: str
    descriptor: str


def _long(day: str) -> str:
    d = dt.date.fromisoformat(day)
    return f"{d:%B} {d.day}, {d.year}"


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _script_json(value: Any) -> Markup:
    """JSON safe inside a <script> element (no '</script>' can close it early)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


class SiteTemplates:
    """The site folder of a rules directory: templates, words and glossary configuration."""

    def __init__(self, folder: Path) -> None:
        if not (folder / "site.yaml").is_file():
            raise InvalidInputError(f"{folder} has no site.yaml: the rules folder has no site templates",
                                    "rules", reason="NO_SITE_TEMPLATES")
        self.folder = folder
        self.config = YAML(typ="safe").load((folder / "site.yaml").read_text(encoding="utf-8")) or {}
        self.env = SandboxedEnvironment(loader=FileSystemLoader(str(folder)), undefined=StrictUndefined,
                                        autoescape=select_autoescape(["html.jinja"], default=False),
                                        keep_trailing_newline=True, trim_blocks=False)

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(site=self.config, **context)

    def assets(self) -> Iterator[tuple[str, bytes]]:
        """Every file under assets/, by its path in the output, in a stable order."""
        root = self.folder / "assets"
        for path in sorted(root.rglob("*")):
            if path.is_file():
                yield "assets/" + path.relative_to(root).as_posix(), path.read_bytes()


def _rule_lines(faq_set: FaqSet) -> list[str]:
    lines = dict.fromkeys(f"{f.rule.path}:{f.rule.line} {f.rule.id}" for f in faq_set.report.provenance.fired)
    lines.update(dict.fromkeys(m for e in faq_set.entries for m in e.matched))
    return list(lines)


def _jsonld(faq_set: FaqSet, modified: str, language: str) -> dict[str, Any]:
    data = faq_jsonld(list(faq_set.entries))
    data.update({"dateModified": modified, "inLanguage": language,
                 "about": {"@type": "MedicalCode", "codeValue": faq_set.code,
                           "codingSystem": faq_set.report.facts["code_system"] or "CPT"}})
    return data


class _Baseline:
    """Earlier answer records, read alongside the new ones in code order (a merge join)."""

    def __init__(self, records: Iterator[dict[str, Any]]) -> None:
        self._records = records
        self._next: dict[str, Any] | None = next(records, None)
        self.unmatched: list[str] = []

    def take(self, code: str) -> dict[str, Any] | None:
        while self._next is not None and self._next["code"] < code:
            self.unmatched.append(self._next["code"])
            self._next = next(self._records, None)
        if self._next is not None and self._next["code"] == code:
            found, self._next = self._next, next(self._records, None)
            return found
        return None

    def rest(self) -> list[str]:
        while self._next is not None:
            self.unmatched.append(self._next["code"])
            self._next = next(self._records, None)
        return self.unmatched


def export_site(engine: Engine, options: ExportOptions,
                progress: Callable[[int, int, str], None] | None = None) -> ExportResult:
    """Write the export into options.out; see the module docstring."""
    if options.format not in FORMATS:
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}", "format", reason="INVALID_FORMAT")
    if options.out.exists() and not options.out.is_dir():
        raise InvalidInputError(f"{options.out} is not a folder", "dir", reason="NOT_A_FOLDER")
    base_url = site_base_url(options.base_url) if options.base_url else ""
    # An export rewrites and removes files: only in an empty folder or one an export made.
    if options.out.is_dir() and any(options.out.iterdir()) and not (options.out / MANIFEST).is_file():
        raise InvalidInputError(f"{options.out} holds files that no export made (no {MANIFEST}); "
                                "export into an empty or new folder", "dir", reason="FOREIGN_FOLDER")
    snapshot = engine.snapshot
    templates = SiteTemplates(Path(snapshot.rules_dir) / "site")
    # The answers' date of service, and the day pages are published (their dateModified when
    # their answers changed): both fixed once, both inputs of the byte-identical output.
    published = engine.clock().isoformat()
    day = options.dos or engine.clock()
    selected = select_codes(engine, snapshot, options.codes, options.category)
    previous = read_manifest(options.out)
    if previous is not None and previous.get("format") != options.format:
        previous = None
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    folder = ExportFolder(out, previous)
    prev_codes: dict[str, dict[str, str]] = dict((previous or {}).get("codes", {}))

    baseline_label = ""
    baseline: _Baseline | None = None
    since_effective = ""
    if options.since:
        releases = {r.key: r for r in snapshot.data.releases}
        if options.since not in releases:
            raise InvalidInputError(f"release {options.since!r} is not loaded; loaded: {', '.join(releases) or 'none'}",
                                    "since", {"release": options.since[:20]}, reason="UNKNOWN_RELEASE")
        release = releases[options.since]
        since_effective = release.effective.isoformat()
        baseline_label = f"the answers for {_long(since_effective)}, when fee-schedule release {release.key} took effect"
        baseline = _Baseline(answer_record(s.report, s.entries)
                             for s in iter_faq_sets(engine, selected, dos=release.effective))
    elif previous is not None and (out / RECORDS).is_file():
        baseline_label = (f"the previous export into this folder (date of service "
                          f"{_long(previous['date_of_service'])}, ruleset {previous['ruleset_revision']})")
        baseline = _Baseline(read_records(out / RECORDS))

    fmt, ext = options.format, _EXTENSION[options.format]
    language = str(templates.config.get("language", "en"))
    entries: list[_Entry] = []
    codes_manifest: dict[str, dict[str, str]] = {}
    changes: list[AnswerChange] = []
    added: list[str] = []
    records = folder.stream(RECORDS, compress=True)
    search = folder.stream("search-index.json") if fmt == "html" else None
    if search:
        search.write(b"[")
    revision = snapshot.ruleset.revision
    total = len(selected)
    for done, faq_set in enumerate(iter_faq_sets(engine, selected, dos=day), 1):
        record = answer_record(faq_set.report, faq_set.entries)
        records.write(canonical_json(record) + b"\n")
        earlier = baseline.take(faq_set.code) if baseline else None
        change = diff_answer_records(earlier, record) if earlier else None
        before = prev_codes.get(faq_set.code)
        if change:
            changes.append(change)
        if baseline is not None and earlier is None:
            added.append(faq_set.code)
        if change or earlier is None and (before is None or before["hash"] != faq_set.content_hash):
            modified = published
        elif before is not None:
            modified = before["modified"]
        else:
            modified = since_effective or published
        facts = faq_set.report.facts
        entries.append(_Entry(faq_set.code, facts["category"], facts["category_label"], facts["descriptor"]))
        shown = _write_page(folder, templates, fmt, ext, faq_set, modified, language,
                            (before or {}).get("revision", ""))
        codes_manifest[faq_set.code] = {"hash": faq_set.content_hash, "modified": modified, "revision": shown}
        if search:
            doc = {"id": faq_set.code, "code": faq_set.code, "descriptor": facts["descriptor"],
                   "synonyms": " ".join(facts["synonyms"]), "url": f"codes/{faq_set.code}.html",
                   "questions": " ".join(e.question for e in faq_set.entries)}
            search.write((b"" if done == 1 else b",") + b"\n" + canonical_json(doc))
        if progress:
            progress(done, total, faq_set.code)
    records.close()
    if search:
        search.write(b"\n]\n")
        search.close()
    removed = baseline.rest() if baseline is not None else []

    common = {"revision": revision, "date": day.isoformat(), "date_long": _long(day.isoformat()),
              "sources": [s.label() for s in snapshot.data.sources()]}
    _write_changes(folder, templates, fmt, bool(options.since), baseline_label, changes, added, removed, common)
    pages = glossary_pages(snapshot.ruleset, list(templates.config.get("glossary", [])))
    if fmt == "html":
        _write_html_indexes(folder, templates, entries, pages, common)
        for rel, data in templates.assets():
            folder.write(rel, data)
        if base_url:
            _write_sitemap(folder, base_url, codes_manifest)
    elif fmt == "markdown":
        folder.write_text("index.md", templates.render("index.md.jinja", categories=_categories(entries),
                                                       root="", **common))
    else:
        folder.write("index.json", _json_bytes({"ruleset_version": revision, "date_of_service": day.isoformat(),
                                                "codes": [{"code": e.code, "category": e.category,
                                                           "descriptor": e.descriptor,
                                                           "file": f"codes/{e.code}.{ext}"} for e in entries]}))
    manifest = {"generator": "cptrules export", "format": fmt, "date_of_service": day.isoformat(),
                "ruleset_revision": revision, "codes": codes_manifest}
    removed_files = folder.remove_stale()
    manifest["files"] = dict(sorted(folder.files.items()))
    folder.write(MANIFEST, _json_bytes(manifest))
    return ExportResult(len(entries), len(folder.files), folder.written, removed_files, changes, baseline_label)


def _write_page(folder: ExportFolder, templates: SiteTemplates, fmt: str, ext: str, faq_set: FaqSet,
                modified: str, language: str, earlier_revision: str) -> str:
    """Write one code's page; returns the ruleset revision the page names.

    A page names the revision that last changed it: when the page made with the revision of the
    previous run is byte for byte what that run wrote, nothing on it changed under the new
    revision, so it is kept (an edit to one rule rewrites only the pages it affects)."""
    for revision in dict.fromkeys(r for r in (earlier_revision, faq_set.ruleset_revision) if r):
        data = _page_bytes(templates, fmt, faq_set, modified, language, revision)
        if revision == faq_set.ruleset_revision or folder.same_as_before(f"codes/{faq_set.code}.{ext}", data):
            folder.write(f"codes/{faq_set.code}.{ext}", data)
            return revision
    raise AssertionError("unreachable: the current revision is always tried")


def _page_bytes(templates: SiteTemplates, fmt: str, faq_set: FaqSet, modified: str, language: str,
                revision: str) -> bytes:
    report = faq_set.report
    if fmt == "jsonld":
        return _json_bytes(_jsonld(faq_set, modified, language))
    if fmt == "json":
        document = faq_document(report, list(faq_set.entries))
        document.update({"dateModified": modified, "content_hash": faq_set.content_hash, "ruleset_version": revision,
                         "facts": {k: report.facts[k] for k in _PAGE_FACTS},
                         "rule_lines": _rule_lines(faq_set)})
        return _json_bytes(document)
    context = dict(f=report.facts, entries=faq_set.entries, modified=modified, root="../",
                   date=report.provenance.date_of_service, date_long=_long(report.provenance.date_of_service),
                   revision=revision, rule_lines=_rule_lines(faq_set),
                   sources=[s.label() for s in report.provenance.sources])
    if fmt == "markdown":
        return templates.render("code.md.jinja", **context).encode()
    return templates.render("code.html.jinja", jsonld=_script_json(_jsonld(faq_set, modified, language)),
                            **context).encode()


def _categories(entries: list[_Entry]) -> list[dict[str, Any]]:
    groups: dict[str, list[_Entry]] = {}
    for e in entries:
        groups.setdefault(e.category, []).append(e)
    return [{"category": k, "label": v[0].category_label, "count": len(v), "codes": v}
            for k, v in sorted(groups.items())]


def _write_html_indexes(folder: ExportFolder, templates: SiteTemplates, entries: list[_Entry],
                        pages: list[Any], common: dict[str, Any]) -> None:
    categories = _categories(entries)
    folder.write_text("index.html", templates.render("index.html.jinja", root="", categories=categories, **common))
    for group in categories:
        folder.write_text(f"category/{group['category']}.html", templates.render(
            "list.html.jinja", root="../", heading=group["label"], intro=f"{group['count']} codes.",
            groups=[], codes=[_row(e) for e in group["codes"]], **common))
    letters: dict[str, list[_Entry]] = {}
    for e in entries:
        letters.setdefault(e.code[0], []).append(e)
    groups = [{"href": f"{k}.html", "label": k} for k in sorted(letters)]
    folder.write_text("a-z/index.html", templates.render(
        "list.html.jinja", root="../", heading="Codes A–Z", intro="Codes by their first character.",
        groups=groups, codes=[], **common))
    for letter, items in sorted(letters.items()):
        folder.write_text(f"a-z/{letter}.html", templates.render(
            "list.html.jinja", root="../", heading=f"Codes starting with {letter}", intro="",
            groups=groups, codes=[_row(e) for e in items], **common))
    folder.write_text("glossary/index.html", templates.render("glossary-index.html.jinja", root="../",
                                                              pages=pages, **common))
    for page in pages:
        folder.write_text(f"glossary/{page.slug}.html", templates.render("glossary.html.jinja", root="../",
                                                                         page=page, **common))


def _row(e: _Entry) -> dict[str, str]:
    return {"code": e.code, "category_label": e.category_label, "descriptor": e.descriptor}


def _write_changes(folder: ExportFolder, templates: SiteTemplates, fmt: str, since: bool, baseline: str,
                   changes: list[AnswerChange], added: list[str], removed: list[str],
                   common: dict[str, Any]) -> None:
    """The changes page; a rerun that changes nothing keeps the page of the last change."""
    rel = {"html": "changes.html", "markdown": "changes.md"}.get(fmt, "changes.json")
    if baseline and not since and not (changes or added or removed) and folder.keep(rel):
        return
    shown = [{"code": c.code,
              "causes": [{"kind": k.kind, "name": k.name, "old": k.old, "new": k.new,
                          "old_text": k.old_text, "new_text": k.new_text} for k in c.causes],
              "answers": [{"intent": intent, "question": (b or a or {}).get("question", ""),
                           "old": (a or {}).get("answer", ""), "new": (b or {}).get("answer", "")}
                          for intent, (a, b) in c.answers.items()]}
             for c in changes]
    if fmt in ("json", "jsonld"):
        folder.write(rel, _json_bytes({"compared": bool(baseline), "baseline": baseline, "added": added,
                                       "removed": removed, "changes": shown}))
        return
    name = "changes.html.jinja" if fmt == "html" else "changes.md.jinja"
    folder.write_text(rel, templates.render(name, root="", compared=bool(baseline), baseline=baseline,
                                            changes=shown, added=added, removed=removed, **common))


def _write_sitemap(folder: ExportFolder, base: str, codes: dict[str, dict[str, str]]) -> None:
    """The pages' absolute addresses under `base` (checked by site_base_url), XML-escaped."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    pages = sorted(rel for rel in folder.files if rel.endswith(".html"))
    for rel in pages:
        code = rel[len("codes/"):-len(".html")] if rel.startswith("codes/") else ""
        lastmod = codes[code]["modified"] if code in codes else ""
        lines.append(f"<url><loc>{xml_escape(base + rel)}</loc>"
                     + (f"<lastmod>{lastmod}</lastmod>" if lastmod else "") + "</url>")
    lines.append("</urlset>")
    folder.write_text("sitemap.xml", "\n".join(lines) + "\n")
