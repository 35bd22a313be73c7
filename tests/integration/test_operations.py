"""Operations on the real server: configuration from the environment, the version, JSON logs
with request ids, metrics, the decision log and its replay after a rule edit."""

from __future__ import annotations

import argparse
import io
import json
import logging
import threading
import time
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from cptrules import cli
from cptrules.cli_options import apply_environment, env_name
from cptrules.engine import Engine, Snapshot
from cptrules.ruleset import load_ruleset
from cptrules.server import decisions as decisions_module, logs
from cptrules.server.app import Features, build_server
from cptrules.server.auth import TokenSet, token_hash
from cptrules.server.decisions import DecisionLog, Pending, build_record
from cptrules.server.lifecycle import Reloader
from cptrules.server.metrics import ServiceMetrics
from cptrules.server.replay import format_report, replay
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc
from cptrules.version import version

pytestmark = pytest.mark.integration

HANG = 30


# -- configuration --------------------------------------------------------------------------


def _parse(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    parser = cli.build_parser()
    apply_environment(parser, environ)
    return parser.parse_args(argv)


def test_every_serve_option_comes_from_the_environment_and_a_flag_beats_it():
    env = {"CPTRULES_PORT": "6001", "CPTRULES_WORKERS": "3", "CPTRULES_WATCH": "yes",
           "CPTRULES_MAX_CONNECTION_AGE": "90.5", "CPTRULES_LOG_FORMAT": "json",
           "CPTRULES_TLS_CERT": "/certs/tls.crt", "CPTRULES_RULES": "/srv/rules"}
    args = _parse(["serve"], env)
    assert (args.port, args.workers, args.watch, args.max_connection_age, args.log_format) == (
        6001, 3, True, 90.5, "json")
    assert args.tls_cert == Path("/certs/tls.crt") and args.rules == Path("/srv/rules")
    flags = _parse(["serve", "--port", "7000", "--max-concurrent-rpcs", "4"], env)
    assert (flags.port, flags.workers) == (7000, 4)
    assert _parse(["serve"], {"CPTRULES_WATCH": "off"}).watch is False


@pytest.mark.parametrize("variable, value, problem", [
    ("CPTRULES_PORT", "fifty", "CPTRULES_PORT='fifty': 'fifty' is not a port number"),
    ("CPTRULES_WORKERS", "0", "CPTRULES_WORKERS='0': 0 must be greater than 0"),
    ("CPTRULES_LOG_FORMAT", "xml", "CPTRULES_LOG_FORMAT='xml': choose from auto, json, console"),
    ("CPTRULES_INSECURE", "maybe", "CPTRULES_INSECURE='maybe': expected 1/true/yes/on"),
])
def test_a_bad_environment_value_is_a_usage_error_naming_the_variable(capsys, variable, value, problem):
    with pytest.raises(SystemExit) as stopped:
        _parse(["serve"], {variable: value})
    assert stopped.value.code == 2
    assert problem in capsys.readouterr().err


def test_options_added_later_get_their_variable_and_every_option_shows_a_default():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    late = subparsers.add_parser("late-command")
    late.add_argument("--some-new-limit", type=int, default=5, help="added by another command")
    apply_environment(parser, {"CPTRULES_SOME_NEW_LIMIT": "9"})
    assert parser.parse_args(["late-command"]).some_new_limit == 9

    for name, command in subparsers.choices.items():
        helptext = " ".join(command.format_help().split())
        for action in command._actions:
            variable = env_name(action)
            if variable is None or action.help == argparse.SUPPRESS:
                continue
            assert f"[env {variable}]" in helptext, (name, variable)
            if action.default not in (None, argparse.SUPPRESS, False):
                assert "default" in helptext.split(f"[env {variable}]")[0].rsplit("[env ", 1)[-1], (
                    name, variable)
    serve_help = " ".join(subparsers.choices["serve"].format_help().split())
    assert "default: 127.0.0.1 [env CPTRULES_HOST]" in serve_help


def test_version_from_the_command_and_in_get_ruleset(capsys, stub):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"cptrules {version()}"
    assert version() != "0+unknown"
    assert stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).version == version()


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def json_logs():
    """Logs configured as `serve` does, into a buffer; the logging set-up is restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    logs.configure("json", "INFO", buffer)
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_log_line_per_rpc_with_request_id_echoed_and_no_token(engine, json_logs, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(token_hash("very-secret-token") + "\n")
    built = build_server(engine, "127.0.0.1:0",
                         features=Features(tokens=TokenSet(tokens), request_log=True))
    built.grpc_server.start()
    secret = [("authorization", "Bearer very-secret-token")]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            _, call = stub.GetCode.with_call(svc.GetCodeRequest(code="99213"), timeout=HANG,
                                             metadata=secret + [("x-request-id", "claim-42")])
            assert ("x-request-id", "claim-42") in tuple(call.trailing_metadata())
            _, call = stub.GetCode.with_call(svc.GetCodeRequest(code="0556T"), timeout=HANG,
                                             metadata=secret + [("x-request-id", "bad id with spaces")])
            generated = dict(call.trailing_metadata())["x-request-id"]
            assert len(generated) == 32 and generated != "bad id with spaces"
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetCode(svc.GetCodeRequest(code="055T"), timeout=HANG,
                             metadata=secret + [("x-request-id", "claim-43")])
            assert ("x-request-id", "claim-43") in tuple(refused.value.trailing_metadata())
            assert any(k == "grpc-status-details-bin" for k, _ in refused.value.trailing_metadata())
            with pytest.raises(grpc.RpcError):
                stub.GetCode(svc.GetCodeRequest(code="99213"), timeout=HANG,
                             metadata=[("authorization", "Bearer not-the-token")])
    finally:
        built.grpc_server.stop(None)
    text = json_logs.getvalue()
    assert "very-secret-token" not in text and "not-the-token" not in text
    rpcs = [line for line in _lines(json_logs) if line["event"] == "rpc"]
    assert [(r["request_id"], r["code"]) for r in rpcs[:3]] == [
        ("claim-42", "OK"), (generated, "OK"), ("claim-43", "INVALID_ARGUMENT")]
    assert rpcs[3]["code"] == "PERMISSION_DENIED"
    for line in rpcs:
        assert line["method"] == "/cptrules.v1.CodeRulesService/GetCode"
        assert line["revision"] == engine.ruleset.revision
        assert line["peer"].startswith("ipv4:127.0.0.1:")
        assert line["duration_ms"] >= 0 and line["level"] == "info" and line["timestamp"].endswith("Z")


def test_a_terminal_gets_readable_lines(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = Terminal()
    try:
        logs.configure("auto", "INFO", out)
        logging.getLogger("cptrules.test").info("reloaded", extra={"revision": "sha256:abc"})
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
    line = out.getvalue()
    assert "reloaded" in line and "revision=sha256:abc" in line and not line.startswith("{")


# -- metrics --------------------------------------------------------------------------------------


def test_metrics_report_build_ruleset_sources_caches_and_reloads(engine):
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, lambda: engine)
    value = registry.get_sample_value
    assert value("cptrules_build_info", {"version": version(), "python": pytest.importorskip(
        "platform").python_version(), "grpc": grpc.__version__}) == 1
    assert value("cptrules_ruleset_info", {"revision": engine.ruleset.revision}) == 1
    assert value("cptrules_ruleset_load_timestamp_seconds") == engine.ruleset.loaded_at.timestamp()
    for release in engine.snapshot.data.releases:
        assert value("cptrules_codes_loaded", {"source": release.key}) == len(release.rows)
    assert value("process_resident_memory_bytes") > 0
    before = value("cptrules_cache_hits_total", {"cache": "reports"})
    engine.get_code("99213")
    engine.get_code("99213")
    assert value("cptrules_cache_hits_total", {"cache": "reports"}) > before
    assert 0 < value("cptrules_cache_hit_ratio", {"cache": "reports"}) <= 1
    # The caches sized in bytes say what they hold, against the budget the operator chose.
    from cptrules.server.servicer import CodeRulesServicer
    from cptrules.v1 import code_rules_service_pb2 as svc

    CodeRulesServicer(engine).method_handlers()["GetCode"].unary_unary(
        svc.GetCodeRequest(code="0556T").SerializeToString(), None)
    assert value("cptrules_cache_budget_bytes") == engine.snapshot.budget.megabytes << 20
    assert value("cptrules_cache_bytes", {"cache": "derived"}) > 0
    assert value("cptrules_cache_bytes", {"cache": "requests:GetCode"}) > 0
    assert value("cptrules_cache_bytes", {"cache": "reports"}) is None  # bounded by entries

    class Refusing(Engine):
        def reload(self, *args, **kwargs):
            from cptrules.errors import RuleFileErrors, RuleProblem

            raise RuleFileErrors([RuleProblem("rules/x.yaml", 3, "SCHEMA", "broken on purpose")])

    reloader = Reloader(Refusing(engine.snapshot, engine.clock), metrics=metrics)
    reloader._reload_once()
    assert value("cptrules_reloads_total", {"result": "failure"}) == 1
    assert value("cptrules_reloads_total", {"result": "success"}) == 0


# -- decision log and replay ---------------------------------------------------------------------


def _edited_engine(engine: Engine, rules_copy: Path) -> Engine:
    """The session engine's data with an edited copy of the rules (no data check: fast)."""
    template = rules_copy / "answers" / "what_is.j2"
    template.write_text(template.read_text() + "\nThis text comes from an edited rule file.\n")
    snap = engine.snapshot
    return Engine(Snapshot(load_ruleset(rules_copy), snap.data, rules_copy, snap.data_dirs, snap.codes),
                  engine.clock)


def test_decision_log_records_answers_and_replay_reports_changes_after_a_rule_edit(
        engine, tmp_path, rules_copy, capsys):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    built = build_server(engine, "127.0.0.1:0", features=Features(decisions=log, request_log=True))
    built.grpc_server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            stub.GetCode(svc.GetCodeRequest(code="0556T"), timeout=HANG)
            stub.AnswerQuestion(svc.AnswerQuestionRequest(question="what is 99213"), timeout=HANG,
                                metadata=[("x-request-id", "q-1")])
            stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=["99213", "0556T"]), timeout=HANG)
            page = stub.ListCodes(svc.ListCodesRequest(page_size=2), timeout=HANG)
            stub.ListCodes(svc.ListCodesRequest(page_size=2, page_token=page.next_page_token), timeout=HANG)
            stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG)  # describes the server: not recorded
            with pytest.raises(grpc.RpcError):
                stub.GetCode(svc.GetCodeRequest(code="055T"), timeout=HANG)  # no answer: not recorded
    finally:
        built.grpc_server.stop(None)
        log.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["method"].rsplit("/", 1)[-1] for r in records] == [
        "GetCode", "AnswerQuestion", "BatchGetCodes", "ListCodes", "ListCodes"]
    first, question = records[0], records[1]
    assert first["request"] == {"code": "0556T"}
    assert first["date_of_service"] == engine.clock().isoformat()
    assert first["revision"] == engine.ruleset.revision
    assert first["data_releases"] and all(isinstance(k, str) for k in first["data_releases"])
    assert first["fired_rules"] and all(set(f) == {"rule_id", "file", "line"} and f["line"] > 0
                                        for f in first["fired_rules"])
    assert len(first["response_sha256"]) == 64 and len(first["decision_id"]) == 32
    assert question["request_id"] == "q-1"
    assert log.written == 5 and log.dropped == 0

    same = replay([path], engine)
    assert (same.replayed, same.unchanged, same.changed) == (4, 4, [])
    assert len(same.skipped) == 1  # the second page: its token died with its server

    edited = replay([path], _edited_engine(engine, rules_copy))
    changed = {c.method.rsplit("/", 1)[-1] for c in edited.changed}
    assert changed == {"AnswerQuestion"}, format_report(edited)  # what_is.j2 renders that answer only
    assert edited.unchanged == 3
    assert "1 changed" in format_report(edited)


def test_replay_command_exit_status(engine, tmp_path, monkeypatch, capsys):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    request = svc.GetCodeRequest(code="99213")
    from cptrules.server import convert

    log.offer(Pending("d1", decisions_module.dt.datetime.now(decisions_module.dt.timezone.utc),
                      "/cptrules.v1.CodeRulesService/GetCode", request.SerializeToString(),
                      convert.code(engine.get_code("99213")), engine.clock(), engine.ruleset.revision, ""))
    log.close()
    monkeypatch.setattr(cli, "_engine", lambda args, check_data=True: engine)
    assert cli.main(["replay", str(path)]) == 0
    assert "1 replayed: 1 unchanged, 0 changed" in capsys.readouterr().out
    record = json.loads(path.read_text())
    record["answer_sha256"] = "0" * 64
    path.write_text(json.dumps(record) + "\nnot json\n")
    assert cli.main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "changed d1 GetCode" in out and "unreadable" in out and ":2:" in out
    assert cli.main(["replay", str(tmp_path / "missing.jsonl")]) == 1


def test_records_from_messages_and_from_serialised_bytes_are_identical(engine):
    """The servicer may return a message or its bytes: the decision is the same."""
    from cptrules.server import convert

    message = convert.code(engine.get_code("0556T"))
    at = decisions_module.dt.datetime(2026, 1, 2, tzinfo=decisions_module.dt.timezone.utc)
    request = svc.GetCodeRequest(code="0556T")
    common = dict(decision_id="x", time=at, method="/cptrules.v1.CodeRulesService/GetCode",
                  today=engine.clock(), revision="r", request_id="")
    from_message = build_record(Pending(request=request, response=message, **common))
    from_bytes = build_record(Pending(request=request.SerializeToString(),
                                      response=message.SerializeToString(), **common))
    assert from_message == from_bytes


def test_a_full_decision_queue_drops_and_counts_and_never_blocks(engine, tmp_path, monkeypatch):
    release = threading.Event()
    real = decisions_module.build_record

    def stuck(item):
        release.wait(HANG)
        return real(item)

    monkeypatch.setattr(decisions_module, "build_record", stuck)
    drops = []
    log = DecisionLog(tmp_path / "d.jsonl", queue_size=2, on_drop=lambda: drops.append(1))
    request = svc.GetCodeRequest(code="99213")
    from cptrules.server import convert

    item = Pending("d", decisions_module.dt.datetime.now(decisions_module.dt.timezone.utc),
                   "/cptrules.v1.CodeRulesService/GetCode", request.SerializeToString(),
                   convert.code(engine.get_code("99213")), engine.clock(), "r", "")
    done = threading.Event()

    def offer_many():
        for _ in range(10):
            log.offer(item)
        done.set()

    threading.Thread(target=offer_many).start()
    assert done.wait(HANG), "offering blocked"
    assert log.dropped == len(drops) >= 7
    release.set()
    log.close()
    assert log.written == 10 - log.dropped


# -- deadlines -------------------------------------------------------------------------------------


def test_a_page_stops_being_computed_when_the_client_deadline_passes(engine):
    """Each code of the page takes 20 ms here; the client gives up after 0.3 s: the server stops
    within a few codes of that instead of computing all 1,000 (20 s) for nobody."""
    computed: list[str] = []

    class SlowEngine(Engine):
        def _report(self, code, *args, **kwargs):
            computed.append(code)
            threading.Event().wait(0.02)
            return super()._report(code, *args, **kwargs)

    # A snapshot of its own (empty caches): the session's has the page's answers remembered.
    snap = engine.snapshot
    fresh = Snapshot(snap.ruleset, snap.data, snap.rules_dir, snap.data_dirs, snap.codes, snap.search_rules)
    slow = SlowEngine(fresh, engine.clock)
    built = build_server(slow, "127.0.0.1:0")
    built.grpc_server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            with pytest.raises(grpc.RpcError) as gave_up:
                stub.ListCodes(svc.ListCodesRequest(page_size=1000), timeout=0.3)
            assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            deadline, seen = time.monotonic() + HANG, -1
            while len(computed) != seen:  # settled: the page was abandoned (or never ends)
                assert time.monotonic() < deadline, "the page was never abandoned"
                seen = len(computed)
                time.sleep(0.5)
    finally:
        built.grpc_server.stop(None)
    assert len(computed) < 200, f"{len(computed)} codes computed after the client had gone"


def test_abandoned_work_outside_a_request_is_never_checked():
    from cptrules.cancellation import RequestAbandoned, abandoned_when, raise_if_abandoned

    raise_if_abandoned()  # no request: nothing to abandon
    with abandoned_when(lambda: True), pytest.raises(RequestAbandoned):
        raise_if_abandoned()
    raise_if_abandoned()


def test_a_variable_meant_for_another_command_does_not_trip_this_one():
    """CPTRULES_FORMAT is faq's --format: a value faq would refuse does not stop `serve`."""
    assert _parse(["serve"], {"CPTRULES_FORMAT": "no-such-format"}).port == 50051
    with pytest.raises(SystemExit):
        _parse(["faq", "0556T"], {"CPTRULES_FORMAT": "no-such-format"})
    assert _parse(["faq", "0556T"], {"CPTRULES_FORMAT": "json"}).format == "json"
