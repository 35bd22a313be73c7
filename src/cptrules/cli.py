"""The `cptrules` command: a thin shell over the engine. Exit 1 = bad input or rules, 2 = usage."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .errors import CptrulesError, RuleFileErrors

log = logging.getLogger("cptrules")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-15") from None


def _engine(args: argparse.Namespace, check_data: bool = True) -> Any:
    from .engine import Engine

    return Engine.load(args.rules, args.data, check_data=check_data)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.app import create_server

    engine = _engine(args)
    registry = None
    if args.metrics_port is not None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        start_http_server(args.metrics_port, addr=args.host, registry=registry)
    server, port = create_server(engine, f"{args.host}:{args.port}", args.workers, registry)
    server.start()
    snap = engine.snapshot
    print(f"cptrules serving on {args.host}:{port} (ruleset {snap.ruleset.revision}, "
          f"{len(snap.codes)} codes, data: {', '.join(snap.data.source_names())})", flush=True)
    stop = threading.Event()

    def reload(*_: Any) -> None:
        try:
            new = engine.reload()
            log.info("reloaded ruleset %s", new.ruleset.revision)
        except CptrulesError as error:
            log.error("reload refused, still serving %s:\n%s", engine.ruleset.revision, error)
        except Exception:  # a reload must never take the running service down
            log.exception("reload failed, still serving %s", engine.ruleset.revision)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, reload)
    stop.wait()
    server.stop(grace=5).wait()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .data.store import CodeData
    from .embedded import default_data_dir, default_rules_dir
    from .engine import ruleset_problems
    from .ruleset import load_ruleset

    root = args.dir or default_rules_dir()
    try:
        ruleset = load_ruleset(root)
    except RuleFileErrors as error:
        if not args.json:
            raise
        print(json.dumps({"revision": None, "failed": [str(p) for p in error.problems]}, indent=2))
        return 1
    data = CodeData.load([default_data_dir(), *(args.data or [])])
    codes = data.codes()
    report, problems = ruleset_problems(ruleset, data, codes, dt.datetime.now(dt.timezone.utc).date())
    if args.json:
        print(json.dumps({
            "revision": ruleset.revision, "tests": len(report.outcomes),
            "failed": [str(p) for p in problems],
            "rule_coverage": report.coverage, "untested_rules": report.untested_rules,
            "fired_by_tests": report.fired_by_tests}, indent=2))
    else:
        for problem in problems:
            print(problem)
        print(f"{root}: ruleset {ruleset.revision}: {len(ruleset.rules)} rules in "
              f"{len(ruleset.tables)} tables, {len(ruleset.templates)} templates, "
              f"{len(ruleset.phrasebook.cues)} phrasings")
        print(f"rule tests: {len(report.outcomes) - len(report.failed)} passed, "
              f"{len(report.failed)} failed; phrasing examples: {len(ruleset.phrasebook.tests)}; "
              f"rule coverage {report.coverage:.0%}"
              + (f" (untested: {', '.join(report.untested_rules)})" if report.untested_rules else ""))
        print(f"checked against {len(codes)} codes from {', '.join(data.source_names())}")
    if not report.outcomes:
        print("no rule tests found", file=sys.stderr)
        return 1
    return 1 if problems else 0


def cmd_import_pfs(args: argparse.Namespace) -> int:
    from .data.pfs import import_pfs_csv, write_release

    imported = import_pfs_csv(args.file, args.release, args.qp_conversion_factor)
    target = write_release(imported, args.data_dir)
    print(f"imported {imported.key} ({len(imported.payload['rows'])} rows, released "
          f"{imported.payload['released'] or 'unknown'}, effective {imported.payload['effective']}) "
          f"→ {target}")
    return 0


def cmd_import_hcpcs(args: argparse.Namespace) -> int:
    from .data.hcpcs import import_hcpcs, write_hcpcs

    payload = import_hcpcs(args.file, args.key)
    target = write_hcpcs(payload, args.data_dir)
    print(f"imported {payload['key']} ({len(payload['codes'])} codes, effective "
          f"{payload['effective']}) → {target}")
    return 0


def cmd_import_locality(args: argparse.Namespace) -> int:
    """One command for the five locality files: each is recognised by its header, so a user
    can pass the whole unzipped RVU and ZIP packages' locality files at once."""
    from .data.locality import import_locality_file, write_locality_file

    imported = [import_locality_file(path, args.year) for path in args.files]  # all checked first
    for item in imported:
        target = write_locality_file(item, args.data_dir)
        print(f"imported {item.kind} {item.key} (CY {item.payload['year']}) → {target}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .data.store import list_imports, remove_import

    if args.action == "remove":
        if not args.key:
            print("error: give the key to remove, e.g. RVU26A", file=sys.stderr)
            return 2
        try:
            print(f"removed {remove_import(args.data_dir, args.key)}")
        except KeyError:
            print(f"error: no import {args.key!r} in {args.data_dir}", file=sys.stderr)
            return 1
        return 0
    for item in list_imports(args.data_dir):
        print(f"{item.kind:6} {item.key:14} effective {item.effective}  sha256 {item.sha256[:16]}  {item.path}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    engine = _engine(args, check_data=False)
    result = engine.answer(args.question, args.date)
    print(result.text)
    if args.explain:
        print()
        print(f"outcome: {result.outcome}; intent: {result.intent} (confidence {result.confidence})"
              + (f"; runner-up: {result.runner_up}" if result.runner_up else ""))
        print(f"codes: {', '.join(result.codes) or '-'}; malformed: {', '.join(result.malformed) or '-'}; "
              f"date of service: {result.date_of_service or '-'}")
        for line in result.matched:
            print(f"  matched {line}")
        if result.provenance:
            _print_trace(result.provenance)
    return 0


def _print_trace(provenance: Any) -> None:
    print(f"ruleset {provenance.ruleset_revision}; data: "
          + "; ".join(s.label() for s in provenance.sources))
    for firing in provenance.fired:
        rule = firing.rule
        reads = ", ".join(f"{k}={v!r}" for k, v in firing.inputs.items())
        sets = ", ".join(f"{k}={v!r}" for k, v in firing.outputs.items())
        print(f"  {rule.path}:{rule.line} {rule.id}: {sets}  [read {reads}]")


def cmd_explain(args: argparse.Namespace) -> int:
    engine = _engine(args, check_data=False)
    report = engine.get_code(args.code, args.date, zip_code=args.zip_code, locality=args.locality)
    for key in sorted(report.facts):
        print(f"{key} = {report.facts[key]!r}")
    print()
    _print_trace(report.provenance)
    return 0


def cmd_faq(args: argparse.Namespace) -> int:
    from .faqpage import faq_document, faq_jsonld, faq_markdown

    engine = _engine(args, check_data=False)
    report, entries = engine.faq(args.code, args.date, zip_code=args.zip_code, locality=args.locality)
    if args.format == "json":
        print(json.dumps(faq_document(report, entries), indent=2))
    elif args.format == "jsonld":
        print(json.dumps(faq_jsonld(entries), indent=2))
    elif args.format == "markdown":
        print(faq_markdown(report, entries))
    else:
        for entry in entries:
            print(f"Q: {entry.question}\nA: {entry.text}\n")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff_releases, diff_rulesets
    from .engine import build_snapshot

    engine = _engine(args, check_data=False)
    old, new = args.old, args.new
    if Path(old).is_dir() and Path(new).is_dir():
        day = args.date or dt.datetime.now(dt.timezone.utc).date()
        dirs = list(engine.snapshot.data_dirs)
        before = build_snapshot(Path(old), dirs, check_data=False)
        after = build_snapshot(Path(new), dirs, check_data=False)
        codes = args.codes or list(before.codes)
        report = diff_rulesets(engine, before, after, codes, day)
    else:
        releases = {r.key: r for r in engine.snapshot.data.releases}
        missing = [k for k in (old, new) if k not in releases]
        if missing:
            print(f"error: release(s) {', '.join(missing)} not loaded; loaded: "
                  f"{', '.join(releases) or 'none'}", file=sys.stderr)
            return 1
        report = diff_releases(engine, releases[old], releases[new], args.threshold)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.as_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cptrules", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("--rules", type=Path, help="rules directory (default: the embedded rules)")
        p.add_argument("--data", type=Path, action="append",
                       help="extra data directory, loaded after the embedded data (repeatable)")

    p = sub.add_parser("serve", help="serve the gRPC API")
    with_sources(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=50051)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check", help="validate rule files, run their tests, check them on the data")
    p.add_argument("dir", nargs="?", type=Path)
    p.add_argument("--data", type=Path, action="append")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("import-pfs", help="import a CMS PPRRVU CSV (without the AMA descriptors)")
    p.add_argument("file", type=Path)
    p.add_argument("--data-dir", type=Path, default=Path("cptrules-data"))
    p.add_argument("--release", help="release key such as RVU26A, when the banner does not say")
    p.add_argument("--qp-conversion-factor", type=float, default=0.0,
                   help="the qualifying-APM conversion factor, for 2026+ releases")
    p.set_defaults(func=cmd_import_pfs)

    p = sub.add_parser("import-hcpcs", help="import a CMS HCPCS Level II quarterly file (xlsx or csv)")
    p.add_argument("file", type=Path)
    p.add_argument("--data-dir", type=Path, default=Path("cptrules-data"))
    p.add_argument("--key", help="file key such as HCPC2025_OCT, when the name does not say")
    p.set_defaults(func=cmd_import_hcpcs)

    for name, func, helptext in (("explain", cmd_explain, "print a code's facts and rule trace"),
                                 ("faq", cmd_faq, "print every FAQ entry for a code")):
        p = sub.add_parser(name, help=helptext)
        with_sources(p)
        p.add_argument("code")
        p.add_argument("--date", type=_date, help="date of service (default: today)")
        if name == "faq":
            p.add_argument("--format", choices=["text", "json", "jsonld", "markdown"], default="text")
        p.set_defaults(func=func)

    p = sub.add_parser("import-locality", help="import CMS locality files (GPCI, ZIP5, LOCCO, "
                                               "OPPSCAP, ANES), each recognised by its header")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--data-dir", type=Path, default=Path("cptrules-data"))
    p.add_argument("--year", type=int, help="calendar year, for files that do not state it (OPPSCAP)")
    p.set_defaults(func=cmd_import_locality)
    for name in ("explain", "faq"):
        sub.choices[name].add_argument("--zip", dest="zip_code", default="",
                                       help="price in the locality of this ZIP code (5 digits or ZIP+4)")
        sub.choices[name].add_argument("--locality", default="", help="price in this locality, e.g. 01112-05")

    p = sub.add_parser("data", help="list or remove imported files in a data directory")
    p.add_argument("action", choices=["list", "remove"])
    p.add_argument("key", nargs="?")
    p.add_argument("--data-dir", type=Path, default=Path("cptrules-data"))
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("diff", help="compare two releases (keys) or two rules directories")
    with_sources(p)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--threshold", type=float, default=0.0, help="ignore RVU moves up to this size")
    p.add_argument("--codes", nargs="*", help="codes to compare (ruleset diff; default: all)")
    p.add_argument("--date", type=_date, help="date of service for a ruleset diff")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("ask", help="answer a free-text question")
    with_sources(p)
    p.add_argument("question")
    p.add_argument("--date", type=_date)
    p.add_argument("--explain", action="store_true", help="show how the question was read")
    p.set_defaults(func=cmd_ask)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RuleFileErrors as error:
        print(str(error), file=sys.stderr)
        print(f"{len(error.problems)} problem(s)", file=sys.stderr)
        return 1
    except CptrulesError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
