"""Hostile clients and careless operators, against the real server on loopback (issue 8)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from cptrules import limits
from cptrules.engine import Engine
from cptrules.server.app import ServerOptions, build_server, create_server
from cptrules.server.testing import error_info
from cptrules.v1 import code_pb2, code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

pytestmark = pytest.mark.integration

HANG = 30  # seconds: only to tell "answers" from "never answers", not a speed limit
SERVICE = "/cptrules.v1.CodeRulesService/"



def health_check(channel: grpc.Channel, timeout: float = HANG) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                     timeout=timeout).status


def serving(engine: Engine, options: ServerOptions | None = None, registry=None):
    """A started server with `options`; the caller stops it."""
    built = build_server(engine, "127.0.0.1:0", options, registry)
    built.grpc_server.start()
    return built


# -- 1. reload and stop ------------------------------------------------------------------


@contextlib.contextmanager
def serve_process(rules: Path, log: Path, *extra: str):
    """`cptrules serve --port 0` in a child process; yields it and the port from its first line."""
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cptrules", "serve", "--port", "0", "--rules", str(rules), *extra],
            stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            line = process.stdout.readline()
            found = re.search(r"serving on [\d.]+:(\d+) ", line)
            assert found, f"no address on the first line: {line!r}; {log.read_text()}"
            yield process, int(found.group(1))
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()


def test_sighups_close_together_then_a_change_is_served_and_sigterm_stops(rules_copy, tmp_path):
    """Two SIGHUPs a second apart (the second lands inside the first reload), then a real change
    and a third SIGHUP: the change is served; then SIGTERM stops the process with status 0,
    health turning NOT_SERVING first."""
    from cptrules.ruleset import load_ruleset

    with serve_process(rules_copy, tmp_path / "serve.log", "--grace", "2") as (process, port), \
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
        before = stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).revision
        process.send_signal(signal.SIGHUP)
        time.sleep(1)
        process.send_signal(signal.SIGHUP)
        time.sleep(1)
        template = rules_copy / "answers" / "what_is.j2"
        template.write_text(template.read_text() + "\nThis text comes from the reloaded rules.\n")
        wanted = load_ruleset(rules_copy).revision
        assert wanted != before
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).revision != wanted:
            assert time.monotonic() < deadline, "the change was never served"
            time.sleep(0.25)
        answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="what is 0556T"), timeout=HANG)
        assert "comes from the reloaded rules" in answer.text

        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGHUP)  # a reload under way must not hold up the stop
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert process.wait(timeout=HANG) == 0
    assert "reloaded ruleset" in (tmp_path / "serve.log").read_text()


def test_reload_requests_during_a_reload_coalesce_into_one_more(engine):
    """Requests that arrive while a reload runs make exactly one more reload, after it."""
    from cptrules.server.lifecycle import Reloader

    class SlowReloads(Engine):
        def __init__(self):
            super().__init__(engine.snapshot, engine.clock)
            self.started, self.finish, self.count = threading.Semaphore(0), threading.Event(), 0

        def reload(self, *args, **kwargs):
            self.count += 1
            self.started.release()
            self.finish.wait(HANG)
            return self.snapshot

    slow = SlowReloads()
    reloader = Reloader(slow)
    reloader.start()
    try:
        reloader.request()
        assert slow.started.acquire(timeout=HANG)
        for _ in range(5):
            reloader.request()
        slow.finish.set()
        assert slow.started.acquire(timeout=HANG)  # the one more
        assert not slow.started.acquire(timeout=1)
        assert slow.count == 2
    finally:
        slow.finish.set()
        reloader.close()


# -- 2. admission control ------------------------------------------------------------------


class _Held:
    """Holds every ListCodes call inside the handler until released."""

    def __init__(self, engine: Engine) -> None:
        self.inside = threading.Semaphore(0)
        self.release = threading.Event()
        self._list_codes = engine.locate_page

    def __call__(self, *args, **kwargs):
        self.inside.release()
        self.release.wait(HANG)
        return self._list_codes(*args, **kwargs)


def test_busy_workers_do_not_starve_health_and_extra_calls_are_refused(engine):
    """Every worker busy: a health check still answers, and a call beyond the limit is refused
    at once with RESOURCE_EXHAUSTED (OVERLOADED), not queued behind the busy ones."""
    held_engine = Engine(engine.snapshot, engine.clock)
    held = _Held(held_engine)
    held_engine.locate_page = held
    server, port = create_server(held_engine, "127.0.0.1:0", max_workers=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            busy = [stub.ListCodes.future(svc.ListCodesRequest(page_size=1), timeout=HANG) for _ in range(2)]
            for _ in busy:
                assert held.inside.acquire(timeout=HANG)
            assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetCode(svc.GetCodeRequest(code="99213"), timeout=HANG)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_info(caught.value).reason == "OVERLOADED"
            held.release.set()
            assert all(len(call.result().codes) == 1 for call in busy)
            # The places are given back: the next call runs.
            assert stub.GetCode(svc.GetCodeRequest(code="99213"), timeout=HANG).code == "99213"
    finally:
        held.release.set()
        server.stop(None)


def test_open_streams_are_bounded_and_checks_still_answer(engine):
    built = serving(engine, ServerOptions(max_streams=1))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            first = health.Watch(health_pb2.HealthCheckRequest(), timeout=HANG)
            assert next(first).status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as caught:
                next(health.Watch(health_pb2.HealthCheckRequest(), timeout=HANG))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
            first.cancel()
            deadline = time.monotonic() + HANG
            while True:  # the place is given back once the cancelled stream has ended
                try:
                    again = health.Watch(health_pb2.HealthCheckRequest(), timeout=HANG)
                    assert next(again).status == health_pb2.HealthCheckResponse.SERVING
                    again.cancel()
                    break
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
    finally:
        built.grpc_server.stop(None)


def _health_during(channel: grpc.Channel, load: list[futures.Future]) -> int:
    status = health_check(channel)
    outcomes = []
    for call in load:
        try:
            call.result()
            outcomes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            outcomes.append(error.code())
    assert set(outcomes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED,
                             grpc.StatusCode.INVALID_ARGUMENT}, outcomes
    return status


def _own_connection(port: int) -> grpc.Channel:
    """A channel with a connection of its own (channels to one target share one by default),
    as separate clients have."""
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])


def test_health_answers_under_50_large_pages(engine):
    built = serving(engine)
    try:
        with contextlib.ExitStack() as stack:
            stubs = [code_rules_service_pb2_grpc.CodeRulesServiceStub(
                stack.enter_context(_own_connection(built.port))) for _ in range(5)]
            load = [stubs[i % 5].ListCodes.future(svc.ListCodesRequest(page_size=1000), timeout=120)
                    for i in range(50)]
            channel = stack.enter_context(_own_connection(built.port))
            assert _health_during(channel, load) == health_pb2.HealthCheckResponse.SERVING
    finally:
        built.grpc_server.stop(None)


def test_health_answers_under_16_oversized_questions(engine):
    built = serving(engine)
    try:
        with _own_connection(built.port) as channel, _own_connection(built.port) as loaded:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(loaded)
            big = "\ufdfa" * (340 * 1024)  # about 1 MiB of UTF-8
            small = "\ufdfa" * 5000  # within the request size, over the question limit
            load = [stub.AnswerQuestion.future(svc.AnswerQuestionRequest(question=text), timeout=120)
                    for text in [big] * 8 + [small] * 8]
            assert _health_during(channel, load) == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as caught:
                stub.AnswerQuestion(svc.AnswerQuestionRequest(question=small), timeout=HANG,
                                    wait_for_ready=True)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_info(caught.value).reason == "QUESTION_TOO_LONG"
            assert "\ufdfa" not in caught.value.details()
    finally:
        built.grpc_server.stop(None)


def test_refusals_and_unparseable_requests_are_counted(engine):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    built = serving(engine, registry=registry)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            with pytest.raises(grpc.RpcError):
                channel.unary_unary(SERVICE + "GetCode")(b"\xff\xff", timeout=HANG)
    finally:
        built.grpc_server.stop(None)
    assert registry.get_sample_value("cptrules_rpc_requests_total",
                                     {"method": "GetCode", "code": "INVALID_ARGUMENT"}) == 1


def test_a_serving_snapshot_is_classified_when_built(engine, monkeypatch):
    """The first category-filtered listing after a start or reload does no classifying."""
    import cptrules.engine as engine_module

    snap = engine.snapshot
    fresh = engine_module.build_snapshot(snap.rules_dir, list(snap.data_dirs), True, engine.clock())

    def refuse(*_):
        raise AssertionError("classified at request time")

    monkeypatch.setattr(engine_module, "classify", refuse)
    listing = Engine(fresh, engine.clock)
    page = listing.list_codes(5, "", "CATEGORY_III")
    assert [r.facts["category"] for r in page.reports] == ["CATEGORY_III"] * 5
    assert page.total == len(fresh.codes_in("CATEGORY_III")) > 100


def test_concurrent_first_listings_classify_each_code_once(engine, monkeypatch):
    import cptrules.engine as engine_module

    snap = engine.snapshot
    fresh = engine_module.Snapshot(snap.ruleset, snap.data, snap.rules_dir, snap.data_dirs, snap.codes)
    calls = []
    original = engine_module.classify
    monkeypatch.setattr(engine_module, "classify", lambda r, c: calls.append(c) or original(r, c))
    start = threading.Barrier(8)

    def first_listing(category):
        start.wait()
        return fresh.codes_in(category)

    with futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(first_listing, ["CATEGORY_III", "CATEGORY_I", "PLA", "HCPCS_LEVEL_II"] * 2))
    assert len(calls) == len(snap.codes)
    assert results[0] == results[4] and len(results[0]) > 100


# -- 3. connections --------------------------------------------------------------------------

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + SETTINGS
_SETTINGS, _PING, _GOAWAY = 0x4, 0x6, 0x7


def _frames(sock: socket.socket, seconds: float):
    """HTTP/2 frames (type, flags, payload) until the server closes or `seconds` pass; answers
    SETTINGS and PING as a client must. Yields ("EOF", 0, b"") when the connection closes."""
    buffer, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            yield "EOF", 0, b""
            return
        buffer += chunk
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
            size, kind, flags = int.from_bytes(buffer[:3], "big"), buffer[3], buffer[4]
            payload, buffer = buffer[9:9 + size], buffer[9 + size:]
            if kind == _SETTINGS and not flags & 1:
                sock.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
            elif kind == _PING and not flags & 1:
                sock.sendall(b"\x00\x00\x08\x06\x01\x00\x00\x00\x00" + payload)
            yield kind, flags, payload


def _connect(port: int, preface: bool = True) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
    if preface:
        sock.sendall(_PREFACE)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    return any(kind == "EOF" for kind, _, _ in _frames(sock, seconds))


@pytest.fixture(scope="module")
def tight_server(engine):
    """A server with small connection limits, so they can be seen to act."""
    built = serving(engine, ServerOptions(max_connection_idle=1.0, handshake_timeout=1.0,
                                          max_streams_per_connection=5))
    yield built
    built.grpc_server.stop(None)


def test_idle_connection_is_closed(tight_server):
    with _connect(tight_server.port) as sock:
        frames = list(_frames(sock, HANG))
    assert frames[-1][0] == "EOF"
    goaway = [payload for kind, _, payload in frames if kind == _GOAWAY]
    assert goaway and b"idle" in goaway[0]


def test_connection_that_never_speaks_http2_is_closed(tight_server):
    """Closed after the 1 s handshake timeout (grpc's own settings timeout would take 60 s)."""
    with _connect(tight_server.port, preface=False) as sock:
        sock.settimeout(20)
        while sock.recv(65536):  # says nothing back; a timeout here fails the test
            pass


def test_streams_per_connection_are_capped(tight_server):
    with _connect(tight_server.port) as sock:
        kind, flags, payload = next(_frames(sock, HANG))
    assert kind == _SETTINGS
    settings = {int.from_bytes(payload[i:i + 2], "big"): int.from_bytes(payload[i + 2:i + 6], "big")
                for i in range(0, len(payload), 6)}
    assert settings.get(0x3) == 5  # SETTINGS_MAX_CONCURRENT_STREAMS


def test_connections_beyond_the_limit_are_refused(engine):
    built = serving(engine, ServerOptions(max_connections=3))
    try:
        kept = [_connect(built.port) for _ in range(3)]
        for sock in kept:
            assert next(_frames(sock, HANG))[0] == _SETTINGS
        with _connect(built.port) as extra:
            assert _closed_within(extra, HANG)
        for sock in kept:
            sock.close()
        # The places are given back: the server notices the closed sockets a moment later,
        # so a new client may be refused until then (HANG only tells "never" from "soon").
        deadline = time.monotonic() + HANG
        while True:
            try:
                with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
                    assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        built.grpc_server.stop(None)


# -- 4. requests the server cannot parse, and bounded fields --------------------------------


@pytest.mark.parametrize("method, bad_utf8", [
    ("GetCode", b"\x0a\x02\xc3\x28"), ("BatchGetCodes", b"\x0a\x02\xc3\x28"),
    ("ListCodes", b"\x12\x02\xc3\x28"), ("GetFaq", b"\x0a\x02\xc3\x28"),
    ("AnswerQuestion", b"\x0a\x02\xc3\x28"), ("GetRuleset", b"\x0a\x80"),
])
def test_unparseable_bytes_are_invalid_argument(channel, method, bad_utf8):
    call = channel.unary_unary(SERVICE + method)
    # A truncated tag, a truncated length, and a string field that is not UTF-8.
    for junk in (b"\xff\xff\xff\xff", b"\x0a\xff", bad_utf8):
        with pytest.raises(grpc.RpcError) as caught:
            call(junk, timeout=HANG)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (junk, caught.value.details())
        assert error_info(caught.value).reason == "MALFORMED_REQUEST"


def test_unparseable_health_check_is_invalid_argument(channel):
    with pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary("/grpc.health.v1.Health/Check")(b"\xff\xff\xff", timeout=HANG)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unparseable_requests_are_logged_once_per_peer(engine, caplog):
    built = serving(engine)
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(3):  # three connections from one host are one peer
                with grpc.insecure_channel(f"127.0.0.1:{built.port}") as chan:
                    for _ in range(10):
                        with pytest.raises(grpc.RpcError):
                            chan.unary_unary(SERVICE + "GetCode")(b"\xff\xff\xff", timeout=HANG)
    finally:
        built.grpc_server.stop(None)
    logged = [r for r in caplog.records if "unparseable" in r.getMessage()]
    assert len(logged) == 1
    assert not any(r.exc_info for r in caplog.records)


def test_peer_log_speaks_once_a_minute_and_counts_the_rest():
    from cptrules.server.parsing import PeerLog, peer_host

    now = [0.0]
    peers = PeerLog(interval=60, max_peers=2, clock=lambda: now[0])
    host = peer_host("ipv4:10.0.0.1:5000")
    assert host == peer_host("ipv4:10.0.0.1:6000") == "ipv4:10.0.0.1"
    assert peers.should_log(host) == (True, 0)
    assert [peers.should_log(host) for _ in range(5)] == [(False, 0)] * 5
    now[0] = 61
    assert peers.should_log(host) == (True, 5)
    for other in ("a", "b", "c"):  # remembers at most max_peers
        peers.should_log(other)
    assert peers.should_log(host) == (True, 0)


def test_a_cursor_from_another_revision_is_refused(engine):
    from cptrules.errors import InvalidInputError
    from cptrules.server.page_tokens import PageTokens

    page = engine.list_codes(2)
    with pytest.raises(InvalidInputError) as caught:
        engine.list_codes(2, page.next_after, "", None, "sha256:another")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    tokens = PageTokens()
    token = tokens.make(page.next_after, "", page.revision)
    assert tokens.read(token, "").after == page.next_after
    with pytest.raises(InvalidInputError):
        tokens.read(token, "CATEGORY_III")  # another filter
    with pytest.raises(InvalidInputError):
        PageTokens().read(token, "")  # another process


def test_forged_token_with_non_ascii_signature_is_invalid_argument(stub):
    first = stub.ListCodes(svc.ListCodesRequest(page_size=2))
    body = first.next_page_token.rsplit(".", 1)[0]
    for forged in (body + ".\u00e9" * 32, body + ".ÿ", "\u0100.\u0100", "." * 600):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListCodes(svc.ListCodesRequest(page_size=2, page_token=forged))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(caught.value).reason == "INVALID_PAGE_TOKEN"


def test_page_tokens_still_page(stub):
    seen, token = [], ""
    for _ in range(3):
        page = stub.ListCodes(svc.ListCodesRequest(page_size=4, page_token=token,
                                                   category=code_pb2.CODE_CATEGORY_CATEGORY_III))
        seen += [c.code for c in page.codes]
        token = page.next_page_token
    assert seen == sorted(set(seen)) and len(seen) == 12


@pytest.mark.parametrize("request_, field", [
    (svc.GetCodeRequest(code="99213", modifier="M" * 3000), "modifier"),
    (svc.GetCodeRequest(code="9" * 50_000), "code"),
    (svc.GetFaqRequest(code="x" * 5000), "code"),
    (svc.BatchGetCodesRequest(codes=["99213", "Z" * 5000]), "codes[1]"),
    (svc.ListCodesRequest(page_token="A" * 5000), "page_token"),
])
def test_long_fields_are_invalid_argument_without_echo(channel, request_, field):
    method = request_.DESCRIPTOR.name.removesuffix("Request")
    call = channel.unary_unary(SERVICE + method, request_serializer=lambda m: m.SerializeToString())
    with pytest.raises(grpc.RpcError) as caught:
        call(request_, timeout=HANG)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    trailing = sum(len(k) + len(v) for k, v in error.trailing_metadata())
    assert trailing < 2000
    bad = rpc_status.from_call(error)
    assert any(v.field == field for d in bad.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)
               for v in _unpack(d, error_details_pb2.BadRequest).field_violations)


def _unpack(detail, kind):
    message = kind()
    detail.Unpack(message)
    return message


def test_answer_echoes_a_bounded_prefix_of_the_question(stub):
    question = "is 0556T permanent " + "please " * 140
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question=question[:limits.QUESTION_MAX_CHARS]))
    assert answer.intent == "is_permanent"
    assert len(answer.question) <= limits.ECHO_MAX_CHARS
    assert question.startswith(answer.question.rstrip("…"))


def test_ruleset_names_the_rules_without_the_absolute_path(stub):
    ruleset = stub.GetRuleset(svc.GetRulesetRequest())
    assert ruleset.rules_source == "rules"
    assert not os.path.isabs(ruleset.rules_source)


# -- 5. dates written in questions -------------------------------------------------------------


@pytest.mark.parametrize("written", ["12/31/9999", "7/4/1776", "1/1/0001", "9999-12-31", "July 4, 1776"])
def test_dates_in_questions_keep_the_service_years(stub, written):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question=f"is 99213 valid on {written}"))
    assert limits.DATE_MIN_YEAR <= answer.date_of_service.year <= limits.DATE_MAX_YEAR
    assert written in answer.text  # named as a date the service cannot answer for


# -- 6. fuzz over gRPC: typed requests for every RPC, and raw bytes --------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from google.type import date_pb2  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("CPTRULES_FUZZ_EXAMPLES", "0"))
_texts = st.text(max_size=80) | st.sampled_from(["0556T", "99213", "g0439", "055T", "26", "TC", ""])
_dates = st.none() | st.builds(date_pb2.Date, year=st.integers(0, 10_000), month=st.integers(0, 13),
                               day=st.integers(0, 32))
_page_sizes = st.integers(-3, 60) | st.sampled_from([-(2**31), 1000, 1001, 2**31 - 1])
_categories = st.integers(-2, 8) | st.sampled_from([-(2**31), 2**31 - 1])
_tokens = st.text(max_size=600) | st.builds(lambda a, b: f"{a}.{b}", st.text(max_size=40),
                                            st.text(max_size=40))


def _with_date(message, day):
    if day is not None:
        message.date_of_service.CopyFrom(day)
    return message


_requests = st.one_of(
    st.builds(lambda c, m, d: ("GetCode", _with_date(svc.GetCodeRequest(code=c, modifier=m), d)),
              _texts, _texts, _dates),
    st.builds(lambda cs, d: ("BatchGetCodes", _with_date(svc.BatchGetCodesRequest(codes=cs), d)),
              st.lists(_texts, max_size=110), _dates),
    st.builds(lambda n, t, c, d: ("ListCodes", _with_date(
        svc.ListCodesRequest(page_size=n, page_token=t, category=c), d)),
        _page_sizes, _tokens, _categories, _dates),
    st.builds(lambda c, d: ("GetFaq", _with_date(svc.GetFaqRequest(code=c), d)), _texts, _dates),
    st.builds(lambda q, d: ("AnswerQuestion", _with_date(svc.AnswerQuestionRequest(question=q), d)),
              st.text(max_size=1200) | _texts.map(lambda c: f"is {c} permanent on 1/1/0001"), _dates),
    st.just(("GetRuleset", svc.GetRulesetRequest())),
)
_METHODS = ["GetCode", "BatchGetCodes", "ListCodes", "GetFaq", "AnswerQuestion", "GetRuleset",
            "NoSuchMethod"]
_FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}


def _outcome(call, request) -> grpc.StatusCode:
    try:
        call(request, timeout=HANG)
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        return error.code()


def _fuzz(channel, typed: int, raw: int) -> dict[str, int]:
    """Send `typed` generated requests and `raw` byte strings; count the status codes."""
    counts: dict[str, int] = {}
    bad: list[tuple[str, object, grpc.StatusCode]] = []

    def record(method, request, code):
        counts[code.name] = counts.get(code.name, 0) + 1
        if code in _FORBIDDEN:
            bad.append((method, request, code))

    @settings(max_examples=typed, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_requests)
    def typed_requests(pair):
        method, request = pair
        call = channel.unary_unary(SERVICE + method, request_serializer=lambda m: m.SerializeToString())
        record(method, request, _outcome(call, request))

    @settings(max_examples=raw, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(_METHODS), st.binary(max_size=300))
    def raw_bytes(method, data):
        record(method, data, _outcome(channel.unary_unary(SERVICE + method), data))

    typed_requests()
    raw_bytes()
    assert not bad, bad[:5]
    return counts


def test_fuzz_every_rpc_never_unknown_or_internal(channel):
    counts = _fuzz(channel, typed=300, raw=200)
    assert sum(counts.values()) >= 500 and counts.get("INVALID_ARGUMENT") and counts.get("OK")
    assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.slow
@pytest.mark.skipif("CPTRULES_FUZZ_EXAMPLES" not in os.environ, reason="set CPTRULES_FUZZ_EXAMPLES")
def test_fuzz_many(channel):
    """CPTRULES_FUZZ_EXAMPLES=20000 python -m pytest -s -k fuzz_many tests/integration/test_hardening.py
    sends that many typed requests and as many raw byte strings."""
    counts = _fuzz(channel, typed=FUZZ_EXAMPLES, raw=FUZZ_EXAMPLES)
    print(f"fuzz: {sum(counts.values())} RPCs: {counts}")
    assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
