"""The `cptrules` command: a thin shell over the engine. Exit 1 = bad input or rules, 2 = usage."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .cli_options import Parser, apply_environment
from .errors import CptrulesError, RuleFileErrors

log = logging.getLogger("cptrules")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-15") from None


def _base_url(text: str) -> str:
    from .errors import InvalidInputError
    from .export.base_url import site_base_url

    try:
        return site_base_url(text)
    except InvalidInputError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def _data_dir(args: argparse.Namespace) -> Any:
    """The one data directory: --data-dir, else CPTRULES_DATA_DIR, else the platform's."""
    from .data.location import resolve_data_dir

    return resolve_data_dir(args.data_dir)


def _data_dirs(args: argparse.Namespace) -> list[Path]:
    """The imported-data directory to read, checked before anything slow is loaded."""
    return [_data_dir(args).for_reading()]


def _clock(args: argparse.Namespace) -> Any:
    """The engine's today: --today (or its CPTRULES_TODAY), else the UTC date as it passes."""
    from .engine import utc_today

    day = getattr(args, "today", None)
    return utc_today if day is None else (lambda: day)


def _engine(args: argparse.Namespace, check_data: bool = True) -> Any:
    from .caches import CacheBudget
    from .engine import Engine

    dirs = _data_dirs(args)
    megabytes = getattr(args, "cache_mb", None)  # serve's option; other commands keep the default
    sized = {"budget": CacheBudget(megabytes)} if megabytes else {}
    return Engine.load(args.rules, dirs, check_data=check_data, clock=_clock(args), **sized)


def _serve_features(args: argparse.Namespace) -> Any:
    """Transport, tokens, request and decision logs from the serve options; files read now, so
    a bad token file or certificate stops the start before anything is loaded."""
    from .server.app import Features
    from .server.tls import Transport, check_transport

    transport = Transport(args.tls_cert, args.tls_key, args.tls_client_ca, args.insecure)
    check_transport(transport, args.host)
    tokens = decisions = None
    if args.auth_token_file is not None:
        from .server.auth import TokenSet

        tokens = TokenSet(args.auth_token_file)
    if args.decision_log is not None:
        from .server.decisions import DecisionLog

        decisions = DecisionLog(args.decision_log, args.decision_log_max_bytes,
                                args.decision_log_backups, args.decision_log_queue)
    return Features(transport, tokens, args.reflection_requires_auth, decisions, request_log=True)


def _metrics_registry(args: argparse.Namespace) -> Any:
    """A registry served on --metrics-addr (or --metrics-port on --host); None without either."""
    if args.metrics_addr is None and args.metrics_port is None:
        return None
    from prometheus_client import CollectorRegistry, start_http_server

    from .server.tls import ServerConfigError

    host, port = args.host, args.metrics_port
    if args.metrics_addr is not None:
        host, _, text = args.metrics_addr.rpartition(":")
        if not text.isdigit():
            raise ServerConfigError(f"--metrics-addr {args.metrics_addr!r} is not HOST:PORT")
        port, host = int(text), host.strip("[]") or "0.0.0.0"
    registry = CollectorRegistry()
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise ServerConfigError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None
    return registry


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import logs
    from .server.app import check_bindable
    from .server.lifecycle import Lifecycle, serve

    logs.configure(args.log_format, args.log_level)
    if args.processes > 1:
        return _serve_processes(args)
    check_bindable(f"{args.host}:{args.port}")  # a port in use is one line, before any loading
    features = _serve_features(args)
    registry = _metrics_registry(args)
    life = Lifecycle(grace=args.grace, shutdown_delay=args.shutdown_delay, watch=args.watch)
    if features.tokens is not None:
        life.on_reload.append(features.tokens.reload)
    if features.decisions is not None:
        life.on_stop.append(features.decisions.close)
    return serve(lambda: _engine(args), args.host, args.port, _server_options(args), grace=life,
                 registry=registry, out=sys.stdout, features=features)


def _serve_processes(args: argparse.Namespace) -> int:
    """`--processes N`: workers sharing the port, each with the same transport and tokens. What
    one process owns alone (a metrics listener, a decision log file, a directory watch) is refused."""
    from .server.processes import serve_processes

    alone = [flag for flag, value in (("--metrics-port", args.metrics_port), ("--metrics-addr", args.metrics_addr),
                                      ("--decision-log", args.decision_log), ("--watch", args.watch or None))
             if value is not None]
    if alone:
        print(f"error: {', '.join(alone)} belong(s) to one process; they cannot be used with --processes",
              file=sys.stderr)
        return 2
    return serve_processes(lambda: _engine(args), args.host, args.port, _server_options(args),
                           args.processes, args.grace, sys.stdout, features=_serve_features(args))


def _server_options(args: argparse.Namespace) -> Any:
    from .server.app import ServerOptions

    return ServerOptions(
        workers=args.workers, max_streams=args.max_streams, max_exports=args.max_exports,
        max_exports_per_peer=args.max_exports_per_peer, export_stall_timeout=args.export_stall_timeout,
        max_connections=args.max_connections or 0,
        max_streams_per_connection=args.max_streams_per_connection,
        max_connection_idle=args.max_connection_idle, max_connection_age=args.max_connection_age,
        max_connection_age_grace=args.max_connection_age_grace,
        handshake_timeout=args.handshake_timeout, keepalive_time=args.keepalive_time,
        keepalive_timeout=args.keepalive_timeout,
        min_client_ping_interval=args.min_client_ping_interval,
        max_request_bytes=args.max_request_bytes, max_response_bytes=args.max_response_bytes)


def cmd_replay(args: argparse.Namespace) -> int:
    from .server.replay import format_report, replay

    missing = [str(p) for p in args.logs if not p.is_file()]
    if missing:
        print(f"error: no such decision log: {', '.join(missing)}", file=sys.stderr)
        return 1
    report = replay(args.logs, _engine(args))
    print(format_report(report))
    return 1 if report.changed or report.unreadable else 0


def cmd_check(args: argparse.Namespace) -> int:
    from .data.store import CodeData
    from .embedded import default_data_dir, default_rules_dir
    from .engine import ruleset_problems
    from .ruleset import load_ruleset
    from .search import load_search_rules

    root = args.dir or default_rules_dir()
    data_dirs = [default_data_dir(), *_data_dirs(args)]
    try:
        ruleset = load_ruleset(root)
        load_search_rules(root)
    except RuleFileErrors as error:
        if not args.json:
            raise
        print(json.dumps({"revision": None, "failed": [str(p) for p in error.problems]}, indent=2))
        return 1
    data = CodeData.load(data_dirs)
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
    from .data.pfs import import_pfs_csv, newest_whole_release, write_descriptors, write_release
    from .embedded import default_data_dir

    location = _data_dir(args)
    reference = None if args.partial else newest_whole_release(
        [default_data_dir(), *([location.path] if location.path.is_dir() else [])])
    imported = import_pfs_csv(args.file, args.release, args.qp_conversion_factor, partial=args.partial,
                              ignore_banner_year=args.ignore_banner_year, reference=reference,
                              with_descriptors=args.with_descriptors)
    data_dir = location.for_writing()
    target = write_release(imported, data_dir, replace=args.replace, loaded_from=[default_data_dir()])
    if args.with_descriptors:
        kept = write_descriptors(imported, data_dir)
        print(f"kept {len(imported.descriptors)} CPT short descriptors (AMA text, for your own use under "
              f"the licence you accepted at CMS) → {kept}")
    payload = imported.payload
    what = (f"{imported.key}{' (partial)' if payload['partial'] else ''} ({len(payload['rows'])} rows, "
            f"released {payload['released'] or 'unknown'}, effective {payload['effective']})")
    if not target.is_relative_to(data_dir):
        print(f"{what} is already loaded from {target} with the same content; nothing written")
    else:
        print(f"imported {what} → {target}")
    return 0


def cmd_import_hcpcs(args: argparse.Namespace) -> int:
    from .data.hcpcs import import_hcpcs, write_hcpcs
    from .embedded import default_data_dir

    payload = import_hcpcs(args.file, args.key, partial=args.partial)
    data_dir = _data_dir(args).for_writing()
    target = write_hcpcs(payload, data_dir, replace=args.replace, loaded_from=[default_data_dir()],
                         source=str(args.file))
    what = (f"{payload['key']}{' (partial)' if payload['partial'] else ''} ({len(payload['codes'])} codes, "
            f"effective {payload['effective']})")
    if not target.is_relative_to(data_dir):
        print(f"{what} is already loaded from {target} with the same content; nothing written")
    else:
        print(f"imported {what} → {target}")
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

    folder = _data_dir(args).for_reading()
    if args.action == "remove":
        if not args.key:
            print("error: give the key to remove, e.g. RVU26A", file=sys.stderr)
            return 2
        try:
            print(f"removed {remove_import(folder, args.key)}")
        except KeyError:
            print(f"error: no import {args.key!r} in {folder}", file=sys.stderr)
            return 1
        return 0
    damaged = 0
    items = list_imports(folder)
    if not items:
        print(f"no imported data in {folder}", file=sys.stderr)
    for item in items:
        if item.problem:
            damaged += 1
            print(f"error: {item.path}: {item.problem}", file=sys.stderr)
            continue
        state = "partial" if item.partial else "whole"
        print(f"{item.kind:6} {item.key:14} {state:7} effective {item.effective}  sha256 {item.sha256[:16]}  "
              f"{item.path}")
    return 1 if damaged else 0


def cmd_ask(args: argparse.Namespace) -> int:
    engine = _engine(args, check_data=False)
    result = engine.answer(args.question, args.date)
    print(result.text)
    if args.explain:
        print()
        print(f"outcome: {result.outcome}; intent: {result.intent} (confidence {result.confidence})"
              + (f"; runner-up: {result.runner_up}" if result.runner_up else "")
              + (f"; topic: {result.topic}" if result.topic else ""))
        print(f"codes: {', '.join(result.codes) or '-'}; malformed: {', '.join(result.malformed) or '-'}; "
              f"date of service: {result.date_of_service or '-'}")
        for line in result.matched:
            print(f"  matched {line}")
        if result.provenance:
            _print_trace(result.provenance)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    engine = _engine(args, check_data=False)
    for match in engine.search_codes(args.query, args.category or "", args.limit):
        print(f"{match.code}  {match.score:.2f}  {match.descriptor or '-'}  "
              f"[{match.matched_field}: {match.matched_text}]")
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


def cmd_protos(args: argparse.Namespace) -> int:
    from .protos import write_protos

    for path in write_protos(args.dir):
        print(path.relative_to(args.dir))
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


# -- clients of a running server: health probe and conformance vectors ---------------------------

def cmd_health(args: argparse.Namespace) -> int:
    from .client.channel import Connection
    from .client.health import check

    serving, line = check(Connection.from_args(args, args.address), args.service, args.timeout)
    print(line)
    return 0 if serving else 1


def cmd_vectors(args: argparse.Namespace) -> int:
    import contextlib

    from .client import vectors
    from .client.channel import Connection

    with contextlib.ExitStack() as stack:
        if args.action == "export" and not args.target:  # answer in-process, over a loopback server
            from .server.app import create_server

            server, port = create_server(_engine(args), "127.0.0.1:0")
            server.start()
            stack.callback(server.stop, None)
            args.target = f"127.0.0.1:{port}"
        if not args.target:
            print("error: verify needs --target HOST:PORT", file=sys.stderr)
            return 2
        connection = Connection.from_args(args, args.target)
        channel = stack.enter_context(connection.channel())
        try:
            if args.action == "export":
                requests = vectors.requests_for(args.codes, args.questions, args.date)
                count = vectors.export(channel, requests, args.file, connection.metadata())
                print(f"wrote {count} vectors to {args.file}")
                return 0
            report = vectors.verify(channel, args.file, connection.metadata())
        except vectors.Unreachable as error:
            print(f"error: {args.target}: {error}", file=sys.stderr)
            return 1
        print("\n".join(report.lines()))
        return 1 if report.differing or not report.checked else 0


def _client_commands(sub: Any, with_sources: Any) -> None:
    from .client.channel import add_connection_options

    p = sub.add_parser("health", help="ask a server's grpc.health.v1 Check; exit 0 only when SERVING")
    p.add_argument("address", help="HOST:PORT")
    p.add_argument("--service", default="", help="service to ask about (default: the whole server)")
    p.add_argument("--timeout", type=_positive(float), default=5.0, help="seconds (default %(default)s)")
    add_connection_options(p)
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("vectors", help="export conformance vectors, or verify a server against them")
    p.add_argument("action", choices=["export", "verify"])
    p.add_argument("file", type=Path, help="JSON lines: one request and its expected response each")
    p.add_argument("--target", help="HOST:PORT of the server (export: default an in-process one)")
    p.add_argument("--codes", nargs="*", default=[], help="export: GetCode and GetFaq for these codes")
    p.add_argument("--questions", nargs="*", default=[], help="export: AnswerQuestion for these")
    p.add_argument("--date", type=_date, help="export: date of service of every request")
    with_sources(p)
    add_connection_options(p)
    p.set_defaults(func=cmd_vectors)
def cmd_export(args: argparse.Namespace) -> int:
    """A publishable set of FAQ pages (see export/site.py); a rerun writes only what changed."""
    from .export.progress import reporter
    from .export.site import ExportOptions, export_site

    engine = _engine(args, check_data=False)
    codes = [c for text in args.codes for c in text.replace(",", " ").split()] if args.codes else None
    tick, done = reporter(sys.stderr)
    try:
        result = export_site(engine, ExportOptions(args.dir, args.format, codes, args.category or "",
                                                   args.date, args.since or "", args.base_url or ""), tick)
    finally:
        done()
    print(f"{result.codes} codes, {result.files} files in {args.dir}: {len(result.written)} written, "
          f"{len(result.removed)} removed" + (f"; {len(result.changes)} codes with changed answers "
                                               f"since {result.baseline}" if result.baseline else ""))
    return 0


def _port(text: str) -> int:
    """A TCP port, 0 for one the system picks."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value

    return parse


def _at_least(low: int) -> Any:
    def parse(text: str) -> int:
        value = _positive(int)(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is less than {low}")
        return value

    return parse


def _serve_limits(p: argparse.ArgumentParser) -> None:
    """The server's limits (see ServerOptions); times in seconds."""
    from .caches import CacheBudget
    from .server.app import ServerOptions

    d = ServerOptions()
    count, seconds = _positive(int), _positive(float)
    g = p.add_argument_group("limits", "what one server accepts; times in seconds")
    g.add_argument("--workers", "--max-concurrent-rpcs", type=count, default=d.workers,
                   help="calls computed at once; more get RESOURCE_EXHAUSTED (default %(default)s)")
    g.add_argument("--max-streams", type=count, default=d.max_streams,
                   help="open health-watch and reflection streams (default %(default)s)")
    g.add_argument("--max-exports", type=count, default=d.max_exports,
                   help="open ExportFaqs streams, counted apart from the others (default %(default)s)")
    g.add_argument("--cache-mb", type=_at_least(16), default=CacheBudget().megabytes,
                   help="memory for remembered responses, in MB; the loaded data and the other "
                        "caches take about 300 MB besides (default %(default)s)")
    g.add_argument("--max-exports-per-peer", type=count, default=d.max_exports_per_peer,
                   help="open ExportFaqs streams of one client: its token with --auth-token-file, "
                        "else its address (default %(default)s)")
    g.add_argument("--export-stall-timeout", type=seconds, default=d.export_stall_timeout,
                   help="end with ABORTED an export whose reader takes nothing this long, freeing its "
                        "place (default %(default)s)")
    g.add_argument("--max-connections", type=count, default=None,
                   help="open connections (default: the descriptor limit less a reserve, at most 1000)")
    g.add_argument("--max-streams-per-connection", type=count, default=d.max_streams_per_connection,
                   help="concurrent calls on one connection (default %(default)s)")
    g.add_argument("--max-connection-idle", type=seconds, default=d.max_connection_idle,
                   help="close a connection with no call for this long (default %(default)s)")
    g.add_argument("--max-connection-age", type=seconds, default=d.max_connection_age,
                   help="close every connection after this long (default %(default)s)")
    g.add_argument("--max-connection-age-grace", type=seconds, default=d.max_connection_age_grace,
                   help="time calls get to finish when their connection ages out (default %(default)s)")
    g.add_argument("--handshake-timeout", type=seconds, default=d.handshake_timeout,
                   help="close a connection that has not started HTTP/2 by then (default %(default)s)")
    g.add_argument("--keepalive-time", type=seconds, default=d.keepalive_time,
                   help="ping a silent client this often (default %(default)s)")
    g.add_argument("--keepalive-timeout", type=seconds, default=d.keepalive_timeout,
                   help="close the connection when a ping is unanswered this long (default %(default)s)")
    g.add_argument("--min-client-ping-interval", type=seconds, default=d.min_client_ping_interval,
                   help="client pings more frequent than this close the connection (default %(default)s)")
    g.add_argument("--max-response-bytes", type=count, default=d.max_response_bytes,
                   help="largest response message (default %(default)s)")
    g.add_argument("--max-request-bytes", type=count, default=d.max_request_bytes,
                   help="largest request message, refused before it is parsed (default %(default)s)")
    g.add_argument("--grace", "--grace-period", type=seconds, default=5.0,
                   help="on SIGTERM, time running calls get to finish (default %(default)s)")
    g.add_argument("--shutdown-delay", type=_non_negative, default=0.0,
                   help="on SIGTERM, time health says NOT_SERVING before the listener closes, for "
                        "load balancers to notice")


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _serve_security(p: argparse.ArgumentParser) -> None:
    """Transport security, tokens, logs, the decision log, metrics and reloading."""
    from .server.logs import FORMATS

    g = p.add_argument_group("security", "plaintext is refused except on loopback or with --insecure")
    g.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve TLS")
    g.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    g.add_argument("--tls-client-ca", type=Path,
                   help="PEM CA certificates: mutual TLS, every client must present a certificate they signed")
    g.add_argument("--insecure", action="store_true", help="serve plaintext on a non-loopback address")
    g.add_argument("--auth-token-file", type=Path,
                   help="file of allowed bearer tokens, one 'sha256:<hex of SHA-256 of the token>' a line; "
                        "re-read when it changes and on SIGHUP")
    g.add_argument("--reflection-requires-auth", action="store_true",
                   help="with --auth-token-file, server reflection needs a token too (health never does)")
    g = p.add_argument_group("operations")
    g.add_argument("--log-format", choices=FORMATS, default="auto",
                   help="stderr log format; auto: console on a terminal, else JSON lines")
    g.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    g.add_argument("--decision-log", type=Path, help="append one JSON line per answer to this file (rotated)")
    g.add_argument("--decision-log-max-bytes", type=_positive(int), default=100 << 20,
                   help="rotate the decision log at this size")
    g.add_argument("--decision-log-backups", type=_positive(int), default=5,
                   help="rotated decision logs kept")
    g.add_argument("--decision-log-queue", type=_positive(int), default=10_000,
                   help="decisions waiting to be written; beyond, they are dropped and counted")
    g.add_argument("--metrics-addr", help="serve Prometheus metrics on HOST:PORT")
    g.add_argument("--watch", action="store_true",
                   help="reload when a file in the rules or data directory changes")


def build_parser() -> argparse.ArgumentParser:
    from .version import version

    parser = Parser(prog="cptrules", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cptrules {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, dest="data_dir",
                       help="where imported data lives (default: $CPTRULES_DATA_DIR, else the user's "
                            "data directory, e.g. ~/.local/share/cptrules)")
        p.add_argument("--data", type=Path, dest="data_dir", help=argparse.SUPPRESS)  # old name

    def with_sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("--rules", type=Path, help="rules directory (default: the embedded rules)")
        with_data_dir(p)
        p.add_argument("--today", type=_date, help="pin the service's today, YYYY-MM-DD, so undated "
                       "requests get the same answers every day (default: $CPTRULES_TODAY, else UTC)")

    p = sub.add_parser("serve", help="serve the gRPC API")
    with_sources(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=50051, help="0 picks a free port (printed on start)")
    p.add_argument("--metrics-port", type=_port, help="serve Prometheus metrics on this port of --host")
    p.add_argument("--processes", type=_positive(int), default=1,
                   help="serving processes sharing the port (SO_REUSEPORT)")
    _serve_limits(p)
    _serve_security(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("replay", help="ask the decision log's requests again of the current rules "
                                      "and data; exit 1 when an answer changed")
    with_sources(p)
    p.add_argument("logs", type=Path, nargs="+", help="decision log files (rotated ones too)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("check", help="validate rule files, run their tests, check them on the data")
    p.add_argument("dir", nargs="?", type=Path)
    with_data_dir(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("import-pfs", help="import a CMS PPRRVU CSV (without the AMA descriptors)")
    p.add_argument("file", type=Path)
    with_data_dir(p)
    p.add_argument("--release", help="release key such as RVU26A, when the banner does not say")
    p.add_argument("--qp-conversion-factor", type=float, default=0.0,
                   help="the qualifying-APM conversion factor, for 2026+ releases")
    p.add_argument("--partial", action="store_true",
                   help="accept a file with fewer rows than a whole release (an excerpt); codes it "
                        "does not list are then unknown for its period")
    p.add_argument("--replace", action="store_true", help="replace a release already loaded under this key")
    p.add_argument("--ignore-banner-year", action="store_true",
                   help="accept a --release key whose year differs from the file's banner")
    p.add_argument("--with-descriptors", action="store_true",
                   help="also keep the file's CPT short descriptors (AMA text) in your data directory, "
                        "shown labelled as such in answers and search")
    p.set_defaults(func=cmd_import_pfs)

    p = sub.add_parser("import-hcpcs", help="import a CMS HCPCS Level II quarterly file (xlsx or csv)")
    p.add_argument("file", type=Path)
    with_data_dir(p)
    p.add_argument("--key", help="file key such as HCPC2025_OCT, when the name does not say")
    p.add_argument("--partial", action="store_true",
                   help="accept a file listing fewer codes than a whole quarterly file")
    p.add_argument("--replace", action="store_true", help="replace a file already loaded under this key")
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
    with_data_dir(p)
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

    p = sub.add_parser("protos", help="write every .proto a client needs (with google/type/date.proto) "
                                      "under DIR, for protoc -I DIR, grpcurl or @grpc/proto-loader")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=cmd_protos)
    p = sub.add_parser("export", help="write every FAQ set as a static site (or Markdown, JSON, JSON-LD)")
    with_sources(p)
    p.add_argument("dir", type=Path, help="output folder; a previous export there is updated in place")
    p.add_argument("--format", choices=["html", "markdown", "json", "jsonld"], default="html")
    p.add_argument("--category", help="only this category, e.g. CATEGORY_III")
    p.add_argument("--codes", nargs="+", help="only these codes (spaces or commas)")
    p.add_argument("--date", type=_date, help="date of service of the answers (default: today)")
    p.add_argument("--since", help="name the changes since this fee-schedule release, e.g. RVU25D "
                                    "(default: since the previous export in DIR)")
    p.add_argument("--base-url", type=_base_url,
                   help="the absolute http(s) URL the site is published at; sitemap.xml is written only with it")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("ask", help="answer a free-text question")
    with_sources(p)
    p.add_argument("question")
    p.add_argument("--date", type=_date)
    p.add_argument("--explain", action="store_true", help="show how the question was read")
    p.set_defaults(func=cmd_ask)
    _client_commands(sub, with_sources)

    p = sub.add_parser("search", help="find codes by what they are (\"cpap\", \"flu shot\")")
    with_sources(p)
    p.add_argument("query")
    p.add_argument("--category", choices=["CATEGORY_I", "CATEGORY_II", "CATEGORY_III", "PLA", "MAAA",
                                          "HCPCS_LEVEL_II"])
    p.add_argument("--limit", type=int, default=10, help="at most this many codes (up to 50)")
    p.set_defaults(func=cmd_search)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    apply_environment(parser)  # every option also from CPTRULES_<OPTION>
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except RuleFileErrors as error:
        print(str(error), file=sys.stderr)
        print(f"{len(error.problems)} problem(s)", file=sys.stderr)
        return 1
    except CptrulesError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
